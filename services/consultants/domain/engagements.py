"""Engagements: their state machine, who may act on them, and the rules of requests and
timesheets."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from contracts.caller import Caller, Role
from contracts.consultants import (
    EngagementStatus,
)
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from contracts.errors import field_error as _error
from services.consultants.domain.working_days import Calendar


def amount_cents(days: Decimal, day_rate_cents: int) -> int:
    """Days × day rate, rounded half up to the cent."""
    return int((days * day_rate_cents).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- engagements ------------------------------------------------------------------------

E = EngagementStatus
TRANSITIONS: dict[str, tuple[frozenset[EngagementStatus], EngagementStatus]] = {
    "accept": (frozenset({E.REQUESTED}), E.ACCEPTED),
    "reject": (frozenset({E.REQUESTED}), E.REJECTED),
    "cancel": (frozenset({E.REQUESTED, E.ACCEPTED}), E.CANCELLED),
    "complete": (frozenset({E.ACCEPTED}), E.COMPLETED),
}
# statuses whose days are held in the consultant's calendar
RESERVING = (E.ACCEPTED, E.COMPLETED)
LENDER_MANAGER_ACTIONS = {"accept", "reject"}
LENDER_ACTIONS = {"record_timesheet"}
BORROWER_ACTIONS = {"approve_timesheet"}


def next_status(current: EngagementStatus, action: str) -> EngagementStatus:
    allowed, target = TRANSITIONS[action]
    if current not in allowed:
        raise Conflict(f"A {current.value} engagement cannot {action}", current_status=current)
    return target


def ensure_party(caller: Caller, borrower: str, lender: str) -> None:
    """Only the two communes concerned see an engagement: to others it does not exist."""
    if caller.commune not in (borrower, lender) and not caller.has(Role.OPERATOR):
        raise NotFound("No such engagement")


def ensure_may(caller: Caller, action: str, borrower: str, lender: str) -> None:
    ensure_party(caller, borrower, lender)
    if action in LENDER_MANAGER_ACTIONS:
        if caller.commune != lender or not caller.has(Role.MANAGER):
            raise Forbidden("Only a manager of the consultant's commune may do this")
        return
    if not caller.has(Role.AGENT, Role.MANAGER):
        raise Forbidden("Only an agent or a manager may do this")
    if action in LENDER_ACTIONS and caller.commune != lender:
        raise Forbidden("Only the consultant's commune records the days worked")
    if action in BORROWER_ACTIONS and caller.commune != borrower:
        raise Forbidden("Only the commune that engaged the consultant approves the days")
    if caller.commune not in (borrower, lender):
        raise Forbidden("Only the two communes concerned may do this")


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


def check_cancellable(start: date, today: date) -> None:
    if today >= start:
        raise Conflict("An engagement can only be cancelled before it starts")


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
) -> None:
    """Days worked: during an accepted engagement, within its period, not in the future,
    never beyond the engagement's days."""
    if status != E.ACCEPTED:
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
    if errors:
        raise InvalidInput("The timesheet breaks the engagement's terms", errors)
