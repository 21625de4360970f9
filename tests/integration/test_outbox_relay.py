"""The outbox relay: nothing committed is lost when it dies, nothing is published twice by
two relays, and consumers' queues exist before anything is published."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from amqp.exceptions import ChannelError, MessageNacked
from kombu import Connection, Queue
from sqlalchemy import func, insert, select, update

from contracts.listings import ListingDraft
from contracts.topology import LISTINGS_TO_BOOKINGS
from infra.database import DatabaseAccess, make_engine
from infra.messaging_tables import outbox, rpc_requests
from infra.relay import KEEP_PUBLISHED, Relay
from infra.settings import PROJECT_ROOT
from infra.topology import source_exchange
from services.listings.service import publish_listing
from tests.integration.messaging import queue_depth
from tests.support import MUTUALIS, drain, wait_until

QUEUE = LISTINGS_TO_BOOKINGS.queue
DRAFT = ListingDraft(
    title="Saleuse tractée",
    category="deneigement",
    kind="equipment",
    pricing_unit="day",
    rate_cents=9000,
)


def publish_listings(url: str, count: int) -> None:
    """Business changes committed with their events, as the listings service does."""
    db = DatabaseAccess(make_engine(url), producer="listings", correlation_id="t", consumer="t")
    with db.transaction() as tx:
        for _ in range(count):
            publish_listing(tx, "42044", DRAFT)


def refusing_queue(amqp_uri: str, name: str, room: int) -> Queue:
    """A queue bound to listing.published that takes `room` messages, then makes the broker
    nack (`reject-publish`); declared now."""
    queue = Queue(
        name,
        exchange=source_exchange("listings"),
        routing_key="listing.published",
        queue_arguments={"x-max-length": room, "x-overflow": "reject-publish"},
    )
    with Connection(amqp_uri) as conn:
        queue(conn.default_channel).declare()
    return queue


def committed_ids(url: str) -> list[str]:
    """The outbox's event ids in commit order."""
    with make_engine(url).connect() as conn:
        return list(conn.scalars(select(outbox.c.event_id).order_by(outbox.c.id)))


def pending(url: str) -> int:
    with make_engine(url).connect() as conn:
        return conn.scalar(select(func.count()).where(outbox.c.published_at.is_(None)))


class RelayProcess:
    """`mutualis relay listings` as a real process, to be killed like a real one."""

    def __init__(self, url: str, amqp_uri: str, **settings: str):
        env = dict(
            os.environ, LISTINGS_DATABASE_URL=url, AMQP_URI=amqp_uri, LOG_FORMAT="text", **settings
        )
        self.proc = subprocess.Popen(
            [*MUTUALIS, "relay", "listings"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def test_an_event_committed_while_the_relay_is_dead_is_published_when_it_restarts(
    listings_db, vhost
):
    relay = RelayProcess(listings_db, vhost.amqp_uri)
    wait_until(lambda: _queue_exists(vhost.amqp_uri), timeout=15)  # relay declared the queues
    relay.kill()

    publish_listings(listings_db, 1)
    time.sleep(0.5)
    assert pending(listings_db) == 1
    assert queue_depth(vhost.amqp_uri, QUEUE) == 0

    relay = RelayProcess(listings_db, vhost.amqp_uri)
    try:
        wait_until(lambda: pending(listings_db) == 0, timeout=15)
    finally:
        relay.stop()
    events = drain(vhost.amqp_uri, QUEUE)
    assert [e["type"] for e in events] == ["listing.published"]


def test_an_idle_relay_is_woken_by_the_commit_not_by_its_timer(listings_db, vhost):
    """On PostgreSQL the outbox's commit notifies the relay: with an idle wait of a minute,
    the event still goes out at once (SQLite has no notifications: that relay polls)."""
    relay = RelayProcess(listings_db, vhost.amqp_uri, LISTINGS_RELAY_IDLE_SECONDS="60")
    try:
        wait_until(lambda: _queue_exists(vhost.amqp_uri), timeout=15)
        time.sleep(0.5)  # the relay has found its outbox empty and waits
        for n in range(1, 4):
            publish_listings(listings_db, 1)
            wait_until(lambda n=n: queue_depth(vhost.amqp_uri, QUEUE) == n, timeout=10)
    finally:
        relay.stop()
    assert pending(listings_db) == 0


def test_stopping_an_idle_relay_ends_its_wait_at_once_and_closes_its_pipe(listings_db, vhost):
    """stop() (the SIGTERM handler) cuts a minute's wait for news short, and the pipe it
    writes to is closed once `run` returns."""
    relay = Relay("listings", make_engine(listings_db), vhost.amqp_uri)
    runner = threading.Thread(target=relay.run, kwargs={"idle_seconds": 60})
    runner.start()
    wait_until(lambda: relay._wake_up is not None)
    pipe = relay._wake_up
    time.sleep(0.3)  # found its outbox empty: waits for news (SQLite: polls)
    stopped = time.monotonic()
    relay.stop()
    runner.join(timeout=10)
    assert not runner.is_alive()
    assert time.monotonic() - stopped < 2
    for fd in pipe:
        with pytest.raises(OSError):
            os.fstat(fd)
    relay.stop()  # again, as a second signal would: harmless


def test_a_relay_killed_mid_batch_loses_nothing(listings_db, vhost):
    publish_listings(listings_db, 3000)
    relay = RelayProcess(listings_db, vhost.amqp_uri)
    wait_until(
        lambda: _queue_exists(vhost.amqp_uri) and queue_depth(vhost.amqp_uri, QUEUE) > 0, timeout=15
    )
    relay.kill()
    assert pending(listings_db) > 0, "the relay finished before it could be killed"

    relay = RelayProcess(listings_db, vhost.amqp_uri)
    try:
        wait_until(lambda: pending(listings_db) == 0, timeout=60)
    finally:
        relay.stop()
    ids = [e["event_id"] for e in drain(vhost.amqp_uri, QUEUE)]
    # at least once: every event arrives; a batch cut short may arrive twice (consumers skip it)
    assert len(set(ids)) == 3000


def test_two_relays_never_publish_the_same_row_twice_and_keep_the_outbox_order(listings_db, vhost):
    """Ten batches for two relays: each row goes out once, and in the order committed, so
    each aggregate's events are read in their order whichever relay sent them."""
    publish_listings(listings_db, 2000)
    relays = [RelayProcess(listings_db, vhost.amqp_uri) for _ in range(2)]
    try:
        wait_until(lambda: pending(listings_db) == 0, timeout=60)
    finally:
        for relay in relays:
            relay.stop()
    ids = [e["event_id"] for e in drain(vhost.amqp_uri, QUEUE)]
    assert len(ids) == 2000
    assert len(set(ids)) == 2000
    with make_engine(listings_db).connect() as conn:
        assert ids == list(conn.scalars(select(outbox.c.event_id).order_by(outbox.c.id)))


def test_two_relays_publish_in_the_order_events_were_committed(listings_db, vhost):
    """Events committed one transaction after the other while two relays run reach the
    queue in that order: one relay at a time holds the outbox's lock (PostgreSQL), or the
    database's (SQLite)."""
    relays = [RelayProcess(listings_db, vhost.amqp_uri) for _ in range(2)]
    try:
        wait_until(lambda: _queue_exists(vhost.amqp_uri), timeout=15)
        for _ in range(150):
            publish_listings(listings_db, 1)
        wait_until(lambda: pending(listings_db) == 0, timeout=120)
    finally:
        for relay in relays:
            relay.stop()
    with make_engine(listings_db).connect() as conn:
        committed = list(conn.scalars(select(outbox.c.event_id).order_by(outbox.c.id)))
    received = [e["event_id"] for e in drain(vhost.amqp_uri, QUEUE)]
    assert received == committed


def _queue_exists(amqp_uri: str) -> bool:
    try:
        queue_depth(amqp_uri, QUEUE)
        return True
    except ChannelError:  # NOT_FOUND; a broker that is away fails the test as it should
        return False


def test_a_batch_the_broker_refuses_stays_pending_and_goes_out_once_it_accepts(listings_db, vhost):
    """A queue that is full (`reject-publish`) makes the broker nack: the relay marks nothing
    and publishes the whole batch again once the queue takes messages."""
    full = refusing_queue(vhost.amqp_uri, "a-full-queue", 0)
    publish_listings(listings_db, 5)
    relay = Relay("listings", make_engine(listings_db), vhost.amqp_uri)
    try:
        with pytest.raises(MessageNacked):
            relay.publish_pending()
        assert pending(listings_db) == 5

        with Connection(vhost.amqp_uri) as conn:
            full(conn.default_channel).delete()
        relay.close()  # what the relay's loop does after a failure
        assert relay.publish_pending() == 5
        assert relay.publish_pending() == 0
    finally:
        relay.close()
    assert pending(listings_db) == 0
    ids = [e["event_id"] for e in drain(vhost.amqp_uri, QUEUE)]
    assert len(ids) >= 5 and len(set(ids)) == 5  # the refused batch may have reached QUEUE too


def test_cleanup_forgets_what_was_published_and_applied_long_ago_only(listings_db, vhost):
    """A week on, an event published and a request applied have done their work; a pending
    event, a recent one and a recent request are kept."""
    engine = make_engine(listings_db)
    publish_listings(listings_db, 3)
    now = datetime.now(UTC)
    long_ago = now - KEEP_PUBLISHED - timedelta(minutes=1)
    with engine.begin() as conn:
        old, recent, waiting = conn.scalars(select(outbox.c.id).order_by(outbox.c.id)).all()
        conn.execute(update(outbox).where(outbox.c.id == old).values(published_at=long_ago))
        conn.execute(update(outbox).where(outbox.c.id == recent).values(published_at=now))
        conn.execute(
            insert(rpc_requests),
            [
                {"request_id": "old", "method": "listings.publish", "received_at": long_ago},
                {"request_id": "recent", "method": "listings.publish", "received_at": now},
            ],
        )

    Relay("listings", engine, vhost.amqp_uri).cleanup()

    with engine.connect() as conn:
        assert conn.scalars(select(outbox.c.id).order_by(outbox.c.id)).all() == [recent, waiting]
        assert conn.scalars(select(rpc_requests.c.request_id)).all() == ["recent"]


# -- PostgreSQL: batches pipelined -----------------------------------------------------------


@pytest.fixture
def pg_listings(listings_db):
    if not listings_db.startswith("postgresql"):
        pytest.skip("the relay pipelines its batches on PostgreSQL (LISTEN, session lock)")
    return listings_db


@contextlib.contextmanager
def leading_relay(url: str, amqp_uri: str):
    """A relay that leads the listings outbox, stepped by hand (as its loop would); its
    channel and its lead let go on leaving, as the loop does when it stops."""
    relay = Relay("listings", make_engine(url), amqp_uri)
    relay._listen()
    assert relay._lead()
    relay._ensure_producer()
    try:
        yield relay
    finally:
        relay.close()
        relay._stop_listening()


def settle_all(relay: Relay) -> None:
    """Takes confirms until every batch in flight is marked (raises as the loop would)."""
    deadline = time.monotonic() + 10
    while relay._in_flight:
        assert time.monotonic() < deadline, "confirms never came"
        relay._settle()
        time.sleep(0.01)


def published_ids(url: str) -> list[str]:
    with make_engine(url).connect() as conn:
        return list(
            conn.scalars(
                select(outbox.c.event_id)
                .where(outbox.c.published_at.is_not(None))
                .order_by(outbox.c.id)
            )
        )


def test_the_next_batch_goes_out_while_the_previous_one_awaits_its_confirms(pg_listings, vhost):
    """A commit is read and published before the batch in flight is confirmed; each batch
    is marked once confirmed, and the queue has everything once, in commit order."""
    with leading_relay(pg_listings, vhost.amqp_uri) as relay:
        publish_listings(pg_listings, 3)
        assert relay._claim(relay._producer) == 3
        publish_listings(pg_listings, 2)
        assert relay._claim(relay._producer) == 2  # the first three are in flight, not read
        assert relay._claim(relay._producer) == 0
        assert len(relay._in_flight) == 2
        assert pending(pg_listings) == 5  # nothing marked before its confirm
        settle_all(relay)
    assert pending(pg_listings) == 0
    committed = committed_ids(pg_listings)
    assert [e["event_id"] for e in drain(vhost.amqp_uri, QUEUE)] == committed


def test_a_relay_stopped_with_batches_in_flight_marks_them_once_confirmed(pg_listings, vhost):
    """A deploy's stop: what is in flight is confirmed and marked before the relay goes,
    not left to be published twice."""
    with leading_relay(pg_listings, vhost.amqp_uri) as relay:
        publish_listings(pg_listings, 3)
        relay._claim(relay._producer)
        relay._finish()
    assert pending(pg_listings) == 0
    assert len(drain(vhost.amqp_uri, QUEUE)) == 3


def test_one_relay_leads_an_outbox_and_another_takes_over_when_it_is_gone(pg_listings, vhost):
    second = Relay("listings", make_engine(pg_listings), vhost.amqp_uri)
    with leading_relay(pg_listings, vhost.amqp_uri) as first:
        try:
            second._listen()
            assert not second._lead()
            first._stop_listening()  # as a killed relay's connection closes
            wait_until(second._lead, timeout=5)
        finally:
            second._stop_listening()


def test_a_refused_batch_and_those_after_it_are_published_again_in_order(pg_listings, vhost):
    """A nack marks the batches confirmed before it and drops the rest of the pipeline:
    the outbox is published again from the first refused row, in order."""
    nearly_full = refusing_queue(vhost.amqp_uri, "a-nearly-full-queue", 2)
    with leading_relay(pg_listings, vhost.amqp_uri) as relay:
        publish_listings(pg_listings, 2)
        relay._claim(relay._producer)  # fits
        publish_listings(pg_listings, 3)
        relay._claim(relay._producer)  # refused
        with pytest.raises(MessageNacked):
            settle_all(relay)
        assert pending(pg_listings) == 3
        first_two = published_ids(pg_listings)
        assert len(first_two) == 2

        with Connection(vhost.amqp_uri) as conn:
            nearly_full(conn.default_channel).delete()
        relay.close()  # what the loop does after a failure: a new channel, nothing in flight
        relay._ensure_producer()
        assert relay._in_flight == deque()
        assert relay._claim(relay._producer) == 3
        settle_all(relay)
    assert pending(pg_listings) == 0
    committed = committed_ids(pg_listings)
    assert published_ids(pg_listings)[:2] == first_two
    received = [e["event_id"] for e in drain(vhost.amqp_uri, QUEUE)]
    # the refused three reached QUEUE once when refused, and once more, in order
    assert received == committed + committed[2:]


@contextlib.contextmanager
def running_relay(url: str, amqp_uri: str):
    """A pipelined relay's loop in a thread, its queues declared; stopped on leaving, and
    seen to end."""
    relay = Relay("listings", make_engine(url), amqp_uri, in_flight=4)
    runner = threading.Thread(target=relay.run, kwargs={"idle_seconds": 60})
    runner.start()
    try:
        wait_until(lambda: _queue_exists(amqp_uri), timeout=15)
        yield relay
    finally:
        relay.stop()
        runner.join(timeout=10)
    assert not runner.is_alive()


def test_a_running_relay_publishes_each_commit_in_order_while_confirms_are_outstanding(
    pg_listings, vhost
):
    """The loop itself, with up to four batches in flight: 150 transactions one after the
    other reach the queue once each, in commit order, and are all marked."""
    with running_relay(pg_listings, vhost.amqp_uri):
        for _ in range(150):
            publish_listings(pg_listings, 1)
        wait_until(lambda: pending(pg_listings) == 0, timeout=60)
    committed = committed_ids(pg_listings)
    assert [e["event_id"] for e in drain(vhost.amqp_uri, QUEUE)] == committed


def cut_connection(relay: Relay) -> bool:
    """Shuts the relay's broker socket down, if it has one now (not while it backs off)."""
    connection = relay._connection
    if connection is None:
        return False
    with contextlib.suppress(OSError):  # closed meanwhile by the relay itself
        connection.connection.sock.shutdown(socket.SHUT_RDWR)
    return True


def test_a_lost_broker_connection_republishes_from_the_first_unconfirmed_row_in_order(
    pg_listings, vhost
):
    """The relay's connection cut while batches are in flight: every event arrives, the
    first copy of each in commit order (what was not confirmed goes out again, in order)."""
    with running_relay(pg_listings, vhost.amqp_uri) as relay:
        for n in range(120):
            publish_listings(pg_listings, 1)
            if n in (40, 80):  # the socket under the relay's feet, mid-stream
                wait_until(lambda: cut_connection(relay), timeout=10)
        wait_until(lambda: pending(pg_listings) == 0, timeout=60)
    received = [e["event_id"] for e in drain(vhost.amqp_uri, QUEUE)]
    assert list(dict.fromkeys(received)) == committed_ids(pg_listings)
