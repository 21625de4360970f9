"""The availability calendar of a listing: a month as weeks of days, each free, partly
taken, taken, closed or past. Pure."""

from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from contracts.clock import PARIS

STATE_LABELS = {
    "free": "libre",
    "partly": "en partie réservé",
    "busy": "réservé",
    "closed": "fermé",
    "past": "passé",
}


@dataclass(frozen=True)
class Day:
    day: date
    state: str  # free, partly, busy, closed, past
    note: str = ""

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state] + (f" ({self.note})" if self.note else "")


Period = tuple[datetime, datetime]


def day_bounds(day: date) -> Period:
    """A calendar day in Paris, as a UTC half-open period (23 or 25 hours on DST days)."""
    start = datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=PARIS).astimezone(UTC)
    return start, end


def _covered(bounds: Period, periods: list[Period]) -> str | None:
    """'all' if the periods cover the whole day, 'some' if they touch it, None if not."""
    start, end = bounds
    touching = sorted((max(s, start), min(e, end)) for s, e in periods if s < end and e > start)
    if not touching:
        return None
    reached = start
    for s, e in touching:
        if s > reached:
            return "some"
        reached = max(reached, e)
    return "all" if reached >= end else "some"


def month_grid(
    year: int,
    month: int,
    busy: list[Period],
    closed: list[tuple[datetime, datetime, str]],
    today: date,
) -> list[list[Day | None]]:
    """Weeks from Monday to Sunday; None pads the days of the neighbouring months."""
    weeks: list[list[Day | None]] = []
    for week in _calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
        row: list[Day | None] = []
        for day in week:
            if day.month != month:
                row.append(None)
                continue
            bounds = day_bounds(day)
            closure = next(
                (reason for s, e, reason in closed if s < bounds[1] and e > bounds[0]), None
            )
            taken = _covered(bounds, busy)
            if day < today:
                row.append(Day(day, "past"))
            elif closure is not None:
                row.append(Day(day, "closed", closure))
            elif taken == "all":
                row.append(Day(day, "busy"))
            elif taken == "some":
                row.append(Day(day, "partly"))
            else:
                row.append(Day(day, "free"))
        weeks.append(row)
    return weeks


def month_window(year: int, month: int) -> tuple[date, date]:
    """The first and last day of a month (for the availability query, `to` included)."""
    last = _calendar.monthrange(year, month)[1]
    return date(year, month, 1), date(year, month, last)


def shift_month(year: int, month: int, by: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + by
    return index // 12, index % 12 + 1


def parse_month(text: str | None, default: date) -> tuple[int, int]:
    """'2026-03' -> (2026, 3); anything else: the default's month."""
    try:
        year, month = (int(part) for part in (text or "").split("-"))
        if 1900 <= year <= 2999 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    return default.year, default.month
