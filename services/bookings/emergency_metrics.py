"""Metrics of emergency episodes: urgent requests waiting for a decision (read from the
database at scrape time) and how long deciding them took."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import GaugeMetricFamily

from contracts.bookings import BookingStatus
from contracts.clock import now
from contracts.emergencies import Need

# an urgent request is decided within its allocation window (10 minutes by default), or by
# hand; the alert fires at 30 minutes
DECISION_BUCKETS = (60, 300, 600, 900, 1200, 1800, 2700, 3600, 7200, 14400, 43200)
# how an urgent request leaves `requested`: decided, or expired with nobody deciding
OUTCOMES = (BookingStatus.APPROVED, BookingStatus.REJECTED, BookingStatus.EXPIRED)

URGENT_DECISION_SECONDS = Histogram(
    "mutualis_urgent_request_decision_seconds",
    "From an urgent request to its decision",
    ["need", "outcome"],
    buckets=DECISION_BUCKETS,
)
for _need in Need:
    for _outcome in OUTCOMES:
        URGENT_DECISION_SECONDS.labels(_need.value, _outcome.value)  # exported from the start

WaitingReader = Callable[[], tuple[int, datetime | None]]


class UrgentWaitingCollector:
    """How many urgent requests wait for a decision, and since when the oldest does: asked
    of the bookings database when Prometheus scrapes, so every replica tells the same."""

    def __init__(self) -> None:
        self.read: WaitingReader | None = None

    def collect(self):
        waiting = GaugeMetricFamily(
            "mutualis_urgent_requests_waiting", "Urgent requests not yet decided"
        )
        oldest = GaugeMetricFamily(
            "mutualis_urgent_requests_oldest_waiting_seconds",
            "How long the oldest undecided urgent request has waited (0 when none)",
        )
        if self.read is not None:
            try:
                count, first = self.read()
            except Exception:  # a scrape must not fail because the database is down
                pass
            else:
                waiting.add_metric([], count)
                age = 0.0 if first is None else (now() - first).total_seconds()
                oldest.add_metric([], max(0.0, age))
        yield waiting
        yield oldest

    def describe(self):
        return []


_waiting = UrgentWaitingCollector()
REGISTRY.register(_waiting)


def track_urgent_requests(read: WaitingReader | None) -> None:
    """Have the gauges ask `read` for (how many urgent requests are undecided, when the
    oldest was made, None when none); the service points it at its database."""
    _waiting.read = read


def observe_decision(
    need: Need, outcome: BookingStatus, requested_at: datetime, decided_at: datetime
) -> None:
    URGENT_DECISION_SECONDS.labels(need.value, outcome.value).observe(
        max(0.0, (decided_at - requested_at).total_seconds())
    )
