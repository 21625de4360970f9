"""Bad input on every listings route: a 4xx problem+json that names what is wrong, and
nothing stored — the rows of `listings`, `blackouts` and `outbox` are counted around each
request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support import assert_problem

OWNER = "42044"
NEIGHBOUR = "42218"
TABLES = ("listings", "blackouts", "outbox")
NO_BODY = object()

JSON = "application/json"
UNKNOWN = "{unknown}"
MARCH = {"from": "2031-03-01", "to": "2031-03-10"}
BLACKOUT = {"start": "2031-03-04T08:00:00+01:00", "end": "2031-03-06T18:00:00+01:00"}


def draft(**changes: Any) -> dict:
    return {
        "title": f"Nacelle élévatrice {uuid.uuid4().hex}",
        "description": "Nacelle 12 m sur porteur, pour l'élagage et l'éclairage public.",
        "category": "voirie",
        "kind": "vehicle",
        "pricing_unit": "day",
        "rate_cents": 25000,
        "deposit_cents": 100000,
        **changes,
    }


@dataclass(frozen=True)
class Bad:
    """One bad request to `route` ("METHOD path"). `{listing}` in the path is a fresh
    listing of OWNER unless `listing` names another id (UNKNOWN: an id nobody has). For a
    422, `fields` are the fields the answer must name, each once."""

    route: str
    status: int
    fields: tuple[str, ...] = ()
    listing: str | None = None
    json: Any = NO_BODY
    data: Any = None
    content_type: str | None = None
    params: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    role: str = "manager"
    commune: str = OWNER

    def send(self, session, base_url: str, listing_id: str):
        method, path = self.route.split(" ", 1)
        listing = (self.listing or listing_id).format(unknown=uuid.uuid4())
        headers = dict(self.headers)
        if self.content_type:
            headers["Content-Type"] = self.content_type
        kwargs: dict[str, Any] = {"params": self.params, "headers": headers, "timeout": 10}
        if self.json is not NO_BODY:
            kwargs["json"] = self.json
        if self.data is not None:
            kwargs["data"] = self.data
        return session.request(method, base_url + path.format(listing=listing), **kwargs)


def case(route: str, name: str, status: int, fields: str = "", **request: Any):
    """`fields`: the fields a 422 names, separated by spaces."""
    return pytest.param(Bad(route, status, tuple(fields.split()), **request), id=name)


PUBLISH = "POST /api/v1/listings"
SEARCH = "GET /api/v1/listings"
GET = "GET /api/v1/listings/{listing}"
PATCH = "PATCH /api/v1/listings/{listing}"
DELETE = "DELETE /api/v1/listings/{listing}"
BLACKOUTS = "POST /api/v1/listings/{listing}/blackouts"
AVAILABILITY = "GET /api/v1/listings/{listing}/availability"

# fmt: off
CASES = [
    # -- POST /api/v1/listings ------------------------------------------------------------
    case(PUBLISH, "publish-empty", 422, "title category kind pricing_unit rate_cents", json={}),
    case(PUBLISH, "publish-several-bad-fields", 422, "title kind rate_cents currency",
         json=draft(title="ab", kind="boat", rate_cents=-1, currency="USD")),
    case(PUBLISH, "publish-unknown-category", 422, "category", json=draft(category="x")),
    case(PUBLISH, "publish-float-cents", 422, "rate_cents", json=draft(rate_cents=1.5)),
    case(PUBLISH, "publish-for-another-commune", 422, "owner_commune",
         json=draft(owner_commune=NEIGHBOUR)),
    case(PUBLISH, "publish-max-below-min-duration", 422, "max_duration",
         json=draft(min_duration=3, max_duration=2)),
    case(PUBLISH, "publish-nul-in-title", 422, "title", json=draft(title="Nac\x00elle")),
    case(PUBLISH, "publish-a-list", 422, "body", json=[draft()]),
    case(PUBLISH, "publish-malformed-json", 400, data='{"title": ', content_type=JSON),
    case(PUBLISH, "publish-not-utf8", 400, data=b'{"title": "\xff"}', content_type=JSON),
    case(PUBLISH, "publish-too-deep", 400, data="[" * 100_000, content_type=JSON),
    case(PUBLISH, "publish-text-plain", 415, data="title=Nacelle", content_type="text/plain"),
    case(PUBLISH, "publish-form", 415, data={"title": "Nacelle"}),
    case(PUBLISH, "publish-as-agent", 403, json=draft(), role="agent"),
    case(PUBLISH, "publish-as-finance", 403, json=draft(), role="finance"),
    case(PUBLISH, "publish-idempotency-key-too-long", 422, "Idempotency-Key", json=draft(),
         headers={"Idempotency-Key": "k" * 201}),
    case(PUBLISH, "publish-idempotency-key-with-nul", 422, "Idempotency-Key", json=draft(),
         headers={"Idempotency-Key": "k\x00k"}),
    # -- GET /api/v1/listings -------------------------------------------------------------
    case(SEARCH, "search-near-unknown-commune", 422, "near", params={"near": "99999"}),
    case(SEARCH, "search-near-not-a-code", 422, "near", params={"near": "chambon"}),
    case(SEARCH, "search-radius-without-near", 422, "radius_km", params={"radius_km": 5}),
    case(SEARCH, "search-radius-zero", 422, "radius_km",
         params={"near": NEIGHBOUR, "radius_km": 0}),
    case(SEARCH, "search-unknown-kind-and-category", 422, "kind category",
         params={"kind": "boat", "category": "nope"}),
    case(SEARCH, "search-from-without-to", 422, "available_to",
         params={"available_from": "2031-03-01"}),
    case(SEARCH, "search-to-before-from", 422, "available_to",
         params={"available_from": "2031-03-05", "available_to": "2031-03-01"}),
    case(SEARCH, "search-naive-datetime", 422, "available_from",
         params={"available_from": "2031-03-01T10:00:00", "available_to": "2031-03-02"}),
    case(SEARCH, "search-year-9999", 422, "available_to",
         params={"available_from": "2031-03-01", "available_to": "9999-12-31"}),
    case(SEARCH, "search-limit-zero", 422, "limit", params={"limit": 0}),
    case(SEARCH, "search-limit-too-big", 422, "limit", params={"limit": 1000}),
    case(SEARCH, "search-negative-max-rate", 422, "max_rate_cents", params={"max_rate_cents": -1}),
    case(SEARCH, "search-bad-cursor", 422, "cursor", params={"cursor": "not-ours"}),
    case(SEARCH, "search-unknown-parameter", 422, "colour", params={"colour": "red"}),
    # -- GET / PATCH / DELETE /api/v1/listings/{id} ---------------------------------------
    case(GET, "get-unknown-id", 404, listing=UNKNOWN),
    case(GET, "get-not-an-id", 404, listing="not-an-id"),
    case(GET, "get-nul-id", 404, listing="%00"),
    case(PATCH, "patch-unknown-id", 404, listing=UNKNOWN, json={"rate_cents": 1}),
    case(PATCH, "patch-nul-id", 404, listing="%00", json={"rate_cents": 1}),
    case(PATCH, "patch-bad-rate", 422, "rate_cents", json={"rate_cents": "cheap"}),
    case(PATCH, "patch-null-title", 422, "title", json={"title": None}),
    case(PATCH, "patch-currency", 422, "currency", json={"currency": "USD"}),
    case(PATCH, "patch-max-below-min-duration", 422, "max_duration",
         json={"min_duration": 3, "max_duration": 2}),
    case(PATCH, "patch-nul-in-rules", 422, "rules", json={"rules": "\x00"}),
    case(PATCH, "patch-malformed-json", 400, data="{rate_cents: 1}", content_type=JSON),
    case(PATCH, "patch-text-plain", 415, data="rate_cents=1", content_type="text/plain"),
    case(PATCH, "patch-as-agent", 403, json={"rate_cents": 1}, role="agent"),
    case(PATCH, "patch-by-a-neighbour", 403, json={"rate_cents": 1}, commune=NEIGHBOUR),
    case(DELETE, "delete-unknown-id", 404, listing=UNKNOWN),
    case(DELETE, "delete-nul-id", 404, listing="%00"),
    case(DELETE, "delete-as-agent", 403, role="agent"),
    case(DELETE, "delete-by-a-neighbour", 403, commune=NEIGHBOUR),
    # -- POST /api/v1/listings/{id}/blackouts ---------------------------------------------
    case(BLACKOUTS, "blackout-end-before-start", 422, "end",
         json={"start": BLACKOUT["end"], "end": BLACKOUT["start"]}),
    case(BLACKOUTS, "blackout-end-equals-start", 422, "end",
         json={"start": BLACKOUT["start"], "end": BLACKOUT["start"]}),
    case(BLACKOUTS, "blackout-naive-datetimes", 422, "start end",
         json={"start": "2031-03-04T08:00:00", "end": "2031-03-06T18:00:00"}),
    case(BLACKOUTS, "blackout-missing-end", 422, "end", json={"start": BLACKOUT["start"]}),
    case(BLACKOUTS, "blackout-year-1", 422, "start",
         json={**BLACKOUT, "start": "0001-01-01T00:00:00+05:00"}),
    case(BLACKOUTS, "blackout-nul-reason", 422, "reason", json={**BLACKOUT, "reason": "\x00"}),
    case(BLACKOUTS, "blackout-unknown-field", 422, "until", json={**BLACKOUT, "until": 1}),
    case(BLACKOUTS, "blackout-malformed-json", 400, data='{"start": }', content_type=JSON),
    case(BLACKOUTS, "blackout-unknown-id", 404, listing=UNKNOWN, json=BLACKOUT),
    case(BLACKOUTS, "blackout-as-agent", 403, json=BLACKOUT, role="agent"),
    case(BLACKOUTS, "blackout-by-a-neighbour", 403, json=BLACKOUT, commune=NEIGHBOUR),
    # -- GET /api/v1/listings/{id}/availability -------------------------------------------
    case(AVAILABILITY, "availability-no-window", 422, "from to"),
    case(AVAILABILITY, "availability-no-from", 422, "from", params={"to": "2031-03-10"}),
    case(AVAILABILITY, "availability-bad-from", 422, "from", params={**MARCH, "from": "soon"}),
    case(AVAILABILITY, "availability-naive-from", 422, "from",
         params={**MARCH, "from": "2031-03-01T10:00:00"}),
    case(AVAILABILITY, "availability-to-before-from", 422, "to",
         params={"from": "2031-03-10", "to": "2031-03-01"}),
    case(AVAILABILITY, "availability-empty-window", 422, "to",
         params={"from": BLACKOUT["start"], "to": BLACKOUT["start"]}),
    case(AVAILABILITY, "availability-year-9999", 422, "to", params={**MARCH, "to": "9999-12-31"}),
    case(AVAILABILITY, "availability-unknown-parameter", 422, "colour",
         params={**MARCH, "colour": "red"}),
    case(AVAILABILITY, "availability-unknown-id", 404, listing=UNKNOWN, params=MARCH),
    case(AVAILABILITY, "availability-nul-id", 404, listing="%00", params=MARCH),
]
# fmt: on


@pytest.mark.parametrize("bad", CASES)
def test_bad_input_is_refused_and_nothing_is_stored(stack, bad: Bad):
    listing = stack.session("manager", OWNER).post(f"{stack.url}/api/v1/listings", json=draft())
    assert listing.status_code == 201, listing.text
    caller = stack.session(bad.role, bad.commune)
    before = stack.row_counts("listings", TABLES)

    answer = bad.send(caller, stack.url, listing.json()["id"])

    problem = assert_problem(answer, bad.status)
    if bad.status == 422:
        named = [error["field"] for error in problem["errors"]]
        assert sorted(named) == sorted(bad.fields), problem["errors"]
        assert all(error["message"] for error in problem["errors"])
    assert stack.row_counts("listings", TABLES) == before


def test_a_withdrawn_listing_can_no_longer_change(stack):
    manager = stack.session("manager", OWNER)
    listing = manager.post(f"{stack.url}/api/v1/listings", json=draft(), timeout=10).json()
    assert manager.delete(f"{stack.url}/api/v1/listings/{listing['id']}").status_code == 200
    before = stack.row_counts("listings", TABLES)

    edit = manager.patch(f"{stack.url}/api/v1/listings/{listing['id']}", json={"rate_cents": 1})
    closure = manager.post(f"{stack.url}/api/v1/listings/{listing['id']}/blackouts", json=BLACKOUT)

    assert_problem(edit, 409)
    assert_problem(closure, 409)
    assert stack.row_counts("listings", TABLES) == before
