"""Working days: French public holidays (the holidays package), periods of days, a
consultant's calendar, and days counted in whole half days."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache

import holidays

from contracts.clock import MONTHS, WEEKDAYS
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

# Alsace-Moselle keeps its local law: Good Friday and 26 December are public holidays there.
# The holidays package knows it as two subdivisions of France: Moselle, and Alsace (both its
# départements).
LOCAL_LAW_SUBDIVISIONS = {"57": "57", "67": "6AE", "68": "6AE"}


def holiday_subdivision(commune: str) -> str | None:
    """Whose public holidays a commune keeps: its département's subdivision in the holidays
    package for Alsace-Moselle, None (metropolitan France) elsewhere."""
    return LOCAL_LAW_SUBDIVISIONS.get(commune[:2])


@cache
def _holidays(year: int, subdivision: str | None) -> dict[date, str]:
    """The public holidays of one year, by their French names."""
    return dict(holidays.France(years=year, subdiv=subdivision, language="fr"))


@cache
def public_holidays(year: int, subdivision: str | None = None) -> tuple[date, ...]:
    """Public holidays of metropolitan France (or of a subdivision, see
    holiday_subdivision), sorted."""
    return tuple(sorted(_holidays(year, subdivision)))


def holiday_name(day: date, subdivision: str | None = None) -> str | None:
    """The public holiday `day` is (e.g. "Noël"), or None."""
    return _holidays(day.year, subdivision).get(day)


def working_days(start: date, end: date, subdivision: str | None = None) -> int:
    """Mondays to Fridays of [start, end) that are not public holidays."""
    if end <= start:
        return 0
    total = (end - start).days
    weeks, rest = divmod(total, 7)
    count = weeks * 5 + sum(1 for n in range(rest) if (start.weekday() + n) % 7 < 5)
    for year in range(start.year, end.year + 1):
        count -= sum(
            1 for h in _holidays(year, subdivision) if start <= h < end and h.weekday() < 5
        )
    return count


def is_working_day(day: date, subdivision: str | None = None) -> bool:
    return why_not_working(day, subdivision) is None


def day_in_words(day: date) -> str:
    """ "samedi 12 décembre 2026": how a refusal names a day."""
    return f"{WEEKDAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"


def why_not_working(day: date, subdivision: str | None = None) -> str | None:
    """Why `day` is not a working day ("jour férié : Noël", "samedi"), or None if it is."""
    name = holiday_name(day, subdivision)
    if name is not None:
        return f"jour férié : {name}"
    if day.weekday() >= 5:
        return WEEKDAYS[day.weekday()]
    return None


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
    # whose public holidays: the consultant's home commune's (see holiday_subdivision)
    subdivision: str | None = None

    @classmethod
    def of(cls, periods: Iterable[AvailabilityPeriod], home_commune: str = "") -> Calendar:
        periods = list(periods)
        return cls(
            subdivision=holiday_subdivision(home_commune),
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
            return working_days(start, end, self.subdivision)
        return sum(
            working_days(p.start, p.end, self.subdivision) for p in self.open_periods(start, end)
        )


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
