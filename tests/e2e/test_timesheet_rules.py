"""Days worked as communes live them, through the gateway on both databases: Firminy's
urbanist works for Saint-Étienne and Saint-Chamond at once; both communes' engagements race
to record the same Sunday and only one day passes; a public holiday needs the exceptional
work flag and its reason; Saint-Étienne rejects days with a reason, Firminy corrects them,
Saint-Étienne approves them. Every refusal is a problem+json naming its rule and stores
nothing."""

from __future__ import annotations

import threading
import uuid
from datetime import date, timedelta
from decimal import Decimal

import holidays
import pytest
import requests
from sqlalchemy import text

from tests.e2e.test_consultants_flow import consent
from tests.support import assert_problem, paris_today

FIRMINY, SAINT_ETIENNE, SAINT_CHAMOND = "42095", "42218", "42207"
ENGAGEMENTS = "/api/v1/engagements"
FLOOD = {"exceptional_work": True, "exceptional_reason": "Crue de l'Ondaine : plan communal"}


def last_sunday() -> date:
    today = paris_today()
    return today - timedelta(days=(today.weekday() + 1) % 7)


def last_weekday_holiday() -> tuple[date, str]:
    """The latest public holiday of metropolitan France before today that fell on a weekday."""
    today = paris_today()
    known = holidays.France(years=[today.year - 1, today.year], language="fr")
    day = max(d for d in known if d < today and d.weekday() < 5)
    return day, known[day]


@pytest.fixture
def consultants_db(stack):
    return stack.database("consultants")


@pytest.fixture
def urbanist_lent_twice(stack, consultants_db):
    """Firminy's urbanist, engaged by Saint-Étienne and by Saint-Chamond, both accepted.
    The stack cannot travel in time: both engagements are then moved to have started on
    the last weekday holiday, as if agreed weeks ago, so that past days can be recorded."""
    firminy = stack.as_role("manager", FIRMINY)
    published = firminy.post(
        f"{stack.url}/api/v1/consultants",
        json={
            "name": f"Claire Besson {uuid.uuid4().hex[:6]}",
            "title": "Urbaniste, cheffe de projet PLU",
            "skills": ["plu"],
            "day_rate_cents": 60000,
            "max_days_per_month": 20,
        },
    )
    assert published.status_code == 201, published.text
    today = paris_today()
    paths = {}
    for commune in (SAINT_ETIENNE, SAINT_CHAMOND):
        asked = stack.as_role("agent", commune).post(
            f"{stack.url}{ENGAGEMENTS}",
            json={
                "consultant_id": published.json()["id"],
                "start": today.isoformat(),
                "end": (today + timedelta(days=14)).isoformat(),
                "days": 5,
                "mission": "Révision du PLU",
            },
        )
        assert asked.status_code == 201, asked.text
        path = f"{stack.url}{ENGAGEMENTS}/{asked.json()['id']}"
        accepted = firminy.post(f"{path}/accept", json=consent())
        assert accepted.status_code == 200, accepted.text
        paths[commune] = path
    holiday, _ = last_weekday_holiday()
    with consultants_db.begin() as conn:
        conn.execute(
            text("UPDATE engagements SET start = :start WHERE consultant_id = :id"),
            {"start": holiday, "id": published.json()["id"]},
        )
    return published.json()["id"], paths


def stored(engine, consultant_id: str) -> list[tuple]:
    with engine.connect() as conn:
        return [
            (date.fromisoformat(str(r[0])), r[1], r[2])  # SQLite answers a date as text
            for r in conn.execute(
                text(
                    "SELECT t.work_date, t.half_days, t.status FROM timesheets t "
                    "JOIN engagements e ON e.id = t.engagement_id "
                    "WHERE e.consultant_id = :id ORDER BY t.work_date, t.half_days"
                ),
                {"id": consultant_id},
            )
        ]


def test_one_persons_day_holidays_and_a_rejected_timesheet(
    stack, consultants_db, urbanist_lent_twice
):
    consultant_id, paths = urbanist_lent_twice
    firminy = stack.as_role("manager", FIRMINY)
    sunday = last_sunday()

    # two engagements of one expert race to record the same Sunday: one day passes
    barrier = threading.Barrier(2)
    answers: dict[str, requests.Response] = {}

    def record(commune: str) -> None:
        session = requests.Session()  # one connection each: truly concurrent requests
        session.headers.update(firminy.headers)
        barrier.wait()
        answers[commune] = session.post(
            f"{paths[commune]}/timesheets",
            json={"date": sunday.isoformat(), "days": 1, **FLOOD},
            timeout=30,
        )

    threads = [threading.Thread(target=record, args=(c,)) for c in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(a.status_code for a in answers.values()) == [201, 422]
    (lost,) = [a for a in answers.values() if a.status_code == 422]
    (error,) = assert_problem(lost, 422)["errors"]
    assert (error["field"], error["type"], error["days_left"]) == ("days", "one_day_per_date", "0")
    assert "dimanche" in error["message"]
    assert stored(consultants_db, consultant_id) == [(sunday, 2, "recorded")]

    # half a day more on that Sunday, through either engagement: refused, nothing stored
    for path in paths.values():
        half = firminy.post(
            f"{path}/timesheets", json={"date": sunday.isoformat(), "days": 0.5, **FLOOD}
        )
        assert assert_problem(half, 422)["errors"][0]["type"] == "one_day_per_date"
    assert stored(consultants_db, consultant_id) == [(sunday, 2, "recorded")]

    # a public holiday needs the exceptional work flag and its reason
    holiday, name = last_weekday_holiday()
    saint_etienne = paths[SAINT_ETIENNE]
    plain = firminy.post(
        f"{saint_etienne}/timesheets", json={"date": holiday.isoformat(), "days": 1}
    )
    (error,) = assert_problem(plain, 422)["errors"]
    assert (error["field"], error["type"]) == ("exceptional_work", "exceptional_work_required")
    assert error["why"] == f"jour férié : {name}" and f"jour férié : {name}" in error["message"]
    unexplained = firminy.post(
        f"{saint_etienne}/timesheets",
        json={"date": holiday.isoformat(), "days": 1, "exceptional_work": True},
    )
    assert assert_problem(unexplained, 422)["errors"][0]["field"] == "exceptional_reason"
    assert stored(consultants_db, consultant_id) == [(sunday, 2, "recorded")]
    flagged = firminy.post(
        f"{saint_etienne}/timesheets", json={"date": holiday.isoformat(), "days": 1, **FLOOD}
    )
    assert flagged.status_code == 201, flagged.text
    (sheet,) = [t for t in flagged.json()["timesheets"] if t["date"] == holiday.isoformat()]
    assert sheet["exceptional_reason"] == FLOOD["exceptional_reason"]

    # Saint-Étienne rejects those days with a reason; Firminy corrects them
    agent = stack.as_role("agent", SAINT_ETIENNE)
    sheet_path = f"{saint_etienne}/timesheets/{sheet['id']}"
    assert_problem(agent.post(f"{sheet_path}/reject", json={}), 422)  # a reason is required
    assert_problem(firminy.post(f"{sheet_path}/reject", json={"reason": "Pas chez nous"}), 403)
    rejected = agent.post(f"{sheet_path}/reject", json={"reason": "Une demi-journée seulement"})
    assert rejected.status_code == 200, rejected.text
    (seen,) = [t for t in rejected.json()["timesheets"] if t["id"] == sheet["id"]]
    assert (seen["status"], seen["rejection_reason"]) == ("rejected", "Une demi-journée seulement")
    assert_problem(agent.post(f"{sheet_path}/approve"), 409)  # rejected days are corrected first
    assert_problem(agent.post(f"{sheet_path}/correct", json={"days": 0.5, **FLOOD}), 403)
    too_much = firminy.post(f"{sheet_path}/correct", json={"days": 1.5, **FLOOD})
    assert assert_problem(too_much, 422)["errors"][0]["type"] == "one_day_per_date"
    corrected = firminy.post(
        f"{sheet_path}/correct", json={"days": 0.5, "note": "Matinée seulement", **FLOOD}
    )
    assert corrected.status_code == 200, corrected.text
    (seen,) = [t for t in corrected.json()["timesheets"] if t["id"] == sheet["id"]]
    assert (seen["status"], Decimal(seen["days"]), seen["note"]) == (
        "recorded",
        Decimal("0.5"),
        "Matinée seulement",
    )
    assert seen["rejection_reason"] == "Une demi-journée seulement"  # kept, for the history
    assert_problem(firminy.post(f"{sheet_path}/correct", json={"days": 0.5, **FLOOD}), 409)
    approved = agent.post(f"{sheet_path}/approve")
    assert approved.status_code == 200, approved.text
    assert sorted(stored(consultants_db, consultant_id)) == sorted(
        [(holiday, 1, "approved"), (sunday, 2, "recorded")]
    )

    with consultants_db.connect() as conn:
        events = conn.execute(
            text(
                "SELECT routing_key, count(*) FROM outbox WHERE body LIKE :id "
                "AND routing_key LIKE 'engagement.timesheet_%' GROUP BY routing_key"
            ),
            {"id": f"%{sheet['id']}%"},
        ).all()
    assert dict(events) == {
        "engagement.timesheet_recorded": 2,  # recorded, then corrected: to approve each time
        "engagement.timesheet_rejected": 1,
        "engagement.timesheet_approved": 1,
    }
