"""The bookings nameko service: entrypoints, and the transaction that decides booking
requests; rules live in domain.py."""

from __future__ import annotations

import base64
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import NamedTuple

from icalendar import Calendar
from icalendar import Event as CalendarEvent

from contracts import clock
from contracts.agreements import (
    AgreementDraft,
    AgreementEnded,
    AgreementInForce,
    AgreementList,
    AgreementPolicy,
    AgreementProposed,
    AgreementQuery,
    AgreementSigned,
    AgreementStatus,
    AgreementView,
    DecisionDraft,
    DecisionList,
    Signature,
)
from contracts.bookings import (
    EVENT_OF_STATUS,
    HOLDING,
    Answer,
    BookingDatesDeclined,
    BookingDatesProposed,
    BookingOverdue,
    BookingPage,
    BookingQuery,
    BookingQuote,
    BookingRequest,
    BookingRequested,
    BookingRescheduled,
    BookingStatus,
    BookingView,
    Condition,
    ConditionPhotoStage,
    NewDates,
    ProposalStatus,
    ProposedDates,
    Quote,
    RescheduledBooking,
    ReturnReport,
    Urgency,
    UrgentRequestsReport,
)
from contracts.caller import Caller, Role
from contracts.clock import now
from contracts.emergencies import (
    EmergencyDeclaration,
    EmergencyDeclared,
    EmergencyEnded,
    EmergencyEnding,
    EmergencyQuery,
    Need,
)
from contracts.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    field_error,
    validated,
)
from contracts.events import Event
from contracts.fields import Reason, RequiredReason
from contracts.listings import ListingSnapshot, PhotoStored
from contracts.topology import LISTINGS_TO_BOOKINGS
from infra.batching import GroupCommit
from infra.communes import communes
from infra.consumer import consume_event_batches
from infra.database import DatabaseAccess, UnitOfWork
from infra.health import OperableService
from infra.rpc import rpc
from infra.timers import periodic
from services.bookings import (
    agreements,
    agreements_pdf,
    condition_photos,
    domain,
    emergency,
    repository,
)
from services.bookings import agreements_repository as agreement_records
from services.bookings import emergency_repository as urgent_records
from services.bookings.dependencies import EPISODES, UrgentRequestsGauges
from services.bookings.emergency_metrics import OUTCOMES, observe_decision

log = logging.getLogger(__name__)

AGREEMENT_EVENTS = {
    AgreementStatus.PROPOSED: AgreementProposed,
    AgreementStatus.SIGNED: AgreementSigned,
    AgreementStatus.IN_FORCE: AgreementInForce,
    AgreementStatus.ENDED: AgreementEnded,
}


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
                urgent = _urgency(tx.session, ask.who, asked, listing, slots, ask.now)
                rules = emergency.as_urgent(listing) if urgent else listing
                for slot in slots:
                    domain.check_request(
                        rules, ask.who.commune, slot, asked.quantity, asked.with_operator, ask.now
                    )
            except ServiceError as refused:
                outcomes[n] = refused
                continue
            plans.append((n, ask, listing, slots, urgent))
        asked_of: dict[str, list[domain.Slot]] = defaultdict(list)  # slots per listing
        for _, _, listing, slots, _ in plans:
            asked_of[listing.listing_id].extend(slots)
        holds = repository.holds_during(
            tx.session, {listing_id: domain.span(s) for listing_id, s in asked_of.items()}
        )
        for n, ask, listing, slots, urgent in plans:
            tx.correlation_id = ask.correlation_id
            try:
                outcomes[n] = _book(tx, ask, listing, slots, holds[listing.listing_id], urgent)
            except Conflict as refused:
                outcomes[n] = refused
    return outcomes


def _urgency(
    session, who: Caller, asked: BookingRequest, listing: ListingSnapshot, slots, now: datetime
) -> emergency.Urgent | None:
    """What makes this request urgent, if an episode in force covers it."""
    episodes = EPISODES.at(session, now)
    if not episodes:
        return None
    return emergency.urgency_of(
        episodes,
        borrower_commune=who.commune,
        listing=listing,
        slots=[(slot.start, slot.end) for slot in slots],
        need=asked.need,
        directory=communes(),
    )


def _book(
    tx: UnitOfWork,
    ask: Ask,
    listing: ListingSnapshot,
    slots: list[domain.Slot],
    holds: list[domain.Hold],
    urgent: emergency.Urgent | None = None,
) -> dict:
    """One request's bookings (one per occurrence of a series), or Conflict if none can be
    had; what it books is added to `holds`, for the occurrences and requests after it.
    An urgent request is not raced for the units: its allocation window decides them."""
    series_id = str(uuid.uuid4()) if ask.asked.recurrence else None
    counted = [] if urgent else holds
    decided = domain.decide_request(listing, ask.who, ask.asked, slots, counted, series_id)
    created = [
        repository.add_booking(tx, booking, *_agreement_of(tx.session, booking))
        for booking in decided.bookings
    ]
    if urgent:
        holds.extend(counted)
        urgent_records.add_urgent(tx, created, urgent)
    # one outbox statement for a whole series; waiting requests tell no one yet
    tx.emit_all(
        BookingRequested,
        [repository.snapshot_of(r) for r in created if r.status == BookingStatus.REQUESTED],
    )
    views = [repository.view_of(r) for r in created]
    if urgent:
        for view in views:
            view.urgency = Urgency(
                emergency_id=urgent.emergency_id,
                need=urgent.need,
                distance_km=urgent.distance_km,
            )
    return _created(views, series_id is not None, decided.conflicts)


def _created(views: list[BookingView], series: bool, conflicts: list) -> dict:
    """BookingCreated as JSON (the first booking; for a series, every one and the
    occurrences that conflicted), from views already valid: dumped once, not validated
    again into a BookingCreated to be dumped a second time."""
    first = views[0].model_dump(mode="json")
    return first | {
        "created": [view.model_dump(mode="json") for view in views] if series else [],
        "conflicts": [conflict.model_dump(mode="json") for conflict in conflicts],
    }


def _agreement_of(session, booking: domain.NewBooking) -> tuple[str | None, bool]:
    """The agreement in force covering a new booking, or whether its lender holds it for
    want of one."""
    return agreement_records.IN_FORCE.coverage(
        session,
        booking.listing.owner_commune,
        booking.by.commune,
        booking.listing.category,
        booking.slot.start,
        booking.slot.end,
    )


def _cover(session, row, terms: list[agreements.Terms]) -> bool:
    """The booking covered by one of these agreements in force, if one covers it (its hold
    lifted): whether one does."""
    listing = repository.listing_copy(session, row.listing_id)
    found = agreements.covering(
        terms,
        lender=row.lender_commune,
        borrower=row.borrower_commune,
        category=listing.category if listing else None,
        start=row.start,
        end=row.end,
        booking_id=row.id,
    )
    if found is not None:
        row.agreement_reference = found.reference
        row.agreement_held = False
    return found is not None


def _ensure_agreement(session, row) -> None:
    """A request held for want of an agreement is approved only once one in force covers it
    (a framework one since signed, or a one-off one both managers signed)."""
    terms = agreement_records.terms_in_force(session, [row.lender_commune, row.borrower_commune])
    if not _cover(session, row, terms):
        raise Conflict(
            "Your commune lends only under an agreement in force, and none covers this "
            "request: propose a one-off agreement, which the borrower's manager signs",
            needs="agreement",
        )


def _move(
    tx: UnitOfWork,
    row,
    target: BookingStatus,
    caller: Caller | None,
    note: str = "",
    **changes,
) -> None:
    """The booking moved to `target` (with `changes` to its columns), and the event that
    says so: a booking's events are emitted here, in _book, _move_dates and _propose only.
    New dates proposed for it lapse: the loan they would move is handed over or ended."""
    if target in (BookingStatus.APPROVED, BookingStatus.CANCELLED):
        action = "approve" if target is BookingStatus.APPROVED else "cancel"
        changes["dates_revision"] = domain.dates_revision(row.dates_revision, action)
    if row.status == BookingStatus.APPROVED:
        repository.close_proposal(tx.session, row.id, ProposalStatus.LAPSED, caller)
    repository.record_transition(tx, row, target, caller, note, **changes)
    event_cls = EVENT_OF_STATUS.get(target)
    if event_cls is not None:
        snapshot = repository.snapshot_of(row, reason=note)
        if target is BookingStatus.APPROVED:  # the borrower is told where to collect it
            pickup = repository.pickup_details(tx.session, row.listing_id)
            snapshot = snapshot.model_copy(update={"pickup": pickup})
        tx.emit(event_cls, snapshot)
    _decided_urgent(tx, row, target)


def _move_dates(
    tx: UnitOfWork,
    row,
    listing: ListingSnapshot,
    slot: domain.Slot,
    who: Caller,
    reason: str,
    accepted_by: Caller | None = None,
) -> None:
    """The booking at its new dates, re-priced, and booking.rescheduled saying so, with the
    dates it had (the other side is told, calendars updated); `accepted_by` the borrower who
    consented to dates its lender proposed. A proposal still pending lapses (it was made
    against the dates and price the loan no longer has)."""
    before = domain.Slot(row.start, row.end, row.quote["units"])
    quote = domain.requote(Quote.model_validate(row.quote), slot)
    note = domain.moved_note(listing.pricing_unit, before, slot, reason)
    if accepted_by is not None:
        note += " (proposées par le prêteur, acceptées par l'emprunteur)"
    repository.close_proposal(tx.session, row.id, ProposalStatus.LAPSED, who)
    row.dates_revision = domain.dates_revision(row.dates_revision, "move")
    repository.move_dates(tx, row, slot, quote, accepted_by or who, note, who.commune)
    snapshot = repository.snapshot_of(row, reason=reason)
    moved = RescheduledBooking(
        **snapshot.model_dump(),
        previous_start=before.start,
        previous_end=before.end,
        rescheduling_id=str(uuid.uuid4()),
        moved_by_commune=who.commune,
        accepted_by_commune=accepted_by.commune if accepted_by else None,
    )
    tx.emit(BookingRescheduled, moved)


def _free_slot(tx: UnitOfWork, row, start, end, by_lender: bool):
    """The listing (locked) and the slot of new dates for the booking, if the listing's
    rules allow them (422) and no other booking or blackout takes them (409): decided as
    requests are, the booking locked first, then the listing, never the other way round,
    its holds read with this booking's own left out."""
    listing = repository.listing_for_update(tx.session, row.listing_id)
    slot = domain.slot_for(listing.pricing_unit, start, end)
    domain.check_move(
        listing,
        row.borrower_commune,
        domain.Slot(row.start, row.end, row.quote["units"]),
        slot,
        row.quantity,
        row.with_operator,
        now(),
        by_lender=by_lender,
    )
    holds = urgent_records.holds_besides(
        tx.session, listing.listing_id, slot.start, slot.end, {row.id}
    )
    domain.ensure_free(listing, slot, row.quantity, holds)
    return listing, slot


def _proposed(row, proposal, answer: str = "") -> ProposedDates:
    """The loan at its dates, with the new ones proposed (and the borrower's answer)."""
    return ProposedDates(
        **repository.snapshot_of(row, reason=proposal.reason).model_dump(),
        proposal_id=proposal.id,
        proposed_start=proposal.start,
        proposed_end=proposal.end,
        proposed_quote=Quote.model_validate(proposal.quote),
        proposed_by_commune=proposal.proposed_by_commune,
        answer=answer,
    )


def _propose(
    tx: UnitOfWork,
    row,
    listing: ListingSnapshot,
    slot: domain.Slot,
    quote: Quote,
    who: Caller,
    reason: str,
) -> None:
    """New dates that cost the borrower more, proposed, not applied: the loan keeps its
    dates and price, its history says so, and the borrower's managers are asked."""
    proposal = repository.propose_dates(tx.session, row, slot, quote, who, reason)
    before = domain.Slot(row.start, row.end, row.quote["units"])
    note = "nouvelles dates proposées à l'emprunteur, " + domain.moved_note(
        listing.pricing_unit, before, slot, reason
    ).removeprefix("dates changées, ")
    repository.record_note(tx, row, who, note)
    tx.emit(BookingDatesProposed, _proposed(row, proposal))


def _decided_urgent(tx: UnitOfWork, row, target: BookingStatus) -> None:
    """An urgent request leaving `requested` is counted in the decision time."""
    if target not in OUTCOMES:
        return
    urgent = urgent_records.urgent_request(tx.session, row.id)
    if urgent is not None:
        observe = partial(
            observe_decision, Need(urgent.need), target, urgent.requested_at, row.updated_at
        )
        tx.after_commit(observe)


def _with_urgency(session, views: list) -> list:
    """The views, each with its urgency when an episode made it urgent."""
    found = urgent_records.urgencies_of(session, [view.id for view in views])
    for view in views:
        view.urgency = found.get(view.id)
    return views


class Service(OperableService):
    name = "bookings"
    requests = GroupCommit(decide_requests, outcome_is_reply=True)
    urgent_requests_gauges = UrgentRequestsGauges()

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
            urgent = _urgency(session, who, asked, listing, [slot], clock.now())
            try:
                domain.check_request(
                    emergency.as_urgent(listing) if urgent else listing,
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

    @rpc
    def reschedule(self, caller: dict, booking_id: str, body: dict) -> dict:
        """New dates for a request (by its borrower) or an approved loan (by the lender's
        manager, before hand-over): the listing's rules as for a request, and no double
        booking, decided as requests are (the listing locked, its holds read, this booking's
        own left out); the slot it leaves goes to the waitlist."""
        who = Caller.model_validate(caller)
        asked = validated(NewDates, body)
        with self.db.transaction() as tx:
            row = repository.booking_for_update(tx.session, booking_id)
            current = BookingStatus(row.status)
            action = domain.move_action(current)
            domain.ensure_party(who, row.borrower_commune, row.lender_commune)
            domain.next_status(current, action)  # 409 for a status that never moves
            domain.ensure_may(who, action, row.borrower_commune, row.lender_commune)
            urgent = urgent_records.urgent_request(tx.session, row.id)
            emergency.ensure_decidable(action, urgent is not None and urgent.decided_at is None)
            by_lender = who.commune == row.lender_commune
            listing, slot = _free_slot(tx, row, asked.start, asked.end, by_lender)
            agreed = Quote.model_validate(row.quote)
            new_quote = domain.requote(agreed, slot)
            if domain.needs_consent(action, agreed, new_quote):
                _propose(tx, row, listing, slot, new_quote, who, asked.reason)
            else:
                _move_dates(tx, row, listing, slot, who, asked.reason)
                tx.session.flush()
                self._promote_waitlist(tx, row.listing_id)
            view = self._view(tx.session, row)
        return view.model_dump(mode="json")

    @rpc
    def accept_dates(self, caller: dict, booking_id: str) -> dict:
        """The borrower's manager accepts the new dates its lender proposed: the rules and
        the slot checked again now (it was not held: 409 if taken meanwhile), then moved
        as the lender's move would have been."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            row = repository.booking_for_update(tx.session, booking_id)
            proposal = self._standing_proposal(tx.session, row, who, domain.ensure_answerable)
            # the lender's own notice is waived, as when it proposed
            listing, slot = _free_slot(tx, row, proposal.start, proposal.end, by_lender=True)
            proposer = Caller(
                user_id=proposal.proposed_by, commune=proposal.proposed_by_commune, roles=[]
            )
            repository.close_proposal(tx.session, row.id, ProposalStatus.ACCEPTED, who)
            _move_dates(tx, row, listing, slot, proposer, proposal.reason, accepted_by=who)
            tx.session.flush()
            self._promote_waitlist(tx, row.listing_id)
            view = self._view(tx.session, row)
        return view.model_dump(mode="json")

    @rpc
    def decline_dates(self, caller: dict, booking_id: str, body: dict) -> dict:
        """The borrower's manager declines the new dates proposed: the loan keeps its own,
        and the lender's managers are told why."""
        who = Caller.model_validate(caller)
        answer = validated(Answer, body).reason
        with self.db.transaction() as tx:
            row = repository.booking_for_update(tx.session, booking_id)
            self._standing_proposal(tx.session, row, who, domain.ensure_answerable)
            proposal = repository.close_proposal(
                tx.session, row.id, ProposalStatus.DECLINED, who, answer
            )
            note = "nouvelles dates refusées par l'emprunteur" + (f" : {answer}" if answer else "")
            repository.record_note(tx, row, who, note)
            tx.emit(BookingDatesDeclined, _proposed(row, proposal, answer))
            view = self._view(tx.session, row)
        return view.model_dump(mode="json")

    @rpc
    def withdraw_dates(self, caller: dict, booking_id: str) -> dict:
        """The lender's manager takes back the new dates it proposed."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            row = repository.booking_for_update(tx.session, booking_id)
            self._standing_proposal(tx.session, row, who, domain.ensure_withdrawable)
            repository.close_proposal(tx.session, row.id, ProposalStatus.WITHDRAWN, who)
            repository.record_note(tx, row, who, "nouvelles dates retirées par le prêteur")
            view = self._view(tx.session, row)
        return view.model_dump(mode="json")

    def _standing_proposal(self, session, row, who: Caller, ensure):
        """The booking's pending proposal, if `who` may act on it now (`ensure`)."""
        proposal = repository.pending_proposal(session, row.id)
        lapsed = domain.proposal_lapsed(row.status, row.start, now())
        ensure(who, row.borrower_commune, row.lender_commune, proposal is not None, lapsed)
        return proposal

    def _view(self, session, row):
        """One booking as its answer shows it: history, urgency, pending proposal."""
        history = repository.history_of(session, [row.id])[row.id]
        proposal = repository.pending_proposal(session, row.id)
        return _with_urgency(session, [repository.view_of(row, history, proposal)])[0]

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
            urgent = urgent_records.urgent_request(tx.session, row.id)
            waiting_for_allocation = urgent is not None and urgent.decided_at is None
            emergency.ensure_decidable(action, waiting_for_allocation)
            current = BookingStatus(row.status)
            target = domain.next_status(current, action)
            moment = now()
            if stamp is not None:
                changes[stamp] = moment
            by_borrower = who.commune == row.borrower_commune
            if action == "approve" and row.agreement_held:
                _ensure_agreement(tx.session, row)
            if action == "check_out":
                listing = repository.listing_copy(tx.session, row.listing_id)
                early = listing is not None and listing.early_pickup
                domain.ensure_hand_over_allowed(row.start, early, moment)
            if action == "cancel" and domain.pays_to_cancel(
                current, by_borrower, waiting_for_allocation
            ):
                listing = repository.listing_copy(tx.session, row.listing_id)
                changes["cancellation_fee_cents"] = domain.cancellation_fee(
                    listing, row.start, moment
                )
            _move(tx, row, target, who, note, **changes)
            if domain.frees_slot(current, target):
                self._promote_waitlist(tx, row.listing_id)
            history = repository.history_of(tx.session, [row.id])[row.id]
            view = _with_urgency(tx.session, [repository.view_of(row, history)])[0]
        return view.model_dump(mode="json")

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
            view = self._view(session, row)
            view.pickup = repository.pickup_details(session, row.listing_id)
            view.condition_photos = condition_photos.condition_photos_of(session, row.id)
        return view.model_dump(mode="json")

    @rpc
    def add_condition_photo(self, caller: dict, booking_id: str, stage: str, stored: dict) -> dict:
        """Records a photo of the loan's condition the gateway has checked and stored (under
        this booking's prefix); the same image again at a stage is the photo already there.
        Answers the photo and whether it is new (the gateway keeps its bytes only if so)."""
        who = Caller.model_validate(caller)
        stage = validated(ConditionPhotoStage, {"stage": stage}).stage
        photo = validated(PhotoStored, stored)
        with self.db.transaction() as tx:
            row = repository.booking_for_update(tx.session, booking_id)
            existing = condition_photos.with_digest(tx.session, row.id, stage, photo.digest)
            new = existing is None
            taken = condition_photos.taken_at(tx.session, row.id, stage) if new else 0
            domain.ensure_condition_photo_allowed(
                who, row.status, row.borrower_commune, row.lender_commune, stage, taken
            )
            domain.ensure_condition_stored_for(row.id, photo)
            if new:
                existing = condition_photos.add_condition_photo(tx.session, row, stage, photo, who)
            shown = condition_photos.condition_photo(existing)
        return {"photo": shown.model_dump(mode="json"), "new": new}

    @rpc
    def list_bookings(self, caller: dict, query: dict) -> dict:
        who = Caller.model_validate(caller)
        q = validated(BookingQuery, query)
        with self.db.reading() as session:
            rows, cursor = repository.bookings_of(session, who.commune, q)
            items = _with_urgency(session, [repository.view_of(r) for r in rows])
        return BookingPage(items=items, next_cursor=cursor).model_dump(mode="json")

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

    # -- emergencies ------------------------------------------------------------------

    @rpc
    def declare_emergency(self, caller: dict, declaration: dict) -> dict:
        """An episode declared by an operator, or by a coordinator within their territory."""
        who = Caller.model_validate(caller)
        declared = validated(EmergencyDeclaration, declaration)
        directory = communes()
        emergency.check_territory(declared.territory, directory)
        emergency.ensure_may_declare(who, declared.territory, directory)
        now = clock.now()
        emergency.check_period(declared, now)
        with self.db.transaction() as tx:
            row = urgent_records.add_emergency(tx.session, who, declared, now)
            tx.emit(EmergencyDeclared, urgent_records.emergency_snapshot(row))
        EPISODES.forget()
        return urgent_records.emergency_view(row).model_dump(mode="json")

    @rpc
    def end_emergency(self, caller: dict, emergency_id: str, body: dict) -> dict:
        """An episode ended now, by whoever may declare one over its territory."""
        who = Caller.model_validate(caller)
        ending = validated(EmergencyEnding, body)
        with self.db.transaction() as tx:
            row = urgent_records.emergency_for_update(tx.session, emergency_id)
            episode = urgent_records.emergency_view(row)
            emergency.ensure_may_declare(who, episode.territory, communes())
            if row.ended_at is not None:
                raise Conflict("This episode has already ended")
            urgent_records.end_emergency(row, who, ending.reason, clock.now())
            tx.emit(EmergencyEnded, urgent_records.emergency_snapshot(row))
        EPISODES.forget()
        return urgent_records.emergency_view(row).model_dump(mode="json")

    @rpc
    def emergencies(self, caller: dict, query: dict) -> list[dict]:
        """Episodes in force (at a moment, now by default), or all of them with the ended
        ones. Operators and coordinators may name any commune; anyone else sees those
        covering their own commune."""
        who = Caller.model_validate(caller)
        q = validated(EmergencyQuery, query)
        commune = q.commune if who.has(Role.OPERATOR, Role.COORDINATOR) else who.commune
        at = q.at if q.include_ended else (q.at or clock.now())
        with self.db.reading() as session:
            rows = urgent_records.emergencies(session, at, q.include_ended)
        views = [urgent_records.emergency_view(row) for row in rows]
        if commune is not None:
            directory = communes()
            views = [v for v in views if emergency.in_territory(v.territory, commune, directory)]
        return [view.model_dump(mode="json") for view in views]

    @rpc
    def urgent_requests(self, caller: dict, emergency_id: str) -> dict:
        """An episode's urgent requests and the needs left unmet, for an operator or a
        coordinator of its territory."""
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            episode = urgent_records.emergency_view(
                urgent_records.get_emergency(session, emergency_id)
            )
            emergency.ensure_may_declare(who, episode.territory, communes())
            rows = urgent_records.bookings_of_emergency(session, emergency_id)
            views = _with_urgency(session, [repository.view_of(r) for r in rows])
        unmet = emergency.unmet_needs((v.urgency.need, v.status.value) for v in views)
        return UrgentRequestsReport(emergency=episode, requests=views, unmet=unmet).model_dump(
            mode="json"
        )

    @periodic("allocation_interval_seconds", default=15.0)
    def allocate_urgent_requests(self) -> None:
        """Each listing's closed allocation window decided; once, whichever replica locks
        the listing first (the other then finds nothing undecided)."""
        settings = self.config.get("SERVICE_SETTINGS")
        seconds = getattr(settings, "allocation_window_seconds", None)
        window = emergency.ALLOCATION_WINDOW if seconds is None else timedelta(seconds=seconds)
        now = clock.now()
        with self.db.reading() as session:
            due = urgent_records.listings_with_windows_closed(session, now - window)
        for listing_id in due:
            with self.db.transaction() as tx:
                self._allocate(tx, listing_id, now, window)

    def _allocate(self, tx: UnitOfWork, listing_id: str, now: datetime, window) -> None:
        """The urgent requests of the listing's closed window, decided by the published
        rule: refused ones rejected with the reason, granted ones approved when the listing
        allows it in emergencies, otherwise left to the lender with their rank."""
        pending = urgent_records.undecided(tx.session, listing_id)
        chosen = emergency.collected([request for _, _, request in pending], now, window)
        if not chosen:
            return
        listing = repository.listing_for_update(tx.session, listing_id)
        rows = {booking.id: (booking, urgent) for booking, urgent, _ in pending}
        start, end = min(r.start for r in chosen), max(r.end for r in chosen)
        held = urgent_records.holds_besides(tx.session, listing_id, start, end, set(rows))
        refused = False
        for decision in emergency.allocate(listing.quantity, held, chosen):
            booking, urgent = rows[decision.request_id]
            why = decision.explanation
            urgent_records.decide(urgent, now, decision.granted, decision.position, why)
            if not decision.granted:
                _move(
                    tx,
                    booking,
                    domain.next_status(BookingStatus(booking.status), "reject"),
                    None,
                    why,
                )
                refused = True
            elif listing.auto_approve_in_emergencies:
                _move(
                    tx,
                    booking,
                    domain.next_status(BookingStatus(booking.status), "approve"),
                    None,
                    why,
                )
            else:
                urgent_records.note(tx.session, booking, why, now)
        if refused:
            tx.session.flush()
            self._promote_waitlist(tx, listing_id)

    # -- agreements between communes, and council decisions ---------------------------

    @rpc
    def draft_agreement(self, caller: dict, body: dict) -> dict:
        """An agreement drafted by a manager of one of its parties; 422 when its parties are
        not distinct known communes, or an agreement not ended already covers some of the
        same parties, categories and days."""
        who = Caller.model_validate(caller)
        draft = validated(AgreementDraft, body)
        parties = agreements.check_draft(draft, who, communes())
        with self.db.transaction() as tx:
            new = agreements.Terms(
                agreement_id="",
                reference="",
                status=AgreementStatus.DRAFT,
                parties=frozenset(parties),
                categories=frozenset(draft.categories),
                covers_staff=draft.covers_staff,
                starts_on=draft.starts_on,
                ends_on=draft.ends_on,
            )
            agreements.check_no_overlap(new, agreement_records.terms_binding(tx.session, parties))
            row = agreement_records.add_agreement(tx.session, who, draft, parties, clock.now())
            view = self._agreement_view(tx.session, row)
        return view.model_dump(mode="json")

    @rpc
    def list_agreements(self, caller: dict, query: dict) -> dict:
        """The agreements the caller's commune is party to."""
        who = Caller.model_validate(caller)
        q = validated(AgreementQuery, query)
        with self.db.reading() as session:
            rows = agreement_records.agreements_of(session, who.commune, q.status)
            parties = agreement_records.parties_of(session, [r.id for r in rows])
            items = [agreement_records.view_of(session, r, parties[r.id]) for r in rows]
        return AgreementList(items=items).model_dump(mode="json")

    @rpc
    def agreement(self, caller: dict, agreement_id: str) -> dict:
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            row = agreement_records.get_agreement(session, agreement_id)
            view = self._agreement_view(session, row)
        agreements.ensure_party(who, [p.commune for p in view.parties])
        return view.model_dump(mode="json")

    @rpc
    def propose_agreement(self, caller: dict, agreement_id: str) -> dict:
        """A draft proposed to the parties for their councils and signatures."""
        return self._move_agreement(caller, agreement_id, "propose")

    @rpc
    def sign_agreement(self, caller: dict, agreement_id: str, body: dict) -> dict:
        """The caller's commune signs under its council's decision; the last party's
        signature puts the agreement in force (agreement.in_force instead of .signed) and
        covers the bookings between its parties that it covers."""
        signature = validated(Signature, body)
        return self._move_agreement(caller, agreement_id, "sign", signature)

    @rpc
    def end_agreement(self, caller: dict, agreement_id: str) -> dict:
        """Ended (or withdrawn before it came in force) by a manager of a party; the loans it
        covered keep its reference."""
        return self._move_agreement(caller, agreement_id, "end")

    def _move_agreement(
        self, caller: dict, agreement_id: str, action: str, signature: Signature | None = None
    ) -> dict:
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            row = agreement_records.agreement_for_update(tx.session, agreement_id)
            view = self._act_on_agreement(tx, who, row, action, signature, clock.now())
        return view.model_dump(mode="json")

    def _act_on_agreement(
        self,
        tx: UnitOfWork,
        who: Caller,
        row,
        action: str,
        signature: Signature | None,
        moment: datetime,
    ):
        """`action` on the agreement by a manager of a party, if its state allows it; a
        signature under a decision of the signer's council approving it."""
        parties = agreement_records.parties_of(tx.session, [row.id])[row.id]
        agreements.ensure_manager(who, [p.commune for p in parties])
        all_signed = False
        if signature is not None:
            agreements.next_status(AgreementStatus(row.status), action)  # 409 before 422
            decision = agreement_records.decisions_by_id(tx.session, [signature.decision_id]).get(
                signature.decision_id
            )
            agreements.check_signature(
                who.commune,
                [p.commune for p in parties if p.signed_on],
                agreement_records.facts_of(decision),
                row.id,
            )
            mine = next(p for p in parties if p.commune == who.commune)
            mine.decision_id = decision.id
            mine.signatory = signature.signatory
            mine.signed_on = clock.paris_today(moment)
            mine.signed_by = who.user_id
            all_signed = all(p.signed_on for p in parties)
        target = agreements.next_status(AgreementStatus(row.status), action, all_signed)
        return self._agreement_moved(tx, row, target, moment)

    def _agreement_moved(self, tx: UnitOfWork, row, target: AgreementStatus, moment: datetime):
        """The agreement moved to `target`, and the event that says so (an agreement's events
        are emitted here only); in force, it covers the bookings between its parties."""
        row.status = target.value
        row.updated_at = moment
        if target == AgreementStatus.ENDED:
            row.ended_at = moment
        tx.session.flush()
        view = self._agreement_view(tx.session, row)
        tx.emit(AGREEMENT_EVENTS[target], agreement_records.snapshot_of(view))
        if target == AgreementStatus.IN_FORCE:
            terms = [
                agreement_records.terms_of(
                    row, agreement_records.parties_of(tx.session, [row.id])[row.id]
                )
            ]
            for booking in agreement_records.uncovered_between(tx.session, terms[0].parties):
                _cover(tx.session, booking, terms)
        tx.after_commit(agreement_records.IN_FORCE.forget)
        return view

    @staticmethod
    def _agreement_view(session, row):
        parties = agreement_records.parties_of(session, [row.id])[row.id]
        return agreement_records.view_of(session, row, parties)

    @rpc
    def agreement_pdf(self, caller: dict, agreement_id: str) -> str:
        """The agreement's French text as a PDF (base64), for the councils' files."""
        view = AgreementView.model_validate(self.agreement(caller, agreement_id))
        return base64.b64encode(agreements_pdf.agreement_pdf(view)).decode("ascii")

    @rpc
    def attach_signed_scan(self, caller: dict, agreement_id: str, content: str) -> dict:
        """The signed agreement, scanned (a PDF), attached by a manager of a party."""
        who = Caller.model_validate(caller)
        document = base64.b64decode(content)
        agreements.check_pdf(document)
        with self.db.transaction() as tx:
            row = agreement_records.agreement_for_update(tx.session, agreement_id)
            parties = agreement_records.parties_of(tx.session, [row.id])[row.id]
            agreements.ensure_manager(who, [p.commune for p in parties])
            row.signed_scan = document
            row.has_signed_scan = True
            row.updated_at = clock.now()
            view = self._agreement_view(tx.session, row)
        return view.model_dump(mode="json")

    @rpc
    def signed_scan(self, caller: dict, agreement_id: str) -> str:
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            row = agreement_records.get_agreement(session, agreement_id)
            parties = agreement_records.parties_of(session, [row.id])[row.id]
            agreements.ensure_party(who, [p.commune for p in parties])
            if not row.has_signed_scan:
                raise NotFound("No signed scan is attached to this agreement")
            return base64.b64encode(row.signed_scan).decode("ascii")

    @rpc
    def record_decision(self, caller: dict, body: dict, pdf: str | None = None) -> dict:
        """A council decision of the caller's commune, by one of its managers; what it
        approves among the agreements the commune is party to; its PDF (base64) if sent."""
        who = Caller.model_validate(caller)
        draft = validated(DecisionDraft, body)
        if not who.has(Role.MANAGER):
            raise Forbidden("Only a manager records their council's decisions")
        moment = clock.now()
        agreements.check_decision(draft, clock.paris_today(moment))
        document = base64.b64decode(pdf) if pdf is not None else None
        if document is not None:
            agreements.check_pdf(document)
        with self.db.transaction() as tx:
            ours = {r.id for r in agreement_records.agreements_of(tx.session, who.commune)}
            unknown = [
                field_error(
                    f"agreement_ids.{n}",
                    "no agreement of your commune has this id",
                    "unknown_agreement",
                )
                for n, agreement_id in enumerate(draft.agreement_ids)
                if agreement_id not in ours
            ]
            if unknown:
                raise InvalidInput(
                    "The decision names agreements your commune is not party to", unknown
                )
            row = agreement_records.add_decision(tx.session, who, draft, moment)
            if document is not None:
                row.pdf, row.has_pdf = document, True
            view = agreement_records.decision_view(row)
        return view.model_dump(mode="json")

    @rpc
    def decisions(self, caller: dict) -> dict:
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            rows = agreement_records.decisions_of(session, who.commune)
            items = [agreement_records.decision_view(r) for r in rows]
        return DecisionList(items=items).model_dump(mode="json")

    @rpc
    def attach_decision_pdf(self, caller: dict, decision_id: str, content: str) -> dict:
        """The decision's PDF (as the prefecture received it), by a manager of its commune."""
        who = Caller.model_validate(caller)
        document = base64.b64decode(content)
        with self.db.transaction() as tx:
            row = agreement_records.decision_of(
                tx.session, who.commune, decision_id, for_update=True
            )
            if not who.has(Role.MANAGER):
                raise Forbidden("Only a manager records their council's decisions")
            agreements.check_pdf(document)
            row.pdf = document
            row.has_pdf = True
            view = agreement_records.decision_view(row)
        return view.model_dump(mode="json")

    @rpc
    def decision_pdf(self, caller: dict, decision_id: str) -> str:
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            row = agreement_records.decision_of(session, who.commune, decision_id)
            if not row.has_pdf:
                raise NotFound("No PDF is attached to this decision")
            return base64.b64encode(row.pdf).decode("ascii")

    @rpc
    def agreement_policy(self, caller: dict) -> dict:
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            required = agreement_records.requires_agreement(session, who.commune)
        return AgreementPolicy(requires_agreement=required).model_dump()

    @rpc
    def set_agreement_policy(self, caller: dict, body: dict) -> dict:
        """Whether the caller's commune lends only under an agreement in force (a manager's
        choice): requests made from now on without one are held."""
        who = Caller.model_validate(caller)
        policy = validated(AgreementPolicy, body)
        if not who.has(Role.MANAGER):
            raise Forbidden("Only a manager sets their commune's lending policy")
        with self.db.transaction() as tx:
            agreement_records.set_policy(tx.session, who, policy.requires_agreement, clock.now())
            tx.after_commit(agreement_records.IN_FORCE.forget)
        return policy.model_dump()

    @rpc
    def propose_one_off(self, caller: dict, booking_id: str, body: dict) -> dict:
        """A one-off agreement for a request held for want of one, proposed and signed by the
        lender's manager under their council's decision; in force once the borrower's manager
        signs it, then the request may be approved."""
        who = Caller.model_validate(caller)
        signature = validated(Signature, body)
        moment = clock.now()
        with self.db.transaction() as tx:
            booking = repository.booking_for_update(tx.session, booking_id)
            domain.ensure_party(who, booking.borrower_commune, booking.lender_commune)
            if who.commune != booking.lender_commune or not who.has(Role.MANAGER):
                raise Forbidden("The lender's manager proposes the one-off agreement")
            if not booking.agreement_held or booking.status != BookingStatus.REQUESTED:
                raise Conflict("This request is not held for want of an agreement")
            listing = repository.listing_copy(tx.session, booking.listing_id)
            first, last = agreements.loan_days(booking.start, booking.end)
            draft = AgreementDraft(
                title=f"Convention ponctuelle : {booking.listing_title}",
                parties=[booking.lender_commune, booking.borrower_commune],
                categories=[listing.category] if listing else [],
                starts_on=first,
                ends_on=last,
            )
            row = agreement_records.add_agreement(
                tx.session,
                who,
                draft,
                draft.parties,
                moment,
                status=AgreementStatus.PROPOSED,
                one_off_booking_id=booking.id,
            )
            self._agreement_moved(tx, row, AgreementStatus.PROPOSED, moment)
            view = self._act_on_agreement(tx, who, row, "sign", signature, moment)
        return view.model_dump(mode="json")

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

    @periodic("expiry_interval_seconds", default=30.0)
    def lapse_started_proposals(self) -> None:
        """New dates proposed for a loan that started before its borrower answered lapse,
        in the table too (a move, handover or cancellation lapses them as it happens)."""
        moment = now()
        with self.db.transaction() as tx:
            for proposal in repository.due_to_lapse(tx.session, moment):
                repository.lapse(proposal, moment)

    @consume_event_batches(LISTINGS_TO_BOOKINGS)
    def keep_listing_copies(self, events: list[Event]) -> None:
        """Keeps a copy of each listing, to decide requests without asking listings."""
        with self.db.handling_all(events) as (tx, fresh):
            repository.keep_listing_copies(tx.session, [event.payload for event in fresh])
