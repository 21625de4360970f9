"""Engagements: their state machine (the steps in contracts.consultants), who may act on
them, and the rules of requests, acceptances, timesheets and completion."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from contracts.caller import Caller, Role
from contracts.consultants import (
    ENGAGEMENT_STEPS,
    TIMESHEET_STEPS,
    EngagementAction,
    EngagementStatus,
    TimesheetStatus,
)
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from contracts.errors import field_error as _error
from services.consultants.domain.commitments import (
    Commitment,
    commitments_fit,
    entangled,
    free_half_days,
)
from services.consultants.domain.working_days import (
    Calendar,
    Period,
    as_days,
    day_in_words,
    half_days,
    why_not_working,
)

ONE_DAY = Decimal(1)  # what one person works on one date, across all their engagements


def amount_cents(days: Decimal, day_rate_cents: int) -> int:
    """Days × day rate, rounded half up to the cent."""
    return int((days * day_rate_cents).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- the state machine and who moves it ---------------------------------------------------

E = EngagementStatus
A = EngagementAction
# statuses whose days are held in the consultant's calendar
RESERVING = (E.ACCEPTED, E.COMPLETED)
# what a caller is told when refused an action: lacking the role, not of the right commune
_REFUSALS: dict[EngagementAction, tuple[str, str]] = {
    A.ACCEPT: ("Only a manager of the consultant's commune may do this",) * 2,
    A.REJECT: ("Only a manager of the consultant's commune may do this",) * 2,
    A.CANCEL: (
        "Only an agent or a manager may do this",
        "Only the two communes concerned may do this",
    ),
    A.COMPLETE: (
        "Only an agent or a manager may do this",
        "Only the two communes concerned may do this",
    ),
    A.EXPIRE: ("Requests expire by themselves, once left undecided",) * 2,
    A.RECORD_TIMESHEET: (
        "Only an agent or a manager may do this",
        "Only the consultant's commune records the days worked",
    ),
    A.APPROVE_TIMESHEET: (
        "Only an agent or a manager may do this",
        "Only the commune that engaged the consultant approves the days",
    ),
    A.REJECT_TIMESHEET: (
        "Only an agent or a manager may do this",
        "Only the commune that engaged the consultant rejects the days",
    ),
    A.CORRECT_TIMESHEET: (
        "Only an agent or a manager may do this",
        "Only the consultant's commune corrects the days worked",
    ),
}


def next_status(current: EngagementStatus, action: str) -> EngagementStatus:
    step = ENGAGEMENT_STEPS[EngagementAction(action)]
    if current not in step.sources or step.target is None:
        raise Conflict(f"A {current.value} engagement cannot {action}", current_status=current)
    return step.target


def moves_held_days(current: EngagementStatus, target: EngagementStatus) -> bool:
    """Whether a transition changes the days the consultant's calendar holds (matching
    must then see the consultant again)."""
    return current in RESERVING or target in RESERVING


def ensure_party(caller: Caller, borrower: str, lender: str) -> None:
    """Only the two communes concerned see an engagement: to others it does not exist."""
    if caller.commune not in (borrower, lender) and not caller.has(Role.OPERATOR):
        raise NotFound("No such engagement")


def ensure_may(caller: Caller, action: str, borrower: str, lender: str) -> None:
    ensure_party(caller, borrower, lender)
    step = ENGAGEMENT_STEPS[EngagementAction(action)]
    lacks_role, not_theirs = _REFUSALS[EngagementAction(action)]
    if not caller.has(*step.roles):
        raise Forbidden(lacks_role)
    if not step.party.includes(caller.commune, borrower, lender):
        raise Forbidden(not_theirs)


def ensure_may_request(caller: Caller) -> None:
    if not caller.has(Role.AGENT, Role.MANAGER):
        raise Forbidden("Only an agent or a manager may request an engagement")


def unknown_consultant() -> InvalidInput:
    """A request for a consultant the caller cannot see (none, or another commune's
    withdrawn one)."""
    return InvalidInput(
        "Unknown consultant",
        [_error("consultant_id", "no such consultant", "unknown_consultant")],
    )


def check_request(
    *,
    published: bool,
    home_commune: str,
    borrower: str,
    start: date,
    end: date,
    days: Decimal,
    calendar: Calendar,
    today: date,
) -> None:
    """An engagement request's own rules; every broken one is reported at once (422)."""
    errors = []
    if not published:
        errors.append(_error("consultant_id", "this consultant is withdrawn", "withdrawn"))
    if home_commune == borrower:
        errors.append(
            _error("consultant_id", "a commune does not engage its own staff", "own_consultant")
        )
    if start < today:
        errors.append(_error("start", "is in the past", "in_the_past"))
    open_days = calendar.open_days(start, end)
    if days > open_days:
        errors.append(
            _error(
                "days",
                f"the consultant has {open_days} working day(s) open in this period",
                "beyond_period",
            )
        )
    if errors:
        raise InvalidInput("The request breaks the engagement rules", errors)


def ensure_days_free(
    calendar: Calendar,
    max_days_per_month: int,
    held: Sequence[Commitment],
    span: Period,
    days: Decimal,
) -> None:
    """A request asks for days that are still free. Requests hold nothing: this only spares
    asking for days that are not there (409)."""
    _, free = free_half_days(calendar, max_days_per_month, entangled(held, span), span)
    if free < half_days(days):
        raise not_enough_days(span, free)


def check_accept(
    current: EngagementStatus,
    *,
    published: bool,
    calendar: Calendar,
    max_days_per_month: int,
    held: Sequence[Commitment],
    engagement: Commitment,
    today: date,
) -> EngagementStatus:
    """The status an acceptance moves the engagement to: the consultant's commune commits
    the days only while the consultant is published, before the period is over, and if
    they fit with every other commitment (409)."""
    target = next_status(current, A.ACCEPT)
    if not published:
        raise Conflict("This consultant is withdrawn")
    if today >= engagement.end:
        raise Conflict("The engagement's period is over")
    span = Period(engagement.start, engagement.end)
    if not commitments_fit(calendar, max_days_per_month, entangled([*held, engagement], span)):
        _, free = free_half_days(calendar, max_days_per_month, entangled(held, span), span)
        raise not_enough_days(span, free)
    return target


def not_enough_days(span: Period, free: int) -> Conflict:
    return Conflict(
        f"The consultant has {as_days(free)} day(s) free between {span.start.isoformat()} and "
        f"{(span.end - timedelta(days=1)).isoformat()}: their calendar, monthly maximum and "
        f"engagements already accepted leave no more",
        available_days=str(as_days(free)),
    )


def check_cancellable(start: date, today: date) -> None:
    if today >= start:
        raise Conflict("An engagement can only be cancelled before it starts")


def check_transition(
    action: str,
    current: EngagementStatus,
    *,
    start: date,
    today: date,
    timesheets: Iterable[TimesheetStatus],
) -> EngagementStatus:
    """The status a reject, cancel or complete moves the engagement to, if its rules
    allow: a cancellation before the start, a completion once every day worked is
    approved."""
    target = next_status(current, action)
    if action == A.CANCEL:
        check_cancellable(start, today)
    if action == A.COMPLETE and any(s != TimesheetStatus.APPROVED for s in timesheets):
        raise Conflict("Some days worked are not approved yet")
    return target


def next_timesheet_status(current: TimesheetStatus, action: str) -> TimesheetStatus:
    """What approving, rejecting or correcting days worked makes of them (TIMESHEET_STEPS):
    recorded days are approved or rejected once, rejected ones corrected (409 otherwise)."""
    step = TIMESHEET_STEPS[EngagementAction(action)]
    if current not in step.sources:
        if current == TimesheetStatus.APPROVED:
            raise Conflict("These days are already approved", current_status=current)
        done = {A.APPROVE_TIMESHEET: "approved", A.REJECT_TIMESHEET: "rejected"}
        raise Conflict(
            f"Days {current.value} cannot be {done.get(EngagementAction(action), 'corrected')}",
            current_status=current,
        )
    return step.target


def check_timesheet(
    *,
    status: EngagementStatus,
    start: date,
    end: date,
    days_total: Decimal,
    days_recorded: Decimal,
    work_date: date,
    days: Decimal,
    today: date,
    recorded_that_day: Decimal = Decimal(0),
    exceptional_reason: str | None = None,
    subdivision: str | None = None,
    action: str = A.RECORD_TIMESHEET,
) -> None:
    """Days worked (recorded, or a rejected timesheet corrected): during an accepted
    engagement, within its period, not in the future, never beyond the engagement's days;
    at most one day on a date for the person, `recorded_that_day` being what their other
    timesheets of that date already say, whatever the engagement; on a weekend or a public
    holiday of the consultant's home commune (`subdivision`) only as exceptional work, with
    its reason. Every broken rule is reported at once (422)."""
    if status not in ENGAGEMENT_STEPS[EngagementAction(action)].sources:
        raise Conflict(f"Days are recorded on accepted engagements, not {status.value} ones")
    errors = []
    if not start <= work_date < end:
        errors.append(_error("date", "must be within the engagement's period", "out_of_period"))
    elif work_date > today:
        errors.append(_error("date", "is in the future", "in_the_future"))
    left = days_total - days_recorded
    if days > left:
        errors.append(
            _error("days", f"only {left} day(s) of the engagement are left", "beyond_engagement")
        )
    free = max(ONE_DAY - recorded_that_day, Decimal(0))
    if days > free:
        errors.append(one_day_per_date(work_date, recorded_that_day, free))
    why_not = why_not_working(work_date, subdivision)
    if why_not is not None and exceptional_reason is None:
        errors.append(
            _error(
                "exceptional_work",
                f"{day_in_words(work_date)} is not a working day ({why_not}): record it as "
                f"exceptional work, with its reason",
                "exceptional_work_required",
                day=day_in_words(work_date),
                why=why_not,
            )
        )
    if errors:
        raise InvalidInput("The timesheet breaks the engagement's terms", errors)


def one_day_per_date(work_date: date, recorded: Decimal, free: Decimal) -> dict:
    """The refusal of days beyond one on a date, saying how many remain."""
    recorded, free = recorded.normalize(), free.normalize()
    return _error(
        "days",
        f"one person works at most 1 day on a date: {recorded} day(s) already recorded on "
        f"{day_in_words(work_date)} across their engagements, {free} day(s) left",
        "one_day_per_date",
        days_left=str(free),
    )
