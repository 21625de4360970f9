"""SQLAlchemy engines and the nameko dependency that gives each worker its transactions.

Under eventlet a C driver would block every green thread: PostgreSQL goes through psycopg2
with eventlet's wait callback, so it yields to the hub on I/O. SQLite gets one connection per
process (waiting for it is green) and `BEGIN IMMEDIATE`, so a transaction holds the write
lock from its first statement and check-then-insert is atomic.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy import (
    CTE,
    Connection,
    Engine,
    Insert,
    Integer,
    Table,
    bindparam,
    column,
    create_engine,
    event,
    insert,
    select,
    values,
)
from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.cache_key import CacheKey

from contracts.events import Event, Payload
from contracts.topology import event_exchange
from infra.exactly_once import (
    RepeatedRequest,
    Request,
    record,
    request_of,
    store_replies,
    stored_reply,
)
from infra.messaging_tables import outbox, processed_events
from infra.metrics import DUPLICATES_SKIPPED

log = logging.getLogger(__name__)

_engines: dict[str, Engine] = {}


def _make_psycopg2_green() -> None:
    """eventlet.monkey_patch() installs psycopg2's wait callback; make sure it is there."""
    from eventlet import patcher

    if patcher.is_monkey_patched("socket"):
        import psycopg2.extensions
        from eventlet.support import psycopg2_patcher

        if psycopg2.extensions.get_wait_callback() is None:
            psycopg2_patcher.make_psycopg_green()


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """One engine per URL and process."""
    if url in _engines:
        return _engines[url]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, pool_size=1, max_overflow=0, pool_timeout=60, connect_args={"timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        _make_psycopg2_green()
        engine = create_engine(
            # no pre-ping (a round trip per checkout): a connection found dead invalidates
            # the whole pool, the failed call answers 503, the next ones reconnect
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=30,
        )
    _engines[url] = engine
    return engine


def upsert_latest(session: Session, table, rows: Sequence[dict], key: str, rank: str) -> None:
    """Writes `rows`, one statement for all: a row replaces the one kept for its `key` only
    if it ranks at least as high by `rank` (events may arrive out of order, or twice)."""
    rows = latest_per_key(rows, key, rank)
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    session.execute(_upsert_of(dialect, table, tuple(rows[0]), key, rank, None), rows)


def insert_new(session: Session, table, rows: Sequence[dict], returning: str | None = None) -> list:
    """Inserts the rows whose key is not taken yet (any unique constraint), one statement
    for all; with `returning`, gives that column of the rows inserted: what was new."""
    if not rows:
        return []
    statement = _upsert_of(
        session.get_bind().dialect.name, table, tuple(rows[0]), None, None, returning
    )
    if returning is None:
        session.execute(statement, rows)
        return []
    return list(session.scalars(statement, rows))


def _shaped(insert_class: type[Insert]) -> type[Insert]:
    class Shaped(insert_class):
        """An INSERT … ON CONFLICT whose SQL its `shape` decides. SQLAlchemy 2.0 gives its
        dialects' INSERT no cache key and compiled it at every execution (15 % of the
        listings service's CPU under booking load); this one's key is its shape, which is
        right as long as it embeds no values (rows come as execution parameters)."""

        inherit_cache = False
        shape: tuple = ()

        def _generate_cache_key(self):
            return CacheKey(("infra.database.upsert", *self.shape), [])

    return Shaped


_SHAPED = {"postgresql": _shaped(PostgresqlInsert), "sqlite": _shaped(SqliteInsert)}
_SHAPED_PLAIN = _shaped(Insert)


@lru_cache(maxsize=128)
def _upsert_of(
    dialect: str,
    table: Table,
    columns: tuple[str, ...],
    key: str | None,
    rank: str | None,
    returning: str | None,
) -> Insert:
    """INSERT of `columns` into `table`: on a conflict over `key`, the other columns are
    updated if the row ranks at least as high by `rank`; without `rank`, a conflict over
    any unique constraint skips the row. Built once per shape (see _shaped)."""
    statement = _SHAPED[dialect](table)
    if rank is None:
        statement = statement.on_conflict_do_nothing()
    else:
        statement = statement.on_conflict_do_update(
            index_elements=[table.c[key]],
            set_={name: statement.excluded[name] for name in columns if name != key},
            where=table.c[rank] <= statement.excluded[rank],
        )
    if returning is not None:
        statement = statement.returning(table.c[returning])
    statement.shape = (
        dialect,
        table.fullname,
        tuple((c.name, repr(c.type)) for c in table.columns),
        columns,
        key,
        rank,
        returning,
    )
    return statement


TOGETHER_MAX_ROWS = 32  # beyond, a statement per row would be too long to plan and cache


@dataclass(frozen=True)
class NewRows:
    """Rows inserted only where their key is not taken yet (ON CONFLICT DO NOTHING), each
    announced by its outbox row (`announced[i]` for `rows[i]`) only if it was inserted:
    effects keyed by their cause, which a second cause for the same key must not repeat."""

    table: Table
    rows: list[dict]
    key: str  # a column given in each row, returned for the rows inserted
    announced: list[dict]


def insert_together(
    session: Session | Connection,
    inserts: Sequence[tuple[Table, list[dict]]],
    new: NewRows | None = None,
) -> None:
    """INSERTs into several tables, in order, after `new`'s rows and their announcements.
    A few rows (a batch of bookings, their first transitions, their events): on PostgreSQL
    one round trip, every insert but the last one as a data-modifying WITH clause of the
    last (constraints are checked at its end, so a row may refer to one inserted beside
    it). More rows, or SQLite (no such clauses): one executemany per table, in a Session."""
    if not inserts and new is None:
        return
    engine = session.engine if isinstance(session, Connection) else session.get_bind()
    if not one_statement(engine, inserts, new):
        if new is not None:
            inserted = set(insert_new(session, new.table, new.rows, returning=new.key))
            announced = [
                outbox_row
                for row, outbox_row in zip(new.rows, new.announced, strict=True)
                if row[new.key] in inserted
            ]
            if announced:
                session.execute(insert(outbox), announced)
        for table, rows in inserts:  # in order: a row may refer to an earlier one
            session.execute(insert(table), rows)
        return
    each = [(table, row) for table, rows in inserts for row in rows]
    parameters = {
        f"p{n}_{column}": value for n, (_, row) in enumerate(each) for column, value in row.items()
    }
    if new is None:
        session.execute(_together(tuple((table, tuple(row)) for table, row in each)), parameters)
        return
    for n, (row, announced) in enumerate(zip(new.rows, new.announced, strict=True)):
        parameters |= {f"n{n}_{column}": value for column, value in row.items()}
        parameters |= {f"a{n}_{column}": value for column, value in announced.items()}
    shape = (new.table, tuple(new.rows[0]), new.key, len(new.rows), tuple(new.announced[0]))
    session.execute(_together(tuple((table, tuple(row)) for table, row in each), shape), parameters)


def one_statement(
    engine: Engine, inserts: Sequence[tuple[Table, list[dict]]], new: NewRows | None
) -> bool:
    """Whether `insert_together` writes these in one statement."""
    rows = sum(len(rows) for _, rows in inserts) + (2 * len(new.rows) if new else 0)
    return engine.dialect.name == "postgresql" and 0 < rows <= TOGETHER_MAX_ROWS


_Inserts = tuple[tuple[Table, tuple[str, ...]], ...]


@lru_cache(maxsize=256)
def _together(shape: _Inserts, new: tuple | None = None) -> Insert:
    """The statement of `insert_together` for these rows (table and columns of each), built
    once with bound parameters, so that SQLAlchemy compiles it once (a multi-row VALUES
    it would compile each time: 1.3 ms a compilation). With `new` (NewRows' table, columns,
    key, row count and its announcements' columns): first the new rows, then, in one
    INSERT … SELECT in their order, the announcements of those inserted."""
    # a statement holding an ON CONFLICT clause has no cache key of its own (see _shaped):
    # the outer one then carries one, its shape
    make = insert if new is None else _SHAPED_PLAIN
    statements = [
        make(table).values(
            {column: bindparam(f"p{t}_{column}", type_=table.c[column].type) for column in columns}
        )
        for t, (table, columns) in enumerate(shape)
    ]
    ctes = []
    if new is not None:
        inserted, announce = _new_and_announced(*new)
        ctes.append(inserted)
        statements.insert(0, announce)
    *first, last = statements
    ctes += [statement.cte(f"insert_{n}") for n, statement in enumerate(first)]
    last = last.add_cte(*ctes)
    if new is not None:
        last.shape = ("infra.database.together", shape, new)
    return last


def _new_and_announced(
    table: Table, columns: tuple[str, ...], key: str, count: int, announced: tuple[str, ...]
) -> tuple[CTE, Insert]:
    """The INSERTs of NewRows: the rows, skipped where their key is taken, returning the key
    of those inserted; then their announcements in the outbox, in the rows' order, for
    those only (`insert_together`'s `n…` and `a…` parameters)."""
    rows = (
        _SHAPED["postgresql"](table)
        .values(
            [
                {c: bindparam(f"n{n}_{c}", type_=table.c[c].type) for c in columns}
                for n in range(count)
            ]
        )
        .on_conflict_do_nothing()
        .returning(table.c[key])
    )
    inserted = rows.cte("new_rows")
    events = values(
        column("n", Integer),
        column("key", table.c[key].type),
        *(column(c, outbox.c[c].type) for c in announced),
        name="announced",
    ).data(
        [
            (
                n,
                bindparam(f"n{n}_{key}", type_=table.c[key].type),
                *(bindparam(f"a{n}_{c}", type_=outbox.c[c].type) for c in announced),
            )
            for n in range(count)
        ]
    )
    announce = _SHAPED_PLAIN(outbox).from_select(
        list(announced),
        select(*(events.c[c] for c in announced))
        .where(events.c.key.in_(select(inserted.c[key])))
        .order_by(events.c.n),
    )
    return inserted, announce


def latest_per_key(rows: Sequence[dict], key: str, rank: str) -> list[dict]:
    """For a multi-row upsert, which may not touch one row twice (PostgreSQL refuses it):
    of the rows sharing `key`, the one ranking highest by `rank` (the later one on a tie)."""
    kept: dict[Any, dict] = {}
    for row in rows:
        held = kept.get(row[key])
        if held is None or row[rank] >= held[rank]:
            kept[row[key]] = row
    return list(kept.values())


_readers: dict[Engine, Engine] = {}


def autocommit_reader(engine: Engine) -> Engine:
    """For PostgreSQL reads that need no transaction: autocommit connections in a pool of
    their own. Switching a pooled connection to autocommit and back for each read costs more
    than the read (a `SELECT 1` in a session: 658 µs that way, 182 µs from this pool)."""
    reader = _readers.get(engine)
    if reader is None:
        size = engine.pool.size()
        reader = _readers[engine] = create_engine(
            engine.url,
            isolation_level="AUTOCOMMIT",
            # as many as the workers that read at once; as many again for the transactions
            # that commit alone (UnitOfWork.write_inserts_at_commit), a worker's while it reads
            pool_size=size,
            max_overflow=size,
            pool_timeout=30,
        )
    return reader


_keepers: dict[Engine, Engine] = {}


def reply_keeper(engine: Engine) -> Engine:
    """Where the replies of requests applied once are stored (infra.exactly_once): on
    PostgreSQL, autocommit connections of their own whose commits do not wait for the WAL
    flush (`synchronous_commit = off`). A reply lost in a crash of PostgreSQL only turns a
    repeat's answer into Conflict, as a process killed before storing it does: the effect
    committed before it, synchronously. SQLite: the engine as it is."""
    if engine.dialect.name != "postgresql":
        return engine
    keeper = _keepers.get(engine)
    if keeper is None:
        keeper = _keepers[engine] = create_engine(
            engine.url,
            isolation_level="AUTOCOMMIT",
            # one batch of replies at a time per process (infra.rpc); one more for a spare
            pool_size=1,
            max_overflow=1,
            pool_timeout=30,
            connect_args={"options": "-c synchronous_commit=off"},
        )
    return keeper


def one_statement_at_a_time(engine: Engine) -> Engine:
    """For a single statement that needs no transaction around it (a read, or one write
    that commits alone): PostgreSQL's autocommit pool, one round trip; SQLite as it is."""
    return autocommit_reader(engine) if engine.dialect.name == "postgresql" else engine


def service_engine(config: dict) -> Engine:
    """The engine of a service's database (config DATABASE_URL), its pool as large as the
    service has workers: every extension of the service asks here, so whichever sets up
    first, the pool has the same size."""
    return make_engine(config["DATABASE_URL"], pool_size=config.get("max_workers", 10))


def outbox_row(event: Event, now: datetime | None = None) -> dict:
    """The outbox row that carries `event` to its producer's exchange."""
    return {
        "event_id": str(event.event_id),
        "exchange": event_exchange(event.producer),
        "routing_key": event.type,
        "body": event.model_dump_json(),
        "correlation_id": event.correlation_id,
        "created_at": now or datetime.now(UTC),
    }


class DuplicateEvent(Exception):
    """This consumer has already applied this event: acknowledge it and change nothing."""


class UnitOfWork:
    """One transaction: the business change and the events it emits commit together."""

    def __init__(
        self,
        begin: Callable[[], Session],
        engine: Engine,
        producer: str,
        correlation_id: str | None,
    ):
        self._begin = begin
        self._session: Session | None = None
        self.engine = engine
        self.producer = producer
        self.correlation_id = correlation_id
        self._after_commit: list[Callable[[], None]] = []
        self._inserts: list[tuple[Table, list[dict]]] = []
        self._new: NewRows | None = None

    @property
    def session(self) -> Session:
        """The transaction's session, begun when first used."""
        if self._session is None:
            self._session = self._begin()
        return self._session

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the transaction has committed (e.g. count a business metric)."""
        self._after_commit.append(action)

    def committed(self) -> None:
        for action in self._after_commit:
            action()

    def insert_at_commit(self, table: Table, rows: list[dict]) -> None:
        """Rows written just before the commit, with the other rows so kept and the
        transaction's events: one round trip on PostgreSQL (`insert_together`). For rows
        that nothing reads back before the commit."""
        if not rows:
            return
        for kept, waiting in self._inserts:
            if kept is table:  # one entry per table, in the order first seen
                waiting.extend(rows)
                return
        self._inserts.append((table, list(rows)))

    def insert_new_at_commit(
        self,
        table: Table,
        rows: list[dict],
        key: str,
        event_cls: type[Event],
        payloads: list[Payload],
    ) -> None:
        """Rows written at the commit where their key is not taken yet, each announced by
        the event of its payload (`payloads[i]` for `rows[i]`) only if it was new: on
        PostgreSQL in the commit's one statement (NewRows). One such set per transaction."""
        if self._new is not None:
            raise RuntimeError("one set of new rows per transaction")
        events = self._events(event_cls, payloads)
        now = datetime.now(UTC)
        if rows:
            self._new = NewRows(table, rows, key, [outbox_row(evt, now) for evt in events])

    def write_inserts(self) -> None:
        insert_together(self.session, self._inserts, self._new)
        self._inserts, self._new = [], None

    def write_inserts_at_commit(self) -> None:
        """`write_inserts` at the end of the transaction. One that did nothing else, on
        PostgreSQL, writes its one statement alone (autocommit, atomic all the same): one
        round trip, where BEGIN, the statement and COMMIT are three."""
        if self._session is None and one_statement(self.engine, self._inserts, self._new):
            with one_statement_at_a_time(self.engine).connect() as conn:
                insert_together(conn, self._inserts, self._new)
            self._inserts, self._new = [], None
            return
        if self._inserts or self._new is not None:
            self.write_inserts()

    def emit(self, event_cls: type[Event], payload: Payload) -> Event:
        """Write the event to the outbox; the relay publishes it after commit."""
        return self.emit_all(event_cls, [payload])[0]

    def emit_all(self, event_cls: type[Event], payloads: list[Payload]) -> list[Event]:
        """Write one event per payload to the outbox, with the commit (nothing reads the
        outbox inside the transaction); the relay publishes them after it."""
        events = self._events(event_cls, payloads)
        if events:
            now = datetime.now(UTC)
            self.insert_at_commit(outbox, [outbox_row(evt, now) for evt in events])
        return events

    def _events(self, event_cls: type[Event], payloads: list[Payload]) -> list[Event]:
        return [
            event_cls.new(p, producer=self.producer, correlation_id=self.correlation_id)
            for p in payloads
        ]


class HeldCommit:
    """The transaction that records a batch's requests, its COMMIT held until the batch's
    outcomes, their replies, are known and stored in it (`DatabaseAccess.replies_at_commit`):
    a request's effect and its reply then commit together (infra.exactly_once)."""

    def __init__(self) -> None:
        self._opened: ExitStack | None = None  # the session and its transaction, still open
        self._tx: UnitOfWork | None = None
        self.requests: list[Request] = []  # those recorded by the held transaction

    @property
    def holding(self) -> bool:
        return self._opened is not None

    def hold(self, opened: ExitStack, tx: UnitOfWork, requests: list[Request]) -> None:
        self._opened, self._tx, self.requests = opened, tx, requests

    def keep(self, replies: Sequence[tuple[Request, str]]) -> bool:
        """Writes these replies (of requests among `requests`) in the held transaction;
        whether it did (none is held once it has committed)."""
        if not self.holding or not replies:
            return False
        store_replies(self._tx.session, replies)
        return True

    def commit(self) -> None:
        if not self.holding:
            return
        opened, self._opened = self._opened, None
        opened.close()
        for request in self.requests:
            request.recorded = True
        self._tx.committed()

    def roll_back(self, exc_info) -> None:
        if self.holding:
            opened, self._opened = self._opened, None
            opened.__exit__(*exc_info)


class DatabaseAccess:
    """What a worker sees as `self.db`."""

    def __init__(
        self,
        engine: Engine,
        producer: str,
        correlation_id: str | None,
        consumer: str,
        requests: Sequence[Request] = (),
    ):
        self.engine = engine
        self.producer = producer
        self.correlation_id = correlation_id
        self.consumer = consumer
        # RPC requests to record with the next effect committed (infra.exactly_once)
        self.requests = requests
        self.held: HeldCommit | None = None  # within replies_at_commit

    @contextmanager
    def replies_at_commit(self) -> Iterator[HeldCommit]:
        """Within: the transaction that records requests commits not at the end of its own
        `with` block but at the end of this one, after the caller has stored their replies
        in it (`HeldCommit.keep`), or rolls back if this block raises. For a group commit
        whose outcomes are the replies, known only once its decision has returned: the
        decision's code stays as it is. One transaction is held at a time: another one
        begun meanwhile first commits the held one, whose replies then go the usual way
        (stored after the commit, infra.rpc)."""
        held = self.held = HeldCommit()
        try:
            yield held
        except BaseException:
            held.roll_back(sys.exc_info())
            raise
        finally:
            self.held = None
        held.commit()

    @contextmanager
    def transaction(self) -> Iterator[UnitOfWork]:
        """A transaction; the first one a request commits records its id with it, before
        anything else (a request applied before raises RepeatedRequest here)."""
        held = self.held
        if held is not None:
            held.commit()  # an earlier transaction of the batch: one held at a time
        with ExitStack() as opened:

            def begin() -> Session:  # at the transaction's first statement but its last
                session = opened.enter_context(Session(self.engine, expire_on_commit=False))
                opened.enter_context(session.begin())
                return session

            tx = UnitOfWork(begin, self.engine, self.producer, self.correlation_id)
            recording = [r for r in self.requests if not r.recorded]
            if recording:
                record(tx.session, recording)
            yield tx
            tx.write_inserts_at_commit()
            if recording and held is not None:  # commits once the replies are in it
                held.hold(opened.pop_all(), tx, recording)
                return
        for request in recording:
            request.recorded = True
        tx.committed()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """For reads: on PostgreSQL without BEGIN/COMMIT round trips (each statement sees
        committed data); SQLite reads inside its usual transaction."""
        if self.engine.dialect.name == "postgresql":
            with Session(autocommit_reader(self.engine), expire_on_commit=False) as session:
                yield session
            return
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def handling(self, evt: Event) -> Iterator[UnitOfWork]:
        """A transaction that applies `evt` at most once for this consumer.

        The (consumer, event_id) row commits with the effect; a second delivery finds it
        and raises DuplicateEvent before the body runs. (A plain INSERT: for one event,
        `handling_all`'s ON CONFLICT … RETURNING costs 0.3 ms more CPU.)
        """
        with self.transaction() as tx:
            try:
                tx.session.execute(insert(processed_events).values(self._processed(evt)))
            except IntegrityError as exc:  # leaving the transaction rolls it back
                raise DuplicateEvent(f"{self.consumer} already applied {evt.event_id}") from exc
            yield tx

    @contextmanager
    def handling_keyed(self, evt: Event) -> Iterator[UnitOfWork]:
        """`handling` for an effect keyed by its cause (rows written only if their key is
        new, events only for those): a second delivery would change nothing anyway, so the
        processed_events row goes with the transaction's last inserts (its events), one
        round trip fewer per event, and a duplicate is found there and raised as
        DuplicateEvent, its transaction rolled back. A body that only writes at the commit
        (`insert_new_at_commit`, `emit`) is, on PostgreSQL, one statement committing alone.
        For a handler called at every event of a busy stream (billing's charges)."""
        try:
            with self.transaction() as tx:
                tx.insert_at_commit(processed_events, [self._processed(evt)])
                yield tx
        except IntegrityError as exc:
            if processed_events.name not in str(exc.orig):
                raise
            raise DuplicateEvent(f"{self.consumer} already applied {evt.event_id}") from exc

    @contextmanager
    def handling_all(self, events: Sequence[Event]) -> Iterator[tuple[UnitOfWork, list[Event]]]:
        """A transaction that applies each of `events` at most once for this consumer: yields
        it with the events not applied before, in their order (an event seen before, or twice
        in `events`, is left out and, once committed, counted as a duplicate).

        One statement records them all in processed_events; the rows commit with the effect.
        """
        with self.transaction() as tx:
            firsts = list({str(evt.event_id): evt for evt in events}.values())
            now = datetime.now(UTC)
            recorded = set(
                insert_new(
                    tx.session,
                    processed_events,
                    [self._processed(evt, now) for evt in firsts],
                    returning="event_id",
                )
            )
            fresh = [evt for evt in firsts if str(evt.event_id) in recorded]
            skipped = len(events) - len(fresh)
            if skipped:
                tx.after_commit(partial(self._count_skipped, skipped))
            yield tx, fresh

    def _processed(self, evt: Event, now: datetime | None = None) -> dict:
        """The processed_events row saying this consumer applied `evt`."""
        return {
            "consumer": self.consumer,
            "event_id": str(evt.event_id),
            "event_type": evt.type,
            "processed_at": now or datetime.now(UTC),
        }

    def _count_skipped(self, skipped: int) -> None:
        DUPLICATES_SKIPPED.labels(self.producer, self.consumer).inc(skipped)
        log.info("%s skipped %d duplicate events", self.consumer, skipped)


class Database(DependencyProvider):
    """Per-worker database access for a nameko service (config key DATABASE_URL)."""

    def __init__(self, with_outbox: bool = True):
        self.with_outbox = with_outbox

    def setup(self) -> None:
        config = self.container.config
        self.engine = service_engine(config)
        if self.with_outbox:
            from infra.metrics import track_outbox

            track_outbox(self.container.service_name, self.engine)

    def get_dependency(self, worker_ctx: Any) -> DatabaseAccess:
        request = request_of(worker_ctx)
        return DatabaseAccess(
            self.engine,
            producer=self.container.service_name,
            correlation_id=worker_ctx.data.get("correlation_id"),
            consumer=f"{self.container.service_name}.{worker_ctx.entrypoint.method_name}",
            requests=(request,) if request else (),
        )

    def worker_setup(self, worker_ctx: Any) -> None:
        """A request that may have been applied before is not applied again: its method, for
        this worker, first looks the request up, and if it was applied only raises
        RepeatedRequest with the reply stored then (infra.rpc sends it). The lookup runs in
        the worker, not here: a database away (restarting) must fail this request (503 at
        the gateway), where an error raised in worker_setup would kill the whole service.
        A first delivery is not looked up (infra.exactly_once): its record is its guard."""
        request = request_of(worker_ctx)
        if request is None or not request.maybe_repeated:
            return
        name = worker_ctx.entrypoint.method_name
        method = getattr(worker_ctx.service, name)
        setattr(worker_ctx.service, name, partial(_unless_applied, self.engine, request, method))


def _unless_applied(
    engine: Engine, request: Request, method: Callable, *args: Any, **kwargs: Any
) -> Any:
    reply = stored_reply(one_statement_at_a_time(engine), request.request_id)
    if reply is not None:
        raise RepeatedRequest(request, reply)
    return method(*args, **kwargs)
