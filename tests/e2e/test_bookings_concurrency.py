"""Many communes asking for the same slot at once, through the gateway, on both databases:
a listing is never booked beyond its quantity, and what the answers say is what is stored."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests
from sqlalchemy import text

from tests.support import at, day, instant

LENDER = "42044"
BORROWERS = [
    (role, insee) for insee in ("42218", "42095", "42207", "42189") for role in ("agent", "manager")
]
ACTIVE = "('requested', 'approved', 'checked_out')"


def period(start: str, end: str) -> tuple[datetime, datetime]:
    return instant(start), instant(end)


@pytest.fixture(scope="module")
def tokens(stack) -> list[str]:
    """Authorization headers of eight users of four borrowing communes; first, the services'
    connection pools are warmed up, so that the requests of the tests really meet."""
    headers = [stack.as_role(r, i).headers["Authorization"] for r, i in BORROWERS]

    def read(n: int) -> int:
        return requests.get(
            f"{stack.url}/api/v1/bookings",
            params={"limit": 1},
            headers={"Authorization": headers[n % len(headers)]},
            timeout=30,
        ).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert set(pool.map(read, range(40))) == {200}
    return headers


def publish(stack, **terms) -> dict:
    lender = stack.as_role("manager", LENDER)
    draft = {
        "title": f"Barnum x{uuid.uuid4().hex[:8]}",
        "category": "evenementiel",
        "kind": "equipment",
        "pricing_unit": "day",
        "rate_cents": 8000,
    } | terms
    answer = lender.post(f"{stack.url}/api/v1/listings", json=draft)
    assert answer.status_code == 201, answer.text
    listing = answer.json()
    stack.known_to_bookings(listing)
    return listing


def fire(stack, tokens: list[str], listing: dict, periods: list[tuple[str, str]]):
    """Every request at once, each from the next borrowing user in turn."""

    def one(n: int) -> requests.Response:
        start, end = periods[n]
        return requests.post(
            f"{stack.url}/api/v1/bookings",
            json={"listing_id": listing["id"], "start": start, "end": end},
            headers={"Authorization": tokens[n % len(tokens)]},
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=len(periods)) as pool:
        return list(pool.map(one, range(len(periods))))


def call(stack, method: str, path: str, token: str, **body) -> dict:
    answer = requests.request(
        method,
        f"{stack.url}/api/v1/{path}",
        json=body if method == "POST" else None,
        headers={"Authorization": token},
        timeout=30,
    )
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


def stored(stack, listing: dict, query: str) -> int:
    with stack.database("bookings").connect() as conn:
        return conn.execute(text(query), {"listing": listing["id"]}).scalar_one()


OVERLAPPING_PAIRS = f"""
    SELECT count(*) FROM bookings a JOIN bookings b
      ON b.listing_id = a.listing_id AND a.id < b.id
     AND a.start < b."end" AND b.start < a."end"
    WHERE a.listing_id = :listing AND a.status IN {ACTIVE} AND b.status IN {ACTIVE}
"""
# the most units held at once: the peak is at the start of some booking
PEAK_UNITS = f"""
    SELECT coalesce(max(held), 0) FROM (
      SELECT sum(b.quantity) AS held FROM bookings a JOIN bookings b
        ON b.listing_id = a.listing_id AND b.start <= a.start AND a.start < b."end"
      WHERE a.listing_id = :listing AND a.status IN {ACTIVE} AND b.status IN {ACTIVE}
      GROUP BY a.id
    ) AS instants
"""
ACTIVE_BOOKINGS = (
    f"SELECT count(*) FROM bookings WHERE listing_id = :listing AND status IN {ACTIVE}"
)


def test_fifty_requests_for_one_slot_of_a_single_item_make_one_booking(stack, tokens):
    listing = publish(stack)
    answers = fire(stack, tokens, listing, [(day(10), day(12))] * 50)

    assert Counter(a.status_code for a in answers) == {201: 1, 409: 49}
    winner = next(a.json() for a in answers if a.status_code == 201)
    for refused in (a.json() for a in answers if a.status_code == 409):
        taken = refused["conflicting_period"]
        assert period(taken["start"], taken["end"]) == period(winner["start"], winner["end"])
    assert stored(stack, listing, ACTIVE_BOOKINGS) == 1
    assert stored(stack, listing, OVERLAPPING_PAIRS) == 0


def test_twenty_overlapping_requests_for_three_items_make_three_bookings(stack, tokens):
    listing = publish(stack, quantity=3)
    # every period holds day 21; they start and end on different days
    periods = [(day(20 + n % 2), day(22 + n % 3)) for n in range(20)]
    answers = fire(stack, tokens, listing, periods)

    assert Counter(a.status_code for a in answers) == {201: 3, 409: 17}
    assert stored(stack, listing, ACTIVE_BOOKINGS) == 3
    assert stored(stack, listing, PEAK_UNITS) == 3


def test_adjacent_hours_asked_at_once_are_both_booked(stack, tokens):
    listing = publish(stack, pricing_unit="hour", category="salles", kind="space")
    ten, noon, two = (at(15, hour).isoformat() for hour in (10, 12, 14))
    morning, midday = (ten, noon), (noon, two)
    answers = fire(stack, tokens, listing, [morning, midday] * 6)

    assert Counter(a.status_code for a in answers) == {201: 2, 409: 10}
    won = sorted(
        period(a.json()["start"], a.json()["end"]) for a in answers if a.status_code == 201
    )
    assert won == [period(*morning), period(*midday)]
    assert stored(stack, listing, OVERLAPPING_PAIRS) == 0


def test_slots_freed_at_once_each_go_to_a_waiting_request_once(stack, tokens):
    """Both holders of a two-item listing cancel at the same moment, on five listings at
    once: each of the two waiting requests is promoted, and only once."""
    holders, waiting = [], []
    for _ in range(5):
        listing = publish(stack, quantity=2)
        holders += [a.json() for a in fire(stack, tokens, listing, [(day(30), day(31))] * 2)]
        waiting += [
            call(
                stack,
                "POST",
                "bookings",
                tokens[2 + n],
                listing_id=listing["id"],
                start=day(30),
                end=day(31),
                wait_if_taken=True,
            )
            for n in range(2)
        ]
    assert {w["status"] for w in waiting} == {"waiting"}

    with ThreadPoolExecutor(max_workers=len(holders)) as pool:
        cancelled = pool.map(
            lambda h: call(stack, "POST", f"bookings/{h['id']}/cancel", tokens[0], reason="annulé"),
            holders,
        )
        assert {c["status"] for c in cancelled} == {"cancelled"}
    for w in waiting:
        history = call(stack, "GET", f"bookings/{w['id']}", tokens[2])["history"]
        assert [t["status"] for t in history] == ["waiting", "requested"]
