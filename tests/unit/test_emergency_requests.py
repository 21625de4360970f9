"""Urgent requests as phase 2 applies episodes: which request an episode makes urgent (its
first slot, the declared need or service continuity), the lead time waived and nothing
else, approval by hand refused while the allocation window is open, the needs left unmet
on a coordinator's page, and what a search shows first in an episode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.emergencies import EmergencyDeclaration, EmergencyView, Need, Territory
from contracts.errors import Conflict, InvalidInput
from contracts.listings import ListingSnapshot
from gateway.pages.emergencies import urgent_first
from infra.communes import load_directory
from services.bookings.emergency import (
    as_urgent,
    check_period,
    ensure_decidable,
    unmet_needs,
    urgency_of,
)
from services.listings.domain import free_now_first

SAINT_ETIENNE, CHAMBON, LYON = "42218", "42044", "69123"
START = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def directory():
    return load_directory()


def episode(**changes) -> EmergencyView:
    return EmergencyView(
        id="e1",
        name="Épisode neigeux Loire",
        territory=Territory(departments=["42"]),
        categories=["deneigement"],
        start=START,
        end=START + timedelta(days=2),
        declared_by="u",
        declared_by_commune=SAINT_ETIENNE,
        declared_at=START,
    ).model_copy(update=changes)


def plough(**changes) -> ListingSnapshot:
    return ListingSnapshot(
        listing_id="p1",
        owner_commune=CHAMBON,
        status="published",
        revision=1,
        title="Chasse-neige",
        category="deneigement",
        kind="vehicle",
        pricing_unit="day",
        rate_cents=30000,
        quantity=2,
        lead_time_days=3,
    ).model_copy(update=changes)


def slot(hours_after_start: int = 1):
    start = START + timedelta(hours=hours_after_start)
    return [(start, start + timedelta(days=1))]


def test_a_covered_request_is_urgent_with_its_need_and_distance(directory):
    urgent = urgency_of(
        [episode()],
        borrower_commune=SAINT_ETIENNE,
        listing=plough(),
        slots=slot(),
        need=Need.MAIN_ROADS,
        directory=directory,
    )
    assert urgent is not None
    assert (urgent.emergency_id, urgent.need) == ("e1", Need.MAIN_ROADS)
    assert urgent.distance_km == pytest.approx(6.5, abs=0.1)


def test_no_need_declared_is_service_continuity(directory):
    urgent = urgency_of(
        [episode()],
        borrower_commune=SAINT_ETIENNE,
        listing=plough(),
        slots=slot(),
        need=None,
        directory=directory,
    )
    assert urgent is not None and urgent.need == Need.SERVICE_CONTINUITY


@pytest.mark.parametrize(
    "borrower, listing, slots",
    [
        (LYON, plough(), slot()),  # the borrower outside the territory
        (SAINT_ETIENNE, plough(category="voirie"), slot()),  # a category not concerned
        (SAINT_ETIENNE, plough(), slot(24 * 3)),  # after the episode
        (SAINT_ETIENNE, plough(), []),  # nothing asked
    ],
)
def test_what_an_episode_does_not_cover_is_not_urgent(directory, borrower, listing, slots):
    assert (
        urgency_of(
            [episode()],
            borrower_commune=borrower,
            listing=listing,
            slots=slots,
            need=Need.SAFETY_OF_PEOPLE,
            directory=directory,
        )
        is None
    )


def test_an_urgent_request_meets_the_listing_without_its_lead_time_only():
    listing = plough(lead_time_days=5, min_duration=2)
    urgent = as_urgent(listing)
    assert urgent.lead_time_days == 0
    assert (urgent.min_duration, urgent.quantity) == (2, 2)
    assert listing.lead_time_days == 5  # the copy is untouched


def test_an_episode_already_over_is_refused():
    declared = EmergencyDeclaration(
        name="Tempête",
        territory=Territory(departments=["42"]),
        categories=["deneigement"],
        start=START - timedelta(days=2),
        end=START - timedelta(days=1),
    )
    with pytest.raises(InvalidInput):
        check_period(declared, START)
    check_period(declared.model_copy(update={"end": None}), START)


def test_an_undecided_urgent_request_is_not_approved_by_hand():
    with pytest.raises(Conflict):
        ensure_decidable("approve", undecided_urgent=True)
    ensure_decidable("reject", undecided_urgent=True)
    ensure_decidable("approve", undecided_urgent=False)


def test_unmet_needs_count_what_was_not_served_most_pressing_first():
    unmet = unmet_needs(
        [
            (Need.COMFORT, "rejected"),
            (Need.SAFETY_OF_PEOPLE, "expired"),
            (Need.SAFETY_OF_PEOPLE, "approved"),
            (Need.MAIN_ROADS, "requested"),
            (Need.COMFORT, "cancelled"),
        ]
    )
    assert list(unmet.items()) == [(Need.SAFETY_OF_PEOPLE, 1), (Need.COMFORT, 2)]


def test_lenders_see_urgent_requests_first_most_pressing_need_first():
    ordinary = {"id": "a", "urgency": None}
    comfort = {"id": "b", "urgency": {"need": "comfort"}}
    safety = {"id": "c", "urgency": {"need": "safety_of_people"}}
    later = {"id": "d"}
    assert [b["id"] for b in urgent_first([ordinary, comfort, later, safety])] == [
        "c",
        "b",
        "a",
        "d",
    ]


def test_search_in_an_episode_shows_what_is_free_now_first():
    near_taken = {"id": "1", "category": "deneigement", "quantity": 1}
    near_other = {"id": "2", "category": "voirie", "quantity": 1}
    far_free = {"id": "3", "category": "deneigement", "quantity": 2}
    ordered = free_now_first([near_taken, near_other, far_free], {"deneigement"}, {"1": 1, "3": 1})
    assert [i["id"] for i in ordered] == ["3", "1", "2"]
