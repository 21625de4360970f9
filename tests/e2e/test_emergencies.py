"""Emergency episodes through the gateway: who may declare one, a covered request made urgent
with its lead time waived, three communes asking for a listing's two units within one
allocation window decided by the published rule and told why, winners approved at once when
the listing allows it, and the banner on the pages of the territory."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.support import day, wait_until

CHAMBON = "42044"  # lends
SAINT_ETIENNE, FIRMINY, ROCHE = "42218", "42095", "42189"
LOIRE = "42"

pytestmark = pytest.mark.e2e


def api(stack, path: str) -> str:
    return f"{stack.url}/api/v1/{path}"


def declaration(**changes) -> dict:
    now = datetime.now(UTC)
    return {
        "name": "Épisode neigeux Loire — test",
        "territory": {"departments": [LOIRE]},
        "categories": ["deneigement"],
        "start": (now - timedelta(minutes=1)).isoformat(),
        "end": (now + timedelta(days=7)).isoformat(),
    } | changes


@pytest.fixture
def episode(stack):
    """An episode over the Loire's snow clearing, ended after the test (the stack is shared
    with other tests, whose requests it must not make urgent)."""
    operator = stack.user("operator@mutualis-demo.fr")
    declared = operator.post(api(stack, "emergencies"), json=declaration(), timeout=10)
    assert declared.status_code == 201, declared.text
    yield declared.json()
    ended = operator.post(
        api(stack, f"emergencies/{declared.json()['id']}/end"), json={"reason": "fin"}, timeout=10
    )
    assert ended.status_code == 200, ended.text


def snowplough(
    stack, *, quantity: int, lead_time_days: int = 0, auto: bool = False, category="deneigement"
) -> str:
    manager = stack.session("manager", CHAMBON)
    published = manager.post(
        api(stack, "listings"),
        json={
            "title": "Chasse-neige d'urgence",
            "category": category,
            "kind": "vehicle",
            "pricing_unit": "day",
            "rate_cents": 30000,
            "quantity": quantity,
            "lead_time_days": lead_time_days,
            "auto_approve_in_emergencies": auto,
        },
        timeout=10,
    )
    assert published.status_code == 201, published.text
    assert published.json()["auto_approve_in_emergencies"] is auto
    listing_id = published.json()["id"]
    # the bookings service learns of it through listing.published
    wait_until(
        lambda: (
            stack.session("agent", SAINT_ETIENNE)
            .post(
                api(stack, "bookings/quote"),
                json={"listing_id": listing_id, "start": day(30), "end": day(31)},
                timeout=10,
            )
            .status_code
            == 200
        ),
        timeout=15,
    )
    return listing_id


def book(stack, commune: str, listing_id: str, first: int, **more) -> requests.Response:
    return stack.session("agent", commune).post(
        api(stack, "bookings"),
        json={"listing_id": listing_id, "start": day(first), "end": day(first + 1)} | more,
        timeout=10,
    )


# -- who declares -----------------------------------------------------------------------


def test_an_operator_declares_and_ends_anywhere(stack):
    operator = stack.user("operator@mutualis-demo.fr")
    declared = operator.post(
        api(stack, "emergencies"),
        json=declaration(territory={"departments": ["69"]}, name="Crue du Rhône — test"),
        timeout=10,
    )
    assert declared.status_code == 201, declared.text
    episode = declared.json()
    assert episode["territory"]["departments"] == ["69"]
    assert episode["declared_by_commune"] == SAINT_ETIENNE
    ended = operator.post(api(stack, f"emergencies/{episode['id']}/end"), json={}, timeout=10)
    assert ended.status_code == 200
    assert ended.json()["ended_at"] is not None
    again = operator.post(api(stack, f"emergencies/{episode['id']}/end"), json={}, timeout=10)
    assert again.status_code == 409


def test_a_coordinator_declares_only_in_their_territory(stack):
    coordinator = stack.user("coordinator@mutualis-demo.fr")  # of Saint-Étienne, Loire
    outside = coordinator.post(
        api(stack, "emergencies"), json=declaration(territory={"departments": ["69"]}), timeout=10
    )
    assert outside.status_code == 403, outside.text
    assert outside.headers["Content-Type"].startswith("application/problem+json")
    around = coordinator.post(
        api(stack, "emergencies"),
        json=declaration(territory={"centre": SAINT_ETIENNE, "radius_km": 15}),
        timeout=10,
    )
    assert around.status_code == 201, around.text
    ended = coordinator.post(api(stack, f"emergencies/{around.json()['id']}/end"), json={})
    assert ended.status_code == 200


def test_an_agent_may_not_declare_and_unknown_places_are_refused(stack):
    agent = stack.session("agent", SAINT_ETIENNE)
    assert agent.post(api(stack, "emergencies"), json=declaration(), timeout=10).status_code == 403
    operator = stack.user("operator@mutualis-demo.fr")
    unknown = operator.post(
        api(stack, "emergencies"),
        json=declaration(territory={"epcis": ["123456789"]}),
        timeout=10,
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"][0]["field"] == "territory.epcis.0"


# -- urgent requests --------------------------------------------------------------------


def test_a_covered_request_is_urgent_and_its_lead_time_waived(stack, episode):
    listing_id = snowplough(stack, quantity=1, lead_time_days=5)
    # a category the episode does not cover keeps its lead time
    roller = snowplough(stack, quantity=1, lead_time_days=5, category="voirie")
    held = book(stack, SAINT_ETIENNE, roller, 1, need="main_roads")
    assert held.status_code == 422, held.text
    assert held.json()["errors"][0]["type"] == "lead_time"
    urgent = book(stack, SAINT_ETIENNE, listing_id, 1, need="main_roads")
    assert urgent.status_code == 201, urgent.text
    assert urgent.json()["status"] == "requested"
    assert urgent.json()["urgency"]["emergency_id"] == episode["id"]
    assert urgent.json()["urgency"]["need"] == "main_roads"
    # the lender sees it urgent too
    lender = stack.session("manager", CHAMBON)
    seen = lender.get(api(stack, f"bookings/{urgent.json()['id']}"), timeout=10).json()
    assert seen["urgency"]["need"] == "main_roads"
    # everyone in the territory sees the episode; no need given means service continuity
    listed = stack.session("agent", FIRMINY).get(api(stack, "emergencies"), timeout=10).json()
    assert episode["id"] in [e["id"] for e in listed["items"]]
    default = book(stack, FIRMINY, listing_id, 3)
    assert default.status_code == 201, default.text
    assert default.json()["urgency"]["need"] == "service_continuity"


def test_three_communes_for_two_units_are_allocated_by_need_and_told_why(stack, episode):
    listing_id = snowplough(stack, quantity=2, auto=True)
    needs = {SAINT_ETIENNE: "comfort", FIRMINY: "safety_of_people", ROCHE: "main_roads"}
    for commune in needs:
        stack.session("agent", commune)  # logged in before: the three fit one 3 s window
    with ThreadPoolExecutor(len(needs)) as pool:  # at once, as in a storm
        sent = {c: pool.submit(book, stack, c, listing_id, 2, need=n) for c, n in needs.items()}
    asked = {commune: answer.result() for commune, answer in sent.items()}
    for answer in asked.values():
        assert answer.status_code == 201, answer.text  # not raced: no 409
    lender = stack.session("manager", CHAMBON)

    def decided() -> dict | None:
        views = {
            commune: lender.get(api(stack, f"bookings/{a.json()['id']}"), timeout=10).json()
            for commune, a in asked.items()
        }
        if all(v["urgency"]["decided_at"] for v in views.values()):
            return views
        return None

    views = wait_until(decided, timeout=30, interval=0.3)
    assert views[FIRMINY]["status"] == "approved"  # safety of people first
    assert views[ROCHE]["status"] == "approved"  # then main roads
    assert views[SAINT_ETIENNE]["status"] == "rejected"  # comfort goes without
    assert [views[c]["urgency"]["position"] for c in (FIRMINY, ROCHE, SAINT_ETIENNE)] == [1, 2, 3]
    why = views[SAINT_ETIENNE]["history"][-1]["note"]
    assert why.startswith("refusée : les 2 ")
    assert "sécurité des personnes" in why and "grands axes routiers" in why
    assert views[FIRMINY]["history"][-1]["note"].startswith("accordée : besoin « sécurité")
    # the borrower reads the same explanation
    own = stack.session("agent", SAINT_ETIENNE).get(
        api(stack, f"bookings/{asked[SAINT_ETIENNE].json()['id']}"), timeout=10
    )
    assert own.json()["urgency"]["explanation"] == why
    # the coordinator sees the episode's requests and the need left unmet
    report = stack.user("coordinator@mutualis-demo.fr").get(
        api(stack, f"emergencies/{episode['id']}/requests"), timeout=10
    )
    assert report.status_code == 200, report.text
    assert report.json()["unmet"] == {"comfort": 1}


def test_a_granted_request_waits_for_the_lender_when_the_listing_does_not_opt_in(stack, episode):
    listing_id = snowplough(stack, quantity=1)
    first = book(stack, FIRMINY, listing_id, 4, need="main_roads")
    assert first.status_code == 201, first.text
    booking_id = first.json()["id"]
    lender = stack.session("manager", CHAMBON)
    # before its window closes, it is decided by the allocation, not by hand
    early = lender.post(api(stack, f"bookings/{booking_id}/approve"), timeout=10)
    assert early.status_code in (200, 409)
    if early.status_code == 409:
        view = wait_until(
            lambda: (
                (v := lender.get(api(stack, f"bookings/{booking_id}"), timeout=10).json())[
                    "urgency"
                ]["decided_at"]
                and v
            ),
            timeout=30,
            interval=0.3,
        )
        assert view["status"] == "requested"
        assert view["urgency"]["granted"] is True
        assert view["history"][-1]["note"].startswith("accordée")
        approved = lender.post(api(stack, f"bookings/{booking_id}/approve"), timeout=10)
        assert approved.status_code == 200, approved.text


def test_the_pages_of_the_territory_carry_the_banner(stack, episode):
    session = stack.web_session(f"agent.{FIRMINY}@mutualis-demo.fr")
    page = wait_until(
        lambda: (
            (p := session.get(f"{stack.url}/", timeout=10)).ok and episode["name"] in p.text and p
        ),
        timeout=10,
        interval=0.5,
    )
    assert 'class="emergency-banner"' in page.text
