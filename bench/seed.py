"""Bench data: thousands of published listings over the communes around Saint-Étienne,
written the way the service writes them (publish_listing, outbox included)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, text

from contracts.listings import ListingDraft
from infra.communes import Commune, communes
from infra.database import DatabaseAccess
from infra.messaging_tables import outbox
from services.listings.service import publish_listing

DEPARTMENTS = ("42", "43", "69", "63", "07", "38")

# (category, kind, pricing unit, title, (min, max) rate in euros, with operator possible)
CATALOG: tuple[tuple[str, str, str, str, tuple[int, int], bool], ...] = (
    ("deneigement", "vehicle", "day", "Chasse-neige {brand} lame {size} m", (250, 600), True),
    ("deneigement", "equipment", "day", "Saleuse tractée {vol} m³", (60, 150), False),
    ("voirie", "vehicle", "day", "Mini-pelle {brand} {ton} t", (120, 350), True),
    ("voirie", "equipment", "day", "Plaque vibrante {ton} t", (30, 90), False),
    ("voirie", "service", "hour", "Équipe de rebouchage de nids-de-poule", (40, 95), True),
    ("espaces-verts", "equipment", "day", "Broyeur de végétaux {brand}", (50, 140), False),
    ("espaces-verts", "vehicle", "day", "Tracteur épareuse {brand}", (180, 420), True),
    ("proprete", "vehicle", "hour", "Balayeuse de voirie {vol} m³", (45, 110), True),
    ("evenementiel", "equipment", "day", "Podium couvert {area} m²", (200, 700), True),
    ("evenementiel", "equipment", "day", "Barnum {area} m² (lot de {qty})", (40, 160), False),
    ("evenementiel", "equipment", "day", "Tribune mobile {seats} places", (300, 900), False),
    ("transport", "vehicle", "day", "Minibus {seats} places", (60, 140), False),
    ("salles", "space", "hour", "Salle polyvalente ({seats} personnes)", (20, 90), False),
    ("salles", "space", "day", "Gymnase municipal", (150, 400), False),
    ("informatique", "equipment", "day", "Vidéoprojecteur et écran {size} m", (20, 70), False),
    ("sport-loisirs", "equipment", "day", "Structure gonflable {area} m²", (80, 250), True),
    ("culture", "service", "hour", "Animation bibliothèque itinérante", (30, 80), True),
    ("securite", "equipment", "day", "Barrières de police (lot de {qty})", (20, 80), False),
    ("securite", "equipment", "day", "Panneaux de signalisation temporaire", (15, 50), False),
    ("batiment", "service", "hour", "Électricien habilité {brand}", (35, 75), True),
    ("batiment", "equipment", "day", "Échafaudage roulant {size} m", (25, 90), False),
)
BRANDS = ("Renault", "Mercedes", "Kubota", "Iveco", "John Deere", "Volvo", "Fendt", "Unimog")
BLURBS = (
    "Entretenu par nos ateliers municipaux, révisé chaque année.",
    "Disponible pour les communes voisines, livraison possible sur devis.",
    "Convient aux petites communes rurales comme aux centres-villes.",
    "Mise à disposition avec une notice et un carnet de bord à remplir.",
    "Utilisé pour nos propres manifestations, en excellent état.",
    "Prise en main par nos agents sur place avant le départ.",
)


@dataclass(frozen=True)
class SeedReport:
    listings: int
    communes: int
    seed_seconds: float
    outbox_drain_seconds: float  # after the last commit, until no outbox row is pending
    bookings_copy_seconds: float | None  # after the last commit, until bookings has them all


def bench_communes(departments: tuple[str, ...] = DEPARTMENTS) -> list[Commune]:
    directory = communes()
    return [
        c
        for department in departments
        for c in directory.search(department=department, limit=len(directory))
        if c.latitude is not None
    ]


def drafts(rng: random.Random) -> Iterator[ListingDraft]:
    while True:
        category, kind, unit, title, (low, high), operator = rng.choice(CATALOG)
        with_operator = operator and rng.random() < 0.5
        min_duration = rng.choice((1, 1, 1, 2))
        yield ListingDraft(
            title=title.format(
                brand=rng.choice(BRANDS),
                size=rng.choice((2, 3, 4, 6)),
                vol=rng.choice((1, 2, 3)),
                ton=rng.choice((1, 2, 3, 5)),
                area=rng.choice((20, 40, 60, 100)),
                qty=rng.choice((10, 20, 50)),
                seats=rng.choice((9, 50, 150, 200)),
            ),
            description=" ".join(rng.sample(BLURBS, 2)),
            category=category,
            kind=kind,
            pricing_unit=unit,
            rate_cents=rng.randint(low, high) * 100,
            deposit_cents=rng.choice((0, 0, 20_000, 50_000, 150_000)),
            quantity=rng.choice((1, 1, 1, 2, 4)),
            min_duration=min_duration,
            max_duration=rng.choice((None, min_duration + 4, min_duration + 13)),
            lead_time_days=rng.choice((0, 0, 2, 7, 14)),
            with_operator=with_operator,
            operator_rate_cents=rng.randint(25, 45) * 100 if with_operator else 0,
            cancellation_notice_days=rng.choice((0, 1, 3, 7)),
            late_cancellation_fee_cents=rng.choice((0, 5_000, 10_000)),
            rules=rng.choice(("", "Plein au retour.", "Nettoyage à la charge de l'emprunteur.")),
        )


def seed_listings(engine: Engine, count: int, batch: int = 1000, seed: int = 42) -> int:
    """`count` published listings, `batch` per transaction; owners weighted by √population."""
    rng = random.Random(seed)
    places = bench_communes()
    weights = [math.sqrt(max(c.population, 1)) for c in places]
    owners = rng.choices(places, weights=weights, k=count)
    access = DatabaseAccess(
        engine, producer="listings", correlation_id="bench-seed", consumer="bench"
    )
    made = 0
    source = drafts(rng)
    while made < count:
        with access.transaction() as tx:
            for owner in owners[made : made + batch]:
                publish_listing(tx, owner.insee_code, next(source))
        made = min(count, made + batch)
    return len({o.insee_code for o in owners})


def pending_outbox(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
        ).scalar_one()


def wait_for(predicate, timeout: float, what: str) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(0.1)
    return time.perf_counter() - started


def seed_and_drain(
    listings: Engine, bookings: Engine, count: int, timeout: float = 600
) -> SeedReport:
    started = time.perf_counter()
    owners = seed_listings(listings, count)
    seeded = time.perf_counter() - started
    drain = wait_for(lambda: pending_outbox(listings) == 0, timeout, "empty listings outbox")
    with listings.connect() as conn:
        total = conn.execute(text("SELECT count(*) FROM listings")).scalar_one()

    def copied() -> bool:
        with bookings.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM listing_copies")).scalar_one() >= total

    copies = drain + wait_for(copied, timeout, "bookings copies of every listing")
    with listings.connect() as conn:
        # what autovacuum would do shortly (and this server may have it off): measure the
        # steady state, not a table the planner believes empty
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM (ANALYZE) listings")
        )
    return SeedReport(count, owners, seeded, drain, copies)
