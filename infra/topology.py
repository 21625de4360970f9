"""Declares on the broker the exchanges, queues and bindings of contracts.topology.

Declaring is idempotent; the relay does it before publishing and each consumer before
consuming, with the very same arguments (RabbitMQ refuses a redeclaration that differs).
"""

from kombu import Exchange, Queue, binding
from kombu.connection import Connection

from contracts.topology import DEAD_LETTER_EXCHANGE, SUBSCRIPTIONS, Subscription, event_exchange

dead_letter_exchange = Exchange(DEAD_LETTER_EXCHANGE, type="direct", durable=True)


def source_exchange(service: str) -> Exchange:
    return Exchange(event_exchange(service), type="topic", durable=True)


def consumer_queue(sub: Subscription) -> Queue:
    """The consumer's durable quorum queue; rejected messages go to its dead-letter queue."""
    exchange = source_exchange(sub.source)
    return Queue(
        sub.queue,
        exchange=exchange,
        bindings=[binding(exchange, routing_key=event_type) for event_type in sub.event_types],
        durable=True,
        auto_delete=False,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": sub.dead_letter_queue,
        },
    )


def dead_letter_queue(sub: Subscription) -> Queue:
    return Queue(
        sub.dead_letter_queue,
        exchange=dead_letter_exchange,
        routing_key=sub.dead_letter_queue,
        durable=True,
        auto_delete=False,
        queue_arguments={"x-queue-type": "quorum"},
    )


def declare_subscription(channel, sub: Subscription) -> None:
    dead_letter_exchange(channel).declare()
    dead_letter_queue(sub)(channel).declare()
    queue = consumer_queue(sub)(channel)
    queue.declare()


def declare_all(connection: Connection) -> None:
    """Every exchange, queue and binding the system's events need."""
    with connection.channel() as channel:
        for sub in SUBSCRIPTIONS:
            declare_subscription(channel, sub)
