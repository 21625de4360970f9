"""The outbox relay: nothing committed is lost when it dies, nothing is published twice by
two relays, and consumers' queues exist before anything is published."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
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
    full = Queue(
        "a-full-queue",
        exchange=source_exchange("listings"),
        routing_key="listing.published",
        queue_arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    with Connection(vhost.amqp_uri) as conn:
        full(conn.default_channel).declare()
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
