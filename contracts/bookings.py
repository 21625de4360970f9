"""Bookings: reservations of listings. RPC schemas of the bookings service and its events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import TypeAliasType

from contracts.caller import Role
from contracts.emergencies import EmergencyView, Need
from contracts.events import Event, Payload, register
from contracts.fields import AsParty, DateOrInstant, Input, Text
from contracts.listings import Photo, PickupDetails


class BookingStatus(StrEnum):
    WAITING = "waiting"  # on the waitlist of a taken slot; holds nothing
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    CHECKED_OUT = "checked_out"
    RETURNED = "returned"


HOLDING = (BookingStatus.REQUESTED, BookingStatus.APPROVED, BookingStatus.CHECKED_OUT)


class Side(StrEnum):
    """Which commune of a booking someone acts for."""

    LENDER = "lender"
    BORROWER = "borrower"


@dataclass(frozen=True)
class Move:
    """One transition of the booking state machine: the action, the statuses it leaves
    from, the one it leads to, and who may take it (a person of one of `sides` with one of
    `roles`; no side at all: only the service itself, on a timer or a freed slot)."""

    action: str
    sources: frozenset[BookingStatus]
    target: BookingStatus
    sides: frozenset[Side] = frozenset()
    roles: frozenset[Role] = frozenset()

    def open_to(self, commune: str, roles: frozenset[Role], borrower: str, lender: str) -> bool:
        """Whether someone of `commune` with `roles` may take this move on a booking
        between `borrower` and `lender`."""
        sides = {Side.LENDER} if commune == lender else set()
        if commune == borrower:
            sides.add(Side.BORROWER)
        return bool(self.sides & sides) and bool(self.roles & roles)


_S = BookingStatus
_LENDERS_MANAGER = {"sides": frozenset({Side.LENDER}), "roles": frozenset({Role.MANAGER})}
# the booking state machine, written once: the service decides with it, pages show it
MOVES: dict[str, Move] = {
    move.action: move
    for move in (
        Move("approve", frozenset({_S.REQUESTED}), _S.APPROVED, **_LENDERS_MANAGER),
        Move("reject", frozenset({_S.REQUESTED}), _S.REJECTED, **_LENDERS_MANAGER),
        Move("check_out", frozenset({_S.APPROVED}), _S.CHECKED_OUT, **_LENDERS_MANAGER),
        Move("return", frozenset({_S.CHECKED_OUT}), _S.RETURNED, **_LENDERS_MANAGER),
        Move(
            "cancel",
            frozenset({_S.WAITING, _S.REQUESTED, _S.APPROVED}),
            _S.CANCELLED,
            sides=frozenset({Side.LENDER, Side.BORROWER}),
            roles=frozenset({Role.AGENT, Role.MANAGER}),
        ),
        # new dates, the status kept: a request by whoever asked for it (an edit before the
        # lender decides), an approved loan by the lender's manager only, before hand-over
        Move(
            "change_dates",
            frozenset({_S.REQUESTED}),
            _S.REQUESTED,
            sides=frozenset({Side.BORROWER}),
            roles=frozenset({Role.AGENT, Role.MANAGER}),
        ),
        Move("reschedule", frozenset({_S.APPROVED}), _S.APPROVED, **_LENDERS_MANAGER),
        # the service's own: a request not decided before its start, a slot freed
        Move("expire", frozenset({_S.WAITING, _S.REQUESTED}), _S.EXPIRED),
        Move("promote", frozenset({_S.WAITING}), _S.REQUESTED),
    )
}


class Recurrence(Input):
    """A series: the same slot every day or every week, `count` times or until a date."""

    frequency: Literal["daily", "weekly"]
    count: int | None = Field(default=None, ge=2, le=52)
    until: date | None = None

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        if (self.count is None) == (self.until is None):
            raise ValueError("give either count or until")
        return self


class BookingRequest(Input):
    listing_id: str = Field(min_length=1, max_length=36)
    start: DateOrInstant
    end: DateOrInstant
    quantity: int = Field(default=1, ge=1, le=1000)
    purpose: str = Field(default="", max_length=1000)
    with_operator: bool = False
    order_reference: str | None = Field(
        default=None, max_length=50, description="the borrower's engagement number, for invoices"
    )
    recurrence: Recurrence | None = None
    wait_if_taken: bool = Field(
        default=False, description="if the slot is taken, join its waitlist instead of a 409"
    )
    need: Need | None = Field(
        default=None,
        description="what the loan is for, when a declared emergency covers the request "
        "(the borrower in its territory, the listing in its categories, the slot during it): "
        "the allocation of scarce units serves the most pressing need first; "
        "`service_continuity` when not given. Ignored outside an emergency.",
    )


class NewDates(Input):
    """A booking moved to other dates: same listing, quantity and operator."""

    start: DateOrInstant
    end: DateOrInstant
    reason: Text = Field(default="", max_length=1000, description="why, shown to the other commune")


class Answer(Input):
    """A borrower's answer to new dates proposed: why it declines (optional)."""

    reason: Text = Field(default="", max_length=1000, description="why, shown to the lender")


class ProposalStatus(StrEnum):
    """What became of new dates the lender proposed: pending the borrower's answer, then
    accepted (applied), declined, withdrawn by the lender, replaced by a newer proposal, or
    lapsed (the loan started, was handed over, cancelled or moved meanwhile)."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    REPLACED = "replaced"
    LAPSED = "lapsed"


class DatesProposal(BaseModel):
    """New dates for an approved loan that would cost the borrower more: the lender's
    manager proposes them, the borrower's manager consents (or not) before they apply."""

    id: str
    start: datetime
    end: datetime
    quote: Quote = Field(description="the loan's quote at these dates, at the rates agreed")
    proposed_by: str
    proposed_by_commune: str
    reason: str = ""
    proposed_at: datetime
    status: ProposalStatus = ProposalStatus.PENDING


class Condition(Input):
    condition: str = Field(min_length=2, max_length=2000)


class Damage(Input):
    description: str = Field(min_length=2, max_length=500)
    amount_cents: int = Field(gt=0, le=100_000_000)
    contest: str | None = Field(
        default=None,
        min_length=3,
        max_length=1000,
        description="the borrower's reserve written into the return report: why its manager, "
        "present at the return, contests this damage. Billing opens a dispute on the damage's "
        "line when it invoices it (shown apart in aging, kept out of nettings until resolved).",
    )


class ReturnReport(Condition):
    damages: list[Damage] = Field(default_factory=list, max_length=50)


class BookingQuery(Input):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    as_: AsParty | None = Field(default=None, alias="as")
    status: BookingStatus | None = None
    listing_id: str | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=100)


class Quote(BaseModel):
    units: int
    pricing_unit: str
    unit_rate_cents: int
    quantity: int
    rental_cents: int
    operator_cents: int
    amount_cents: int
    deposit_cents: int
    currency: str = "EUR"
    # the listing's late fee when booked, part of what the borrower agreed to
    late_fee_per_day_cents: int = 0


class Transition(BaseModel):
    status: BookingStatus
    at: datetime
    by_user: str | None
    by_commune: str | None
    note: str = ""


class Urgency(BaseModel):
    """An urgent request: the episode that covers it, its declared need, and what the
    allocation decided and why (no decision while its window is open)."""

    emergency_id: str
    need: Need
    distance_km: float | None = None
    decided_at: datetime | None = None
    granted: bool | None = None
    position: int | None = None  # in the published order of its allocation window
    explanation: str = ""


# when a photo of a loan's condition was taken: at its hand-over, or at its return
ConditionStage = TypeAliasType(
    "ConditionStage", Literal["check_out", "return"]
)  # named once in the API
# photos of a loan's condition at each stage, at most
MAX_CONDITION_PHOTOS = 12
# when each stage's photos may be added: around the hand-over, around the return (the
# service decides with it, the pages offer the form with it)
CONDITION_PHOTOS_OPEN = {
    "check_out": (BookingStatus.APPROVED, BookingStatus.CHECKED_OUT),
    "return": (BookingStatus.CHECKED_OUT, BookingStatus.RETURNED),
}


def condition_photo_prefix(booking_id: str) -> str:
    """Where a booking's condition photos are stored (infra.storage keys)."""
    return f"bookings/{booking_id}/"


class ConditionPhotoStage(Input):
    """Which stage a photo of the condition shows."""

    stage: ConditionStage = Field(description="`check_out`: at hand-over; `return`: at return")


class ConditionPhoto(Photo):
    """A photo of the condition of what was lent, at its hand-over or its return, by either
    commune (the lender's state report, the borrower's own view when it contests)."""

    stage: ConditionStage
    added_by_commune: str


class BookingView(BaseModel):
    id: str
    listing_id: str
    listing_title: str
    status: BookingStatus
    borrower_commune: str
    lender_commune: str
    start: datetime
    end: datetime
    quantity: int
    purpose: str
    with_operator: bool
    order_reference: str | None
    quote: Quote
    series_id: str | None = None
    condition_out: str | None = None
    condition_in: str | None = None
    damages: list[Damage] = []
    cancellation_fee_cents: int = 0
    checked_out_at: datetime | None = None
    returned_at: datetime | None = None
    overdue: bool = Field(
        default=False, description="handed over and not returned by its end, as of now"
    )
    created_at: datetime
    history: list[Transition] = []
    urgency: Urgency | None = None
    requested_by: str | None = None  # the user who asked (the gateway knows their name)
    pickup: PickupDetails | None = Field(
        default=None,
        description="on one booking's answer: the lender's contact, the pick-up address and "
        "instructions, the listing's photos, as the listing last said them",
    )
    condition_photos: list[ConditionPhoto] = Field(
        default=[], description="on one booking's answer: the condition at hand-over and return"
    )
    agreement_reference: str | None = Field(
        default=None, description="the agreement in force between the two communes covering it"
    )
    agreement_held: bool = Field(
        default=False,
        description="held: its lender requires an agreement and none covers it yet; it is "
        "approved once a one-off agreement is signed by both managers",
    )
    proposal: DatesProposal | None = Field(
        default=None,
        description="new dates the lender's manager proposed for this approved loan that "
        "would cost the borrower more, pending the borrower's manager's answer "
        "(`/reschedule/accept` or `/reschedule/decline`); the loan keeps its dates and quote "
        "meanwhile",
    )

    @field_validator("agreement_held", mode="before")
    @classmethod
    def _not_held_unless_said(cls, value):
        # a row built in memory (not read back) has no value yet: nothing holds it
        return bool(value)


class BookingPage(BaseModel):
    items: list[BookingView]
    next_cursor: str | None


class UrgentRequestsReport(BaseModel):
    """An episode's urgent requests, their state, and the needs left unmet (urgent requests
    refused, rejected or expired, by need, most pressing first), for its coordinators."""

    emergency: EmergencyView
    requests: list[BookingView]
    unmet: dict[Need, int]


class OccurrenceConflict(BaseModel):
    start: datetime
    end: datetime
    detail: str


class BookingCreated(BookingView):
    """The booking requested; for a series, the first one, with every booking created and
    the occurrences that conflicted."""

    created: list[BookingView] = []
    conflicts: list[OccurrenceConflict] = []


class BookingQuote(BaseModel):
    """What a request would cost, and whether it would go through now, without making it."""

    quote: Quote
    problems: list[dict] = []  # the listing's rules it breaks, as 422 field errors
    conflict: str | None = None  # what holds the slot, as a 409 would say
    conflicting_period: dict | None = None


class BookingSnapshot(Payload):
    """What other services need of a booking, billing included: it never has to ask."""

    booking_id: str
    listing_id: str
    listing_title: str
    status: BookingStatus
    lender_commune: str
    borrower_commune: str
    start: datetime
    end: datetime
    quantity: int
    with_operator: bool
    quote: Quote
    order_reference: str | None = None
    cancellation_fee_cents: int = 0
    damages: list[Damage] = []
    reason: str = ""
    # the actual hand-over and return (absent from events written before they were kept)
    checked_out_at: datetime | None = None
    returned_at: datetime | None = None
    days_late: int = 0  # started Paris days after its end when returned (quote's late fee)
    # the user who asked for it (absent from events written before it was announced)
    requested_by: str | None = None
    # the agreement between the two communes that covers it (BT-12 on its invoice)
    agreement_reference: str | None = None
    # in booking.approved: whom to call and where to collect it (the listing's, as kept)
    pickup: PickupDetails | None = None
    # the revision of the loan's dates, its calendar invitation's SEQUENCE: 0 at approval,
    # one more for each move applied and for its cancellation (absent from older events)
    dates_revision: int | None = None


@register
class BookingRequested(Event):
    TYPE = "booking.requested"
    payload: BookingSnapshot


@register
class BookingApproved(Event):
    TYPE = "booking.approved"
    payload: BookingSnapshot


@register
class BookingRejected(Event):
    TYPE = "booking.rejected"
    payload: BookingSnapshot


@register
class BookingCancelled(Event):
    TYPE = "booking.cancelled"
    payload: BookingSnapshot


@register
class BookingExpired(Event):
    TYPE = "booking.expired"
    payload: BookingSnapshot


@register
class BookingCheckedOut(Event):
    TYPE = "booking.checked_out"
    payload: BookingSnapshot


@register
class BookingReturned(Event):
    TYPE = "booking.returned"
    payload: BookingSnapshot


@register
class BookingOverdue(Event):
    """A booking handed over and not returned by its end: sent once per booking."""

    TYPE = "booking.overdue"
    payload: BookingSnapshot


class RescheduledBooking(BookingSnapshot):
    """A booking at its new dates, and the dates it had (its status unchanged)."""

    previous_start: datetime | None = None
    previous_end: datetime | None = None
    # one per move: a booking moved twice is told twice, a move delivered twice once
    rescheduling_id: str | None = None
    moved_by_commune: str | None = None  # the side that moved it; the other one is told
    # the borrower that accepted new dates its lender proposed (they cost it more)
    accepted_by_commune: str | None = None


@register
class BookingRescheduled(Event):
    """A requested or approved booking moved to other dates (re-priced, status kept)."""

    TYPE = "booking.rescheduled"
    payload: RescheduledBooking


class ProposedDates(BookingSnapshot):
    """A loan at its current dates, and the new dates its lender proposed (or the answer)."""

    proposal_id: str
    proposed_start: datetime
    proposed_end: datetime
    proposed_quote: Quote
    proposed_by_commune: str
    answer: str = ""  # the borrower's reason, when it declines


@register
class BookingDatesProposed(Event):
    """New dates that cost the borrower more, proposed by the lender: the borrower's
    managers are asked to accept or decline them."""

    TYPE = "booking.dates_proposed"
    payload: ProposedDates


@register
class BookingDatesDeclined(Event):
    """The borrower declined the new dates its lender proposed: the loan keeps its own."""

    TYPE = "booking.dates_declined"
    payload: ProposedDates


EVENT_OF_STATUS: dict[BookingStatus, type[Event]] = {
    BookingStatus.REQUESTED: BookingRequested,
    BookingStatus.APPROVED: BookingApproved,
    BookingStatus.REJECTED: BookingRejected,
    BookingStatus.CANCELLED: BookingCancelled,
    BookingStatus.EXPIRED: BookingExpired,
    BookingStatus.CHECKED_OUT: BookingCheckedOut,
    BookingStatus.RETURNED: BookingReturned,
}
