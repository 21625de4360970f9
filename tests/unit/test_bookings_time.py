"""Booking rules about time as communes live it (Europe/Paris): same-day requests, lead
times, when an undecided request expires, hand-over, overdue and days late — at the hard
moments: 23:30 UTC (already tomorrow in Paris), the clock changes, New Year's Eve."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from contracts.bookings import BookingStatus
from contracts.clock import now
from contracts.errors import Conflict, InvalidInput
from contracts.listings import ListingSnapshot, PricingUnit
from services.bookings import domain, repository
from services.bookings.models import BookingRow
from tests.unit.test_bookings_domain import listing


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def days(first: date, last: date) -> domain.Slot:
    return domain.slot_for(PricingUnit.DAY, first, last + timedelta(days=1))


def hours(start: datetime, count: int = 1) -> domain.Slot:
    return domain.slot_for(PricingUnit.HOUR, start, start + timedelta(hours=count))


def refusal(terms: ListingSnapshot, slot: domain.Slot, at: datetime) -> dict | None:
    """The one time rule `slot` breaks at `at`, or None when it may be requested."""
    try:
        domain.check_request(terms, "42218", slot, 1, False, at)
    except InvalidInput as refused:
        (error,) = refused.errors
        return error
    return None


# -- same-day requests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "today"),
    [
        pytest.param(utc(2026, 12, 7, 9, 0), date(2026, 12, 7), id="a snowy morning"),
        pytest.param(utc(2026, 12, 7, 22, 59), date(2026, 12, 7), id="23:59 in Paris"),
        pytest.param(utc(2026, 12, 6, 23, 30), date(2026, 12, 7), id="23:30 UTC is tomorrow"),
        pytest.param(utc(2026, 12, 31, 23, 30), date(2027, 1, 1), id="new year in Paris"),
        pytest.param(utc(2026, 3, 29, 1, 30), date(2026, 3, 29), id="spring forward"),
        pytest.param(utc(2026, 3, 29, 21, 30), date(2026, 3, 29), id="23:30 CEST"),
        pytest.param(utc(2026, 10, 25, 1, 30), date(2026, 10, 25), id="fall back"),
        pytest.param(utc(2026, 10, 25, 22, 30), date(2026, 10, 25), id="23:30 CET"),
    ],
)
def test_a_day_listing_is_booked_for_today_while_today_lasts_in_paris(at, today):
    assert refusal(listing(), days(today, today), at) is None
    yesterday = today - timedelta(days=1)
    error = refusal(listing(), days(yesterday, today), at)
    assert error["type"] == "in_the_past"
    assert error["first_allowed"] == today.isoformat()


def test_the_quote_of_a_same_day_loan_charges_the_whole_first_day():
    slot = days(date(2026, 12, 7), date(2026, 12, 7))
    assert domain.quote_for(listing(), slot, 1, False).rental_cents == 42000


@pytest.mark.parametrize(
    ("at", "lead", "first"),
    [
        pytest.param(utc(2026, 12, 7, 9, 0), 0, date(2026, 12, 7), id="no notice: today"),
        pytest.param(utc(2026, 12, 7, 9, 0), 2, date(2026, 12, 9), id="two days"),
        pytest.param(utc(2026, 12, 6, 23, 30), 1, date(2026, 12, 8), id="Paris's today + 1"),
        pytest.param(utc(2026, 12, 30, 23, 30), 2, date(2027, 1, 2), id="across the year"),
    ],
)
def test_the_lead_time_counts_paris_days_from_today(at, lead, first):
    terms = listing(lead_time_days=lead)
    assert refusal(terms, days(first, first), at) is None
    if lead:
        error = refusal(terms, days(first - timedelta(days=1), first), at)
        assert error["type"] == "lead_time"
        assert error["first_allowed"] == first.isoformat()


@pytest.mark.parametrize(
    ("at", "current_hour"),
    [
        pytest.param(utc(2026, 12, 7, 9, 20), utc(2026, 12, 7, 9), id="10:20 in Paris"),
        pytest.param(utc(2026, 12, 31, 23, 30), utc(2026, 12, 31, 23), id="new year"),
        # 03:30 CEST, just after the clocks jumped from 02:00 to 03:00
        pytest.param(utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 1), id="spring forward"),
        # the second 02:30 of the night (CET), an hour after the first one (CEST)
        pytest.param(utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 1), id="fall back"),
    ],
)
def test_an_hour_listing_is_booked_from_the_current_hour_while_it_lasts(at, current_hour):
    room = listing(pricing_unit="hour", category="salles", kind="space")
    assert refusal(room, hours(current_hour), at) is None
    assert domain.quote_for(room, hours(current_hour), 1, False).units == 1  # the whole hour
    error = refusal(room, hours(current_hour - timedelta(hours=1)), at)
    assert error["type"] == "in_the_past"
    assert datetime.fromisoformat(error["first_allowed"]) == current_hour


def test_an_hour_listing_with_a_lead_time_starts_on_a_later_paris_day():
    room = listing(pricing_unit="hour", category="salles", kind="space", lead_time_days=1)
    at = utc(2026, 12, 6, 23, 30)  # 00:30 on 7 December in Paris
    error = refusal(room, hours(utc(2026, 12, 7, 9)), at)
    assert error["type"] == "lead_time"
    assert error["first_allowed"] == "2026-12-08T00:00:00+01:00"
    assert refusal(room, hours(utc(2026, 12, 7, 23)), at) is None  # 00:00 on the 8th


# -- requests undecided -----------------------------------------------------------------


def test_an_undecided_request_expires_once_its_first_day_or_hour_is_over():
    first_day = domain.paris_midnight(date(2026, 10, 25))  # a 25-hour day
    assert domain.decide_by(PricingUnit.DAY, first_day) == domain.paris_midnight(date(2026, 10, 26))
    assert domain.decide_by(PricingUnit.DAY, first_day) - first_day == timedelta(hours=25)
    assert domain.decide_by(PricingUnit.HOUR, utc(2026, 12, 7, 9)) == utc(2026, 12, 7, 10)


# -- hand-over, return, overdue ---------------------------------------------------------

FIRST_DAY = domain.paris_midnight(date(2026, 12, 7))


@pytest.mark.parametrize(
    ("at", "early_pickup", "allowed"),
    [
        pytest.param(utc(2026, 12, 7, 7), False, True, id="on the first day"),
        pytest.param(utc(2026, 12, 6, 23, 30), False, True, id="00:30 of the first day"),
        pytest.param(utc(2026, 12, 6, 22, 30), False, False, id="23:30 the day before"),
        pytest.param(utc(2026, 12, 6, 15), True, True, id="the day before, early pick-up"),
        pytest.param(utc(2026, 12, 5, 22, 59), True, False, id="two days before"),
        pytest.param(utc(2026, 12, 20, 10), False, True, id="late: still allowed"),
    ],
)
def test_a_booking_is_handed_over_from_its_first_day(at, early_pickup, allowed):
    if allowed:
        domain.ensure_hand_over_allowed(FIRST_DAY, early_pickup, at)
        return
    with pytest.raises(InvalidInput) as refused:
        domain.ensure_hand_over_allowed(FIRST_DAY, early_pickup, at)
    (error,) = refused.value.errors
    assert error["type"] == "hand_over_too_early"
    assert error["first_allowed"] == ("2026-12-06" if early_pickup else "2026-12-07")


def test_a_booking_handed_over_is_returned_not_cancelled():
    with pytest.raises(Conflict) as refused:
        domain.next_status(BookingStatus.CHECKED_OUT, "cancel")
    assert refused.value.extra["rule"] == "cancel_after_check_out"
    with pytest.raises(Conflict):
        domain.next_status(BookingStatus.APPROVED, "return")  # only after hand-over
    assert domain.next_status(BookingStatus.CHECKED_OUT, "return") == BookingStatus.RETURNED


END = domain.paris_midnight(date(2026, 12, 9))  # a loan of 7-8 December


@pytest.mark.parametrize(
    ("returned_at", "late"),
    [
        pytest.param(utc(2026, 12, 8, 16), 0, id="on the last day"),
        pytest.param(utc(2026, 12, 8, 23, 30), 1, id="00:30 the day after"),
        pytest.param(utc(2026, 12, 9, 15), 1, id="the day after"),
        pytest.param(utc(2026, 12, 10, 22, 59), 2, id="23:59 two days after"),
        pytest.param(utc(2026, 12, 5, 9), 0, id="early"),
    ],
)
def test_days_late_are_started_paris_days_after_the_last_day(returned_at, late):
    assert domain.days_late(END, returned_at) == late


def test_an_hour_booking_is_late_from_the_next_paris_day():
    end = utc(2026, 12, 7, 11)  # 12:00 in Paris
    assert domain.days_late(end, utc(2026, 12, 7, 18)) == 0
    assert domain.days_late(end, utc(2026, 12, 7, 23, 5)) == 1
    across_new_year = utc(2026, 12, 31, 22)  # 23:00 in Paris
    assert domain.days_late(across_new_year, utc(2026, 12, 31, 23, 30)) == 1


def test_the_late_fee_is_agreed_in_the_quote():
    slot = days(date(2026, 12, 7), date(2026, 12, 8))
    quote = domain.quote_for(listing(late_fee_per_day_cents=5000, quantity=3), slot, 2, False)
    assert quote.late_fee_per_day_cents == 10000  # per unit lent


def booking_row(status: BookingStatus, end: datetime) -> BookingRow:
    return BookingRow(
        id="b1",
        listing_id="l1",
        listing_title="Chasse-neige",
        lender_commune="42044",
        borrower_commune="42218",
        status=status.value,
        start=FIRST_DAY,
        end=end,
        quantity=1,
        purpose="",
        with_operator=False,
        order_reference=None,
        quote=domain.quote_for(
            listing(), days(date(2026, 12, 7), date(2026, 12, 8)), 1, False
        ).model_dump(mode="json"),
        damages=[],
        cancellation_fee_cents=0,
        created_at=utc(2026, 12, 1),
    )


@pytest.mark.parametrize(
    ("at", "status", "overdue"),
    [
        pytest.param(utc(2026, 12, 8, 22, 59), BookingStatus.CHECKED_OUT, False, id="last min"),
        pytest.param(utc(2026, 12, 8, 23, 0), BookingStatus.CHECKED_OUT, True, id="at its end"),
        pytest.param(utc(2026, 12, 10, 8), BookingStatus.RETURNED, False, id="returned"),
        pytest.param(utc(2026, 12, 10, 8), BookingStatus.APPROVED, False, id="never lent"),
    ],
)
def test_a_loan_not_returned_by_its_end_is_overdue_as_of_the_clock(at, status, overdue):
    with time_machine.travel(at, tick=False):
        assert now() == at
        assert repository.view_of(booking_row(status, END)).overdue is overdue
