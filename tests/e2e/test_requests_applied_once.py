"""Through the gateway: every RPC of a request that changes something carries a request id
of its own, which the service records with the change and the reply it sent
(infra.exactly_once); the RPCs of a read carry none and record nothing."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import text

from tests.e2e.test_bookings_flow import SNOWPLOUGH, snowplough  # noqa: F401 (its fixture)
from tests.support import day


def recorded(stack, component: str) -> dict[str, dict]:
    with stack.database(component).connect() as conn:
        return {
            row.request_id: {"method": row.method, "reply": row.reply}
            for row in conn.execute(text("SELECT request_id, method, reply FROM rpc_requests"))
        }


def test_a_publication_is_recorded_with_its_reply_and_a_search_is_not(stack):
    lender = stack.as_role("manager", "42044")
    before = recorded(stack, "listings")

    published = lender.post(
        f"{stack.url}/api/v1/listings",
        json=SNOWPLOUGH | {"title": f"Chasse-neige {uuid.uuid4().hex[:6]}"},
    )
    assert published.status_code == 201, published.text
    found = lender.get(f"{stack.url}/api/v1/listings", params={"q": "chasse-neige"})
    assert found.status_code == 200

    new = {k: v for k, v in recorded(stack, "listings").items() if k not in before}
    assert len(new) == 1  # the publication's call; the search's carried no id
    (request,) = new.values()
    reply = json.loads(request["reply"])
    assert reply["error"] is None
    assert reply["result"]["id"] == published.json()["id"]


def test_a_retry_after_a_server_error_is_answered_from_what_the_first_try_did(stack):
    """The first try of a keyed request acted, but its client got a 5xx (the gateway's
    deadline passed, say): the gateway frees the key, as it does after any 5xx. The retry,
    same key and body, makes the same calls with the same request ids, and the service
    answers them from what it stored: the same listing, published once."""
    lender = stack.as_role("manager", "42044")
    key = uuid.uuid4().hex
    draft = SNOWPLOUGH | {"title": f"Chasse-neige {key[:6]}"}
    headers = {"Idempotency-Key": key}
    first = lender.post(f"{stack.url}/api/v1/listings", json=draft, headers=headers)
    assert first.status_code == 201, first.text
    with stack.database("gateway").begin() as conn:  # what a 5xx answer leaves
        conn.execute(text("DELETE FROM idempotency_keys WHERE key = :key"), {"key": key})

    retried = lender.post(f"{stack.url}/api/v1/listings", json=draft, headers=headers)

    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers  # the gateway did run it again
    assert retried.json()["id"] == first.json()["id"]
    with stack.database("listings").connect() as conn:
        titles = conn.scalar(
            text("SELECT count(*) FROM listings WHERE title = :title"), {"title": draft["title"]}
        )
    assert titles == 1


def test_a_booking_and_a_refused_one_are_recorded_with_the_replies_they_got(stack, request):
    """Booking requests are decided by a group commit whose outcome is the reply: each
    request's reply, a booking or a 409, is stored with the batch that decided it."""
    listing_id = request.getfixturevalue("snowplough")
    borrower = stack.as_role("agent", "42218")
    before = recorded(stack, "bookings")
    booked = borrower.post(
        f"{stack.url}/api/v1/bookings",
        json={"listing_id": listing_id, "start": day(50), "end": day(51)},
    )
    clash = borrower.post(
        f"{stack.url}/api/v1/bookings",
        json={"listing_id": listing_id, "start": day(50), "end": day(52)},
    )

    assert (booked.status_code, clash.status_code) == (201, 409), clash.text
    new = [
        json.loads(row["reply"])
        for request_id, row in recorded(stack, "bookings").items()
        if request_id not in before and row["method"] == "bookings.request"
    ]
    assert sorted(reply["result"]["id"] for reply in new if reply["result"]) == [
        booked.json()["id"]
    ]
    assert [reply["error"]["exc_type"] for reply in new if reply["error"]] == ["Conflict"]
