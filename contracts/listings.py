"""Listings: what communes lend. RPC schemas of the listings service and its events."""

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from typing_extensions import TypeAliasType

from contracts.events import Event, Payload, register
from contracts.fields import INSEE, DateOrInstant, Input, Instant, Text

CATEGORIES: dict[str, str] = {
    "deneigement": "Déneigement et viabilité hivernale",
    "voirie": "Voirie et travaux publics",
    "espaces-verts": "Espaces verts",
    "proprete": "Propreté urbaine",
    "evenementiel": "Événementiel et festivités",
    "transport": "Transport de personnes",
    "salles": "Salles et espaces",
    "informatique": "Informatique et numérique",
    "sport-loisirs": "Sport et loisirs",
    "culture": "Culture",
    "securite": "Sécurité et signalisation",
    "batiment": "Bâtiment et maintenance",
}


class Kind(StrEnum):
    EQUIPMENT = "equipment"
    VEHICLE = "vehicle"
    SPACE = "space"
    SERVICE = "service"


class PricingUnit(StrEnum):
    DAY = "day"
    HOUR = "hour"


class ListingStatus(StrEnum):
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


# named once in the API's components: a listing's own category types a search's filter
Category = TypeAliasType("Category", Literal[tuple(CATEGORIES)])  # type: ignore[misc]
Cents = int
# a year in hours: a longer minimum or maximum loan is a typo
MAX_DURATION = 8784


class ListingTerms(Input):
    """The fields a manager may set and later change; every one is optional on edit."""

    title: Text = Field(min_length=3, max_length=120)
    description: Text = Field(default="", max_length=5000)
    category: Category
    kind: Kind
    pricing_unit: PricingUnit
    rate_cents: Cents = Field(ge=0, le=100_000_000)
    currency: Literal["EUR"] = "EUR"
    deposit_cents: Cents = Field(default=0, ge=0, le=100_000_000)
    quantity: int = Field(default=1, ge=1, le=1000)
    min_duration: int = Field(default=1, ge=1, le=MAX_DURATION, description="in pricing units")
    max_duration: int | None = Field(
        default=None, ge=1, le=MAX_DURATION, description="in pricing units"
    )
    lead_time_days: int = Field(default=0, ge=0, le=365)
    with_operator: bool = False
    operator_rate_cents: Cents = Field(default=0, ge=0, le=100_000_000)
    cancellation_notice_days: int = Field(
        default=0,
        ge=0,
        le=365,
        description="a cancellation later than this before start pays the fee",
    )
    late_cancellation_fee_cents: Cents = Field(default=0, ge=0, le=100_000_000)
    early_pickup: bool = Field(
        default=False, description="may be handed over the day before the first booked day"
    )
    late_fee_per_day_cents: Cents = Field(
        default=0,
        ge=0,
        le=100_000_000,
        description="charged at return for each started day (Europe/Paris) after the end",
    )
    rules: Text = Field(default="", max_length=5000)
    auto_approve_in_emergencies: bool = Field(
        default=False,
        description="during a declared emergency, urgent requests granted by the allocation "
        "are approved without waiting for the manager",
    )

    @field_validator("max_duration")
    @classmethod
    def _durations_ordered(cls, value: int | None, info: ValidationInfo) -> int | None:
        minimum = info.data.get("min_duration")
        if value is not None and minimum is not None and value < minimum:
            raise ValueError("max_duration must be at least min_duration")
        return value


class ListingDraft(ListingTerms):
    """What a manager sends to publish a listing; the owner is the caller's commune."""


class ListingChanges(Input):
    """A partial edit: only the fields sent change."""

    title: Text | None = Field(default=None, min_length=3, max_length=120)
    description: Text | None = Field(default=None, max_length=5000)
    category: Category | None = None
    kind: Kind | None = None
    pricing_unit: PricingUnit | None = None
    rate_cents: Cents | None = Field(default=None, ge=0, le=100_000_000)
    deposit_cents: Cents | None = Field(default=None, ge=0, le=100_000_000)
    quantity: int | None = Field(default=None, ge=1, le=1000)
    min_duration: int | None = Field(default=None, ge=1, le=MAX_DURATION)
    max_duration: int | None = Field(default=None, ge=1, le=MAX_DURATION)
    lead_time_days: int | None = Field(default=None, ge=0, le=365)
    with_operator: bool | None = None
    operator_rate_cents: Cents | None = Field(default=None, ge=0, le=100_000_000)
    cancellation_notice_days: int | None = Field(default=None, ge=0, le=365)
    late_cancellation_fee_cents: Cents | None = Field(default=None, ge=0, le=100_000_000)
    early_pickup: bool | None = None
    late_fee_per_day_cents: Cents | None = Field(default=None, ge=0, le=100_000_000)
    rules: Text | None = Field(default=None, max_length=5000)
    auto_approve_in_emergencies: bool | None = None


class BlackoutDraft(Input):
    start: Instant
    end: Instant
    reason: Text = Field(default="", max_length=500)

    @field_validator("end")
    @classmethod
    def _ordered(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("end must be after start")
        return value


class ListingQuery(Input):
    q: str | None = Field(default=None, max_length=200)
    category: Category | None = None
    kind: Kind | None = None
    near: str | None = Field(default=None, pattern=INSEE, description="INSEE code")
    radius_km: float | None = Field(
        default=None, gt=0, le=200, description="neighbours: at most 200 km"
    )
    available_from: DateOrInstant | None = None
    available_to: DateOrInstant | None = Field(default=None, validate_default=True)
    max_rate_cents: Cents | None = Field(default=None, ge=0, le=100_000_000)
    owner: str | None = Field(default=None, pattern=INSEE)
    sort: Literal["distance", "price", "available"] | None = Field(
        default=None,
        description="`price`: cheapest first, the `near` commune's own listings before the "
        "others; `available`: free soonest first, each with `earliest_available`, the "
        "earliest start from today 00:00 (Europe/Paris) of a slot as long as the period "
        "asked (`available_from` to `available_to`; without them, one day) that no blackout "
        "touches and bookings leave a unit of free, looked for up to 366 days ahead "
        "(listings with none come last); by default nearest first with `near`, else newest "
        "first",
    )
    count: bool = Field(
        default=False,
        description="also say how many listings match on every page (`count`, exact up to "
        "500; beyond, 500 with `count_exact: false`) and, when exact, how they divide "
        "(`facets`)",
    )
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=300)

    @field_validator("radius_km")
    @classmethod
    def _needs_near(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and "near" in info.data and info.data["near"] is None:
            raise ValueError("radius_km needs near")
        return value

    @field_validator("available_to")
    @classmethod
    def _both_ends(cls, value: date | None, info: ValidationInfo) -> date | None:
        if "available_from" in info.data and (info.data["available_from"] is None) != (
            value is None
        ):
            raise ValueError("available_from and available_to go together")
        return value


class AvailabilityQuery(Input):
    start: DateOrInstant
    end: DateOrInstant


class Period(BaseModel):
    start: datetime
    end: datetime


class Blackout(Period):
    id: str
    reason: str


class ListingView(ListingTerms):
    """A listing as clients see it."""

    model_config = ConfigDict(extra="ignore")

    id: str
    owner_commune: str
    owner_commune_name: str
    status: ListingStatus
    revision: int
    created_at: datetime
    updated_at: datetime
    blackouts: list[Blackout] = []
    distance_km: float | None = None
    earliest_available: datetime | None = Field(
        default=None, description="with `sort=available`: when it is free soonest (see there)"
    )


class ListingFacets(BaseModel):
    """How the listings matching a search divide (all of them, not the page's)."""

    category: dict[str, int]
    kind: dict[str, int]
    owner_commune: dict[str, int] = Field(description="INSEE code -> listings, most first")
    with_operator: int = Field(description="listings offered with a driver or an operator")


class ListingPage(BaseModel):
    items: list[ListingView]
    next_cursor: str | None
    count: int | None = Field(default=None, description="with `count=true`: matches in all")
    count_exact: bool | None = Field(
        default=None, description="false: more than `count` listings match"
    )
    facets: ListingFacets | None = Field(
        default=None, description="with `count=true` and `count_exact`: the matches divided"
    )


class Availability(BaseModel):
    listing_id: str
    quantity: int
    busy: list[Period]
    free: list[Period]


class ListingSnapshot(Payload, ListingTerms):
    """Everything other services keep of a listing; `revision` orders snapshots."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    listing_id: str
    owner_commune: str
    status: ListingStatus
    revision: int
    blackouts: list[Blackout] = []


@register
class ListingPublished(Event):
    TYPE = "listing.published"
    payload: ListingSnapshot


@register
class ListingUpdated(Event):
    TYPE = "listing.updated"
    payload: ListingSnapshot


@register
class ListingWithdrawn(Event):
    TYPE = "listing.withdrawn"
    payload: ListingSnapshot
