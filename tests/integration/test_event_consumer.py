"""The idempotent event consumer: applied once, poison parked, nothing blocked, nothing lost
while the consumer is away; dead letters can be listed and replayed. Each test runs against
both entrypoints: one event per worker, and batches of the events waiting."""

from __future__ import annotations

import uuid
from functools import partial

import pytest
from kombu import Connection
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from contracts.topology import Subscription
from infra import consumer as consumer_module
from infra.consumer import consume_event_batches, consume_events
from infra.database import make_engine
from infra.dead_letters import list_dead_letters, replay_dead_letters
from infra.health import OperableService
from infra.messaging_tables import metadata as messaging_metadata
from infra.messaging_tables import processed_events
from infra.topology import declare_subscription
from tests.integration.messaging import (
    listing_published,
    publish_all,
    publish_event,
    publish_raw,
    queue_depth,
)
from tests.support import free_port, wait_until

TALLY = Subscription(
    consumer="tally", name="tally", source="listings", event_types=("listing.published",)
)

tally_metadata = MetaData()
tallies = Table(
    "tallies",
    tally_metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(36)),
    Column("title", String(120)),
)

FAILING = {"enabled": True}


class Tally(OperableService):
    """Counts each listing.published it applies: a non-idempotent effect on purpose."""

    name = "tally"

    @consume_events(TALLY, max_attempts=3)
    def count(self, event) -> None:
        if event.payload.title == "POISON" and FAILING["enabled"]:
            raise ValueError("this listing cannot be handled")
        with self.db.handling(event) as tx:
            tx.session.execute(
                insert(tallies).values(event_id=str(event.event_id), title=event.payload.title)
            )


BATCHES: list[int] = []  # how many fresh events each batch applied


class BatchTally(OperableService):
    """The same tally, fed batches: a batch holding the poison fails as a whole."""

    name = "tally"

    @consume_event_batches(TALLY, max_attempts=3)
    def count(self, events) -> None:
        tally_batch(self.db, events)


class LingeringTally(OperableService):
    """Batches that wait long enough for any burst a test publishes."""

    name = "tally"

    @consume_event_batches(TALLY, max_attempts=3, linger=0.5)
    def count(self, events) -> None:
        tally_batch(self.db, events)


def tally_batch(db, events) -> None:
    if FAILING["enabled"] and any(e.payload.title == "POISON" for e in events):
        raise ValueError("this listing cannot be handled")
    with db.handling_all(events) as (tx, fresh):
        BATCHES.append(len(fresh))
        if fresh:
            tx.session.execute(
                insert(tallies),
                [{"event_id": str(e.event_id), "title": e.payload.title} for e in fresh],
            )


@pytest.fixture
def tally_db(tmp_path):
    url = f"sqlite:///{tmp_path / 'tally.sqlite3'}"
    engine = make_engine(url)
    messaging_metadata.create_all(engine)
    tally_metadata.create_all(engine)
    return url


@pytest.fixture
def tally_starter(vhost, tally_db, container_factory, monkeypatch):
    monkeypatch.setattr(consumer_module, "BACKOFF_BASE_SECONDS", 0.05)
    FAILING["enabled"] = True
    BATCHES.clear()

    def start(service: type = Tally):
        container = container_factory(
            service,
            {
                "AMQP_URI": vhost.amqp_uri,
                "DATABASE_URL": tally_db,
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
                "max_workers": 4,
            },
        )
        container.start()
        return container

    return start


@pytest.fixture(params=[Tally, BatchTally], ids=["one-by-one", "batches"])
def start_tally(request, tally_starter):
    return partial(tally_starter, request.param)


def counted(url: str, title: str | None = None) -> int:
    query = select(func.count()).select_from(tallies)
    if title is not None:
        query = query.where(tallies.c.title == title)
    with make_engine(url).connect() as conn:
        return conn.scalar(query)


def metric(name: str, **labels) -> float:
    return (
        REGISTRY.get_sample_value(name, {"service": "tally", "consumer": "tally.count", **labels})
        or 0.0
    )


def test_the_same_event_delivered_twice_is_applied_once(start_tally, vhost, tally_db):
    start_tally()
    duplicates_before = metric("mutualis_events_duplicates_skipped_total")
    handled = "mutualis_events_handled_total"
    outcomes = [{"event_type": "listing.published", "outcome": o} for o in ("ok", "duplicate")]
    handled_before = sum(metric(handled, **labels) for labels in outcomes)
    event = listing_published(title="Saleuse")
    publish_event(vhost.amqp_uri, event)
    publish_event(vhost.amqp_uri, event)

    def deliveries_counted() -> float:
        return sum(metric(handled, **labels) for labels in outcomes) - handled_before

    wait_until(lambda: metric("mutualis_events_duplicates_skipped_total") > duplicates_before)
    wait_until(lambda: deliveries_counted() >= 2)
    assert counted(tally_db) == 1
    # each delivery counted once (a batch counts a duplicate within it as applied)
    assert deliveries_counted() == 2
    with make_engine(tally_db).connect() as conn:
        assert conn.scalar(select(func.count()).select_from(processed_events)) == 1


def test_a_poison_message_is_dead_lettered_and_the_others_keep_flowing(
    start_tally, vhost, tally_db
):
    start_tally()
    parked_before = {
        r: metric("mutualis_events_dead_lettered_total", reason=r)
        for r in ("undecodable", "unparseable", "failed")
    }
    publish_raw(vhost.amqp_uri, b"{not json", "listing.published")
    publish_raw(
        vhost.amqp_uri, b'{"type": "listing.published", "version": 99}', "listing.published"
    )
    publish_event(vhost.amqp_uri, listing_published(title="POISON"))
    for n in range(20):
        publish_event(vhost.amqp_uri, listing_published(title=f"good {n}"))

    wait_until(lambda: counted(tally_db) == 20, timeout=10)
    wait_until(lambda: queue_depth(vhost.amqp_uri, TALLY.dead_letter_queue) == 3, timeout=10)
    assert queue_depth(vhost.amqp_uri, TALLY.queue) == 0
    parked_now = {
        r: metric("mutualis_events_dead_lettered_total", reason=r) - n
        for r, n in parked_before.items()
    }
    assert parked_now == {"undecodable": 1, "unparseable": 1, "failed": 1}

    with Connection(vhost.amqp_uri) as conn:
        parked = list(list_dead_letters(conn, TALLY.queue, known=[TALLY]))
    assert sorted(p["reason"] for p in parked) == ["failed", "undecodable", "unparseable"]
    failed = next(p for p in parked if p["reason"] == "failed")
    assert failed["event_type"] == "listing.published"
    assert "cannot be handled" in failed["error"]
    # listing does not consume: the messages are still parked
    assert queue_depth(vhost.amqp_uri, TALLY.dead_letter_queue) == 3


def test_a_replayed_dead_letter_is_applied_once_its_cause_is_fixed(start_tally, vhost, tally_db):
    start_tally()
    publish_event(vhost.amqp_uri, listing_published(title="POISON"))
    wait_until(lambda: queue_depth(vhost.amqp_uri, TALLY.dead_letter_queue) == 1, timeout=10)
    assert counted(tally_db, "POISON") == 0

    FAILING["enabled"] = False  # the operator deploys the fix, then replays
    with Connection(vhost.amqp_uri) as conn:
        assert replay_dead_letters(conn, TALLY.queue, known=[TALLY]) == 1
    wait_until(lambda: counted(tally_db, "POISON") == 1, timeout=10)
    assert queue_depth(vhost.amqp_uri, TALLY.dead_letter_queue) == 0


def test_an_event_published_while_the_consumer_is_down_waits_for_it(start_tally, vhost, tally_db):
    with Connection(vhost.amqp_uri) as conn, conn.channel() as channel:
        declare_subscription(channel, TALLY)  # what the relay does before publishing
    titles = [f"pendant la panne {uuid.uuid4().hex[:6]}" for _ in range(3)]
    for title in titles:
        publish_event(vhost.amqp_uri, listing_published(title=title))
    assert queue_depth(vhost.amqp_uri, TALLY.queue) == 3

    start_tally()
    wait_until(lambda: counted(tally_db) == 3, timeout=10)


def test_a_backlog_is_applied_in_batches_each_event_once(tally_starter, vhost, tally_db):
    with Connection(vhost.amqp_uri) as conn, conn.channel() as channel:
        declare_subscription(channel, TALLY)
    events = [listing_published(title=f"en attente {n}") for n in range(60)]
    for event in events + events[:5]:  # five of them delivered twice
        publish_event(vhost.amqp_uri, event)
    duplicates_before = metric("mutualis_events_duplicates_skipped_total")
    batched_before = metric("mutualis_event_batch_size_sum")

    tally_starter(BatchTally)
    wait_until(lambda: queue_depth(vhost.amqp_uri, TALLY.queue) == 0, timeout=10)
    wait_until(lambda: counted(tally_db) == 60, timeout=10)
    assert sum(BATCHES) == 60
    # more than max_workers (4), nameko's prefetch: the broker lets a batch consumer hold more
    assert max(BATCHES) > 4, f"never more than 4 events per batch: {BATCHES}"
    assert len(BATCHES) < 65  # fewer transactions than deliveries
    wait_until(lambda: metric("mutualis_events_duplicates_skipped_total") - duplicates_before == 5)
    with make_engine(tally_db).connect() as conn:
        assert conn.scalar(select(func.count()).select_from(processed_events)) == 60
    # the batch sizes operators see count every delivery, duplicates included
    assert metric("mutualis_event_batch_size_sum") - batched_before == 65


def test_a_burst_published_to_an_idle_consumer_is_applied_as_one_batch(
    tally_starter, vhost, tally_db
):
    """As a relay's batch arrives: the first event waits for the rest (linger), and the
    prefetch lets the consumer hold all 30 at once although it has only 4 workers."""
    tally_starter(LingeringTally)
    burst = [listing_published(title=f"rafale {n}") for n in range(30)]
    publish_all(vhost.amqp_uri, burst)
    wait_until(lambda: counted(tally_db) == 30, timeout=10)
    assert BATCHES == [30]
