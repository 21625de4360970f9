"""Booking requests decided together (services.bookings.service.decide_requests) on a
migrated bookings database, on both backends: each request of a batch counts the bookings
made before it in the same transaction, and a refused one changes nothing for the others."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from contracts.bookings import BookingCreated, BookingRequest
from contracts.caller import Caller, Role
from contracts.errors import Conflict, InvalidInput
from contracts.listings import ListingSnapshot
from infra.database import DatabaseAccess, make_engine
from infra.messaging_tables import outbox
from services.bookings import repository
from services.bookings.models import BookingRow
from services.bookings.service import Ask, decide_requests
from tests.support.schema import migrated

BORROWER = Caller(user_id="u1", commune="42218", roles=frozenset({Role.AGENT}))
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def room(listing_id: str, quantity: int = 1) -> ListingSnapshot:
    return ListingSnapshot(
        listing_id=listing_id,
        owner_commune="42044",
        status="published",
        revision=1,
        title=f"Salle {listing_id}",
        category="salles",
        kind="space",
        pricing_unit="hour",
        rate_cents=4000,
        quantity=quantity,
        max_duration=12,
    )


def ask(listing_id: str, hours_ahead: int, hours: int = 1, **more) -> Ask:
    start = NOW + timedelta(days=2, hours=hours_ahead)
    request = BookingRequest.model_validate(
        {"listing_id": listing_id, "start": start, "end": start + timedelta(hours=hours)} | more
    )
    return Ask(BORROWER, request, datetime.now(UTC), correlation_id=f"c-{listing_id}")


def test_one_batch_decides_each_request_as_if_alone_and_in_order(database_url):
    migrated("bookings", database_url)
    engine = make_engine(database_url)
    with DatabaseAccess(engine, "bookings", None, "bookings.requests").transaction() as tx:
        repository.keep_listing_copies(
            tx.session, [room("hall"), room("gym", quantity=2), room("annex")]
        )
    db = DatabaseAccess(engine, "bookings", None, "bookings.requests")

    outcomes = decide_requests(
        db,
        [
            ask("hall", 10, 2),  # 10:00-12:00
            ask("hall", 11),  # overlaps the first, decided in the same transaction: 409
            ask("hall", 12),  # adjacent to the first: booked
            ask("gym", 10),
            ask("gym", 10),  # quantity 2: both
            ask("gym", 10),  # a third: 409
            ask("nowhere", 10),  # unknown listing: 422
            ask("annex", 10, 20),  # longer than the listing allows: 422
            ask("hall", 11, wait_if_taken=True),  # waits behind the first
        ],
    )

    kinds = [type(o).__name__ if not isinstance(o, dict) else o["status"] for o in outcomes]
    assert kinds == [
        "requested",
        "Conflict",
        "requested",
        "requested",
        "requested",
        "Conflict",
        "InvalidInput",
        "InvalidInput",
        "waiting",
    ]
    assert isinstance(outcomes[1], Conflict)
    taken_from = outcomes[1].extra["conflicting_period"]["start"]
    assert datetime.fromisoformat(taken_from) == datetime.fromisoformat(outcomes[0]["start"])
    assert isinstance(outcomes[6], InvalidInput)
    assert outcomes[6].errors[0]["type"] == "unknown_listing"
    with engine.connect() as conn:
        stored = {
            row.id: row.status for row in conn.execute(select(BookingRow.id, BookingRow.status))
        }
        events = conn.execute(select(outbox.c.routing_key, outbox.c.body)).all()
    booked = [o for o in outcomes if isinstance(o, dict)]
    assert stored == {o["id"]: o["status"] for o in booked}
    # one booking.requested per booking that holds its listing, with its request's id
    assert sorted(key for key, _ in events) == ["booking.requested"] * 4
    for _, body in events:
        event = json.loads(body)
        assert event["correlation_id"] == f"c-{event['payload']['listing_id']}"
    engine.dispose()


def test_a_batch_of_refusals_only_commits_nothing(database_url):
    migrated("bookings", database_url)
    engine = make_engine(database_url)
    db = DatabaseAccess(engine, "bookings", None, "bookings.requests")

    outcomes = decide_requests(db, [ask("nowhere", 1), ask("nowhere either", 2)])

    assert all(isinstance(o, InvalidInput) for o in outcomes)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(BookingRow)) == 0
        assert conn.scalar(select(func.count()).select_from(outbox)) == 0
    engine.dispose()


def test_holds_are_read_through_their_listings_index_before_any_analyze(pg_database):
    """A bookings table PostgreSQL has never analysed (a new database, a stack's first
    minutes) still has each batch's holds read by listing, not every holding booking of
    the table: a plan through the status index made each batch read them all."""
    migrated("bookings", pg_database.url)
    engine = make_engine(pg_database.url)
    with DatabaseAccess(engine, "bookings", None, "bookings.requests").transaction() as tx:
        repository.keep_listing_copies(tx.session, [room(f"room-{n}") for n in range(40)])
    db = DatabaseAccess(engine, "bookings", None, "bookings.requests")
    for hour in range(10):
        outcomes = decide_requests(db, [ask(f"room-{n}", hour) for n in range(40)])
        assert all(isinstance(o, dict) for o in outcomes)
    spans = {
        f"room-{n}": (NOW + timedelta(days=2, hours=4), NOW + timedelta(days=2, hours=5))
        for n in (1, 2)
    }
    executed = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        executed.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        with Session(engine) as session:
            holds = repository.holds_during(session, spans)
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    assert {listing: len(found) for listing, found in holds.items()} == {"room-1": 1, "room-2": 1}
    (statement, parameters), *_ = (e for e in executed if "FROM bookings" in e[0])
    with engine.connect() as conn:
        (plan,) = conn.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", parameters
        ).one()

    def scans(node: dict):
        if "Relation Name" in node:
            yield node
        for child in node.get("Plans", []):
            yield from scans(child)

    read = list(scans(plan[0]["Plan"]))
    assert {scan.get("Index Name") for scan in read} == {"ix_bookings_listing_status_end"}
    assert sum(scan["Actual Rows"] for scan in read) == 2  # room-1's and room-2's 04:00


def test_a_listing_copy_is_read_anew_once_a_later_revision_replaces_it(database_url):
    """The snapshots locked are parsed once per stored version: a later revision of the
    listing is what the next lock reads, not the one parsed before."""
    migrated("bookings", database_url)
    engine = make_engine(database_url)
    db = DatabaseAccess(engine, "bookings", None, "bookings.requests")
    with db.transaction() as tx:
        repository.keep_listing_copies(tx.session, [room("hall")])
    with db.transaction() as tx:
        first = repository.listings_for_update(tx.session, ["hall"])["hall"]
    with db.transaction() as tx:
        assert repository.listings_for_update(tx.session, ["hall"])["hall"] == first
        more = room("hall", quantity=3).model_copy(update={"revision": 2})
        repository.keep_listing_copies(tx.session, [more])
    with db.transaction() as tx:
        again = repository.listings_for_update(tx.session, ["hall", "nowhere"])
    assert again == {"hall": more}
    assert first.quantity == 1 and again["hall"].quantity == 3


def test_a_request_is_answered_as_booking_created_dumps_it(database_url):
    """The answer, built from views already valid, is BookingCreated's JSON exactly: for one
    booking, and for a series with every booking and the occurrences that conflicted."""
    migrated("bookings", database_url)
    engine = make_engine(database_url)
    db = DatabaseAccess(engine, "bookings", None, "bookings.requests")
    with db.transaction() as tx:
        repository.keep_listing_copies(tx.session, [room("hall")])
    taken, one, series = decide_requests(
        db,
        [
            ask("hall", 10),  # the second day's occurrence of the series below
            ask("hall", 12, purpose="conseil"),
            ask("hall", 10 - 24, recurrence={"frequency": "daily", "count": 3}),
        ],
    )

    assert taken["status"] == "requested"
    for answer in (one, series):
        assert BookingCreated.model_validate(answer).model_dump(mode="json") == answer
    assert one["created"] == [] and one["conflicts"] == [] and one["purpose"] == "conseil"
    assert series["created"][0]["id"] == series["id"]
    assert len(series["created"]) == 2 and len(series["conflicts"]) == 1
    assert series["conflicts"][0]["start"] == taken["start"]
