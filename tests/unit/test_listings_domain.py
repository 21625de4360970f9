"""Listing rules: periods, search windows, cursors, edits, rights; the search's radius filter."""

import base64
import math
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.orm import Session

from contracts.caller import Caller, Role
from contracts.errors import Forbidden, InvalidInput
from contracts.listings import ListingChanges, ListingQuery, ListingTerms
from contracts.pagination import decode_cursor, encode_cursor
from infra.communes import EARTH_RADIUS_KM, great_circle_km
from infra.database import make_engine
from infra.migrations import upgrade
from services.listings import repository
from services.listings.domain import (
    PARIS,
    Origin,
    amended,
    earliest_free,
    ensure_manager_of,
    free_periods,
    merge_periods,
    query_terms,
    window,
)
from services.listings.models import ListingRow

# -- periods ----------------------------------------------------------------------------
# Instants are whole quarter-hours after BASE, so coverage can be checked slot by slot.

BASE = datetime(2026, 3, 2, tzinfo=UTC)
SLOT = timedelta(minutes=15)


def at(slot: int) -> datetime:
    return BASE + slot * SLOT


def slots_of(periods) -> set[int]:
    """The quarter-hours that some period covers."""
    return {
        s for start, end in periods for s in range((start - BASE) // SLOT, (end - BASE) // SLOT)
    }


period = st.builds(
    lambda start, length: (at(start), at(start + length)),
    st.integers(min_value=-20, max_value=200),
    st.integers(min_value=1, max_value=40),
)
busy_lists = st.lists(period, max_size=12)


def assert_ordered_and_apart(periods) -> None:
    for start, end in periods:
        assert start < end
    for (_, end), (next_start, _) in pairwise(periods):
        assert end < next_start  # ordered, disjoint and not even touching


@given(busy_lists)
def test_merged_periods_cover_the_same_time_ordered_and_apart(busy):
    merged = merge_periods(busy)
    assert slots_of(merged) == slots_of(busy)
    assert_ordered_and_apart(merged)


@given(busy_lists, st.integers(min_value=0, max_value=100), st.integers(min_value=1, max_value=120))
def test_free_and_busy_partition_the_window(busy, first, length):
    start, end = at(first), at(first + length)
    free = free_periods(start, end, busy)

    window_slots = set(range(first, first + length))
    free_slots = slots_of(free)
    busy_slots = slots_of(busy) & window_slots
    assert free_slots <= window_slots
    assert not free_slots & busy_slots
    assert free_slots | busy_slots == window_slots
    assert_ordered_and_apart(free)


@given(busy_lists)
def test_merge_ignores_input_order(busy):
    assert merge_periods(list(reversed(busy))) == merge_periods(busy)


def test_touching_periods_merge_into_one():
    assert merge_periods([(at(4), at(8)), (at(0), at(4))]) == [(at(0), at(8))]


def test_overlapping_and_contained_periods_merge_and_gaps_stay():
    busy = [(at(10), at(20)), (at(0), at(5)), (at(12), at(15)), (at(18), at(25))]
    assert merge_periods(busy) == [(at(0), at(5)), (at(10), at(25))]


def test_free_periods_concrete_day():
    busy = [
        (at(-8), at(-4)),  # before the window: ignored
        (at(8), at(16)),
        (at(16), at(20)),  # touches the previous one: no zero-length gap between them
        (at(28), at(60)),  # runs past the end
    ]
    assert free_periods(at(0), at(40), busy) == [(at(0), at(8)), (at(20), at(28))]


def test_no_busy_period_leaves_the_whole_window_free():
    assert free_periods(at(0), at(10), []) == [(at(0), at(10))]


def test_a_busy_period_covering_the_window_leaves_nothing_free():
    assert free_periods(at(2), at(10), [(at(0), at(12))]) == []


# -- search window ----------------------------------------------------------------------


def test_a_date_window_covers_whole_paris_days():
    start, end = window(date(2026, 5, 1), date(2026, 5, 3))
    assert start == datetime(2026, 4, 30, 22, 0, tzinfo=UTC)
    assert end == datetime(2026, 5, 3, 22, 0, tzinfo=UTC)


def test_the_last_day_is_included_up_to_midnight():
    start, end = window(date(2026, 5, 1), date(2026, 5, 1))
    assert start <= datetime(2026, 5, 1, 23, 59, tzinfo=PARIS) < end
    assert end == datetime(2026, 5, 2, 0, 0, tzinfo=PARIS)


def test_the_autumn_dst_day_lasts_25_hours():
    start, end = window(date(2026, 10, 25), date(2026, 10, 25))
    assert start.astimezone(UTC) == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert end.astimezone(UTC) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)


def test_the_spring_dst_day_lasts_23_hours():
    start, end = window(date(2026, 3, 29), date(2026, 3, 29))
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)


def test_datetimes_are_taken_as_given_with_an_exclusive_end():
    start = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    end = datetime(2026, 5, 1, 18, 0, tzinfo=UTC)
    assert window(start, end) == (start, end)


def test_a_datetime_start_with_a_date_end():
    start, end = window(datetime(2026, 5, 1, 14, 0, tzinfo=UTC), date(2026, 5, 1))
    assert start == datetime(2026, 5, 1, 14, 0, tzinfo=UTC)
    assert end == datetime(2026, 5, 1, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("available_from", "available_to"),
    [
        (date(2026, 5, 2), date(2026, 5, 1)),
        (datetime(2026, 5, 1, 8, tzinfo=UTC), datetime(2026, 5, 1, 8, tzinfo=UTC)),
        (datetime(2026, 5, 1, 9, tzinfo=UTC), datetime(2026, 5, 1, 8, tzinfo=UTC)),
        (date(2026, 5, 2), datetime(2026, 5, 1, 21, tzinfo=UTC)),  # 23:00 in Paris
    ],
)
def test_an_empty_window_is_refused_on_available_to(available_from, available_to):
    with pytest.raises(InvalidInput) as raised:
        window(available_from, available_to)
    assert [e["field"] for e in raised.value.errors] == ["available_to"]


# -- earliest availability (sort=available) ----------------------------------------------

MIDNIGHT = datetime(2026, 12, 7, tzinfo=PARIS)
DAY = timedelta(days=1)


def test_a_listing_nothing_holds_is_free_from_today():
    assert earliest_free(MIDNIGHT, DAY, 1, [], []) == MIDNIGHT


def test_a_blackout_over_today_makes_it_free_at_its_end():
    closed = [(MIDNIGHT - DAY, MIDNIGHT + timedelta(hours=30))]
    assert earliest_free(MIDNIGHT, DAY, 1, closed, []) == MIDNIGHT + timedelta(hours=30)


def test_a_gap_shorter_than_the_slot_is_skipped():
    held = [(MIDNIGHT, MIDNIGHT + DAY, 1), (MIDNIGHT + 2 * DAY, MIDNIGHT + 5 * DAY, 1)]
    assert earliest_free(MIDNIGHT, DAY, 1, [], held) == MIDNIGHT + DAY
    assert earliest_free(MIDNIGHT, 2 * DAY, 1, [], held) == MIDNIGHT + 5 * DAY


def test_a_unit_left_free_is_free_and_overlapping_bookings_add_up():
    one = [(MIDNIGHT, MIDNIGHT + DAY, 1)]
    assert earliest_free(MIDNIGHT, DAY, 2, [], one) == MIDNIGHT
    # two bookings of one unit each, on different hours of the slot: cautious, as search
    two = [(MIDNIGHT, MIDNIGHT + timedelta(hours=2), 1), (MIDNIGHT + DAY / 2, MIDNIGHT + DAY, 1)]
    assert earliest_free(MIDNIGHT, DAY, 2, [], two) == MIDNIGHT + timedelta(hours=2)


def test_past_periods_and_a_slot_beyond_the_horizon():
    past = [(MIDNIGHT - 3 * DAY, MIDNIGHT - DAY)]
    assert earliest_free(MIDNIGHT, DAY, 1, past, []) == MIDNIGHT
    year = [(MIDNIGHT, MIDNIGHT + 400 * DAY)]
    assert earliest_free(MIDNIGHT, DAY, 1, year, []) is None


@given(
    busy=st.lists(st.tuples(st.integers(0, 60), st.integers(1, 12), st.integers(1, 2)), max_size=6),
    slots=st.integers(1, 8),
    quantity=st.integers(1, 2),
)
def test_the_earliest_free_slot_is_free_and_none_earlier_is(busy, slots, quantity):
    """Against trying every quarter-hour from midnight: the start found is free, and no
    earlier quarter-hour is (every start and end lies on one)."""
    quarter = timedelta(minutes=15)
    held = [(MIDNIGHT + a * quarter, MIDNIGHT + (a + n) * quarter, q) for a, n, q in busy]
    length = slots * quarter

    def free(start):
        end = start + length
        return sum(q for s, e, q in held if s < end and e > start) < quantity

    found = earliest_free(MIDNIGHT, length, quantity, [], held)
    assert found is not None and free(found)
    n = 0
    while MIDNIGHT + n * quarter < found:
        assert not free(MIDNIGHT + n * quarter)
        n += 1


# -- cursors ----------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10**12))
def test_cursor_round_trip(offset):
    assert decode_cursor(encode_cursor(offset)) == offset


def test_no_cursor_is_the_first_page():
    assert decode_cursor(None) == 0
    assert decode_cursor("") == 0


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "!!!",
        "bzo",  # truncated base64
        _b64("o:-1"),
        _b64("x:20"),
        _b64("o:twenty"),
        _b64("20"),
        base64.urlsafe_b64encode(b"\xff\xfe:1").decode(),
    ],
)
def test_garbage_cursors_are_invalid_input(cursor):
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(cursor)
    assert raised.value.errors[0]["field"] == "cursor"


@given(st.text(max_size=100))
def test_any_cursor_text_gives_an_offset_or_invalid_input(cursor):
    try:
        offset = decode_cursor(cursor)
    except InvalidInput:
        return
    assert offset >= 0


# -- edits ------------------------------------------------------------------------------

SNOW_PLOUGH = ListingTerms(
    title="Chasse-neige avec lame",
    description="Lame biaise 3 m",
    category="deneigement",
    kind="vehicle",
    pricing_unit="day",
    rate_cents=25_000,
    min_duration=2,
    max_duration=5,
)


def test_a_partial_edit_changes_only_the_fields_sent():
    after = amended(SNOW_PLOUGH, ListingChanges(rate_cents=30_000, title="Chasse-neige"))
    assert after.rate_cents == 30_000
    assert after.title == "Chasse-neige"
    unchanged = SNOW_PLOUGH.model_dump(exclude={"rate_cents", "title"})
    assert after.model_dump(exclude={"rate_cents", "title"}) == unchanged


def test_an_empty_edit_keeps_everything():
    assert amended(SNOW_PLOUGH, ListingChanges()) == SNOW_PLOUGH


def test_an_explicit_null_max_duration_removes_the_cap():
    after = amended(SNOW_PLOUGH, ListingChanges.model_validate({"max_duration": None}))
    assert after.max_duration is None
    assert after.min_duration == 2


@pytest.mark.parametrize("changes", [{"min_duration": 6}, {"max_duration": 1}])
def test_an_edit_leaving_max_below_min_is_invalid(changes):
    with pytest.raises(InvalidInput) as raised:
        amended(SNOW_PLOUGH, ListingChanges.model_validate(changes))
    (error,) = raised.value.errors
    assert error["field"] == "max_duration"
    assert "max_duration must be at least min_duration" in error["message"]


def test_an_explicit_null_on_a_required_term_is_invalid_on_that_field():
    with pytest.raises(InvalidInput) as raised:
        amended(SNOW_PLOUGH, ListingChanges.model_validate({"title": None}))
    assert [e["field"] for e in raised.value.errors] == ["title"]


# -- rights -----------------------------------------------------------------------------


def caller(commune: str, *roles: Role) -> Caller:
    return Caller(user_id="u-1", commune=commune, roles=frozenset(roles))


@pytest.mark.parametrize("roles", [(Role.AGENT,), (Role.FINANCE,), (Role.OPERATOR,), ()])
def test_only_managers_may_change_listings(roles):
    with pytest.raises(Forbidden):
        ensure_manager_of(caller("42218", *roles), "42218")


def test_a_manager_of_another_commune_is_refused():
    with pytest.raises(Forbidden):
        ensure_manager_of(caller("42044", Role.MANAGER), "42218")


@pytest.mark.parametrize("roles", [(Role.MANAGER,), (Role.AGENT, Role.MANAGER)])
def test_a_manager_of_the_owning_commune_is_accepted(roles):
    assert ensure_manager_of(caller("42218", *roles), "42218") is None


# -- radius -----------------------------------------------------------------------------


def destination(lat: float, lon: float, bearing_deg: float, km: float) -> tuple[float, float]:
    """The point `km` away from (lat, lon) along `bearing_deg`, on the same sphere."""
    phi, lam, theta = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    delta = km / EARTH_RADIUS_KM
    phi2 = math.asin(
        math.sin(phi) * math.cos(delta) + math.cos(phi) * math.sin(delta) * math.cos(theta)
    )
    lam2 = lam + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi),
        math.cos(delta) - math.sin(phi) * math.sin(phi2),
    )
    return math.degrees(phi2), math.degrees(lam2)


@pytest.fixture(scope="module")
def one_listing(tmp_path_factory):
    """A migrated SQLite listings database holding one published listing, which each
    example moves to the point it tries."""
    url = f"sqlite:///{tmp_path_factory.mktemp('radius') / 'listings.sqlite3'}"
    upgrade("listings", url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        listing_id = repository.add_listing(session, "42218", SNOW_PLOUGH).id
    yield engine, listing_id
    engine.dispose()


def kept_by_flat_filter(one_listing, origin: Origin, radius_km: float, lat: float, lon: float):
    """Whether the search's own statement keeps a listing at (lat, lon): its SQL filter
    (on SQLite the box, then the flat-earth circle) with the bounds Origin.bounds gives, as
    repository.search runs it but for the exact distance it checks on the page after."""
    engine, listing_id = one_listing
    query = ListingQuery(near="42218", radius_km=radius_km)  # `near` named; `origin` is used
    terms = query_terms(query.q)
    shape = repository.search_shape(query, terms, origin, None, "sqlite")
    params = repository.search_parameters(shape, query, terms, origin, None)
    with engine.begin() as conn:
        conn.execute(update(ListingRow).values(latitude=lat, longitude=lon))
        rows = conn.execute(
            repository.search_statement(shape), params | {"page_offset": 0, "page_limit": 10}
        )
        return [row.id for row in rows] == [listing_id]


@given(
    lat=st.floats(min_value=41.3, max_value=51.1),
    lon=st.floats(min_value=-5.2, max_value=9.6),
    # 200 km: the slack of degree_radius is not enough for much larger radii (see report)
    radius_km=st.floats(min_value=0.1, max_value=200),
    bearing=st.floats(min_value=0, max_value=360),
    fraction=st.floats(min_value=0, max_value=1),
)
def test_the_flat_filter_never_drops_a_point_within_the_radius(
    one_listing, lat, lon, radius_km, bearing, fraction
):
    origin = Origin(lat, lon)
    p_lat, p_lon = destination(lat, lon, bearing, radius_km * fraction)
    assert great_circle_km(lat, lon, p_lat, p_lon) <= radius_km * (1 + 1e-9)
    assert kept_by_flat_filter(one_listing, origin, radius_km, p_lat, p_lon)


def test_the_flat_filter_still_drops_points_clearly_outside(one_listing):
    origin = Origin(45.43389, 4.39)  # Saint-Étienne
    for bearing in (0, 45, 90, 135, 180, 225, 270, 315):
        p_lat, p_lon = destination(origin.latitude, origin.longitude, bearing, 10.5)
        assert not kept_by_flat_filter(one_listing, origin, 10, p_lat, p_lon)
        p_lat, p_lon = destination(origin.latitude, origin.longitude, bearing, 9.5)
        assert kept_by_flat_filter(one_listing, origin, 10, p_lat, p_lon)
