"""Booking rules: periods, quotes, rules, capacity, requests decided, the state machine. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from contracts.bookings import (
    CONDITION_PHOTOS_OPEN,
    HOLDING,
    MAX_CONDITION_PHOTOS,
    MOVES,
    BookingRequest,
    BookingStatus,
    OccurrenceConflict,
    Quote,
    Recurrence,
    Side,
    condition_photo_prefix,
)
from contracts.caller import Caller, Role
from contracts.clock import PARIS, paris_date, paris_today
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from contracts.errors import field_error as _error
from contracts.listings import ListingSnapshot, ListingStatus, PhotoStored, PricingUnit

HOUR = timedelta(hours=1)
MAX_OCCURRENCES = 52


# -- periods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """A half-open period [start, end) in UTC, and how many pricing units it spans."""

    start: datetime
    end: datetime
    units: int


def paris_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)


def slot_for(pricing_unit: PricingUnit, start: datetime | date, end: datetime | date) -> Slot:
    """Day listings book whole days in Paris (dates, or Paris midnights); hour listings book
    whole hours. A day is a calendar day even when DST makes it 23 or 25 hours long."""
    if pricing_unit == PricingUnit.DAY:
        first, last = _paris_day(start, "start"), _paris_day(end, "end")
        units = (last - first).days
        if units <= 0:
            raise InvalidInput("The period is empty", [_error("end", "must be after start")])
        return Slot(paris_midnight(first), paris_midnight(last), units)
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        raise InvalidInput(
            "Hourly listings are booked with times",
            [
                _error(
                    "start" if not isinstance(start, datetime) else "end",
                    "give a date and time with offset, e.g. 2026-12-01T09:00:00+01:00",
                )
            ],
        )
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    for field, moment in (("start", start_utc), ("end", end_utc)):
        if moment.minute or moment.second or moment.microsecond:
            raise InvalidInput(
                "Hourly listings are booked by whole hours", [_error(field, "must be on the hour")]
            )
    hours = (end_utc - start_utc) // HOUR
    if hours <= 0:
        raise InvalidInput("The period is empty", [_error("end", "must be after start")])
    return Slot(start_utc, end_utc, hours)


def _paris_day(value: datetime | date, field: str) -> date:
    if not isinstance(value, datetime):
        return value
    local = value.astimezone(PARIS)
    if local.time() != time(0):
        raise InvalidInput(
            "Daily listings are booked by whole days",
            [_error(field, "give a date (YYYY-MM-DD) or midnight in Europe/Paris")],
        )
    return local.date()


def occurrences(first: Slot, pricing_unit: PricingUnit, recurrence: Recurrence) -> list[Slot]:
    """The slots of a series: the same Paris wall-clock times every day or week."""
    step = timedelta(days=1 if recurrence.frequency == "daily" else 7)
    local_start, local_end = first.start.astimezone(PARIS), first.end.astimezone(PARIS)
    slots, n = [], 0
    while True:
        shift = step * n
        start = _wall_clock(local_start, shift)
        if recurrence.count is not None and n >= recurrence.count:
            break
        if recurrence.until is not None and start.astimezone(PARIS).date() > recurrence.until:
            break
        if n >= MAX_OCCURRENCES:
            raise InvalidInput(
                "A series has at most 52 occurrences",
                [_error("recurrence", "too many occurrences")],
            )
        end = _wall_clock(local_end, shift)
        units = first.units if pricing_unit == PricingUnit.DAY else (end - start) // HOUR
        slots.append(Slot(start, end, units))
        n += 1
    return slots


def _wall_clock(local: datetime, shift: timedelta) -> datetime:
    naive = local.replace(tzinfo=None) + shift
    return naive.replace(tzinfo=PARIS).astimezone(UTC)


# -- quote and rules --------------------------------------------------------------------


def quote_for(listing: ListingSnapshot, slot: Slot, quantity: int, with_operator: bool) -> Quote:
    rental = slot.units * listing.rate_cents * quantity
    operator = slot.units * listing.operator_rate_cents * quantity if with_operator else 0
    return Quote(
        units=slot.units,
        pricing_unit=listing.pricing_unit.value,
        unit_rate_cents=listing.rate_cents,
        quantity=quantity,
        rental_cents=rental,
        operator_cents=operator,
        amount_cents=rental + operator,
        deposit_cents=listing.deposit_cents * quantity,
        currency=listing.currency,
        late_fee_per_day_cents=listing.late_fee_per_day_cents * quantity,
    )


def check_request(
    listing: ListingSnapshot,
    borrower: str,
    slot: Slot,
    quantity: int,
    with_operator: bool,
    now: datetime,
) -> None:
    """The listing's rules; every broken one is reported at once (422)."""
    errors = []
    if listing.status != ListingStatus.PUBLISHED:
        errors.append(_error("listing_id", "this listing is withdrawn", "listing_withdrawn"))
    if listing.owner_commune == borrower:
        errors.append(_error("listing_id", "a commune does not borrow from itself", "own_listing"))
    too_early = start_too_early(listing, slot, now)
    if too_early is not None:
        errors.append(too_early)
    unit = listing.pricing_unit.value
    if slot.units < listing.min_duration:
        errors.append(_error("end", f"at least {listing.min_duration} {unit}(s)", "min_duration"))
    if listing.max_duration is not None and slot.units > listing.max_duration:
        errors.append(_error("end", f"at most {listing.max_duration} {unit}(s)", "max_duration"))
    if quantity > listing.quantity:
        errors.append(_error("quantity", f"this listing has {listing.quantity}", "quantity"))
    if with_operator and not listing.with_operator:
        errors.append(
            _error("with_operator", "this listing comes without an operator", "no_operator")
        )
    if errors:
        raise InvalidInput("The request breaks the listing's rules", errors)


# -- time: the first start a request may have, hand-over, return, overdue ----------------


def first_start(listing: ListingSnapshot, now: datetime, lead_time_days: int) -> datetime:
    """The earliest start a request may have at `now`: today in Paris while it lasts (day
    listings) or the current hour while it lasts (hour listings); with a lead time of N
    days, the Paris midnight N days after today."""
    if listing.pricing_unit == PricingUnit.DAY or lead_time_days:
        return paris_midnight(paris_today(now) + timedelta(days=lead_time_days))
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)  # Paris hours too


def start_too_early(listing: ListingSnapshot, slot: Slot, now: datetime) -> dict | None:
    """The rule a start before the first allowed one breaks (in the past, or inside the
    lead time), with that first allowed moment; None if the start is allowed."""
    earliest = first_start(listing, now, listing.lead_time_days)
    if slot.start >= earliest:
        return None
    first_allowed = _moment(listing.pricing_unit, earliest)
    if slot.start >= first_start(listing, now, 0):
        return _error(
            "start",
            f"must be at least {listing.lead_time_days} days ahead: from {first_allowed}",
            "lead_time",
            first_allowed=first_allowed,
        )
    return _error(
        "start", f"is in the past: from {first_allowed}", "in_the_past", first_allowed=first_allowed
    )


def _moment(pricing_unit: PricingUnit, moment: datetime) -> str:
    """A day listing's first allowed moment is a Paris day; an hour listing's an instant."""
    if pricing_unit == PricingUnit.DAY:
        return paris_date(moment).isoformat()
    return moment.astimezone(PARIS).isoformat()


def decide_by(pricing_unit: PricingUnit, start: datetime) -> datetime:
    """When a request not yet decided expires: once its first day (Paris) or first hour is
    over, since until then it may still start, as a same-day request does."""
    if pricing_unit == PricingUnit.DAY:
        return paris_midnight(paris_date(start) + timedelta(days=1))
    return start + HOUR


def first_hand_over_day(start: datetime, early_pickup: bool) -> date:
    """A booking is handed over from its first day in Paris, or the day before when the
    listing allows early pick-up."""
    first = paris_date(start)
    return first - timedelta(days=1) if early_pickup else first


def ensure_hand_over_allowed(start: datetime, early_pickup: bool, now: datetime) -> None:
    first = first_hand_over_day(start, early_pickup)
    if paris_today(now) < first:
        raise InvalidInput(
            f"Too early to hand over: from {first.isoformat()}",
            [
                _error(
                    None,
                    f"a booking is handed over from {first.isoformat()}"
                    + (" (the day before its first day)" if early_pickup else " (its first day)"),
                    "hand_over_too_early",
                    first_allowed=first.isoformat(),
                )
            ],
        )


def is_overdue(status: BookingStatus | str, end: datetime, now: datetime) -> bool:
    """Handed over and not returned by its end."""
    return status == BookingStatus.CHECKED_OUT and end <= now


def days_late(end: datetime, returned_at: datetime) -> int:
    """Started Paris days after a booking's last day: returned on that day (the day its
    exclusive end falls in, or the day before when it ends at midnight) is 0; the day after,
    1; and so on."""
    last_day = paris_date(end - timedelta(microseconds=1))
    return max(0, (paris_date(returned_at) - last_day).days)


def blackout_over(listing: ListingSnapshot, slot: Slot):
    for blackout in listing.blackouts:
        if blackout.start < slot.end and blackout.end > slot.start:
            return blackout
    return None


def peak_usage(holds: list[tuple[datetime, datetime, int]], slot: Slot) -> int:
    """The most units held at any instant of `slot` by the given bookings."""
    changes: list[tuple[datetime, int]] = []
    for start, end, quantity in holds:
        if start < slot.end and end > slot.start:
            changes.append((max(start, slot.start), quantity))
            changes.append((min(end, slot.end), -quantity))
    peak = level = 0
    for _, delta in sorted(changes, key=lambda c: (c[0], c[1])):  # releases before takes
        level += delta
        peak = max(peak, level)
    return peak


def clash(
    holds: list[tuple[datetime, datetime, int]], slot: Slot, room: int
) -> tuple[datetime, datetime] | None:
    """The first period overlapping `slot` during which the given bookings hold more than
    `room` units: when the slot is taken, whole (as availability shows it), not clipped, and
    back-to-back bookings as one period (all that starts and ends at a moment counts
    together, so a hand-over at 12:00 is no gap)."""
    deltas: dict[datetime, int] = defaultdict(int)
    for start, end, quantity in holds:
        deltas[start] += quantity
        deltas[end] -= quantity
    level, since = 0, None
    for moment in sorted(deltas):
        level += deltas[moment]
        if level > room and since is None:
            since = moment
        elif level <= room and since is not None:
            if moment > slot.start and since < slot.end:
                return since, moment
            since = None
    return None


class Taken(NamedTuple):
    """Why a slot cannot be had, and the period that takes it (a blackout, or bookings)."""

    detail: str
    start: datetime
    end: datetime


Hold = tuple[datetime, datetime, int]  # a holding booking's period and units


def taken_because(
    listing: ListingSnapshot, slot: Slot, quantity: int, holds: Sequence[Hold]
) -> Taken | None:
    """What stops `quantity` units of `listing` being booked for `slot`, given the holds
    of the listing's active bookings (any period; those not overlapping the slot ignored,
    so that the period named depends on the request, not on what else was read with it)."""
    blackout = blackout_over(listing, slot)
    if blackout is not None:
        return Taken(
            f"The listing is closed from {blackout.start.isoformat()} to "
            f"{blackout.end.isoformat()}" + (f": {blackout.reason}" if blackout.reason else ""),
            blackout.start,
            blackout.end,
        )
    during = [h for h in holds if h[0] < slot.end and h[1] > slot.start]
    used = peak_usage(during, slot)
    if used + quantity <= listing.quantity:
        return None
    # more than the listing has is a broken rule, not a clash: then the whole slot
    start, end = clash(during, slot, listing.quantity - quantity) or (slot.start, slot.end)
    return Taken(
        f"{used} of {listing.quantity} already booked from "
        f"{start.isoformat()} to {end.isoformat()}",
        start,
        end,
    )


def requested_slots(
    listing: ListingSnapshot,
    start: datetime | date,
    end: datetime | date,
    recurrence: Recurrence | None,
) -> list[Slot]:
    """The slot asked for, or every occurrence of the series it starts."""
    first = slot_for(listing.pricing_unit, start, end)
    return [first] if recurrence is None else occurrences(first, listing.pricing_unit, recurrence)


def span(slots: Sequence[Slot]) -> tuple[datetime, datetime]:
    """From the earliest start to the latest end of `slots`."""
    return min(s.start for s in slots), max(s.end for s in slots)


def pays_to_cancel(
    current: BookingStatus, by_borrower: bool, waiting_for_allocation: bool = False
) -> bool:
    """Only a borrower cancelling a booking that holds its slot may owe the listing's late
    fee: a waitlisted request never held the slot, nor an urgent one still waiting for its
    allocation window, so withdrawing them costs nothing."""
    return by_borrower and current in HOLDING and not waiting_for_allocation


def cancellation_fee(listing: ListingSnapshot | None, start: datetime, now: datetime) -> int:
    """The listing's fee for a cancellation inside its notice window (none for a listing
    this service has no copy of)."""
    if listing is None or listing.late_cancellation_fee_cents == 0:
        return 0
    if now > start - timedelta(days=listing.cancellation_notice_days):
        return listing.late_cancellation_fee_cents
    return 0


# -- deciding a request -----------------------------------------------------------------


@dataclass(frozen=True)
class NewBooking:
    """A booking decided, to be written: one occurrence of a request, and why (`note`, its
    first transition's)."""

    listing: ListingSnapshot
    by: Caller
    slot: Slot
    quantity: int
    purpose: str
    with_operator: bool
    order_reference: str | None
    quote: Quote
    status: BookingStatus
    series_id: str | None
    note: str


class Decided(NamedTuple):
    """What a request books (an occurrence each), and the occurrences that conflicted."""

    bookings: list[NewBooking]
    conflicts: list[OccurrenceConflict]


def decide_request(
    listing: ListingSnapshot,
    by: Caller,
    asked: BookingRequest,
    slots: Sequence[Slot],
    holds: list[Hold],
    series_id: str | None,
) -> Decided:
    """One request's bookings, one per occurrence it can have (a taken one joins the
    waitlist if the request says so, else conflicts), or Conflict if none can be had. What
    it books is added to `holds`, for the occurrences and requests decided after it."""
    bookings, conflicts, takers = [], [], []
    for slot in slots:
        taken = taken_because(listing, slot, asked.quantity, holds)
        if taken and not asked.wait_if_taken:
            conflicts.append(
                OccurrenceConflict(start=slot.start, end=slot.end, detail=taken.detail)
            )
            takers.append(taken)
            continue
        bookings.append(
            NewBooking(
                listing=listing,
                by=by,
                slot=slot,
                quantity=asked.quantity,
                purpose=asked.purpose,
                with_operator=asked.with_operator,
                order_reference=asked.order_reference,
                quote=quote_for(listing, slot, asked.quantity, asked.with_operator),
                status=BookingStatus.WAITING if taken else BookingStatus.REQUESTED,
                series_id=series_id,
                note=f"waitlisted: {taken.detail}" if taken else asked.purpose,
            )
        )
        if not taken:
            holds.append((slot.start, slot.end, asked.quantity))
    if not bookings:
        taker = takers[0]
        raise Conflict(
            taker.detail,
            conflicting_period={"start": taker.start.isoformat(), "end": taker.end.isoformat()},
            conflicts=[c.model_dump(mode="json") for c in conflicts],
        )
    return Decided(bookings, conflicts)


# -- moving a booking to other dates ---------------------------------------------------


def move_action(current: BookingStatus) -> str:
    """Which move new dates are: a request edited by its borrower (the lender has not said
    yes yet), or an approved loan moved by the lender's manager, who alone may change what
    they agreed to (the borrower asks them in the booking's conversation). Any other status
    cannot move (next_status refuses it)."""
    return "change_dates" if current == BookingStatus.REQUESTED else "reschedule"


def requote(quote: Quote, slot: Slot) -> Quote:
    """The quote for the new dates at the rates agreed when booked (rental, operator, late
    fee and deposit per unit): the number of units follows the dates, the price per unit
    does not follow a listing repriced since."""
    per = quote.units * quote.quantity
    operator_rate = quote.operator_cents // per if per else 0
    rental = slot.units * quote.unit_rate_cents * quote.quantity
    operator = slot.units * operator_rate * quote.quantity
    return quote.model_copy(
        update={
            "units": slot.units,
            "rental_cents": rental,
            "operator_cents": operator,
            "amount_cents": rental + operator,
        }
    )


def check_move(
    listing: ListingSnapshot,
    borrower: str,
    current: Slot,
    slot: Slot,
    quantity: int,
    with_operator: bool,
    now: datetime,
    by_lender: bool,
) -> None:
    """The listing's rules for new dates, as for a request (422, every broken one), but
    for the lead time when the lender's manager moves it: the notice is the lender's own,
    theirs to waive. New dates equal to the current ones change nothing, and are refused."""
    if (slot.start, slot.end) == (current.start, current.end):
        raise InvalidInput(
            "The booking already has these dates",
            [_error("start", "give other dates than the booking's", "same_dates")],
        )
    rules = listing.model_copy(update={"lead_time_days": 0}) if by_lender else listing
    check_request(rules, borrower, slot, quantity, with_operator, now)


def needs_consent(action: str, agreed: Quote, new: Quote) -> bool:
    """Whether new dates for a loan are only a proposal until its borrower accepts them: an
    approved loan the lender moves (`reschedule`) to dates costing more than agreed. A
    borrower editing its own request consents by asking; the same price or less is the
    lender's to decide alone (the borrower is told)."""
    return action == "reschedule" and new.amount_cents > agreed.amount_cents


def proposal_lapsed(status: BookingStatus | str, start: datetime, now: datetime) -> bool:
    """A pending proposal lapses once the loan it would move is no longer approved (handed
    over, cancelled) or has started: there is nothing left to move."""
    return status != BookingStatus.APPROVED or now >= start


def ensure_answerable(
    caller: Caller, borrower: str, lender: str, pending: bool, lapsed: bool
) -> None:
    """The borrower's manager answers new dates proposed to it, while they still stand."""
    ensure_party(caller, borrower, lender)
    if caller.commune != borrower or not caller.has(Role.MANAGER):
        raise Forbidden("Only a manager of the borrowing commune answers new dates proposed")
    _ensure_standing(pending, lapsed)


def ensure_withdrawable(
    caller: Caller, borrower: str, lender: str, pending: bool, lapsed: bool
) -> None:
    """The lender's manager may take back the new dates it proposed, while they stand."""
    ensure_party(caller, borrower, lender)
    if caller.commune != lender or not caller.has(Role.MANAGER):
        raise Forbidden("Only a manager of the lending commune withdraws new dates it proposed")
    _ensure_standing(pending, lapsed)


def _ensure_standing(pending: bool, lapsed: bool) -> None:
    if not pending:
        raise Conflict("No new dates are proposed for this booking", rule="no_proposal")
    if lapsed:
        raise Conflict(
            "The new dates proposed have lapsed: the loan started or changed since",
            rule="proposal_lapsed",
        )


def dates_revision(current: int | None, event: str) -> int:
    """The revision of a loan's dates, its calendar invitation's SEQUENCE: 0 at approval
    (its first invitation), one more for each move and for the cancellation, so that
    calendars take each change, however close in time."""
    if event == "approve":
        return 0
    return (current or 0) + 1


def ensure_free(listing: ListingSnapshot, slot: Slot, quantity: int, holds: Sequence[Hold]) -> None:
    """409 with the period that takes the slot (a blackout, or bookings), if one does."""
    taken = taken_because(listing, slot, quantity, holds)
    if taken is not None:
        raise Conflict(
            taken.detail,
            conflicting_period={"start": taken.start.isoformat(), "end": taken.end.isoformat()},
        )


def moved_note(pricing_unit: PricingUnit, before: Slot, after: Slot, reason: str) -> str:
    """The history's line for a move, in French as the pages show it: the dates before and
    after (Paris), and why."""
    text = f"dates changées, {_period(pricing_unit, before)} → {_period(pricing_unit, after)}"
    return f"{text} : {reason}" if reason else text


def _period(pricing_unit: PricingUnit, slot: Slot) -> str:
    start, end = slot.start.astimezone(PARIS), slot.end.astimezone(PARIS)
    if pricing_unit == PricingUnit.HOUR:
        return f"le {start:%d/%m/%Y} de {start:%H:%M} à {end:%H:%M}"
    last = paris_date(slot.end) - timedelta(days=1)
    if last == start.date():
        return f"le {start:%d/%m/%Y}"
    return f"du {start:%d/%m/%Y} au {last:%d/%m/%Y}"


# -- state machine (contracts.bookings.MOVES) ----------------------------------------


def next_status(current: BookingStatus, action: str) -> BookingStatus:
    move = MOVES[action]
    if action == "cancel" and current == BookingStatus.CHECKED_OUT:
        raise Conflict(
            "A booking handed over cannot be cancelled: record its return",
            current_status=current.value,
            rule="cancel_after_check_out",
        )
    if current not in move.sources:
        raise Conflict(
            f"A {current.value} booking cannot {action.replace('_', ' ')}",
            current_status=current.value,
        )
    return move.target


def frees_slot(current: BookingStatus, target: BookingStatus) -> bool:
    """A booking holding its slot and rejected, cancelled or expired gives it back to the
    waitlist (a returned one gives back a period that is over)."""
    return current in HOLDING and target in ENDED_EARLY


ENDED_EARLY = frozenset({BookingStatus.REJECTED, BookingStatus.CANCELLED, BookingStatus.EXPIRED})


def ensure_party(caller: Caller, borrower: str, lender: str) -> None:
    """Only the two communes concerned see a booking: to anyone else it does not exist."""
    if caller.commune not in (borrower, lender) and not caller.has(Role.OPERATOR):
        raise NotFound("No such booking")


def ensure_condition_photo_allowed(
    caller: Caller, status: str, borrower: str, lender: str, stage: str, taken: int
) -> None:
    """An agent or manager of either commune adds photos of the condition: at hand-over from
    approval until the return, at return from the hand-over on (after it, to contest).
    Photos are evidence: added, never removed."""
    ensure_party(caller, borrower, lender)
    if caller.commune not in (borrower, lender) or not caller.has(Role.AGENT, Role.MANAGER):
        raise Forbidden("Only an agent or manager of either commune adds photos of a loan")
    if status not in CONDITION_PHOTOS_OPEN[stage]:
        raise Conflict(
            f"No photo of the condition at {stage.replace('_', '-')} now: the booking is {status}",
            current_status=status,
        )
    if taken >= MAX_CONDITION_PHOTOS:
        raise Conflict(f"At most {MAX_CONDITION_PHOTOS} photos at {stage.replace('_', '-')}")


def ensure_condition_stored_for(booking_id: str, photo: PhotoStored) -> None:
    if not photo.is_under(condition_photo_prefix(booking_id)):
        raise InvalidInput(
            "The photo is not stored for this booking",
            [_error("key", f"keys under {condition_photo_prefix(booking_id)}")],
        )


REFUSALS = {  # by the sides a move is open to
    frozenset({Side.LENDER}): "Only a manager of the lending commune may do this",
    frozenset({Side.BORROWER}): "Only an agent or manager of the borrowing commune may do this",
    frozenset(
        {Side.LENDER, Side.BORROWER}
    ): "Only an agent or manager of either commune may cancel",
    frozenset(): "Only the bookings service itself does this",
}


def ensure_may(caller: Caller, action: str, borrower: str, lender: str) -> None:
    ensure_party(caller, borrower, lender)
    move = MOVES[action]
    if not move.open_to(caller.commune, caller.roles, borrower, lender):
        raise Forbidden(REFUSALS[move.sides])
