"""The first capability end to end: a commune publishes, a neighbour finds it nearby, and
the bookings service's read model learns of it through the event path."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from tests.support import assert_problem, wait_until

SNOWPLOUGH = {
    "title": "Chasse-neige Mercedes Arocs, lame 3,4 m",
    "description": "Camion 4x4 avec lame et saleuse, disponible pour les communes voisines.",
    "category": "deneigement",
    "kind": "vehicle",
    "pricing_unit": "day",
    "rate_cents": 48000,
    "deposit_cents": 200000,
    "quantity": 1,
    "with_operator": True,
    "operator_rate_cents": 30000,
}


def test_a_neighbour_finds_the_snowplough_near_saint_etienne(stack):
    # a word of its own, so that the search finds this one whatever ran before
    tag = uuid.uuid4().hex
    lender = stack.as_role("manager", "42044")
    published = lender.post(
        f"{stack.url}/api/v1/listings",
        json=SNOWPLOUGH | {"title": f"{SNOWPLOUGH['title']} {tag}"},
    )
    assert published.status_code == 201, published.text
    listing = published.json()
    assert listing["owner_commune"] == "42044"
    assert listing["status"] == "published"

    borrower = stack.as_role("agent", "42218")
    found = borrower.get(
        f"{stack.url}/api/v1/listings",
        params={"near": "42218", "radius_km": 20, "q": f"chasse-neige arocs {tag}"},
    )
    assert found.status_code == 200, found.text
    items = found.json()["items"]
    assert [i["id"] for i in items] == [listing["id"]]
    assert 6.0 < items[0]["distance_km"] < 7.0

    def copied():
        with stack.database("bookings").connect() as conn:
            return conn.execute(
                text(
                    "SELECT owner_commune, status, revision FROM listing_copies "
                    "WHERE listing_id = :id"
                ),
                {"id": listing["id"]},
            ).first()

    row = wait_until(copied, timeout=1.0)
    assert tuple(row) == ("42044", "published", 1)


def test_results_near_a_commune_are_ordered_by_distance(stack):
    agent = stack.as_role("agent", "42218")
    page = agent.get(f"{stack.url}/api/v1/listings", params={"near": "42218", "limit": 100})
    assert page.status_code == 200
    distances = [item["distance_km"] for item in page.json()["items"]]
    assert len(distances) >= 5
    assert distances == sorted(distances)


def test_another_commune_cannot_edit_or_withdraw(stack):
    lender = stack.as_role("manager", "42044")
    listing = lender.post(f"{stack.url}/api/v1/listings", json=SNOWPLOUGH).json()
    outsider = stack.as_role("manager", "42218")

    edit = outsider.patch(f"{stack.url}/api/v1/listings/{listing['id']}", json={"rate_cents": 1})
    assert edit.status_code == 403
    assert edit.headers["Content-Type"] == "application/problem+json"
    withdraw = outsider.delete(f"{stack.url}/api/v1/listings/{listing['id']}")
    assert withdraw.status_code == 403

    unchanged = outsider.get(f"{stack.url}/api/v1/listings/{listing['id']}").json()
    assert unchanged["rate_cents"] == SNOWPLOUGH["rate_cents"]
    assert unchanged["status"] == "published"


def test_without_a_token_the_api_answers_401(stack):
    import requests

    for method, path in [
        ("GET", "/api/v1/listings"),
        ("POST", "/api/v1/listings"),
        ("GET", "/api/v1/me"),
    ]:
        answer = requests.request(method, f"{stack.url}{path}", json={}, timeout=5)
        assert answer.status_code == 401
        assert answer.json()["status"] == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_search_sorted_by_price_puts_the_own_commune_first_counts_and_pages(stack):
    from sqlalchemy.orm import Session

    from contracts.listings import ListingQuery
    from infra.communes import communes
    from services.listings.domain import Origin
    from services.listings.repository import count_matches

    tag = uuid.uuid4().hex
    published = {}
    for commune, rate in (("42044", 9000), ("42095", 5000), ("42218", 12000), ("42218", 7000)):
        answer = stack.as_role("manager", commune).post(
            f"{stack.url}/api/v1/listings",
            json=SNOWPLOUGH | {"title": f"Tractopelle {tag} {rate}", "rate_cents": rate},
        )
        assert answer.status_code == 201, answer.text
        published[rate] = answer.json()["id"]

    agent = stack.as_role("agent", "42218")
    search = f"{stack.url}/api/v1/listings"
    asked = {"q": tag, "near": "42218", "radius_km": 30, "sort": "price", "count": "true"}
    seen, cursor = [], None
    while True:
        answer = agent.get(
            search, params=asked | {"limit": 3} | ({"cursor": cursor} if cursor else {})
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["count"] == 4 and body["count_exact"] is True
        assert body["facets"] == {
            "category": {"deneigement": 4},
            "kind": {"vehicle": 4},
            "owner_commune": {"42218": 2, "42044": 1, "42095": 1},
            "with_operator": 4,
        }
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    # Saint-Étienne's own first (cheapest first among them), then the others by price
    assert seen == [published[7000], published[12000], published[5000], published[9000]]

    nearest = agent.get(search, params={"q": tag, "near": "42218", "radius_km": 30}).json()
    assert [i["owner_commune"] for i in nearest["items"]][:2] == ["42218", "42218"]
    assert "count" not in nearest or nearest["count"] is None  # asked for only

    refused = agent.get(search, params={"q": tag, "sort": "cheapest"})
    assert_problem(refused, 422)
    assert [e["field"] for e in refused.json()["errors"]] == ["sort"]

    # beyond its bound the count says "more than"
    home = communes().get("42218")
    query = ListingQuery(q=tag, near="42218", radius_km=30)
    with Session(stack.database("listings")) as session:
        origin = Origin(home.latitude, home.longitude)
        assert count_matches(session, query, origin, None, bound=3) == (3, False, None)
        assert count_matches(session, query, origin, None, bound=4)[:2] == (4, True)
