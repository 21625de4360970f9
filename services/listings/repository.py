"""Reading and writing listings in the listings database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

import orjson
from pydantic import TypeAdapter
from sqlalchemy import (
    JSON,
    ColumnElement,
    Float,
    Select,
    Text,
    TypeDecorator,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from contracts import clock
from contracts.bookings import HOLDING, BookingSnapshot
from contracts.emergencies import EmergencySnapshot
from contracts.errors import unknown_commune
from contracts.fields import is_uuid
from contracts.listings import (
    Blackout,
    BlackoutDraft,
    ListingQuery,
    ListingSnapshot,
    ListingStatus,
    ListingTerms,
    Photo,
    PhotoStored,
)
from contracts.pagination import decode_keyset, encode_keyset
from infra.communes import communes, great_circle_km
from infra.database import upsert_latest
from infra.paging import after_key, keyset_parameters
from services.listings.domain import (
    AVAILABILITY_HORIZON,
    KNN_LON_SCALE,
    Origin,
    as_instant,
    earliest_free,
    query_terms,
    search_text,
)
from services.listings.models import (
    BlackoutRow,
    BookedPeriod,
    EmergencyCopy,
    ListingRow,
    PhotoRow,
)

TERM_FIELDS = tuple(ListingTerms.model_fields)


def terms_of(row: ListingRow) -> ListingTerms:
    return ListingTerms.model_validate(row, from_attributes=True)


def listing_row(session: Session, listing_id: str, for_update: bool = False) -> ListingRow | None:
    """The listing, locked for the transaction's change when `for_update`; None if unknown."""
    if not is_uuid(listing_id):  # ids are UUIDs; anything else (e.g. a NUL) is no listing
        return None
    query = select(ListingRow).where(ListingRow.id == listing_id)
    if for_update:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def blackouts_of(
    session: Session, listing_id: str, since: datetime | None = None
) -> list[Blackout]:
    query = select(BlackoutRow).where(BlackoutRow.listing_id == listing_id)
    if since is not None:
        query = query.where(BlackoutRow.end > since)
    rows = session.scalars(query.order_by(BlackoutRow.start)).all()
    return [Blackout.model_validate(b, from_attributes=True) for b in rows]


def current_blackouts(session: Session, listing_id: str) -> list[Blackout]:
    """The blackouts not over yet: those a listing shows and its snapshot carries."""
    return blackouts_of(session, listing_id, since=clock.now())


_INSTANT = TypeAdapter(datetime)


# the columns a view shows, in ListingView's order
VIEW_FIELDS = (
    *TERM_FIELDS,
    "id",
    "owner_commune",
    "status",
    "revision",
    "created_at",
    "updated_at",
)


def view_of(
    row: ListingRow,
    blackouts: list[Blackout] | None = None,
    distance_km: float | None = None,
    photos: list[Photo] | None = None,
) -> dict:
    """A listing as clients see it (the JSON of ListingView), built straight from the row:
    rows were validated on the way in, and search renders many of them per request."""
    view = view_from({name: getattr(row, name) for name in VIEW_FIELDS}, blackouts, distance_km)
    view["photos"] = [p.model_dump(mode="json") for p in photos or []]
    return view


def photos_of(session: Session, listing_id: str) -> list[Photo]:
    """A listing's photos, first added first."""
    rows = session.scalars(
        select(PhotoRow)
        .where(PhotoRow.listing_id == listing_id)
        .order_by(PhotoRow.added_at, PhotoRow.id)
    )
    return [photo_of(row) for row in rows]


def photo_of(row: PhotoRow) -> Photo:
    return Photo(**row.photo_fields())


def photo_count(session: Session, listing_id: str) -> int:
    return session.scalar(
        select(func.count()).select_from(PhotoRow).where(PhotoRow.listing_id == listing_id)
    )


def photo_with_digest(session: Session, listing_id: str, digest: str) -> PhotoRow | None:
    return session.scalars(
        select(PhotoRow).where(PhotoRow.listing_id == listing_id, PhotoRow.digest == digest)
    ).one_or_none()


def add_photo(session: Session, row: ListingRow, stored: PhotoStored, user_id: str) -> PhotoRow:
    photo = PhotoRow(
        id=str(uuid.uuid4()),
        listing_id=row.id,
        added_by=user_id,
        added_at=clock.now(),
        **stored.model_dump(),
    )
    session.add(photo)
    session.flush()
    return photo


def photo_row(session: Session, listing_id: str, photo_id: str) -> PhotoRow | None:
    if not is_uuid(photo_id):
        return None
    photo = session.get(PhotoRow, photo_id)
    return photo if photo is not None and photo.listing_id == listing_id else None


def remove_photo(session: Session, photo: PhotoRow) -> None:
    session.delete(photo)
    session.flush()


def view_from(
    values: dict,
    blackouts: list[Blackout] | None = None,
    distance_km: float | None = None,
    earliest_available: datetime | None = None,
) -> dict:
    """`view_of` from the VIEW_FIELDS of a row as a dict (search reads no ORM objects);
    `earliest_available` with `sort=available`."""
    commune = communes().get(values["owner_commune"])
    values.update(
        owner_commune_name=commune.name if commune else values["owner_commune"],
        created_at=_INSTANT.dump_python(values["created_at"], mode="json"),
        updated_at=_INSTANT.dump_python(values["updated_at"], mode="json"),
        blackouts=[b.model_dump(mode="json") for b in blackouts or []],
        photos=[],  # one listing's answers show them (`view_of`); sent always, as documented
        distance_km=None if distance_km is None else round(distance_km, 2),
        earliest_available=_INSTANT.dump_python(earliest_available, mode="json")
        if earliest_available
        else None,
    )
    return values


def snapshot_of(session: Session, row: ListingRow) -> ListingSnapshot:
    return ListingSnapshot(
        **terms_of(row).model_dump(),
        listing_id=row.id,
        owner_commune=row.owner_commune,
        status=row.status,
        revision=row.revision,
        blackouts=current_blackouts(session, row.id),
        photos=photos_of(session, row.id),
    )


def add_listing(session: Session, owner_commune: str, terms: ListingTerms) -> ListingRow:
    """A new published listing of `owner_commune`, at its commune's point (the service
    emits its listing.published)."""
    commune = communes().get(owner_commune)
    if commune is None:
        raise unknown_commune("commune", owner_commune)
    now = clock.now()
    row = ListingRow(
        id=str(uuid.uuid4()),
        owner_commune=owner_commune,
        latitude=commune.latitude,
        longitude=commune.longitude,
        status=ListingStatus.PUBLISHED.value,
        revision=1,
        search_text=search_text(terms.title, terms.description, terms.category),
        created_at=now,
        updated_at=now,
        **terms.model_dump(mode="json"),
    )
    session.add(row)
    session.flush()
    return row


def amend(row: ListingRow, terms: ListingTerms) -> None:
    """The listing's terms replaced by `terms` (its search text with them)."""
    for name, value in terms.model_dump(mode="json").items():
        setattr(row, name, value)
    row.search_text = search_text(terms.title, terms.description, terms.category)


def withdraw(row: ListingRow) -> None:
    row.status = ListingStatus.WITHDRAWN.value


def add_blackout(session: Session, row: ListingRow, blackout: BlackoutDraft) -> None:
    session.add(
        BlackoutRow(
            id=str(uuid.uuid4()),
            listing_id=row.id,
            start=blackout.start,
            end=blackout.end,
            reason=blackout.reason,
            created_at=clock.now(),
        )
    )


def bump(session: Session, row: ListingRow) -> None:
    """A new revision of the listing, written now: other services keep the latest one."""
    row.revision += 1
    row.updated_at = clock.now()
    session.flush()


class SearchShape(NamedTuple):
    """Which filters a search uses. Each shape's statement is built once, with its values as
    parameters: a search then costs no statement building and no cache-key computation."""

    terms: int
    category: bool
    kind: bool
    max_rate: bool
    owner: bool
    period: bool
    near: bool
    radius: bool
    nearest_first: bool  # PostgreSQL: walk the nearest-neighbour index
    by_price: bool = False  # cheapest first (the caller's own commune's before the others)
    after: bool = False  # a page after the first: after its cursor's keyset position
    by_availability: bool = False  # free soonest first (ordered here, not in SQL)


# a LIMIT that keeps every row (both databases accept it; SQLite's -1 is no PostgreSQL's)
EVERY_ROW = 2**62
# a search's count is exact up to this many listings, then says "more than"
COUNT_BOUND = 500
_LISTINGS = ListingRow.__table__
_BLACKOUTS = BlackoutRow.__table__
_BOOKED = BookedPeriod.__table__


class _JsonText(TypeDecorator):
    """A JSON column read as its text and decoded by orjson: the driver's own decoding
    (the standard library's json) took about a tenth of a search's Python time."""

    impl = Text
    cache_ok = True

    def process_result_value(self, value: str | None, dialect) -> object:
        return None if value is None else orjson.loads(value)


def _view_column(name: str) -> ColumnElement:
    column = _LISTINGS.c[name]
    if isinstance(column.type, JSON):
        return type_coerce(cast(column, Text), _JsonText()).label(name)
    return column


# what a search item shows, then where it is
_VIEW_COLUMNS = [_view_column(name) for name in (*VIEW_FIELDS, "latitude", "longitude")]
# where a search row's point is: after its VIEW_FIELDS (its sort keys follow)
_POINT = len(VIEW_FIELDS)


@lru_cache(maxsize=256)
def search_statement(shape: SearchShape) -> Select:
    """The statement of one search shape; values come as parameters (see `search`)."""
    t = _LISTINGS
    stmt = _matching(shape, t, _VIEW_COLUMNS)
    keys = [*sort_keys(shape), (t.c.id, False)]
    # each row carries its sort key: the next page's cursor is the last row's
    stmt = stmt.add_columns(*(key.label(f"key{n}") for n, (key, _) in enumerate(keys[:-1])))
    if shape.after:
        stmt = stmt.where(after_key(keys))
    order = [key.desc() if descending else key for key, descending in keys]
    if shape.nearest_first:
        # PostgreSQL walks its nearest-neighbour index and stops at the page's end; ordering
        # by the id too would make it sort every match (`nearest_page_statement` pages)
        order = order[:1]
    return stmt.order_by(*order).limit(bindparam("page_limit"))


def _matching(shape: SearchShape, t, columns: Sequence) -> Select:
    """`columns` of the published listings of `t` (the table or an alias of it) that pass
    the shape's filters, unordered."""
    stmt = select(*columns).where(t.c.status == "published")
    for n in range(shape.terms):
        stmt = stmt.where(t.c.search_text.like(bindparam(f"term{n}")))
    if shape.category:
        stmt = stmt.where(t.c.category == bindparam("category"))
    if shape.kind:
        stmt = stmt.where(t.c.kind == bindparam("kind"))
    if shape.max_rate:
        stmt = stmt.where(t.c.rate_cents <= bindparam("max_rate_cents"))
    if shape.owner:
        stmt = stmt.where(t.c.owner_commune == bindparam("owner"))
    if shape.period:
        start, end = bindparam("period_start"), bindparam("period_end")
        # exact for quantity 1; for more, any overlap counts as if simultaneous (cautious)
        units_held = (
            select(func.coalesce(func.sum(_BOOKED.c.quantity), 0))
            .where(
                _BOOKED.c.listing_id == t.c.id,
                _BOOKED.c.holding.is_(True),
                _BOOKED.c.start < end,
                _BOOKED.c.end > start,
            )
            .scalar_subquery()
        )
        stmt = stmt.where(
            ~exists().where(
                _BLACKOUTS.c.listing_id == t.c.id,
                _BLACKOUTS.c.start < end,
                _BLACKOUTS.c.end > start,
            ),
            units_held < t.c.quantity,
        )
    if shape.near:
        stmt = _within_radius(stmt, shape, t)
    return stmt


@lru_cache(maxsize=256)
def nearest_page_statement(shape: SearchShape) -> Select:
    """A nearest-first page (PostgreSQL) in one statement, its rows in (distance, id) order.
    The nearest-neighbour walk orders by distance alone, and listings of one commune share
    its point, hence a distance: thousands of them in a large commune once the table holds a
    million. So the walk reads the page's `page_limit` rows, the nearest, only their ids and
    points; those closer than the last one's distance are in; the rest of the page is taken,
    by id, from the listings at the point(s) at that distance, each read on its (latitude,
    longitude, id) index as far as the page needs (migration 0009); then the page's rows,
    and only they, are read whole. The cost is the page's, not the table's nor a commune's,
    in one round trip. (A point at exactly the last distance but none of whose listings the
    walk read would be left out: distinct points at one float distance from an origin do
    not occur among communes.)"""
    t = _LISTINGS
    ((knn, _),) = sort_keys(shape)
    walk = _matching(shape, t, [t.c.id, t.c.latitude, t.c.longitude, knn.label("key0")])
    if shape.after:
        walk = walk.where(after_key([(knn, False), (t.c.id, False)]))
    walk = walk.order_by(knn).limit(bindparam("page_limit")).cte("walk")
    edge = select(func.max(walk.c.key0)).scalar_subquery()
    points = select(walk.c.latitude, walk.c.longitude).where(walk.c.key0 == edge).distinct()
    points = points.cte("edge_points")
    # within the cursor's own distance, only ids after its own (`after_key` says so too)
    tie_after = (
        case((bindparam("after0", type_=Float) == edge, bindparam("after1")), else_="")
        if shape.after
        else literal("")
    )
    # the flat radius, which a point passes or not, would only blur the planner's estimate
    at_point = _LISTINGS.alias("at_point")
    ties = (
        _matching(shape._replace(radius=False), at_point, [at_point.c.id])
        .where(
            at_point.c.latitude == points.c.latitude,
            at_point.c.longitude == points.c.longitude,
            at_point.c.id > tie_after,
        )
        # by id, as the point's index holds them: read in order, however many lie there
        .order_by(at_point.c.latitude, at_point.c.longitude, at_point.c.id)
        .limit(bindparam("page_limit"))
        .lateral("ties")
    )
    page = (
        union_all(
            select(walk.c.id, walk.c.key0).where(walk.c.key0 < edge),
            select(ties.c.id, edge.label("key0")).select_from(points.join(ties, true())),
        )
        .order_by("key0", "id")
        .limit(bindparam("page_limit"))
        .cte("page")
    )
    return (
        select(*_VIEW_COLUMNS, page.c.key0)
        .join_from(t, page, t.c.id == page.c.id)
        .order_by(page.c.key0, page.c.id)
    )


def sort_keys(shape: SearchShape) -> list[tuple[ColumnElement, bool]]:
    """What a search orders by, (expression, descending), before the id that breaks ties:
    the caller's own commune then the price; the distance; else the newest first."""
    t = _LISTINGS
    if shape.by_price:
        own = case((t.c.owner_commune == bindparam("own_commune"), 0), else_=1)
        return [(own, False), (t.c.rate_cents, False)]
    if not shape.near:
        return [(t.c.created_at, True)]
    if shape.nearest_first:
        # PostgreSQL's nearest-neighbour index orders by this (migration 0003)
        scale = literal_column(KNN_LON_SCALE)
        here = func.point(bindparam("knn_lon"), bindparam("lat"))
        knn = func.point(t.c.longitude * scale, t.c.latitude).op("<->", return_type=Float)(here)
        return [(knn, False)]
    return [(_flat_distance(), False)]


# the kinds of the values of each sort's key (contracts.pagination.decode_keyset), the id last
KEY_KINDS = {
    "price": ("integer", "integer"),
    "distance": ("number",),
    "newest": ("instant",),
    "available": ("instant",),
}


def sort_of(shape: SearchShape) -> str:
    if shape.by_availability:
        return "available"
    return "price" if shape.by_price else "distance" if shape.near else "newest"


def _flat_distance(t=_LISTINGS):
    d_lat = t.c.latitude - bindparam("lat")
    d_lon = (t.c.longitude - bindparam("lon")) * bindparam("lon_scale")
    return d_lat * d_lat + d_lon * d_lon


def _within_radius(stmt: Select, shape: SearchShape, t) -> Select:
    """Located listings, within the radius on a flat earth (a little more than the true
    radius, which `search` applies to each row)."""
    stmt = stmt.where(t.c.latitude.is_not(None))
    if shape.radius:
        stmt = stmt.where(_flat_distance(t) <= bindparam("flat_radius"))
        if not shape.nearest_first:  # SQLite: narrow the rows to sort with the latitude index
            stmt = stmt.where(
                t.c.latitude.between(bindparam("lat_min"), bindparam("lat_max")),
                t.c.longitude.between(bindparam("lon_min"), bindparam("lon_max")),
            )
    return stmt


def search_shape(
    query: ListingQuery,
    terms: list[str],
    origin: Origin | None,
    period: tuple[datetime, datetime] | None,
    dialect: str,
) -> SearchShape:
    """The filters `query` uses: which statement answers it."""
    return SearchShape(
        terms=len(terms),
        category=bool(query.category),
        kind=bool(query.kind),
        max_rate=query.max_rate_cents is not None,
        owner=bool(query.owner),
        period=period is not None,
        near=origin is not None,
        radius=origin is not None and query.radius_km is not None,
        nearest_first=origin is not None
        and dialect == "postgresql"
        and query.sort in (None, "distance"),
        by_price=query.sort == "price",
        after=bool(query.cursor),
        by_availability=query.sort == "available",
    )


def search_parameters(
    shape: SearchShape,
    query: ListingQuery,
    terms: list[str],
    origin: Origin | None,
    period: tuple[datetime, datetime] | None,
) -> dict:
    """The values of `search_statement(shape)` for `query` (but the page's)."""
    # folded terms are letters and digits only: no LIKE wildcard to escape
    params: dict = {f"term{n}": f"%{term}%" for n, term in enumerate(terms)}
    if shape.category:
        params["category"] = query.category
    if shape.kind:
        params["kind"] = query.kind.value
    if shape.max_rate:
        params["max_rate_cents"] = query.max_rate_cents
    if shape.owner:
        params["owner"] = query.owner
    if period is not None:
        params["period_start"], params["period_end"] = period
    if shape.by_price:
        params["own_commune"] = query.near or ""
    if origin is not None:
        params |= {"lat": origin.latitude, "lon": origin.longitude, "lon_scale": origin.lon_scale}
        if shape.nearest_first:
            params["knn_lon"] = origin.longitude * float(KNN_LON_SCALE)
        if shape.radius:
            bounds = origin.bounds(query.radius_km)
            params["flat_radius"] = bounds.flat_radius
            if not shape.nearest_first:
                params |= bounds._asdict()
    return params


def search(
    session: Session,
    query: ListingQuery,
    origin: Origin | None,
    period: tuple[datetime, datetime] | None,
) -> tuple[list[dict], str | None]:
    """One page of published listings matching `query`, after its cursor's keyset position;
    by distance when there is an origin. The cursor holds the last row's sort key and id:
    a listing published or withdrawn between two pages neither repeats nor skips another."""
    terms = query_terms(query.q)
    shape = search_shape(query, terms, origin, period, session.bind.dialect.name)
    kinds = (*KEY_KINDS[sort_of(shape)], "text")
    scope = search_scope(query)
    after = decode_keyset(query.cursor, scope, kinds)
    if shape.by_availability:
        return _free_soonest(session, query, origin, period, scope, after)
    params = search_parameters(shape, query, terms, origin, period) | keyset_parameters(after)
    rows = _page_rows(session, shape, params, query.limit + 1)
    more, rows = len(rows) > query.limit, rows[: query.limit]
    items = []
    distances: dict = {}  # a commune's listings share its point
    for row in rows:
        point = row[_POINT], row[_POINT + 1]
        if point not in distances:
            distances[point] = _distance(query, origin, *point)
        if distances[point] is False:
            continue
        # the row's VIEW_FIELDS by position (zip stops before its point and sort keys)
        values = dict(zip(VIEW_FIELDS, row, strict=False))
        items.append(view_from(values, distance_km=distances[point]))
    if origin is not None and not shape.by_price:  # the SQL order is flat-earth: exact here
        items.sort(key=lambda item: (item["distance_km"], item["id"]))
    if not more:
        return items, None
    last = rows[-1]  # the page's last row in the SQL's order, shown or beyond the radius
    key = [getattr(last, f"key{n}") for n in range(len(kinds) - 1)]
    return items, encode_keyset(scope, [*key, last.id])


def _free_soonest(
    session: Session,
    query: ListingQuery,
    origin: Origin | None,
    period: tuple[datetime, datetime] | None,
    scope: str,
    after: list | None,
) -> tuple[list[dict], str | None]:
    """A page of `search` with `sort=available`: free soonest first (domain.earliest_free,
    from today 00:00 in Paris, for the period's length or a day), then by id. That moment
    depends on each listing's blackouts and bookings, so every match is weighed here, not
    in SQL: the cost grows with the matches (the filters narrow them)."""
    since = as_instant(clock.paris_today())
    length = period[1] - period[0] if period else timedelta(days=1)
    last = since + AVAILABILITY_HORIZON  # the key of a listing with no slot: after all others
    _, statement, params = _prepared(session, query, origin, period)
    rows = session.execute(statement, params | {"page_limit": EVERY_ROW}).all()
    located = [(r, _distance(query, origin, r.latitude, r.longitude)) for r in rows]
    located = [(r, d) for r, d in located if d is not False]
    closed, held = busy_since(session, since)
    ranked = []
    for row, distance in located:
        free = earliest_free(
            since, length, row.quantity, closed.get(row.id, []), held.get(row.id, [])
        )
        ranked.append(((free or last, row.id), free, row, distance))
    ranked.sort(key=lambda entry: entry[0])
    if after is not None:
        ranked = [entry for entry in ranked if entry[0] > tuple(after)]
    page = ranked[: query.limit]
    items = []
    for _, free, row, distance in page:
        values = {name: getattr(row, name) for name in VIEW_FIELDS}
        items.append(view_from(values, distance_km=distance, earliest_available=free))
    if len(ranked) <= query.limit:
        return items, None
    return items, encode_keyset(scope, list(page[-1][0]))


def busy_since(
    session: Session, since: datetime
) -> tuple[
    dict[str, list[tuple[datetime, datetime]]], dict[str, list[tuple[datetime, datetime, int]]]
]:
    """The blackouts (start, end) and holding bookings (start, end, units) of each listing
    not over at `since`."""
    closed: dict[str, list] = {}
    for b in session.execute(
        select(BlackoutRow.listing_id, BlackoutRow.start, BlackoutRow.end).where(
            BlackoutRow.end > since
        )
    ):
        closed.setdefault(b.listing_id, []).append((b.start, b.end))
    held: dict[str, list] = {}
    for p in session.execute(
        select(
            BookedPeriod.listing_id, BookedPeriod.start, BookedPeriod.end, BookedPeriod.quantity
        ).where(BookedPeriod.holding.is_(True), BookedPeriod.end > since)
    ):
        held.setdefault(p.listing_id, []).append((p.start, p.end, p.quantity))
    return closed, held


def _page_rows(session: Session, shape: SearchShape, params: dict, wanted: int) -> list:
    """The first `wanted` rows of a search in its keyset order."""
    if shape.nearest_first:
        return session.execute(nearest_page_statement(shape), params | {"page_limit": wanted}).all()
    return session.execute(search_statement(shape), params | {"page_limit": wanted}).all()


def search_scope(query: ListingQuery) -> str:
    """What a cursor belongs to: the search's filters and sort (not its page size)."""
    asked = query.model_dump(mode="json", exclude={"cursor", "limit", "count"})
    return json.dumps(asked, sort_keys=True, separators=(",", ":"))


def _prepared(
    session: Session,
    query: ListingQuery,
    origin: Origin | None,
    period: tuple[datetime, datetime] | None,
) -> tuple[SearchShape, Select, dict]:
    """The first page's shape, statement and values of a search (its terms folded once:
    the shape counts them, the parameters hold them)."""
    terms = query_terms(query.q)
    shape = search_shape(query, terms, origin, period, session.bind.dialect.name)
    shape = shape._replace(after=False)
    return shape, search_statement(shape), search_parameters(shape, query, terms, origin, period)


def _distance(query: ListingQuery, origin: Origin | None, latitude, longitude):
    """The listing's distance from the origin (None without one), or False when it lies
    beyond the radius asked."""
    if origin is None:
        return None
    distance = great_circle_km(origin.latitude, origin.longitude, latitude, longitude)
    if query.radius_km is not None and distance > query.radius_km:
        return False
    return distance


def count_matches(
    session: Session,
    query: ListingQuery,
    origin: Origin | None,
    period: tuple[datetime, datetime] | None,
    bound: int = COUNT_BOUND,
) -> tuple[int, bool, dict | None]:
    """How many listings match `query` on every page, exact up to `bound` (else `bound` and
    False: "more than"), and, when exact, how they divide by category, kind, owner commune
    and with an operator. The search's own statement, its rows read up to the bound and the
    radius applied to each as the pages apply it."""
    _, statement, params = _prepared(session, query, origin, period)
    rows = session.execute(_counted(statement), params | {"page_limit": bound + 1}).all()
    if len(rows) > bound:
        return bound, False, None
    inside = [r for r in rows if _distance(query, origin, r.latitude, r.longitude) is not False]
    return len(inside), True, facets_of(inside)


@lru_cache(maxsize=256)
def _counted(statement: Select) -> Select:
    """The search's rows with only what the count and facets read: 501 rows of every column
    (descriptions, rules, contact) cost ~5 times as much to send and decode."""
    found = statement.subquery()
    return select(*(found.c[name] for name in _COUNTED))


_COUNTED = ("latitude", "longitude", "category", "kind", "owner_commune", "with_operator")


def facets_of(rows: Sequence) -> dict:
    """Counts of the rows by category, kind and owner commune (most first), and of those
    offered with an operator."""

    def by(name: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in rows:
            counts[getattr(row, name)] = counts.get(getattr(row, name), 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    return {
        "category": by("category"),
        "kind": by("kind"),
        "owner_commune": by("owner_commune"),
        "with_operator": sum(1 for row in rows if row.with_operator),
    }


def held_during(
    session: Session, listing_id: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime, int]]:
    rows = session.execute(
        select(BookedPeriod.start, BookedPeriod.end, BookedPeriod.quantity).where(
            BookedPeriod.listing_id == listing_id,
            BookedPeriod.holding.is_(True),
            BookedPeriod.start < end,
            BookedPeriod.end > start,
        )
    )
    return [(max(r.start, start), min(r.end, end), r.quantity) for r in rows]


def record_bookings(session: Session, bookings: Sequence[tuple[BookingSnapshot, datetime]]) -> None:
    """Each booking's latest known state, (booking, as of when), in one statement; an older
    event than the one kept changes nothing (events may arrive out of order)."""
    upsert_latest(
        session,
        BookedPeriod.__table__,
        [
            {
                "booking_id": booking.booking_id,
                "listing_id": booking.listing_id,
                "start": booking.start,
                "end": booking.end,
                "quantity": booking.quantity,
                "holding": booking.status in HOLDING,
                "as_of": as_of,
            }
            for booking, as_of in bookings
        ],
        key="booking_id",
        rank="as_of",
    )


# processed_events rows for the events not applied before, then each booking's latest state
# among those events, kept unless the row holds a later one (as upsert_latest), and how many
# were new: a batch in one statement committing alone, one round trip where BEGIN, two
# INSERTs and COMMIT were four (bench.consume at 100 events a second: the lag's median
# 18-45 ms, not 26-680; the CPU per event about the same, batches being smaller). Rows in
# key order: two replicas' batches wait for each other's keys, never deadlock.
_RECORD_ONCE = text(
    """
    WITH fresh AS (
        INSERT INTO processed_events (consumer, event_id, event_type, processed_at)
        SELECT :consumer, e.event_id, e.event_type, :now
        FROM unnest(CAST(:event_ids AS text[]), CAST(:event_types AS text[]))
            AS e(event_id, event_type)
        ORDER BY e.event_id
        ON CONFLICT DO NOTHING
        RETURNING event_id
    ), latest AS (
        SELECT DISTINCT ON (b.booking_id) b.*
        FROM unnest(
            CAST(:booking_event_ids AS text[]), CAST(:positions AS int[]),
            CAST(:booking_ids AS text[]), CAST(:listing_ids AS text[]),
            CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]),
            CAST(:quantities AS int[]), CAST(:holdings AS boolean[]),
            CAST(:as_ofs AS timestamptz[])
        ) AS b(event_id, position, booking_id, listing_id, start, "end", quantity, holding, as_of)
        WHERE b.event_id IN (SELECT event_id FROM fresh)
        ORDER BY b.booking_id, b.as_of DESC, b.position DESC
    ), kept AS (
        INSERT INTO booked_periods
            (booking_id, listing_id, start, "end", quantity, holding, as_of)
        SELECT booking_id, listing_id, start, "end", quantity, holding, as_of FROM latest
        ORDER BY booking_id
        ON CONFLICT (booking_id) DO UPDATE SET
            listing_id = excluded.listing_id, start = excluded.start, "end" = excluded."end",
            quantity = excluded.quantity, holding = excluded.holding, as_of = excluded.as_of
        WHERE booked_periods.as_of <= excluded.as_of
    )
    SELECT count(*) FROM fresh
    """
)


def record_bookings_once(
    conn: Connection, consumer: str, events: Sequence[tuple[str, str, BookingSnapshot, datetime]]
) -> int:
    """`record_bookings` of the (event id, type, booking, as of) not applied before by
    `consumer` (PostgreSQL, on an autocommit connection: the statement is its own
    transaction, atomic all the same); how many of the events were new. As
    `DatabaseAccess.handling_all` then `record_bookings`: an event seen before, or twice in
    `events`, changes nothing."""
    firsts = list({event_id: (event_id, kind) for event_id, kind, _, _ in events}.values())
    return conn.execute(
        _RECORD_ONCE,
        {
            "consumer": consumer,
            "now": clock.now(),
            "event_ids": [event_id for event_id, _ in firsts],
            "event_types": [kind for _, kind in firsts],
            "booking_event_ids": [event_id for event_id, _, _, _ in events],
            "positions": list(range(len(events))),
            "booking_ids": [b.booking_id for _, _, b, _ in events],
            "listing_ids": [b.listing_id for _, _, b, _ in events],
            "starts": [b.start for _, _, b, _ in events],
            "ends": [b.end for _, _, b, _ in events],
            "quantities": [b.quantity for _, _, b, _ in events],
            "holdings": [b.status in HOLDING for _, _, b, _ in events],
            "as_ofs": [as_of for _, _, _, as_of in events],
        },
    ).scalar_one()


def keep_emergency(session: Session, episode: EmergencySnapshot) -> None:
    """The copy of an episode, as last announced (an end replaces a declaration)."""
    copy = session.get(EmergencyCopy, episode.emergency_id)
    if copy is not None and copy.ended and not episode.ended:
        return  # a declaration arriving after its end changes nothing
    session.merge(
        EmergencyCopy(
            emergency_id=episode.emergency_id,
            snapshot=episode.model_dump(mode="json"),
            start=episode.start,
            end=episode.end,
            ended=episode.ended,
        )
    )


def emergencies_not_ended(session: Session) -> list[EmergencySnapshot]:
    """The episodes not ended (some may start later, or have passed their end)."""
    rows = session.scalars(select(EmergencyCopy).where(EmergencyCopy.ended.is_(False)))
    return [EmergencySnapshot.model_validate(row.snapshot) for row in rows]


def held_at(session: Session, listing_ids: Sequence[str], at: datetime) -> dict[str, int]:
    """How many units of each listing bookings hold at the instant `at`."""
    if not listing_ids:
        return {}
    rows = session.execute(
        select(BookedPeriod.listing_id, func.sum(BookedPeriod.quantity))
        .where(
            BookedPeriod.listing_id.in_(listing_ids),
            BookedPeriod.holding.is_(True),
            BookedPeriod.start <= at,
            BookedPeriod.end > at,
        )
        .group_by(BookedPeriod.listing_id)
    )
    return {listing_id: int(units) for listing_id, units in rows}
