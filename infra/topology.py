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


def rabbitmq_definitions() -> dict:
    """The same topology as a RabbitMQ definitions file, for brokers provisioned ahead
    (deploy/rabbitmq/definitions.json is generated from this and checked by a test)."""
    exchanges = {DEAD_LETTER_EXCHANGE: "direct"}
    queues, bindings = [], []
    for sub in SUBSCRIPTIONS:
        exchanges[event_exchange(sub.source)] = "topic"
        main, parked = consumer_queue(sub), dead_letter_queue(sub)
        for queue in (main, parked):
            queues.append(
                {
                    "name": queue.name,
                    "vhost": "/",
                    "durable": True,
                    "auto_delete": False,
                    "arguments": dict(queue.queue_arguments),
                }
            )
        for event_type in sub.event_types:
            bindings.append(
                {
                    "source": event_exchange(sub.source),
                    "vhost": "/",
                    "destination": sub.queue,
                    "destination_type": "queue",
                    "routing_key": event_type,
                    "arguments": {},
                }
            )
        bindings.append(
            {
                "source": DEAD_LETTER_EXCHANGE,
                "vhost": "/",
                "destination": sub.dead_letter_queue,
                "destination_type": "queue",
                "routing_key": sub.dead_letter_queue,
                "arguments": {},
            }
        )
    return {
        "vhosts": [{"name": "/"}],
        "exchanges": [
            {
                "name": name,
                "vhost": "/",
                "type": kind,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name, kind in sorted(exchanges.items())
        ],
        "queues": sorted(queues, key=lambda q: q["name"]),
        "bindings": sorted(bindings, key=lambda b: (b["destination"], b["routing_key"])),
    }
