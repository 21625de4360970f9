"""RPC to the services with a deadline: a service that is down answers 503, never a hang.

Every call made while serving anything but a read (an HTTP GET, HEAD or OPTIONS) carries a
request id of its own, which the service records with the call's effect: delivered again
(after its connection dropped), the call gets its first reply back instead of acting twice
(infra.exactly_once). The gateway's Idempotency-Key does the same one level up, for a
client that sends its HTTP request again; and when the first try ended in a 5xx (the key
is then free again: a deadline passed, say, while the service went on and committed), the
retry's calls carry the very ids of the first try's (derived from the caller, the key and
the call's rank), so the service answers them from what it stored instead of acting twice.
Such calls say so (context data `request_maybe_repeated`): the service looks their ids up
before the method runs, which it does not for an id of its own (infra.exactly_once).

A call is published without a publisher confirm and not persistent, and its reply consumed
without acknowledgement: the gateway waits for the reply anyway, under its deadline, so a
request or reply the broker loses (it restarted: the reply queue went with it) is answered
503 like any missed deadline, and the retry is applied once by its id. A confirm and a disk
write per call, and an acknowledgement per reply, bought nothing but broker and gateway CPU.
(Without a confirm nameko cannot tell UnknownService; a service whose queue was never
declared on the broker is then a missed deadline too.)
"""

from __future__ import annotations

import hashlib
from functools import partial

import eventlet
from kombu.exceptions import OperationalError
from nameko.rpc import MethodProxy, ReplyListener, RpcProxy, ServiceProxy

from contracts.errors import Unavailable
from infra.acks import BrokerTolerantQueueConsumer
from infra.exactly_once import MAYBE_REPEATED, REQUEST_ID, new_request_id
from infra.rpc import TRANSIENT, KeptConnectionPublisher, rebound, rpc_exchange

READS = frozenset({"GET", "HEAD", "OPTIONS"})


class _Deadline:
    def __init__(self, proxy, service: str, seconds: float):
        self._proxy = proxy
        self._service = service
        self._seconds = seconds

    def __getattr__(self, method: str):
        target = getattr(self._proxy, method)

        def call(*args, **kwargs):
            deadline = eventlet.Timeout(self._seconds)
            try:
                return target(*args, **kwargs)
            except eventlet.Timeout as exc:
                if exc is not deadline:
                    raise
                raise Unavailable(
                    f"The {self._service} service did not answer within {self._seconds:g} s"
                ) from None
            except (OSError, OperationalError, ConnectionError):
                raise Unavailable("The message broker is unreachable") from None
            finally:
                deadline.cancel()

        return call


class _RequestPublisher(KeptConnectionPublisher):
    """Publishes a call as ServiceRpc's options say, without nameko's `mandatory` flag: a
    message the broker cannot route is only reported through a confirm, which calls go
    without."""

    def publish(self, payload, **kwargs):
        kwargs["mandatory"] = False
        return super().publish(payload, **kwargs)


class _Call(MethodProxy):
    """nameko's call, publishing with _RequestPublisher to the RPC exchange made once."""

    publisher_cls = _RequestPublisher
    _call = rebound(MethodProxy._call, get_rpc_exchange=rpc_exchange)


class _CallOnce(_Call):
    """A call with a request id of its own (the same if kombu publishes it again)."""

    def get_message_headers(self, worker_ctx):
        headers = super().get_message_headers(worker_ctx)
        request_id, maybe_repeated = request_id_for(
            worker_ctx, f"{self.service_name}.{self.method_name}"
        )
        headers[self._get_header_name(REQUEST_ID)] = request_id
        if maybe_repeated:
            headers[self._get_header_name(MAYBE_REPEATED)] = True
        return headers


def request_id_for(worker_ctx, target: str) -> tuple[str, bool]:
    """A new id; under an Idempotency-Key, the same for the same call of every try of the
    same request: from the caller, the key, the request (method, path, body) and the
    call's rank among the worker's calls (a key reused long after, for another request,
    gives other ids). And whether it may have been sent before: derived so, it may (the
    gateway cannot tell a first try from a retry after a 5xx, which freed the key)."""
    request = worker_ctx.args[0] if worker_ctx.args else None
    key = request.headers.get("Idempotency-Key") if hasattr(request, "headers") else None
    caller = worker_ctx.kwargs.get("caller")
    if not key or caller is None:
        return new_request_id(), False
    rank = getattr(worker_ctx, "calls_made", 0)
    worker_ctx.calls_made = rank + 1
    body = worker_ctx.kwargs.get("body")
    body = body.model_dump_json() if hasattr(body, "model_dump_json") else repr(body)
    seed = "\n".join(
        (caller.user_id, key, request.method, request.full_path, body, target, str(rank))
    )
    return hashlib.sha256(seed.encode()).hexdigest()[:32], True


class _Service(ServiceProxy):
    call_cls = _Call

    def __getattr__(self, name):
        return self.call_cls(
            self.worker_ctx, self.service_name, name, self.reply_listener, **self.options
        )


class _ServiceOnce(_Service):
    call_cls = _CallOnce


def reads_only(worker_ctx) -> bool:
    """Whether the worker serves an HTTP request that changes nothing (GET, HEAD, OPTIONS)."""
    request = worker_ctx.args[0] if worker_ctx.args else None
    return getattr(request, "method", None) in READS


class _UnacknowledgedReplies(BrokerTolerantQueueConsumer):
    """The reply queue's consumer, without acknowledgements: a reply is delivered once to the
    one process that waits for it, and a reply lost with its connection is a missed
    deadline whatever we acknowledge."""

    def get_consumers(self, consumer_cls, channel):
        return super().get_consumers(partial(consumer_cls, no_ack=True), channel)

    def ack_message(self, message) -> None:
        """Nothing to acknowledge (consumed with no_ack)."""


class _TolerantReplyListener(ReplyListener):
    """Replies taken without letting a reset broker connection kill the gateway
    (infra.acks): the drill's RabbitMQ stop left a gateway replica dead."""

    queue_consumer = _UnacknowledgedReplies()


class ServiceRpc(RpcProxy):
    """`self.listings.search(...)`, failing with Unavailable after RPC_TIMEOUT seconds;
    applied once by the service unless the worker only reads."""

    rpc_reply_listener = _TolerantReplyListener()

    def __init__(self, target_service: str, **options):
        options.setdefault("use_confirms", False)
        options.setdefault("delivery_mode", TRANSIENT)
        super().__init__(target_service, **options)

    def get_dependency(self, worker_ctx):
        seconds = self.container.config["GATEWAY"].rpc_timeout_seconds
        service = _Service if reads_only(worker_ctx) else _ServiceOnce
        proxy = service(worker_ctx, self.target_service, self.rpc_reply_listener, **self.options)
        return _Deadline(proxy, self.target_service, seconds)
