"""The outbox relay: publishes committed outbox rows, marking them sent only after their
confirms.

On PostgreSQL the relay is woken by the commit itself (a trigger NOTIFYs, the relay
LISTENs) and publishes at once what is pending, without waiting for the batches still in
flight: up to `in_flight` (4) batches published and awaiting their confirms, each marked
once it and those before it are confirmed. A commit is thus read as soon as it is notified,
not after the batch in flight is confirmed and marked (which halved commit → claimed under
the bench's booking load); a busy outbox still goes out in batches. It reads again after
`idle_seconds` at the latest, should a notification be lost.

Run one or more per service (`mutualis relay listings`). One relay leads a service's
outbox: the one holding its session-level advisory lock, taken on the connection that
listens, reads and marks, so a killed relay's lead goes with its connection and a standby
takes it at the next commit (or `idle_seconds`). The leader publishes the pending rows in id
order on one channel, so the events of one aggregate (whose transactions its row lock
orders, and whose outbox ids follow their commits) leave in the order they were committed,
whichever relay takes them. A relay killed after publishing and before marking leaves the
rows pending: they are published again, and consumers drop the duplicate. A nack, a
confirm overdue or a lost connection drops the channel and every batch in flight: the
outbox is published again from its first unconfirmed row, in order (a nacked event then
arrives after the later events already confirmed: see docs/architecture.md).

`in_flight` = 1, a poll period above 0, and SQLite publish one batch at a time instead: read
and marked in one transaction holding the outbox's transaction-level advisory lock
(SQLite's `BEGIN IMMEDIATE` serialises them alike), its confirms awaited before the next;
SQLite polls. Rows are claimed there with `FOR UPDATE SKIP LOCKED`, so two relays never
publish the same row.

Each message carries its outbox row's commit time (header `x-mutualis-committed-at`, µs since
the epoch), read as the row is claimed, when PostgreSQL tracks commit timestamps
(`track_commit_timestamp = on`, checked once per relay): consumers measure from it the lag
the target names, commit to handler's commit, and the relay its own share (commit → claimed,
commit → confirmed; `x-mutualis-claimed-at` says when it read the row, to trace a slow
one). Otherwise (setting off, SQLite) both headers are left out.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import selectors
import signal
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from amqp.exceptions import MessageNacked
from kombu import Connection, Producer
from sqlalchemy import Engine, delete, func, inspect, literal_column, null, select, text, update

from infra.database import make_engine
from infra.heap import freeze_startup_heap
from infra.messaging_tables import OUTBOX_CHANNEL, outbox, rpc_requests
from infra.metrics import RELAY_LAG
from infra.topology import declare_all, source_exchange

log = logging.getLogger(__name__)

KEEP_PUBLISHED = timedelta(days=7)
CONFIRM_TIMEOUT_SECONDS = 30
SQLITE_POLL = 0.05  # seconds between two reads of an outbox nobody notifies of its commits
COMMITTED_AT_HEADER = "x-mutualis-committed-at"  # µs since the epoch, by PostgreSQL's clock
CLAIMED_AT_HEADER = "x-mutualis-claimed-at"  # µs since the epoch: when the relay read the row


@dataclass
class _Batch:
    """Rows published together, pending until the broker confirms up to `last_tag`."""

    rows: list
    last_tag: int
    claimed: float  # time.time() of the read
    published: float  # time.monotonic(), for the confirm timeout


class Relay:
    def __init__(
        self,
        service: str,
        engine: Engine,
        amqp_uri: str,
        batch_size: int = 200,
        in_flight: int = 4,
    ):
        self.service = service
        self.in_flight = in_flight
        self.engine = engine
        self.amqp_uri = amqp_uri
        self.batch_size = batch_size
        self.exchange = source_exchange(service)
        # the service's relays take turns under this key (64-bit, stable across processes)
        self._lock_key = int.from_bytes(
            hashlib.blake2b(f"outbox:{service}".encode(), digest_size=8).digest(),
            "big",
            signed=True,
        )
        self._returned: list[str] = []
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        # publisher confirms: delivery tags count from 1 on each channel in confirm mode
        self._last_tag = 0
        self._unconfirmed: set[int] = set()
        self._refused: int | None = None  # the first delivery tag the broker nacked
        self._in_flight: deque[_Batch] = deque()  # published, not yet marked (pipelined)
        self._last_cleanup = 0.0
        self._keeps_requests: bool | None = None
        self._listener = None  # PostgreSQL connection LISTENing on OUTBOX_CHANNEL
        self._leading = False  # holds the service's session advisory lock (pipelined)
        self._commit_times: bool | None = None  # does PostgreSQL track them? (asked once)
        self._wake_up: tuple[int, int] | None = None  # a pipe while `run` runs
        self.running = True

    def stop(self) -> None:
        """Ends `run` (from a signal handler too): a wait for news is cut short."""
        self.running = False
        if self._wake_up is not None:
            with contextlib.suppress(OSError):  # closed meanwhile: run has ended anyway
                os.write(self._wake_up[1], b"!")

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            conn = Connection(self.amqp_uri)
            conn.ensure_connection(max_retries=3)
            declare_all(conn)
            channel = conn.channel()
            self.exchange(channel).declare()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self._last_tag, self._unconfirmed, self._refused = 0, set(), None
            self._in_flight.clear()  # their confirms would come on this channel: never now
            self._connection = conn
            self._producer = Producer(channel, on_return=self._on_return)
        return self._producer

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        first = delivery_tag
        if multiple:
            first = min((tag for tag in self._unconfirmed if tag <= delivery_tag), default=first)
        self._refused = first if self._refused is None else min(self._refused, first)
        self._on_ack(delivery_tag, multiple)

    def _await_confirms(self) -> None:
        """Returns once the broker has confirmed everything published on this channel."""
        deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
        while self._unconfirmed and self._refused is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(self._unconfirmed)} publishes never confirmed")
            self._connection.drain_events(timeout=left)
        if self._refused is not None:
            raise MessageNacked("the broker refused a message of the batch")

    def _on_return(self, exception, exchange, routing_key, message):
        # mandatory publish that no queue wanted: nobody subscribes to this type (yet)
        self._returned.append(routing_key)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.release()
        self._connection = None
        self._producer = None

    def tracks_commit_times(self, conn) -> bool:
        """Whether rows' commit times can be read: PostgreSQL with track_commit_timestamp
        on, asked once per relay (turning it on takes a server restart)."""
        if self._commit_times is None:
            self._commit_times = self.engine.dialect.name == "postgresql" and (
                conn.execute(text("SHOW track_commit_timestamp")).scalar_one() == "on"
            )
            if not self._commit_times and self.engine.dialect.name == "postgresql":
                log.info(
                    "relay for %s: track_commit_timestamp is off, events go without their "
                    "commit time (no commit-to-handler lag measured)",
                    self.service,
                )
        return self._commit_times

    def publish_pending(self) -> int:
        """Publish one batch of pending rows; returns how many were published."""
        producer = self._ensure_producer()
        with self.engine.begin() as conn:
            commit_times = self.tracks_commit_times(conn)
            if self.engine.dialect.name == "postgresql":
                # one relay of a service publishes at a time: batches of two relays side by side
                # would interleave one aggregate's events (the query below then reads a snapshot
                # taken after the last batch's marks)
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._lock_key})
            query = (
                select(
                    outbox.c.id,
                    outbox.c.routing_key,
                    outbox.c.body,
                    outbox.c.correlation_id,
                    outbox.c.event_id,
                    # read now: the UPDATE marking the row published replaces its xmin
                    (
                        func.pg_xact_commit_timestamp(literal_column("outbox.xmin"))
                        if commit_times
                        else null()
                    ).label("committed_at"),
                )
                .where(outbox.c.published_at.is_(None))
                .order_by(outbox.c.id)
                .limit(self.batch_size)
            )
            if self.engine.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = conn.execute(query).all()
            claimed = time.time()
            self._publish(producer, rows, claimed)
            self._await_confirms()
            self._observe_lag(rows, claimed, time.time())
            if rows:
                conn.execute(
                    update(outbox)
                    .where(outbox.c.id.in_([row.id for row in rows]))
                    .values(published_at=datetime.now(UTC))
                )
        for routing_key in self._returned:
            log.warning("event %s published but no queue is bound for it", routing_key)
        self._returned.clear()
        return len(rows)

    def _publish(self, producer: Producer, rows, claimed: float) -> None:
        """Publishes `rows` in their order, each with its commit and claim times."""
        claimed_micros = round(claimed * 1e6)
        for row in rows:
            headers = {"nameko.correlation_id": row.correlation_id} if row.correlation_id else {}
            if row.committed_at is not None:
                headers[COMMITTED_AT_HEADER] = epoch_micros(row.committed_at)
                headers[CLAIMED_AT_HEADER] = claimed_micros
            producer.publish(
                row.body,
                exchange=self.exchange,
                routing_key=row.routing_key,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                mandatory=True,
                headers=headers,
                message_id=row.event_id,
            )
            self._last_tag += 1
            self._unconfirmed.add(self._last_tag)

    def _observe_lag(self, rows, claimed: float, confirmed: float) -> None:
        for row in rows:
            if row.committed_at is not None:
                committed = row.committed_at.timestamp()
                RELAY_LAG.labels(self.service, "claimed").observe(max(claimed - committed, 0.0))
                RELAY_LAG.labels(self.service, "confirmed").observe(max(confirmed - committed, 0.0))

    def cleanup(self) -> None:
        """Forget rows published long ago (pending rows are never touched), and the
        service's requests applied long ago (infra.exactly_once): an RPC is redelivered
        within minutes of its first delivery, never days, so their record has done its work.
        The relay is the service's one process that runs on its own: its housekeeper."""
        if time.monotonic() - self._last_cleanup < 600:
            return
        self._last_cleanup = time.monotonic()
        long_ago = datetime.now(UTC) - KEEP_PUBLISHED
        with self.engine.begin() as conn:
            conn.execute(
                delete(outbox).where(
                    outbox.c.published_at.is_not(None), outbox.c.published_at < long_ago
                )
            )
            if self._keeps_requests is None:  # the gateway takes no RPC: no such table
                self._keeps_requests = inspect(conn).has_table(rpc_requests.name)
            if self._keeps_requests:
                conn.execute(delete(rpc_requests).where(rpc_requests.c.received_at < long_ago))

    def run(self, poll_seconds: float = 0.0, idle_seconds: float = 1.0) -> None:
        """Publishes until stopped: once the outbox has no more, it is read again when
        PostgreSQL notifies a commit, or after `idle_seconds` at the latest (SQLite: every
        `poll_seconds`, at least 50 ms). A `poll_seconds` above 0 makes a batch wait
        that long after the previous one (fewer, larger batches; events wait longer)."""
        log.info("relay for %s started", self.service)
        self._wake_up = os.pipe()  # stop() ends a wait at once
        pipelined = (
            self.engine.dialect.name == "postgresql" and self.in_flight > 1 and poll_seconds <= 0
        )
        try:
            if pipelined:
                self._run_pipelined(idle_seconds)
            else:
                self._run(poll_seconds, idle_seconds)
        finally:
            wake_up, self._wake_up = self._wake_up, None
            for fd in wake_up:
                os.close(fd)

    def _run(self, poll_seconds: float, idle_seconds: float) -> None:
        backoff = 0.5
        while self.running:
            started = time.monotonic()
            try:
                self._listen()  # before the read: a commit after it is never missed
                published = self.publish_pending()
                self.cleanup()
                backoff = 0.5
            except Exception as exc:  # broker or database away: retry, never exit
                log.warning(
                    "relay for %s failing: %s; retrying in %.1fs", self.service, exc, backoff
                )
                self.close()
                self._stop_listening()
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)
                continue
            if published == self.batch_size:
                continue  # more are waiting
            pace = poll_seconds if self._listener is not None else max(poll_seconds, SQLITE_POLL)
            time.sleep(max(0.0, started + pace - time.monotonic()))
            self._await_news(idle_seconds)  # SQLite, or no listener: at once
        self.close()
        self._stop_listening()

    # -- PostgreSQL, pipelined ----------------------------------------------------------

    def _run_pipelined(self, idle_seconds: float) -> None:
        """Publishes while the previous batches' confirms are outstanding: a commit is read
        as soon as it is notified, not after the batch in flight is confirmed and marked.

        The relay leads its service's outbox while it holds the session-level advisory lock
        on its own connection (which also LISTENs, reads and marks): one relay publishes at
        a time, in id order, reading the pending rows not in flight. Each batch is marked
        published once it and every batch before it are confirmed, so a relay killed leaves
        a tail of the outbox pending, published again by whoever leads next. A nack, a
        confirm overdue or a lost connection drops the channel and every batch in flight:
        the outbox is read again from its first pending row, in order.
        """
        backoff = 0.5
        read = True  # the outbox may hold rows this relay has not read
        while self.running:
            try:
                self._listen()
                if not self._lead():
                    self._await_news(idle_seconds)  # a standby: tries again at each commit
                    continue
                producer = self._ensure_producer()
                if read and len(self._in_flight) < self.in_flight:
                    self._listener.notifies.clear()  # before the read: none is missed
                    read = self._claim(producer) == self.batch_size  # full: more are waiting
                self._settle()  # after the read: a commit waits for no mark
                self.cleanup()
                backoff = 0.5
                read = self._await_confirms_or_news(idle_seconds, read) or read
            except Exception as exc:  # broker or database away, or a nack: retry, never exit
                log.warning(
                    "relay for %s failing: %s; retrying in %.1fs", self.service, exc, backoff
                )
                self.close()
                self._stop_listening()
                read = True
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)
        self._finish()
        self.close()
        self._stop_listening()

    def _finish(self, seconds: float = 5.0) -> None:
        """On stop: the confirms of the batches in flight, for a few seconds, so that a
        relay stopped (a deploy) leaves few rows to be published again."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(Exception):  # whatever is left stays pending: harmless
            while self._in_flight and (left := deadline - time.monotonic()) > 0:
                self._connection.drain_events(timeout=left)
                self._settle()

    def _lead(self) -> bool:
        """Whether this relay leads its service's outbox: takes the session-level lock on
        its listening connection if another relay does not hold it (a killed relay's lock
        goes with its connection)."""
        if not self._leading:
            with self._listener.cursor() as cursor:
                # the marks of a batch are cheap to lose: see _mark
                cursor.execute("SET synchronous_commit = off")
                cursor.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_key,))
                self._leading = cursor.fetchone()[0]
        return self._leading

    def _claim(self, producer: Producer) -> int:
        """Reads the pending rows not in flight, oldest first, and publishes them."""
        flying = [row.id for batch in self._in_flight for row in batch.rows]
        with self._listener.cursor() as cursor:
            if self._commit_times is None:
                cursor.execute("SHOW track_commit_timestamp")
                self._commit_times = cursor.fetchone()[0] == "on"
            committed_at = "pg_xact_commit_timestamp(xmin)" if self._commit_times else "NULL"
            cursor.execute(
                "SELECT id, routing_key, body, correlation_id, event_id, "
                f"{committed_at} AS committed_at FROM outbox "
                "WHERE published_at IS NULL AND id <> ALL(%s::bigint[]) ORDER BY id LIMIT %s",
                (flying, self.batch_size),
            )
            rows = [_Row(*values) for values in cursor.fetchall()]
        if rows:
            claimed = time.time()
            self._publish(producer, rows, claimed)
            self._in_flight.append(_Batch(rows, self._last_tag, claimed, time.monotonic()))
        return len(rows)

    def _settle(self) -> None:
        """Takes the confirms that have arrived and marks the batches they complete; raises
        on a nack or a confirm overdue (the loop then drops what is in flight)."""
        if not self._in_flight:
            return
        socket = self._connection.connection.sock
        with selectors.DefaultSelector() as selector:
            selector.register(socket, selectors.EVENT_READ)
            while self._in_flight and selector.select(0):
                self._connection.drain_events(timeout=CONFIRM_TIMEOUT_SECONDS)
        first_open = min(self._unconfirmed, default=self._last_tag + 1)
        if self._refused is not None:
            first_open = min(first_open, self._refused)
        done = []
        while self._in_flight and self._in_flight[0].last_tag < first_open:
            done.append(self._in_flight.popleft())
        if done:
            self._mark(done)
        if self._refused is not None:
            raise MessageNacked("the broker refused an event: publishing again from there")
        if self._in_flight and (
            time.monotonic() - self._in_flight[0].published > CONFIRM_TIMEOUT_SECONDS
        ):
            raise TimeoutError(f"{len(self._unconfirmed)} publishes never confirmed")

    def _mark(self, batches: list[_Batch]) -> None:
        """Marks confirmed batches published. Without waiting for the WAL's flush
        (synchronous_commit off on this connection): a mark lost in a crash of PostgreSQL
        leaves its rows pending, published again and dropped as duplicates by consumers;
        the events themselves were committed by their own transactions."""
        confirmed = time.time()
        with self._listener.cursor() as cursor:
            cursor.execute(
                "UPDATE outbox SET published_at = %s WHERE id = ANY(%s)",
                (
                    datetime.fromtimestamp(confirmed, UTC),
                    [row.id for batch in batches for row in batch.rows],
                ),
            )
        for batch in batches:
            self._observe_lag(batch.rows, batch.claimed, confirmed)
        for routing_key in self._returned:
            log.warning("event %s published but no queue is bound for it", routing_key)
        self._returned.clear()

    def _await_confirms_or_news(self, idle_seconds: float, read: bool) -> bool:
        """Waits for a confirm, a commit's notification (when there is room in flight),
        stop(), or `idle_seconds` with nothing in flight (the next confirm's deadline with
        some); returns whether the outbox is to be read (a commit notified, or idle)."""
        listener = self._listener
        room = len(self._in_flight) < self.in_flight
        if room and (read or listener.notifies):
            return True
        timeout = idle_seconds
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_up[0], selectors.EVENT_READ)
            if room:
                selector.register(listener, selectors.EVENT_READ)
            if self._in_flight:
                selector.register(self._connection.connection.sock, selectors.EVENT_READ)
                overdue = self._in_flight[0].published + CONFIRM_TIMEOUT_SECONDS
                timeout = min(timeout, max(overdue - time.monotonic(), 0.0))
            ready = selector.select(timeout)
        listener.poll()  # notifications in (a broken connection raises: the loop retries)
        return bool(listener.notifies) or not (ready or self._in_flight)

    def _listen(self) -> None:
        if self._listener is not None or self.engine.dialect.name != "postgresql":
            return
        pooled = self.engine.raw_connection()
        connection = pooled.driver_connection
        pooled.detach()  # a connection of its own for as long as the relay lives
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {OUTBOX_CHANNEL}")
        self._listener = connection

    def _await_news(self, timeout: float) -> None:
        """Returns when a commit with outbox rows was notified, or after `timeout`."""
        listener = self._listener
        if listener is None:
            return
        try:
            if not listener.notifies:
                with selectors.DefaultSelector() as selector:
                    selector.register(listener, selectors.EVENT_READ)
                    selector.register(self._wake_up[0], selectors.EVENT_READ)
                    selector.select(timeout)
                listener.poll()
            listener.notifies.clear()
        except Exception as exc:  # the database went away: poll until it is back
            log.warning("relay for %s stopped listening: %s", self.service, exc)
            self._stop_listening()

    def _stop_listening(self) -> None:
        self._leading = False  # the session lock goes with the connection
        if self._listener is not None:
            with contextlib.suppress(Exception):  # already broken: nothing to release
                self._listener.close()
        self._listener = None


@dataclass(frozen=True, slots=True)
class _Row:
    """An outbox row as the pipelined relay reads it."""

    id: int
    routing_key: str
    body: str
    correlation_id: str | None
    event_id: str
    committed_at: datetime | None


def epoch_micros(moment: datetime) -> int:
    """A moment as whole microseconds since the epoch: an AMQP header integer, exact."""
    return (moment - EPOCH) // timedelta(microseconds=1)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def run_relay(
    service: str,
    database_url: str,
    amqp_uri: str,
    poll_seconds: float,
    idle_seconds: float,
    in_flight: int = 4,
) -> None:
    relay = Relay(service, make_engine(database_url), amqp_uri, in_flight=in_flight)

    def _stop(*_):
        relay.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    freeze_startup_heap()
    relay.run(poll_seconds, idle_seconds)
