"""A same-day loan through the bookings service's entrypoints on a migrated database, on both
backends, with the clock pinned: requested for today, not expired while today lasts, handed
over no earlier than its first day (a refusal stores nothing), not cancellable once handed
over, announced overdue once however often the timer runs, returned with its hand-over and
return instants in the event."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import time_machine
from nameko.testing.services import worker_factory
from sqlalchemy import select

from contracts.bookings import BookingRequest
from contracts.caller import Caller, Role
from contracts.errors import Conflict, InvalidInput
from contracts.listings import ListingSnapshot
from infra.database import DatabaseAccess, make_engine
from infra.messaging_tables import outbox
from services.bookings import repository
from services.bookings.models import TransitionRow
from services.bookings.service import Ask, Service, decide_requests
from tests.support.schema import migrated
from tests.unit.test_bookings_domain import listing

BORROWER = Caller(user_id="u1", commune="42218", roles=frozenset({Role.AGENT}))
LENDER = Caller(user_id="u2", commune="42044", roles=frozenset({Role.MANAGER}))
SNOWY_MORNING = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # 7:00 in Paris


def plough(**changes) -> ListingSnapshot:
    return listing(listing_id="plough", late_fee_per_day_cents=5000, **changes)


@pytest.fixture
def bookings(database_url):
    migrated("bookings", database_url)
    db = DatabaseAccess(make_engine(database_url), "bookings", None, "bookings.requests")
    with db.transaction() as tx:
        repository.keep_listing_copies(tx.session, [plough()])
    return db, worker_factory(Service, db=db)


def request_today(db: DatabaseAccess, first: str, last: str) -> dict:
    asked = BookingRequest.model_validate({"listing_id": "plough", "start": first, "end": last})
    (outcome,) = decide_requests(db, [Ask(BORROWER, asked, datetime.now(UTC), None)])
    assert isinstance(outcome, dict), outcome
    return outcome


def events(db: DatabaseAccess, routing_key: str) -> list[dict]:
    with db.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.body).where(outbox.c.routing_key == routing_key))
        return [json.loads(body)["payload"] for (body,) in rows]


def test_a_same_day_loan_from_request_to_overdue_return(bookings):
    db, service = bookings
    lender = LENDER.model_dump(mode="json")
    with time_machine.travel(SNOWY_MORNING, tick=False) as clock:
        booking = request_today(db, "2026-12-07", "2026-12-09")  # 7 and 8 December
        assert booking["status"] == "requested"
        assert booking["quote"]["units"] == 2

        clock.move_to(datetime(2026, 12, 7, 22, 30, tzinfo=UTC))  # 23:30 in Paris
        service.expire_undecided()
        assert service.get(lender, booking["id"])["status"] == "requested"  # today lasts
        service.approve(lender, booking["id"])

        clock.move_to(datetime(2026, 12, 6, 22, 30, tzinfo=UTC))  # the day before
        with pytest.raises(InvalidInput) as refused:
            service.check_out(lender, booking["id"], {"condition": "plein fait"})
        assert refused.value.errors[0]["first_allowed"] == "2026-12-07"
        stored = service.get(lender, booking["id"])
        assert stored["status"] == "approved" and stored["checked_out_at"] is None
        assert len(stored["history"]) == 2  # requested, approved: the refusal wrote nothing

        clock.move_to(datetime(2026, 12, 7, 7, 0, tzinfo=UTC))
        handed = service.check_out(lender, booking["id"], {"condition": "plein fait"})
        assert handed["status"] == "checked_out"
        assert datetime.fromisoformat(handed["checked_out_at"]) == datetime.now(UTC)
        with pytest.raises(Conflict) as refused:
            service.cancel(BORROWER.model_dump(mode="json"), booking["id"], {"reason": "x"})
        assert refused.value.extra["rule"] == "cancel_after_check_out"

        clock.move_to(datetime(2026, 12, 8, 22, 59, tzinfo=UTC))  # 23:59 on its last day
        service.announce_overdue()
        assert events(db, "booking.overdue") == []
        assert service.get(lender, booking["id"])["overdue"] is False

        clock.move_to(datetime(2026, 12, 9, 9, 0, tzinfo=UTC))
        service.announce_overdue()
        service.announce_overdue()  # a second run, or a second replica: nothing more
        (overdue,) = events(db, "booking.overdue")
        assert overdue["booking_id"] == booking["id"]
        assert service.get(lender, booking["id"])["overdue"] is True

        clock.move_to(datetime(2026, 12, 10, 15, 0, tzinfo=UTC))  # two days late
        back = service.return_(lender, booking["id"], {"condition": "bon état"})
        assert back["overdue"] is False
    (returned,) = events(db, "booking.returned")
    assert returned["checked_out_at"].startswith("2026-12-07T07:00")
    assert returned["returned_at"].startswith("2026-12-10T15:00")
    assert returned["quote"]["late_fee_per_day_cents"] == 5000


def test_a_request_undecided_by_the_end_of_its_first_day_expires(bookings):
    db, service = bookings
    with time_machine.travel(SNOWY_MORNING, tick=False) as clock:
        booking = request_today(db, "2026-12-07", "2026-12-08")
        clock.move_to(datetime(2026, 12, 7, 23, 0, tzinfo=UTC))  # midnight in Paris
        service.expire_undecided()
    with db.reading() as session:
        statuses = session.scalars(
            select(TransitionRow.status).where(TransitionRow.booking_id == booking["id"])
        ).all()
    assert statuses == ["requested", "expired"]


def test_early_pick_up_hands_over_the_day_before(bookings):
    db, service = bookings
    with db.transaction() as tx:
        repository.keep_listing_copies(tx.session, [plough(revision=2, early_pickup=True)])
    lender = LENDER.model_dump(mode="json")
    with time_machine.travel(SNOWY_MORNING, tick=False) as clock:
        booking = request_today(db, date(2026, 12, 8).isoformat(), "2026-12-09")
        service.approve(lender, booking["id"])
        clock.move_to(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
        with pytest.raises(InvalidInput) as refused:
            service.check_out(lender, booking["id"], {"condition": "plein fait"})
        assert refused.value.errors[0]["first_allowed"] == "2026-12-07"
        clock.move_to(SNOWY_MORNING)
        assert service.check_out(lender, booking["id"], {"condition": "ok"})["status"] == (
            "checked_out"
        )
