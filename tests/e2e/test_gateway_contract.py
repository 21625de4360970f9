"""The gateway's side of the contract (API.md): request ids, body limit, idempotency, the
OpenAPI document and its docs page, health and metrics on every port, the happy paths of
the listing routes that change things, communes and /me."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from tests.support import assert_problem, instant

OWNER = "42044"
NEIGHBOUR = "42218"
LISTINGS = "/api/v1/listings"


def draft(**changes: Any) -> dict:
    return {
        "title": f"Broyeuse de branches {uuid.uuid4().hex}",
        "description": "Broyeur thermique sur remorque, branches jusqu'à 15 cm.",
        "category": "espaces-verts",
        "kind": "equipment",
        "pricing_unit": "day",
        "rate_cents": 9000,
        "deposit_cents": 40000,
        **changes,
    }


def token_of(listing: dict) -> str:
    """The uuid in a listing's title: searching for it finds that listing only."""
    return listing["title"].rsplit(" ", 1)[-1]


def count(stack, sql: str, **params: Any) -> int:
    """The number `sql` reads in the listings service's database."""
    with stack.database("listings").connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def publish(stack, session, **changes: Any) -> dict:
    answer = session.post(f"{stack.url}{LISTINGS}", json=draft(**changes), timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()


def search_ids(stack, session, **params: Any) -> list[str]:
    answer = session.get(f"{stack.url}{LISTINGS}", params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def periods(items: list[dict]) -> list[tuple[datetime, datetime]]:
    return [(instant(p["start"]), instant(p["end"])) for p in items]


def metric(body: str, name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


# -- request ids -----------------------------------------------------------------------


def test_the_request_id_is_echoed_when_given(stack):
    request_id = f"e2e-{uuid.uuid4().hex}"
    answer = stack.session("agent", NEIGHBOUR).get(
        f"{stack.url}{LISTINGS}", headers={"X-Request-ID": request_id}
    )
    assert answer.status_code == 200
    assert answer.headers["X-Request-ID"] == request_id

    refused = requests.get(f"{stack.url}{LISTINGS}", headers={"X-Request-ID": request_id})
    assert refused.status_code == 401
    assert refused.headers["X-Request-ID"] == request_id


def test_a_request_id_is_generated_when_absent_or_unsafe(stack):
    agent = stack.session("agent", NEIGHBOUR)
    first = agent.get(f"{stack.url}{LISTINGS}").headers["X-Request-ID"]
    second = agent.get(f"{stack.url}{LISTINGS}").headers["X-Request-ID"]
    assert first and second and first != second

    unsafe = agent.get(f"{stack.url}{LISTINGS}", headers={"X-Request-ID": "a b<script>"})
    assert unsafe.headers["X-Request-ID"] not in ("", "a b<script>")


# -- body limit ------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_the_limit_is_413(stack, framing):
    limit = 1024 * 1024  # GATEWAY_MAX_BODY_BYTES by default
    raw = b'{"title": "' + b"x" * limit + b'"}'
    body: Any = raw
    if framing == "chunked":  # a generator makes requests send it without Content-Length
        body = (raw[i : i + 65536] for i in range(0, len(raw), 65536))
    before = count(stack, "SELECT count(*) FROM listings")

    answer = stack.session("manager", OWNER).post(
        f"{stack.url}{LISTINGS}", data=body, headers={"Content-Type": "application/json"}
    )

    assert_problem(answer, 413)
    assert count(stack, "SELECT count(*) FROM listings") == before


def test_a_chunked_body_is_read(stack):
    body = draft()
    chunks = iter([json.dumps(body).encode()])  # no Content-Length: Transfer-Encoding chunked
    answer = stack.session("manager", OWNER).post(
        f"{stack.url}{LISTINGS}", data=chunks, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["title"] == body["title"]


# -- idempotency -----------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_replays_the_first_answer(stack):
    manager = stack.session("manager", OWNER)
    body = draft()
    key = {"Idempotency-Key": f"publish-{uuid.uuid4()}"}

    first = manager.post(f"{stack.url}{LISTINGS}", json=body, headers=key)
    second = manager.post(f"{stack.url}{LISTINGS}", json=body, headers=key)

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    stored = count(stack, "SELECT count(*) FROM listings WHERE title = :title", title=body["title"])
    assert stored == 1


def test_the_same_idempotency_key_with_another_body_is_422(stack):
    manager = stack.session("manager", OWNER)
    key = {"Idempotency-Key": f"publish-{uuid.uuid4()}"}
    first = manager.post(f"{stack.url}{LISTINGS}", json=draft(), headers=key)
    assert first.status_code == 201
    before = count(stack, "SELECT count(*) FROM listings")

    other = manager.post(f"{stack.url}{LISTINGS}", json=draft(), headers=key)

    problem = assert_problem(other, 422)
    assert [e["field"] for e in problem["errors"]] == ["Idempotency-Key"]
    assert count(stack, "SELECT count(*) FROM listings") == before


# -- documentation ---------------------------------------------------------------------


def test_the_openapi_document_describes_the_listings_routes(stack):
    answer = requests.get(f"{stack.url}/api/openapi.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("application/json")
    document = answer.json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    expected = {
        "/api/v1/listings": {"get", "post"},
        "/api/v1/listings/{listing_id}": {"get", "patch", "delete"},
        "/api/v1/listings/{listing_id}/blackouts": {"post"},
        "/api/v1/listings/{listing_id}/availability": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    assert "Problem" in document["components"]["schemas"]
    publish_op = paths["/api/v1/listings"]["post"]
    assert "422" in publish_op["responses"] and "201" in publish_op["responses"]


def test_the_docs_page_serves_its_scripts_itself(stack):
    page = requests.get(f"{stack.url}/api/docs", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', page.text)
    assert "/api/docs/swagger-ui-bundle.js" in scripts
    for src in scripts:
        assert src.startswith("/") and not src.startswith("//"), src
        script = requests.get(f"{stack.url}{src}", timeout=10)
        assert script.status_code == 200, src
        assert "javascript" in script.headers["Content-Type"], src
        assert script.content
    for href in re.findall(r'<link[^>]*\shref="([^"]+)"', page.text):
        assert href.startswith("/") and not href.startswith("//"), href
        assert requests.get(f"{stack.url}{href}", timeout=10).status_code == 200, href


# -- operations ------------------------------------------------------------------------


def test_health_and_metrics_answer_on_every_port(stack):
    assert {"gateway", "listings", "bookings"} <= set(stack.ports)
    for name, port in stack.ports.items():
        base = f"http://127.0.0.1:{port}"
        live = requests.get(f"{base}/health/live", timeout=10)
        assert live.status_code == 200, name
        assert live.json()["status"] == "ok"
        ready = requests.get(f"{base}/health/ready", timeout=10)
        assert ready.status_code == 200, (name, ready.text)
        assert ready.json()["status"] == "ok"
        assert all(ready.json()["checks"].values()), name
        # the gateway's on its metrics port (tests/e2e/test_security.py)
        metrics = requests.get(stack.metrics_url(name), timeout=10)
        assert metrics.status_code == 200, name
        assert metrics.headers["Content-Type"].startswith("text/plain")
        assert "# HELP" in metrics.text


def test_requests_are_counted_and_timed(stack):
    gateway_metrics = stack.metrics_url("gateway")
    listings_metrics = stack.metrics_url("listings")
    route = {"route": "/api/v1/listings", "method": "GET"}
    searches = {"service": "listings", "method": "search", "outcome": "ok"}
    http_before = requests.get(gateway_metrics, timeout=10).text
    rpc_before = requests.get(listings_metrics, timeout=10).text

    agent = stack.session("agent", NEIGHBOUR)
    for _ in range(3):
        assert agent.get(f"{stack.url}{LISTINGS}", params={"near": NEIGHBOUR}).status_code == 200
    assert agent.get(f"{stack.url}{LISTINGS}/{uuid.uuid4()}").status_code == 404

    http_after = requests.get(gateway_metrics, timeout=10).text
    rpc_after = requests.get(listings_metrics, timeout=10).text

    total = "mutualis_http_requests_total"
    ok = {**route, "status": "200"}
    assert metric(http_after, total, **ok) - metric(http_before, total, **ok) >= 3
    missing = {"route": "/api/v1/listings/<listing_id>", "status": "404"}
    assert metric(http_after, total, **missing) - metric(http_before, total, **missing) >= 1
    bucket = "mutualis_http_request_duration_seconds_bucket"
    every = {**route, "le": "+Inf"}
    assert metric(http_after, bucket, **every) - metric(http_before, bucket, **every) >= 3
    bounds = {
        sample.labels["le"]
        for family in text_string_to_metric_families(http_after)
        for sample in family.samples
        if sample.name == bucket and route.items() <= sample.labels.items()
    }
    assert "+Inf" in bounds and len(bounds) > 1
    rpc = "mutualis_rpc_requests_total"
    assert metric(rpc_after, rpc, **searches) - metric(rpc_before, rpc, **searches) >= 3


# -- listings: the routes that change things -------------------------------------------


def test_an_edit_changes_the_fields_sent_and_bumps_the_revision(stack):
    manager = stack.session("manager", OWNER)
    listing = publish(stack, manager)
    assert listing["revision"] == 1
    title = f"Broyeur de végétaux révisé {uuid.uuid4().hex}"

    edited = manager.patch(
        f"{stack.url}{LISTINGS}/{listing['id']}", json={"title": title, "rate_cents": 11000}
    )

    assert edited.status_code == 200, edited.text
    view = edited.json()
    assert (view["title"], view["rate_cents"], view["revision"]) == (title, 11000, 2)
    assert view["deposit_cents"] == listing["deposit_cents"]
    seen = stack.session("agent", NEIGHBOUR).get(f"{stack.url}{LISTINGS}/{listing['id']}").json()
    assert (seen["title"], seen["rate_cents"], seen["revision"]) == (title, 11000, 2)
    agent = stack.session("agent", NEIGHBOUR)
    assert search_ids(stack, agent, q=token_of(view)) == [listing["id"]]
    assert search_ids(stack, agent, q=token_of(listing)) == []


def test_search_filters_combine_and_punctuation_in_q_is_no_wildcard(stack):
    manager = stack.session("manager", OWNER)
    tag = uuid.uuid4().hex
    shredder = publish(stack, manager, title=f"Broyeur 100%_pro {tag}")
    trailer = publish(
        stack,
        manager,
        title=f"Remorque 100 pro {tag}",
        category="deneigement",
        kind="vehicle",
        rate_cents=20000,
    )
    agent = stack.session("agent", NEIGHBOUR)

    assert sorted(search_ids(stack, agent, q=tag)) == sorted([shredder["id"], trailer["id"]])
    # words are matched folded, without punctuation: % and _ are never LIKE's wildcards
    both = [trailer["id"], shredder["id"]]  # newest first
    assert search_ids(stack, agent, q=f"pro_ {tag}") == both
    assert search_ids(stack, agent, q=f"100% {tag}") == both
    assert search_ids(stack, agent, q=f"_ % {tag}") == both
    assert search_ids(stack, agent, q=f"{tag} deneigement", kind="vehicle") == [trailer["id"]]
    assert search_ids(stack, agent, q=tag, category="espaces-verts") == [shredder["id"]]
    assert search_ids(stack, agent, q=tag, max_rate_cents=10000) == [shredder["id"]]
    assert search_ids(stack, agent, q=tag, kind="vehicle", max_rate_cents=10000) == []
    near = search_ids(stack, agent, q=tag, near=NEIGHBOUR, radius_km=20, category="deneigement")
    assert near == [trailer["id"]]
    assert search_ids(stack, agent, q=tag, near=NEIGHBOUR, radius_km=2) == []


def test_a_blackout_is_busy_in_availability_and_hides_the_listing_from_search(stack):
    manager = stack.session("manager", OWNER)
    listing = publish(stack, manager)
    closure = {
        "start": "2031-03-04T08:00:00+01:00",
        "end": "2031-03-06T18:00:00+01:00",
        "reason": "Révision annuelle",
    }

    added = manager.post(f"{stack.url}{LISTINGS}/{listing['id']}/blackouts", json=closure)

    assert added.status_code == 201, added.text
    view = added.json()
    assert view["revision"] == 2
    assert [(b["reason"], instant(b["start"]), instant(b["end"])) for b in view["blackouts"]] == [
        (closure["reason"], instant(closure["start"]), instant(closure["end"]))
    ]

    agent = stack.session("agent", NEIGHBOUR)
    answer = agent.get(
        f"{stack.url}{LISTINGS}/{listing['id']}/availability",
        params={"from": "2031-03-01", "to": "2031-03-10"},
    )
    assert answer.status_code == 200, answer.text
    availability = answer.json()
    assert availability["listing_id"] == listing["id"]
    start, end = instant(closure["start"]), instant(closure["end"])
    assert periods(availability["busy"]) == [(start, end)]
    month_start = instant("2031-03-01T00:00:00+01:00")
    window_end = instant("2031-03-11T00:00:00+01:00")  # the `to` day is included
    assert periods(availability["free"]) == [(month_start, start), (end, window_end)]

    token = token_of(listing)
    overlapping = {"available_from": "2031-03-05", "available_to": "2031-03-05"}
    assert search_ids(stack, agent, q=token, **overlapping) == []
    after = {"available_from": "2031-03-07", "available_to": "2031-03-08"}
    assert search_ids(stack, agent, q=token, **after) == [listing["id"]]
    touching = {"available_from": closure["end"], "available_to": "2031-03-07T10:00:00+01:00"}
    assert search_ids(stack, agent, q=token, **touching) == [listing["id"]]  # half-open


def test_a_withdrawn_listing_is_hidden_from_others_and_withdrawing_is_idempotent(stack):
    manager = stack.session("manager", OWNER)
    listing = publish(stack, manager)
    url = f"{stack.url}{LISTINGS}/{listing['id']}"
    events = "SELECT count(*) FROM outbox WHERE body LIKE :id"

    withdrawn = manager.delete(url)

    assert withdrawn.status_code == 200, withdrawn.text
    assert (withdrawn.json()["status"], withdrawn.json()["revision"]) == ("withdrawn", 2)
    neighbour = stack.session("agent", NEIGHBOUR)
    assert_problem(neighbour.get(url), 404)
    own = manager.get(url)
    assert own.status_code == 200
    assert own.json()["status"] == "withdrawn"
    token = token_of(listing)
    assert search_ids(stack, neighbour, q=token) == []
    assert search_ids(stack, manager, q=token) == []
    emitted = count(stack, events, id=f"%{listing['id']}%")
    assert emitted == 2  # published, withdrawn

    again = manager.delete(url)

    assert again.status_code == 200, again.text
    assert (again.json()["status"], again.json()["revision"]) == ("withdrawn", 2)
    assert count(stack, events, id=f"%{listing['id']}%") == emitted


# -- communes and /me ------------------------------------------------------------------


def test_communes_are_found_by_name(stack):
    answer = requests.get(f"{stack.url}/api/v1/communes", params={"q": "chambon"}, timeout=10)
    assert answer.status_code == 200
    found = {c["insee_code"]: c["name"] for c in answer.json()["items"]}
    assert found.get("42044") == "Le Chambon-Feugerolles"


def test_one_commune_has_its_siren_coordinates_and_epci(stack):
    answer = requests.get(f"{stack.url}/api/v1/communes/42044", timeout=10)
    assert answer.status_code == 200
    commune = answer.json()
    assert commune["insee_code"] == "42044"
    assert commune["name"] == "Le Chambon-Feugerolles"
    assert commune["siren"] == "214200446"
    assert commune["epci"]["siren"] == "244200770"
    assert commune["latitude"] is not None and commune["longitude"] is not None


def test_an_unknown_commune_is_a_404_problem(stack):
    assert_problem(requests.get(f"{stack.url}/api/v1/communes/99999", timeout=10), 404)


def test_me_says_who_the_token_belongs_to(stack):
    answer = stack.session("manager", OWNER).get(f"{stack.url}/api/v1/me")
    assert answer.status_code == 200
    me = answer.json()
    assert set(me) >= {"id", "email", "name", "commune", "roles"}
    assert me["id"]
    assert me["email"] == f"manager.{OWNER}@mutualis-demo.fr"
    assert me["name"]
    assert me["commune"] == {"insee_code": OWNER, "name": "Le Chambon-Feugerolles"}
    assert me["roles"] == ["manager"]


def test_the_token_endpoint_refuses_bad_input_with_a_problem(stack):
    url = f"{stack.url}/api/v1/auth/token"
    nul = requests.post(url, json={"email": "manager\x00@mutualis-demo.fr", "password": "x"})
    assert [e["field"] for e in assert_problem(nul, 422)["errors"]] == ["email"]
    wrong = requests.post(
        url, json={"email": f"manager.{OWNER}@mutualis-demo.fr", "password": "wrong"}
    )
    assert_problem(wrong, 401)
