"""Booking rules: periods across DST and month ends, quotes, rules, capacity, state machine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.bookings import BookingRequest, BookingStatus, Recurrence
from contracts.caller import Caller, Role
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from contracts.listings import Blackout, ListingSnapshot, PricingUnit
from services.bookings import domain
from services.bookings.domain import PARIS, Slot

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def listing(**changes) -> ListingSnapshot:
    fields = dict(
        listing_id="l1",
        owner_commune="42044",
        status="published",
        revision=1,
        title="Chasse-neige",
        category="deneigement",
        kind="vehicle",
        pricing_unit="day",
        rate_cents=42000,
        deposit_cents=150000,
        quantity=1,
        with_operator=True,
        operator_rate_cents=32000,
        min_duration=1,
        max_duration=10,
        lead_time_days=0,
    )
    return ListingSnapshot(**(fields | changes))


def caller(commune: str = "42218", *roles: Role) -> Caller:
    return Caller(user_id="u1", commune=commune, roles=frozenset(roles or {Role.AGENT}))


# -- periods ----------------------------------------------------------------------------


def test_two_days_are_two_paris_midnights_apart():
    slot = domain.slot_for(PricingUnit.DAY, date(2026, 12, 2), date(2026, 12, 4))
    assert slot.units == 2
    assert slot.start == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)  # 00:00 in Paris (UTC+1)
    assert slot.end - slot.start == timedelta(days=2)


def test_a_day_across_the_autumn_clock_change_is_still_one_day():
    slot = domain.slot_for(PricingUnit.DAY, date(2026, 10, 25), date(2026, 10, 26))
    assert slot.units == 1
    assert slot.end - slot.start == timedelta(hours=25)


def test_hours_across_the_spring_clock_change_count_real_hours():
    start = datetime(2026, 3, 29, 1, 0, tzinfo=PARIS)
    end = datetime(2026, 3, 29, 4, 0, tzinfo=PARIS)  # 02:00–03:00 does not exist that night
    assert domain.slot_for(PricingUnit.HOUR, start, end).units == 2


@pytest.mark.parametrize(
    "start, end, field",
    [
        (date(2026, 12, 4), date(2026, 12, 4), "end"),
        (datetime(2026, 12, 4, 10, tzinfo=UTC), date(2026, 12, 6), "start"),
    ],
)
def test_bad_day_periods_are_refused(start, end, field):
    with pytest.raises(InvalidInput) as refused:
        domain.slot_for(PricingUnit.DAY, start, end)
    assert refused.value.errors[0]["field"] == field


def test_hourly_listings_need_whole_hours():
    with pytest.raises(InvalidInput):
        domain.slot_for(
            PricingUnit.HOUR,
            datetime(2026, 12, 4, 10, 30, tzinfo=UTC),
            datetime(2026, 12, 4, 12, tzinfo=UTC),
        )
    with pytest.raises(InvalidInput):
        domain.slot_for(PricingUnit.HOUR, date(2026, 12, 4), date(2026, 12, 5))


@given(
    st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 1)),
    st.integers(min_value=1, max_value=62),
)
def test_day_units_are_calendar_days_whatever_the_month_or_clock(first, days):
    slot = domain.slot_for(PricingUnit.DAY, first, first + timedelta(days=days))
    assert slot.units == days
    assert slot.start.astimezone(PARIS).date() == first
    assert slot.end.astimezone(PARIS).hour == 0


def test_a_weekly_series_keeps_the_paris_wall_clock_across_dst():
    first = domain.slot_for(
        PricingUnit.HOUR,
        datetime(2026, 10, 20, 18, tzinfo=PARIS),
        datetime(2026, 10, 20, 20, tzinfo=PARIS),
    )
    slots = domain.occurrences(first, PricingUnit.HOUR, Recurrence(frequency="weekly", count=3))
    assert [s.start.astimezone(PARIS).hour for s in slots] == [18, 18, 18]
    assert [s.units for s in slots] == [2, 2, 2]
    assert slots[1].start - slots[0].start == timedelta(days=7, hours=1)  # clocks went back


def test_a_daily_series_until_a_date_includes_that_date():
    first = domain.slot_for(PricingUnit.DAY, date(2026, 12, 28), date(2026, 12, 29))
    slots = domain.occurrences(
        first, PricingUnit.DAY, Recurrence(frequency="daily", until=date(2027, 1, 2))
    )
    assert [s.start.astimezone(PARIS).date() for s in slots][-1] == date(2027, 1, 2)
    assert len(slots) == 6


# -- quote and rules --------------------------------------------------------------------


def test_the_quote_counts_units_operator_and_deposit_in_cents():
    slot = domain.slot_for(PricingUnit.DAY, date(2026, 12, 2), date(2026, 12, 4))
    quote = domain.quote_for(listing(), slot, quantity=1, with_operator=True)
    assert quote.rental_cents == 84000
    assert quote.operator_cents == 64000
    assert quote.amount_cents == 148000
    assert quote.deposit_cents == 150000
    without = domain.quote_for(listing(), slot, quantity=1, with_operator=False)
    assert without.amount_cents == 84000


def test_every_broken_rule_is_reported_at_once():
    slot = domain.slot_for(PricingUnit.DAY, date(2026, 11, 1), date(2026, 11, 20))
    with pytest.raises(InvalidInput) as refused:
        domain.check_request(
            listing(status="withdrawn", with_operator=False),
            "42044",
            slot,
            quantity=2,
            with_operator=True,
            now=NOW,
        )
    kinds = {e["type"] for e in refused.value.errors}
    assert kinds == {
        "listing_withdrawn",
        "own_listing",
        "in_the_past",
        "max_duration",
        "quantity",
        "no_operator",
    }


def test_lead_time_and_minimum_duration():
    slot = domain.slot_for(PricingUnit.DAY, date(2026, 12, 3), date(2026, 12, 4))
    with pytest.raises(InvalidInput) as refused:
        domain.check_request(
            listing(lead_time_days=7, min_duration=2), "42218", slot, 1, False, NOW
        )
    assert {e["type"] for e in refused.value.errors} == {"lead_time", "min_duration"}
    domain.check_request(listing(), "42218", slot, 1, False, NOW)  # no rule broken


def test_blackouts_overlapping_the_slot_are_found():
    closed = Blackout(
        id="b",
        start=datetime(2026, 12, 5, tzinfo=UTC),
        end=datetime(2026, 12, 6, tzinfo=UTC),
        reason="révision",
    )
    with_closure = listing(blackouts=[closed])
    inside = Slot(datetime(2026, 12, 5, 10, tzinfo=UTC), datetime(2026, 12, 5, 12, tzinfo=UTC), 2)
    after = Slot(datetime(2026, 12, 6, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC), 1)
    assert domain.blackout_over(with_closure, inside) == closed
    assert domain.blackout_over(with_closure, after) is None


def h(hour: int) -> datetime:
    return datetime(2026, 12, 5, hour, tzinfo=UTC)


def test_peak_usage_counts_simultaneous_units_only():
    holds = [(h(8), h(10), 1), (h(10), h(12), 1), (h(9), h(11), 1)]
    assert domain.peak_usage(holds, Slot(h(8), h(12), 4)) == 2
    assert domain.peak_usage(holds, Slot(h(12), h(14), 2)) == 0  # adjacent is free
    assert domain.peak_usage([(h(8), h(12), 3)], Slot(h(9), h(10), 1)) == 3


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 6), st.integers(1, 3)), max_size=12))
def test_peak_usage_matches_counting_hour_by_hour(bookings):
    holds = [(h(0) + timedelta(hours=s), h(0) + timedelta(hours=s + d), q) for s, d, q in bookings]
    slot = Slot(h(0) + timedelta(hours=5), h(0) + timedelta(hours=15), 10)
    by_hour = max(
        (
            sum(q for start, end, q in holds if start <= h(0) + timedelta(hours=t) < end)
            for t in range(5, 15)
        ),
        default=0,
    )
    assert domain.peak_usage(holds, slot) == by_hour


def test_a_clash_with_back_to_back_bookings_is_their_whole_period():
    """As availability shows it: [8, 10) then [10, 12) is one busy period, not two."""
    back_to_back = [(h(8), h(10), 1), (h(10), h(12), 1)]
    assert domain.clash(back_to_back, Slot(h(9), h(11), 2), room=0) == (h(8), h(12))
    assert domain.clash(back_to_back, Slot(h(11), h(13), 2), room=0) == (h(8), h(12))
    # two units: the hand-over leaves one free throughout, so nothing clashes for one
    assert domain.clash(back_to_back, Slot(h(9), h(11), 2), room=1) is None
    # a real gap between them: only the booking the slot overlaps
    apart = [(h(8), h(10), 1), (h(11), h(12), 1)]
    assert domain.clash(apart, Slot(h(9), h(10), 1), room=0) == (h(8), h(10))


@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(1, 6), st.integers(1, 3)), max_size=12),
    st.integers(0, 3),
    st.integers(0, 20),
    st.integers(1, 6),
)
def test_a_clash_is_the_whole_over_full_stretch_the_slot_meets(bookings, room, start, hours):
    holds = [(h(0) + timedelta(hours=s), h(0) + timedelta(hours=s + d), q) for s, d, q in bookings]
    slot = Slot(h(0) + timedelta(hours=start), h(0) + timedelta(hours=start + hours), hours)

    def over(t: int) -> bool:  # more than `room` units held during hour t
        at = h(0) + timedelta(hours=t)
        return sum(q for s, e, q in holds if s <= at < e) > room

    found = domain.clash(holds, slot, room)
    busy_hours = [t for t in range(start, start + hours) if over(t)]
    if not busy_hours:
        assert found is None
        return
    first = busy_hours[0]
    begin, end = first, first
    while over(begin - 1):
        begin -= 1
    while over(end + 1):
        end += 1
    assert found == (h(0) + timedelta(hours=begin), h(0) + timedelta(hours=end + 1))


def test_late_cancellation_by_the_borrower_pays_the_fee():
    terms = listing(cancellation_notice_days=2, late_cancellation_fee_cents=10000)
    start = NOW + timedelta(days=1)
    assert domain.cancellation_fee(terms, start, NOW) == 10000
    assert domain.cancellation_fee(terms, NOW + timedelta(days=3), NOW) == 0
    assert domain.cancellation_fee(None, start, NOW) == 0  # a listing never heard of


@pytest.mark.parametrize(
    "status, by_borrower, pays",
    [
        (BookingStatus.REQUESTED, True, True),
        (BookingStatus.APPROVED, True, True),
        (BookingStatus.APPROVED, False, False),  # the lender cancelling pays nothing
        (BookingStatus.WAITING, True, False),  # it never held the slot
    ],
)
def test_only_a_borrower_giving_up_a_held_slot_may_owe_the_fee(status, by_borrower, pays):
    assert domain.pays_to_cancel(status, by_borrower) is pays


# -- deciding a request -----------------------------------------------------------------


def request(start: datetime, hours: int = 2, **more) -> BookingRequest:
    end = start + timedelta(hours=hours)
    return BookingRequest.model_validate({"listing_id": "l1", "start": start, "end": end} | more)


def slots_of(asked: BookingRequest, terms: ListingSnapshot) -> list[Slot]:
    return domain.requested_slots(terms, asked.start, asked.end, asked.recurrence)


def test_a_free_slot_is_requested_and_then_held_for_the_next_request():
    terms = listing(pricing_unit="hour")
    asked = request(h(8), purpose="déneigement")
    holds: list = []
    decided = domain.decide_request(terms, caller(), asked, slots_of(asked, terms), holds, None)
    (booking,) = decided.bookings
    assert booking.status == BookingStatus.REQUESTED
    assert booking.note == "déneigement"
    assert booking.quote.amount_cents == 2 * 42000
    assert holds == [(h(8), h(10), 1)]
    with pytest.raises(Conflict) as refused:
        domain.decide_request(terms, caller(), asked, slots_of(asked, terms), holds, None)
    assert refused.value.extra["conflicting_period"] == {
        "start": h(8).isoformat(),
        "end": h(10).isoformat(),
    }


def test_a_taken_slot_joins_the_waitlist_when_asked_and_holds_nothing():
    terms = listing(pricing_unit="hour")
    asked = request(h(9), wait_if_taken=True)
    holds = [(h(8), h(10), 1)]
    decided = domain.decide_request(terms, caller(), asked, slots_of(asked, terms), holds, None)
    (booking,) = decided.bookings
    assert booking.status == BookingStatus.WAITING
    assert booking.note.startswith("waitlisted: 1 of 1 already booked")
    assert holds == [(h(8), h(10), 1)]


def test_a_series_books_the_free_occurrences_and_names_the_others():
    terms = listing(pricing_unit="hour")
    asked = request(h(8), recurrence={"frequency": "daily", "count": 3})
    holds = [(h(8) + timedelta(days=1), h(10) + timedelta(days=1), 1)]
    decided = domain.decide_request(terms, caller(), asked, slots_of(asked, terms), holds, "s1")
    assert [b.slot.start for b in decided.bookings] == [h(8), h(8) + timedelta(days=2)]
    assert {b.series_id for b in decided.bookings} == {"s1"}
    assert [c.start for c in decided.conflicts] == [h(8) + timedelta(days=1)]


# -- state machine ----------------------------------------------------------------------


def test_the_happy_path_and_the_invalid_transitions():
    status = BookingStatus.REQUESTED
    for action, expected in [
        ("approve", "approved"),
        ("check_out", "checked_out"),
        ("return", "returned"),
    ]:
        status = domain.next_status(status, action)
        assert status == expected
    with pytest.raises(Conflict):
        domain.next_status(BookingStatus.RETURNED, "cancel")
    with pytest.raises(Conflict):
        domain.next_status(BookingStatus.CHECKED_OUT, "cancel")
    with pytest.raises(Conflict):
        domain.next_status(BookingStatus.REJECTED, "approve")


def test_only_the_lenders_manager_decides_and_strangers_see_nothing():
    lender_manager = caller("42044", Role.MANAGER)
    borrower_agent = caller("42218", Role.AGENT)
    domain.ensure_may(lender_manager, "approve", "42218", "42044")
    with pytest.raises(Forbidden):
        domain.ensure_may(borrower_agent, "approve", "42218", "42044")
    with pytest.raises(Forbidden):
        domain.ensure_may(caller("42044", Role.AGENT), "approve", "42218", "42044")
    domain.ensure_may(borrower_agent, "cancel", "42218", "42044")
    with pytest.raises(NotFound):
        domain.ensure_may(caller("42095", Role.MANAGER), "cancel", "42218", "42044")
    with pytest.raises(NotFound):
        domain.ensure_party(caller("42095", Role.AGENT), "42218", "42044")


@pytest.mark.parametrize("action", ["expire", "promote"])
def test_the_services_own_moves_are_nobodys(action):
    with pytest.raises(Forbidden):
        domain.ensure_may(caller("42044", Role.MANAGER, Role.AGENT), action, "42218", "42044")


@pytest.mark.parametrize(
    "current, action, frees",
    [
        (BookingStatus.REQUESTED, "reject", True),
        (BookingStatus.APPROVED, "cancel", True),
        (BookingStatus.REQUESTED, "expire", True),
        (BookingStatus.WAITING, "cancel", False),  # a waitlisted request held nothing
        (BookingStatus.WAITING, "expire", False),
        (BookingStatus.CHECKED_OUT, "return", False),
        (BookingStatus.REQUESTED, "approve", False),
    ],
)
def test_a_slot_goes_back_to_the_waitlist_when_a_holding_booking_ends_early(current, action, frees):
    assert domain.frees_slot(current, domain.next_status(current, action)) is frees
