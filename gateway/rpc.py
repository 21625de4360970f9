"""RPC to the services with a deadline: a service that is down answers 503, never a hang.

Every call made while serving anything but a read (an HTTP GET, HEAD or OPTIONS) carries a
request id of its own, which the service records with the call's effect: delivered again
(after its connection dropped), the call gets its first reply back instead of acting twice
(infra.exactly_once). The gateway's Idempotency-Key does the same one level up, for a
client that sends its HTTP request again.
"""

from __future__ import annotations

import eventlet
from kombu.exceptions import OperationalError
from nameko.exceptions import UnknownService
from nameko.rpc import MethodProxy, RpcProxy, ServiceProxy

from contracts.errors import Unavailable
from infra.exactly_once import REQUEST_ID, new_request_id

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
            except UnknownService:
                raise Unavailable(f"The {self._service} service is not running") from None
            except (OSError, OperationalError, ConnectionError):
                raise Unavailable("The message broker is unreachable") from None
            finally:
                deadline.cancel()

        return call


class _CallOnce(MethodProxy):
    """A call with a request id of its own (the same if kombu publishes it again)."""

    def get_message_headers(self, worker_ctx):
        headers = super().get_message_headers(worker_ctx)
        headers[self._get_header_name(REQUEST_ID)] = new_request_id()
        return headers


class _ServiceOnce(ServiceProxy):
    def __getattr__(self, name):
        return _CallOnce(
            self.worker_ctx, self.service_name, name, self.reply_listener, **self.options
        )


def reads_only(worker_ctx) -> bool:
    """Whether the worker serves an HTTP request that changes nothing (GET, HEAD, OPTIONS)."""
    request = worker_ctx.args[0] if worker_ctx.args else None
    return getattr(request, "method", None) in READS


class ServiceRpc(RpcProxy):
    """`self.listings.search(...)`, failing with Unavailable after RPC_TIMEOUT seconds;
    applied once by the service unless the worker only reads."""

    def get_dependency(self, worker_ctx):
        seconds = self.container.config["GATEWAY"].rpc_timeout_seconds
        if reads_only(worker_ctx):
            proxy = super().get_dependency(worker_ctx)
        else:
            proxy = _ServiceOnce(
                worker_ctx, self.target_service, self.rpc_reply_listener, **self.options
            )
        return _Deadline(proxy, self.target_service, seconds)
