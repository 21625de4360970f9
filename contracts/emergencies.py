"""Emergency episodes: what is declared, how it is shown, and the events that tell the others.

The bookings service owns episodes (it applies them to requests); it announces them with
`emergency.declared` and `emergency.ended`, and listings keeps a copy for search ordering.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Protocol, Self

from pydantic import BaseModel, Field, StringConstraints, model_validator

from contracts.events import Event, Payload, register
from contracts.fields import INSEE, Input, Instant, Text
from contracts.listings import Category

# a département as the INSEE codes its communes: 01-95 without 20, Corsica 2A/2B, overseas 97x
DEPARTMENT = r"^(0[1-9]|1\d|2[1-9AB]|[3-8]\d|9[0-5]|97[1-8])$"
# an EPCI (intercommunality) is named by its SIREN
EPCI = r"^\d{9}$"

Department = Annotated[str, StringConstraints(strip_whitespace=True, pattern=DEPARTMENT)]
EpciSiren = Annotated[str, StringConstraints(strip_whitespace=True, pattern=EPCI)]
MAX_RADIUS_KM = 200
PRODUCER = "bookings"  # the service that emits these events (the diagram reads it)


class Need(StrEnum):
    """What an urgent request is for, most pressing first: the allocation serves them in
    this order."""

    SAFETY_OF_PEOPLE = "safety_of_people"
    MAIN_ROADS = "main_roads"
    SERVICE_CONTINUITY = "service_continuity"
    COMFORT = "comfort"

    @property
    def rank(self) -> int:
        """0 for the most pressing need."""
        return NEED_ORDER.index(self)

    @property
    def label(self) -> str:
        return NEED_LABELS[self]


NEED_ORDER: tuple[Need, ...] = tuple(Need)
NEED_LABELS: dict[Need, str] = {
    Need.SAFETY_OF_PEOPLE: "sécurité des personnes",
    Need.MAIN_ROADS: "grands axes routiers",
    Need.SERVICE_CONTINUITY: "continuité du service public",
    Need.COMFORT: "confort",
}


def department_of(insee_code: str) -> str:
    """The département of a commune, read from its INSEE code: two characters (Corsica's
    2A and 2B included), three overseas (971 Guadeloupe … 976 Mayotte)."""
    return insee_code[:3] if insee_code.startswith("97") else insee_code[:2]


class Places(Protocol):
    """What a territory needs to know of communes (infra.communes.CommuneDirectory)."""

    def get(self, insee_code: str): ...

    def distance_km(self, code_a: str, code_b: str) -> float | None: ...


class Territory(Input):
    """Where an episode applies: départements and/or EPCIs, or a circle around a commune.

    That each code exists in the communes data is checked by the service that declares."""

    departments: list[Department] = Field(default=[], max_length=20)
    epcis: list[EpciSiren] = Field(default=[], max_length=50)
    centre: str | None = Field(default=None, pattern=INSEE, description="INSEE code")
    radius_km: float | None = Field(default=None, gt=0, le=MAX_RADIUS_KM)

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        areas = bool(self.departments or self.epcis)
        circle = self.centre is not None or self.radius_km is not None
        if areas and circle:
            raise ValueError("give départements and/or EPCIs, or a centre and radius_km, not both")
        if not areas and not circle:
            raise ValueError("give départements and/or EPCIs, or a centre and radius_km")
        if circle and (self.centre is None or self.radius_km is None):
            raise ValueError("centre and radius_km go together")
        # the same code twice is the same place: kept once, in order, so views compare equal
        self.departments[:] = sorted(set(self.departments))
        self.epcis[:] = sorted(set(self.epcis))
        return self

    def contains(self, commune: str, places: Places) -> bool:
        """Whether the commune with this INSEE code lies in the territory. Around a centre,
        a commune whose position is unknown is outside (the centre itself excepted)."""
        if self.centre is not None and self.radius_km is not None:
            if commune == self.centre:
                return True
            distance = places.distance_km(self.centre, commune)
            return distance is not None and distance <= self.radius_km
        if department_of(commune) in self.departments:
            return True
        found = places.get(commune)
        return found is not None and found.epci_siren in self.epcis


class EmergencyDeclaration(Input):
    """What an operator or a coordinator sends to declare an episode."""

    name: Text = Field(
        min_length=3, max_length=200, examples=["Épisode neigeux Loire — décembre 2026"]
    )
    territory: Territory
    categories: list[Category] = Field(min_length=1, description="the listing categories concerned")  # type: ignore[valid-type]
    start: Instant
    end: Instant | None = Field(default=None, description="open-ended until ended when absent")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        self.categories[:] = sorted(set(self.categories))
        return self


class EmergencyEnding(Input):
    """An episode ended before (or without) its declared end."""

    reason: Text = Field(default="", max_length=1000)


class EmergencyQuery(Input):
    """Episodes in force at a moment (now when absent), those covering a commune if given."""

    at: Instant | None = None
    commune: str | None = Field(default=None, pattern=INSEE)
    include_ended: bool = False


class EmergencySnapshot(Payload):
    """Everything other services keep of an episode; `end` is when it ends or ended."""

    emergency_id: str
    name: str
    territory: Territory
    categories: list[str]
    start: datetime
    end: datetime | None
    declared_by_commune: str
    ended: bool = False
    reason: str = ""


class EmergencyView(BaseModel):
    """An episode as clients see it."""

    id: str
    name: str
    territory: Territory
    categories: list[str]
    start: datetime
    end: datetime | None
    declared_by: str
    declared_by_commune: str
    declared_at: datetime
    ended_at: datetime | None = None
    ended_by: str | None = None
    reason: str = ""


@register
class EmergencyDeclared(Event):
    TYPE = "emergency.declared"
    payload: EmergencySnapshot


@register
class EmergencyEnded(Event):
    TYPE = "emergency.ended"
    payload: EmergencySnapshot


EMERGENCY_EVENTS = (EmergencyDeclared.TYPE, EmergencyEnded.TYPE)


class EmergencyList(BaseModel):
    items: list[EmergencyView]
