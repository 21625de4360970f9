"""The listings' copy of when bookings hold each listing (services.listings.service
.track_bookings), on a migrated listings database, on both backends: a batch applies each
event once (PostgreSQL: in one statement committing alone), the latest state of each
booking wins whatever the order events arrive in, and a redelivered batch changes nothing
but the count of duplicates skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event as sql_event
from sqlalchemy import func, select

from contracts.bookings import BookingApproved, BookingCancelled, BookingRequested
from infra.database import DatabaseAccess, make_engine, one_statement_at_a_time
from infra.messaging_tables import processed_events
from infra.metrics import DUPLICATES_SKIPPED
from services.listings.models import BookedPeriod
from services.listings.service import track_bookings
from tests.unit.test_notifications_rules import booking as loan

CONSUMER = "listings.track_busy_periods"
NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def event(kind, booking_id: str, status: str, at: datetime, quantity: int = 1):
    payload = loan(status).model_copy(update={"booking_id": booking_id, "quantity": quantity})
    return kind.new(payload, producer="bookings").model_copy(update={"occurred_at": at})


def periods(db: DatabaseAccess) -> dict[str, tuple]:
    with db.reading() as session:
        return {
            r.booking_id: (r.listing_id, r.quantity, r.holding, r.as_of)
            for r in session.scalars(select(BookedPeriod))
        }


def applied(db: DatabaseAccess) -> int:
    with db.reading() as session:
        return session.scalar(select(func.count()).select_from(processed_events))


def skipped() -> float:
    return DUPLICATES_SKIPPED.labels("listings", CONSUMER)._value.get()


def test_each_booking_keeps_its_latest_state_and_each_event_applies_once(listings_db):
    db = DatabaseAccess(make_engine(listings_db), "listings", None, CONSUMER)
    requested = event(BookingRequested, "b-1", "requested", NOON)
    approved = event(BookingApproved, "b-1", "approved", NOON + timedelta(minutes=1), 2)
    cancelled = event(BookingCancelled, "b-2", "cancelled", NOON + timedelta(minutes=2))
    other = event(BookingRequested, "b-2", "requested", NOON)  # arrives after its cancel
    # the approval before the request, the same event twice: the latest state wins
    track_bookings(db, [approved, requested, approved, cancelled])
    track_bookings(db, [other])
    expected = {
        "b-1": ("l-1", 2, True, approved.occurred_at),
        "b-2": ("l-1", 1, False, cancelled.occurred_at),
    }
    assert periods(db) == expected
    assert applied(db) == 4
    # redelivered: nothing changes but the duplicates counted
    before = skipped()
    track_bookings(db, [requested, approved, cancelled, other])
    assert periods(db) == expected
    assert applied(db) == 4
    assert skipped() - before == 4


def test_a_new_event_in_a_redelivered_batch_still_applies(listings_db):
    db = DatabaseAccess(make_engine(listings_db), "listings", None, CONSUMER)
    requested = event(BookingRequested, "b-1", "requested", NOON)
    track_bookings(db, [requested])
    # one tie on the instant: the later in the batch wins, as the same events one by one
    cancelled = event(BookingCancelled, "b-1", "cancelled", NOON)
    track_bookings(db, [requested, cancelled])
    assert periods(db) == {"b-1": ("l-1", 1, False, NOON)}
    assert applied(db) == 2


def test_on_postgresql_a_batch_is_one_statement_committing_alone(pg_database):
    from tests.support.schema import migrated

    migrated("listings", pg_database.url)
    db = DatabaseAccess(make_engine(pg_database.url), "listings", None, CONSUMER)
    statements: list[str] = []

    def count(_conn, _cursor, sql, *_):
        statements.append(sql)

    def begin(_conn):
        statements.append("BEGIN")

    events = [event(BookingRequested, f"b-{n}", "requested", NOON) for n in range(20)]
    engines = (db.engine, one_statement_at_a_time(db.engine))
    for engine in engines:
        sql_event.listen(engine, "before_cursor_execute", count)
    sql_event.listen(db.engine, "begin", begin)  # the autocommit engine's begins send nothing
    try:
        track_bookings(db, events)
    finally:
        for engine in engines:
            sql_event.remove(engine, "before_cursor_execute", count)
        sql_event.remove(db.engine, "begin", begin)
    assert len(statements) == 1 and statements[0].lstrip().startswith("WITH fresh")
    assert len(periods(db)) == 20 and applied(db) == 20
