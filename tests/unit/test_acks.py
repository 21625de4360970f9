"""An acknowledgement the broker's reset connection cannot take is forgotten, not raised: raised
in the worker finishing a request, it killed the whole service (the drill's RabbitMQ stop)."""

from __future__ import annotations

import pytest

from infra.acks import BrokerTolerantQueueConsumer


class _Channel:
    connection = object()  # looks alive: the socket's reset is not yet known


class _Message:
    """What a kombu message does when the broker reset its socket in the meantime."""

    channel = _Channel()

    def __init__(self, error: Exception):
        self.error = error
        self.tried: list[str] = []

    def ack(self):
        self.tried.append("ack")
        raise self.error

    def requeue(self):
        self.tried.append("requeue")
        raise self.error


@pytest.mark.parametrize(
    "error",
    [ConnectionResetError(104, "Connection reset by peer"), BrokenPipeError(32, "Broken pipe")],
)
def test_an_ack_or_requeue_on_a_reset_connection_is_forgotten(error, caplog):
    consumer = BrokerTolerantQueueConsumer()
    message = _Message(error)

    consumer.ack_message(message)
    consumer.requeue_message(message)

    assert message.tried == ["ack", "requeue"]
    assert "redelivered" in caplog.text


def test_any_other_error_still_surfaces():
    consumer = BrokerTolerantQueueConsumer()
    with pytest.raises(ValueError):
        consumer.ack_message(_Message(ValueError("a bug")))


def test_every_consumer_of_ours_acknowledges_tolerantly():
    """The services' requests and events and the gateway's replies: each queue consumer."""
    from gateway.rpc import ServiceRpc
    from infra.consumer import EventConsumer
    from infra.rpc import PatientRpcConsumer

    consumers = [
        ServiceRpc("bookings").rpc_reply_listener.queue_consumer,
        PatientRpcConsumer.queue_consumer,
        EventConsumer.queue_consumer,
    ]
    assert all(isinstance(c, BrokerTolerantQueueConsumer) for c in consumers)
