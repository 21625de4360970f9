"""The RPC entrypoint of our services.

- Refusals (ServiceError) are expected answers, not logged as bugs.
- A reply that cannot be sent because the broker is away is dropped with a warning instead
  of killing the service (nameko gives up after 3 retries and the error kills the
  container); the caller's own deadline answers it (503 at the gateway). So is an
  acknowledgement (infra.acks): the broker delivers the request again.
- A request that carries a request id is applied once (infra.exactly_once): its reply is
  stored before it is sent, with the replies of the other workers finishing meanwhile (one
  statement), and a repeated request gets the stored reply again. A reply already stored
  with the request's effect (a GroupCommit whose outcome is the reply) is sent as stored,
  neither encoded nor stored again. A request the broker delivers again is marked as one
  that may have been applied (`redelivered`): its method looks it up first.
- A reply is encoded once (nameko encodes it twice: once to check that it can be), and sent
  without waiting for a publisher confirm and not persistent: it goes to the caller's own
  temporary queue, and a reply lost in the broker is one the caller's deadline already
  answers. Events and their relays keep their confirms.
- A request's arguments are checked against its method's signature read once (nameko reads
  it again for every request: `inspect.getcallargs`, ~80 µs, 1.5 % of the bookings
  service's samples under booking load).
- The RPC exchange, which nameko makes again for every call and reply, is made once
  (`rpc_exchange`).
- Replies and the gateway's calls are published by KeptConnectionPublisher: nameko's
  Publisher makes a kombu Connection for every message only to find its pool of producers
  by it (URL parsing, transport look-up: ~3 % of the gateway's samples under booking load);
  this one makes it once per process and broker, and publishes with nameko's own code.
"""

from __future__ import annotations

import inspect
import logging
import sys
from functools import cached_property, partial, update_wrapper
from types import FunctionType

from kombu import Connection, Exchange
from kombu.exceptions import OperationalError
from kombu.pools import producers
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
    RPC_EXCHANGE_CONFIG_KEY,
)
from nameko.exceptions import IncorrectSignature, UnserializableValueError, serialize
from nameko.rpc import Responder, Rpc, RpcConsumer, get_rpc_exchange

from contracts.errors import ServiceError
from infra.acks import BrokerTolerantQueueConsumer
from infra.batching import Batches
from infra.database import Database, one_statement_at_a_time, reply_keeper
from infra.exactly_once import (
    MAYBE_REPEATED,
    RepeatedRequest,
    Request,
    awaited_reply,
    encoded_reply,
    keep_replies,
    request_of,
)

log = logging.getLogger(__name__)

# how long a reply waits for the broker to come back (kombu's retry schedule)
REPLY_RETRY_POLICY = {
    "max_retries": 6,
    "interval_start": 0.5,
    "interval_step": 1,
    "interval_max": 3,
}


TRANSIENT = 1


class PatientResponder(Responder):
    request: Request | None = None  # the request applied once, if it has an id
    engine = None  # where a repeat reads the reply kept
    keep = None  # keep(request, reply): stores the reply (PatientRpcConsumer)

    def send_response(self, result, exc_info):
        try:
            return self._send(result, exc_info)
        except (OSError, OperationalError, ConnectionError) as exc:
            log.warning(
                "reply to %s lost, the broker is unreachable: %s",
                self.message.properties.get("reply_to"),
                exc,
            )
            return result, exc_info

    def _send(self, result, exc_info):
        """nameko's Responder.send_response, encoding once, without confirm or persistence;
        a repeated request's reply is the one stored, a recorded request's is stored."""
        content_type = self.message.properties["content_type"]
        repeated = exc_info[1] if exc_info and isinstance(exc_info[1], RepeatedRequest) else None
        if repeated is not None:
            try:
                body = repeated.reply or awaited_reply(self.engine, repeated.request.request_id)
                result, exc_info, encoding = None, None, "utf-8"
            except ServiceError:  # applied, but its reply was never stored
                exc_info = sys.exc_info()
                repeated = None
        kept = self.request.reply if self.request is not None else None
        if repeated is None and kept is not None and kept.answers(result, exc_info, content_type):
            body, encoding = kept.body, kept.encoding  # committed with the effect
        elif repeated is None:
            body, encoding, result, exc_info = self._encode(result, exc_info, content_type)
            if self.request is not None and self.request.recorded:
                self._keep(body)
        publisher = self.publisher_cls(self.amqp_uri, ssl=self.ssl, login_method=self.login_method)
        publisher.publish(
            body,
            content_type=content_type,
            content_encoding=encoding,
            exchange=self.exchange,
            routing_key=self.message.properties["reply_to"],
            correlation_id=self.message.properties.get("correlation_id"),
            use_confirms=False,
            delivery_mode=TRANSIENT,
        )
        return result, exc_info

    def _encode(self, result, exc_info, content_type: str):
        """The reply's body and encoding, in the request's encoding."""
        error = serialize(exc_info[1]) if exc_info is not None else None
        try:
            body, encoding = encoded_reply(result, error, content_type)
        except Exception:
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))  # this one always encodes
            result = None
            body, encoding = encoded_reply(None, error, content_type)
        return body, encoding, result, exc_info

    def _keep(self, body) -> None:
        """Stores the reply before sending it; if the database is away meanwhile, the
        request stays recorded without it (a repeat then answers Conflict)."""
        text = body.decode() if isinstance(body, bytes) else body
        try:
            self.keep((self.request, text))
        except Exception as exc:  # the effect is committed: the caller still gets its reply
            log.warning("reply to request %s not kept: %s", self.request.request_id, exc)


class PatientRpcConsumer(RpcConsumer):
    queue_consumer = BrokerTolerantQueueConsumer()

    def setup(self):
        super().setup()
        self.exchange = rpc_exchange(self.container.config)  # once, not per reply
        # replies of requests applied once, stored together (infra.exactly_once)
        self.replies = Batches(
            self._keep_replies,
            partial(self.container.spawn_managed_thread, identifier="rpc replies kept"),
        )
        self._engine = None

    @property
    def engine(self):
        """The service's database (its Database dependency's engine)."""
        if self._engine is None:
            self._engine = next(
                d.engine for d in self.container.dependencies if isinstance(d, Database)
            )
        return self._engine

    def _keep_replies(self, batch) -> None:
        keep_replies(reply_keeper(self.engine), [kept for kept, _ in batch])
        for _, answered in batch:
            answered.send(None)

    def handle_result(self, message, result, exc_info, worker_ctx=None):
        config = self.container.config
        responder = PatientResponder(
            config["AMQP_URI"],
            self.exchange,
            config.get("serializer", "json"),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        responder.publisher_cls = _patient_publisher
        request = request_of(worker_ctx) if worker_ctx is not None else None
        if request is not None:
            responder.request = request
            responder.engine = one_statement_at_a_time(self.engine)
            responder.keep = self.replies.submit
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


# the Connection naming each broker's pool of producers, per (uri, confirms, ssl, login,
# transport options)
_brokers: dict[tuple, Connection] = {}


def broker(
    amqp_uri: str, confirms: bool, ssl=None, login_method=None, transport_options=None
) -> Connection:
    """What nameko's get_producer makes for every message, made once: a Connection is only
    the key (and template) of kombu's pools, which connect their own clones. (The transport
    options, kombu's retry numbers, are part of the key as they are.)"""
    options = transport_options or DEFAULT_TRANSPORT_OPTIONS
    key = (amqp_uri, confirms, repr(ssl), login_method, *options.items())
    found = _brokers.get(key)
    if found is None:
        options = {**options, "confirm_publish": confirms}
        found = _brokers[key] = Connection(
            amqp_uri, transport_options=options, ssl=ssl, login_method=login_method
        )
    return found


def kept_producer(amqp_uri, confirms=True, ssl=None, login_method=None, transport_options=None):
    """nameko's get_producer (same arguments, a producer of the pool for the duration of a
    `with`), its Connection from `broker(…)`."""
    pool = producers[broker(amqp_uri, confirms, ssl, login_method, transport_options)]
    return pool.acquire(block=True)


def rebound(function: FunctionType, **names) -> FunctionType:
    """`function`'s own code, read with these global `names` bound to ours, for the class
    that takes it only (no patch of its module, whose other users keep the originals). For
    nameko's methods that call a module function by name where no method says where the
    thing comes from: Publisher.publish (its producer: get_producer) and MethodProxy._call
    (its exchange: get_rpc_exchange)."""
    missing = set(names) - set(function.__code__.co_names)
    if missing:  # another nameko than 2.14's
        raise ImportError(f"{function.__qualname__} no longer calls {', '.join(sorted(missing))}")
    globals_ = {**function.__globals__, **names}
    ours = FunctionType(function.__code__, globals_, function.__name__, function.__defaults__)
    return update_wrapper(ours, function)


class KeptConnectionPublisher(Publisher):
    """nameko's Publisher, taking its producer from the pool of `broker(…)`: its own
    publish, merging its options as nameko does."""

    publish = rebound(Publisher.publish, get_producer=kept_producer)


# the RPC exchange by name (config RPC_EXCHANGE), made once
DEFAULT_RPC_EXCHANGE = "nameko-rpc"  # nameko's
_rpc_exchanges: dict[str, Exchange] = {}


def rpc_exchange(config) -> Exchange:
    """nameko's get_rpc_exchange, which makes a new kombu Exchange at every call (2 % of the
    gateway's samples under booking load), made once per name."""
    name = config.get(RPC_EXCHANGE_CONFIG_KEY, DEFAULT_RPC_EXCHANGE)
    found = _rpc_exchanges.get(name)
    if found is None:
        found = _rpc_exchanges[name] = get_rpc_exchange(config)
    return found


def _patient_publisher(amqp_uri, **kwargs):
    return KeptConnectionPublisher(amqp_uri, retry_policy=REPLY_RETRY_POLICY, **kwargs)


class PatientRpc(Rpc):
    rpc_consumer = PatientRpcConsumer()

    @cached_property
    def signature(self) -> inspect.Signature:
        """The method's, read once (unbound: `self` comes first)."""
        return inspect.signature(getattr(self.container.service_cls, self.method_name))

    def check_signature(self, args, kwargs):
        """nameko's check: IncorrectSignature unless the arguments fit the method."""
        try:
            self.signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise IncorrectSignature(str(exc)) from None

    def unpack_message_headers(self, message):
        """The worker's context data; a request the broker delivers again (its consumer's
        connection dropped before the acknowledgement) may have been applied: said so for
        infra.exactly_once."""
        data = super().unpack_message_headers(message)
        if message.delivery_info.get("redelivered"):
            data[MAYBE_REPEATED] = True
        return data

    def handle_result(self, message, worker_ctx, result, exc_info):
        return self.rpc_consumer.handle_result(message, result, exc_info, worker_ctx)


def rpc(fn):
    return PatientRpc.decorator(expected_exceptions=(ServiceError, RepeatedRequest))(fn)
