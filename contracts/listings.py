"""Listings: what communes lend. RPC schemas of the listings service and its events."""

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
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


# the regions of numbers a French commune answers on: metropolitan France and overseas
FRENCH_REGIONS = frozenset({"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF"})


def phone_e164(value: str) -> str:
    """A French telephone number as written by people ("06 12 34 56 78", "+33 6…") in
    E.164 ("+33612345678"); refused when it is no valid French number."""
    try:
        number = phonenumbers.parse(value, "FR")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise PydanticCustomError("phone_invalid", "not a valid telephone number")
    if phonenumbers.region_code_for_number(number) not in FRENCH_REGIONS:
        raise PydanticCustomError("phone_not_french", "not a French telephone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_national(e164: str) -> str:
    """A stored number as the French read it (\"06 12 34 56 78\")."""
    number = phonenumbers.parse(e164, "FR")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


class Contact(Input):
    """Whom the borrower calls about a loan: a person and at least one way to reach them.
    The number is stored in E.164 (shown in the French national format); the address is
    checked and normalised (no lookup of its domain: communes' mail servers may be slow)."""

    name: Text = Field(min_length=2, max_length=120)
    role: Text = Field(default="", max_length=120, description="e.g. responsable du parc")
    phone: str | None = Field(
        default=None, max_length=40, description="a French number; answered in E.164"
    )
    email: str | None = Field(default=None, max_length=254)

    @field_validator("phone")
    @classmethod
    def _french_number(cls, value: str | None) -> str | None:
        return phone_e164(value) if value else None

    @field_validator("email")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise PydanticCustomError("email_invalid", "{reason}", {"reason": str(exc)}) from None

    @model_validator(mode="after")
    def _reachable(self) -> "Contact":
        if self.phone is None and self.email is None:
            raise PydanticCustomError(
                "contact_unreachable", "a contact needs a telephone number or an e-mail address"
            )
        return self


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
    contact: Contact | None = Field(
        default=None, description="whom a borrower calls about the loan (absent: nobody named)"
    )
    pickup_address: Text = Field(
        default="", max_length=300, description="where the borrower collects and returns it"
    )
    pickup_instructions: Text = Field(
        default="", max_length=2000, description="how: opening hours, gate code, whom to ask"
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
    contact: Contact | None = Field(default=None, description="null removes the contact")
    pickup_address: Text | None = Field(default=None, max_length=300)
    pickup_instructions: Text | None = Field(default=None, max_length=2000)


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


PHOTO_TYPES = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
# photos a listing shows at most
MAX_PHOTOS = 12
# where the gateway serves stored photos: a key's URL is this followed by the key
PHOTO_URL_PREFIX = "/api/v1/photos/"


def photo_url(key: str) -> str:
    return PHOTO_URL_PREFIX + key


def photo_prefix(listing_id: str) -> str:
    """Where a listing's photos are stored (infra.storage keys)."""
    return f"listings/{listing_id}/"


def photo_keys(listing_id: str, digest: str, extension: str) -> tuple[str, str]:
    """The storage keys of a listing's photo and of its thumbnail."""
    return content_keys(photo_prefix(listing_id), digest, extension)


def content_keys(prefix: str, digest: str, extension: str) -> tuple[str, str]:
    """The storage keys of a photo and of its thumbnail under `prefix`: content-addressed
    (the digest of the stored image), so a key's bytes never change and its URL may be cached
    forever."""
    return f"{prefix}{digest}.{extension}", f"{prefix}{digest}-vignette.{extension}"


class PhotoStored(Input):
    """A photo the gateway checked, re-encoded and stored (infra.images, infra.storage): what
    the listings service records of it. Keys are content-addressed: the same bytes, the same
    key."""

    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the stored image")
    key: str = Field(max_length=200)
    thumbnail_key: str = Field(max_length=200)
    content_type: Literal["image/jpeg", "image/png", "image/webp"]
    width: int = Field(ge=1, le=100_000)
    height: int = Field(ge=1, le=100_000)
    size_bytes: int = Field(ge=1, le=100_000_000)

    def is_under(self, prefix: str) -> bool:
        """Whether both keys are this image's under `prefix` (a listing's, a booking's): a
        photo recorded for one never names another's bytes, which its removal would delete."""
        return all(
            key.startswith(prefix) and self.digest in key[len(prefix) :]
            for key in (self.key, self.thumbnail_key)
        )


class Photo(BaseModel):
    """A photo of a listing: its URLs never change content (cache them forever)."""

    id: str
    url: str
    thumbnail_url: str
    content_type: str
    width: int
    height: int
    added_at: datetime


class PickupDetails(BaseModel):
    """What a borrower needs to collect a loan: whom to call, where, how, and what it looks
    like; the bookings service keeps them from the listing's events (its copy) and carries
    them on a booking's page and in booking.approved."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    contact: Contact | None = None
    pickup_address: str = ""
    pickup_instructions: str = ""
    photos: list[Photo] = []


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
    photos: list[Photo] = Field(
        default=[], description="on one listing's answers; empty in search results"
    )
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
    # absent from events written before listings had photos
    photos: list[Photo] = []


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
