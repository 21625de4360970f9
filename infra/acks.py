"""Acknowledgements that a dropped broker connection cannot turn into a dead service.

nameko's QueueConsumer acknowledges (or requeues) a message only while its connection looks
alive, and forgives AMQP's ConnectionError; but a socket reset by the broker going away
(RabbitMQ stopped, a network cut) surfaces as the OS's ConnectionResetError, in the worker
that was finishing: it escaped, and an exception there kills the whole container — the
drill's RabbitMQ stop left a bookings replica dead. A message whose acknowledgement cannot
reach the broker needs nothing more: the broker gives every unacknowledged message of a
closed connection to a consumer again, and consumers (infra.consumer) and requests
(infra.exactly_once) apply a delivery once however often it comes.
"""

from __future__ import annotations

import logging

from amqp.exceptions import ConnectionError as AmqpConnectionError
from nameko.messaging import QueueConsumer

log = logging.getLogger(__name__)


class BrokerTolerantQueueConsumer(QueueConsumer):
    def ack_message(self, message) -> None:
        try:
            super().ack_message(message)
        except (OSError, AmqpConnectionError) as exc:
            log.warning("acknowledgement lost with the broker's connection (redelivered): %s", exc)

    def requeue_message(self, message) -> None:
        try:
            super().requeue_message(message)
        except (OSError, AmqpConnectionError) as exc:
            log.warning("requeue lost with the broker's connection (redelivered): %s", exc)
