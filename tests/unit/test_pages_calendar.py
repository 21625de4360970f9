"""The availability calendar: a month as weeks of days with their state."""

from datetime import UTC, date, datetime

from gateway.pages.calendar import day_bounds, month_grid, parse_month, shift_month


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_a_month_is_weeks_from_monday_padded_with_none():
    weeks = month_grid(2026, 3, [], [], today=date(2026, 1, 1))
    assert all(len(week) == 7 for week in weeks)
    assert weeks[0][:6] == [None] * 6 and weeks[0][6].day == date(2026, 3, 1)  # a Sunday
    days = [d for week in weeks for d in week if d]
    assert len(days) == 31 and {d.state for d in days} == {"free"}


def test_busy_partly_closed_and_past_days():
    busy = [
        (utc(2026, 3, 9, 23), utc(2026, 3, 11, 23)),  # 10 and 11 March, Paris days
        (utc(2026, 3, 15, 8), utc(2026, 3, 15, 12)),  # a morning
    ]
    closed = [(utc(2026, 3, 19, 23), utc(2026, 3, 20, 23), "révision")]
    weeks = month_grid(2026, 3, busy, closed, today=date(2026, 3, 5))
    state = {d.day.day: d for week in weeks for d in week if d}
    assert state[4].state == "past" and state[5].state == "free"
    assert state[10].state == state[11].state == "busy"
    assert state[12].state == "free"
    assert state[15].state == "partly" and state[15].label == "en partie réservé"
    assert state[20].state == "closed" and state[20].label == "fermé (révision)"


def test_a_day_is_a_paris_day_even_when_the_clocks_change():
    start, end = day_bounds(date(2026, 3, 29))  # summer time starts
    assert end - start == datetime(2026, 1, 2) - datetime(2026, 1, 1, 1)  # 23 hours
    weeks = month_grid(2026, 3, [(start, end)], [], today=date(2026, 3, 1))
    assert next(d for w in weeks for d in w if d and d.day.day == 29).state == "busy"


def test_months_are_shifted_and_parsed_safely():
    assert shift_month(2026, 12, 1) == (2027, 1)
    assert shift_month(2026, 1, -1) == (2025, 12)
    assert parse_month("2026-03", date(2025, 7, 1)) == (2026, 3)
    for junk in ("", None, "2026-13", "mars", "99999-01"):
        assert parse_month(junk, date(2025, 7, 1)) == (2025, 7)
