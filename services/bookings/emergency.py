"""Emergency episodes' rules: which requests an episode covers, who may declare one, and how
scarce units are allocated among urgent requests. Pure, no I/O (the communes are given)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Protocol, TypeVar

from contracts.caller import Caller, Role
from contracts.emergencies import (
    NEED_ORDER,
    EmergencyDeclaration,
    Need,
    Territory,
    department_of,
)
from contracts.errors import Conflict, Forbidden, InvalidInput, field_error, unknown_commune
from contracts.listings import ListingSnapshot
from infra.communes import CommuneDirectory

ALLOCATION_WINDOW = timedelta(minutes=10)

Hold = tuple[datetime, datetime, int]  # a holding booking's period [start, end) and units


# -- territory --------------------------------------------------------------------------


@dataclass(frozen=True)
class Areas:
    """The départements and EPCIs the communes data knows, each EPCI with its départements
    (a few straddle two)."""

    departments: frozenset[str]
    epci_departments: dict[str, frozenset[str]]


@cache
def areas_of(directory: CommuneDirectory) -> Areas:
    departments: set[str] = set()
    epcis: dict[str, set[str]] = {}
    for commune in directory.search(limit=len(directory)):
        departments.add(commune.department_code)
        if commune.epci_siren:
            epcis.setdefault(commune.epci_siren, set()).add(commune.department_code)
    return Areas(frozenset(departments), {e: frozenset(d) for e, d in epcis.items()})


def check_territory(territory: Territory, directory: CommuneDirectory) -> None:
    """Refuse (422) a territory naming a place the communes data does not know, or a centre
    whose position is unknown (no radius can be drawn around it)."""
    areas = areas_of(directory)
    errors = [
        field_error(f"territory.departments.{n}", f"no commune is in département {code}")
        for n, code in enumerate(territory.departments)
        if code not in areas.departments
    ] + [
        field_error(f"territory.epcis.{n}", f"no commune belongs to the EPCI {code}")
        for n, code in enumerate(territory.epcis)
        if code not in areas.epci_departments
    ]
    if errors:
        raise InvalidInput("Unknown places in the territory", errors)
    if territory.centre is not None:
        centre = directory.get(territory.centre)
        if centre is None:
            raise unknown_commune("territory.centre", territory.centre)
        if centre.latitude is None:
            raise InvalidInput(
                "The centre's position is unknown",
                [field_error("territory.centre", "give départements or EPCIs instead")],
            )


def in_territory(territory: Territory, commune: str, directory: CommuneDirectory) -> bool:
    """Whether the commune with this INSEE code lies in the territory."""
    return territory.contains(commune, directory)


def ensure_may_declare(caller: Caller, territory: Territory, directory: CommuneDirectory) -> None:
    """An operator declares (and ends) episodes anywhere; a coordinator only within the
    département of their commune, or for their commune's EPCI."""
    if caller.has(Role.OPERATOR):
        return
    if not caller.has(Role.COORDINATOR):
        raise Forbidden("Only an operator or a coordinator declares an emergency")
    home = directory.get(caller.commune)
    if home is None:
        raise Forbidden("A coordinator acts for the territory of a known commune")
    areas = areas_of(directory)
    ours = frozenset({home.department_code})
    outside = [
        field_error(f"territory.departments.{n}", f"{code} is not your département")
        for n, code in enumerate(territory.departments)
        if code != home.department_code
    ] + [
        field_error(f"territory.epcis.{n}", f"the EPCI {code} is not yours")
        for n, code in enumerate(territory.epcis)
        if code != home.epci_siren and areas.epci_departments.get(code) != ours
    ]
    if territory.centre is not None:
        centre = directory.get(territory.centre)
        if department_of(territory.centre) != home.department_code and (
            centre is None or centre.epci_siren != home.epci_siren
        ):
            outside.append(field_error("territory.centre", "is outside your territory"))
    if outside:
        raise Forbidden(
            f"A coordinator declares only within {home.department} or their EPCI", outside
        )


def check_period(declared: EmergencyDeclaration, now: datetime) -> None:
    """An episode is declared for now or later: one already over helps nobody (422)."""
    if declared.end is not None and declared.end <= now:
        raise InvalidInput(
            "The episode is already over", [field_error("end", "is in the past", "in_the_past")]
        )


# -- coverage ---------------------------------------------------------------------------


class Episode(Protocol):
    """What coverage needs of an episode (its view and its snapshot both have it)."""

    territory: Territory
    categories: list[str]
    start: datetime
    end: datetime | None


E = TypeVar("E", bound=Episode)


def in_force(episode: Episode, at: datetime) -> bool:
    return episode.start <= at and (episode.end is None or at < episode.end)


def overlaps(episode: Episode, start: datetime, end: datetime) -> bool:
    """Whether the slot [start, end) meets the episode's period [start, end)."""
    return start < (episode.end or datetime.max.replace(tzinfo=start.tzinfo)) and (
        end > episode.start
    )


def covers(
    episode: Episode,
    *,
    borrower_commune: str,
    category: str,
    start: datetime,
    end: datetime,
    directory: CommuneDirectory,
) -> bool:
    """Whether a request is an urgent one of this episode: the borrower (who suffers the
    emergency, wherever the lender is) in its territory, the listing in one of its
    categories, the slot meeting its period."""
    return (
        category in episode.categories
        and overlaps(episode, start, end)
        and in_territory(episode.territory, borrower_commune, directory)
    )


def covering(
    episodes: Iterable[E],
    *,
    borrower_commune: str,
    category: str,
    start: datetime,
    end: datetime,
    directory: CommuneDirectory,
) -> E | None:
    """The earliest-started episode covering the request, if any."""
    found = [
        e
        for e in episodes
        if covers(
            e,
            borrower_commune=borrower_commune,
            category=category,
            start=start,
            end=end,
            directory=directory,
        )
    ]
    return min(found, key=lambda e: e.start, default=None)


# -- urgent requests -------------------------------------------------------------------


class Covering(Episode, Protocol):
    id: str


@dataclass(frozen=True)
class Urgent:
    """What makes a request urgent: the episode covering it, the need its borrower declared
    (service continuity when none), and how far the borrower is from the lender."""

    emergency_id: str
    need: Need
    distance_km: float | None


DEFAULT_NEED = Need.SERVICE_CONTINUITY


def urgency_of(
    episodes: Iterable[Covering],
    *,
    borrower_commune: str,
    listing: ListingSnapshot,
    slots: Sequence[tuple[datetime, datetime]],
    need: Need | None,
    directory: CommuneDirectory,
) -> Urgent | None:
    """A request is urgent when an episode covers its first slot (a series is urgent as a
    whole, or not at all: its occurrences are one need)."""
    if not slots:
        return None
    start, end = slots[0]
    episode = covering(
        episodes,
        borrower_commune=borrower_commune,
        category=listing.category,
        start=start,
        end=end,
        directory=directory,
    )
    if episode is None:
        return None
    return Urgent(
        episode.id,
        need or DEFAULT_NEED,
        directory.distance_km(borrower_commune, listing.owner_commune),
    )


def as_urgent(listing: ListingSnapshot) -> ListingSnapshot:
    """The listing as an urgent request meets it: its lead time waived (its other rules,
    blackouts and quantity stand)."""
    return listing.model_copy(update={"lead_time_days": 0})


def ensure_decidable(action: str, undecided_urgent: bool) -> None:
    """An urgent request waiting for its allocation window is not approved by hand, nor
    moved to other dates: the window decides the scarce units first (rejecting or
    cancelling it stays open)."""
    if action in ("approve", "change_dates") and undecided_urgent:
        raise Conflict(
            "This urgent request is decided with the others of its allocation window first",
            reason="allocation_pending",
        )


UNMET = frozenset({"rejected", "expired", "cancelled", "waiting"})


def unmet_needs(requests: Iterable[tuple[Need, str]]) -> dict[Need, int]:
    """How many urgent requests of each need, given with their booking status, were not
    served: refused by the allocation or the lender, expired, withdrawn, or waiting. Most
    pressing first; needs all served are left out."""
    counts = {need: 0 for need in NEED_ORDER}
    for need, status in requests:
        if status in UNMET:
            counts[need] += 1
    return {need: n for need, n in counts.items() if n}


# -- allocation -------------------------------------------------------------------------


@dataclass(frozen=True)
class UrgentRequest:
    """An urgent request for one listing, as the allocation sees it."""

    id: str
    start: datetime
    end: datetime
    quantity: int
    need: Need
    distance_km: float | None  # borrower to lender; None when a position is unknown
    requested_at: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("an urgent request's slot must end after it starts")
        if self.quantity < 1:
            raise ValueError("an urgent request asks for at least one unit")

    def published_order(self) -> tuple:
        """Declared need first, then the nearer, then the earlier; the id only makes two
        identical requests' order the same whatever order they came in."""
        distance = math.inf if self.distance_km is None else self.distance_km
        return (self.need.rank, distance, self.requested_at, self.id)


@dataclass(frozen=True)
class Decision:
    """What the allocation decided for one request, and why, in words for the requester."""

    request_id: str
    granted: bool
    position: int  # in the published order, from 1
    explanation: str


def collected(
    pending: Sequence[UrgentRequest], now: datetime, window: timedelta = ALLOCATION_WINDOW
) -> list[UrgentRequest]:
    """The undecided urgent requests of one listing to decide together now: those made in
    the window opened by the oldest of them, once that window has closed; none before."""
    if not pending:
        return []
    closes = min(r.requested_at for r in pending) + window
    if now < closes:
        return []
    return [r for r in pending if r.requested_at < closes]


def allocate(
    quantity: int,
    held: Sequence[Hold],
    requests: Iterable[UrgentRequest],
    *,
    units: str = "exemplaires",
) -> list[Decision]:
    """Decide the urgent requests of one allocation window for a listing of `quantity`
    units, of which `held` are already taken: in the published order, each is granted if
    its units fit at every instant of its slot beside what is held and what was granted
    before it, refused otherwise. `units` names the units in the plural ("chasse-neige").
    Decisions come in the published order."""
    ranked = sorted(requests, key=UrgentRequest.published_order)
    if len({r.id for r in ranked}) != len(ranked):
        raise ValueError("two urgent requests share an id")
    granted: list[UrgentRequest] = []
    decisions = []
    for position, request in enumerate(ranked, start=1):
        refusal = _refusal(quantity, held, granted, request, units)
        if refusal is None:
            granted.append(request)
            explanation = f"accordée : besoin « {request.need.label} », {_km(request)}"
        else:
            explanation = refusal
        decisions.append(Decision(request.id, refusal is None, position, explanation))
    return decisions


def _level(holds: Iterable[Hold], at: datetime) -> int:
    return sum(q for start, end, q in holds if start <= at < end)


def _refusal(
    quantity: int,
    held: Sequence[Hold],
    granted: Sequence[UrgentRequest],
    request: UrgentRequest,
    units: str,
) -> str | None:
    """Why `request` does not fit, or None when it does. The level of a set of half-open
    periods only rises where one starts, so the instants to look at are the slot's start
    and every start within it: there, one period ending and the next starting share units."""
    asked = f"{request.quantity} {_agree(request.quantity, 'demandé')}"
    if request.quantity > quantity:
        return f"refusée : {asked}, l'annonce n'en compte que {quantity}"
    grants = [(g.start, g.end, g.quantity) for g in granted]
    starts = {request.start} | {
        start for start, _, _ in (*held, *grants) if request.start < start < request.end
    }
    for at in sorted(starts):
        taken_by_bookings, taken_by_grants = _level(held, at), _level(grants, at)
        free = quantity - taken_by_bookings - taken_by_grants
        if free >= request.quantity:
            continue
        left = "aucun libre" if free <= 0 else f"{free} seulement {_agree(free, 'libre')}"
        if not taken_by_grants:
            if free <= 0:
                booked = _agree(quantity, "réservé")
                return f"refusée : {_all(quantity, units)} déjà {booked} sur ce créneau"
            return f"refusée : {asked}, {left} sur ce créneau"
        winners = [g for g in granted if g.start <= at < g.end]
        needs = "des besoins prioritaires" if len(winners) > 1 else "un besoin prioritaire"
        before = " ; ".join(_why_before(g, request) for g in winners)
        priority = f"{_agree(taken_by_grants, 'attribué')} à {needs} ({before})"
        if not taken_by_bookings and free <= 0:
            return f"refusée : {_all(quantity, units)} {priority}"
        taken = [f"{taken_by_grants} {priority}"]
        if taken_by_bookings:
            taken.insert(0, f"{taken_by_bookings} déjà {_agree(taken_by_bookings, 'réservé')}")
        return f"refusée : {asked}, {left} sur ce créneau : {', '.join(taken)}"
    return None


def _why_before(winner: UrgentRequest, loser: UrgentRequest) -> str:
    said = f"besoin « {winner.need.label} », {_km(winner)}"
    if (winner.need, winner.distance_km) == (loser.need, loser.distance_km) and (
        winner.requested_at < loser.requested_at
    ):
        said += ", demandée plus tôt"
    return said


def _km(request: UrgentRequest) -> str:
    if request.distance_km is None:
        return "distance inconnue"
    return f"{request.distance_km:.1f} km".replace(".", ",")


def _all(quantity: int, units: str) -> str:
    """The subject "all the units": "les 2 chasse-neige sont", "l'unique exemplaire est"."""
    return f"les {quantity} {units} sont" if quantity > 1 else "l'unique exemplaire est"


def _agree(count: int, participle: str) -> str:
    return participle + ("s" if count > 1 else "")
