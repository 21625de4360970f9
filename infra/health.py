"""`/metrics`, `/health/live` and `/health/ready` on each service's own port (the gateway
serves its `/metrics` on its metrics port instead: gateway/service.py)."""

import json

from kombu import Connection
from nameko.dependency_providers import Config
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from werkzeug.wrappers import Response

from infra.database import Database
from infra.heap import FrozenStartupHeap
from infra.metrics import Observability
from infra.web import http


def broker_reachable(amqp_uri: str, timeout: float = 2.0) -> bool:
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as conn:
            conn.connect()
        return True
    except Exception:
        return False


def database_reachable(db) -> bool:
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def metrics_answer() -> Response:
    """Every metric of the process, in Prometheus's text format."""
    return Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST)


def _json(status: int, body: dict) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


class OperableService:
    """Base of every nameko service: database, observability and the operator endpoints."""

    config = Config()
    db = Database()
    observability = Observability()
    frozen_startup_heap = FrozenStartupHeap()

    @http("GET", "/metrics")
    def metrics(self, request):
        return metrics_answer()

    @http("GET", "/health/live")
    def live(self, request):
        return _json(200, {"status": "ok"})

    @http("GET", "/health/ready")
    def ready(self, request):
        checks = {
            "database": database_reachable(self.db),
            "broker": broker_reachable(self.config["AMQP_URI"]),
        }
        ok = all(checks.values())
        return _json(
            200 if ok else 503, {"status": "ok" if ok else "unavailable", "checks": checks}
        )
