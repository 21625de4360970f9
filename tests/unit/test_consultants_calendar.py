"""Consultants' dates and money at their edges: Easter and the holidays against dateutil,
month arithmetic across December, working days counted one by one, a calendar's open days,
half days and amounts rounded half up, engagement rules on their first and last days, and
who may do what to an engagement."""

from __future__ import annotations

import importlib
import itertools
from datetime import date, timedelta
from decimal import Decimal

import pytest
from dateutil.easter import EASTER_WESTERN, easter
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.caller import Caller, Role
from contracts.consultants import AvailabilityPeriod, EngagementStatus
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.consultants import domain

# the module, not the function `working_days` the package re-exports under the same name
calendar_rules = importlib.import_module("services.consultants.domain.working_days")
commitments = importlib.import_module("services.consultants.domain.commitments")

days = st.dates(min_value=date(1960, 1, 1), max_value=date(2100, 12, 31))
LENDER, BORROWER, STRANGER = "42095", "42218", "42044"


# -- Easter and the public holidays -----------------------------------------------------


# since 1982 (8 May a holiday again): earlier years had another list
@pytest.mark.parametrize("year", [1982, 2000, 2026, 2038, 2100])
def test_the_eleven_public_holidays_of_metropolitan_france(year):
    sunday = easter(year, EASTER_WESTERN)
    expected = sorted(
        [date(year, m, d) for m, d in [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1)]]
        + [date(year, 11, 11), date(year, 12, 25)]
        + [sunday + timedelta(days=1), sunday + timedelta(days=39), sunday + timedelta(days=50)]
    )
    assert domain.public_holidays(year) == tuple(expected)


def is_open(day: date) -> bool:
    return day.weekday() < 5 and day not in domain.public_holidays(day.year)


@settings(deadline=None)
@given(days, st.integers(min_value=-3, max_value=800))
def test_working_days_are_the_open_days_counted_one_by_one(start, length):
    end = start + timedelta(days=length)
    counted = sum(1 for n in range(max(length, 0)) if is_open(start + timedelta(days=n)))
    assert domain.working_days(start, end) == counted


def test_a_holiday_that_falls_on_another_is_one_day_off():
    """The hand-written table kept Ascension and 1 (or 8) May twice when they coincided (1975,
    1986, 1997, 2008, 2059, 2070, 2081, 2092), and working_days subtracted the day twice; the
    `holidays` package's calendar counts it once."""
    # 2008: Easter on 23 March, Ascension on Thursday 1 May
    assert len(set(domain.public_holidays(2008))) == len(domain.public_holidays(2008))
    # Monday 28 April to Friday 2 May: four working days, 1 May off once
    assert domain.working_days(date(2008, 4, 28), date(2008, 5, 5)) == 4


def test_working_days_across_new_year():
    # 28-31 December 2026 (Monday to Thursday); 1 January 2027 is a Friday and a holiday
    assert domain.working_days(date(2026, 12, 28), date(2027, 1, 4)) == 4
    assert domain.working_days(date(2026, 12, 28), date(2027, 1, 5)) == 5
    assert domain.working_days(date(2026, 12, 31), date(2027, 1, 1)) == 1
    assert domain.working_days(date(2027, 1, 1), date(2027, 1, 2)) == 0


@settings(deadline=None)
@given(days)
def test_a_working_day_is_a_weekday_that_is_no_holiday(day):
    assert domain.is_working_day(day) == is_open(day)
    assert domain.working_days(day, day + timedelta(days=1)) == int(is_open(day))


# -- months -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "following"),
    [
        (date(2026, 12, 31), date(2027, 1, 1)),
        (date(2026, 12, 1), date(2027, 1, 1)),
        (date(2026, 11, 30), date(2026, 12, 1)),
        (date(2026, 1, 31), date(2026, 2, 1)),
        (date(2028, 2, 29), date(2028, 3, 1)),
    ],
)
def test_next_month_is_the_first_of_the_following_month(day, following):
    assert calendar_rules.next_month(day) == following
    assert calendar_rules.month_start(day) == day.replace(day=1)
    assert commitments.next_month_end(following) == following  # a period ending on the 1st
    assert commitments.next_month_end(following + timedelta(days=1)) == calendar_rules.next_month(
        following
    )


@settings(deadline=None)
@given(days, st.integers(min_value=0, max_value=800))
def test_months_cut_a_period_at_each_first_of_the_month(start, length):
    end = start + timedelta(days=length)
    parts = calendar_rules.months(start, end)
    assert sum((p.end - p.start).days for p in parts) == length
    assert all(p.start < p.end for p in parts)
    if parts:
        assert parts[0].start == start and parts[-1].end == end
    for before, after in itertools.pairwise(parts):
        assert before.end == after.start and after.start.day == 1
    for p in parts:
        assert (p.end - timedelta(days=1)).month == p.start.month


def test_december_to_february_is_three_parts():
    assert calendar_rules.months(date(2026, 12, 15), date(2027, 2, 10)) == [
        domain.Period(date(2026, 12, 15), date(2027, 1, 1)),
        domain.Period(date(2027, 1, 1), date(2027, 2, 1)),
        domain.Period(date(2027, 2, 1), date(2027, 2, 10)),
    ]


# -- calendars --------------------------------------------------------------------------

periods = st.lists(
    st.tuples(st.sampled_from(["available", "unavailable"]), days, st.integers(1, 60)),
    max_size=5,
)


@settings(deadline=None, max_examples=min(60, settings.default.max_examples))
@given(periods, days, st.integers(min_value=0, max_value=120))
def test_open_days_are_the_working_days_the_calendar_opens(given_periods, start, length):
    end = start + timedelta(days=length)
    calendar = domain.Calendar.of(
        AvailabilityPeriod(kind=kind, start=first, end=first + timedelta(days=n))
        for kind, first, n in given_periods
    )

    def may_lend(day: date) -> bool:
        inside = [(k, s, s + timedelta(days=n)) for k, s, n in given_periods if s <= day]
        inside = [k for k, s, e in inside if day < e]
        if "unavailable" in inside:
            return False
        return "available" in inside or not any(k == "available" for k, _, _ in given_periods)

    wanted = [start + timedelta(days=n) for n in range(length)]
    assert calendar.open_days(start, end) == sum(1 for d in wanted if may_lend(d) and is_open(d))
    opened = {
        p.start + timedelta(days=n)
        for p in calendar.open_periods(start, end)
        for n in range((p.end - p.start).days)
    }
    assert opened == {d for d in wanted if may_lend(d)}


def test_merge_joins_touching_periods_and_keeps_gaps():
    p = domain.Period
    merged = calendar_rules.merge(
        [p(date(2026, 1, 5), date(2026, 1, 9)), p(date(2026, 1, 1), date(2026, 1, 5))]
    )
    assert merged == (p(date(2026, 1, 1), date(2026, 1, 9)),)
    apart = calendar_rules.merge(
        [p(date(2026, 1, 1), date(2026, 1, 4)), p(date(2026, 1, 5), date(2026, 1, 9))]
    )
    assert len(apart) == 2
    with pytest.raises(ValueError):
        p(date(2026, 1, 2), date(2026, 1, 1))


# -- half days and money ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_", "rate", "cents"),
    [("0.5", 1, 1), ("2.5", 1, 3), ("1.5", 1, 2), ("0.5", 45001, 22501), ("3", 45000, 135000)],
)
def test_amounts_round_half_a_cent_up(days_, rate, cents):
    assert domain.amount_cents(Decimal(days_), rate) == cents


@given(st.integers(min_value=0, max_value=1000))
def test_half_days_and_days_round_trip(count):
    shown = domain.as_days(count)
    assert shown == Decimal(count) / 2 and str(shown).endswith((".0", ".5"))
    assert domain.half_days(shown) == count


# -- engagement rules on their first and last days --------------------------------------


def request(start: date, end: date, days_: str, today: date) -> list[str]:
    try:
        domain.check_request(
            published=True,
            home_commune=LENDER,
            borrower=BORROWER,
            start=start,
            end=end,
            days=Decimal(days_),
            calendar=domain.Calendar(),
            today=today,
        )
    except InvalidInput as exc:
        return [e["type"] for e in exc.errors]
    return []


def test_a_request_may_start_today_and_ask_every_open_day():
    monday, next_monday = date(2026, 12, 7), date(2026, 12, 14)
    assert request(monday, next_monday, "5", today=monday) == []
    assert request(monday, next_monday, "5.5", today=monday) == ["beyond_period"]
    assert request(monday, next_monday, "1", today=monday + timedelta(days=1)) == ["in_the_past"]


def test_cancelling_is_possible_until_the_day_before_the_start():
    start = date(2026, 12, 7)
    domain.check_cancellable(start, start - timedelta(days=1))
    with pytest.raises(Conflict):
        domain.check_cancellable(start, start)


def timesheet(work_date: date, days_: str, today: date, recorded: str = "0") -> list[str]:
    try:
        domain.check_timesheet(
            status=EngagementStatus.ACCEPTED,
            start=date(2026, 12, 7),
            end=date(2026, 12, 12),
            days_total=Decimal("3"),
            days_recorded=Decimal(recorded),
            work_date=work_date,
            days=Decimal(days_),
            today=today,
            exceptional_reason="astreinte",  # weekends are not what this is about
        )
    except InvalidInput as exc:
        return [e["type"] for e in exc.errors]
    return []


def test_days_are_recorded_from_the_first_to_the_last_day_up_to_today():
    today = date(2026, 12, 20)
    assert timesheet(date(2026, 12, 7), "1", today) == []
    assert timesheet(date(2026, 12, 11), "1", today) == []
    assert timesheet(date(2026, 12, 12), "1", today) == ["out_of_period"]
    assert timesheet(date(2026, 12, 6), "1", today) == ["out_of_period"]
    assert timesheet(date(2026, 12, 9), "1", today=date(2026, 12, 9)) == []
    assert timesheet(date(2026, 12, 9), "1", today=date(2026, 12, 8)) == ["in_the_future"]
    assert timesheet(date(2026, 12, 8), "1", today, recorded="2") == []
    # 1.5 days on one date also breaks the one-day rule
    assert timesheet(date(2026, 12, 8), "1.5", today, recorded="2") == [
        "beyond_engagement",
        "one_day_per_date",
    ]


def test_days_are_recorded_on_accepted_engagements_only():
    for status in set(EngagementStatus) - {EngagementStatus.ACCEPTED}:
        with pytest.raises(Conflict):
            domain.check_timesheet(
                status=status,
                start=date(2026, 12, 7),
                end=date(2026, 12, 12),
                days_total=Decimal("3"),
                days_recorded=Decimal("0"),
                work_date=date(2026, 12, 7),
                days=Decimal("1"),
                today=date(2026, 12, 20),
            )


# -- who may do what --------------------------------------------------------------------


def who(commune: str, *roles: Role) -> Caller:
    return Caller(user_id="u", commune=commune, roles=frozenset(roles))


def allowed(caller: Caller, action: str) -> str:
    try:
        domain.ensure_may(caller, action, BORROWER, LENDER)
    except Forbidden:
        return "forbidden"
    except NotFound:
        return "not found"
    return "ok"


@pytest.mark.parametrize("role", list(Role))
def test_each_action_by_role_and_commune(role):
    expected = {
        # (commune, action): outcome for an agent; managers may all an agent may
        (LENDER, "accept"): "ok" if role == Role.MANAGER else "forbidden",
        (BORROWER, "accept"): "forbidden",
        (LENDER, "record_timesheet"): "ok" if role in (Role.AGENT, Role.MANAGER) else "forbidden",
        (BORROWER, "record_timesheet"): "forbidden",
        (BORROWER, "approve_timesheet"): "ok"
        if role in (Role.AGENT, Role.MANAGER)
        else "forbidden",
        (LENDER, "approve_timesheet"): "forbidden",
        (BORROWER, "cancel"): "ok" if role in (Role.AGENT, Role.MANAGER) else "forbidden",
        (LENDER, "cancel"): "ok" if role in (Role.AGENT, Role.MANAGER) else "forbidden",
        (STRANGER, "cancel"): "forbidden" if role == Role.OPERATOR else "not found",
        (STRANGER, "accept"): "forbidden" if role == Role.OPERATOR else "not found",
    }
    actual = {(c, a): allowed(who(c, role), a) for c, a in expected}
    assert actual == expected


@pytest.mark.parametrize(
    ("caller", "action", "detail"),
    [
        (
            who(BORROWER, Role.MANAGER),
            "accept",
            "Only a manager of the consultant's commune may do this",
        ),
        (who(LENDER, Role.FINANCE), "cancel", "Only an agent or a manager may do this"),
        (
            who(BORROWER, Role.AGENT),
            "record_timesheet",
            "Only the consultant's commune records the days worked",
        ),
        (
            who(LENDER, Role.AGENT),
            "approve_timesheet",
            "Only the commune that engaged the consultant approves the days",
        ),
        (
            who(STRANGER, Role.OPERATOR, Role.AGENT),
            "cancel",
            "Only the two communes concerned may do this",
        ),
    ],
)
def test_what_a_refusal_says(caller, action, detail):
    with pytest.raises(Forbidden) as raised:
        domain.ensure_may(caller, action, BORROWER, LENDER)
    assert raised.value.detail == detail


def test_a_stranger_is_told_the_engagement_does_not_exist():
    with pytest.raises(NotFound) as raised:
        domain.ensure_may(who(STRANGER, Role.MANAGER), "cancel", BORROWER, LENDER)
    assert raised.value.detail == "No such engagement"


def test_what_a_broken_request_says():
    with pytest.raises(InvalidInput) as raised:
        domain.check_request(
            published=False,
            home_commune=BORROWER,
            borrower=BORROWER,
            start=date(2026, 12, 7),
            end=date(2026, 12, 14),
            days=Decimal("6"),
            calendar=domain.Calendar(),
            today=date(2026, 12, 8),
        )
    assert raised.value.detail == "The request breaks the engagement rules"
    assert raised.value.errors == [
        {"field": "consultant_id", "message": "this consultant is withdrawn", "type": "withdrawn"},
        {
            "field": "consultant_id",
            "message": "a commune does not engage its own staff",
            "type": "own_consultant",
        },
        {"field": "start", "message": "is in the past", "type": "in_the_past"},
        {
            "field": "days",
            "message": "the consultant has 5 working day(s) open in this period",
            "type": "beyond_period",
        },
    ]


def test_what_a_broken_timesheet_says():
    with pytest.raises(InvalidInput) as raised:
        domain.check_timesheet(
            status=EngagementStatus.ACCEPTED,
            start=date(2026, 12, 7),
            end=date(2026, 12, 12),
            days_total=Decimal("3"),
            days_recorded=Decimal("2.5"),
            work_date=date(2026, 12, 12),
            days=Decimal("1"),
            today=date(2026, 12, 20),
            exceptional_reason="astreinte",  # a Saturday
        )
    assert raised.value.detail == "The timesheet breaks the engagement's terms"
    assert raised.value.errors == [
        {
            "field": "date",
            "message": "must be within the engagement's period",
            "type": "out_of_period",
        },
        {
            "field": "days",
            "message": "only 0.5 day(s) of the engagement are left",
            "type": "beyond_engagement",
        },
    ]
    with pytest.raises(Conflict) as raised:
        domain.check_timesheet(
            status=EngagementStatus.REQUESTED,
            start=date(2026, 12, 7),
            end=date(2026, 12, 12),
            days_total=Decimal("3"),
            days_recorded=Decimal("0"),
            work_date=date(2026, 12, 8),
            days=Decimal("1"),
            today=date(2026, 12, 20),
        )
    assert raised.value.detail == "Days are recorded on accepted engagements, not requested ones"


def test_an_operator_who_is_also_a_manager_elsewhere_acts_on_nothing():
    caller = who(STRANGER, Role.OPERATOR, Role.MANAGER)
    assert allowed(caller, "cancel") == "forbidden"
    assert allowed(caller, "accept") == "forbidden"


@pytest.mark.parametrize("roles", [(Role.AGENT,), (Role.FINANCE,), (Role.OPERATOR,), ()])
def test_only_a_manager_of_the_home_commune_changes_a_profile(roles):
    with pytest.raises(Forbidden):
        domain.ensure_manager_of(who(LENDER, *roles), LENDER)
    with pytest.raises(Forbidden):
        domain.ensure_manager_of(who(BORROWER, Role.MANAGER), LENDER)
    domain.ensure_manager_of(who(LENDER, Role.MANAGER, *roles), LENDER)


# -- calendars, commitments and free days at their edges --------------------------------


def march(day: int) -> date:
    return date(2026, 3, day)


def spans(*days: tuple[int, int]) -> tuple[domain.Period, ...]:
    return tuple(domain.Period(march(a), march(b)) for a, b in days)


@pytest.mark.parametrize(
    ("available", "unavailable", "window", "open_"),
    [
        ((), ((1, 2),), (10, 10), ()),  # an empty window opens nothing
        ((), ((5, 10),), (10, 20), ((10, 20),)),  # unavailable until the window starts
        ((), ((20, 25),), (10, 20), ((10, 20),)),  # unavailable from its end
        ((), ((5, 25),), (10, 20), ()),  # unavailable over all of it
        ((), ((10, 15),), (10, 20), ((15, 20),)),  # from its first day
        ((), ((15, 20),), (10, 20), ((10, 15),)),  # to its last day
        ((), ((12, 14),), (10, 20), ((10, 12), (14, 20))),
        (((2, 10),), (), (10, 20), ()),  # available until the window starts
        (((20, 25),), (), (10, 20), ()),  # available from its end
        (((5, 12), (18, 25)), ((11, 19),), (10, 20), ((10, 11), (19, 20))),
        (((12, 14),), ((12, 14),), (10, 20), ()),  # unavailable where it is available
        ((), ((1, 3), (12, 14)), (10, 20), ((10, 12), (14, 20))),  # one outside, one in
        (((10, 12), (15, 20)), ((16, 17),), (10, 20), ((10, 12), (15, 16), (17, 20))),
    ],
)
def test_open_periods_at_the_edges_of_the_window_and_of_each_period(
    available, unavailable, window, open_
):
    calendar = domain.Calendar(available=spans(*available), unavailable=spans(*unavailable))
    assert calendar.open_periods(march(window[0]), march(window[1])) == list(spans(*open_))


def test_only_commitments_sharing_a_month_not_touching_one_are_entangled():
    window = domain.Period(date(2026, 6, 8), date(2026, 6, 13))
    in_june = domain.Commitment("a", date(2026, 5, 25), date(2026, 6, 5), 2)
    ends_with_may = domain.Commitment("b", date(2026, 4, 20), date(2026, 5, 1), 2)
    starts_with_july = domain.Commitment("c", date(2026, 7, 1), date(2026, 7, 10), 2)
    nothing_held = domain.Commitment("d", date(2026, 6, 8), date(2026, 6, 9), 0)
    late_june = domain.Commitment("e", date(2026, 6, 20), date(2026, 6, 25), 1)
    given_ = [starts_with_july, nothing_held, late_june, ends_with_may, in_june]
    assert domain.entangled(given_, window) == [in_june, late_june]
    ends_with_may_alone = domain.Commitment("f", date(2026, 5, 4), date(2026, 6, 1), 2)
    assert domain.entangled([ends_with_may_alone], window) == []
    assert commitments.next_month_end(date(2026, 6, 1)) == date(2026, 6, 1)
    assert commitments.next_month_end(date(2026, 6, 2)) == date(2026, 7, 1)
    assert commitments.next_month_end(date(2027, 1, 1)) == date(2027, 1, 1)


def test_nothing_held_fits_and_frees_nothing_without_a_window():
    assert domain.free_half_days(domain.Calendar(), 8, []) == (True, 0)
    none = domain.Commitment("a", march(2), march(6), 0)
    assert domain.free_half_days(domain.Calendar(), 8, [none]) == (True, 0)
    assert domain.commitments_fit(domain.Calendar(), 0, [none])


def test_a_week_frees_its_five_working_days_and_no_weekend():
    week = domain.Period(march(2), march(9))  # Monday to Sunday
    assert domain.free_half_days(domain.Calendar(), 20, [], week) == (True, 2 * 5)
    one_day = domain.Period(march(3), march(4))
    assert domain.free_half_days(domain.Calendar(), 20, [], one_day) == (True, 2)
    weekend = domain.Period(march(7), march(9))
    assert domain.free_half_days(domain.Calendar(), 20, [], weekend) == (True, 0)


def test_free_days_across_two_months_are_capped_month_by_month():
    window = domain.Period(date(2026, 3, 30), date(2026, 4, 4))  # 30, 31 March, 1-3 April
    assert domain.free_half_days(domain.Calendar(), 1, [], window) == (True, 2 + 2)
    assert domain.free_half_days(domain.Calendar(), 2, [], window) == (True, 4 + 4)
    held = [domain.Commitment("a", date(2026, 4, 1), date(2026, 4, 3), 3)]
    assert domain.free_half_days(domain.Calendar(), 2, held, window) == (True, 4 + 1)


def test_a_closed_calendar_frees_nothing_and_fits_no_day():
    closed = domain.Calendar(unavailable=spans((1, 31)))
    window = domain.Period(march(2), march(7))
    assert domain.free_half_days(closed, 20, [], window) == (True, 0)
    held = [domain.Commitment("a", march(2), march(7), 1)]
    assert domain.free_half_days(closed, 20, held, window) == (False, 0)
    exactly = [domain.Commitment("a", march(2), march(7), 2 * 5)]
    assert domain.free_half_days(domain.Calendar(), 5, exactly, window) == (True, 0)
    assert domain.free_half_days(domain.Calendar(), 4, exactly, window)[0] is False


def test_a_period_may_be_empty_but_not_end_before_it_starts():
    assert domain.Period(march(2), march(2)).start == march(2)
    with pytest.raises(ValueError, match=r"^a period ends after it starts$"):
        domain.Period(march(3), march(2))


def test_a_constrained_calendar_keeps_its_home_communes_holidays():
    # Good Friday, 3 April 2026, is a public holiday in Moselle only
    week = (date(2026, 3, 30), date(2026, 4, 4))
    unavailable = AvailabilityPeriod(
        kind="unavailable", start=date(2026, 5, 4), end=date(2026, 5, 5)
    )
    assert domain.Calendar.of([unavailable], home_commune="57463").open_days(*week) == 4
    assert domain.Calendar.of([unavailable], home_commune="42218").open_days(*week) == 5
    assert domain.Calendar.of([unavailable]).open_days(*week) == 5


def test_commitments_without_a_window_free_nothing_and_fit_only_their_own_days():
    held = [domain.Commitment("a", march(2), march(7), 2)]
    assert domain.free_half_days(domain.Calendar(), 20, held) == (True, 0)
    weekend = domain.Period(march(7), march(9))
    next_week = [domain.Commitment("b", march(9), march(14), 2)]
    assert domain.free_half_days(domain.Calendar(), 20, next_week, weekend) == (True, 0)
    away_first_week = domain.Calendar(unavailable=spans((1, 8)))
    window = domain.Period(march(9), march(14))
    assert domain.free_half_days(away_first_week, 20, held, window) == (False, 10)


def test_days_placed_in_one_month_free_the_next():
    # 7 half days from 24 March to 10 April fit in March (10 at most a month), so the
    # window's four April days (Easter Monday, 6 April, is off) stay free: no more
    held = [domain.Commitment("a", march(24), date(2026, 4, 11), 7)]
    window = domain.Period(date(2026, 4, 5), date(2026, 4, 12))
    assert domain.free_half_days(domain.Calendar(), 5, held, window) == (True, 8)


def test_days_moved_between_months_to_fit_leave_exactly_what_is_free():
    # April (Easter Monday off) holds 12 of b's and c's 14 half days; 2 go to 30-31 March,
    # beside a's 6: 12 - 8 = 4 half days of March are left for the window
    held = [
        domain.Commitment("a", march(6), march(23), 6),
        domain.Commitment("b", march(29), date(2026, 4, 16), 3),
        domain.Commitment("c", march(30), date(2026, 4, 16), 11),
    ]
    window = domain.Period(march(18), march(30))
    assert domain.free_half_days(domain.Calendar(), 6, held, window) == (True, 4)
