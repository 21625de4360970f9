"""Moving a booking to other dates through the bookings service's entrypoints on a migrated
database, on both backends: into a taken slot is a 409 that changes nothing; a move re-prices
the quote, keeps the status, writes booking.rescheduled with the dates it had, and the slot
it leaves goes to the waitlist; the return is charged at the final dates; and two bookings
moved at once into one slot (PostgreSQL, real threads): exactly one gets it. Dates that cost
the borrower more are proposed, not applied, until its manager accepts them, the slot checked
again then (taken meanwhile: 409, no double booking)."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime

import pytest
import time_machine
from nameko.testing.services import worker_factory
from prometheus_client import REGISTRY
from sqlalchemy import select

from contracts.bookings import BookingRequest, BookingSnapshot
from contracts.caller import Caller, Role
from contracts.errors import Conflict, Forbidden, InvalidInput, ServiceError
from infra.database import DatabaseAccess, make_engine
from infra.migrations import upgrade
from services.billing.domain import charges_for_return
from services.bookings import repository
from services.bookings.models import BookingRow, DatesProposalRow
from services.bookings.service import Ask, Service, decide_requests
from tests.integration.test_bookings_time import events
from tests.support.schema import migrated
from tests.unit.test_bookings_domain import listing

BORROWER = Caller(user_id="u1", commune="42218", roles=frozenset({Role.AGENT}))
OTHER_BORROWER = Caller(user_id="u3", commune="42095", roles=frozenset({Role.AGENT}))
LENDER = Caller(user_id="u2", commune="42044", roles=frozenset({Role.MANAGER}))
BORROWER_MANAGER = Caller(user_id="u4", commune="42218", roles=frozenset({Role.MANAGER}))
MORNING = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _json(caller: Caller) -> dict:
    return caller.model_dump(mode="json")


def _bookings(url: str):
    migrated("bookings", url)
    db = DatabaseAccess(make_engine(url), "bookings", None, "bookings.requests")
    with db.transaction() as tx:
        repository.keep_listing_copies(tx.session, [listing(listing_id="plough")])
    return db, worker_factory(Service, db=db)


@pytest.fixture
def bookings(database_url):
    return _bookings(database_url)


def request(db, by: Caller, first: str, last: str, **more) -> dict:
    asked = BookingRequest.model_validate(
        {"listing_id": "plough", "start": first, "end": last} | more
    )
    (outcome,) = decide_requests(db, [Ask(by, asked, datetime.now(UTC), None)])
    assert isinstance(outcome, dict), outcome
    return outcome


def approved(db, service, by: Caller, first: str, last: str) -> dict:
    booking = request(db, by, first, last)
    return service.approve(_json(LENDER), booking["id"])


def moves_counted(side: str) -> float:
    return REGISTRY.get_sample_value("mutualis_bookings_rescheduled_total", {"side": side})


def stored(db, booking_id: str) -> tuple:
    with db.reading() as session:
        row = session.get(BookingRow, booking_id)
        return row.status, row.start, row.end, row.quote, row.decide_by


def test_into_a_taken_slot_is_a_conflict_and_nothing_changes(bookings):
    db, service = bookings
    with time_machine.travel(MORNING, tick=False):
        mine = approved(db, service, BORROWER, "2026-12-10", "2026-12-12")
        theirs = approved(db, service, OTHER_BORROWER, "2026-12-14", "2026-12-16")
        before, counted = stored(db, mine["id"]), moves_counted("lender")
        with pytest.raises(Conflict) as refused:
            service.reschedule(
                _json(LENDER), mine["id"], {"start": "2026-12-15", "end": "2026-12-17"}
            )
        assert refused.value.extra["conflicting_period"]["start"].startswith("2026-12-13T23:00")
        # a blackout too
        with db.transaction() as tx:
            closed = listing(
                listing_id="plough",
                revision=2,
                blackouts=[
                    {
                        "id": "b1",
                        "start": "2026-12-20T00:00:00+01:00",
                        "end": "2026-12-22T00:00:00+01:00",
                        "reason": "révision",
                    }
                ],
            )
            repository.keep_listing_copies(tx.session, [closed])
        with pytest.raises(Conflict) as refused:
            service.reschedule(
                _json(LENDER), mine["id"], {"start": "2026-12-21", "end": "2026-12-22"}
            )
        assert "closed" in refused.value.detail
        assert stored(db, mine["id"]) == before
        assert moves_counted("lender") == counted
        assert len(service.get(_json(LENDER), mine["id"])["history"]) == 2
        assert stored(db, theirs["id"])[1:3] == (
            datetime(2026, 12, 13, 23, tzinfo=UTC),
            datetime(2026, 12, 15, 23, tzinfo=UTC),
        )
    assert events(db, "booking.rescheduled") == []


def test_who_may_move_what(bookings):
    db, service = bookings
    with time_machine.travel(MORNING, tick=False):
        asked = request(db, BORROWER, "2026-12-10", "2026-12-12")
        new = {"start": "2026-12-11", "end": "2026-12-13"}
        with pytest.raises(Forbidden):
            service.reschedule(_json(LENDER), asked["id"], new)  # decide it instead
        with pytest.raises(ServiceError) as hidden:
            service.reschedule(_json(OTHER_BORROWER), asked["id"], new)
        assert hidden.value.code == "not_found"
        edited = service.reschedule(_json(BORROWER), asked["id"], new | {"reason": "décalé"})
        assert edited["status"] == "requested"
        service.approve(_json(LENDER), asked["id"])
        with pytest.raises(Forbidden):
            service.reschedule(_json(BORROWER), asked["id"], new)  # ask the lender
        with pytest.raises(InvalidInput) as same:
            service.reschedule(_json(LENDER), asked["id"], new)
        assert same.value.errors[0]["type"] == "same_dates"
    (moved,) = events(db, "booking.rescheduled")
    assert moved["moved_by_commune"] == BORROWER.commune
    assert moved["reason"] == "décalé"


def test_a_move_reprices_and_announces_and_the_return_is_charged_at_the_final_dates(bookings):
    db, service = bookings
    with time_machine.travel(MORNING, tick=False) as clock:
        booking = approved(db, service, BORROWER, "2026-12-10", "2026-12-12")
        waiting = request(db, OTHER_BORROWER, "2026-12-10", "2026-12-11", wait_if_taken=True)
        assert waiting["status"] == "waiting"
        with pytest.raises(Conflict):  # a waiting request holds nothing to move
            service.reschedule(
                _json(OTHER_BORROWER), waiting["id"], {"start": "2026-12-20", "end": "2026-12-21"}
            )
        counted = moves_counted("lender")
        proposed = service.reschedule(
            _json(LENDER),
            booking["id"],
            {"start": "2026-12-14", "end": "2026-12-17", "reason": "lame en révision"},
        )
        # three days instead of two: the borrower is asked, the loan keeps its dates
        assert proposed["proposal"]["quote"]["units"] == 3
        assert proposed["start"] == booking["start"] and proposed["quote"]["units"] == 2
        assert moves_counted("lender") == counted
        moved = service.accept_dates(_json(BORROWER_MANAGER), booking["id"])
        assert moved["proposal"] is None
        assert moves_counted("lender") == counted + 1
        assert moved["status"] == "approved"
        assert moved["start"].startswith("2026-12-13T23:00")
        assert moved["quote"]["units"] == 3
        assert moved["quote"]["amount_cents"] == 3 * (42000 + 0)
        assert moved["history"][-1]["status"] == "approved"
        assert moved["history"][-1]["note"] == (
            "dates changées, du 10/12/2026 au 11/12/2026 → du 14/12/2026 au 16/12/2026 : "
            "lame en révision (proposées par le prêteur, acceptées par l'emprunteur)"
        )
        assert moved["history"][-1]["by_commune"] == BORROWER.commune  # who consented
        # the slot it left goes to the waitlist
        assert service.get(_json(LENDER), waiting["id"])["status"] == "requested"

        clock.move_to(datetime(2026, 12, 14, 8, tzinfo=UTC))
        service.check_out(_json(LENDER), booking["id"], {"condition": "ok"})
        for side in (LENDER, BORROWER):  # handed over: no more moving, for either side
            with pytest.raises(Conflict) as refused:
                service.reschedule(
                    _json(side), booking["id"], {"start": "2026-12-15", "end": "2026-12-17"}
                )
            assert refused.value.extra["current_status"] == "checked_out"
        clock.move_to(datetime(2026, 12, 16, 15, tzinfo=UTC))
        service.return_(_json(LENDER), booking["id"], {"condition": "ok"})
    (announced,) = events(db, "booking.rescheduled")
    assert announced["previous_start"].startswith("2026-12-09T23:00")
    assert announced["start"].startswith("2026-12-13T23:00")
    assert announced["status"] == "approved" and announced["rescheduling_id"]
    assert announced["moved_by_commune"] == LENDER.commune
    assert announced["accepted_by_commune"] == BORROWER.commune
    (returned,) = events(db, "booking.returned")
    (rental,) = charges_for_return(
        BookingSnapshot.model_validate(returned), datetime(2026, 12, 16, 15, tzinfo=UTC)
    )
    assert rental.amount_cents == 3 * 42000
    assert rental.description.endswith("du 14/12/2026 au 16/12/2026")


def test_two_bookings_moved_at_once_into_one_slot_one_gets_it(pg_database):
    db, _ = _bookings(pg_database.url)
    services = [worker_factory(Service, db=db) for _ in range(2)]
    with time_machine.travel(MORNING, tick=True):
        ids = [
            approved(db, services[0], BORROWER, "2026-12-10", "2026-12-11")["id"],
            approved(db, services[0], OTHER_BORROWER, "2026-12-12", "2026-12-13")["id"],
        ]
        # one day each, as booked: the lender alone moves them
        rounds = [("2026-12-20", "2026-12-21"), ("2026-12-24", "2026-12-25")]
        for first, last in rounds:
            start = threading.Barrier(2)
            outcomes: list = [None, None]

            def move(n: int, first=first, last=last, start=start, outcomes=outcomes) -> None:
                start.wait()
                try:
                    outcomes[n] = services[n].reschedule(
                        _json(LENDER), ids[n], {"start": first, "end": last}
                    )["status"]
                except Conflict as exc:
                    outcomes[n] = exc

            threads = [threading.Thread(target=move, args=(n,)) for n in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert sorted(isinstance(o, Conflict) for o in outcomes) == [False, True], outcomes
    with db.reading() as session:
        periods = session.execute(
            select(BookingRow.start, BookingRow.end).where(BookingRow.id.in_(ids))
        ).all()
    # never two bookings over one instant of the quantity-1 listing
    (a, b) = sorted(periods)
    assert a.end <= b.start
    assert len(events(db, "booking.rescheduled")) == 2


def test_a_move_to_today_is_to_pariss_today_and_hands_over_at_once(bookings):
    """At 23:30 UTC on 6 December it is already the 7th in Paris: the lender may move a loan
    to the 7th (not the 6th, past there) and hand it over straight away, its first day."""
    db, service = bookings
    with time_machine.travel(MORNING, tick=False) as clock:
        booking = approved(db, service, BORROWER, "2026-12-10", "2026-12-12")
        clock.move_to(datetime(2026, 12, 6, 23, 30, tzinfo=UTC))
        with pytest.raises(InvalidInput) as refused:
            service.reschedule(
                _json(LENDER), booking["id"], {"start": "2026-12-06", "end": "2026-12-08"}
            )
        assert refused.value.errors[0]["type"] == "in_the_past"
        assert refused.value.errors[0]["first_allowed"] == "2026-12-07"
        moved = service.reschedule(
            _json(LENDER), booking["id"], {"start": "2026-12-07", "end": "2026-12-09"}
        )
        assert moved["start"].startswith("2026-12-06T23:00")
        handed = service.check_out(_json(LENDER), booking["id"], {"condition": "plein fait"})
        assert handed["status"] == "checked_out"


def proposals(db, booking_id: str) -> list[tuple[str, str]]:
    """The booking's proposals, oldest first: (status, answer)."""
    with db.reading() as session:
        rows = session.scalars(
            select(DatesProposalRow)
            .where(DatesProposalRow.booking_id == booking_id)
            .order_by(DatesProposalRow.proposed_at, DatesProposalRow.status)
        )
        return [(row.status, row.answer) for row in rows]


def test_consent_dearer_dates_wait_for_the_borrowers_manager(bookings):
    """The lender proposes dearer dates: only the borrower's manager answers them; a decline
    tells the lender, a new proposal replaces the pending one, the lender withdraws one, a
    cancellation lapses one; cheaper dates apply at once. The invitation's revision counts
    the approval (0), each move applied and the cancellation."""
    db, service = bookings
    dearer = {"start": "2026-12-14", "end": "2026-12-17", "reason": "lame en révision"}
    with time_machine.travel(MORNING, tick=False) as clock:
        booking = approved(db, service, BORROWER, "2026-12-10", "2026-12-12")
        before = stored(db, booking["id"])
        shown = service.reschedule(_json(LENDER), booking["id"], dearer)
        assert shown["proposal"]["status"] == "pending"
        assert shown["proposal"]["quote"]["amount_cents"] == 3 * 42000
        assert shown["proposal"]["proposed_by_commune"] == LENDER.commune
        assert shown["proposal"]["reason"] == "lame en révision"
        assert stored(db, booking["id"]) == before
        assert service.get(_json(BORROWER), booking["id"])["proposal"] == shown["proposal"]
        for caller in (BORROWER, LENDER):  # an agent of the borrower; the proposer itself
            with pytest.raises(Forbidden):
                service.accept_dates(_json(caller), booking["id"])
        declined = service.decline_dates(
            _json(BORROWER_MANAGER), booking["id"], {"reason": "budget épuisé"}
        )
        assert declined["proposal"] is None and stored(db, booking["id"]) == before
        with pytest.raises(Conflict) as nothing:
            service.accept_dates(_json(BORROWER_MANAGER), booking["id"])
        assert nothing.value.extra["rule"] == "no_proposal"

        service.reschedule(_json(LENDER), booking["id"], dearer)
        clock.shift(1)
        newer = service.reschedule(
            _json(LENDER), booking["id"], {"start": "2026-12-14", "end": "2026-12-18"}
        )
        assert newer["proposal"]["quote"]["units"] == 4
        service.withdraw_dates(_json(LENDER), booking["id"])
        clock.shift(1)
        service.reschedule(_json(LENDER), booking["id"], dearer)
        clock.shift(1)
        # cheaper: the lender alone moves it, and the pending proposal lapses
        cheaper = service.reschedule(
            _json(LENDER), booking["id"], {"start": "2026-12-13", "end": "2026-12-14"}
        )
        assert cheaper["quote"]["units"] == 1 and cheaper["proposal"] is None
        clock.shift(1)
        service.reschedule(_json(LENDER), booking["id"], dearer)
        service.cancel(_json(BORROWER), booking["id"], {"reason": "plus besoin"})
        with pytest.raises(Conflict):
            service.accept_dates(_json(BORROWER_MANAGER), booking["id"])
    assert proposals(db, booking["id"]) == [
        ("declined", "budget épuisé"),
        ("replaced", ""),
        ("withdrawn", ""),
        ("lapsed", ""),
        ("lapsed", ""),
    ]
    (told_no,) = events(db, "booking.dates_declined")
    assert told_no["answer"] == "budget épuisé" and told_no["proposed_quote"]["units"] == 3
    assert len(events(db, "booking.dates_proposed")) == 5
    (approval,) = events(db, "booking.approved")
    (moved,) = events(db, "booking.rescheduled")
    (cancelled,) = events(db, "booking.cancelled")
    assert [approval["dates_revision"], moved["dates_revision"], cancelled["dates_revision"]] == [
        0,
        1,
        2,
    ]


def test_consent_accepted_after_the_slot_was_taken_is_a_conflict(bookings):
    """The proposed slot is not held: another commune requests it meanwhile, and the
    borrower's acceptance is a 409 naming the period taken; the loan keeps its dates, the
    proposal stays pending (the lender may propose others), nothing is announced."""
    db, service = bookings
    with time_machine.travel(MORNING, tick=False):
        booking = approved(db, service, BORROWER, "2026-12-10", "2026-12-12")
        before = stored(db, booking["id"])
        service.reschedule(
            _json(LENDER), booking["id"], {"start": "2026-12-14", "end": "2026-12-17"}
        )
        theirs = request(db, OTHER_BORROWER, "2026-12-16", "2026-12-17")
        assert theirs["status"] == "requested"
        with pytest.raises(Conflict) as taken:
            service.accept_dates(_json(BORROWER_MANAGER), booking["id"])
        assert taken.value.extra["conflicting_period"]["start"].startswith("2026-12-15T23:00")
        assert stored(db, booking["id"]) == before
        assert service.get(_json(BORROWER), booking["id"])["proposal"]["status"] == "pending"
    assert events(db, "booking.rescheduled") == []


def test_consent_and_a_request_at_once_never_double_book(pg_database):
    """PostgreSQL, real threads: the borrower accepts dearer dates while another commune
    requests the same slot, again and again: each time exactly one gets it."""
    db, _ = _bookings(pg_database.url)
    services = [worker_factory(Service, db=db) for _ in range(2)]
    with time_machine.travel(MORNING, tick=True):
        for day, first in ((2, 14), (3, 18), (4, 22)):  # one day each, proposed two
            booking = approved(db, services[0], BORROWER, f"2026-12-0{day}", f"2026-12-0{day + 1}")
            slot = {"start": f"2026-12-{first}", "end": f"2026-12-{first + 2}"}
            services[0].reschedule(_json(LENDER), booking["id"], slot)
            start = threading.Barrier(2)
            outcomes: list = [None, None]

            def accept(start=start, outcomes=outcomes, booking=booking) -> None:
                start.wait()
                try:
                    outcomes[0] = services[0].accept_dates(_json(BORROWER_MANAGER), booking["id"])
                except Conflict as exc:
                    outcomes[0] = exc

            def ask(start=start, outcomes=outcomes, first=first) -> None:
                asked = BookingRequest.model_validate(
                    {"listing_id": "plough", "start": f"2026-12-{first + 1}"}
                    | {"end": f"2026-12-{first + 2}"}
                )
                start.wait()
                (outcomes[1],) = decide_requests(db, [Ask(OTHER_BORROWER, asked, MORNING, None)])

            threads = [threading.Thread(target=accept), threading.Thread(target=ask)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert sorted(isinstance(o, ServiceError) for o in outcomes) == [False, True], outcomes
    with db.reading() as session:
        periods = session.execute(
            select(BookingRow.start, BookingRow.end).where(
                BookingRow.status.in_(["requested", "approved"])
            )
        ).all()
    # never two bookings over one instant of the quantity-1 listing
    ordered = sorted(periods)
    assert all(a.end <= b.start for a, b in itertools.pairwise(ordered))


def test_consent_migrated_proposals_and_revision_are_the_models(database_url):
    from services.bookings.models import metadata
    from tests.support.schema import differences

    upgrade("bookings", database_url)
    found = differences(database_url, metadata)
    assert [d for d in found if "dates_proposals" in repr(d) or "dates_revision" in repr(d)] == []


def test_consent_a_proposal_the_loan_outran_is_marked_lapsed_by_the_timer(bookings):
    """The loan starts before its borrower answered the dearer dates: the bookings timer
    marks the proposal lapsed in the table (an auditor reads no "pending" that nobody can
    answer), answered by nobody; a proposal for a loan not started yet stays pending, and a
    second run changes nothing."""
    db, service = bookings
    with time_machine.travel(MORNING, tick=False) as clock:
        soon = approved(db, service, BORROWER, "2026-12-03", "2026-12-05")
        later = approved(db, service, OTHER_BORROWER, "2026-12-20", "2026-12-22")
        service.reschedule(_json(LENDER), soon["id"], {"start": "2026-12-03", "end": "2026-12-08"})
        service.reschedule(_json(LENDER), later["id"], {"start": "2026-12-19", "end": "2026-12-22"})
        service.lapse_started_proposals()
        assert proposals(db, soon["id"]) == [("pending", "")]
        clock.move_to(datetime(2026, 12, 3, 9, 0, tzinfo=UTC))  # 10:00 in Paris: started
        service.lapse_started_proposals()
        service.lapse_started_proposals()
    assert proposals(db, soon["id"]) == [("lapsed", "")]
    assert proposals(db, later["id"]) == [("pending", "")]
    with db.reading() as session:
        row = session.scalars(
            select(DatesProposalRow).where(DatesProposalRow.booking_id == soon["id"])
        ).one()
        assert row.answered_by is None and row.answered_by_commune is None
        assert row.answered_at == datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
