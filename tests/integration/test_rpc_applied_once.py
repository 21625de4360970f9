"""RPC requests applied once (infra.exactly_once) in a real nameko container on real
RabbitMQ, on both databases: a request id delivered again gets the first reply back and
changes nothing, whether it comes again after the first finished, while it still runs, in
a group commit's batch, or because the broker dropped the service's connection and
delivered the unacknowledged request again; looked up before its method runs only when it
may have come before (delivered again, or marked so by the gateway)."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from kombu import Connection, Exchange, Producer, Queue
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text

from contracts.errors import Conflict, InvalidInput, ServiceError
from infra.acks import BrokerTolerantQueueConsumer
from infra.batching import GroupCommit
from infra.database import DatabaseAccess, make_engine, reply_keeper
from infra.exactly_once import (
    MAYBE_REPEATED,
    REPLY_WAIT_SECONDS,
    REQUEST_ID,
    RepeatedRequest,
    Request,
    awaited_reply,
    keep_replies,
)
from infra.health import OperableService
from infra.messaging_tables import metadata as messaging_metadata
from infra.messaging_tables import requests_metadata, rpc_requests
from infra.rpc import rpc
from tests.support import free_port
from tests.support.waiting import wait_until

marks_metadata = MetaData()
marks = Table(
    "marks",
    marks_metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String(40), nullable=False),
)

RAN: list[str] = []  # the label of every run of a method, repeated or not
# set by a test once what had to happen while a method lingered has happened: it answers then
LET_GO = threading.Event()


def record_marks(db, labels):
    with db.transaction() as tx:
        tx.session.execute(insert(marks), [{"label": label} for label in labels])
    return [_answer(label) for label in labels]


def _answer(label: str) -> dict:
    # `at` differs at every run: an equal answer is the stored one, not a second run's
    return {"label": label, "at": datetime.now(UTC).isoformat()}


class Marker(OperableService):
    name = "marker"
    together = GroupCommit(record_marks)

    @rpc
    def mark(self, label: str, linger: float = 0.0) -> dict:
        """Commits a mark, then takes `linger` seconds more to answer, or until the test
        lets it go."""
        RAN.append(label)
        with self.db.transaction() as tx:
            tx.session.execute(insert(marks).values(label=label))
        LET_GO.wait(linger)
        return _answer(label)

    @rpc
    def mark_together(self, label: str) -> dict:
        RAN.append(label)
        return self.together(label)

    @rpc
    def refuse(self, label: str) -> dict:
        RAN.append(label)
        raise InvalidInput(f"{label} is refused")

    @rpc
    def count(self) -> int:
        with self.db.reading() as session:
            return session.scalar(select(func.count()).select_from(marks))


@pytest.fixture
def marker(database_url, vhost, container_factory):
    return started(Marker, database_url, vhost, container_factory)


def started(service_cls, database_url, vhost, container_factory):
    """A container of `service_cls` (a marker), on empty tables and a test's own vhost."""
    engine = make_engine(database_url)
    for metadata in (messaging_metadata, requests_metadata, marks_metadata):
        metadata.create_all(engine)
    RAN.clear()
    LET_GO.clear()
    container = container_factory(
        service_cls,
        {
            "AMQP_URI": vhost.amqp_uri,
            "DATABASE_URL": database_url,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
            "max_workers": 10,
        },
    )
    container.start()
    return container


def call(container, method: str, *args, request_id: str | None = None, again: bool = False):
    """One RPC, as the gateway makes it (with a request id; `again`: marked as one that may
    have been sent before, as a retry under an Idempotency-Key is) or without one; an error
    is returned, not raised."""
    context = {REQUEST_ID: request_id} if request_id else {}
    if again:
        context[MAYBE_REPEATED] = True
    try:
        # a deadline: a service that died never answers
        with ServiceRpcProxy(
            "marker", container.config, context_data=context, timeout=60
        ) as service:
            return getattr(service, method)(*args)
    except (ServiceError, RemoteError) as exc:
        return exc


def stored_marks(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        return sorted(conn.scalars(select(marks.c.label)))


def recorded_requests(database_url: str) -> dict[str, str | None]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        return {row.request_id: row.reply for row in conn.execute(select(rpc_requests))}


def test_a_request_sent_again_gets_its_first_reply_and_acts_once(marker, database_url):
    first = call(marker, "mark", "once", request_id="request-1")
    again = call(marker, "mark", "once", request_id="request-1", again=True)

    assert again == first
    assert stored_marks(database_url) == ["once"]
    assert RAN == ["once"]  # looked up first: the method did not even run the second time
    assert json.loads(recorded_requests(database_url)["request-1"])["result"] == first


def test_a_repeat_not_marked_as_one_is_refused_by_its_record(marker, database_url):
    """A delivery that does not say it may have come before is not looked up: it runs, and
    the record its transaction starts with finds the first's; it answers the first reply."""
    first = call(marker, "mark", "unmarked", request_id="request-u")
    again = call(marker, "mark", "unmarked", request_id="request-u")

    assert again == first
    assert RAN == ["unmarked", "unmarked"]
    assert stored_marks(database_url) == ["unmarked"]


def test_replies_of_concurrent_requests_are_kept_together(database_url):
    """One statement stores the replies of many requests (infra.exactly_once.keep_replies),
    on PostgreSQL through connections whose commits do not wait for the WAL flush."""
    engine = make_engine(database_url)
    for metadata in (messaging_metadata, requests_metadata):
        metadata.create_all(engine)
    requests = [Request(f"request-k{n}", "marker.mark") for n in range(3)]
    with engine.begin() as conn:
        conn.execute(
            insert(rpc_requests),
            [
                {"request_id": r.request_id, "method": r.method, "received_at": datetime.now(UTC)}
                for r in [*requests, Request("request-other", "marker.mark")]
            ],
        )

    keeper = reply_keeper(engine)
    keep_replies(keeper, [(r, f'{{"n": {n}}}') for n, r in enumerate(requests)])

    assert recorded_requests(database_url) == {
        "request-k0": '{"n": 0}',
        "request-k1": '{"n": 1}',
        "request-k2": '{"n": 2}',
        "request-other": None,
    }
    if engine.dialect.name == "postgresql":
        with keeper.connect() as conn:
            assert conn.scalar(text("SHOW synchronous_commit")) == "off"


def test_requests_with_other_ids_or_none_each_act(marker, database_url):
    call(marker, "mark", "a", request_id="request-a")
    call(marker, "mark", "b", request_id="request-b")
    call(marker, "mark", "c")
    call(marker, "mark", "c")

    assert stored_marks(database_url) == ["a", "b", "c", "c"]
    assert set(recorded_requests(database_url)) == {"request-a", "request-b"}


def test_a_refusal_records_nothing_and_a_read_needs_no_id(marker, database_url):
    refused = [call(marker, "refuse", "no", request_id="request-no") for _ in range(2)]

    assert all(isinstance(answer, InvalidInput) for answer in refused)
    assert RAN == ["no", "no"]  # nothing changed: running it again is harmless
    assert recorded_requests(database_url) == {}
    assert call(marker, "count", request_id="request-read") == 0
    assert recorded_requests(database_url) == {}


def test_the_same_request_twice_at_once_acts_once(marker, database_url):
    """The second delivery arrives while the first still runs (it has committed and takes
    0.5 s to answer): it waits for the first's reply and returns it."""
    pool = eventlet.GreenPool()
    first = pool.spawn(call, marker, "mark", "twice", 0.5, request_id="request-2")
    eventlet.sleep(0.2)
    second = pool.spawn(call, marker, "mark", "twice", 0.5, request_id="request-2")

    assert second.wait() == first.wait()
    assert stored_marks(database_url) == ["twice"]
    assert RAN == ["twice", "twice"]  # both ran: the second found the first's record


def test_a_group_commit_records_each_request_of_its_batch(marker, database_url):
    labels = [f"mark {n}" for n in range(6)]
    ids = [f"request-g{n}" for n in range(6)]
    ids[5] = ids[0]  # the last is the first sent again, in the same batch or the next

    answers = list(
        eventlet.GreenPool().imap(
            lambda pair: call(marker, "mark_together", pair[0], request_id=pair[1]),
            zip(labels, ids, strict=True),
        )
    )

    assert answers[5] == answers[0]
    first = answers[0]["label"]  # whichever of the two was decided first
    assert stored_marks(database_url) == sorted([*labels[1:5], first])
    assert set(recorded_requests(database_url)) == set(ids)


def _close_connections(vhost: str) -> int:
    """Has the broker close every connection of `vhost`, as a network cut would."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "vhost"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    pids = [line.split("\t")[0] for line in listed[1:] if line.endswith(f"\t{vhost}")]
    closing = [  # at once: each rabbitmqctl takes a second or two to start
        subprocess.Popen(
            ["rabbitmqctl", "-q", "close_connection", pid, "test: connection dropped"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]
    for process in closing:
        process.wait(timeout=60)
    return len(pids)


LINGER = 10.0  # seconds: time enough for rabbitmqctl on a busy machine, unless let go sooner


def _mark_as_the_gateway(
    vhost, args: list, request_id: str, method: str = "mark", reply_queue: Queue | None = None
) -> Queue:
    """Publishes a call of `marker.<method>` as the gateway does, its replies to a queue
    that outlives the caller (returned; a new one unless given)."""
    if reply_queue is None:
        routing_key = f"replies-{uuid.uuid4().hex[:8]}"
        reply_queue = Queue(
            routing_key,
            exchange=Exchange("nameko-rpc", type="topic", durable=True),
            routing_key=routing_key,
            durable=True,
            auto_delete=False,
        )
    with Connection(vhost.amqp_uri, transport_options={"confirm_publish": True}) as conn:
        reply_queue(conn.channel()).declare()
        Producer(conn.channel()).publish(
            {"args": args, "kwargs": {}},
            exchange="nameko-rpc",
            routing_key=f"marker.{method}",
            serializer="json",
            reply_to=reply_queue.routing_key,
            correlation_id=f"call-{request_id}",
            headers={f"nameko.{REQUEST_ID}": request_id},
            delivery_mode=2,
        )
    return reply_queue


def test_a_request_redelivered_after_the_service_connection_drops_acts_once(
    marker, database_url, vhost
):
    """The request is published as the gateway does, with a reply queue that outlives the
    caller; while the service holds it unacknowledged (committed, not answering before the
    second run has started), the broker drops every connection of the vhost: it delivers
    the request again once the service has reconnected. The method runs twice, the mark is
    made once, and every reply sent is the same."""
    reply_queue = _mark_as_the_gateway(vhost, ["dropped", LINGER], "request-dropped")
    wait_until(lambda: RAN == ["dropped"], timeout=10)
    assert _close_connections(vhost.name) > 0

    wait_until(lambda: len(RAN) == 2, timeout=30)  # delivered again, after reconnecting
    LET_GO.set()  # the first run answers: the second waits for that answer
    replies = []

    def replied():
        with Connection(vhost.amqp_uri) as conn:
            message = reply_queue(conn.channel()).get(no_ack=True)
            if message is not None:
                replies.append(json.loads(message.body))
        return replies

    wait_until(replied, timeout=LINGER + 15)
    time.sleep(2)  # the other run's reply, if it gets one out
    replied()

    assert stored_marks(database_url) == ["dropped"]
    assert replies[0]["error"] is None and replies[0]["result"]["label"] == "dropped"
    assert all(reply == replies[0] for reply in replies)
    assert call(marker, "count") == 1


def test_a_request_redelivered_after_its_reply_is_looked_up_and_not_run_again(
    marker, database_url, vhost, monkeypatch
):
    """The service has stored and sent its reply, but its acknowledgement is late (not
    before the connections are dropped) when the broker drops every connection of the
    vhost: the request comes again marked `redelivered`, so the service looks it up first
    and sends the stored reply again without running the method."""
    acknowledge = BrokerTolerantQueueConsumer.ack_message
    late = []

    def late_once(consumer, message):
        if not late:
            late.append(message)
            LET_GO.wait(LINGER)
        acknowledge(consumer, message)

    monkeypatch.setattr(BrokerTolerantQueueConsumer, "ack_message", late_once)
    reply_queue = _mark_as_the_gateway(vhost, ["late"], "request-late")
    wait_until(lambda: late, timeout=10)  # replied, not yet acknowledged
    assert _close_connections(vhost.name) > 0
    LET_GO.set()  # acknowledged too late: the connection is closed

    replies = []

    def replied():
        with Connection(vhost.amqp_uri) as conn:
            while (message := reply_queue(conn.channel()).get(no_ack=True)) is not None:
                replies.append(json.loads(message.body))
        return len(replies) >= 2

    wait_until(replied, timeout=LINGER + 30)

    assert RAN == ["late"]  # the redelivery did not run the method
    assert stored_marks(database_url) == ["late"]
    assert replies[0]["result"]["label"] == "late" and replies[1] == replies[0]


def test_a_request_whose_replica_is_killed_after_its_commit_is_not_applied_again(
    marker, database_url, vhost, container_factory, monkeypatch
):
    """Replica A commits the request and is killed before it answers: the broker gives the
    unacknowledged request to replica B, which finds it recorded and waits for a reply that
    A never stored. It answers Conflict (409 at the gateway), and marks nothing again."""
    monkeypatch.setattr("infra.exactly_once.REPLY_WAIT_SECONDS", 1.0)
    pool = eventlet.GreenPool()
    answer = pool.spawn(call, marker, "mark", "killed", LINGER, request_id="request-k")
    wait_until(lambda: RAN == ["killed"], timeout=10)
    other = container_factory(
        Marker, dict(marker.config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")
    )
    other.start()

    marker.kill()

    assert isinstance(answer.wait(), Conflict)
    assert RAN == ["killed", "killed"]  # B ran it: its record refused it
    assert stored_marks(database_url) == ["killed"]
    assert recorded_requests(database_url) == {"request-k": None}


def test_a_reply_never_stored_is_awaited_from_the_record_not_again_at_each_retry(
    database_url, monkeypatch
):
    """A request recorded with its effect REPLY_WAIT_SECONDS ago and still without a reply
    (its process died between the two) is answered Conflict at once: each retry of the
    caller waiting the whole while again outlasted the gateway's deadline, so the caller
    only ever saw 503s. A request recorded just now is waited for, and its reply taken once
    stored."""
    engine = make_engine(database_url)
    requests_metadata.create_all(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(rpc_requests),
            [
                {
                    "request_id": "request-died",
                    "method": "marker.mark",
                    "received_at": now - timedelta(seconds=REPLY_WAIT_SECONDS + 1),
                },
                {"request_id": "request-running", "method": "marker.mark", "received_at": now},
            ],
        )
    waits = []

    def wait(seconds):  # the first delivery, still running, stores its reply meanwhile
        waits.append(seconds)
        if len(waits) == 3:
            keep_replies(
                reply_keeper(engine), [(Request("request-running", "marker.mark"), '{"n": 1}')]
            )

    monkeypatch.setattr("infra.exactly_once.eventlet.sleep", wait)

    with pytest.raises(Conflict):
        awaited_reply(engine, "request-died")
    assert waits == []  # at once
    assert awaited_reply(engine, "request-running") == '{"n": 1}'
    assert len(waits) == 3


def test_a_batch_holding_one_request_twice_is_refused_as_a_repeat(database_url):
    """A group commit's batch may hold a request and its redelivery: recording them in one
    statement must not let both through."""
    engine = make_engine(database_url)
    for metadata in (messaging_metadata, requests_metadata, marks_metadata):
        metadata.create_all(engine)
    twice = [Request("request-t", "marker.mark"), Request("request-t", "marker.mark")]
    db = DatabaseAccess(engine, "marker", correlation_id=None, consumer="t", requests=twice)

    with pytest.raises(RepeatedRequest), db.transaction() as tx:
        tx.session.execute(insert(marks).values(label="twice"))

    assert stored_marks(database_url) == []
    assert recorded_requests(database_url) == {}


def test_a_database_away_when_a_request_arrives_fails_that_request_not_the_service(
    marker, database_url
):
    """PostgreSQL restarting ends every connection of the service: the request arriving then
    fails its lookup of requests applied before. That fails the request (503 at the gateway),
    never the service: it was looked up in worker_setup, where an error kills the container,
    and a drill's PostgreSQL restart left billing with no live replica."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a connection ended by the server is PostgreSQL's")
    call(marker, "mark", "before", request_id="request-before")  # the pool holds connections
    ended = make_engine(database_url)
    database = ended.url.database
    admin = make_engine(ended.url.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        terminated = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": database},
        ).all()
    assert terminated  # the service's pooled connections among them

    answers = [call(marker, "mark", "during", request_id="request-during")]
    while isinstance(answers[-1], RemoteError) and len(answers) < 5:  # as a client retries
        answers.append(call(marker, "mark", "during", request_id="request-during"))

    failed, answer = answers[:-1], answers[-1]
    # each of the service's pools meets its ended connections once, then reconnects
    assert 1 <= len(failed) <= 2
    assert all(isinstance(f, RemoteError) and f.exc_type == "OperationalError" for f in failed)
    assert marker._died.ready() is False  # the service lives on
    assert answer["label"] == "during"
    assert call(marker, "mark", "during", request_id="request-during") == answer
    assert stored_marks(database_url) == ["before", "during"]
