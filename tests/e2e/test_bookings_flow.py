"""The core flow through the gateway: Saint-Étienne books Le Chambon-Feugerolles'
snowplough, it is approved, handed over and returned with a damage; the event that billing
will charge from leaves exactly once, even when the bookings processes die after commit."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import text

from tests.support import assert_problem, day, listen, wait_until

SNOWPLOUGH = {
    "title": "Chasse-neige Unimog, lame 3 m",
    "category": "deneigement",
    "kind": "vehicle",
    "pricing_unit": "day",
    "rate_cents": 42000,
    "deposit_cents": 150000,
    "quantity": 1,
    "with_operator": True,
    "operator_rate_cents": 32000,
}


@pytest.fixture
def snowplough(stack):
    """A fresh snowplough of Le Chambon-Feugerolles, known to the bookings service."""
    lender = stack.as_role("manager", "42044")
    listing = lender.post(
        f"{stack.url}/api/v1/listings",
        json=SNOWPLOUGH | {"title": f"Chasse-neige {uuid.uuid4().hex[:6]}"},
    )
    assert listing.status_code == 201, listing.text
    listing_id = listing.json()["id"]
    borrower = stack.as_role("agent", "42218")

    def bookable():
        probe = borrower.post(
            f"{stack.url}/api/v1/bookings",
            json={"listing_id": listing_id, "start": day(400), "end": day(399)},
        )
        return probe.status_code == 422 and probe.json()["errors"][0]["field"] == "end"

    wait_until(bookable, timeout=5)  # the bookings read model has the listing
    return listing_id


@pytest.fixture
def returned_events(stack):
    """booking.returned events, from a queue of our own declared before anything happens."""
    return listen(stack.vhost.amqp_uri, "bookings.events", "booking.returned")


def test_book_approve_check_out_return_with_a_damage(stack, snowplough, returned_events):
    borrower = stack.as_role("agent", "42218")
    lender = stack.as_role("manager", "42044")

    asked = borrower.post(
        f"{stack.url}/api/v1/bookings",
        json={
            "listing_id": snowplough,
            "start": day(0),  # handed over on its first day: today
            "end": day(2),
            "purpose": "Déneigement des côtes de Montreynaud",
            "with_operator": False,
        },
    )
    assert asked.status_code == 201, asked.text
    booking = asked.json()
    assert booking["status"] == "requested"
    assert booking["borrower_commune"] == "42218"
    assert booking["lender_commune"] == "42044"
    assert booking["quote"] == {
        "units": 2,
        "pricing_unit": "day",
        "unit_rate_cents": 42000,
        "quantity": 1,
        "rental_cents": 84000,
        "operator_cents": 0,
        "amount_cents": 84000,
        "deposit_cents": 150000,
        "currency": "EUR",
        "late_fee_per_day_cents": 0,
    }
    path = f"{stack.url}/api/v1/bookings/{booking['id']}"

    assert borrower.post(f"{path}/approve").status_code == 403
    assert lender.post(f"{path}/approve").json()["status"] == "approved"
    out = lender.post(f"{path}/check-out", json={"condition": "Lame neuve, plein fait"})
    assert out.json()["status"] == "checked_out"
    back = lender.post(
        f"{path}/return",
        json={
            "condition": "Rétroviseur gauche cassé",
            "damages": [{"description": "Rétroviseur gauche", "amount_cents": 15000}],
        },
    )
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "returned"

    seen = borrower.get(path).json()
    assert [t["status"] for t in seen["history"]] == [
        "requested",
        "approved",
        "checked_out",
        "returned",
    ]
    assert seen["history"][1]["by_commune"] == "42044"

    events = wait_until(returned_events, timeout=5)
    time.sleep(0.5)  # anything sent twice would be there by now
    events += returned_events()
    assert len(events) == 1
    payload = events[0]["payload"]
    assert payload["booking_id"] == booking["id"]
    assert payload["lender_commune"] == "42044" and payload["borrower_commune"] == "42218"
    assert payload["quote"]["amount_cents"] == 84000
    # no reserve of the borrower's at the return: nothing contested
    assert payload["damages"] == [
        {"description": "Rétroviseur gauche", "amount_cents": 15000, "contest": None}
    ]


def test_the_returned_event_leaves_once_even_if_bookings_dies_after_commit(
    stack, snowplough, returned_events
):
    borrower = stack.as_role("agent", "42218")
    lender = stack.as_role("manager", "42044")
    booking = borrower.post(
        f"{stack.url}/api/v1/bookings",
        json={"listing_id": snowplough, "start": day(0), "end": day(1)},
    ).json()
    path = f"{stack.url}/api/v1/bookings/{booking['id']}"
    lender.post(f"{path}/approve")
    lender.post(f"{path}/check-out", json={"condition": "bon état"})

    stack.kill("bookings-relay")  # the event will sit in the outbox
    answer = lender.post(f"{path}/return", json={"condition": "bon état", "damages": []})
    assert answer.status_code == 200
    stack.kill("bookings")  # kill -9 right after the commit
    assert returned_events() == []

    stack.start_process("bookings")
    stack.start_process("bookings-relay")
    stack.wait_ready("bookings")
    events = wait_until(returned_events, timeout=10)
    time.sleep(0.5)  # a copy published again after the restart would be there by now
    events += returned_events()
    assert [e["payload"]["booking_id"] for e in events] == [booking["id"]]
    assert borrower.get(path).json()["status"] == "returned"


def test_an_overlapping_request_gets_409_with_the_conflicting_period(stack, snowplough):
    borrower = stack.as_role("agent", "42218")
    other = stack.as_role("agent", "42095")
    first = borrower.post(
        f"{stack.url}/api/v1/bookings",
        json={"listing_id": snowplough, "start": day(30), "end": day(33)},
    )
    assert first.status_code == 201
    clash = other.post(
        f"{stack.url}/api/v1/bookings",
        json={"listing_id": snowplough, "start": day(32), "end": day(34)},
    )
    assert clash.status_code == 409
    assert clash.headers["Content-Type"] == "application/problem+json"
    assert "conflicting_period" in clash.json()
    adjacent = other.post(
        f"{stack.url}/api/v1/bookings",
        json={"listing_id": snowplough, "start": day(33), "end": day(34)},
    )
    assert adjacent.status_code == 201


def test_a_listing_bookings_has_not_learned_yet_answers_503_to_retry(stack, snowplough):
    # its copy gone from bookings, as when the listing's event is still on the way
    with stack.database("bookings").begin() as conn:
        conn.execute(text("DELETE FROM listing_copies WHERE listing_id = :id"), {"id": snowplough})
    borrower = stack.session("agent", "42218")
    ask = {"listing_id": snowplough, "start": day(60), "end": day(61)}
    for path in ("bookings", "bookings/quote"):
        answer = borrower.post(f"{stack.url}/api/v1/{path}", json=ask)
        assert_problem(answer, 503)
        assert answer.headers["Retry-After"] == "1"

    unknown = borrower.post(f"{stack.url}/api/v1/bookings", json=ask | {"listing_id": "nope"})
    assert assert_problem(unknown, 422)["errors"][0]["type"] == "unknown_listing"


def test_only_the_two_communes_see_a_booking(stack, snowplough):
    borrower = stack.as_role("agent", "42218")
    booking = borrower.post(
        f"{stack.url}/api/v1/bookings",
        json={"listing_id": snowplough, "start": day(40), "end": day(41)},
    ).json()
    stranger = stack.as_role("agent", "42095")
    assert stranger.get(f"{stack.url}/api/v1/bookings/{booking['id']}").status_code == 404
    assert (
        stranger.post(f"{stack.url}/api/v1/bookings/{booking['id']}/cancel", json={}).status_code
        == 404
    )
    listed = stranger.get(f"{stack.url}/api/v1/bookings").json()["items"]
    assert booking["id"] not in [b["id"] for b in listed]
    mine = borrower.get(f"{stack.url}/api/v1/bookings", params={"as": "borrower"}).json()
    assert booking["id"] in [b["id"] for b in mine["items"]]


def test_a_quote_tells_the_price_and_what_would_refuse_without_booking(stack, snowplough):
    borrower = stack.as_role("agent", "42218")
    ask = {
        "listing_id": snowplough,
        "start": day(50),
        "end": day(52),
        "with_operator": True,
    }
    quoted = borrower.post(f"{stack.url}/api/v1/bookings/quote", json=ask)
    assert quoted.status_code == 200, quoted.text
    assert quoted.json()["quote"]["amount_cents"] == 2 * (42000 + 32000)
    assert quoted.json()["problems"] == [] and quoted.json()["conflict"] is None

    assert borrower.post(f"{stack.url}/api/v1/bookings", json=ask).status_code == 201
    again = borrower.post(f"{stack.url}/api/v1/bookings/quote", json=ask | {"quantity": 2})
    assert again.status_code == 200, again.text
    again = again.json()
    assert again["conflict"] is not None
    assert [p["type"] for p in again["problems"]] == ["quantity"]
    mine = borrower.get(f"{stack.url}/api/v1/bookings", params={"listing_id": snowplough}).json()[
        "items"
    ]
    assert len(mine) == 1  # quoting booked nothing
