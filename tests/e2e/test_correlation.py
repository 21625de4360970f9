"""One request is followed through every process by its X-Request-ID, in JSON logs."""

from __future__ import annotations

import json
import uuid

import requests

from tests.support import wait_until


def log_lines(stack, process: str) -> list[dict]:
    lines = []
    for raw in (stack.logs / f"{process}.log").read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    return lines


def test_the_request_id_travels_to_the_service_and_through_events(stack):
    request_id = f"trace-{uuid.uuid4().hex[:12]}"
    manager = stack.as_role("manager", "42044")
    published = manager.post(
        f"{stack.url}/api/v1/listings",
        headers={"X-Request-ID": request_id},
        json={
            "title": "Nacelle élévatrice 12 m",
            "category": "batiment",
            "kind": "equipment",
            "pricing_unit": "day",
            "rate_cents": 15000,
        },
    )
    assert published.status_code == 201
    assert published.headers["X-Request-ID"] == request_id

    def logged_by(process: str):
        return lambda: [
            line for line in log_lines(stack, process) if line.get("correlation_id") == request_id
        ]

    # the listings service logs its work under the gateway's id (nameko's RPC context) …
    assert wait_until(logged_by("listings"), timeout=5)
    # … and the event it emitted carries it to the bookings service's handler
    applied = wait_until(logged_by("bookings"), timeout=5)
    assert "listing.published" in applied[0]["message"]


def test_the_pages_keep_the_callers_request_id_and_replace_an_unsafe_one(stack):
    request_id = f"page-{uuid.uuid4().hex[:12]}"
    page = requests.get(f"{stack.url}/connexion", headers={"X-Request-ID": request_id})
    assert page.status_code == 200
    assert page.headers["X-Request-ID"] == request_id

    unsafe = requests.get(f"{stack.url}/connexion", headers={"X-Request-ID": "a b\tc"})
    assert unsafe.headers["X-Request-ID"] not in ("", "a b\tc")
