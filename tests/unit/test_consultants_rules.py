"""Consultants' rules that the service calls and no unit test did: who may request an
engagement, change or see a consultant; whether the days asked are free, an acceptance
fits, and a lower monthly maximum still holds what was committed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from contracts.caller import Caller, Role
from contracts.consultants import (
    ConsultantStatus,
    EngagementAction,
    EngagementStatus,
    TimesheetStatus,
)
from contracts.errors import Conflict, Forbidden, InvalidInput
from services.consultants import domain
from services.consultants.domain import engagements, profiles

HOME, OTHER = "42095", "42218"
WEEK = domain.Period(date(2026, 3, 2), date(2026, 3, 7))  # Monday 2 to Friday 6 March
FULL = "The consultant has {} day(s) free between 2026-03-02 and 2026-03-06: their calendar, "


def caller(commune: str, *roles: Role) -> Caller:
    return Caller(user_id="u", commune=commune, roles=frozenset(roles))


@pytest.mark.parametrize("role", list(Role))
def test_only_an_agent_or_a_manager_requests_an_engagement(role):
    if role in (Role.AGENT, Role.MANAGER):
        engagements.ensure_may_request(caller(OTHER, role))
        return
    with pytest.raises(Forbidden) as raised:
        engagements.ensure_may_request(caller(OTHER, role))
    assert raised.value.detail == "Only an agent or a manager may request an engagement"


def test_a_consultant_the_caller_cannot_see_is_unknown():
    error = engagements.unknown_consultant()
    assert error.detail == "Unknown consultant"
    assert error.errors == [
        {"field": "consultant_id", "message": "no such consultant", "type": "unknown_consultant"}
    ]
    assert profiles.no_such_consultant("c-9").detail == "No consultant c-9"


def test_a_request_asks_no_more_than_the_days_still_free():
    held = [domain.Commitment("a", WEEK.start, WEEK.end, 2 * 3)]
    engagements.ensure_days_free(domain.Calendar(), 20, held, WEEK, Decimal("2"))
    with pytest.raises(Conflict) as raised:
        engagements.ensure_days_free(domain.Calendar(), 20, held, WEEK, Decimal("2.5"))
    assert raised.value.detail.startswith(FULL.format("2.0"))
    assert raised.value.detail.endswith(
        "monthly maximum and engagements already accepted leave no more"
    )
    assert raised.value.extra == {"available_days": "2.0"}
    engagements.ensure_days_free(domain.Calendar(), 20, [], WEEK, Decimal("5"))
    with pytest.raises(Conflict):
        engagements.ensure_days_free(domain.Calendar(), 20, [], WEEK, Decimal("5.5"))


def accept(engagement: domain.Commitment, today: date, *, published=True, held=(), maximum=20):
    return engagements.check_accept(
        EngagementStatus.REQUESTED,
        published=published,
        calendar=domain.Calendar(),
        max_days_per_month=maximum,
        held=list(held),
        engagement=engagement,
        today=today,
    )


def test_an_acceptance_commits_the_days_while_published_and_before_the_period_is_over():
    week = domain.Commitment("e", WEEK.start, WEEK.end, 2 * 5)
    assert accept(week, date(2026, 3, 6)) == EngagementStatus.ACCEPTED  # its last day
    with pytest.raises(Conflict) as raised:
        accept(week, date(2026, 3, 7))
    assert raised.value.detail == "The engagement's period is over"
    with pytest.raises(Conflict) as raised:
        accept(week, date(2026, 3, 1), published=False)
    assert raised.value.detail == "This consultant is withdrawn"
    with pytest.raises(Conflict) as raised:
        engagements.check_accept(
            EngagementStatus.ACCEPTED,
            published=True,
            calendar=domain.Calendar(),
            max_days_per_month=20,
            held=[],
            engagement=week,
            today=date(2026, 3, 1),
        )
    assert raised.value.detail == "A accepted engagement cannot accept"


def test_an_acceptance_that_does_not_fit_says_how_many_days_are_free():
    week = domain.Commitment("e", WEEK.start, WEEK.end, 2 * 3)
    held = [domain.Commitment("a", WEEK.start, WEEK.end, 2 * 2 + 1)]
    assert accept(week, date(2026, 3, 1), held=held[:0]) == EngagementStatus.ACCEPTED
    with pytest.raises(Conflict) as raised:
        accept(week, date(2026, 3, 1), held=held)
    assert raised.value.detail.startswith(FULL.format("2.5"))
    assert raised.value.extra == {"available_days": "2.5"}


def test_a_lower_monthly_maximum_must_still_hold_what_was_committed():
    held = [domain.Commitment("a", WEEK.start, WEEK.end, 2 * 4)]
    today = date(2026, 3, 1)
    profiles.ensure_commitments_fit(domain.Calendar(), 4, held, today, previous_max=20)
    profiles.ensure_commitments_fit(domain.Calendar(), 3, held, today, previous_max=3)  # same
    profiles.ensure_commitments_fit(domain.Calendar(), 3, [], today, previous_max=20)
    with pytest.raises(Conflict) as raised:
        profiles.ensure_commitments_fit(domain.Calendar(), 3, held, today, previous_max=20)
    assert raised.value.detail == (
        "The days already committed to engagements would no longer fit: change "
        "or cancel those engagements first"
    )
    with pytest.raises(Conflict):  # a calendar change is checked whatever the maximum
        profiles.ensure_commitments_fit(domain.Calendar(), 3, held, today)
    # only the months from today on are checked: January's days are behind
    january = [domain.Commitment("j", date(2026, 1, 5), date(2026, 1, 10), 2 * 4)]
    profiles.ensure_commitments_fit(domain.Calendar(), 3, january, today, previous_max=20)
    with pytest.raises(Conflict):
        profiles.ensure_commitments_fit(domain.Calendar(), 3, january, date(2026, 1, 9))


def test_a_manager_of_its_home_commune_changes_a_consultant_until_withdrawn():
    manager = caller(HOME, Role.MANAGER)
    profiles.ensure_changeable(manager, HOME, ConsultantStatus.PUBLISHED)
    with pytest.raises(Conflict) as raised:
        profiles.ensure_changeable(manager, HOME, ConsultantStatus.WITHDRAWN)
    assert raised.value.detail == "This consultant is withdrawn and can no longer change"
    with pytest.raises(Forbidden):
        profiles.ensure_changeable(caller(OTHER, Role.MANAGER), HOME, ConsultantStatus.PUBLISHED)
    with pytest.raises(Forbidden):
        profiles.ensure_changeable(caller(HOME, Role.AGENT), HOME, ConsultantStatus.PUBLISHED)


def test_a_withdrawn_consultant_is_seen_by_its_home_commune_only():
    assert profiles.visible(ConsultantStatus.PUBLISHED, HOME, OTHER)
    assert profiles.visible(ConsultantStatus.WITHDRAWN, HOME, HOME)
    assert not profiles.visible(ConsultantStatus.WITHDRAWN, HOME, OTHER)
    assert profiles.is_withdrawn("withdrawn") and not profiles.is_withdrawn("published")


def test_what_each_refused_step_says():
    with pytest.raises(Conflict) as raised:
        engagements.next_status(EngagementStatus.COMPLETED, "cancel")
    assert raised.value.detail == "A completed engagement cannot cancel"
    assert raised.value.extra == {"current_status": EngagementStatus.COMPLETED}
    with pytest.raises(Conflict) as raised:
        engagements.check_cancellable(date(2026, 3, 2), date(2026, 3, 2))
    assert raised.value.detail == "An engagement can only be cancelled before it starts"
    T, A = TimesheetStatus, EngagementAction
    refusals = [
        (T.APPROVED, A.REJECT_TIMESHEET, "These days are already approved"),
        (T.APPROVED, A.CORRECT_TIMESHEET, "These days are already approved"),
        (T.REJECTED, A.APPROVE_TIMESHEET, "Days rejected cannot be approved"),
        (T.REJECTED, A.REJECT_TIMESHEET, "Days rejected cannot be rejected"),
        (T.RECORDED, A.CORRECT_TIMESHEET, "Days recorded cannot be corrected"),
    ]
    for current, action, detail in refusals:
        with pytest.raises(Conflict) as raised:
            engagements.next_timesheet_status(current, action)
        assert raised.value.detail == detail
        assert raised.value.extra == {"current_status": current}


def test_days_in_the_future_name_the_date():
    with pytest.raises(InvalidInput) as raised:
        engagements.check_timesheet(
            status=EngagementStatus.ACCEPTED,
            start=date(2026, 3, 2),
            end=date(2026, 3, 7),
            days_total=Decimal(5),
            days_recorded=Decimal(0),
            work_date=date(2026, 3, 4),
            days=Decimal(1),
            today=date(2026, 3, 3),
        )
    assert raised.value.errors == [
        {"field": "date", "message": "is in the future", "type": "in_the_future"}
    ]


def test_who_may_not_change_a_consultant_is_told_why():
    with pytest.raises(Forbidden) as raised:
        profiles.ensure_manager_of(caller(HOME, Role.AGENT), HOME)
    assert raised.value.detail == "Only a manager may publish or change consultants"
    with pytest.raises(Forbidden) as raised:
        profiles.ensure_manager_of(caller(OTHER, Role.MANAGER), HOME)
    assert raised.value.detail == "This consultant belongs to another commune"


def test_an_engagement_is_completed_once_every_day_worked_is_approved():
    def complete(*timesheets):
        return engagements.check_transition(
            "complete",
            EngagementStatus.ACCEPTED,
            start=date(2026, 3, 2),
            today=date(2026, 3, 20),
            timesheets=timesheets,
        )

    assert complete(TimesheetStatus.APPROVED) == EngagementStatus.COMPLETED
    with pytest.raises(Conflict) as raised:
        complete(TimesheetStatus.APPROVED, TimesheetStatus.RECORDED)
    assert raised.value.detail == "Some days worked are not approved yet"
