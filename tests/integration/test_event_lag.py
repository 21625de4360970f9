"""An event's lag is counted from its commit: the relay sends the commit time PostgreSQL
recorded (track_commit_timestamp) with the event, and the consumer, once its own transaction
has committed, observes the time since in mutualis_event_lag_seconds. Without commit times
(the setting off, or SQLite) the header is left out and no lag is made up."""

from __future__ import annotations

import time
import uuid

import pytest
import time_machine
from kombu import Connection, Exchange, Queue
from prometheus_client import REGISTRY
from sqlalchemy import text

from contracts.listings import ListingDraft
from contracts.topology import Subscription, event_exchange
from infra.consumer import consume_events
from infra.database import DatabaseAccess, make_engine
from infra.health import OperableService
from infra.messaging_tables import metadata as messaging_metadata
from infra.relay import CLAIMED_AT_HEADER, COMMITTED_AT_HEADER, Relay
from services.listings.service import publish_listing
from tests.support import free_port, wait_until

WATCHED = Subscription(
    consumer="lagwatch", name="lagwatch", source="listings", event_types=("listing.published",)
)
HELD_BACK = 0.3  # seconds between the event's commit and the relay's publish


class LagWatch(OperableService):
    """Applies each listing.published once and does nothing else: what is left is the lag."""

    name = "lagwatch"

    @consume_events(WATCHED)
    def watch(self, event) -> None:
        with self.db.handling(event):
            pass


def sample(name: str, **labels: str) -> float:
    labels = {"service": "lagwatch", "consumer": "lagwatch.watch", **labels}
    return REGISTRY.get_sample_value(name, labels) or 0.0


def tracks_commit_times(url: str) -> bool:
    if not url.startswith("postgresql"):
        return False
    with make_engine(url).connect() as conn:
        return conn.execute(text("SHOW track_commit_timestamp")).scalar_one() == "on"


@pytest.fixture
def database_clock(pg_database):
    """This process's clock set to PostgreSQL's when they differ: the commit times are the
    database's, the window and the lag this process's (`make test-clock` moves this process's
    clock, never the database's)."""
    with make_engine(pg_database.url).connect() as conn:
        database_now = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    if abs(database_now.timestamp() - time.time()) < 1:
        yield
        return
    with time_machine.travel(database_now, tick=True):
        time.time()  # time-machine's clock ticks from its first reading, not from its start
        yield


@pytest.fixture
def watching(vhost, tmp_path, container_factory):
    """The LagWatch service on `vhost`, and a queue of the test's own on the same events."""
    url = f"sqlite:///{tmp_path / 'lagwatch.sqlite3'}"
    messaging_metadata.create_all(make_engine(url))
    container = container_factory(
        LagWatch,
        {
            "AMQP_URI": vhost.amqp_uri,
            "DATABASE_URL": url,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        },
    )
    container.start()
    queue = Queue(
        f"test-lag-{uuid.uuid4().hex[:8]}",
        exchange=Exchange(event_exchange("listings"), type="topic", durable=True),
        routing_key="listing.published",
        durable=True,
    )
    with Connection(vhost.amqp_uri) as conn:
        queue(conn.channel()).declare()
    yield queue.name
    with Connection(vhost.amqp_uri) as conn:
        queue(conn.channel()).delete()


def publish_a_listing(url: str) -> None:
    """A business change committed with its event, as the listings service does."""
    db = DatabaseAccess(make_engine(url), producer="listings", correlation_id="t", consumer="t")
    draft = ListingDraft(
        title="Saleuse",
        category="deneigement",
        kind="equipment",
        pricing_unit="day",
        rate_cents=9000,
    )
    with db.transaction() as tx:
        publish_listing(tx, "42044", draft)


def relay_after_a_while(url: str, amqp_uri: str) -> tuple[float, float]:
    """Commits one event, holds it back HELD_BACK seconds, then relays it: returns the
    wall-clock window its commit lies in."""
    before = time.time()
    publish_a_listing(url)
    committed = time.time()
    time.sleep(HELD_BACK)
    relay = Relay("listings", make_engine(url), amqp_uri)
    try:
        assert relay.publish_pending() == 1
    finally:
        relay.close()
    return before, committed


def headers_of_next(amqp_uri: str, queue: str) -> dict:
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        message = None
        deadline = time.monotonic() + 10
        while message is None and time.monotonic() < deadline:
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                time.sleep(0.05)
        assert message is not None, "the event never reached the test's queue"
        return message.headers or {}


def test_a_relayed_event_carries_its_commit_time_and_its_consumer_measures_from_it(
    database_clock, pg_database, vhost, watching
):
    from infra.migrations import upgrade

    upgrade("listings", pg_database.url)
    if not tracks_commit_times(pg_database.url):
        pytest.skip("this PostgreSQL server has track_commit_timestamp off (.ci/run sets it)")
    lag = "mutualis_event_lag_seconds"
    lags_before, lag_sum_before = (
        sample(f"{lag}_count", event="listing.published"),
        sample(f"{lag}_sum", event="listing.published"),
    )
    relay_lag = {"service": "listings", "stage": "confirmed"}
    confirmed_before = REGISTRY.get_sample_value("mutualis_relay_lag_seconds_count", relay_lag)

    before, committed = relay_after_a_while(pg_database.url, vhost.amqp_uri)

    headers = headers_of_next(vhost.amqp_uri, watching)
    # PostgreSQL's commit time, in the window the commit ran in (same machine, same clock)
    assert before - 0.005 <= headers[COMMITTED_AT_HEADER] / 1e6 <= committed + 0.005
    assert headers[CLAIMED_AT_HEADER] / 1e6 >= committed + HELD_BACK
    wait_until(lambda: sample(f"{lag}_count", event="listing.published") == lags_before + 1)
    observed = sample(f"{lag}_sum", event="listing.published") - lag_sum_before
    assert HELD_BACK <= observed < HELD_BACK + 10  # counted from the commit, not the publish
    assert (
        REGISTRY.get_sample_value("mutualis_relay_lag_seconds_count", relay_lag)
        == (confirmed_before or 0) + 1
    )


def test_without_commit_times_the_event_goes_without_them_and_no_lag_is_made_up(
    listings_db, vhost, watching
):
    if tracks_commit_times(listings_db):
        pytest.skip("this PostgreSQL server tracks commit times: the test above covers it")
    lags_before = sample("mutualis_event_lag_seconds_count", event="listing.published")
    ages_before = sample("mutualis_event_age_seconds_count")

    relay_after_a_while(listings_db, vhost.amqp_uri)

    headers = headers_of_next(vhost.amqp_uri, watching)
    assert COMMITTED_AT_HEADER not in headers and CLAIMED_AT_HEADER not in headers
    wait_until(lambda: sample("mutualis_event_age_seconds_count") == ages_before + 1)
    assert sample("mutualis_event_lag_seconds_count", event="listing.published") == lags_before
