"""The listings search's keyset cursor, on each backend: for each sort, paging while
listings are published between pages neither repeats nor skips one, and a cursor edited or
taken to another search is refused."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from contracts import clock
from contracts.clock import PARIS
from contracts.errors import InvalidInput
from contracts.listings import BlackoutDraft, ListingQuery, ListingTerms
from infra.communes import communes
from infra.database import make_engine
from services.listings import repository
from services.listings.domain import Origin
from services.listings.models import BookedPeriod, ListingRow

# Saint-Étienne, Le Chambon-Feugerolles, Firminy, Saint-Chamond: several listings share a
# point (their commune's), hence a distance, and the id must order them
COMMUNES = ["42218", "42044", "42095", "42207"]
SAINT_ETIENNE = communes().get("42218")
ORIGIN = Origin(SAINT_ETIENNE.latitude, SAINT_ETIENNE.longitude)


def terms(rate_cents: int) -> ListingTerms:
    return ListingTerms(
        title="Nacelle élévatrice",
        description="Nacelle de 12 m",
        category="espaces-verts",
        kind="equipment",
        pricing_unit="day",
        rate_cents=rate_cents,
    )


@pytest.fixture
def engine(listings_db):
    return make_engine(listings_db)


def publish(engine, commune: str, rate_cents: int, created_at=None) -> str:
    with Session(engine) as session, session.begin():
        row = repository.add_listing(session, commune, terms(rate_cents))
        if created_at is not None:  # listings published at the same instant
            session.execute(
                update(ListingRow).where(ListingRow.id == row.id).values(created_at=created_at)
            )
        return row.id


def page(engine, query: ListingQuery) -> tuple[list[str], str | None]:
    origin = None
    if query.near:
        commune = communes().get(query.near)
        origin = Origin(commune.latitude, commune.longitude)
    with Session(engine) as session:
        items, cursor = repository.search(session, query, origin, None)
    return [item["id"] for item in items], cursor


ASKED = {
    "newest": {},
    "price": {"near": "42218", "sort": "price"},
    "distance": {"near": "42218"},
    "distance-radius": {"near": "42218", "radius_km": 30},
    "available": {"near": "42218", "sort": "available"},
}


@pytest.mark.parametrize("asked", ASKED.values(), ids=ASKED.keys())
def test_listings_published_between_pages_neither_repeat_nor_shift_them(engine, asked):
    same_instant = clock.now() - timedelta(days=1)
    for n in range(10):
        # rates repeat and instants are shared: ties everywhere but in the id
        publish(engine, COMMUNES[n % 4], 1000 * (n % 3), same_instant if n % 2 else None)
    everything, _ = page(engine, ListingQuery(**asked, limit=100))
    assert len(everything) == 10

    seen, cursor, added = [], None, []
    while True:
        ids, cursor = page(engine, ListingQuery(**asked, limit=3, cursor=cursor))
        seen += ids
        if cursor is None:
            break
        # between pages: a cheap one of the origin, one elsewhere
        added.append(publish(engine, "42218", 0))
        added.append(publish(engine, COMMUNES[len(added) % 4], 1500))
    first_ones = [i for i in seen if i not in added]
    assert len(seen) == len(set(seen))  # nothing twice
    assert first_ones == everything  # the listings there at first: all, in their order
    if not asked:  # newest first: what was published while paging comes before page 1
        assert set(added).isdisjoint(seen)


def test_a_cursor_edited_or_taken_elsewhere_is_refused(engine):
    for n in range(3):
        publish(engine, COMMUNES[n], 1000 * n)
    _, cursor = page(engine, ListingQuery(near="42218", sort="price", limit=1))
    assert cursor is not None
    body = json.loads(base64.urlsafe_b64decode(cursor[1:] + "=" * (-len(cursor[1:]) % 4)))
    body["k"][1] += 1  # another price
    edited = "k" + base64.urlsafe_b64encode(json.dumps(body).encode()).decode()
    for query in (
        ListingQuery(near="42218", sort="price", limit=1, cursor=edited),
        ListingQuery(near="42218", limit=1, cursor=cursor),  # another sort
        ListingQuery(near="42044", sort="price", limit=1, cursor=cursor),  # another origin
        ListingQuery(near="42218", sort="price", q="nacelle", cursor=cursor),  # other words
        ListingQuery(near="42218", sort="price", cursor="bzo"),
        ListingQuery(near="42218", sort="price", cursor=base64.b64encode(b"o:20").decode()),
    ):
        with pytest.raises(InvalidInput) as raised:
            page(engine, query)
        assert [e["field"] for e in raised.value.errors] == ["cursor"]
    # the same search with another page size keeps its place
    ids, _ = page(engine, ListingQuery(near="42218", sort="price", limit=5, cursor=cursor))
    assert len(ids) == 2


def test_a_page_among_many_listings_at_one_point_reads_the_page_not_the_point(engine):
    """Listings of one commune share a distance: a page inside them comes by id, from as
    many rows as the page takes, however many share the point (PostgreSQL's walk), in one
    statement."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the nearest-neighbour walk is PostgreSQL's")
    here = sorted(publish(engine, "42218", 1000) for _ in range(30))
    nearby = sorted(publish(engine, "42044", 1000) for _ in range(4))
    limits, pages = [], 0

    def read(conn, cursor, statement, parameters, context, executemany):
        limits.append(parameters.get("page_limit") if isinstance(parameters, dict) else None)

    event.listen(engine, "before_cursor_execute", read)
    try:
        seen, cursor = [], None
        while True:
            ids, cursor = page(engine, ListingQuery(near="42218", limit=7, cursor=cursor))
            seen += ids
            pages += 1
            if cursor is None:
                break
    finally:
        event.remove(engine, "before_cursor_execute", read)
    assert seen == here + nearby
    assert len(limits) == pages  # one statement a page
    assert max(limits) <= 8  # never more than the page and one


def hold(engine, listing_id: str, start, end, quantity: int = 1) -> None:
    """A booking holding the listing, as the listings service learns it from its events."""
    with Session(engine) as session, session.begin():
        session.add(
            BookedPeriod(
                booking_id=str(uuid.uuid4()),
                listing_id=listing_id,
                start=start,
                end=end,
                quantity=quantity,
                holding=True,
                as_of=clock.now(),
            )
        )


def close(engine, listing_id: str, start, end) -> None:
    with Session(engine) as session, session.begin():
        row = repository.listing_row(session, listing_id)
        repository.add_blackout(session, row, BlackoutDraft(start=start, end=end))


def test_free_soonest_first_pages_by_that_moment_and_id(engine):
    today = datetime.combine(clock.paris_today(), time(0), tzinfo=PARIS)
    day = timedelta(days=1)
    free_now = [publish(engine, "42218", 1000) for _ in range(2)]
    in_three_days = publish(engine, "42044", 1000)
    hold(engine, in_three_days, today - day, today + 3 * day)
    tomorrow = publish(engine, "42095", 1000)
    close(engine, tomorrow, today, today + day)
    # held tomorrow only: free today for one day, but not for the two days asked below
    short_gap = publish(engine, "42207", 1000)
    hold(engine, short_gap, today + day, today + 2 * day)

    asked = {"near": "42218", "sort": "available"}
    seen, moments, cursor, added = [], {}, None, []
    while True:
        with Session(engine) as session:
            items, cursor = repository.search(
                session, ListingQuery(**asked, limit=2, cursor=cursor), ORIGIN, None
            )
        seen += [item["id"] for item in items]
        moments |= {
            item["id"]: datetime.fromisoformat(item["earliest_available"]) for item in items
        }
        if cursor is None:
            break
        added.append(publish(engine, "42218", 1000))  # free now, published while paging
    assert len(seen) == len(set(seen))
    originals = [i for i in seen if i not in added]
    assert originals == [*sorted([*free_now, short_gap]), tomorrow, in_three_days]
    assert [moments[i] for i in originals] == [today, today, today, today + day, today + 3 * day]

    # for two days (the length of the period asked), the short gap no longer fits today
    with Session(engine) as session:
        period = (today + 5 * day, today + 7 * day)
        items, _ = repository.search(session, ListingQuery(**asked), ORIGIN, period)
    by_id = {item["id"]: item["earliest_available"] for item in items}
    assert datetime.fromisoformat(by_id[short_gap]) == today + 2 * day
    assert datetime.fromisoformat(by_id[tomorrow]) == today + day
