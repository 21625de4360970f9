"""The RPC entrypoint of our services.

- Refusals (ServiceError) are expected answers, not logged as bugs.
- A reply that cannot be sent because the broker is away is dropped with a warning instead
  of killing the service (nameko gives up after 3 retries and the error kills the
  container); the caller's own deadline answers it (503 at the gateway).
"""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError
from nameko.amqp.publish import Publisher
from nameko.rpc import Responder, Rpc, RpcConsumer, get_rpc_exchange

from contracts.errors import ServiceError

log = logging.getLogger(__name__)

# how long a reply waits for the broker to come back (kombu's retry schedule)
REPLY_RETRY_POLICY = {
    "max_retries": 6,
    "interval_start": 0.5,
    "interval_step": 1,
    "interval_max": 3,
}


class PatientResponder(Responder):
    def send_response(self, result, exc_info):
        try:
            return super().send_response(result, exc_info)
        except (OSError, OperationalError, ConnectionError) as exc:
            log.warning(
                "reply to %s lost, the broker is unreachable: %s",
                self.message.properties.get("reply_to"),
                exc,
            )
            return result, exc_info


class PatientRpcConsumer(RpcConsumer):
    def handle_result(self, message, result, exc_info):
        config = self.container.config
        responder = PatientResponder(
            config["AMQP_URI"],
            get_rpc_exchange(config),
            config.get("serializer", "json"),
            message,
        )
        responder.publisher_cls = _patient_publisher
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


def _patient_publisher(amqp_uri, **kwargs):
    return Publisher(amqp_uri, retry_policy=REPLY_RETRY_POLICY, **kwargs)


class PatientRpc(Rpc):
    rpc_consumer = PatientRpcConsumer()


def rpc(fn):
    return PatientRpc.decorator(expected_exceptions=(ServiceError,))(fn)
