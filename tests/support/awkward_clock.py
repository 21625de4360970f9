"""Runs the whole test session at an awkward instant of the communes' calendar.

A pytest plugin, loaded with `-p tests.support.awkward_clock` (`make test-clock`): when
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
import time
from datetime import datetime

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
