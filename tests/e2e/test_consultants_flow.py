"""Consultants through the gateway: Firminy publishes an urbanist, Saint-Étienne finds them for
a PLU revision, engages them, Firminy accepts with the official's consent (refused without),
the two communes' agreement comes into force and covers the engagement, Firminy records days
worked (announced for approval), Saint-Étienne approves them and the event billing charges
from leaves exactly once, with the agreement's reference; concurrent accepts never commit a
consultant beyond their monthly maximum; bad input is refused and stores nothing."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from sqlalchemy import text

from contracts.agreements import AgreementInForce, AgreementSnapshot, PartyAct
from services.consultants.domain import is_working_day
from tests.integration.messaging import publish_event
from tests.support import assert_problem, listen, paris_today, wait_until

FIRMINY, SAINT_ETIENNE, SAINT_CHAMOND = "42095", "42218", "42207"
CONSULTANTS, ENGAGEMENTS = "/api/v1/consultants", "/api/v1/engagements"
TABLES = ("consultants", "availability_periods", "engagements", "timesheets", "outbox")

URBANIST = {
    "name": "Claire Besson",
    "title": "Urbaniste, cheffe de projet PLU",
    "skills": ["plu", "urbanisme", "Concertation"],
    "bio": "A piloté la révision générale du plan local d'urbanisme de Firminy : diagnostic, "
    "PADD, OAP, règlement, concertation avec les habitants.",
    "languages": ["fr", "en"],
    "day_rate_cents": 65000,
    "max_days_per_month": 8,
}


def month_after_next() -> date:
    first = paris_today().replace(day=1)
    return (first + timedelta(days=62)).replace(day=1)


def worked(day: date, days: Any) -> dict:
    """Days worked on `day`; on a weekend or a public holiday (the suite may run on one),
    said to be exceptional work."""
    exceptional = {"exceptional_work": True, "exceptional_reason": "Astreinte de crue"}
    return {"date": day.isoformat(), "days": days} | ({} if is_working_day(day) else exceptional)


def consent(given_on: date | None = None) -> dict:
    """What the lender's manager says when accepting: when the official consented."""
    given = given_on or paris_today()
    return {"consent": {"given_on": given.isoformat(), "note": "accord écrit de l'agent"}}


def ask_for(stack, agent, consultant: dict, **terms: Any) -> dict:
    """The agent's commune asks for days of `consultant` over the coming fortnight."""
    today = paris_today()
    period = {"start": today.isoformat(), "end": (today + timedelta(days=14)).isoformat()}
    asked = agent.post(
        f"{stack.url}{ENGAGEMENTS}", json={"consultant_id": consultant["id"], **period, **terms}
    )
    assert asked.status_code == 201, asked.text
    return asked.json()


def publish(stack, manager, **changes: Any) -> dict:
    answer = manager.post(f"{stack.url}{CONSULTANTS}", json=URBANIST | changes)
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.fixture
def approved_timesheets(stack):
    """engagement.timesheet_approved events, from a queue of our own declared before anything
    happens."""
    return listen(stack.vhost.amqp_uri, "consultants.events", "engagement.timesheet_approved")


def agreement_in_force(reference: str, *parties: str, starts_on: date) -> AgreementInForce:
    """An agreement between communes as bookings announces it (bookings owns agreements)."""
    snapshot = AgreementSnapshot(
        agreement_id=str(uuid.uuid4()),
        reference=reference,
        title="Convention de mise à disposition de personnel",
        status="in_force",
        parties=[PartyAct(commune=c, decision_number="2026-041") for c in parties],
        covers_staff=True,
        starts_on=starts_on,
    )
    return AgreementInForce.new(snapshot, producer="bookings", correlation_id="test")


def test_saint_etienne_finds_engages_and_pays_firminys_urbanist(stack, approved_timesheets):
    firminy = stack.as_role("manager", FIRMINY)
    agent = stack.as_role("agent", SAINT_ETIENNE)

    urbanist = publish(stack, firminy)
    assert urbanist["status"] == "published"
    assert urbanist["home_commune"] == FIRMINY
    assert urbanist["skills"] == ["plu", "urbanisme", "concertation"]  # names became ids

    found = agent.get(
        f"{stack.url}{CONSULTANTS}/match", params={"need": "révision du plan local d'urbanisme"}
    )
    assert found.status_code == 200, found.text
    first = found.json()["items"][0]
    assert first["consultant"]["id"] == urbanist["id"]
    assert 0 < first["score"] <= 1 and first["fits"]
    why = first["explanation"]
    assert why["skills"]["inferred"] == ["plu"]
    assert {"skill": "plu", "via": "direct", "through": "plu"} in why["skills"]["matched"]
    assert {"plan", "local"} <= set(why["text"]["matched_terms"])
    assert why["distance_km"] == pytest.approx(9.3, abs=0.5)  # Saint-Étienne – Firminy
    assert why["availability"] == {
        "asked": False,
        "start": None,
        "end": None,
        "working_days": None,
        "days_needed": None,
        "available_days": None,
        "fits": True,
        "score": None,
    }
    assert why["rate"]["day_rate_cents"] == 65000
    assert why["summary"]

    today = paris_today()
    engagement = ask_for(
        stack,
        agent,
        urbanist,
        days=3,
        mission="Révision du PLU : relecture du règlement et des OAP",
        order_reference="EJ-2026-0042",
    )
    assert engagement["status"] == "requested"
    assert (engagement["lender_commune"], engagement["borrower_commune"]) == (
        FIRMINY,
        SAINT_ETIENNE,
    )
    assert Decimal(engagement["days"]) == 3 and engagement["amount_cents"] == 195000
    path = f"{stack.url}{ENGAGEMENTS}/{engagement['id']}"

    assert agent.post(f"{path}/accept", json=consent()).status_code == 403
    # no engagement without the official's consent, nor with a consent yet to come
    missing = assert_problem(firminy.post(f"{path}/accept", json={}), 422)
    assert [e["field"] for e in missing["errors"]] == ["consent"]
    future = consent(today + timedelta(days=1))
    later = assert_problem(firminy.post(f"{path}/accept", json=future), 422)
    assert [e["type"] for e in later["errors"]] == ["consent_in_future"]
    assert firminy.get(path).json()["status"] == "requested"
    accepted = firminy.post(f"{path}/accept", json=consent())
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    given = accepted.json()["consent"]
    assert (given["official"], given["given_on"]) == ("Claire Besson", today.isoformat())
    assert given["note"] == "accord écrit de l'agent" and given["recorded_by"]
    assert accepted.json()["agreement"] is None  # no agreement between them yet

    # the two communes' agreement comes into force (announced by bookings): it covers the
    # engagement, and the days approved carry its reference for the invoice (BT-12)
    recorded_timesheets = listen(
        stack.vhost.amqp_uri, "consultants.events", "engagement.timesheet_recorded"
    )
    reference = f"CONV-{uuid.uuid4().hex[:6]}"
    starts = today - timedelta(days=30)
    publish_event(
        stack.vhost.amqp_uri,
        agreement_in_force(reference, FIRMINY, SAINT_ETIENNE, starts_on=starts),
    )
    covered = wait_until(lambda: firminy.get(path).json()["agreement"], timeout=10)
    assert covered["reference"] == reference
    assert sorted(covered["parties"]) == sorted([FIRMINY, SAINT_ETIENNE])
    assert (covered["starts_on"], covered["ends_on"]) == (starts.isoformat(), None)

    recorded = firminy.post(f"{path}/timesheets", json=worked(today, 1))
    assert recorded.status_code == 201, recorded.text
    (sheet,) = recorded.json()["timesheets"]
    assert sheet["status"] == "recorded" and Decimal(sheet["days"]) == Decimal(1)
    assert agent.post(f"{path}/timesheets", json=worked(today, 0.5)).status_code == 403
    (told,) = wait_until(recorded_timesheets, timeout=10)  # the borrower is to approve
    assert told["payload"]["timesheet_id"] == sheet["id"]
    assert (told["payload"]["borrower_commune"], told["payload"]["corrected"]) == (
        SAINT_ETIENNE,
        False,
    )

    approved = agent.post(f"{path}/timesheets/{sheet['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["timesheets"][0]["status"] == "approved"
    assert Decimal(approved.json()["days_approved"]) == Decimal(1)
    assert_problem(agent.post(f"{path}/timesheets/{sheet['id']}/approve"), 409)

    events = wait_until(approved_timesheets, timeout=10)
    time.sleep(0.5)  # anything sent twice would be there by now
    events += approved_timesheets()
    assert len(events) == 1
    assert events[0]["type"] == "engagement.timesheet_approved"
    assert events[0]["producer"] == "consultants"
    payload = events[0]["payload"]
    assert payload == {
        "engagement_id": engagement["id"],
        "timesheet_id": sheet["id"],
        "consultant_id": urbanist["id"],
        "consultant_name": "Claire Besson",
        "lender_commune": FIRMINY,
        "borrower_commune": SAINT_ETIENNE,
        "work_date": today.isoformat(),
        "days": "1.0",
        "day_rate_cents": 65000,
        "amount_cents": 65000,  # 1 × 650.00 €
        "currency": "EUR",
        "mission": "Révision du PLU : relecture du règlement et des OAP",
        "order_reference": "EJ-2026-0042",
        "agreement_reference": reference,
    }

    done = agent.post(f"{path}/complete")
    assert done.status_code == 200, done.text
    seen = firminy.get(path).json()
    assert [t["status"] for t in seen["history"]] == ["requested", "accepted", "completed"]
    assert seen["history"][1]["by_commune"] == FIRMINY

    stranger = stack.as_role("manager", SAINT_CHAMOND)
    assert_problem(stranger.get(path), 404)
    assert_problem(stranger.post(f"{path}/cancel", json={}), 404)
    listed = stranger.get(f"{stack.url}{ENGAGEMENTS}").json()["items"]
    assert engagement["id"] not in [e["id"] for e in listed]
    mine = agent.get(f"{stack.url}{ENGAGEMENTS}", params={"as": "borrower"}).json()["items"]
    assert engagement["id"] in [e["id"] for e in mine]


def test_concurrent_accepts_never_commit_beyond_the_monthly_maximum(stack):
    firminy = stack.as_role("manager", FIRMINY)
    lawyer = publish(
        stack,
        firminy,
        name=f"Juriste {uuid.uuid4().hex[:6]}",
        title="Juriste commande publique",
        skills=["marches-publics"],
        bio="Rédaction des DCE et analyse des offres.",
        max_days_per_month=4,
    )
    first = month_after_next()
    period = {
        "start": (first + timedelta(days=7)).isoformat(),
        "end": (first + timedelta(days=21)).isoformat(),
    }
    ids = []
    for n, commune in enumerate([SAINT_ETIENNE, SAINT_CHAMOND] * 5):
        asked = stack.as_role("agent", commune).post(
            f"{stack.url}{ENGAGEMENTS}",
            json={"consultant_id": lawyer["id"], "days": 1, "mission": f"Marché n°{n}", **period},
        )
        assert asked.status_code == 201, asked.text
        ids.append(asked.json()["id"])

    start = threading.Barrier(len(ids))
    statuses: list[int] = []

    def accept(engagement_id: str) -> None:
        session = requests.Session()  # one connection each: truly concurrent requests
        session.headers.update(firminy.headers)
        start.wait()
        answer = session.post(
            f"{stack.url}{ENGAGEMENTS}/{engagement_id}/accept", json=consent(), timeout=30
        )
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=accept, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(statuses) == [200] * 4 + [409] * 6

    with stack.database("consultants").connect() as conn:
        held = conn.execute(
            text(
                "SELECT count(*), sum(half_days) FROM engagements "
                "WHERE consultant_id = :id AND status = 'accepted'"
            ),
            {"id": lawyer["id"]},
        ).one()
        # a refused accept leaves nothing behind: no transition, no event
        transitions = conn.execute(
            text(
                "SELECT count(*) FROM engagement_transitions t JOIN engagements e "
                "ON e.id = t.engagement_id WHERE e.consultant_id = :id "
                "AND t.status = 'accepted'"
            ),
            {"id": lawyer["id"]},
        ).scalar_one()
        events = conn.execute(
            text(
                "SELECT count(*) FROM outbox WHERE routing_key = 'engagement.accepted' "
                "AND body LIKE :id"
            ),
            {"id": f"%{lawyer['id']}%"},
        ).scalar_one()
    assert tuple(held) == (4, 8)  # four days, in half days
    assert transitions == events == 4

    # nor can the maximum be lowered under what is committed
    lowered = firminy.patch(
        f"{stack.url}{CONSULTANTS}/{lawyer['id']}", json={"max_days_per_month": 3}
    )
    assert_problem(lowered, 409)
    closed = firminy.post(
        f"{stack.url}{CONSULTANTS}/{lawyer['id']}/availability",
        json={"periods": [{"kind": "unavailable", **period}]},
    )
    assert_problem(closed, 409)


# -- bad input --------------------------------------------------------------------------


@pytest.fixture
def stored(stack):
    """The consultants service's rows, counted: what a refused request must leave alone."""
    return lambda: stack.row_counts("consultants", TABLES)


def test_bad_input_answers_4xx_problem_json_and_stores_nothing(stack, stored):
    firminy = stack.as_role("manager", FIRMINY)
    agent = stack.as_role("agent", SAINT_ETIENNE)
    urbanist = publish(stack, firminy, name=f"Urbaniste {uuid.uuid4().hex[:6]}")
    today = paris_today()
    soon = {"start": today.isoformat(), "end": (today + timedelta(days=14)).isoformat()}

    def refused(status: int, answer, *fields: str) -> dict:
        problem = assert_problem(answer, status)
        named = [e["field"] for e in problem["errors"]]
        for field in fields:
            assert field in named, problem
        return problem

    cases = [
        (
            422,
            lambda: firminy.post(
                f"{stack.url}{CONSULTANTS}", json=URBANIST | {"skills": ["urbanism"]}
            ),
            ("skills.0",),
        ),
        (
            422,
            lambda: firminy.post(f"{stack.url}{CONSULTANTS}", json=URBANIST | {"skills": []}),
            ("skills",),
        ),
        (
            422,
            lambda: firminy.post(
                f"{stack.url}{CONSULTANTS}",
                json={k: v for k, v in URBANIST.items() if k != "name"}
                | {"day_rate_cents": -1, "max_days_per_month": 40},
            ),
            ("name", "day_rate_cents", "max_days_per_month"),
        ),
        (
            422,
            lambda: firminy.post(
                f"{stack.url}{CONSULTANTS}", json=URBANIST | {"day_rate_cents": 12.5}
            ),
            ("day_rate_cents",),
        ),
        (403, lambda: agent.post(f"{stack.url}{CONSULTANTS}", json=URBANIST), ()),
        (
            422,
            lambda: firminy.post(
                f"{stack.url}{CONSULTANTS}/{urbanist['id']}/availability",
                json={"periods": [{"kind": "away", "start": soon["end"], "end": soon["start"]}]},
            ),
            ("periods.0.kind", "periods.0.end"),
        ),
        (
            403,
            lambda: stack.as_role("manager", SAINT_CHAMOND).patch(
                f"{stack.url}{CONSULTANTS}/{urbanist['id']}", json={"title": "Volé"}
            ),
            (),
        ),
        (404, lambda: firminy.get(f"{stack.url}{CONSULTANTS}/{uuid.uuid4()}"), ()),
        (
            422,
            lambda: agent.get(
                f"{stack.url}{CONSULTANTS}/match",
                params={"need": "PLU", "from": "2031-03-01", "to": "2031-02-01", "days": "2.3"},
            ),
            ("to", "days"),
        ),
        (
            422,
            lambda: agent.get(
                f"{stack.url}{CONSULTANTS}/match", params={"skills": "plu,jardinage lunaire"}
            ),
            ("skills.1",),
        ),
        (
            422,
            lambda: agent.get(f"{stack.url}{CONSULTANTS}/match", params={"near": "99999"}),
            ("near",),
        ),
        (
            422,
            lambda: agent.get(
                f"{stack.url}{CONSULTANTS}/match", params={"limit": "0", "days": "1"}
            ),
            ("limit", "days"),
        ),
        (
            422,
            lambda: agent.post(
                f"{stack.url}{ENGAGEMENTS}",
                json={"consultant_id": urbanist["id"], "days": 0.3, "mission": "PLU", **soon},
            ),
            ("days",),
        ),
        (
            422,
            lambda: agent.post(
                f"{stack.url}{ENGAGEMENTS}",
                json={"consultant_id": str(uuid.uuid4()), "days": 1, "mission": "PLU", **soon},
            ),
            ("consultant_id",),
        ),
        (
            422,
            lambda: agent.post(
                f"{stack.url}{ENGAGEMENTS}",
                json={
                    "consultant_id": urbanist["id"],
                    "days": 30,
                    "mission": "PLU",
                    "start": (today - timedelta(days=3)).isoformat(),
                    "end": soon["end"],
                },
            ),
            ("start", "days"),
        ),
        (
            422,
            lambda: stack.as_role("agent", FIRMINY).post(
                f"{stack.url}{ENGAGEMENTS}",
                json={"consultant_id": urbanist["id"], "days": 1, "mission": "PLU", **soon},
            ),
            ("consultant_id",),
        ),
        (
            404,
            lambda: firminy.post(f"{stack.url}{ENGAGEMENTS}/{uuid.uuid4()}/accept", json=consent()),
            (),
        ),
        (
            400,
            lambda: agent.post(
                f"{stack.url}{ENGAGEMENTS}",
                data=b"{not json",
                headers={"Content-Type": "application/json"},
            ),
            (),
        ),
    ]
    for status, send, fields in cases:
        before = stored()
        problem = refused(status, send(), *fields)
        assert stored() == before, problem
    unknown = assert_problem(
        firminy.post(f"{stack.url}{CONSULTANTS}", json=URBANIST | {"skills": ["urbanism"]}), 422
    )
    assert "urbanisme" in [s["id"] for s in unknown["errors"][0]["suggestions"]]

    # days worked: never beyond the engagement's days, nor outside its period
    engagement = agent.post(
        f"{stack.url}{ENGAGEMENTS}",
        json={"consultant_id": urbanist["id"], "days": 2, "mission": "PLU", **soon},
    ).json()
    path = f"{stack.url}{ENGAGEMENTS}/{engagement['id']}"
    too_early = firminy.post(f"{path}/timesheets", json={"date": today.isoformat(), "days": 1})
    assert_problem(too_early, 409)  # not accepted yet
    assert firminy.post(f"{path}/accept", json=consent()).status_code == 200
    for body, fields in [
        (worked(today, 2.5), ("days",)),
        (worked(today - timedelta(days=1), 1), ("date",)),
        (worked(today + timedelta(days=1), 1), ("date",)),
        (worked(today, -1), ("days",)),
        (worked(today, "1.25"), ("days",)),
    ]:
        before = stored()
        refused(422, firminy.post(f"{path}/timesheets", json=body), *fields)
        assert stored() == before
    assert firminy.post(f"{path}/timesheets", json=worked(today, 0.5)).status_code == 201
    # the engagement has 1.5 days left, the person half a day on this date
    refused(422, firminy.post(f"{path}/timesheets", json=worked(today, 1)), "days")
    assert_problem(agent.post(f"{path}/cancel", json={}), 409)  # it has started


def test_the_pages_name_who_asked_and_accept_with_the_officials_consent(stack):
    """Firminy's manager sees on the dashboard who asked for the urbanist (by name, with the
    commune), accepts on the mission's page only once the official's consent is ticked and
    dated, and Saint-Étienne's dashboard names who recorded the days to approve."""
    firminy = stack.as_role("manager", FIRMINY)
    agent = stack.as_role("agent", SAINT_ETIENNE)
    urbanist = publish(stack, firminy, name=f"Claire Besson {uuid.uuid4().hex[:4]}")
    today = paris_today()
    engagement_id = ask_for(stack, agent, urbanist, days=2, mission="Relecture du PLU")["id"]
    asker = agent.get(f"{stack.url}/api/v1/me").json()["name"]
    manager_name = firminy.get(f"{stack.url}/api/v1/me").json()["name"]

    pages = stack.web_session(f"manager.{FIRMINY}@mutualis-demo.fr")
    dashboard = pages.get(f"{stack.url}/tableau-de-bord", timeout=10).text
    line = next(li for li in dashboard.split("<li>") if urbanist["name"] in li)
    assert f"demande de {asker} (Saint-Étienne)" in line

    page_url = f"{stack.url}/missions/{engagement_id}"
    shown = pages.get(page_url, timeout=10).text
    assert "pas encore recueilli" in shown
    csrf = shown.split('name="csrf" value="')[1].split('"')[0]
    unticked = pages.post(
        f"{page_url}/accepter", data={"csrf": csrf, "accord_date": today.isoformat()}
    )
    assert unticked.status_code == 422
    assert "Cochez l&#39;accord de l&#39;agent" in unticked.text
    assert agent.get(f"{stack.url}{ENGAGEMENTS}/{engagement_id}").json()["status"] == "requested"
    accepted = pages.post(
        f"{page_url}/accepter",
        data={
            "csrf": csrf,
            "accord": "1",
            "accord_date": today.isoformat(),
            "accord_note": "écrit",
        },
    )
    assert accepted.status_code == 200 and "La mission est acceptée." in accepted.text
    assert f"donné le {today:%d/%m/%Y} (écrit)" in accepted.text
    # the agreement covering it, as the API says (one may have come into force earlier)
    cover = agent.get(f"{stack.url}{ENGAGEMENTS}/{engagement_id}").json()["agreement"]
    said = f"réf. {cover['reference']}" if cover else "aucune convention en vigueur ne couvre"
    assert said in accepted.text

    recorded = firminy.post(
        f"{stack.url}{ENGAGEMENTS}/{engagement_id}/timesheets", json=worked(today, 1)
    )
    assert recorded.status_code == 201, recorded.text
    borrower_pages = stack.web_session(f"agent.{SAINT_ETIENNE}@mutualis-demo.fr")
    dashboard = borrower_pages.get(f"{stack.url}/tableau-de-bord", timeout=10).text
    line = next(li for li in dashboard.split("<li>") if urbanist["name"] in li and "déclaré" in li)
    assert f"déclaré par {manager_name} (Firminy)" in line
