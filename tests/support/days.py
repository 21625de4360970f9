"""Days and moments as the tests write them: counted from today where the communes are (Paris),
so that a test run near midnight UTC asks for the same days as one at noon."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from contracts.clock import PARIS, paris_today


def day(n: int) -> str:
    """The date `n` days from today, as the API takes it (YYYY-MM-DD)."""
    return (paris_today() + timedelta(days=n)).isoformat()


def at(days: int, hour: int = 0) -> datetime:
    """`hour` o'clock in Paris, `days` from today: at(n) is where a day listing's day n starts."""
    return datetime.combine(paris_today() + timedelta(days=days), time(hour), PARIS)


def instant(text: str) -> datetime:
    """A moment the API wrote, in UTC: moments compare the same whatever offset they carry."""
    return datetime.fromisoformat(text).astimezone(UTC)


def this_period() -> str:
    """The billing period (YYYY-MM) that holds today."""
    return paris_today().strftime("%Y-%m")
