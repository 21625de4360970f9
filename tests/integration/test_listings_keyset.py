"""The listings search's keyset cursor, on each backend: for each sort, paging while
listings are published between pages neither repeats nor skips one, and a cursor edited or
taken to another search is refused."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from contracts import clock
from contracts.errors import InvalidInput
from contracts.listings import ListingQuery, ListingTerms
from infra.communes import communes
from infra.database import make_engine
from services.listings import repository
from services.listings.domain import Origin
from services.listings.models import ListingRow

# Saint-Étienne, Le Chambon-Feugerolles, Firminy, Saint-Chamond: several listings share a
# point (their commune's), hence a distance, and the id must order them
COMMUNES = ["42218", "42044", "42095", "42207"]


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
