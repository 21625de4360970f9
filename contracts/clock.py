"""The communes' time: every "today" and "now" of the product is read here.

A commune's day is the day in Europe/Paris, which is not the machine's (UTC) date between
midnight in Paris and midnight UTC. Tests pin the clock with `time-machine`, which moves
what `datetime.now` answers, so nothing here takes a clock argument.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
# how the communes name their days and months (a page, a refusal, a timesheet rule)
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def now() -> datetime:
    """This instant, aware, in UTC (how instants are stored)."""
    return datetime.now(UTC)


def paris_date(moment: datetime) -> date:
    """The communes' calendar day of an instant."""
    return moment.astimezone(PARIS).date()


def paris_today(moment: datetime | None = None) -> date:
    """Today for the communes, or the day of `moment` in Paris."""
    return paris_date(moment or now())
