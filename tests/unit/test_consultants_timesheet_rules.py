"""Days worked as communes live them: one person's day is one day across all their
engagements, weekends and public holidays (the holidays package, with Alsace-Moselle's own)
only as exceptional work with a reason, rejected timesheets corrected, undecided requests
expiring: the rules and the state machines, without a database."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import holidays
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.caller import Role
from contracts.consultants import (
    ENGAGEMENT_STEPS,
    TIMESHEET_STEPS,
    EngagementAction,
    EngagementStatus,
    TimesheetEntry,
    TimesheetStatus,
)
from contracts.errors import Conflict, InvalidInput
from services.consultants import domain
from services.consultants.domain import Calendar

SAINT_ETIENNE, METZ, STRASBOURG, MULHOUSE = "42218", "57463", "67482", "68224"
A, T = EngagementAction, TimesheetStatus


# -- the calendars, from the holidays package ---------------------------------------------


@pytest.mark.parametrize("subdivision", [None, "57", "6AE"])
def test_public_holidays_are_the_packages_from_1900_to_2100(subdivision):
    for year in range(1900, 2101):
        expected = holidays.France(years=year, subdiv=subdivision)
        assert domain.public_holidays(year, subdivision) == tuple(sorted(expected)), year


def test_alsace_moselle_communes_keep_good_friday_and_26_december():
    assert [domain.holiday_subdivision(c) for c in (SAINT_ETIENNE, METZ, STRASBOURG, MULHOUSE)] == [
        None,
        "57",
        "6AE",
        "6AE",
    ]
    good_friday, st_stephen = date(2026, 4, 3), date(2026, 12, 26)
    assert domain.is_working_day(good_friday)
    for commune in (METZ, STRASBOURG, MULHOUSE):
        local = domain.holiday_subdivision(commune)
        assert not domain.is_working_day(good_friday, local)
        assert domain.holiday_name(good_friday, local) == "Vendredi saint"
        assert domain.holiday_name(st_stephen, local) is not None
    assert domain.holiday_name(st_stephen) is None
    # April 2026 in Strasbourg: one working day fewer than in Saint-Étienne
    april = (date(2026, 4, 1), date(2026, 5, 1))
    assert domain.working_days(*april, "6AE") == domain.working_days(*april) - 1
    assert Calendar.of([], STRASBOURG).open_days(*april) == Calendar().open_days(*april) - 1


@given(st.dates(date(1900, 1, 1), date(2100, 12, 31)), st.sampled_from([None, "57", "6AE"]))
def test_a_working_day_is_a_weekday_the_package_does_not_name(day, subdivision):
    named = day in holidays.France(years=day.year, subdiv=subdivision)
    assert domain.is_working_day(day, subdivision) == (day.weekday() < 5 and not named)


@given(st.dates(date(1990, 1, 1), date(2090, 12, 31)), st.integers(0, 400))
def test_working_days_of_alsace_count_the_days_one_by_one(start, length):
    days = [start + timedelta(days=n) for n in range(length)]
    one_by_one = sum(domain.is_working_day(d, "6AE") for d in days)
    assert domain.working_days(start, start + timedelta(days=length), "6AE") == one_by_one


def test_refusals_name_the_day_in_french():
    assert domain.day_in_words(date(2026, 12, 12)) == "samedi 12 décembre 2026"
    assert domain.why_not_working(date(2026, 12, 12)) == "samedi"
    assert domain.why_not_working(date(2026, 12, 25)) == "jour férié : Noël"
    assert domain.why_not_working(date(2026, 12, 7)) is None


# -- the rules of days worked -------------------------------------------------------------

TERMS = dict(
    status=EngagementStatus.ACCEPTED,
    start=date(2026, 12, 1),
    end=date(2026, 12, 31),
    days_total=Decimal(10),
    days_recorded=Decimal(0),
    today=date(2026, 12, 30),
)
MONDAY = date(2026, 12, 7)


def refusal(**asked) -> list[dict]:
    with pytest.raises(InvalidInput) as refused:
        domain.check_timesheet(**(TERMS | asked))
    return refused.value.errors


def test_one_person_works_at_most_one_day_a_date_across_engagements():
    half, one = Decimal("0.5"), Decimal(1)
    domain.check_timesheet(**TERMS, work_date=MONDAY, days=half, recorded_that_day=half)
    domain.check_timesheet(**TERMS, work_date=MONDAY, days=one)
    (error,) = refusal(work_date=MONDAY, days=half, recorded_that_day=one)
    assert error["type"] == "one_day_per_date" and error["field"] == "days"
    assert error["days_left"] == "0"
    assert "lundi 7 décembre 2026" in error["message"] and "0 day(s) left" in error["message"]
    (error,) = refusal(work_date=MONDAY, days=one, recorded_that_day=half)
    assert error["days_left"] == "0.5"
    (error,) = refusal(work_date=MONDAY, days=Decimal("1.5"))
    assert error["days_left"] == "1"


@pytest.mark.parametrize(
    ("day", "named", "why"),
    [
        (date(2026, 12, 12), "samedi 12 décembre 2026", "samedi"),
        (date(2026, 12, 6), "dimanche 6 décembre 2026", "dimanche"),
        (date(2026, 12, 25), "vendredi 25 décembre 2026", "jour férié : Noël"),
    ],
)
def test_a_weekend_or_holiday_needs_exceptional_work_with_its_reason(day, named, why):
    (error,) = refusal(work_date=day, days=Decimal(1))
    assert error["field"] == "exceptional_work"
    assert error["type"] == "exceptional_work_required"
    assert (error["day"], error["why"]) == (named, why)
    assert named in error["message"] and why in error["message"]
    domain.check_timesheet(
        **TERMS, work_date=day, days=Decimal(1), exceptional_reason="Tempête, voirie coupée"
    )


def test_the_holiday_is_the_consultants_home_communes():
    st_stephen = date(2026, 12, 28) - timedelta(days=2)  # Saturday 26 December 2026
    good_friday = date(2026, 4, 3)
    terms = TERMS | {"start": date(2026, 4, 1), "end": date(2026, 4, 30)}
    domain.check_timesheet(**terms, work_date=good_friday, days=Decimal(1))
    with pytest.raises(InvalidInput) as refused:
        domain.check_timesheet(**terms, work_date=good_friday, days=Decimal(1), subdivision="57")
    assert refused.value.errors[0]["why"] == "jour férié : Vendredi saint"
    assert domain.why_not_working(st_stephen, "6AE").startswith("jour férié")


def test_exceptional_work_and_its_reason_go_together():
    entry = {"date": "2026-12-12", "days": 1}
    assert TimesheetEntry.model_validate(entry).exceptional_reason is None
    flagged = {"exceptional_work": True, "exceptional_reason": "Crue de la Loire"}
    assert TimesheetEntry.model_validate(entry | flagged).exceptional_reason == "Crue de la Loire"
    for wrong, kind in [
        ({"exceptional_work": True}, "exceptional_reason_required"),
        ({"exceptional_work": True, "exceptional_reason": " x "}, "exceptional_reason_required"),
        ({"exceptional_reason": "Crue"}, "exceptional_work_not_flagged"),
    ]:
        with pytest.raises(ValidationError) as refused:
            TimesheetEntry.model_validate(entry | wrong)
        (error,) = refused.value.errors()
        assert (error["loc"], error["type"]) == (("exceptional_reason",), kind)


# -- the timesheet and engagement state machines ------------------------------------------


def test_a_rejected_timesheet_is_corrected_then_approved():
    assert domain.next_timesheet_status(T.RECORDED, A.REJECT_TIMESHEET) == T.REJECTED
    assert domain.next_timesheet_status(T.REJECTED, A.CORRECT_TIMESHEET) == T.RECORDED
    assert domain.next_timesheet_status(T.RECORDED, A.APPROVE_TIMESHEET) == T.APPROVED
    for current, action in [
        (T.REJECTED, A.APPROVE_TIMESHEET),
        (T.APPROVED, A.REJECT_TIMESHEET),
        (T.RECORDED, A.CORRECT_TIMESHEET),
        (T.APPROVED, A.CORRECT_TIMESHEET),
    ]:
        with pytest.raises(Conflict):
            domain.next_timesheet_status(current, action)
    assert set(TIMESHEET_STEPS) == {A.APPROVE_TIMESHEET, A.REJECT_TIMESHEET, A.CORRECT_TIMESHEET}


def test_the_borrower_rejects_and_the_lender_corrects():
    borrower, lender, roles = "42218", "42095", {Role.AGENT}
    reject, correct = ENGAGEMENT_STEPS[A.REJECT_TIMESHEET], ENGAGEMENT_STEPS[A.CORRECT_TIMESHEET]
    assert reject.allowed("accepted", borrower, roles, borrower, lender)
    assert not reject.allowed("accepted", lender, roles, borrower, lender)
    assert correct.allowed("accepted", lender, roles, borrower, lender)
    assert not correct.allowed("accepted", borrower, roles, borrower, lender)
    assert not correct.allowed("completed", lender, roles, borrower, lender)


def test_a_completion_waits_for_rejected_days_to_be_corrected_and_approved():
    with pytest.raises(Conflict):
        domain.check_transition(
            "complete",
            EngagementStatus.ACCEPTED,
            start=date(2026, 12, 1),
            today=date(2026, 12, 30),
            timesheets=[T.APPROVED, T.REJECTED],
        )


def test_only_an_undecided_request_expires_and_no_one_expires_it_by_hand():
    expire = ENGAGEMENT_STEPS[A.EXPIRE]
    assert domain.next_status(EngagementStatus.REQUESTED, A.EXPIRE) == EngagementStatus.EXPIRED
    for decided in set(EngagementStatus) - {EngagementStatus.REQUESTED}:
        with pytest.raises(Conflict):
            domain.next_status(decided, A.EXPIRE)
    everyone = set(Role)
    assert not expire.allowed("requested", "42218", everyone, "42218", "42095")
    assert not expire.allowed("requested", "42095", everyone, "42218", "42095")
    with pytest.raises(Conflict):  # an expired request can no longer be accepted
        domain.next_status(EngagementStatus.EXPIRED, A.ACCEPT)
