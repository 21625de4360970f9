"""Group commit (infra.batching.GroupCommit) in a real nameko container, on both databases:
concurrent workers' items are decided together, each gets its own answer, a refused item
leaves the others alone, and an item that breaks the transaction costs the others only a
retry."""

from __future__ import annotations

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.exc import OperationalError

from contracts.errors import InvalidInput, ServiceError
from infra.batching import GroupCommit
from infra.database import make_engine
from infra.health import OperableService
from infra.messaging_tables import metadata as messaging_metadata
from infra.rpc import rpc
from tests.support import free_port

ledger_metadata = MetaData()
entries = Table(
    "entries",
    ledger_metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String(40), nullable=False),
)

BATCHES: list[list[str]] = []  # the items of each transaction tried, committed or not


def record_entries(db, labels):
    """One row per label; a label starting with "-" is refused (422), "boom" breaks the
    whole transaction (an unexpected error, as a bug would), "down" as the database gone
    away would, "slow"
    keeps its transaction open for a while (the others then queue up)."""
    BATCHES.append(list(labels))
    outcomes = []
    with db.transaction() as tx:
        for label in labels:
            if label == "slow":
                eventlet.sleep(0.5)
            if label.startswith("-"):
                outcomes.append(InvalidInput(f"{label} is refused"))
                continue
            if label == "boom":
                raise RuntimeError("the transaction broke")
            if label == "down":
                raise OperationalError("INSERT …", {}, ConnectionError("server closed"))
            tx.session.execute(insert(entries).values(label=label))
            outcomes.append({"label": label, "batch": len(labels)})
    return outcomes


class Ledger(OperableService):
    name = "ledger"
    entries = GroupCommit(record_entries)

    @rpc
    def enter(self, label: str) -> dict:
        return self.entries(label)


@pytest.fixture
def ledger(database_url, vhost, container_factory):
    engine = make_engine(database_url)
    messaging_metadata.create_all(engine)
    ledger_metadata.create_all(engine)
    engine.dispose()
    BATCHES.clear()
    container = container_factory(
        Ledger,
        {
            "AMQP_URI": vhost.amqp_uri,
            "DATABASE_URL": database_url,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
            "max_workers": 20,
        },
    )
    container.start()
    return container


def enter_all(container, labels: list[str]) -> list:
    """Each label entered by its own RPC call, all at once; an error is returned, not raised
    (a ServiceError comes back as itself, any other as a RemoteError naming its type)."""

    def one(label: str):
        try:
            with ServiceRpcProxy("ledger", container.config) as ledger:
                return ledger.enter(label)
        except (ServiceError, RemoteError) as exc:
            return exc

    return list(eventlet.GreenPool(len(labels)).imap(one, labels))


def enter_while_busy(container, labels: list[str]) -> list:
    """The labels entered all at once while a slow request holds the transaction: they
    wait, then are decided together. Their answers, in order."""
    slow = eventlet.spawn(enter_all, container, ["slow"])
    eventlet.sleep(0.1)
    answers = enter_all(container, labels)
    assert slow.wait() == [{"label": "slow", "batch": 1}]
    return answers


def stored(database_url: str) -> list[str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return sorted(conn.scalars(select(entries.c.label)))
    finally:
        engine.dispose()


def test_one_request_alone_is_decided_at_once(ledger, database_url):
    assert enter_all(ledger, ["alone"]) == [{"label": "alone", "batch": 1}]
    assert BATCHES == [["alone"]]
    assert stored(database_url) == ["alone"]


def test_concurrent_requests_share_transactions_and_each_gets_its_answer(ledger, database_url):
    before = (
        REGISTRY.get_sample_value(
            "mutualis_group_commit_size_count", {"service": "ledger", "work": "ledger.entries"}
        )
        or 0
    )
    labels = [f"entry {n}" for n in range(20)]

    answers = enter_while_busy(ledger, labels)

    assert [a["label"] for a in answers] == labels
    decided = [label for batch in BATCHES[1:] for label in batch]
    assert sorted(decided) == sorted(labels)  # each decided once
    assert len(BATCHES) - 1 < len(labels)  # and not each in its own transaction
    assert max(a["batch"] for a in answers) > 1
    assert stored(database_url) == sorted([*labels, "slow"])
    after = REGISTRY.get_sample_value(
        "mutualis_group_commit_size_count", {"service": "ledger", "work": "ledger.entries"}
    )
    assert after - before == len(BATCHES)


def test_a_refused_request_gets_its_error_and_the_others_commit(ledger, database_url):
    labels = ["first", "-refused", "second", "third"]

    answers = enter_while_busy(ledger, labels)

    assert isinstance(answers[1], InvalidInput)
    assert str(answers[1].args[0]) == "-refused is refused"
    assert [answers[n]["label"] for n in (0, 2, 3)] == ["first", "second", "third"]
    assert stored(database_url) == ["first", "second", "slow", "third"]
    assert sorted(labels) in [sorted(batch) for batch in BATCHES]  # in one transaction


def test_a_request_that_breaks_the_transaction_costs_the_others_only_a_retry(ledger, database_url):
    labels = ["before", "after", "boom", "last"]

    answers = enter_while_busy(ledger, labels)

    assert answers[2].exc_type == "RuntimeError"
    assert [answers[n]["label"] for n in (0, 1, 3)] == ["before", "after", "last"]
    assert stored(database_url) == ["after", "before", "last", "slow"]
    assert any("boom" in batch and len(batch) > 1 for batch in BATCHES)  # it failed them
    assert ["boom"] in BATCHES  # then each was decided alone


def test_a_database_gone_away_fails_the_batch_at_once_without_retries(ledger, database_url):
    labels = ["first", "down", "second"]

    answers = enter_while_busy(ledger, labels)

    assert all(isinstance(a, RemoteError) and a.exc_type == "OperationalError" for a in answers)
    assert sorted(labels) in [sorted(batch) for batch in BATCHES]
    assert ["first"] not in BATCHES  # not retried one by one: each would meet it again
    assert stored(database_url) == ["slow"]
