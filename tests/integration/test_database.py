"""Database access under eventlet: PostgreSQL I/O must not block the other green threads."""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime

import psycopg2.extensions
import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    event,
    func,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contracts.listings import ListingPublished
from infra.database import (
    TOGETHER_MAX_ROWS,
    DatabaseAccess,
    DuplicateEvent,
    insert_new,
    insert_together,
    make_engine,
    one_statement_at_a_time,
    outbox_row,
    upsert_latest,
)
from infra.health import OperableService
from infra.messaging_tables import outbox, processed_events
from infra.migrations import upgrade
from infra.rpc import rpc
from tests.integration.messaging import listing_published
from tests.support import free_port


class Sleeper(OperableService):
    name = "sleeper"

    @rpc
    def nap(self, seconds: float) -> bool:
        with self.db.reading() as session:
            session.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
        return True


@pytest.fixture
def sleeper(container_factory, vhost, pg_database):
    upgrade("listings", pg_database.url)  # any migrated schema will do
    config = {
        "AMQP_URI": vhost.amqp_uri,
        "DATABASE_URL": pg_database.url,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "max_workers": 20,
    }
    container_factory(Sleeper, config).start()
    with ClusterRpcProxy({"AMQP_URI": vhost.amqp_uri}) as cluster:
        cluster.sleeper.nap(0.01)  # opens a first connection
        yield cluster.sleeper


def concurrent_naps(service, count: int, seconds: float) -> float:
    started = time.perf_counter()
    replies = [service.nap.call_async(seconds) for _ in range(count)]
    assert all(reply.result() for reply in replies)
    return time.perf_counter() - started


def test_twenty_concurrent_pg_sleeps_overlap(sleeper):
    elapsed = concurrent_naps(sleeper, 20, 0.2)
    # serialised they would take 20 × 0.2 = 4 s; cooperative, about one sleep
    assert elapsed < 1.0, f"20 concurrent pg_sleep(0.2) took {elapsed:.2f}s"


def test_without_the_wait_callback_they_would_not(sleeper):
    """The control: the measure above tells a blocking driver from a cooperative one."""
    callback = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(None)
    try:
        elapsed = concurrent_naps(sleeper, 5, 0.1)
    finally:
        psycopg2.extensions.set_wait_callback(callback)
    assert elapsed >= 0.45, f"5 blocking pg_sleep(0.1) took only {elapsed:.2f}s"


def test_handling_all_applies_each_event_once_however_it_is_repeated(listings_db):
    """A batch may hold an event twice, and events seen in an earlier batch: only the others
    are handed to the handler, once, in their order."""
    db = DatabaseAccess(make_engine(listings_db), "listings", None, consumer="listings.test")
    first, second, third = (listing_published(title=f"Salle {n}") for n in range(3))
    with db.handling_all([first, second, first]) as (_tx, fresh):
        assert fresh == [first, second]
    with db.handling_all([third, second, first, third]) as (_tx, fresh):
        assert fresh == [third]
    with db.handling_all([first]) as (_tx, fresh):
        assert fresh == []
    with make_engine(listings_db).connect() as conn:
        assert conn.scalar(select(func.count()).select_from(processed_events)) == 3


def test_handling_all_forgets_the_batch_when_the_handler_fails(listings_db):
    db = DatabaseAccess(make_engine(listings_db), "listings", None, consumer="listings.test")
    event = listing_published()
    with pytest.raises(RuntimeError), db.handling_all([event]):
        raise RuntimeError("the effect failed")
    with db.handling_all([event]) as (_tx, fresh):
        assert fresh == [event]  # not taken for a duplicate: the failed batch left no row


@contextlib.contextmanager
def statements_naming(engine, table: str):
    """The statements sent to `engine` meanwhile that name `table`, as they are sent (in
    its transactions, or alone: one_statement_at_a_time)."""
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_):
        if table in statement:
            statements.append(statement)

    engines = {engine, one_statement_at_a_time(engine)}
    for each in engines:
        event.listen(each, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        for each in engines:
            event.remove(each, "before_cursor_execute", seen)


def test_handling_keyed_records_the_event_with_the_commit_and_finds_a_duplicate_there(
    listings_db,
):
    """The processed_events row is written at the commit, with the transaction's events (on
    PostgreSQL in one statement); a second delivery raises DuplicateEvent and leaves nothing
    of its own."""
    engine = make_engine(listings_db)
    db = DatabaseAccess(engine, "listings", None, consumer="listings.test")
    first = listing_published()
    with (
        statements_naming(engine, "processed_events") as statements,
        db.handling_keyed(first) as tx,
    ):
        tx.emit(ListingPublished, first.payload)
        assert statements == []  # nothing before the commit
    assert len(statements) == 1
    if listings_db.startswith("postgresql"):  # SQLite: one statement per table
        assert "outbox" in statements[0]
    with pytest.raises(DuplicateEvent), db.handling_keyed(first) as tx:
        tx.emit(ListingPublished, first.payload)
    second = listing_published()
    with pytest.raises(IntegrityError), db.handling_keyed(second) as tx:  # not a duplicate
        emitted = tx.emit(ListingPublished, second.payload)
        tx.write_inserts()
        tx.session.execute(outbox.insert(), [outbox_row(emitted, datetime.now(UTC))])
    with make_engine(listings_db).connect() as conn:
        assert conn.scalar(select(func.count()).select_from(processed_events)) == 1
        assert conn.scalar(select(func.count()).select_from(outbox)) == 1


@pytest.fixture
def parents_and_children(database_url):
    """Two tables, the second referring to the first, on each database."""
    url = database_url
    metadata = MetaData()
    parents = Table("parents", metadata, Column("id", Integer, primary_key=True))
    children = Table(
        "children",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("parent_id", Integer, ForeignKey("parents.id"), nullable=False),
    )
    metadata.create_all(make_engine(url))
    return url, parents, children


@pytest.mark.parametrize("count", [1, 3, 16, 1500])
def test_rows_inserted_together_may_refer_to_each_other(parents_and_children, count):
    """A few rows (a batch of bookings with their transitions) are one statement on
    PostgreSQL; many (a seed) one executemany per table, as on SQLite."""
    url, parents, children = parents_and_children
    engine = make_engine(url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with Session(engine) as session, session.begin():
        insert_together(
            session,
            [
                (parents, [{"id": n} for n in range(count)]),
                (children, [{"id": n, "parent_id": n} for n in range(count)]),
            ],
        )
    with make_engine(url).connect() as conn:
        joined = conn.scalar(select(func.count()).select_from(children.join(parents)))
    assert joined == count
    inserts = [s for s in statements if s.lstrip().upper().startswith(("INSERT", "WITH"))]
    if url.startswith("postgresql") and 2 * count <= TOGETHER_MAX_ROWS:
        assert len(inserts) == 1
    else:
        assert len(inserts) >= 2


def test_a_row_inserted_together_must_still_refer_to_an_existing_row(parents_and_children):
    url, parents, children = parents_and_children
    with pytest.raises(IntegrityError), Session(make_engine(url)) as session, session.begin():
        insert_together(
            session,
            [(parents, [{"id": 1}]), (children, [{"id": 1, "parent_id": 2}])],
        )
    with make_engine(url).connect() as conn:
        assert conn.scalar(select(func.count()).select_from(parents)) == 0


def test_a_transaction_that_only_writes_at_its_commit_commits_alone(listings_db):
    """On PostgreSQL, a transaction that sent nothing before its commit writes its one
    statement on an autocommit connection (no BEGIN, no COMMIT); one that read first
    commits in its own transaction; one that fails writes nothing."""
    engine = make_engine(listings_db)
    db = DatabaseAccess(engine, "listings", None, consumer="listings.test")
    begun: list[object] = []

    def began(conn) -> None:
        begun.append(conn)

    event.listen(engine, "begin", began)
    try:
        with db.transaction() as tx:
            tx.emit(ListingPublished, listing_published().payload)
        alone = len(begun)
        with db.transaction() as tx:
            tx.session.execute(select(func.count()).select_from(outbox))
            tx.emit(ListingPublished, listing_published().payload)
        with pytest.raises(RuntimeError), db.transaction() as tx:
            tx.emit(ListingPublished, listing_published().payload)
            raise RuntimeError("the effect failed")
    finally:
        event.remove(engine, "begin", began)
    assert alone == (0 if listings_db.startswith("postgresql") else 1)
    assert len(begun) == alone + 1
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(outbox)) == 2


def test_events_emitted_one_by_one_are_written_together_at_commit(listings_db):
    """A transaction that emits 500 events (a billing run, a seed) writes them with one
    statement when it commits, whatever the database."""
    engine = make_engine(listings_db)
    db = DatabaseAccess(engine, "listings", None, consumer="listings.test")
    with statements_naming(engine, "outbox") as statements, db.transaction() as tx:
        for n in range(500):
            tx.emit(ListingPublished, listing_published(title=f"Salle {n}").payload)
        assert statements == []  # nothing before the commit
    assert len(statements) == 1
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(outbox)) == 500


def test_upserts_are_compiled_once_per_shape(database_url):
    """SQLAlchemy 2.0 compiles its dialects' INSERT … ON CONFLICT at every execution; the
    consumers' upserts (upsert_latest, insert_new) are compiled once per shape, and still
    do what they say."""
    kept = Table(
        "kept",
        MetaData(),
        Column("key", String(10), primary_key=True),
        Column("rank", Integer, nullable=False),
        Column("value", String(10), nullable=False),
    )
    engine = make_engine(database_url)
    kept.metadata.create_all(engine)
    hits: list = []

    def executed(_conn, _cursor, statement, _params, context, _many):
        if "kept" in statement:
            hits.append(context.cache_hit)

    event.listen(engine, "after_cursor_execute", executed)
    with Session(engine) as session, session.begin():
        upsert_latest(session, kept, [{"key": "a", "rank": 2, "value": "new"}], "key", "rank")
        upsert_latest(  # an older one changes nothing; a newer one wins
            session,
            kept,
            [{"key": "a", "rank": 1, "value": "old"}, {"key": "b", "rank": 1, "value": "b1"}],
            "key",
            "rank",
        )
        upsert_latest(session, kept, [{"key": "b", "rank": 3, "value": "b3"}], "key", "rank")
        upsert_latest(
            session,
            kept,
            [{"key": "e", "rank": 1, "value": "e"}, {"key": "f", "rank": 1, "value": "f"}],
            "key",
            "rank",
        )
        first = insert_new(session, kept, [{"key": "c", "rank": 1, "value": "c"}], "key")
        again = insert_new(
            session,
            kept,
            [{"key": "c", "rank": 9, "value": "x"}, {"key": "d", "rank": 1, "value": "d"}],
            "key",
        )
        last = insert_new(session, kept, [{"key": "g", "rank": 1, "value": "g"}], "key")
        assert insert_new(session, kept, [], "key") == []  # nothing to insert: no statement
    # compiled for one row and for many (SQLAlchemy keeps both), then taken from its cache
    miss, hit = engine.dialect.CACHE_MISS, engine.dialect.CACHE_HIT
    assert hits == [miss, miss, hit, hit, miss, miss, hit]
    assert (first, again, last) == (["c"], ["d"], ["g"])
    with engine.connect() as conn:
        assert dict(conn.execute(select(kept.c.key, kept.c.value)).all()) == {
            "a": "new",
            "b": "b3",
            "c": "c",
            "d": "d",
            "e": "e",
            "f": "f",
            "g": "g",
        }
