"""How the gateway's calls travel (gateway.rpc): published without a confirm and not
persistent, their replies consumed without acknowledgements; the deadline answers whatever
the broker loses."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import infra.rpc
from gateway.rpc import ServiceRpc, _Call, _UnacknowledgedReplies
from infra.rpc import TRANSIENT


def test_a_call_is_published_transient_without_confirm_nor_mandatory(monkeypatch):
    published = []

    class Pool:
        def __init__(self, broker):
            self.broker = broker

        @contextmanager
        def acquire(self, block):
            yield SimpleNamespace(publish=lambda body, **kw: published.append((self.broker, kw)))

    monkeypatch.setattr(infra.rpc, "producers", KeyedPools(Pool))
    worker_ctx = SimpleNamespace(container=SimpleNamespace(config={"AMQP_URI": "amqp://x/"}))
    rpc = ServiceRpc("bookings")
    for method in ("request", "quote"):
        call = _Call(worker_ctx, "bookings", method, rpc.rpc_reply_listener, **rpc.options)
        call.publisher.publish(
            {"args": []}, mandatory=True, routing_key=f"bookings.{method}", extra_headers={"h": 1}
        )

    (broker, options), (again, _) = published
    assert broker is again  # made once, not for every message
    assert broker.transport_options["confirm_publish"] is False
    assert (options["delivery_mode"], options["mandatory"]) == (TRANSIENT, False)
    assert (options["routing_key"], options["headers"]) == ("bookings.request", {"h": 1})


class KeyedPools(dict):
    def __init__(self, pool):
        super().__init__()
        self.pool = pool

    def __missing__(self, broker):
        return self.pool(broker)


class ReplyProvider:
    queue = "rpc.reply-gateway-1"


def test_replies_are_consumed_without_acknowledgement():
    made = []
    consumers = _UnacknowledgedReplies()
    consumers.container = SimpleNamespace(accept=["json"], max_workers=10)
    consumers._providers = [ReplyProvider()]

    def consumer_cls(**options):
        made.append(options)
        return SimpleNamespace(qos=lambda **_: None)

    consumers.get_consumers(consumer_cls, channel=None)
    consumers.ack_message(SimpleNamespace(ack=lambda: made.append("acked")))

    [options] = made
    assert options["no_ack"] is True and options["queues"] == ["rpc.reply-gateway-1"]


def test_calls_go_to_the_rpc_exchange_made_once(monkeypatch):
    published = []

    class Pool:
        def __init__(self, broker):
            pass

        @contextmanager
        def acquire(self, block):
            yield SimpleNamespace(publish=lambda body, **kw: published.append(kw["exchange"]))

    class Replies:
        routing_key = "rpc.reply-gateway-1"

        def get_reply_event(self, correlation_id):
            return None

    monkeypatch.setattr(infra.rpc, "producers", KeyedPools(Pool))
    config = {"AMQP_URI": "amqp://x/", "rpc_exchange": "mutualis-test-rpc"}
    worker_ctx = SimpleNamespace(container=SimpleNamespace(config=config), context_data={})
    rpc = ServiceRpc("bookings")
    for method in ("request", "quote"):
        _Call(worker_ctx, "bookings", method, Replies(), **rpc.options)._call({}, {})

    first, again = published
    assert first is again  # made once, not for every call
    assert (first.name, first.type, first.durable) == ("mutualis-test-rpc", "topic", True)
    assert infra.rpc.rpc_exchange(config) is first  # the replies' too
