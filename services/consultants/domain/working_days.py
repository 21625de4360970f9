"""Working days: French public holidays, periods of days, a consultant's calendar, and
days counted in whole half days."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache

from contracts.consultants import (
    AvailabilityKind,
    AvailabilityPeriod,
)

HALF = Decimal("0.5")


def half_days(days: Decimal) -> int:
    """Days are stored and summed as whole half days: exact on every database."""
    return int(days / HALF)


def as_days(half_day_count: int) -> Decimal:
    return (HALF * half_day_count).quantize(Decimal("0.1"))


# -- working days and calendars ---------------------------------------------------------


def easter(year: int) -> date:
    """Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


@cache
def public_holidays(year: int) -> tuple[date, ...]:
    """Public holidays of metropolitan France, sorted."""
    sunday = easter(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    days = [date(year, m, d) for m, d in fixed]
    days += [sunday + timedelta(days=n) for n in (1, 39, 50)]  # Monday, Ascension, Whit Monday
    return tuple(sorted(days))


def working_days(start: date, end: date) -> int:
    """Mondays to Fridays of [start, end) that are not public holidays."""
    if end <= start:
        return 0
    total = (end - start).days
    weeks, rest = divmod(total, 7)
    count = weeks * 5 + sum(1 for n in range(rest) if (start.weekday() + n) % 7 < 5)
    for year in range(start.year, end.year + 1):
        count -= sum(1 for h in public_holidays(year) if start <= h < end and h.weekday() < 5)
    return count


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year)


@dataclass(frozen=True)
class Period:
    """Half-open [start, end) of days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a period ends after it starts")


def merge(periods: Iterable[Period]) -> tuple[Period, ...]:
    merged: list[Period] = []
    for p in sorted(periods, key=lambda p: (p.start, p.end)):
        if merged and p.start <= merged[-1].end:
            merged[-1] = Period(merged[-1].start, max(merged[-1].end, p.end))
        else:
            merged.append(p)
    return tuple(merged)


@dataclass(frozen=True)
class Calendar:
    """When a consultant may be lent: inside the `available` periods if there are any, on
    every working day otherwise; never inside an `unavailable` one."""

    available: tuple[Period, ...] = ()
    unavailable: tuple[Period, ...] = ()

    @classmethod
    def of(cls, periods: Iterable[AvailabilityPeriod]) -> Calendar:
        periods = list(periods)
        return cls(
            available=merge(
                Period(p.start, p.end) for p in periods if p.kind == AvailabilityKind.AVAILABLE
            ),
            unavailable=merge(
                Period(p.start, p.end) for p in periods if p.kind == AvailabilityKind.UNAVAILABLE
            ),
        )

    @property
    def constrained(self) -> bool:
        return bool(self.available or self.unavailable)

    def open_periods(self, start: date, end: date) -> list[Period]:
        """The parts of [start, end) where the consultant may be lent."""
        if not self.available:
            open_ = [Period(start, end)] if start < end else []
        else:
            open_ = [
                Period(max(a.start, start), min(a.end, end))
                for a in self.available
                if a.start < end and a.end > start
            ]
        for u in self.unavailable:
            if u.end <= start or u.start >= end:
                continue
            rest = []
            for o in open_:
                if u.end <= o.start or u.start >= o.end:
                    rest.append(o)
                    continue
                if o.start < u.start:
                    rest.append(Period(o.start, u.start))
                if u.end < o.end:
                    rest.append(Period(u.end, o.end))
            open_ = rest
        return open_

    def open_days(self, start: date, end: date) -> int:
        """Working days of [start, end) on which the consultant may be lent."""
        if not self.constrained:
            return working_days(start, end)
        return sum(working_days(p.start, p.end) for p in self.open_periods(start, end))


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def months(start: date, end: date) -> list[Period]:
    """[start, end) cut at month boundaries."""
    parts, cursor = [], start
    while cursor < end:
        boundary = min(next_month(cursor), end)
        parts.append(Period(cursor, boundary))
        cursor = boundary
    return parts
