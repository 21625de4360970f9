"""Listings' rules the other listing tests leave out: where bookings hold every unit
(saturated periods, against a count quarter-hour by quarter-hour), the search window's
instants, the text searched, the distance scale, and who may change a listing."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.caller import Caller, Role
from contracts.clock import PARIS
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from contracts.listings import ListingStatus
from services.listings import domain

BASE = datetime(2026, 3, 2, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


def at(quarter: int) -> datetime:
    return BASE + quarter * QUARTER


holds = st.lists(
    st.builds(
        lambda start, length, units: (at(start), at(start + length), units),
        st.integers(min_value=0, max_value=60),
        st.integers(min_value=1, max_value=20),
        st.integers(min_value=1, max_value=3),
    ),
    max_size=10,
)


@settings(deadline=None)
@given(holds, st.integers(min_value=1, max_value=4))
def test_saturated_periods_are_where_every_unit_is_held(held, quantity):
    full = domain.saturated_periods(held, quantity)
    covered = {
        q for start, end in full for q in range((start - BASE) // QUARTER, (end - BASE) // QUARTER)
    }
    for q in range(-1, 90):
        moment = at(q)
        used = sum(units for start, end, units in held if start <= moment < end)
        assert (q in covered) == (used >= quantity), q
    for start, end in full:
        assert start < end
    for (_, end), (start, _) in itertools.pairwise(full):
        assert end < start  # merged: ordered, apart, not even touching


def test_back_to_back_full_bookings_are_one_saturated_period():
    held = [(at(0), at(4), 2), (at(4), at(8), 2)]
    assert domain.saturated_periods(held, 2) == [(at(0), at(8))]


def test_only_the_overlap_of_two_half_bookings_is_saturated():
    held = [(at(0), at(8), 1), (at(4), at(12), 1)]
    assert domain.saturated_periods(held, 2) == [(at(4), at(8))]
    assert domain.saturated_periods(held, 1) == [(at(0), at(12))]
    assert domain.saturated_periods(held, 3) == []
    assert domain.saturated_periods([], 1) == []


def test_more_than_every_unit_held_is_still_saturated():
    assert domain.saturated_periods([(at(0), at(4), 5)], 2) == [(at(0), at(4))]


# -- the search window ------------------------------------------------------------------


def test_a_date_is_midnight_in_paris_and_a_datetime_stays_as_given():
    assert domain.as_instant(date(2026, 7, 1)) == datetime(2026, 7, 1, tzinfo=PARIS)
    assert domain.as_instant(date(2026, 7, 1)).utcoffset() == timedelta(hours=2)
    moment = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
    assert domain.as_instant(moment) is moment


def test_a_window_ending_on_31_december_runs_to_the_new_year():
    start, end = domain.window(date(2026, 12, 31), date(2026, 12, 31))
    assert (start, end) == (
        datetime(2026, 12, 31, tzinfo=PARIS),
        datetime(2027, 1, 1, tzinfo=PARIS),
    )


def test_an_empty_window_names_both_fields_the_client_sent():
    with pytest.raises(InvalidInput) as raised:
        domain.window(date(2026, 7, 2), date(2026, 7, 1), names=("from", "to"))
    assert raised.value.detail == "The period is empty"
    assert raised.value.errors == [
        {"field": "to", "message": "must be after from", "type": "value_error"}
    ]


# -- text and distance ------------------------------------------------------------------


def test_the_searched_text_is_folded_and_padded_for_whole_words():
    text = domain.search_text("Chasse-Neige", "Lame « biaise »", "Déneigement")
    assert text == " chasse neige lame biaise deneigement "
    assert domain.query_terms("  Salle DES Fêtes ") == ["salle", "des", "fetes"]
    assert domain.query_terms(None) == [] and domain.query_terms("") == []


def test_the_longitude_scale_is_the_cosine_of_the_latitude():
    assert domain.Origin(60.0, 5.0).lon_scale == pytest.approx(0.5)
    assert domain.Origin(0.0, 5.0).lon_scale == pytest.approx(1.0)
    km_per_degree = 6371.0088 * math.pi / 180
    assert domain.Origin(45, 4).degree_radius(km_per_degree) == pytest.approx(1.01)


# -- who may change a listing -----------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_only_a_manager_of_the_owning_commune_changes_a_listing(role):
    caller = Caller(user_id="u", commune="42044", roles=frozenset({role}))
    if role == Role.MANAGER:
        domain.ensure_manager_of(caller, "42044")
    else:
        with pytest.raises(Forbidden) as raised:
            domain.ensure_manager_of(caller, "42044")
        assert raised.value.detail == "Only a manager may publish or change listings"
    manager = Caller(user_id="u", commune="42218", roles=frozenset({Role.MANAGER, role}))
    with pytest.raises(Forbidden) as raised:
        domain.ensure_manager_of(manager, "42044")
    assert raised.value.detail == "This listing belongs to another commune"


def test_a_manager_of_the_owning_commune_changes_a_published_listing_not_a_withdrawn_one():
    manager = Caller(user_id="u", commune="42044", roles=frozenset({Role.MANAGER}))
    domain.ensure_changeable(manager, ListingStatus.PUBLISHED, "42044")
    with pytest.raises(Conflict) as raised:
        domain.ensure_changeable(manager, ListingStatus.WITHDRAWN, "42044")
    assert raised.value.detail == "This listing is withdrawn and can no longer change"
    agent = Caller(user_id="u", commune="42044", roles=frozenset({Role.AGENT}))
    with pytest.raises(Forbidden):
        domain.ensure_changeable(agent, ListingStatus.PUBLISHED, "42044")
    with pytest.raises(Forbidden):
        domain.ensure_changeable(manager, ListingStatus.PUBLISHED, "42218")


# -- who may see a listing --------------------------------------------------------------


@pytest.mark.parametrize("owner", ["42044", "42218"])
def test_a_published_listing_is_seen_by_every_commune(owner):
    caller = Caller(user_id="u", commune="42044", roles=frozenset({Role.AGENT}))
    domain.ensure_visible(caller, "l-1", ListingStatus.PUBLISHED, owner)


def test_a_withdrawn_listing_is_seen_by_its_own_commune_only_and_a_missing_one_by_nobody():
    caller = Caller(user_id="u", commune="42044", roles=frozenset({Role.AGENT}))
    domain.ensure_visible(caller, "l-1", ListingStatus.WITHDRAWN, "42044")
    with pytest.raises(NotFound) as raised:
        domain.ensure_visible(caller, "l-1", ListingStatus.WITHDRAWN, "42218")
    assert raised.value.detail == "No listing l-1"
    with pytest.raises(NotFound) as raised:
        domain.ensure_visible(caller, "l-2", None, None)
    assert raised.value.detail == "No listing l-2"


# -- during an emergency: a unit free now first -----------------------------------------


def test_during_an_emergency_listings_of_the_needed_categories_with_a_free_unit_come_first():
    items = [
        {"id": "far-free", "category": "vehicles", "quantity": 2},
        {"id": "other-category", "category": "rooms", "quantity": 1},
        {"id": "all-held", "category": "vehicles", "quantity": 2},
        {"id": "one-left", "category": "vehicles", "quantity": 3},
        {"id": "never-held", "category": "tools", "quantity": 1},
    ]
    held_now = {"far-free": 1, "all-held": 2, "one-left": 2, "other-category": 0}
    ordered = domain.free_now_first(items, {"vehicles", "tools"}, held_now)
    assert [item["id"] for item in ordered] == [
        "far-free",
        "one-left",
        "never-held",
        "other-category",
        "all-held",
    ]
