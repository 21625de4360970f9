"""Reading the events a service publishes, from a queue of the test's own on the broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from kombu import Connection, Exchange, Queue


def drain(amqp_uri: str, queue: str) -> list[dict]:
    """Consumes and returns every message waiting in `queue` (bodies as parsed JSON)."""
    bodies = []
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        while (message := channel.basic_get(queue, no_ack=False)) is not None:
            bodies.append(json.loads(message.body))
            channel.basic_ack(message.delivery_tag)
    return bodies


def listen(amqp_uri: str, exchange: str, routing_key: str) -> Callable[[], list[dict]]:
    """Binds a queue of our own to `routing_key` on the topic `exchange` now, before the test
    acts; the function returned gives the events that arrived since it was last called."""
    queue = Queue(
        f"test-{routing_key}-{uuid.uuid4().hex[:8]}",
        exchange=Exchange(exchange, type="topic", durable=True),
        routing_key=routing_key,
        durable=True,
    )
    with Connection(amqp_uri) as conn:
        queue(conn.channel()).declare()
    return lambda: drain(amqp_uri, queue.name)
