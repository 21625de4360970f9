"""Bookings at their edges: exactly the maximum duration, the lead time to the second,
quotes for several units, series priced by the day or by the hour, the notice window of a
cancellation, what takes a slot, and who may do what to a booking."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.bookings import MOVES, BookingRequest, BookingStatus, Recurrence, Side
from contracts.caller import Caller, Role
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from contracts.listings import Blackout, ListingSnapshot
from services.bookings import domain

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LENDER, BORROWER, STRANGER = "42044", "42218", "42095"


def listing(**changes) -> ListingSnapshot:
    fields = dict(
        listing_id="l1",
        owner_commune=LENDER,
        status="published",
        revision=1,
        title="Barrières",
        category="voirie",
        kind="equipment",
        pricing_unit="day",
        rate_cents=1500,
        deposit_cents=10000,
        quantity=10,
        with_operator=True,
        operator_rate_cents=32000,
        min_duration=2,
        max_duration=5,
        lead_time_days=3,
    )
    return ListingSnapshot(**(fields | changes))


def day_slot(first: date, days: int) -> domain.Slot:
    return domain.slot_for("day", first, first + timedelta(days=days))


def broken(listing_, slot, quantity=1, with_operator=False, now=NOW) -> list[tuple[str, str]]:
    try:
        domain.check_request(listing_, BORROWER, slot, quantity, with_operator, now)
    except InvalidInput as exc:
        return [(e["field"], e["type"]) for e in exc.errors]
    return []


# -- the listing's rules, at their limits -----------------------------------------------


def test_exactly_the_maximum_and_the_minimum_duration_are_allowed():
    first = date(2026, 12, 10)
    assert broken(listing(), day_slot(first, 5)) == []
    assert broken(listing(), day_slot(first, 2)) == []
    assert broken(listing(), day_slot(first, 6)) == [("end", "max_duration")]
    assert broken(listing(), day_slot(first, 1)) == [("end", "min_duration")]
    assert broken(listing(max_duration=None), day_slot(first, 60)) == []


def test_the_lead_time_is_counted_in_paris_days():
    slot = day_slot(date(2026, 12, 10), 2)  # from midnight in Paris, 10 December
    # three days' notice: asked on 7 December in Paris, up to its last minute
    assert broken(listing(), slot, now=datetime(2026, 12, 7, 22, 59, tzinfo=UTC)) == []
    # 23:00 UTC is already 8 December in Paris
    eighth = datetime(2026, 12, 7, 23, 0, tzinfo=UTC)
    assert broken(listing(), slot, now=eighth) == [("start", "lead_time")]
    # no notice: the first day itself, while it lasts in Paris
    same_day = listing(lead_time_days=0)
    assert broken(same_day, slot, now=datetime(2026, 12, 10, 22, 59, tzinfo=UTC)) == []
    after = datetime(2026, 12, 10, 23, 0, tzinfo=UTC)
    assert broken(same_day, slot, now=after) == [("start", "in_the_past")]


def test_all_the_units_but_not_one_more_may_be_asked():
    slot = day_slot(date(2026, 12, 10), 2)
    assert broken(listing(), slot, quantity=10) == []
    assert broken(listing(), slot, quantity=11) == [("quantity", "quantity")]


def test_each_broken_rule_is_named_once():
    slot = day_slot(date(2026, 12, 10), 2)
    withdrawn = listing(status="withdrawn", owner_commune=BORROWER, with_operator=False)
    assert broken(withdrawn, slot, with_operator=True) == [
        ("listing_id", "listing_withdrawn"),
        ("listing_id", "own_listing"),
        ("with_operator", "no_operator"),
    ]
    assert broken(listing(), slot, with_operator=True) == []


def test_what_each_broken_rule_tells_the_borrower():
    withdrawn = listing(status="withdrawn", owner_commune=BORROWER, with_operator=False)
    start = datetime(2026, 12, 2, 8, tzinfo=UTC)
    with pytest.raises(InvalidInput) as raised:
        domain.check_request(
            withdrawn, BORROWER, domain.Slot(start, start + timedelta(days=9), 9), 11, True, NOW
        )
    assert raised.value.detail == "The request breaks the listing's rules"
    assert [(e["field"], e["message"]) for e in raised.value.errors] == [
        ("listing_id", "this listing is withdrawn"),
        ("listing_id", "a commune does not borrow from itself"),
        ("start", "must be at least 3 days ahead: from 2026-12-04"),
        ("end", "at most 5 day(s)"),
        ("quantity", "this listing has 10"),
        ("with_operator", "this listing comes without an operator"),
    ]
    with pytest.raises(InvalidInput) as raised:
        domain.check_request(listing(), BORROWER, domain.Slot(NOW, NOW, 1), 1, False, NOW)
    assert [(e["field"], e["message"]) for e in raised.value.errors] == [
        ("start", "must be at least 3 days ahead: from 2026-12-04"),
        ("end", "at least 2 day(s)"),
    ]
    past = NOW - timedelta(days=1)  # yesterday in Paris
    with pytest.raises(InvalidInput) as raised:
        domain.check_request(listing(), BORROWER, domain.Slot(past, NOW, 2), 1, False, NOW)
    assert raised.value.errors == [
        {
            "field": "start",
            "message": "is in the past: from 2026-12-04",
            "type": "in_the_past",
            "first_allowed": "2026-12-04",
        }
    ]


# -- quotes -----------------------------------------------------------------------------


@settings(deadline=None)
@given(
    st.integers(min_value=1, max_value=400),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=1, max_value=50),
    st.booleans(),
)
def test_a_quote_is_units_times_rate_times_quantity(units, rate, operator, deposit, quantity, op):
    offer = listing(
        rate_cents=rate, operator_rate_cents=operator, deposit_cents=deposit, quantity=50
    )
    slot = domain.Slot(NOW, NOW + timedelta(days=units), units)
    quote = domain.quote_for(offer, slot, quantity, op)
    assert quote.rental_cents == units * rate * quantity
    assert quote.operator_cents == (units * operator * quantity if op else 0)
    assert quote.amount_cents == quote.rental_cents + quote.operator_cents
    assert quote.deposit_cents == deposit * quantity
    assert (quote.units, quote.quantity, quote.unit_rate_cents) == (units, quantity, rate)
    assert quote.pricing_unit == "day" and quote.currency == offer.currency


# -- series -----------------------------------------------------------------------------


def test_a_series_of_a_day_listing_is_priced_by_the_day_across_the_clock_change():
    first = day_slot(date(2026, 10, 23), 2)  # Friday and Saturday; clocks go back on Sunday
    slots = domain.occurrences(first, "day", Recurrence(frequency="daily", count=4))
    assert [s.units for s in slots] == [2, 2, 2, 2]
    assert slots[2].end - slots[2].start == timedelta(hours=49)  # 25 h Sunday counted as a day


def test_a_series_of_an_hour_listing_is_priced_by_the_hour():
    start = datetime(2026, 12, 7, 8, tzinfo=UTC)
    first = domain.slot_for("hour", start, start + timedelta(hours=3))
    slots = domain.occurrences(first, "hour", Recurrence(frequency="weekly", count=3))
    assert [s.units for s in slots] == [3, 3, 3]
    assert [s.start for s in slots] == [start + timedelta(weeks=n) for n in range(3)]


def test_an_hourly_series_across_the_spring_clock_change_counts_real_hours():
    # Saturday 28 March 2026, 00:00-04:00 in Paris; on Sunday 02:00 does not exist
    start = datetime(2026, 3, 27, 23, tzinfo=UTC)
    first = domain.slot_for("hour", start, start + timedelta(hours=4))
    slots = domain.occurrences(first, "hour", Recurrence(frequency="daily", count=2))
    assert [s.units for s in slots] == [4, 3]


def test_hourly_periods_at_their_limits():
    start = datetime(2026, 12, 7, 8, tzinfo=UTC)
    assert domain.slot_for("hour", start, start + timedelta(hours=1)).units == 1
    with pytest.raises(InvalidInput) as raised:
        domain.slot_for("hour", start, start)
    assert raised.value.detail == "The period is empty"
    assert raised.value.errors == [
        {"field": "end", "message": "must be after start", "type": "value_error"}
    ]
    with pytest.raises(InvalidInput) as raised:
        domain.slot_for("hour", start, start + timedelta(hours=1, seconds=30))
    assert raised.value.detail == "Hourly listings are booked by whole hours"
    assert [e["field"] for e in raised.value.errors] == ["end"]
    for first, last, field in [
        (date(2026, 12, 7), start, "start"),
        (start, date(2026, 12, 8), "end"),
    ]:
        with pytest.raises(InvalidInput) as raised:
            domain.slot_for("hour", first, last)
        assert raised.value.detail == "Hourly listings are booked with times"
        assert [e["field"] for e in raised.value.errors] == [field]


def test_a_day_is_booked_by_paris_midnights_or_dates():
    midnight = datetime(2026, 12, 6, 23, tzinfo=UTC)  # 7 December, 00:00 in Paris
    slot = domain.slot_for("day", midnight, date(2026, 12, 9))
    assert slot == day_slot(date(2026, 12, 7), 2)
    with pytest.raises(InvalidInput) as raised:
        domain.slot_for("day", date(2026, 12, 7), midnight + timedelta(hours=1))
    assert raised.value.detail == "Daily listings are booked by whole days"
    assert raised.value.errors[0]["field"] == "end"
    with pytest.raises(InvalidInput) as raised:
        domain.slot_for("day", date(2026, 12, 7), date(2026, 12, 7))
    assert raised.value.errors[0]["field"] == "end"


def test_a_series_has_at_most_52_occurrences():
    first = day_slot(date(2026, 12, 10), 1)
    weekly = Recurrence(frequency="weekly", until=date(2026, 12, 10) + timedelta(weeks=51))
    assert len(domain.occurrences(first, "day", weekly)) == 52
    longer = Recurrence(frequency="weekly", until=date(2026, 12, 10) + timedelta(weeks=52))
    with pytest.raises(InvalidInput) as raised:
        domain.occurrences(first, "day", longer)
    assert raised.value.detail == "A series has at most 52 occurrences"
    assert [e["field"] for e in raised.value.errors] == ["recurrence"]
    assert len(domain.occurrences(first, "day", Recurrence(frequency="daily", count=52))) == 52


def test_a_series_until_a_day_before_its_start_is_empty():
    first = day_slot(date(2026, 12, 10), 1)
    until = Recurrence(frequency="daily", until=date(2026, 12, 9))
    assert domain.occurrences(first, "day", until) == []


def test_the_requested_slots_are_the_slot_or_its_series():
    offer = listing()
    assert domain.requested_slots(offer, date(2026, 12, 10), date(2026, 12, 12), None) == [
        day_slot(date(2026, 12, 10), 2)
    ]
    series = domain.requested_slots(
        offer, date(2026, 12, 10), date(2026, 12, 12), Recurrence(frequency="weekly", count=2)
    )
    assert series == [day_slot(date(2026, 12, 10), 2), day_slot(date(2026, 12, 17), 2)]
    assert domain.span(series) == (series[0].start, series[1].end)
    hourly = listing(pricing_unit="hour")
    with pytest.raises(InvalidInput):
        domain.requested_slots(hourly, date(2026, 12, 10), date(2026, 12, 12), None)


def test_a_year_end_slot_runs_from_31_december_into_january():
    slot = day_slot(date(2026, 12, 31), 2)
    assert slot.units == 2
    assert slot.start == datetime(2026, 12, 30, 23, tzinfo=UTC)
    assert slot.end == datetime(2027, 1, 1, 23, tzinfo=UTC)


# -- what takes a slot ------------------------------------------------------------------


def hold(start_hour: int, end_hour: int, quantity: int) -> domain.Hold:
    day = datetime(2026, 12, 10, tzinfo=UTC)
    return (day + timedelta(hours=start_hour), day + timedelta(hours=end_hour), quantity)


def hour_slot(start_hour: int, end_hour: int) -> domain.Slot:
    day = datetime(2026, 12, 10, tzinfo=UTC)
    return domain.Slot(
        day + timedelta(hours=start_hour), day + timedelta(hours=end_hour), end_hour - start_hour
    )


def test_a_slot_is_free_while_the_units_asked_still_fit():
    offer = listing(quantity=3, pricing_unit="hour")
    holds = [hold(8, 12, 2), hold(12, 16, 3)]
    assert domain.taken_because(offer, hour_slot(9, 12), 1, holds) is None  # 2 + 1 = 3
    taken = domain.taken_because(offer, hour_slot(9, 12), 2, holds)
    assert taken is not None
    # the 12:00-16:00 booking starts as the slot ends: it does not stretch the period named
    assert (taken.start, taken.end) == hold(8, 12, 0)[:2]
    assert taken.detail.startswith("2 of 3 already booked from 2026-12-10T08:00:00+00:00")


def test_bookings_the_slot_does_not_meet_are_ignored():
    offer = listing(quantity=1, pricing_unit="hour")
    holds = [hold(0, 8, 1), hold(12, 20, 1)]
    assert domain.taken_because(offer, hour_slot(8, 12), 1, holds) is None
    taken = domain.taken_because(offer, hour_slot(11, 13), 1, holds)
    assert (taken.start, taken.end) == (hold(12, 20, 1)[0], hold(12, 20, 1)[1])


def test_asking_more_than_the_listing_has_takes_the_whole_slot():
    offer = listing(quantity=2, pricing_unit="hour")
    taken = domain.taken_because(offer, hour_slot(8, 10), 3, [])
    assert (taken.start, taken.end) == (hour_slot(8, 10).start, hour_slot(8, 10).end)
    assert taken.detail.startswith("0 of 2 already booked")


def test_a_blackout_takes_the_slot_with_its_reason():
    closed = Blackout(
        id="b1", start=hold(6, 9, 0)[0], end=hold(6, 9, 0)[1], reason="révision annuelle"
    )
    offer = listing(pricing_unit="hour", blackouts=[closed])
    taken = domain.taken_because(offer, hour_slot(8, 10), 1, [])
    assert (taken.start, taken.end) == (closed.start, closed.end)
    assert taken.detail.endswith(": révision annuelle")
    assert domain.taken_because(offer, hour_slot(9, 10), 1, []) is None  # touching: free
    assert domain.taken_because(offer, hour_slot(4, 6), 1, []) is None  # it starts as it ends
    silent = listing(pricing_unit="hour", blackouts=[closed.model_copy(update={"reason": ""})])
    assert domain.taken_because(silent, hour_slot(8, 10), 1, []).detail == (
        "The listing is closed from 2026-12-10T06:00:00+00:00 to 2026-12-10T09:00:00+00:00"
    )


def test_a_booking_ending_as_the_slot_starts_does_not_stretch_the_period_named():
    offer = listing(quantity=1, pricing_unit="hour")
    taken = domain.taken_because(offer, hour_slot(8, 10), 1, [hold(6, 8, 1), hold(8, 12, 1)])
    assert (taken.start, taken.end) == hold(8, 12, 1)[:2]


def test_a_hand_over_is_no_overlap():
    assert domain.peak_usage([hold(8, 12, 1), hold(12, 16, 1)], hour_slot(8, 16)) == 1


# -- cancellation -----------------------------------------------------------------------


def test_the_late_fee_starts_the_instant_after_the_notice_window_opens():
    offer = listing(late_cancellation_fee_cents=5000, cancellation_notice_days=2)
    start = datetime(2026, 12, 10, 8, tzinfo=UTC)
    edge = start - timedelta(days=2)
    assert domain.cancellation_fee(offer, start, edge) == 0
    late = edge + timedelta(seconds=1)
    assert domain.cancellation_fee(offer, start, late) == 5000
    free = listing(late_cancellation_fee_cents=0, cancellation_notice_days=2)
    assert domain.cancellation_fee(free, start, late) == 0
    assert domain.cancellation_fee(None, start, late) == 0  # a listing never learned of
    # only the borrower pays, and only for a booking that held its slot
    assert domain.pays_to_cancel(BookingStatus.APPROVED, by_borrower=True)
    assert not domain.pays_to_cancel(BookingStatus.APPROVED, by_borrower=False)
    assert not domain.pays_to_cancel(BookingStatus.WAITING, by_borrower=True)
    # an urgent request waiting for its allocation window held nothing either
    assert not domain.pays_to_cancel(BookingStatus.REQUESTED, True, waiting_for_allocation=True)
    assert domain.pays_to_cancel(BookingStatus.REQUESTED, True, waiting_for_allocation=False)


# -- who may do what --------------------------------------------------------------------


def who(commune: str, *roles: Role) -> Caller:
    return Caller(user_id="u", commune=commune, roles=frozenset(roles))


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("commune", [BORROWER, LENDER])
def test_only_an_agent_or_manager_of_either_commune_may_cancel(role, commune):
    caller = who(commune, role)
    if role in (Role.AGENT, Role.MANAGER):
        domain.ensure_may(caller, "cancel", BORROWER, LENDER)
    else:
        with pytest.raises(Forbidden) as raised:
            domain.ensure_may(caller, "cancel", BORROWER, LENDER)
        assert raised.value.detail == "Only an agent or manager of either commune may cancel"


@pytest.mark.parametrize(
    "action", sorted(a for a, m in MOVES.items() if m.sides == frozenset({Side.LENDER}))
)
def test_only_a_manager_of_the_lender_decides_and_hands_over(action):
    domain.ensure_may(who(LENDER, Role.MANAGER), action, BORROWER, LENDER)
    for caller in (who(LENDER, Role.AGENT), who(BORROWER, Role.MANAGER)):
        with pytest.raises(Forbidden) as raised:
            domain.ensure_may(caller, action, BORROWER, LENDER)
        assert raised.value.detail == "Only a manager of the lending commune may do this"
    with pytest.raises(NotFound) as raised:
        domain.ensure_may(who(STRANGER, Role.MANAGER), action, BORROWER, LENDER)
    assert raised.value.detail == "No such booking"


def test_an_operator_sees_any_booking_but_acts_on_none():
    operator = who(STRANGER, Role.OPERATOR)
    domain.ensure_party(operator, BORROWER, LENDER)
    for action in ("cancel", "approve"):
        with pytest.raises(Forbidden):
            domain.ensure_may(operator, action, BORROWER, LENDER)
    with pytest.raises(Forbidden):
        domain.ensure_may(who(STRANGER, Role.OPERATOR, Role.MANAGER), "cancel", BORROWER, LENDER)


@pytest.mark.parametrize("action", sorted(MOVES))
@pytest.mark.parametrize("status", list(BookingStatus))
def test_every_transition_goes_from_its_statuses_only(action, status):
    allowed, target = MOVES[action].sources, MOVES[action].target
    if action == "cancel" and status == BookingStatus.CHECKED_OUT:
        with pytest.raises(Conflict) as raised:
            domain.next_status(status, action)
        assert raised.value.detail == "A booking handed over cannot be cancelled: record its return"
    elif status in allowed:
        assert domain.next_status(status, action) == target
    else:
        with pytest.raises(Conflict) as raised:
            domain.next_status(status, action)
        assert raised.value.detail == f"A {status.value} booking cannot {action.replace('_', ' ')}"
        assert raised.value.extra == {"current_status": status.value}


# -- instants are UTC, whatever the server's own time zone ------------------------------


@pytest.fixture
def server_in_cayenne(monkeypatch):
    """The process's local time zone at UTC-3: an instant converted to "local" time instead
    of UTC would show -03:00 in what is stored and sent."""
    monkeypatch.setenv("TZ", "America/Cayenne")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_every_instant_computed_is_in_utc_whatever_the_servers_time_zone(server_in_cayenne):
    paris_nine = datetime(2026, 12, 7, 9, tzinfo=domain.PARIS)
    hours = domain.slot_for("hour", paris_nine, paris_nine + timedelta(hours=2))
    days = domain.slot_for("day", date(2026, 12, 7), date(2026, 12, 9))
    series = domain.occurrences(hours, "hour", Recurrence(frequency="weekly", count=2))
    starts = [
        hours.start,
        hours.end,
        days.start,
        days.end,
        domain.paris_midnight(date(2026, 7, 14)),
        domain.first_start(listing(pricing_unit="hour"), NOW, 0),
        *(moment for slot in series for moment in (slot.start, slot.end)),
    ]
    assert all(moment.isoformat().endswith("+00:00") for moment in starts), starts
    assert hours.start.isoformat() == "2026-12-07T08:00:00+00:00"
    assert series[1].end.isoformat() == "2026-12-14T10:00:00+00:00"


def test_hours_are_counted_in_whole_numbers():
    start = datetime(2026, 12, 7, 8, tzinfo=UTC)
    slot = domain.slot_for("hour", start, start + timedelta(hours=3))
    series = domain.occurrences(slot, "hour", Recurrence(frequency="daily", count=2))
    assert [type(s.units) for s in [slot, *series]] == [int, int, int]


def test_an_hour_listing_starts_at_the_current_hour_cut_to_the_second():
    now = datetime(2026, 12, 1, 8, 59, 59, 999999, tzinfo=UTC)
    assert domain.first_start(listing(pricing_unit="hour"), now, 0) == datetime(
        2026, 12, 1, 8, tzinfo=UTC
    )
    assert domain.first_start(listing(pricing_unit="hour"), now.replace(minute=0), 0) == (
        datetime(2026, 12, 1, 8, tzinfo=UTC)
    )


def test_a_start_off_the_hour_names_the_start():
    start = datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
    with pytest.raises(InvalidInput) as raised:
        domain.slot_for("hour", start, start + timedelta(minutes=90))
    assert raised.value.errors == [
        {"field": "start", "message": "must be on the hour", "type": "value_error"}
    ]


def test_a_booking_ending_just_after_midnight_has_that_day_as_its_last():
    end = domain.paris_midnight(date(2026, 12, 9)) + timedelta(microseconds=1)
    returned = datetime(2026, 12, 9, 20, tzinfo=UTC)
    assert domain.days_late(end, returned) == 0
    assert domain.days_late(end, returned + timedelta(days=1)) == 1


def test_a_one_cent_late_cancellation_fee_is_charged():
    offer = listing(late_cancellation_fee_cents=1, cancellation_notice_days=2)
    start = datetime(2026, 12, 10, 8, tzinfo=UTC)
    assert domain.cancellation_fee(offer, start, start - timedelta(days=1)) == 1
    assert domain.cancellation_fee(offer, start, start - timedelta(days=3)) == 0


def test_bookings_starting_as_the_slot_ends_are_no_clash():
    assert domain.clash([hold(10, 12, 2)], hour_slot(8, 10), 1) is None
    assert domain.clash([hold(9, 12, 2)], hour_slot(8, 10), 1) == (
        hold(9, 12, 2)[0],
        hold(9, 12, 2)[1],
    )


def test_a_decided_booking_carries_the_request_and_the_operator_in_its_quote():
    offer = listing(pricing_unit="hour", lead_time_days=0, min_duration=1)
    by = who(BORROWER, Role.AGENT)
    start = datetime(2026, 12, 7, 8, tzinfo=UTC)
    asked = BookingRequest.model_validate(
        {
            "listing_id": "l1",
            "start": start,
            "end": start + timedelta(hours=2),
            "quantity": 3,
            "purpose": "déneigement",
            "with_operator": True,
            "order_reference": "BC-12",
        }
    )
    slot = domain.slot_for("hour", asked.start, asked.end)
    (booking,) = domain.decide_request(offer, by, asked, [slot], [], None).bookings
    assert (booking.listing, booking.by, booking.slot) == (offer, by, slot)
    assert (booking.quantity, booking.purpose, booking.with_operator) == (3, "déneigement", True)
    assert booking.order_reference == "BC-12"
    assert booking.quote.operator_cents == 2 * 32000 * 3
    assert booking.quote.amount_cents == 2 * (1500 + 32000) * 3


def test_a_request_with_no_occurrence_free_names_each_conflict():
    offer = listing(pricing_unit="hour", quantity=1)
    start = datetime(2026, 12, 10, 8, tzinfo=UTC)
    asked = BookingRequest.model_validate(
        {"listing_id": "l1", "start": start, "end": start + timedelta(hours=2)}
    )
    slot = domain.slot_for("hour", asked.start, asked.end)
    with pytest.raises(Conflict) as refused:
        domain.decide_request(offer, who(BORROWER), asked, [slot], [hold(8, 10, 1)], None)
    detail = "1 of 1 already booked from 2026-12-10T08:00:00+00:00 to 2026-12-10T10:00:00+00:00"
    assert refused.value.detail == detail
    assert refused.value.extra["conflicts"] == [
        {"start": "2026-12-10T08:00:00Z", "end": "2026-12-10T10:00:00Z", "detail": detail}
    ]


# -- what each refusal says -------------------------------------------------------------


def refusal(call) -> tuple[str, list[dict]]:
    with pytest.raises(InvalidInput) as raised:
        call()
    return raised.value.detail, raised.value.errors


def test_what_a_refused_period_says():
    monday, noon = date(2026, 12, 7), datetime(2026, 12, 7, 11, tzinfo=UTC)
    assert refusal(lambda: domain.slot_for("day", monday, monday)) == (
        "The period is empty",
        [{"field": "end", "message": "must be after start", "type": "value_error"}],
    )
    assert refusal(lambda: domain.slot_for("day", noon, monday)) == (
        "Daily listings are booked by whole days",
        [
            {
                "field": "start",
                "message": "give a date (YYYY-MM-DD) or midnight in Europe/Paris",
                "type": "value_error",
            }
        ],
    )
    assert refusal(lambda: domain.slot_for("hour", monday, noon))[1] == [
        {
            "field": "start",
            "message": "give a date and time with offset, e.g. 2026-12-01T09:00:00+01:00",
            "type": "value_error",
        }
    ]
    assert refusal(lambda: domain.slot_for("hour", noon, noon.replace(minute=30)))[1] == [
        {"field": "end", "message": "must be on the hour", "type": "value_error"}
    ]
    first = domain.slot_for("day", monday, date(2026, 12, 8))
    endless = Recurrence(frequency="daily", until=date(2027, 12, 31))
    assert refusal(lambda: domain.occurrences(first, "day", endless)) == (
        "A series has at most 52 occurrences",
        [{"field": "recurrence", "message": "too many occurrences", "type": "value_error"}],
    )


@pytest.mark.parametrize(
    ("early_pickup", "allowed", "said"),
    [
        (False, "2026-12-07", " (its first day)"),
        (True, "2026-12-06", " (the day before its first day)"),
    ],
)
def test_what_a_hand_over_too_early_says(early_pickup, allowed, said):
    start = domain.paris_midnight(date(2026, 12, 7))
    now = datetime(2026, 12, 4, 10, tzinfo=UTC)
    detail, errors = refusal(lambda: domain.ensure_hand_over_allowed(start, early_pickup, now))
    assert detail == f"Too early to hand over: from {allowed}"
    assert errors == [
        {
            "field": None,
            "message": f"a booking is handed over from {allowed}{said}",
            "type": "hand_over_too_early",
            "first_allowed": allowed,
        }
    ]


def test_a_refused_move_names_the_current_status():
    with pytest.raises(Conflict) as raised:
        domain.next_status(BookingStatus.RETURNED, "check_out")
    assert raised.value.detail == "A returned booking cannot check out"
    assert raised.value.extra == {"current_status": "returned"}
    with pytest.raises(Conflict) as raised:
        domain.next_status(BookingStatus.CHECKED_OUT, "cancel")
    assert raised.value.detail == "A booking handed over cannot be cancelled: record its return"
    assert raised.value.extra == {
        "current_status": "checked_out",
        "rule": "cancel_after_check_out",
    }
