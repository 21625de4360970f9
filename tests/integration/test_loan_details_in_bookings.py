"""The details of a loan in the bookings service, on a migrated database of each backend: the
lender's contact and pick-up address, kept in its copy of the listing, on the booking's
answer and in booking.approved; and the photos of the condition at hand-over and return
(either commune, at the right moment, never another commune's, never twice the same)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
import time_machine
from nameko.testing.services import worker_factory
from sqlalchemy import func, select

from contracts.bookings import BookingRequest, condition_photo_prefix
from contracts.caller import Caller, Role
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from contracts.listings import Contact, content_keys
from infra.database import DatabaseAccess, make_engine
from infra.messaging_tables import outbox
from infra.migrations import upgrade
from services.bookings import repository
from services.bookings.models import ConditionPhotoRow
from services.bookings.service import Ask, Service, decide_requests
from tests.support.schema import migrated
from tests.unit.test_bookings_domain import listing

BORROWER = Caller(user_id="u1", commune="42218", roles=frozenset({Role.AGENT}))
LENDER = Caller(user_id="u2", commune="42044", roles=frozenset({Role.MANAGER}))
STRANGER = Caller(user_id="u3", commune="42095", roles=frozenset({Role.MANAGER}))
OPERATOR = Caller(user_id="u4", commune="42218", roles=frozenset({Role.OPERATOR}))
MORNING = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # 7:00 in Paris


@pytest.fixture
def bookings(database_url):
    migrated("bookings", database_url)
    db = DatabaseAccess(make_engine(database_url), "bookings", None, "bookings.requests")
    plough = listing(
        listing_id="plough",
        contact=Contact(name="Jean Morel", phone="04 77 12 34 56"),
        pickup_address="Centre technique municipal",
        pickup_instructions="Portail B",
    )
    with db.transaction() as tx:
        repository.keep_listing_copies(tx.session, [plough])
    yield db, worker_factory(Service, db=db)
    db.engine.dispose()


def as_rpc(caller: Caller) -> dict:
    return caller.model_dump(mode="json")


def stored(booking_id: str, image: bytes = b"a scratch") -> dict:
    digest = hashlib.sha256(image).hexdigest()
    key, thumbnail = content_keys(condition_photo_prefix(booking_id), digest, "jpg")
    return {
        "digest": digest,
        "key": key,
        "thumbnail_key": thumbnail,
        "content_type": "image/jpeg",
        "width": 640,
        "height": 480,
        "size_bytes": 40_000,
    }


def approved_loan(db, service) -> dict:
    asked = BookingRequest.model_validate(
        {"listing_id": "plough", "start": "2026-12-07", "end": "2026-12-08"}
    )
    (booking,) = decide_requests(db, [Ask(BORROWER, asked, datetime.now(UTC), None)])
    service.approve(as_rpc(LENDER), booking["id"])
    return booking


def test_the_borrower_learns_whom_to_call_and_where(bookings):
    db, service = bookings
    with time_machine.travel(MORNING, tick=False):
        booking = approved_loan(db, service)
    shown = service.get(as_rpc(BORROWER), booking["id"])
    assert shown["pickup"]["contact"]["phone"] == "+33477123456"
    assert shown["pickup"]["pickup_address"] == "Centre technique municipal"
    with db.engine.connect() as conn:
        (body,) = conn.scalars(
            select(outbox.c.body).where(outbox.c.routing_key == "booking.approved")
        )
        (requested,) = conn.scalars(
            select(outbox.c.body).where(outbox.c.routing_key == "booking.requested")
        )
    assert json.loads(body)["payload"]["pickup"]["pickup_instructions"] == "Portail B"
    assert json.loads(requested)["payload"]["pickup"] is None  # only the approval says it


def test_condition_photos_at_hand_over_and_return(bookings):
    db, service = bookings
    with time_machine.travel(MORNING, tick=False):
        booking = approved_loan(db, service)
        booking_id = booking["id"]

        added = service.add_condition_photo(
            as_rpc(LENDER), booking_id, "check_out", stored(booking_id)
        )
        assert added["new"] and added["photo"]["stage"] == "check_out"
        assert added["photo"]["added_by_commune"] == "42044"
        again = service.add_condition_photo(
            as_rpc(LENDER), booking_id, "check_out", stored(booking_id)
        )
        assert again == {"photo": added["photo"], "new": False}

        # not yet at return; never by a commune not party to it, nor by the operator
        with pytest.raises(Conflict):
            service.add_condition_photo(as_rpc(BORROWER), booking_id, "return", stored(booking_id))
        with pytest.raises(NotFound):
            service.add_condition_photo(
                as_rpc(STRANGER), booking_id, "check_out", stored(booking_id)
            )
        with pytest.raises(Forbidden):
            service.add_condition_photo(
                as_rpc(OPERATOR), booking_id, "check_out", stored(booking_id)
            )
        with pytest.raises(InvalidInput):
            service.add_condition_photo(as_rpc(LENDER), booking_id, "during", stored(booking_id))
        with pytest.raises(InvalidInput):  # another booking's keys
            other = stored("7c6f3a52-0000-4000-8000-000000000001", b"other")
            service.add_condition_photo(as_rpc(LENDER), booking_id, "check_out", other)

        service.check_out(as_rpc(LENDER), booking_id, {"condition": "bon état"})
        service.add_condition_photo(
            as_rpc(BORROWER), booking_id, "return", stored(booking_id, b"dent")
        )
        service.return_(as_rpc(LENDER), booking_id, {"condition": "rayure", "damages": []})
        # after the return, still: the borrower's own view, to contest
        service.add_condition_photo(
            as_rpc(BORROWER), booking_id, "return", stored(booking_id, b"2")
        )
        with pytest.raises(Conflict):
            service.add_condition_photo(
                as_rpc(LENDER), booking_id, "check_out", stored(booking_id, b"3")
            )

    shown = service.get(as_rpc(BORROWER), booking_id)["condition_photos"]
    assert [(p["stage"], p["added_by_commune"]) for p in shown] == [
        ("check_out", "42044"),
        ("return", "42218"),
        ("return", "42218"),
    ]
    with db.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ConditionPhotoRow)) == 3


def test_the_migrated_condition_photos_are_the_models(database_url):
    from services.bookings.models import metadata
    from tests.support.schema import differences

    upgrade("bookings", database_url)
    found = differences(database_url, metadata)
    assert [d for d in found if "condition_photos" in repr(d)] == []
