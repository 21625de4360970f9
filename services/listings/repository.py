"""Reading and writing listings in the listings database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import TypeAdapter
from sqlalchemy import exists, func, literal_column, select
from sqlalchemy.orm import Session

from contracts.bookings import HOLDING, BookingSnapshot
from contracts.listings import (
    Blackout,
    ListingPublished,
    ListingQuery,
    ListingSnapshot,
    ListingStatus,
    ListingTerms,
)
from infra.communes import communes, great_circle_km
from infra.database import UnitOfWork
from infra.paging import one_page
from services.listings.domain import (
    KNN_LON_SCALE,
    Origin,
    query_terms,
    search_text,
    unknown_commune,
)
from services.listings.models import BlackoutRow, BookedPeriod, ListingRow

TERM_FIELDS = tuple(ListingTerms.model_fields)


def terms_of(row: ListingRow) -> ListingTerms:
    return ListingTerms.model_validate({name: getattr(row, name) for name in TERM_FIELDS})


def blackouts_of(
    session: Session, listing_id: str, since: datetime | None = None
) -> list[Blackout]:
    query = select(BlackoutRow).where(BlackoutRow.listing_id == listing_id)
    if since is not None:
        query = query.where(BlackoutRow.end > since)
    rows = session.scalars(query.order_by(BlackoutRow.start)).all()
    return [Blackout(id=b.id, start=b.start, end=b.end, reason=b.reason) for b in rows]


_INSTANT = TypeAdapter(datetime)


def view_of(
    row: ListingRow, blackouts: list[Blackout] | None = None, distance_km: float | None = None
) -> dict:
    """A listing as clients see it (the JSON of ListingView), built straight from the row:
    rows were validated on the way in, and search renders many of them per request."""
    commune = communes().get(row.owner_commune)
    view = {name: getattr(row, name) for name in TERM_FIELDS}
    view.update(
        id=row.id,
        owner_commune=row.owner_commune,
        owner_commune_name=commune.name if commune else row.owner_commune,
        status=row.status,
        revision=row.revision,
        created_at=_INSTANT.dump_python(row.created_at, mode="json"),
        updated_at=_INSTANT.dump_python(row.updated_at, mode="json"),
        blackouts=[b.model_dump(mode="json") for b in blackouts or []],
        distance_km=None if distance_km is None else round(distance_km, 2),
    )
    return view


def snapshot_of(session: Session, row: ListingRow) -> ListingSnapshot:
    return ListingSnapshot(
        **terms_of(row).model_dump(),
        listing_id=row.id,
        owner_commune=row.owner_commune,
        status=row.status,
        revision=row.revision,
        blackouts=blackouts_of(session, row.id, since=datetime.now(UTC)),
    )


def publish(tx: UnitOfWork, owner_commune: str, terms: ListingTerms) -> ListingRow:
    """A new published listing of `owner_commune`, and its listing.published event."""
    commune = communes().get(owner_commune)
    if commune is None:
        raise unknown_commune("commune", owner_commune)
    now = datetime.now(UTC)
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
    tx.session.add(row)
    tx.session.flush()
    tx.emit(ListingPublished, snapshot_of(tx.session, row))
    return row


def search(
    session: Session,
    query: ListingQuery,
    origin: Origin | None,
    period: tuple[datetime, datetime] | None,
) -> tuple[list[dict], str | None]:
    """One page of published listings matching `query`; by distance when there is an origin."""
    stmt = select(ListingRow).where(ListingRow.status == "published")
    for term in query_terms(query.q):
        stmt = stmt.where(ListingRow.search_text.contains(f"{term}", autoescape=True))
    if query.category:
        stmt = stmt.where(ListingRow.category == query.category)
    if query.kind:
        stmt = stmt.where(ListingRow.kind == query.kind.value)
    if query.max_rate_cents is not None:
        stmt = stmt.where(ListingRow.rate_cents <= query.max_rate_cents)
    if query.owner:
        stmt = stmt.where(ListingRow.owner_commune == query.owner)
    if period is not None:
        start, end = period
        # exact for quantity 1; for more, any overlap counts as if simultaneous (cautious)
        units_held = (
            select(func.coalesce(func.sum(BookedPeriod.quantity), 0))
            .where(
                BookedPeriod.listing_id == ListingRow.id,
                BookedPeriod.holding.is_(True),
                BookedPeriod.start < end,
                BookedPeriod.end > start,
            )
            .scalar_subquery()
        )
        stmt = stmt.where(
            ~exists().where(
                BlackoutRow.listing_id == ListingRow.id,
                BlackoutRow.start < end,
                BlackoutRow.end > start,
            ),
            units_held < ListingRow.quantity,
        )
    if origin is not None:
        d_lat = ListingRow.latitude - origin.latitude
        d_lon = (ListingRow.longitude - origin.longitude) * origin.lon_scale
        flat_distance = d_lat * d_lat + d_lon * d_lon
        stmt = stmt.where(ListingRow.latitude.is_not(None))
        nearest_first = session.bind.dialect.name == "postgresql"
        if query.radius_km is not None:
            r = origin.degree_radius(query.radius_km)
            stmt = stmt.where(flat_distance <= r * r)
            if not nearest_first:  # SQLite: narrow the rows to sort with the latitude index
                r_lon = r / origin.lon_scale
                stmt = stmt.where(
                    ListingRow.latitude.between(origin.latitude - r, origin.latitude + r),
                    ListingRow.longitude.between(
                        origin.longitude - r_lon, origin.longitude + r_lon
                    ),
                )
        if nearest_first:
            # PostgreSQL walks its nearest-neighbour index and stops at the page's end;
            # ordering by anything more (an id for ties) would make it sort every match
            scale = literal_column(KNN_LON_SCALE)
            here = func.point(origin.longitude * float(KNN_LON_SCALE), origin.latitude)
            knn = func.point(ListingRow.longitude * scale, ListingRow.latitude).op("<->")(here)
            stmt = stmt.order_by(knn)
        else:
            stmt = stmt.order_by(flat_distance, ListingRow.id)
    else:
        stmt = stmt.order_by(ListingRow.created_at.desc(), ListingRow.id)
    rows, next_cursor = one_page(session, stmt, query.cursor, query.limit)
    items = []
    for row in rows:
        distance = None
        if origin is not None:
            distance = great_circle_km(
                origin.latitude, origin.longitude, row.latitude, row.longitude
            )
            if query.radius_km is not None and distance > query.radius_km:
                continue
        items.append(view_of(row, distance_km=distance))
    if origin is not None:  # the SQL order is flat-earth: exact within the page
        items.sort(key=lambda item: (item["distance_km"], item["id"]))
    return items, next_cursor


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


def record_booking(session: Session, booking: BookingSnapshot, as_of: datetime) -> None:
    """The booking's latest known state; an older event than the one kept changes nothing."""
    kept = session.get(BookedPeriod, booking.booking_id, with_for_update=True)
    if kept is not None and kept.as_of > as_of:
        return
    if kept is None:
        kept = BookedPeriod(booking_id=booking.booking_id)
        session.add(kept)
    kept.listing_id = booking.listing_id
    kept.start = booking.start
    kept.end = booking.end
    kept.quantity = booking.quantity
    kept.holding = booking.status in HOLDING
    kept.as_of = as_of
