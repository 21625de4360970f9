"""Bookings under load: `POST /api/v1/bookings` on distinct slots next to the floor, and
the lag from a committed `booking.returned` to billing having handled it."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from statistics import median

import requests
from sqlalchemy import text

from bench.load import Request, percentile
from tests.support import Stack

LISTINGS = 40  # requests spread over this many listings, each booked hour after hour
RETURNS = 200
OPEN_LOOP_THREADS = 64  # loans under way at once at most, when they start at a rate
HOURLY = {
    "category": "salles",
    "kind": "space",
    "pricing_unit": "hour",
    "rate_cents": 4000,
    "quantity": 1,
    "max_duration": 12,
}


def publish_listings(
    stack: Stack, count: int = LISTINGS, title: str = "Salle de réunion", **changes
) -> list[str]:
    """`count` hourly rooms of Le Chambon-Feugerolles (HOURLY with `changes`, e.g. a
    `quantity` of units each), once the
    bookings service knows them all (its read model learns of them from listing events)."""
    lender = stack.as_role("manager", "42044")
    ids = []
    for n in range(count):
        answer = lender.post(
            f"{stack.url}/api/v1/listings",
            json=HOURLY | changes | {"title": f"{title} {n + 1}"},
        )
        answer.raise_for_status()
        ids.append(answer.json()["id"])
    borrower = stack.as_role("agent", "42218")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the bookings read model must know every listing
        probe = borrower.post(
            f"{stack.url}/api/v1/bookings",
            json={
                "listing_id": ids[-1],
                "start": "2999-01-01T10:00:00+00:00",
                "end": "2999-01-01T10:30:00+00:00",
            },
        )
        if probe.status_code == 422 and probe.json()["errors"][0]["field"] != "listing_id":
            return ids
        time.sleep(0.2)
    raise TimeoutError("the bookings service never learnt of the listings")


def booking_requests(listing_ids: list[str], first_hour: datetime):
    """Requests for distinct slots, never one asked before, however many measured windows
    use this factory (each window numbers its requests from 0)."""
    sequence = itertools.count()

    def make(_n: int) -> Request:
        n = next(sequence)
        start = first_hour + timedelta(hours=n // len(listing_ids))
        return Request(
            "POST",
            "/api/v1/bookings",
            body={
                "listing_id": listing_ids[n % len(listing_ids)],
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
                "purpose": "bench",
            },
        )

    return make


def post_once(url: str, body, headers: dict, tries: int = 5) -> requests.Response:
    """POSTs, trying again after a 5xx (a busy machine may pass the gateway's deadline)
    with the same Idempotency-Key: the retry is answered from what the first try did."""
    key = uuid.uuid4().hex
    for _ in range(tries):
        answer = requests.post(
            url, json=body, headers={**headers, "Idempotency-Key": key}, timeout=30
        )
        if answer.status_code < 500:
            break
        time.sleep(0.5)
    return answer


def returned_lag(
    stack: Stack, count: int = RETURNS, clients: int = 8, rate: float | None = None
) -> dict:
    """Books, approves, hands over and returns `count` loans with `clients` clients at once,
    then reads when billing handled each `booking.returned` against when it occurred.

    With a `rate` (loans a second), the loans start at that pace whatever their answers'
    speed (an open loop: the load a deployment sees at a given traffic), instead of each
    client starting its next loan once its last is returned (a closed loop, which loads
    the stack as much as it can take)."""
    lender = stack.as_role("manager", "42044")
    borrower = stack.as_role("agent", "42218")
    # one slot of the current hour for every loan: a loan is handed over from its first
    # day only, so they are all of today, side by side on a listing with that many units
    key = uuid.uuid4().hex  # a first try that timed out is answered on the next one
    for _ in range(5):  # a service just started (or a busy machine) may miss the deadline
        published = lender.post(
            f"{stack.url}/api/v1/listings",
            json=HOURLY | {"title": "Salle des fêtes (bench)", "quantity": count},
            headers={"Idempotency-Key": key},
        )
        if published.status_code != 503:
            break
    published.raise_for_status()
    listing = published.json()["id"]
    time.sleep(1)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

    answered: dict[str, datetime] = {}

    def loan(n: int) -> str:
        for _ in range(50):
            asked = post_once(
                f"{stack.url}/api/v1/bookings",
                {
                    "listing_id": listing,
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=1)).isoformat(),
                },
                borrower.headers,
            )
            if asked.status_code == 201:
                break
            time.sleep(0.1)  # the listing copy may still be on its way
        path = f"{stack.url}/api/v1/bookings/{asked.json()['id']}"
        for step, body in (
            ("approve", None),
            ("check-out", {"condition": "ok"}),
            ("return", {"condition": "ok", "damages": []}),
        ):
            post_once(f"{path}/{step}", body, lender.headers).raise_for_status()
        answered[asked.json()["id"]] = datetime.now(UTC)  # the return's commit was before
        return asked.json()["id"]

    began = time.monotonic()
    if rate:
        ids = paced(loan, count, rate)
    else:
        with ThreadPoolExecutor(clients) as pool:
            ids = set(pool.map(loan, range(count)))
    loans_per_second = count / (time.monotonic() - began)
    billing_db = stack.database("billing")
    bookings_db = stack.database("bookings")
    try:
        occurred, returned = {}, {}
        with bookings_db.connect() as conn:
            for (body,) in conn.execute(
                text("SELECT body FROM outbox WHERE routing_key = 'booking.returned'")
            ):
                event = json.loads(body)
                if event["payload"]["booking_id"] in ids:
                    occurred[event["event_id"]] = datetime.fromisoformat(event["occurred_at"])
                    returned[event["event_id"]] = answered[event["payload"]["booking_id"]]
        deadline = time.monotonic() + 60
        while True:
            with billing_db.connect() as conn:
                handled = {
                    row.event_id: row.processed_at
                    for row in conn.execute(
                        text(
                            "SELECT event_id, processed_at FROM processed_events "
                            "WHERE event_type = 'booking.returned'"
                        )
                    )
                    if row.event_id in occurred
                }
            if len(handled) == len(occurred) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        with bookings_db.connect() as conn:  # when the relay had each confirmed
            published = {
                row.event_id: row.published_at
                for row in conn.execute(
                    text(
                        "SELECT event_id, published_at FROM outbox "
                        "WHERE routing_key = 'booking.returned' AND published_at IS NOT NULL"
                    )
                )
                if row.event_id in handled
            }
    finally:
        billing_db.dispose()
        bookings_db.dispose()
    lags = since_occurred(handled, occurred)
    until_published = since_occurred(published, occurred)
    # from the return's answer, which left after its commit: a bound from below (billing
    # may even have charged before the answer reached the client)
    after_answer = since_occurred(handled, returned)
    return {
        "returns": count,
        "loans_per_second": round(loans_per_second, 2),
        "events_handled": len(lags),
        "lag_p50_ms": round(median(lags) * 1000, 1) if lags else None,
        "lag_p99_ms": round(percentile(lags, 99) * 1000, 1) if lags else None,
        "lag_max_ms": round(lags[-1] * 1000, 1) if lags else None,
        # the part until the relay had the event confirmed (and marked it published)
        "published_p50_ms": (round(median(until_published) * 1000, 1) if until_published else None),
        "after_answer_p50_ms": round(median(after_answer) * 1000, 1) if lags else None,
        "after_answer_p99_ms": round(percentile(after_answer, 99) * 1000, 1) if lags else None,
        "published_p99_ms": (
            round(percentile(until_published, 99) * 1000, 1) if until_published else None
        ),
    }


def paced(loan, count: int, rate: float) -> set[str]:
    """`loan(n)` for n in range(count), the n-th started `n / rate` seconds after the first
    (late if every thread is still busy: the stack then cannot take that rate)."""
    began = time.monotonic()
    with ThreadPoolExecutor(OPEN_LOOP_THREADS) as pool:
        started = []
        for n in range(count):
            time.sleep(max(0.0, began + n / rate - time.monotonic()))
            started.append(pool.submit(loan, n))
        return {loan_started.result() for loan_started in started}


def since_occurred(moments: dict[str, datetime], occurred: dict[str, datetime]) -> list[float]:
    """Seconds from each event's occurrence to its moment, in order."""
    return sorted(
        ((at if at.tzinfo else at.replace(tzinfo=UTC)) - occurred[event_id]).total_seconds()
        for event_id, at in moments.items()
    )
