"""The contract serves generated clients (issue 21): openapi-python-client makes a Python
client of the document the gateway serves, with no warning (nothing dropped), and a booking
tells its whole story through that client alone, typed end to end."""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import requests

from tests.support import day

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
# media types the generator does not know by name, read as the bytes they are
CONFIG = """content_type_overrides:
  application/pdf: application/octet-stream
  application/xml: application/octet-stream
  text/calendar: application/octet-stream
  image/jpeg: application/octet-stream
  image/png: application/octet-stream
  image/webp: application/octet-stream
"""
PACKAGE = "mutualis_generated_client"


# where the package generated from a document (by its SHA-256) is: the other backend's
# stack serves the same document, whose generation (some 20 s) was checked already
_generated: dict[str, Path] = {}


def generated_client(stack, where: Path):
    """The package generated from the served document, imported; fails on any warning."""
    document = requests.get(f"{stack.url}/api/openapi.json").text
    served = hashlib.sha256(document.encode()).hexdigest()
    if served not in _generated:
        generate(document, where)
        _generated[served] = where
    where = _generated[served]
    for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
        del sys.modules[name]  # the other backend's run imported one too
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))


def generate(document: str, where: Path) -> None:
    """openapi-python-client's package of `document` in `where`; fails on any warning."""
    (where / "openapi.json").write_text(document)
    (where / "config.yml").write_text(CONFIG)
    done = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            "openapi.json",
            "--config",
            "config.yml",
            "--meta",
            "none",
            "--output-path",
            PACKAGE,
        ],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        # its post-generation hooks run ruff, found beside the interpreter
        env={**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ['PATH']}"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "warning" not in output.lower(), output


def test_a_generated_client_books_a_listing_from_search_to_return(stack, tmp_path):
    generated_client(stack, tmp_path)
    from mutualis_generated_client.api.auth import issue_token
    from mutualis_generated_client.api.bookings import (
        approve_booking,
        bookings_calendar,
        check_out_booking,
        get_booking,
        request_booking,
        return_booking,
    )
    from mutualis_generated_client.api.listings import publish_listing, search_listings
    from mutualis_generated_client.client import AuthenticatedClient, Client
    from mutualis_generated_client.models import (
        BookingCreated,
        BookingRequest,
        BookingStatus,
        BookingView,
        Category,
        Condition,
        ConflictProblem,
        Kind,
        ListingDraft,
        ListingPage,
        ListingView,
        PricingUnit,
        ReturnReport,
        TokenRequest,
        TokenResponse,
    )
    from mutualis_generated_client.types import File

    def signed_in(email: str) -> AuthenticatedClient:
        anonymous = Client(base_url=stack.url)
        token = issue_token.sync(
            client=anonymous, body=TokenRequest(email=email, password="mutualis-demo")
        )
        assert isinstance(token, TokenResponse), token
        return AuthenticatedClient(base_url=stack.url, token=token.access_token)

    lender = signed_in("manager.42044@mutualis-demo.fr")
    borrower = signed_in("agent.42218@mutualis-demo.fr")
    other = signed_in("agent.42095@mutualis-demo.fr")

    title = f"Broyeur de branches {uuid.uuid4().hex[:8]}"
    listing = publish_listing.sync(
        client=lender,
        body=ListingDraft(
            title=title,
            category=Category.ESPACES_VERTS,
            kind=Kind.EQUIPMENT,
            pricing_unit=PricingUnit.DAY,
            rate_cents=9000,
        ),
    )
    assert isinstance(listing, ListingView), listing
    stack.known_to_bookings({"id": listing.id, "revision": listing.revision})

    # the listing's own category types the search's filter
    found = search_listings.sync(client=borrower, q=title, category=listing.category)
    assert isinstance(found, ListingPage), found
    assert [item.id for item in found.items] == [listing.id]

    # dates are days in Paris: today while it lasts there, and tomorrow
    asked = BookingRequest(
        listing_id=listing.id, start=date.fromisoformat(day(0)), end=date.fromisoformat(day(2))
    )
    booked = request_booking.sync(client=borrower, body=asked)
    assert isinstance(booked, BookingCreated), booked
    assert booked.status == BookingStatus.REQUESTED
    clash = request_booking.sync(client=other, body=asked)
    assert isinstance(clash, ConflictProblem), clash
    assert clash.conflicting_period.start and clash.conflicting_period.end

    approved = approve_booking.sync(booked.id, client=lender)
    assert isinstance(approved, BookingView) and approved.status == BookingStatus.APPROVED
    out = check_out_booking.sync(booked.id, client=lender, body=Condition(condition="bon état"))
    assert isinstance(out, BookingView) and out.status == BookingStatus.CHECKED_OUT
    back = return_booking.sync(booked.id, client=lender, body=ReturnReport(condition="bon état"))
    assert isinstance(back, BookingView) and back.status == BookingStatus.RETURNED

    seen = get_booking.sync(booked.id, client=borrower)
    assert isinstance(seen, BookingView) and seen.status == BookingStatus.RETURNED
    calendar = bookings_calendar.sync(client=borrower)
    assert isinstance(calendar, File), calendar
    assert calendar.payload.read().startswith(b"BEGIN:VCALENDAR")
