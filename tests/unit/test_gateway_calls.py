"""How the gateway's calls travel (gateway.rpc): published without a confirm and not
persistent, their replies consumed without acknowledgements; the deadline answers whatever
the broker loses."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import nameko.amqp.publish

from gateway.rpc import ServiceRpc, _Call, _UnacknowledgedReplies
from infra.rpc import TRANSIENT


def test_a_call_is_published_transient_without_confirm_nor_mandatory(monkeypatch):
    published = []

    @contextmanager
    def producer(amqp_uri, confirms, *_):
        yield SimpleNamespace(publish=lambda body, **kw: published.append((confirms, kw)))

    monkeypatch.setattr(nameko.amqp.publish, "get_producer", producer)
    worker_ctx = SimpleNamespace(container=SimpleNamespace(config={"AMQP_URI": "amqp://x/"}))
    rpc = ServiceRpc("bookings")
    call = _Call(worker_ctx, "bookings", "request", rpc.rpc_reply_listener, **rpc.options)

    call.publisher.publish({"args": []}, mandatory=True, routing_key="bookings.request")

    [(confirms, options)] = published
    assert confirms is False
    assert (options["delivery_mode"], options["mandatory"]) == (TRANSIENT, False)


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
