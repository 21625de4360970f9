"""RPC to the services with a deadline: a service that is down answers 503, never a hang."""

from __future__ import annotations

import eventlet
from kombu.exceptions import OperationalError
from nameko.exceptions import UnknownService
from nameko.rpc import RpcProxy

from contracts.errors import Unavailable


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


class ServiceRpc(RpcProxy):
    """`self.listings.search(...)`, failing with Unavailable after RPC_TIMEOUT seconds."""

    def get_dependency(self, worker_ctx):
        seconds = self.container.config["GATEWAY"].rpc_timeout_seconds
        return _Deadline(super().get_dependency(worker_ctx), self.target_service, seconds)
