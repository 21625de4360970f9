"""The booking page's new-dates form: filled with the booking's own dates as the booking form
asks them (Paris days, the last one included; or a Paris day and two hours), so that what it
sends back unchanged is the same period; and which side sees which form."""

from __future__ import annotations

from datetime import datetime

import pytest

from contracts.caller import Role
from gateway.pages.bookings import allowed_actions, dates_form, proposal_actions
from gateway.pages.forms import booking_period, instant
from gateway.pages.french import field_message

LENDER, BORROWER = "42044", "42218"


def booking(status: str, start: str, end: str, unit: str = "day") -> dict:
    return {
        "status": status,
        "start": start,
        "end": end,
        "quote": {"pricing_unit": unit},
        "borrower_commune": BORROWER,
        "lender_commune": LENDER,
    }


@pytest.mark.parametrize(
    ("unit", "start", "end", "shown"),
    [
        # two Paris days, 7 and 8 December: midnights in Paris are 23:00 UTC the day before
        (
            "day",
            "2026-12-06T23:00:00+00:00",
            "2026-12-08T23:00:00+00:00",
            {"du": "2026-12-07", "au": "2026-12-08"},
        ),
        # across the end of summer time: 25 and 26 October 2026
        (
            "day",
            "2026-10-24T22:00:00+00:00",
            "2026-10-26T23:00:00+00:00",
            {"du": "2026-10-25", "au": "2026-10-26"},
        ),
        (
            "hour",
            "2026-12-07T08:00:00+00:00",
            "2026-12-07T10:00:00+00:00",
            {"jour": "2026-12-07", "heure_debut": "09:00", "heure_fin": "11:00"},
        ),
    ],
)
def test_the_form_shows_the_bookings_period_and_sends_it_back_unchanged(unit, start, end, shown):
    found = dates_form(booking("approved", start, end, unit))
    assert found == shown
    first, last = booking_period(unit, found)
    assert (instant(first), instant(last)) == (
        datetime.fromisoformat(start),
        datetime.fromisoformat(end),
    )


def test_the_borrower_edits_a_request_the_lender_moves_an_approved_loan():
    requested = booking("requested", "2026-12-06T23:00:00+00:00", "2026-12-07T23:00:00+00:00")
    approved = requested | {"status": "approved"}
    manager, agent = frozenset({Role.MANAGER}), frozenset({Role.AGENT})
    assert "modifier-dates" in allowed_actions(requested, BORROWER, agent)
    assert "deplacer" not in allowed_actions(requested, LENDER, manager)
    assert "deplacer" in allowed_actions(approved, LENDER, manager)
    assert not {"deplacer", "modifier-dates"} & set(allowed_actions(approved, BORROWER, manager))
    assert "deplacer" not in allowed_actions(approved, LENDER, agent)
    handed_over = approved | {"status": "checked_out"}
    assert not {"deplacer", "modifier-dates"} & set(allowed_actions(handed_over, LENDER, manager))


def test_the_same_dates_again_are_refused_in_french():
    error = {
        "field": "start",
        "message": "give other dates than the booking's",
        "type": "same_dates",
    }
    assert field_message(error) == "La réservation a déjà ces dates : choisissez-en d'autres."


def test_new_dates_proposed_are_answered_by_the_borrowers_manager_withdrawn_by_the_lenders():
    """The loan page offers Accept/Decline to the borrower's manager, Withdraw to the
    lender's, nothing to agents or when nothing is proposed."""
    loan = booking("approved", "2026-12-06T23:00:00+00:00", "2026-12-08T23:00:00+00:00")
    proposed = loan | {"proposal": {"id": "p-1"}}
    manager, agent = frozenset({Role.MANAGER}), frozenset({Role.AGENT})
    assert proposal_actions(proposed, BORROWER, manager) == ["accepter-dates", "refuser-dates"]
    assert proposal_actions(proposed, LENDER, manager) == ["retirer-dates"]
    assert proposal_actions(proposed, BORROWER, agent) == []
    assert proposal_actions(loan | {"proposal": None}, BORROWER, manager) == []
