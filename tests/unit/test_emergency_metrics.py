"""What operators see of an emergency: urgent requests waiting, how long the oldest has
waited (the alert's input), and the time to decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from contracts.bookings import BookingStatus
from contracts.emergencies import Need
from services.bookings import emergency_metrics
from services.bookings.emergency_metrics import observe_decision, track_urgent_requests

SEVEN = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
WAITING = "mutualis_urgent_requests_waiting"
OLDEST = "mutualis_urgent_requests_oldest_waiting_seconds"


@pytest.fixture(autouse=True)
def untracked(monkeypatch):
    monkeypatch.setattr(emergency_metrics, "now", lambda: SEVEN + timedelta(minutes=31))
    yield
    track_urgent_requests(None)


def test_the_oldest_urgent_request_waits_since_it_was_made():
    track_urgent_requests(lambda: (3, SEVEN))
    assert REGISTRY.get_sample_value(WAITING) == 3
    assert REGISTRY.get_sample_value(OLDEST) == 31 * 60


def test_none_waiting_is_zero():
    track_urgent_requests(lambda: (0, None))
    assert REGISTRY.get_sample_value(WAITING) == 0
    assert REGISTRY.get_sample_value(OLDEST) == 0


def test_a_database_down_leaves_the_gauges_out_and_the_scrape_whole():
    def down():
        raise ConnectionError("database unreachable")

    track_urgent_requests(down)
    assert REGISTRY.get_sample_value(OLDEST) is None
    assert (
        REGISTRY.get_sample_value(
            "mutualis_urgent_request_decision_seconds_count",
            {
                "need": "comfort",
                "outcome": "expired",
            },
        )
        is not None
    )


def test_time_to_decision_is_counted_by_need_and_outcome():
    labels = {"need": "safety_of_people", "outcome": "approved"}
    before = REGISTRY.get_sample_value("mutualis_urgent_request_decision_seconds_count", labels)
    observe_decision(
        Need.SAFETY_OF_PEOPLE, BookingStatus.APPROVED, SEVEN, SEVEN + timedelta(minutes=10)
    )
    after = REGISTRY.get_sample_value("mutualis_urgent_request_decision_seconds_count", labels)
    assert after == before + 1
    within_ten = REGISTRY.get_sample_value(
        "mutualis_urgent_request_decision_seconds_bucket", labels | {"le": "600.0"}
    )
    assert within_ten >= 1
