"""The commit time an event travels with, and the lag a consumer reads from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from infra.consumer import commit_lag
from infra.relay import COMMITTED_AT_HEADER, epoch_micros


def test_a_commit_time_travels_as_whole_microseconds_whatever_its_zone():
    paris = datetime(2026, 12, 6, 15, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert epoch_micros(paris) == 1_796_565_600_123_456
    assert epoch_micros(paris.astimezone(UTC)) == epoch_micros(paris)


def test_the_lag_is_counted_from_the_commit_the_header_carries():
    committed = datetime(2026, 12, 6, 14, 0, tzinfo=UTC)
    headers = {COMMITTED_AT_HEADER: epoch_micros(committed), "nameko.correlation_id": "c"}
    now = committed.timestamp() + 0.0072
    assert abs(commit_lag(headers, now) - 0.0072) < 1e-6


def test_no_header_no_lag_and_a_clock_behind_the_database_counts_zero():
    assert commit_lag(None, 1.0) is None
    assert commit_lag({}, 1.0) is None
    assert commit_lag({COMMITTED_AT_HEADER: "2026-12-06"}, 1.0) is None  # not ours
    assert commit_lag({COMMITTED_AT_HEADER: 2_000_000}, 1.0) == 0.0
