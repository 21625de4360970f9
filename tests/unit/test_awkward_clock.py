"""The instants `make test-clock` runs at are the awkward ones it says, whatever today is."""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import pytest

from contracts.clock import PARIS
from tests.awkward_clock import next_awkward_instants

TODAYS = [date(2026, 12, 7) + timedelta(days=n) for n in range(0, 800, 23)]


@pytest.mark.parametrize("today", TODAYS, ids=str)
def test_each_instant_is_the_next_awkward_one_after_today(today):
    instants = next_awkward_instants(today)
    monday, new_year, clock_change, labour_day = (i.astimezone(PARIS) for i in instants)
    assert all(i.date() > today for i in (monday, new_year, clock_change, labour_day))
    # a Monday in Paris while UTC's date is still Sunday, within the week after today
    assert (instants[0].weekday(), monday.weekday()) == (6, 0)
    assert monday.date() - today <= timedelta(days=8)
    # 1 January in Paris, a public holiday
    assert (new_year.month, new_year.day, new_year.hour) == (1, 1, 0)
    assert new_year.date() in holidays.France(years=new_year.year)
    # just after the spring jump: summer time, on a day of 23 hours
    assert clock_change.utcoffset() == timedelta(hours=2)
    day_before = clock_change - timedelta(hours=3)
    assert day_before.astimezone(PARIS).utcoffset() == timedelta(hours=1)
    # the Fête du Travail before the 07:00 digest
    assert (labour_day.month, labour_day.day, labour_day.hour) == (5, 1, 6)
    assert labour_day.date() in holidays.France(years=labour_day.year)
