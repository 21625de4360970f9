"""Loads the demo communes' users and listings; running it again adds nothing twice.

Demo only: every account has the password `mutualis-demo`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from sqlalchemy import select

from contracts import clock
from contracts.billing import BillingProfileInput
from contracts.caller import Caller, Role
from contracts.consultants import ConsultantTerms
from contracts.listings import ListingDraft
from contracts.users import UserCreated
from gateway.auth import hash_password
from gateway.models import User
from gateway.user_events import snapshot_of, users_database
from infra.communes import communes
from infra.database import DatabaseAccess, make_engine
from mutualis.components import settings_of
from services.billing import domain as billing_domain
from services.billing import repository as billing_repository
from services.consultants.domain import vocabulary
from services.consultants.models import ConsultantRow
from services.consultants.service import publish_consultant
from services.listings.models import ListingRow
from services.listings.service import publish_listing

DEMO_PASSWORD = "mutualis-demo"
DEMO_DOMAIN = "mutualis-demo.fr"
DEMO_COMMUNES = ("42218", "42044", "42095", "42207", "42189")
ROLE_TITLES = {
    "agent": "Agent",
    "manager": "Responsable des services techniques",
    "finance": "Service finances",
}

DEMO_LISTINGS: dict[str, list[dict]] = {
    "42044": [
        dict(
            title="Chasse-neige Unimog U400 avec lame biaise 3 m",
            category="deneigement",
            kind="vehicle",
            pricing_unit="day",
            rate_cents=42000,
            deposit_cents=150000,
            quantity=2,
            min_duration=1,
            max_duration=10,
            lead_time_days=0,
            with_operator=True,
            operator_rate_cents=32000,
            cancellation_notice_days=1,
            late_cancellation_fee_cents=10000,
            description="Porte-outils Unimog équipé d'une lame biaise de 3 m et d'une "
            "saleuse de 2 m³. Idéal pour les routes de côte du Pilat.",
            rules="Plein de gazole au retour. Conduite par un agent titulaire du permis C "
            "ou avec notre chauffeur.",
            contact=dict(
                name="Jean Morel",
                role="responsable du parc",
                phone="04 77 12 34 56",
                email="parc@mairie-chambon.example.fr",
            ),
            pickup_address="Centre technique municipal, 12 rue de la Forge, "
            "42500 Le Chambon-Feugerolles",
            pickup_instructions="Portail B, sonner à l'atelier (7 h 30 – 16 h). Le véhicule "
            "est rendu lavé, lame relevée.",
        ),
        dict(
            title="Saleuse tractée 1,5 m³",
            category="deneigement",
            kind="equipment",
            pricing_unit="day",
            rate_cents=9000,
            deposit_cents=50000,
            quantity=1,
            description="Saleuse pour tracteur ou pick-up, épandage réglable 2 à 8 m.",
            rules="Rincer la trémie après usage.",
        ),
    ],
    "42218": [
        dict(
            title="Podium scénique couvert 60 m²",
            category="evenementiel",
            kind="equipment",
            pricing_unit="day",
            rate_cents=35000,
            deposit_cents=200000,
            quantity=1,
            min_duration=1,
            max_duration=7,
            lead_time_days=14,
            with_operator=True,
            operator_rate_cents=45000,
            description="Scène mobile 10 × 6 m avec toit, montage par nos équipes.",
            rules="Montage et démontage par les agents de Saint-Étienne uniquement.",
        ),
    ],
    "42095": [
        dict(
            title="Minibus 9 places",
            category="transport",
            kind="vehicle",
            pricing_unit="day",
            rate_cents=8000,
            deposit_cents=80000,
            quantity=1,
            max_duration=5,
            lead_time_days=2,
            description="Renault Trafic 9 places, climatisé, attelage.",
            rules="Permis B. Carnet de bord à remplir.",
        ),
        dict(
            title="Balayeuse de voirie compacte avec chauffeur",
            category="proprete",
            kind="service",
            pricing_unit="hour",
            rate_cents=6500,
            quantity=1,
            min_duration=2,
            max_duration=8,
            with_operator=True,
            operator_rate_cents=3500,
            description="Balayeuse aspiratrice 2 m³ et son chauffeur pour marchés et "
            "manifestations.",
        ),
    ],
    "42207": [
        dict(
            title="Barrières de police (lot de 50)",
            category="securite",
            kind="equipment",
            pricing_unit="day",
            rate_cents=5000,
            deposit_cents=30000,
            quantity=4,
            description="Barrières Vauban galvanisées, 2 m, livrées sur palettes.",
        ),
        dict(
            title="Tribune mobile 200 places",
            category="evenementiel",
            kind="equipment",
            pricing_unit="day",
            rate_cents=60000,
            deposit_cents=300000,
            quantity=1,
            lead_time_days=21,
            description="Gradins démontables homologués.",
        ),
    ],
    "42189": [
        dict(
            title="Broyeur de végétaux thermique",
            category="espaces-verts",
            kind="equipment",
            pricing_unit="day",
            rate_cents=7500,
            deposit_cents=40000,
            quantity=1,
            description="Broyeur à branches jusqu'à 12 cm de diamètre.",
        ),
        dict(
            title="Salle polyvalente (150 personnes)",
            category="salles",
            kind="space",
            pricing_unit="hour",
            rate_cents=4000,
            quantity=1,
            min_duration=2,
            max_duration=12,
            lead_time_days=7,
            description="Cuisine équipée, sono, 150 places.",
        ),
    ],
}


def demo_users() -> Iterator[tuple[str, str, str, str]]:
    """(email, name, commune, roles) of every demo account."""
    for code in DEMO_COMMUNES:
        town = communes().get(code).name
        for role, title in ROLE_TITLES.items():
            yield f"{role}.{code}@{DEMO_DOMAIN}", f"{title} — {town}", code, role
    yield f"operator@{DEMO_DOMAIN}", "Opérateur de la plateforme", "42218", "operator"
    # declares the Loire's emergency episodes (département 42, from Saint-Étienne)
    yield (
        f"coordinator@{DEMO_DOMAIN}",
        "Coordination départementale — Loire",
        "42218",
        "coordinator",
    )


def seed_demo() -> Iterator[str]:
    gateway_engine = make_engine(settings_of("gateway").database_url)
    hashed = hash_password(DEMO_PASSWORD)
    # announced like any other user (user.created), so that the notifications service knows them
    with users_database(gateway_engine).transaction() as tx:
        known = set(tx.session.scalars(select(User.email)))
        for email, name, commune, roles in demo_users():
            if email not in known:
                user = User(
                    id=str(uuid.uuid4()),
                    email=email,
                    name=name,
                    password_hash=hashed,
                    commune=commune,
                    roles=roles,
                    created_at=clock.now(),
                )
                tx.session.add(user)
                tx.emit(UserCreated, snapshot_of(user))
                yield f"user {email}"
    listings = DatabaseAccess(
        make_engine(settings_of("listings").database_url),
        producer="listings",
        correlation_id="demo-seed",
        consumer="seed",
    )
    with listings.transaction() as tx:
        for owner, drafts in DEMO_LISTINGS.items():
            titles = set(
                tx.session.scalars(
                    select(ListingRow.title).where(ListingRow.owner_commune == owner)
                )
            )
            for draft in drafts:
                if draft["title"] not in titles:
                    publish_listing(tx, owner, ListingDraft.model_validate(draft))
                    yield f"listing {draft['title']} ({owner})"
    yield from seed_consultants()
    yield from seed_billing_profiles()


# the town halls' addresses; SIRET = the commune's SIREN + a Luhn-valid NIC; accounts at the
# Banque de France (30001), where the Treasury keeps local authorities' funds
DEMO_BILLING_PROFILES: dict[str, dict] = {
    "42218": dict(
        siret="21420218600018",
        iban="FR283000100794C422180000093",
        address={
            "street": "Hôtel de ville, place de l'Hôtel-de-Ville",
            "postal_code": "42000",
            "city": "Saint-Étienne",
        },
        service_code="DIRFIN",
        service_code_required=True,
    ),
    "42044": dict(
        siret="21420044600018",
        iban="FR283000100794C420440000028",
        address={
            "street": "Hôtel de ville, place Jean-Jaurès",
            "postal_code": "42500",
            "city": "Le Chambon-Feugerolles",
        },
    ),
    "42095": dict(
        siret="21420095800012",
        iban="FR283000100794C420950000032",
        address={
            "street": "Hôtel de ville, place du Breuil",
            "postal_code": "42700",
            "city": "Firminy",
        },
        service_code="FINANCES",
    ),
    "42207": dict(
        siret="21420207900015",
        iban="FR283000100794C422070000056",
        address={
            "street": "Hôtel de ville, avenue Antoine-Pinay",
            "postal_code": "42400",
            "city": "Saint-Chamond",
        },
        vat_regime="standard",
    ),
    "42189": dict(
        siret="21420189900017",
        iban="FR283000100794C421890000066",
        address={
            "street": "Hôtel de ville, place de la République",
            "postal_code": "42230",
            "city": "Roche-la-Molière",
        },
    ),
}


def seed_billing_profiles() -> Iterator[str]:
    """Each demo commune's billing profile, unless its finance team already declared one."""
    billing = DatabaseAccess(
        make_engine(settings_of("billing").database_url),
        producer="billing",
        correlation_id="demo-seed",
        consumer="seed",
    )
    with billing.transaction() as tx:
        for code, fields in DEMO_BILLING_PROFILES.items():
            if billing_repository.profile_of(tx.session, code) is None:
                profile = BillingProfileInput.model_validate(
                    {"bic": "BDFEFRPPCCT", "email": f"finance.{code}@{DEMO_DOMAIN}", **fields}
                )
                columns = billing_domain.profile_columns(code, profile, None, clock.now())
                billing_repository.save_profile(tx.session, code, columns)
                yield f"billing profile {communes().get(code).name} ({code})"


DEMO_CONSULTANTS: dict[str, list[dict]] = {
    "42095": [
        dict(
            name="Hélène Duclos",
            title="Urbaniste — droit des sols et aménagement",
            skills=["urbanisme", "droit-des-sols", "amenagement"],
            bio="Instruit les permis de construire et déclarations préalables de Firminy, "
            "accompagne les projets d'aménagement autour du site Le Corbusier et la "
            "reconversion des friches.",
            day_rate_cents=52000,
            max_days_per_month=6,
        )
    ],
    "42218": [
        dict(
            name="Karim Benaïssa",
            title="Juriste commande publique",
            skills=["marches-publics", "juridique", "achats"],
            bio="Rédaction des DCE, procédures formalisées et MAPA, analyse des offres, "
            "sécurisation juridique des marchés de travaux et de services.",
            languages=["fr", "en"],
            day_rate_cents=58000,
            max_days_per_month=5,
        ),
        dict(
            name="Mathilde Grange",
            title="Conseillère en énergie partagée",
            skills=["renovation-energetique", "energie"],
            bio="Bilans énergétiques du patrimoine communal, décret tertiaire, "
            "préconisations d'isolation et de chauffage.",
            day_rate_cents=45000,
            max_days_per_month=8,
        ),
    ],
    "42044": [
        dict(
            name="Nicolas Vial",
            title="Administrateur systèmes et réseaux",
            skills=["informatique", "cybersecurite"],
            bio="Serveurs, réseau et sauvegardes de la mairie ; durcissement des postes et "
            "sensibilisation au hameçonnage.",
            day_rate_cents=45000,
            max_days_per_month=6,
        )
    ],
    "42207": [
        dict(
            name="Amandine Rivoire",
            title="Chargée de mission subventions",
            skills=["subventions", "fonds-europeens", "finances"],
            bio="Dossiers DETR, DSIL, fonds vert et appels à projets régionaux et européens.",
            day_rate_cents=48000,
            max_days_per_month=6,
        )
    ],
    "42189": [
        dict(
            name="Vincent Peyron",
            title="Ingénieur eau et assainissement",
            skills=["eau-potable", "assainissement", "eaux-pluviales"],
            bio="Schéma directeur d'eau potable, recherche de fuites, station d'épuration et "
            "gestion des eaux pluviales.",
            day_rate_cents=56000,
            max_days_per_month=4,
        )
    ],
}


def seed_consultants() -> Iterator[str]:
    """The demo communes' expert staff, unless a consultant of that name is already there."""
    consultants = DatabaseAccess(
        make_engine(settings_of("consultants").database_url),
        producer="consultants",
        correlation_id="demo-seed",
        consumer="seed",
    )
    with consultants.transaction() as tx:
        for home, drafts in DEMO_CONSULTANTS.items():
            names = set(
                tx.session.scalars(
                    select(ConsultantRow.name).where(ConsultantRow.home_commune == home)
                )
            )
            for fields in drafts:
                if fields["name"] in names:
                    continue
                skills = vocabulary().resolve(fields["skills"])
                terms = ConsultantTerms.model_validate(fields | {"skills": skills})
                manager = Caller(user_id="demo-seed", commune=home, roles=frozenset({Role.MANAGER}))
                publish_consultant(tx, manager, terms, ())
                yield f"consultant {fields['name']} ({home})"
