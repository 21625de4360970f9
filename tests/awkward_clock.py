"""Runs the whole test session at an awkward instant of the communes' calendar.

A pytest plugin, loaded with `-p tests.awkward_clock` (`make test-clock`): when
`MUTUALIS_TEST_AT` holds an ISO instant (`2026-12-31T23:30:00Z`), the test process's clock
is moved there at session start and keeps ticking from it (time-machine), so that a "today"
read in UTC, a holiday, a week or a year that turns, or a morning digest shows up as a
failure whatever the hour the suite really runs at. A test that pins its own time with
time-machine still does (its travel nests inside this one).

Only the pytest process is moved: the unit tests, and the integration tests whose nameko
containers run in it. The end-to-end stack's processes (subprocesses) keep the real time,
and so does PostgreSQL's own `now()` (column defaults, `now()` in SQL), whatever the process.
A test that compares this process's clock with the database's reads the database's time
(test_event_lag's `database_clock`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

VARIABLE = "MUTUALIS_TEST_AT"

_travel: time_machine.travel | None = None


def awkward_instant() -> datetime | None:
    """The instant `MUTUALIS_TEST_AT` names, or None when the session runs at the real time.
    A naive instant is refused: UTC or Paris must be said, that is the whole point."""
    text = os.environ.get(VARIABLE, "").strip()
    if not text:
        return None
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise pytest.UsageError(f"{VARIABLE}={text!r} needs an offset (Z or +01:00)")
    return instant


def next_awkward_instants(today: date) -> list[datetime]:
    """The awkward instants `make test-clock` runs at, the next ones after `today` (never in
    PostgreSQL's past, which keeps the real time):
    - Sunday 23:30 UTC: Monday 00:30 in Paris, UTC's date a day behind, a new week;
    - 31 December 23:30 UTC: 1 January in Paris, a new year and a public holiday;
    - the spring clock change (last Sunday of March), 01:30 UTC: 03:30 in Paris just after
      the jump, on a 23-hour day;
    - 1 May 04:30 UTC: 06:30 in Paris on the Fête du Travail, before the 07:00 digest."""
    start = today + timedelta(days=1)
    sunday = start + timedelta(days=(6 - start.weekday()) % 7)

    def next_of(day_of: Callable[[int], date]) -> date:
        for year in (start.year, start.year + 1):
            found = day_of(year)
            if found >= start:
                return found
        raise AssertionError("unreachable: a date recurs every year")

    def last_sunday_of_march(year: int) -> date:
        end = date(year, 3, 31)
        return end - timedelta(days=(end.weekday() + 1) % 7)

    at = [
        (sunday, 23, 30),
        (next_of(lambda year: date(year, 12, 31)), 23, 30),
        (next_of(last_sunday_of_march), 1, 30),
        (next_of(lambda year: date(year, 5, 1)), 4, 30),
    ]
    return [datetime(d.year, d.month, d.day, h, m, tzinfo=UTC) for d, h, m in at]


def pytest_sessionstart(session):
    global _travel
    instant = awkward_instant()
    if instant is not None:
        _travel = time_machine.travel(instant, tick=True)
        _travel.start()
        time.time()  # time-machine's clock ticks from its first reading, not from its start


def pytest_sessionfinish(session, exitstatus):
    global _travel
    if _travel is not None:
        _travel.stop()
        _travel = None


def pytest_report_header(config):
    instant = awkward_instant()
    if instant is not None:
        return f"awkward clock: the session starts at {instant.isoformat()} ({VARIABLE})"
    return None


if __name__ == "__main__":  # `make test-clock` asks which instants to run at
    instants = next_awkward_instants(date.today())
    sys.stdout.write(" ".join(i.strftime("%Y-%m-%dT%H:%M:%SZ") for i in instants) + "\n")
