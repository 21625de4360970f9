"""Replies stored with their effect (infra.exactly_once, GroupCommit `outcome_is_reply`), in
a real nameko container on real RabbitMQ, on both databases: the reply of a request decided
by such a group commit is written in the batch's transaction, before its COMMIT, and sent
as stored. A failure at the commit leaves neither effect nor reply; a replica killed right
after it leaves both, and a repeat is answered the stored reply at once."""

from __future__ import annotations

import json
import time

import eventlet
import pytest
from kombu import Connection
from nameko.exceptions import RemoteError
from sqlalchemy import Engine, event, insert, select
from sqlalchemy.orm import Session

from contracts.errors import Conflict
from infra.batching import GroupCommit
from infra.exactly_once import REPLY_WAIT_SECONDS
from infra.health import OperableService
from infra.messaging_tables import rpc_requests
from infra.rpc import rpc
from tests.integration.test_rpc_applied_once import (
    LET_GO,
    LINGER,
    RAN,
    _answer,
    _mark_as_the_gateway,
    call,
    marks,
    recorded_requests,
    started,
    stored_marks,
)
from tests.support import free_port
from tests.support.waiting import wait_until


def decide_marks(db, labels: list[str]) -> list:
    """Marks in one transaction; "taken…" is refused (409), "breaks" fails the batch."""
    outcomes = []
    with db.transaction() as tx:
        for label in labels:
            if label == "breaks":
                raise RuntimeError("this label breaks its batch")
            if label.startswith("taken"):
                outcomes.append(Conflict(f"{label} is taken"))
                continue
            tx.session.execute(insert(marks).values(label=label))
            outcomes.append(_answer(label))
    return outcomes


class Marker(OperableService):
    name = "marker"
    together = GroupCommit(decide_marks, outcome_is_reply=True)

    @rpc
    def mark(self, label: str, linger: float = 0.0) -> dict:
        """The batch's outcome as it is, `linger` seconds after its commit."""
        RAN.append(label)
        outcome = self.together(label)
        LET_GO.wait(linger)
        return outcome

    @rpc
    def mark_copied(self, label: str) -> dict:
        """Another answer than the outcome (a copy of it)."""
        RAN.append(label)
        return dict(self.together(label))


@pytest.fixture
def marker(database_url, vhost, container_factory):
    return started(Marker, database_url, vhost, container_factory)


@pytest.fixture
def reply_updates():
    """The statements storing replies, as run, in this process."""
    seen: list[str] = []

    def executed(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("UPDATE RPC_REQUESTS"):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", executed)
    yield seen
    event.remove(Engine, "before_cursor_execute", executed)


def raw_replies(vhost, method: str, calls: list[tuple[str, str]]) -> dict[str, bytes]:
    """Publishes calls of `marker.<method>` (label, request id) as the gateway does, and
    returns each reply's body as the broker delivered it, by request id."""
    queue = None
    for label, request_id in calls:
        queue = _mark_as_the_gateway(vhost, [label], request_id, method, queue)
    bodies: dict[str, bytes] = {}
    with Connection(vhost.amqp_uri) as conn:

        def received():
            while (message := queue(conn.channel()).get(no_ack=True)) is not None:
                body = message.body  # py-amqp decodes a utf-8 body: its bytes, encoded again
                raw = body.encode(message.content_encoding) if isinstance(body, str) else body
                bodies[message.properties["correlation_id"].removeprefix("call-")] = raw
            return len(bodies) == len(calls)

        wait_until(received, timeout=30)
    return bodies


def test_the_reply_sent_is_the_one_committed_with_the_effect_byte_for_byte(
    marker, database_url, vhost, reply_updates
):
    """A booked item and a refused one (its serialized Conflict): each reply as sent is the
    text stored, and it was stored once, by the batch (one UPDATE per batch, never a
    second by the responder)."""
    calls = [("kept", "request-kept"), ("taken-1", "request-taken"), ("also", "request-also")]

    sent = raw_replies(vhost, "mark", calls)

    stored = recorded_requests(database_url)
    assert sent == {request_id: reply.encode() for request_id, reply in stored.items()}
    assert json.loads(stored["request-kept"])["result"]["label"] == "kept"
    assert json.loads(stored["request-taken"])["error"]["exc_type"] == "Conflict"
    assert stored_marks(database_url) == ["also", "kept"]
    assert 1 <= len(reply_updates) <= len(calls)  # one per batch: 1 to 3 batches


def test_a_refused_item_is_answered_its_stored_refusal_when_sent_again(marker, database_url):
    first = call(marker, "mark", "taken-2", request_id="request-refused")
    again = call(marker, "mark", "taken-2", request_id="request-refused", again=True)

    assert isinstance(first, Conflict) and isinstance(again, Conflict)
    assert again.args == first.args
    assert RAN == ["taken-2"]  # looked up: answered from the stored reply
    assert json.loads(recorded_requests(database_url)["request-refused"])["result"] is None


def test_a_failure_at_the_commit_leaves_neither_the_effect_nor_its_reply(marker, database_url):
    """Just before the batch's COMMIT, its transaction holds the reply; the commit fails:
    the caller gets the error, and nothing of the request is left, so its retry acts."""
    seen_in_transaction = []

    def fail_commit(session: Session):
        if not seen_in_transaction:
            seen_in_transaction.append(
                session.scalar(
                    select(rpc_requests.c.reply).where(
                        rpc_requests.c.request_id == "request-failed"
                    )
                )
            )
            raise RuntimeError("the commit fails")

    event.listen(Session, "before_commit", fail_commit)
    try:
        failed = call(marker, "mark", "failed", request_id="request-failed")
    finally:
        event.remove(Session, "before_commit", fail_commit)

    assert isinstance(failed, RemoteError) and failed.exc_type == "RuntimeError"
    assert json.loads(seen_in_transaction[0])["result"]["label"] == "failed"
    assert stored_marks(database_url) == []
    assert recorded_requests(database_url) == {}
    retried = call(marker, "mark", "failed", request_id="request-failed", again=True)
    assert retried["label"] == "failed"
    assert json.loads(recorded_requests(database_url)["request-failed"])["result"] == retried
    assert stored_marks(database_url) == ["failed"]


def test_a_replica_killed_right_after_the_commit_answers_the_repeat_at_once(
    marker, database_url, container_factory
):
    """Replica A commits the batch, with the reply, and is killed before it answers: the
    broker gives the unacknowledged request again to replica B, which looks it up and
    finds its reply at once (no wait for a reply that never comes, no Conflict), without
    running the method. The mark is made once."""
    pool = eventlet.GreenPool()
    answer = pool.spawn(call, marker, "mark", "killed", LINGER, request_id="request-k")
    wait_until(lambda: "request-k" in recorded_requests(database_url), timeout=10)  # committed
    other = container_factory(
        Marker, dict(marker.config, WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}")
    )
    other.start()

    marker.kill()
    killed_at = time.monotonic()
    answered = answer.wait()
    waited = time.monotonic() - killed_at

    assert answered["label"] == "killed"
    assert json.loads(recorded_requests(database_url)["request-k"])["result"] == answered
    assert waited < REPLY_WAIT_SECONDS / 3  # not the wait for a reply never stored
    assert RAN == ["killed"]
    assert stored_marks(database_url) == ["killed"]


def test_a_batch_that_breaks_is_decided_again_item_by_item_each_with_its_reply(
    marker, database_url
):
    labels = ["one", "breaks", "two", "taken-3", "three"]

    answers = list(
        eventlet.GreenPool().imap(
            lambda label: call(marker, "mark", label, request_id=f"request-{label}"), labels
        )
    )

    assert [a["label"] for a in answers if isinstance(a, dict)] == ["one", "two", "three"]
    assert isinstance(answers[1], RemoteError) and answers[1].exc_type == "RuntimeError"
    assert isinstance(answers[3], Conflict)
    assert stored_marks(database_url) == ["one", "three", "two"]
    stored = recorded_requests(database_url)
    assert set(stored) == {"request-one", "request-two", "request-taken-3", "request-three"}
    for label, answer in zip(labels, answers, strict=True):
        if isinstance(answer, dict):
            assert json.loads(stored[f"request-{label}"])["result"] == answer


def test_an_answer_other_than_the_outcome_is_the_one_stored_and_no_id_records_nothing(
    marker, database_url, vhost
):
    """A method that answers a copy of the outcome gets its own answer encoded and stored
    after the commit (the usual way); a request without an id is decided and records
    nothing."""
    sent = raw_replies(vhost, "mark_copied", [("copied", "request-copied")])
    anonymous = call(marker, "mark", "anonymous")

    stored = recorded_requests(database_url)
    assert {"request-copied": stored["request-copied"].encode()} == sent
    assert list(stored) == ["request-copied"]
    assert anonymous["label"] == "anonymous"
    assert stored_marks(database_url) == ["anonymous", "copied"]
