"""Moving a booking to other dates: who may (the borrower edits a request, the lender's
manager moves an approved loan), the listing's rules as for a request (lead time waived for
the lender), Paris days, and the quote at the rates agreed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from contracts.bookings import BookingStatus, Quote
from contracts.caller import Caller, Role
from contracts.errors import Conflict, Forbidden, InvalidInput
from contracts.listings import PricingUnit
from services.bookings import domain, emergency
from services.bookings.domain import Slot
from tests.unit.test_bookings_domain import listing

LENDER, BORROWER = "42044", "42218"
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def who(commune: str, *roles: Role) -> Caller:
    return Caller(user_id="u", commune=commune, roles=frozenset(roles))


def days(first: date, last_excluded: date) -> Slot:
    return domain.slot_for(PricingUnit.DAY, first, last_excluded)


CURRENT = days(date(2026, 12, 10), date(2026, 12, 12))


def test_a_request_is_edited_by_its_borrower_an_approved_loan_moved_by_the_lender():
    assert domain.move_action(BookingStatus.REQUESTED) == "change_dates"
    assert domain.move_action(BookingStatus.APPROVED) == "reschedule"
    for role in (Role.AGENT, Role.MANAGER):
        domain.ensure_may(who(BORROWER, role), "change_dates", BORROWER, LENDER)
    with pytest.raises(Forbidden) as refused:
        domain.ensure_may(who(LENDER, Role.MANAGER), "change_dates", BORROWER, LENDER)
    assert refused.value.detail == "Only an agent or manager of the borrowing commune may do this"
    domain.ensure_may(who(LENDER, Role.MANAGER), "reschedule", BORROWER, LENDER)
    for caller in (who(BORROWER, Role.MANAGER), who(LENDER, Role.AGENT)):
        with pytest.raises(Forbidden):
            domain.ensure_may(caller, "reschedule", BORROWER, LENDER)


@pytest.mark.parametrize(
    "status",
    [s for s in BookingStatus if s not in (BookingStatus.REQUESTED, BookingStatus.APPROVED)],
)
def test_only_a_requested_or_approved_booking_moves(status):
    with pytest.raises(Conflict) as refused:
        domain.next_status(status, domain.move_action(status))
    assert refused.value.extra["current_status"] == status.value


def test_the_status_is_kept():
    assert domain.next_status(BookingStatus.REQUESTED, "change_dates") == BookingStatus.REQUESTED
    assert domain.next_status(BookingStatus.APPROVED, "reschedule") == BookingStatus.APPROVED


def test_an_urgent_request_waiting_for_its_window_does_not_move():
    with pytest.raises(Conflict):
        emergency.ensure_decidable("change_dates", undecided_urgent=True)
    emergency.ensure_decidable("change_dates", undecided_urgent=False)


def test_the_quote_follows_the_dates_at_the_rates_agreed():
    plough = listing()
    agreed = domain.quote_for(plough, CURRENT, 2, with_operator=True)
    longer = days(date(2026, 12, 10), date(2026, 12, 15))
    moved = domain.requote(agreed, longer)
    assert moved.units == 5
    assert moved.rental_cents == 5 * 42000 * 2
    assert moved.operator_cents == 5 * 32000 * 2
    assert moved.amount_cents == moved.rental_cents + moved.operator_cents
    # deposit and late fee are per item, not per day: unchanged
    assert (moved.deposit_cents, moved.late_fee_per_day_cents) == (
        agreed.deposit_cents,
        agreed.late_fee_per_day_cents,
    )
    # a listing repriced since does not change what was agreed
    repriced = listing(rate_cents=99000)
    assert domain.requote(agreed, longer) != domain.quote_for(repriced, longer, 2, True)
    assert domain.requote(agreed, longer).unit_rate_cents == 42000


def test_a_quote_without_operator_stays_without():
    agreed = Quote.model_validate(
        domain.quote_for(listing(), CURRENT, 1, with_operator=False).model_dump()
    )
    moved = domain.requote(agreed, days(date(2026, 12, 10), date(2026, 12, 11)))
    assert (moved.units, moved.operator_cents, moved.amount_cents) == (1, 0, 42000)


def test_the_same_dates_are_refused():
    with pytest.raises(InvalidInput) as refused:
        domain.check_move(listing(), BORROWER, CURRENT, CURRENT, 1, False, NOW, by_lender=False)
    assert refused.value.errors[0]["type"] == "same_dates"


def test_the_listing_rules_hold_for_new_dates_every_broken_one_reported():
    too_long = days(date(2026, 12, 10), date(2026, 12, 25))  # 15 days, max 10
    with pytest.raises(InvalidInput) as refused:
        domain.check_move(
            listing(status="withdrawn"), BORROWER, CURRENT, too_long, 1, False, NOW, False
        )
    assert {e["type"] for e in refused.value.errors} == {"listing_withdrawn", "max_duration"}


def test_the_lead_time_binds_the_borrower_not_the_lender_who_set_it():
    with_notice = listing(lead_time_days=7)
    soon = days(date(2026, 12, 3), date(2026, 12, 4))
    with pytest.raises(InvalidInput) as refused:
        domain.check_move(with_notice, BORROWER, CURRENT, soon, 1, False, NOW, by_lender=False)
    assert refused.value.errors[0]["type"] == "lead_time"
    domain.check_move(with_notice, BORROWER, CURRENT, soon, 1, False, NOW, by_lender=True)


def test_today_is_paris_today_even_for_the_lender():
    """At 23:30 UTC on 6 December it is already 7 December in Paris: a move to the 6th is in
    the past, to the 7th is today."""
    late = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
    yesterday = days(date(2026, 12, 6), date(2026, 12, 7))
    with pytest.raises(InvalidInput) as refused:
        domain.check_move(listing(), BORROWER, CURRENT, yesterday, 1, False, late, by_lender=True)
    assert refused.value.errors[0]["type"] == "in_the_past"
    assert refused.value.errors[0]["first_allowed"] == "2026-12-07"
    today = days(date(2026, 12, 7), date(2026, 12, 8))
    domain.check_move(listing(), BORROWER, CURRENT, today, 1, False, late, by_lender=True)


def test_the_history_says_from_which_dates_to_which():
    moved = days(date(2026, 12, 14), date(2026, 12, 16))
    note = domain.moved_note(PricingUnit.DAY, CURRENT, moved, "lame en révision")
    assert note == (
        "dates changées, du 10/12/2026 au 11/12/2026 → du 14/12/2026 au 15/12/2026 : "
        "lame en révision"
    )
    hours = domain.slot_for(
        PricingUnit.HOUR,
        datetime(2026, 12, 10, 8, tzinfo=UTC),
        datetime(2026, 12, 10, 10, tzinfo=UTC),
    )
    later = domain.slot_for(
        PricingUnit.HOUR,
        datetime(2026, 12, 10, 13, tzinfo=UTC),
        datetime(2026, 12, 10, 15, tzinfo=UTC),
    )
    assert domain.moved_note(PricingUnit.HOUR, hours, later, "") == (
        "dates changées, le 10/12/2026 de 09:00 à 11:00 → le 10/12/2026 de 14:00 à 16:00"
    )


# -- dearer dates need the borrower's consent --------------------------------------------


def test_dearer_dates_of_an_approved_loan_need_the_borrowers_consent():
    """More days (or hours) at the rates agreed cost the borrower more: the lender's move is
    only a proposal; the same price or less is the lender's alone; a borrower editing its
    own request consents by asking, whatever the price."""
    agreed = domain.quote_for(listing(), CURRENT, 1, with_operator=False)
    longer = domain.requote(agreed, days(date(2026, 12, 10), date(2026, 12, 13)))
    elsewhere = domain.requote(agreed, days(date(2026, 12, 14), date(2026, 12, 16)))
    shorter = domain.requote(agreed, days(date(2026, 12, 10), date(2026, 12, 11)))
    assert domain.needs_consent("reschedule", agreed, longer)
    assert not domain.needs_consent("reschedule", agreed, elsewhere)
    assert not domain.needs_consent("reschedule", agreed, shorter)
    assert not domain.needs_consent("change_dates", agreed, longer)


def test_a_proposal_lapses_once_the_loan_starts_or_leaves_approved():
    start = datetime(2026, 12, 9, 23, tzinfo=UTC)
    assert not domain.proposal_lapsed(BookingStatus.APPROVED, start, NOW)
    assert domain.proposal_lapsed(BookingStatus.APPROVED, start, start)
    for status in (BookingStatus.CHECKED_OUT, BookingStatus.CANCELLED):
        assert domain.proposal_lapsed(status, start, NOW)


def test_the_borrowers_manager_answers_a_proposal_the_lenders_manager_withdraws_it():
    manager = who(BORROWER, Role.MANAGER)
    domain.ensure_answerable(manager, BORROWER, LENDER, pending=True, lapsed=False)
    for caller in (who(BORROWER, Role.AGENT), who(LENDER, Role.MANAGER)):
        with pytest.raises(Forbidden):
            domain.ensure_answerable(caller, BORROWER, LENDER, pending=True, lapsed=False)
    domain.ensure_withdrawable(who(LENDER, Role.MANAGER), BORROWER, LENDER, True, False)
    with pytest.raises(Forbidden):
        domain.ensure_withdrawable(manager, BORROWER, LENDER, True, False)
    with pytest.raises(Conflict) as none:
        domain.ensure_answerable(manager, BORROWER, LENDER, pending=False, lapsed=False)
    assert none.value.extra["rule"] == "no_proposal"
    with pytest.raises(Conflict) as lapsed:
        domain.ensure_answerable(manager, BORROWER, LENDER, pending=True, lapsed=True)
    assert lapsed.value.extra["rule"] == "proposal_lapsed"


def test_the_dates_revision_starts_at_approval_and_grows_with_each_change():
    assert domain.dates_revision(3, "approve") == 0
    assert domain.dates_revision(0, "move") == 1
    assert domain.dates_revision(1, "cancel") == 2
    assert domain.dates_revision(None, "move") == 1  # a row from before the column
