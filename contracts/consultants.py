"""Consultants: expert staff lent by the day. RPC schemas of the consultants service and
its events (billing charges from `engagement.timesheet_approved`; the borrower is told of
days to approve by `engagement.timesheet_recorded`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from contracts.caller import Role
from contracts.events import Event, Payload, register
from contracts.fields import INSEE, AsParty, Day, Input, Text, within_years

HALF = Decimal("0.5")
LONGEST_PERIOD_DAYS = 366  # an engagement, or a need's period: a year at most


def _half_days(value: Decimal) -> Decimal:
    if value % HALF != 0:
        raise PydanticCustomError("half_days", "Days are counted in whole or half days")
    return value.quantize(Decimal("0.1"))


# whole or half days, exact (a Decimal, never a float)
Days = Annotated[Decimal, Field(gt=0, le=366, allow_inf_nan=False), AfterValidator(_half_days)]
Cents = int


class _Ordered(Input):
    """A half-open period of days [start, end)."""

    start: Day
    end: Day = Field(description="the first day after the period (half-open)")

    @field_validator("end")
    @classmethod
    def _after_start(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("end must be after start")
        return value


# -- profiles ---------------------------------------------------------------------------


class ConsultantStatus(StrEnum):
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class AvailabilityKind(StrEnum):
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"


class AvailabilityPeriod(_Ordered):
    """With any `available` period, the consultant is lent only inside those periods;
    without, on every working day. `unavailable` periods are always taken out."""

    kind: AvailabilityKind
    note: str = Field(default="", max_length=300)


Skills = Annotated[list[Annotated[str, Field(min_length=1, max_length=80)]], Field(max_length=20)]
Languages = Annotated[
    list[Annotated[str, Field(pattern=r"^[a-z]{2}$")]],
    Field(max_length=10, description="ISO 639-1 codes, e.g. fr, en, it"),
]


class ConsultantTerms(Input):
    """What a manager says of a staff expert; skills are names or ids of the vocabulary
    (`GET /api/v1/consultants/skills`)."""

    name: Text = Field(min_length=2, max_length=120)
    title: Text = Field(min_length=3, max_length=160)
    skills: Skills = Field(min_length=1)
    bio: Text = Field(default="", max_length=5000)
    languages: Languages = Field(default_factory=lambda: ["fr"])
    day_rate_cents: Cents = Field(ge=0, le=10_000_000)
    currency: Literal["EUR"] = "EUR"
    max_days_per_month: int = Field(
        ge=1, le=23, description="at most this many days a month lent to other communes"
    )


class ConsultantDraft(ConsultantTerms):
    """What a manager sends to publish a consultant; the home commune is the caller's."""

    availability: list[AvailabilityPeriod] = Field(default_factory=list, max_length=100)


class ConsultantChanges(Input):
    """A partial edit: only the fields sent change."""

    name: Text | None = Field(default=None, min_length=2, max_length=120)
    title: Text | None = Field(default=None, min_length=3, max_length=160)
    skills: Skills | None = Field(default=None, min_length=1)
    bio: Text | None = Field(default=None, max_length=5000)
    languages: Languages | None = None
    day_rate_cents: Cents | None = Field(default=None, ge=0, le=10_000_000)
    max_days_per_month: int | None = Field(default=None, ge=1, le=23)


class AvailabilityChange(Input):
    """Periods added to a consultant's calendar, or replacing it with `replace`."""

    periods: list[AvailabilityPeriod] = Field(max_length=100)
    replace: bool = Field(default=False, description="drop the periods already recorded")

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not self.periods and not self.replace:
            raise ValueError("give periods, or replace with none to clear the calendar")
        return self


class RecordedPeriod(AvailabilityPeriod):
    id: str


class SkillView(BaseModel):
    id: str
    label: str
    domain: str
    synonyms: list[str] = []
    related: list[str] = []


class SkillList(BaseModel):
    items: list[SkillView]


class ConsultantView(ConsultantTerms):
    """A consultant as clients see it; `skills` are vocabulary ids."""

    model_config = ConfigDict(extra="ignore")

    id: str
    home_commune: str
    home_commune_name: str
    skill_labels: list[str] = []
    status: ConsultantStatus
    revision: int
    availability: list[RecordedPeriod] = []
    created_at: datetime
    updated_at: datetime


class ConsultantSnapshot(Payload):
    """What other services may keep of a consultant; `revision` orders snapshots."""

    consultant_id: str
    home_commune: str
    name: str
    title: str
    skills: list[str]
    languages: list[str]
    day_rate_cents: int
    currency: str = "EUR"
    max_days_per_month: int
    status: ConsultantStatus
    revision: int


@register
class ConsultantPublished(Event):
    TYPE = "consultant.published"
    payload: ConsultantSnapshot


@register
class ConsultantUpdated(Event):
    TYPE = "consultant.updated"
    payload: ConsultantSnapshot


@register
class ConsultantWithdrawn(Event):
    TYPE = "consultant.withdrawn"
    payload: ConsultantSnapshot


# -- matching ---------------------------------------------------------------------------


class MatchQuery(Input):
    """A need to staff. `from`/`to` are days, `to` included; `days` needs them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    need: str | None = Field(default=None, max_length=1000, description="free text, French")
    skills: list[Annotated[str, Field(min_length=1, max_length=80)]] = Field(
        default_factory=list, max_length=10, description="required skills, comma-separated"
    )
    near: str | None = Field(
        default=None, pattern=INSEE, description="INSEE code; default the caller's commune"
    )
    from_: Day | None = Field(default=None, alias="from")
    to: Day | None = Field(
        default=None, validate_default=True, description="the last day of the period (included)"
    )
    days: Days | None = Field(default=None, description="days needed within the period")
    max_day_rate_cents: Cents | None = Field(default=None, ge=0, le=10_000_000)
    only_fitting: bool = Field(
        default=False, description="leave out who is unavailable or above the ceiling"
    )
    limit: int = Field(default=10, ge=1, le=50)

    @field_validator("skills", mode="before")
    @classmethod
    def _comma_separated(cls, value):
        if isinstance(value, str):
            return [part for part in value.split(",") if part.strip()]
        return value

    @field_validator("to")
    @classmethod
    def _period(cls, value: date | None, info: ValidationInfo) -> date | None:
        if "from_" not in info.data:  # `from` itself is invalid, and said so
            return value
        start = info.data["from_"]
        if (start is None) != (value is None):
            raise ValueError("from and to go together")
        if start is not None and value < start:
            raise ValueError("must not be before from")
        if start is not None and (value - start).days >= LONGEST_PERIOD_DAYS:
            raise ValueError(f"a period is at most {LONGEST_PERIOD_DAYS} days")
        return value

    @field_validator("days")
    @classmethod
    def _within_a_period(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if value is not None and info.data.get("from_") is None and "from_" in info.data:
            raise ValueError("days needs a period (from and to)")
        return value


class SkillMatch(BaseModel):
    skill: str
    via: Literal["direct", "related"]
    through: str  # the consultant's skill that covers it


class SkillCoverage(BaseModel):
    asked: list[str]  # what coverage is measured against: required, else inferred
    required: list[str]
    inferred: list[str]  # recognised in the need's text
    matched: list[SkillMatch]
    missing: list[str]
    coverage: float | None  # None: no skill asked or recognised


class TextRelevance(BaseModel):
    score: float  # BM25, relative to the best candidate (1.0)
    bm25: float
    matched_terms: list[str]  # the analysed terms (folded, stemmed)
    matched_words: list[str] = Field(
        default=[], description="the need's words that matched, as the person wrote them"
    )


class AvailabilityFit(BaseModel):
    asked: bool
    start: date | None = None
    end: date | None = None  # included
    working_days: int | None = None
    days_needed: Decimal | None = None
    available_days: Decimal | None = None
    fits: bool = True
    score: float | None = None


class RateFit(BaseModel):
    day_rate_cents: int
    max_day_rate_cents: int | None
    within: bool
    score: float | None


class Explanation(BaseModel):
    skills: SkillCoverage
    text: TextRelevance
    distance_km: float | None
    availability: AvailabilityFit
    rate: RateFit
    components: dict[str, float]  # each component's score in [0, 1]
    weights: dict[str, float]  # of the components that counted, summing to 1
    summary: str


class Match(BaseModel):
    consultant: ConsultantView
    score: float
    fits: bool
    explanation: Explanation


class MatchPage(BaseModel):
    items: list[Match]
    candidates: int  # how many consultants were relevant to the need
    near: str
    need_terms: list[str]  # the need's words as they were matched (folded, stemmed)


# -- engagements ------------------------------------------------------------------------


class EngagementStatus(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    EXPIRED = "expired"  # not decided in time (the consultants service's expiry delay)


class TimesheetStatus(StrEnum):
    RECORDED = "recorded"  # to approve (again, once a rejected one is corrected)
    APPROVED = "approved"
    REJECTED = "rejected"  # with the borrower's reason, for the lender to correct


class EngagementAction(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    CANCEL = "cancel"
    COMPLETE = "complete"
    EXPIRE = "expire"
    RECORD_TIMESHEET = "record_timesheet"
    APPROVE_TIMESHEET = "approve_timesheet"
    REJECT_TIMESHEET = "reject_timesheet"
    CORRECT_TIMESHEET = "correct_timesheet"


class EngagementParty(StrEnum):
    """Which of the two communes concerned takes an action."""

    LENDER = "lender"  # the consultant's home commune
    BORROWER = "borrower"  # the commune that engaged them
    EITHER = "either"

    def includes(self, commune: str, borrower: str, lender: str) -> bool:
        if self is EngagementParty.LENDER:
            return commune == lender
        if self is EngagementParty.BORROWER:
            return commune == borrower
        return commune in (borrower, lender)


@dataclass(frozen=True)
class EngagementStep:
    """An action on an engagement: taken from one of `sources`, it moves the engagement to
    `target` (None: the status stays, the action is on its timesheets), by a member of
    `party` holding one of `roles`."""

    sources: frozenset[EngagementStatus]
    target: EngagementStatus | None
    party: EngagementParty
    roles: frozenset[Role]

    def open_to(self, commune: str, roles: Iterable[Role], borrower: str, lender: str) -> bool:
        """Whether someone of `commune` with `roles` may take it (whatever the status)."""
        return self.party.includes(commune, borrower, lender) and bool(self.roles & set(roles))

    def allowed(
        self, status: str, commune: str, roles: Iterable[Role], borrower: str, lender: str
    ) -> bool:
        """Whether someone of `commune` with `roles` may take it now, from `status`."""
        return status in self.sources and self.open_to(commune, roles, borrower, lender)


_S, _P = EngagementStatus, EngagementParty
_DECIDERS = frozenset({Role.MANAGER})
_PARTIES = frozenset({Role.AGENT, Role.MANAGER})
# the engagement state machine, written once: the service decides with it, the pages show
# the actions it leaves open
ENGAGEMENT_STEPS: dict[EngagementAction, EngagementStep] = {
    EngagementAction.ACCEPT: EngagementStep(
        frozenset({_S.REQUESTED}), _S.ACCEPTED, _P.LENDER, _DECIDERS
    ),
    EngagementAction.REJECT: EngagementStep(
        frozenset({_S.REQUESTED}), _S.REJECTED, _P.LENDER, _DECIDERS
    ),
    EngagementAction.CANCEL: EngagementStep(
        frozenset({_S.REQUESTED, _S.ACCEPTED}), _S.CANCELLED, _P.EITHER, _PARTIES
    ),
    EngagementAction.COMPLETE: EngagementStep(
        frozenset({_S.ACCEPTED}), _S.COMPLETED, _P.EITHER, _PARTIES
    ),
    # taken by the service's timer once a request waited too long, by no person
    EngagementAction.EXPIRE: EngagementStep(
        frozenset({_S.REQUESTED}), _S.EXPIRED, _P.EITHER, frozenset()
    ),
    EngagementAction.RECORD_TIMESHEET: EngagementStep(
        frozenset({_S.ACCEPTED}), None, _P.LENDER, _PARTIES
    ),
    # days recorded are approved (or rejected) whatever became of the engagement since
    EngagementAction.APPROVE_TIMESHEET: EngagementStep(frozenset(_S), None, _P.BORROWER, _PARTIES),
    EngagementAction.REJECT_TIMESHEET: EngagementStep(frozenset(_S), None, _P.BORROWER, _PARTIES),
    EngagementAction.CORRECT_TIMESHEET: EngagementStep(
        frozenset({_S.ACCEPTED}), None, _P.LENDER, _PARTIES
    ),
}


@dataclass(frozen=True)
class TimesheetStep:
    """What an action on days worked does to one timesheet: from one of `sources` to
    `target`. Who takes it, and on which engagements, is its ENGAGEMENT_STEPS entry."""

    sources: frozenset[TimesheetStatus]
    target: TimesheetStatus


_T = TimesheetStatus
# the timesheet state machine: recorded, then approved (charged) or rejected with a reason;
# the lender corrects a rejected one, which is then to approve again
TIMESHEET_STEPS: dict[EngagementAction, TimesheetStep] = {
    EngagementAction.APPROVE_TIMESHEET: TimesheetStep(frozenset({_T.RECORDED}), _T.APPROVED),
    EngagementAction.REJECT_TIMESHEET: TimesheetStep(frozenset({_T.RECORDED}), _T.REJECTED),
    EngagementAction.CORRECT_TIMESHEET: TimesheetStep(frozenset({_T.REJECTED}), _T.RECORDED),
}


class EngagementRequest(_Ordered):
    consultant_id: str = Field(min_length=1, max_length=36)

    @field_validator("end")
    @classmethod
    def _at_most_a_year(cls, value: date, info: ValidationInfo) -> date:
        start = info.data.get("start")
        if start is not None and (value - start).days > LONGEST_PERIOD_DAYS:
            raise ValueError(f"an engagement lasts at most {LONGEST_PERIOD_DAYS} days")
        return value

    days: Days = Field(description="days of work within [start, end), whole or half")
    mission: str = Field(min_length=3, max_length=2000)
    order_reference: str | None = Field(
        default=None, max_length=50, description="the requester's engagement number, for invoices"
    )


class TimesheetCorrection(Input):
    """What the consultant's commune says of days worked on one date: at most one day a
    person across all their engagements; a weekend or public holiday only as exceptional
    work, with its reason. Also what corrects a rejected timesheet (its date stays)."""

    days: Days
    note: str = Field(default="", max_length=1000)
    exceptional_work: bool = Field(
        default=False, description="work on a weekend or public holiday, said on purpose"
    )
    exceptional_reason: Text | None = Field(
        default=None,
        validate_default=True,
        max_length=300,
        description="why the work could not wait for a working day (with exceptional_work)",
    )

    @field_validator("exceptional_reason")
    @classmethod
    def _with_the_flag(cls, value: str | None, info: ValidationInfo) -> str | None:
        flagged = info.data.get("exceptional_work", False)
        if flagged and (value is None or len(value) < 3):
            raise PydanticCustomError(
                "exceptional_reason_required", "exceptional work needs its reason (3 characters+)"
            )
        if not flagged and value:
            raise PydanticCustomError(
                "exceptional_work_not_flagged", "a reason goes with exceptional_work: true"
            )
        return value or None


class TimesheetEntry(TimesheetCorrection):
    """Days worked, reported on `date` (within the engagement, not in the future)."""

    date: dt.date = Field(description="the day the work is reported for")

    @field_validator("date")
    @classmethod
    def _year(cls, value: dt.date) -> dt.date:
        return within_years(value)


class EngagementQuery(Input):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    as_: AsParty | None = Field(default=None, alias="as")
    status: EngagementStatus | None = None
    consultant_id: str | None = Field(default=None, max_length=36)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=100)


class EngagementTransition(BaseModel):
    status: EngagementStatus
    at: datetime
    by_user: str | None
    by_commune: str | None
    note: str = ""


class TimesheetView(BaseModel):
    id: str
    date: dt.date
    days: Decimal
    status: TimesheetStatus
    note: str
    amount_cents: int
    exceptional_reason: str | None = None  # set: exceptional work on a non-working day
    recorded_at: datetime
    recorded_by: str
    approved_at: datetime | None
    approved_by: str | None
    rejection_reason: str | None = None  # the last rejection's, kept once corrected
    rejected_at: datetime | None = None
    rejected_by: str | None = None


class OfficialConsent(Input):
    """The lent official's consent, which the lender's manager records when accepting: a
    member of staff is lent only with their agreement (statut de la fonction publique), so
    an engagement cannot be accepted without it."""

    given_on: dt.date = Field(description="the day the consultant consented (not in the future)")
    note: Text = Field(
        default="", max_length=500, description="how it was given, e.g. 'accord écrit du 3 mars'"
    )

    @field_validator("given_on")
    @classmethod
    def _year(cls, value: dt.date) -> dt.date:
        return within_years(value)


class Acceptance(Input):
    """What accepting an engagement says: the official's consent."""

    consent: OfficialConsent


class ConsentView(BaseModel):
    official: str  # the consultant who consented
    given_on: date
    note: str
    recorded_by: str  # the lender's manager who recorded it
    recorded_at: datetime


class AgreementCover(BaseModel):
    """The agreement in force between the two communes that covers an engagement's staff."""

    agreement_id: str
    reference: str  # printed on invoices (BT-12)
    title: str
    parties: list[str]  # INSEE codes
    starts_on: date
    ends_on: date | None


class EngagementView(BaseModel):
    id: str
    consultant_id: str
    consultant_name: str
    status: EngagementStatus
    lender_commune: str  # the consultant's home commune
    borrower_commune: str
    start: date
    end: date
    days: Decimal
    mission: str
    order_reference: str | None
    day_rate_cents: int
    amount_cents: int  # days × day rate, the planned cost
    currency: str = "EUR"
    days_recorded: Decimal
    days_approved: Decimal
    timesheets: list[TimesheetView] = []
    created_at: datetime
    history: list[EngagementTransition] = []
    requested_by: str | None = None  # the user who asked (the gateway knows their name)
    consent: ConsentView | None = None  # recorded at acceptance
    # the agreement in force covering the whole period, if any (read model of agreement.*)
    agreement: AgreementCover | None = None


class EngagementPage(BaseModel):
    items: list[EngagementView]
    next_cursor: str | None


class EngagementSnapshot(Payload):
    """What other services need of an engagement at each of its transitions."""

    engagement_id: str
    consultant_id: str
    consultant_name: str
    status: EngagementStatus
    lender_commune: str
    borrower_commune: str
    start: date
    end: date
    days: Decimal
    day_rate_cents: int
    currency: str = "EUR"
    mission: str = ""
    order_reference: str | None = None
    days_approved: Decimal = Decimal(0)
    reason: str = ""


@register
class EngagementRequested(Event):
    TYPE = "engagement.requested"
    payload: EngagementSnapshot


@register
class EngagementAccepted(Event):
    TYPE = "engagement.accepted"
    payload: EngagementSnapshot


@register
class EngagementRejected(Event):
    TYPE = "engagement.rejected"
    payload: EngagementSnapshot


@register
class EngagementCancelled(Event):
    TYPE = "engagement.cancelled"
    payload: EngagementSnapshot


@register
class EngagementCompleted(Event):
    TYPE = "engagement.completed"
    payload: EngagementSnapshot


@register
class EngagementExpired(Event):
    TYPE = "engagement.expired"
    payload: EngagementSnapshot


EVENT_OF_STATUS: dict[EngagementStatus, type[Event]] = {
    EngagementStatus.REQUESTED: EngagementRequested,
    EngagementStatus.ACCEPTED: EngagementAccepted,
    EngagementStatus.REJECTED: EngagementRejected,
    EngagementStatus.CANCELLED: EngagementCancelled,
    EngagementStatus.COMPLETED: EngagementCompleted,
    EngagementStatus.EXPIRED: EngagementExpired,
}


# -- timesheets (what billing charges) ---------------------------------------------------


class RecordedTimesheet(Payload):
    """Days worked the consultant's commune recorded (or corrected after a rejection): for
    the requesting commune to approve."""

    engagement_id: str
    timesheet_id: str
    # one recording of the days: a correction is a new one (the notice's cause)
    recording: str
    consultant_id: str
    consultant_name: str
    lender_commune: str
    borrower_commune: str
    work_date: date
    days: Decimal
    note: str = ""
    corrected: bool = False  # recorded again after a rejection


@register
class EngagementTimesheetRecorded(Event):
    TYPE = "engagement.timesheet_recorded"
    payload: RecordedTimesheet


class TimesheetApproval(Payload):
    """Days worked that the requesting commune approved: what billing charges, as it is."""

    engagement_id: str
    timesheet_id: str
    consultant_id: str
    consultant_name: str
    lender_commune: str  # the consultant's home commune, who invoices
    borrower_commune: str  # the commune that engaged them, who pays
    work_date: date
    days: Decimal  # whole or half days
    day_rate_cents: int
    amount_cents: int  # days × day rate, rounded half up to the cent
    currency: str = "EUR"
    mission: str = ""
    order_reference: str | None = None
    # the agreement between the two communes that covers it (BT-12 on its invoice)
    agreement_reference: str | None = None


@register
class EngagementTimesheetApproved(Event):
    TYPE = "engagement.timesheet_approved"
    payload: TimesheetApproval


class RejectedTimesheet(Payload):
    """Days worked the requesting commune rejected, and why: for the lender to correct."""

    engagement_id: str
    timesheet_id: str
    consultant_id: str
    consultant_name: str
    lender_commune: str
    borrower_commune: str
    work_date: date
    days: Decimal
    reason: str


@register
class EngagementTimesheetRejected(Event):
    TYPE = "engagement.timesheet_rejected"
    payload: RejectedTimesheet
