"""The notifications service's metrics: mails by outcome, and the backlog read at scrape."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from contracts import clock

MAILS = Counter(
    "mutualis_mails_total",
    "Mails by kind and outcome (sent, retried: the server was unavailable, refused for good)",
    ["kind", "outcome"],
)

OUTCOMES = ("sent", "retried", "refused")


def export_zeros(kinds) -> None:
    """Every (kind, outcome) from the start, so that rate() and increase() see the first."""
    for kind in kinds:
        for outcome in OUTCOMES:
            MAILS.labels(kind, outcome)


class MailBacklog:
    """Mails decided and not yet sent, and the age of the oldest (0 when none)."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def collect(self):
        from services.notifications import repository

        pending = GaugeMetricFamily("mutualis_mail_backlog", "Mails waiting to be sent")
        oldest = GaugeMetricFamily(
            "mutualis_mail_oldest_pending_age_seconds",
            "Age of the oldest mail waiting to be sent (0 when none)",
        )
        if self.engine is not None:
            try:
                with Session(self.engine) as session:
                    count, first = repository.backlog(session)
            except Exception:  # a scrape must not fail because the database is down
                return
            pending.add_metric([], count)
            oldest.add_metric([], max(0.0, (clock.now() - first).total_seconds()) if first else 0.0)
        yield pending
        yield oldest

    def describe(self):
        return []


BACKLOG = MailBacklog()
REGISTRY.register(BACKLOG)
