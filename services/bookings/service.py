"""The bookings nameko service: entrypoints, and the transaction that decides booking
requests; rules live in domain.py."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from icalendar import Calendar
from icalendar import Event as CalendarEvent

from contracts.bookings import (
    EVENT_OF_STATUS,
    HOLDING,
    BookingCreated,
    BookingOverdue,
    BookingPage,
    BookingQuery,
    BookingQuote,
    BookingRequest,
    BookingRequested,
    BookingStatus,
    Condition,
    ReturnReport,
)
from contracts.caller import Caller, Role
from contracts.clock import now
from contracts.errors import Conflict, Forbidden, InvalidInput, ServiceError, validated
from contracts.events import Event
from contracts.fields import Reason, RequiredReason
from contracts.listings import ListingSnapshot
from contracts.topology import LISTINGS_TO_BOOKINGS
from infra.batching import GroupCommit
from infra.consumer import consume_event_batches
from infra.database import DatabaseAccess, UnitOfWork
from infra.health import OperableService
from infra.rpc import rpc
from infra.timers import periodic
from services.bookings import domain, repository

log = logging.getLogger(__name__)


class Ask(NamedTuple):
    """A valid booking request by someone allowed to make it, waiting for its transaction."""

    who: Caller
    asked: BookingRequest
    now: datetime
    correlation_id: str | None


def decide_requests(db: DatabaseAccess, asks: Sequence[Ask]) -> list[dict | ServiceError]:
    """Booking requests decided together, in the order they came, in one transaction (a
    group commit): the listings they name are locked in one statement and their holds read
    in another, and each request counts the bookings made before it in the batch. A
    refused request (422, 409) writes nothing and leaves the others alone."""
    outcomes: list = [None] * len(asks)  # each set below, by a decision or a refusal
    with db.transaction() as tx:
        listings = repository.listings_for_update(tx.session, {a.asked.listing_id for a in asks})
        plans = []
        for n, ask in enumerate(asks):
            try:
                listing = listings.get(ask.asked.listing_id)
                if listing is None:
                    raise repository.unknown_listing()
                asked = ask.asked
                slots = domain.requested_slots(listing, asked.start, asked.end, asked.recurrence)
                for slot in slots:
                    domain.check_request(
                        listing, ask.who.commune, slot, asked.quantity, asked.with_operator, ask.now
                    )
            except ServiceError as refused:
                outcomes[n] = refused
                continue
            plans.append((n, ask, listing, slots))
        asked_of: dict[str, list[domain.Slot]] = defaultdict(list)  # slots per listing
        for _, _, listing, slots in plans:
            asked_of[listing.listing_id].extend(slots)
        holds = repository.holds_during(
            tx.session, {listing_id: domain.span(s) for listing_id, s in asked_of.items()}
        )
        for n, ask, listing, slots in plans:
            tx.correlation_id = ask.correlation_id
            try:
                outcomes[n] = _book(tx, ask, listing, slots, holds[listing.listing_id])
            except Conflict as refused:
                outcomes[n] = refused
    return outcomes


def _book(
    tx: UnitOfWork,
    ask: Ask,
    listing: ListingSnapshot,
    slots: list[domain.Slot],
    holds: list[domain.Hold],
) -> dict:
    """One request's bookings (one per occurrence of a series), or Conflict if none can be
    had; what it books is added to `holds`, for the occurrences and requests after it."""
    series_id = str(uuid.uuid4()) if ask.asked.recurrence else None
    decided = domain.decide_request(listing, ask.who, ask.asked, slots, holds, series_id)
    created = [repository.add_booking(tx, booking) for booking in decided.bookings]
    # one outbox statement for a whole series; waiting requests tell no one yet
    tx.emit_all(
        BookingRequested,
        [repository.snapshot_of(r) for r in created if r.status == BookingStatus.REQUESTED],
    )
    views = [repository.view_of(r) for r in created]
    return BookingCreated(
        **views[0].model_dump(), created=views if series_id else [], conflicts=decided.conflicts
    ).model_dump(mode="json")


def _move(
    tx: UnitOfWork,
    row,
    target: BookingStatus,
    caller: Caller | None,
    note: str = "",
    **changes,
) -> None:
    """The booking moved to `target` (with `changes` to its columns), and the event that
    says so: a booking's events are emitted here, and in _book, only."""
    repository.record_transition(tx, row, target, caller, note, **changes)
    event_cls = EVENT_OF_STATUS.get(target)
    if event_cls is not None:
        tx.emit(event_cls, repository.snapshot_of(row, reason=note))


class Service(OperableService):
    name = "bookings"
    requests = GroupCommit(decide_requests)

    # -- requests ---------------------------------------------------------------------

    @rpc
    def request(self, caller: dict, request: dict) -> dict:
        """A booking (or a series of them) by an agent or manager of the borrowing commune."""
        who = Caller.model_validate(caller)
        asked = validated(BookingRequest, request)
        if not who.has(Role.AGENT, Role.MANAGER):
            raise Forbidden("Only an agent or a manager may request a booking")
        return self.requests(Ask(who, asked, now(), self.db.correlation_id))

    @rpc
    def quote(self, caller: dict, request: dict) -> dict:
        """The quote of a request and what would refuse it, computed as `request` decides,
        without booking anything (forms show it before sending)."""
        who = Caller.model_validate(caller)
        asked = validated(BookingRequest, request)
        with self.db.reading() as session:
            listing = repository.listing_copy(session, asked.listing_id)
            if listing is None:
                raise repository.unknown_listing()
            slot = domain.slot_for(listing.pricing_unit, asked.start, asked.end)
            answer = BookingQuote(
                quote=domain.quote_for(listing, slot, asked.quantity, asked.with_operator)
            )
            try:
                domain.check_request(
                    listing,
                    who.commune,
                    slot,
                    asked.quantity,
                    asked.with_operator,
                    now(),
                )
            except InvalidInput as broken:
                answer.problems = broken.errors
            holds = repository.holds(session, listing.listing_id, slot)
            taken = domain.taken_because(listing, slot, asked.quantity, holds)
        if taken is not None:
            answer.conflict = taken.detail
            answer.conflicting_period = {
                "start": taken.start.isoformat(),
                "end": taken.end.isoformat(),
            }
        return answer.model_dump(mode="json")

    # -- decisions and hand-over ------------------------------------------------------

    @rpc
    def approve(self, caller: dict, booking_id: str) -> dict:
        return self._act(caller, booking_id, "approve")

    @rpc
    def reject(self, caller: dict, booking_id: str, body: dict) -> dict:
        reason = validated(RequiredReason, body).reason
        return self._act(caller, booking_id, "reject", note=reason)

    @rpc
    def cancel(self, caller: dict, booking_id: str, body: dict) -> dict:
        reason = validated(Reason, body).reason
        return self._act(caller, booking_id, "cancel", note=reason)

    @rpc
    def check_out(self, caller: dict, booking_id: str, body: dict) -> dict:
        """Hand-over, from the booking's first day (the day before with early pick-up)."""
        condition = validated(Condition, body).condition
        return self._act(
            caller, booking_id, "check_out", condition, "checked_out_at", condition_out=condition
        )

    @rpc
    def return_(self, caller: dict, booking_id: str, body: dict) -> dict:
        report = validated(ReturnReport, body)
        return self._act(
            caller,
            booking_id,
            "return",
            report.condition,
            "returned_at",
            condition_in=report.condition,
            damages=[d.model_dump() for d in report.damages],
        )

    def _act(
        self,
        caller: dict,
        booking_id: str,
        action: str,
        note: str = "",
        stamp: str | None = None,
        **changes,
    ) -> dict:
        """`action` on the booking, if the state machine lets this caller take it now; its
        column `stamp` (if any) records when."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            row = repository.booking_for_update(tx.session, booking_id)
            domain.ensure_may(who, action, row.borrower_commune, row.lender_commune)
            current = BookingStatus(row.status)
            target = domain.next_status(current, action)
            moment = now()
            if stamp is not None:
                changes[stamp] = moment
            by_borrower = who.commune == row.borrower_commune
            if action == "check_out":
                listing = repository.listing_copy(tx.session, row.listing_id)
                early = listing is not None and listing.early_pickup
                domain.ensure_hand_over_allowed(row.start, early, moment)
            if action == "cancel" and domain.pays_to_cancel(current, by_borrower):
                listing = repository.listing_copy(tx.session, row.listing_id)
                changes["cancellation_fee_cents"] = domain.cancellation_fee(
                    listing, row.start, moment
                )
            _move(tx, row, target, who, note, **changes)
            if domain.frees_slot(current, target):
                self._promote_waitlist(tx, row.listing_id)
            history = repository.history_of(tx.session, [row.id])[row.id]
        return repository.view_of(row, history).model_dump(mode="json")

    def _promote_waitlist(self, tx, listing_id: str) -> None:
        """A slot was freed: the first waiting requests that now fit become requests."""
        # one listing at a time, as requests are: two slots freed at once must not both
        # promote the same waiting request (and it would miss the slot the other freed)
        listing = repository.listing_for_update(tx.session, listing_id)
        moment = now()
        for waiting in repository.waiting_for(tx.session, listing_id):
            if waiting.decide_by is not None and waiting.decide_by <= moment:
                continue  # too late to decide: the expiry timer (which locks it) expires it
            slot = domain.Slot(waiting.start, waiting.end, waiting.quote["units"])
            holds = repository.holds(tx.session, listing_id, slot)
            if domain.taken_because(listing, slot, waiting.quantity, holds) is None:
                _move(
                    tx,
                    waiting,
                    domain.next_status(BookingStatus(waiting.status), "promote"),
                    None,
                    "the slot was freed: this request now awaits the lender's decision",
                )
                tx.session.flush()

    # -- reading ----------------------------------------------------------------------

    @rpc
    def get(self, caller: dict, booking_id: str) -> dict:
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            row = repository.get_booking(session, booking_id)
            domain.ensure_party(who, row.borrower_commune, row.lender_commune)
            history = repository.history_of(session, [row.id])[row.id]
        return repository.view_of(row, history).model_dump(mode="json")

    @rpc
    def list_bookings(self, caller: dict, query: dict) -> dict:
        who = Caller.model_validate(caller)
        q = validated(BookingQuery, query)
        with self.db.reading() as session:
            rows, cursor = repository.bookings_of(session, who.commune, q)
        return BookingPage(
            items=[repository.view_of(r) for r in rows], next_cursor=cursor
        ).model_dump(mode="json")

    @rpc
    def calendar(self, caller: dict) -> str:
        """An iCalendar feed of the caller's commune's bookings that hold or held a slot."""
        who = Caller.model_validate(caller)
        rows, cursor = [], None
        with self.db.reading() as session:
            while True:  # every booking, not just the first page of them
                page, cursor = repository.bookings_of(
                    session, who.commune, BookingQuery(limit=200, cursor=cursor)
                )
                rows += page
                if cursor is None:
                    break
        cal = Calendar()
        cal.add("prodid", "-//Mutualis//bookings//FR")
        cal.add("version", "2.0")
        cal.add("x-wr-calname", f"Mutualis — réservations {who.commune}")
        for row in rows:
            if row.status not in {s.value for s in (*HOLDING, BookingStatus.RETURNED)}:
                continue
            lending = row.lender_commune == who.commune
            item = CalendarEvent()
            item.add("uid", f"{row.id}@mutualis")
            item.add("dtstamp", row.updated_at)
            item.add("dtstart", row.start)
            item.add("dtend", row.end)
            item.add("summary", f"{'Prêt' if lending else 'Emprunt'} : {row.listing_title}")
            item.add("description", f"Statut : {row.status}. {row.purpose}".strip())
            item.add("status", "CONFIRMED" if row.status != "requested" else "TENTATIVE")
            cal.add_component(item)
        return cal.to_ical().decode()

    # -- time and events --------------------------------------------------------------

    @periodic("expiry_interval_seconds", default=30.0)
    def expire_undecided(self) -> None:
        """Requests not decided while they could still start (by the end of their first day
        or hour) expire; their slot goes to the waitlist."""
        with self.db.transaction() as tx:
            for row in repository.due_to_expire(tx.session, now()):
                current = BookingStatus(row.status)
                target = domain.next_status(current, "expire")
                _move(tx, row, target, None, "not decided while it could still start")
                if domain.frees_slot(current, target):
                    self._promote_waitlist(tx, row.listing_id)

    @periodic("expiry_interval_seconds", default=30.0)  # the bookings' timers, one interval
    def announce_overdue(self) -> None:
        """Loans not returned by their end: booking.overdue, once per booking (the mark is
        written with the event, so a restart or a second replica does not send it again)."""
        moment = now()
        with self.db.transaction() as tx:
            for row in repository.due_overdue(tx.session, moment):
                row.overdue_sent_at = moment
                tx.emit(
                    BookingOverdue, repository.snapshot_of(row, reason="not returned by its end")
                )

    @consume_event_batches(LISTINGS_TO_BOOKINGS)
    def keep_listing_copies(self, events: list[Event]) -> None:
        """Keeps a copy of each listing, to decide requests without asking listings."""
        with self.db.handling_all(events) as (tx, fresh):
            repository.keep_listing_copies(tx.session, [event.payload for event in fresh])
