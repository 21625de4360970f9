"""Reading and writing bookings in the bookings database."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache

from prometheus_client import Counter
from sqlalchemy import CompoundSelect, Select, Text, bindparam, cast, or_, select, union_all
from sqlalchemy.orm import Session

from contracts import clock
from contracts.bookings import (
    HOLDING,
    BookingQuery,
    BookingSnapshot,
    BookingStatus,
    BookingView,
    Damage,
    DatesProposal,
    ProposalStatus,
    Quote,
    Transition,
)
from contracts.caller import Caller
from contracts.clock import now as clock_now
from contracts.errors import InvalidInput, NotFound
from contracts.fields import is_uuid
from contracts.listings import ListingSnapshot, PickupDetails, PricingUnit
from infra.database import UnitOfWork, upsert_latest
from infra.paging import as_party, one_page
from services.bookings.domain import (
    Hold,
    NewBooking,
    Slot,
    days_late,
    decide_by,
    is_overdue,
    proposal_lapsed,
)
from services.bookings.models import (
    BookingRow,
    DatesProposalRow,
    ListingCopy,
    TransitionRow,
    UrgentRequestRow,
)


def unknown_listing() -> InvalidInput:
    return InvalidInput(
        "Unknown listing",
        [{"field": "listing_id", "message": "no such listing", "type": "unknown_listing"}],
    )


_copies = ListingCopy.__table__.c
# built once (the hot path of every request): plain Core, no ORM compilation per execution
_LOCK_COPIES = (
    select(_copies.listing_id, cast(_copies.snapshot, Text).label("snapshot"))
    .where(_copies.listing_id.in_(bindparam("ids", expanding=True)))
    .order_by(_copies.listing_id)
    .with_for_update()
)


def listings_for_update(session: Session, listing_ids: Iterable[str]) -> dict[str, ListingSnapshot]:
    """The local copies of these listings, locked: requests for one listing are decided one
    at a time (PostgreSQL row locks, taken in id order so that two transactions locking
    several never wait for each other; SQLite holds the database lock since BEGIN
    IMMEDIATE). Unknown ids are absent."""
    rows = session.execute(_LOCK_COPIES, {"ids": sorted(set(listing_ids))})
    return {row.listing_id: _snapshot_of(row.snapshot) for row in rows}


@lru_cache(maxsize=1024)
def _snapshot_of(stored: str) -> ListingSnapshot:
    """A copy's snapshot (its JSON as stored) as a model, read once per version of a
    listing and process: every batch of requests locks its listings, mostly the same few
    again (their parsing and validation were 3 % of the service's samples under booking
    load). The model is frozen, so the one kept may be shared."""
    return ListingSnapshot.model_validate_json(stored)


def listing_for_update(session: Session, listing_id: str) -> ListingSnapshot:
    """The local copy of one listing, locked (see listings_for_update)."""
    listing = listings_for_update(session, [listing_id]).get(listing_id)
    if listing is None:
        raise unknown_listing()
    return listing


def keep_listing_copies(session: Session, snapshots: Sequence[ListingSnapshot]) -> None:
    """The copies of listings, in one statement: listing events may arrive out of order, and
    only a revision at least as recent replaces a copy (the same one again changes nothing)."""
    now = clock.now()
    upsert_latest(
        session,
        ListingCopy.__table__,
        [
            {
                "listing_id": snapshot.listing_id,
                "owner_commune": snapshot.owner_commune,
                "status": snapshot.status.value,
                "revision": snapshot.revision,
                "snapshot": snapshot.model_dump(mode="json"),
                "updated_at": now,
            }
            for snapshot in snapshots
        ],
        key="listing_id",
        rank="revision",
    )


def listing_copy(session: Session, listing_id: str) -> ListingSnapshot | None:
    copy = session.get(ListingCopy, listing_id)
    return ListingSnapshot.model_validate(copy.snapshot) if copy else None


def pickup_details(session: Session, listing_id: str) -> PickupDetails | None:
    """The lender's contact, pick-up address and instructions and the photos, from the copy
    of the listing (None when it is not known here)."""
    listing = listing_copy(session, listing_id)
    if listing is None:
        return None
    return PickupDetails(
        contact=listing.contact,
        pickup_address=listing.pickup_address,
        pickup_instructions=listing.pickup_instructions,
        photos=listing.photos,
    )


def holds(session: Session, listing_id: str, slot: Slot) -> list[Hold]:
    """Periods and quantities of the bookings holding this listing during `slot`."""
    return holds_during(session, {listing_id: (slot.start, slot.end)})[listing_id]


def holds_during(
    session: Session, spans: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, list[Hold]]:
    """The holds of several listings in one statement, each listing during its own span."""
    found: dict[str, list[Hold]] = {listing_id: [] for listing_id in spans}
    if not spans:
        return found
    parameters = {}
    for n, (listing_id, (start, end)) in enumerate(spans.items()):
        parameters |= {f"listing_{n}": listing_id, f"start_{n}": start, f"end_{n}": end}
    for row in session.execute(_holds_of(len(spans)), parameters):
        found[row.listing_id].append((row.start, row.end, row.quantity))
    return found


@lru_cache(maxsize=64)
def _holds_of(count: int) -> CompoundSelect:
    """The statement of holds_during for `count` listings, built once: plain Core, with
    bound parameters (listing_<n>, start_<n>, end_<n>). One SELECT per listing, joined by
    UNION ALL, each an index range scan of ix_bookings_listing_status_end whatever the
    statistics say: as one SELECT whose listings were ORed, PostgreSQL planned a table
    never analysed yet (a new database, a bench's first minutes) through the status index,
    reading every holding booking of every listing at each batch (277 rows a request
    after 2,000 bookings, growing with them)."""
    bookings = BookingRow.__table__.c
    holding = [s.value for s in HOLDING]
    return union_all(
        *(
            select(bookings.listing_id, bookings.start, bookings.end, bookings.quantity).where(
                bookings.listing_id == bindparam(f"listing_{n}"),
                bookings.status.in_(holding),
                bookings.start < bindparam(f"end_{n}"),
                bookings.end > bindparam(f"start_{n}"),
            )
            for n in range(count)
        )
    )


TRANSITIONS = Counter(
    "mutualis_bookings_transitions_total", "Bookings entering each status", ["status"]
)
for _status in BookingStatus:
    TRANSITIONS.labels(_status.value)  # every status exported from the start, at 0


def add_booking(
    tx: UnitOfWork,
    booking: NewBooking,
    agreement_reference: str | None = None,
    agreement_held: bool = False,
) -> BookingRow:
    """The booking and its first transition, written with the commit; the agreement that
    covers it, or whether it is held for want of one (services/bookings/agreements.py)."""
    now = clock.now()
    listing, by, slot = booking.listing, booking.by, booking.slot
    values = {
        "id": str(uuid.uuid4()),
        "listing_id": listing.listing_id,
        "listing_title": listing.title,
        "lender_commune": listing.owner_commune,
        "borrower_commune": by.commune,
        "status": booking.status.value,
        "start": slot.start,
        "end": slot.end,
        "quantity": booking.quantity,
        "purpose": booking.purpose,
        "with_operator": booking.with_operator,
        "order_reference": booking.order_reference,
        "quote": booking.quote.model_dump(mode="json"),
        "series_id": booking.series_id,
        "damages": [],
        "cancellation_fee_cents": 0,
        "requested_by": by.user_id,
        "created_at": now,
        "updated_at": now,
        "decide_by": decide_by(listing.pricing_unit, slot.start),
        "agreement_reference": agreement_reference,
        "agreement_held": agreement_held,
        "dates_revision": 0,
    }
    # written with the commit, without the ORM's unit of work (the hot path of every
    # request), in one round trip with the events; the returned row is for reading only
    tx.insert_at_commit(BookingRow.__table__, [values])
    tx.insert_at_commit(
        TransitionRow.__table__,
        [
            {
                "booking_id": values["id"],
                "status": booking.status.value,
                "at": now,
                "by_user": by.user_id,
                "by_commune": by.commune,
                "note": booking.note,
            }
        ],
    )
    tx.after_commit(TRANSITIONS.labels(booking.status.value).inc)
    return BookingRow(**values)


def record_transition(
    tx: UnitOfWork,
    row: BookingRow,
    status: BookingStatus,
    caller: Caller | None,
    note: str = "",
    **changes,
) -> None:
    """Moves the booking to `status`, with `changes` to its columns, and keeps the history
    (the service emits the matching event)."""
    now = clock.now()
    for column, value in changes.items():
        setattr(row, column, value)
    row.status = status.value
    row.updated_at = now
    tx.session.add(
        TransitionRow(
            booking_id=row.id,
            status=status.value,
            at=now,
            by_user=caller.user_id if caller else None,
            by_commune=caller.commune if caller else None,
            note=note,
        )
    )
    tx.after_commit(TRANSITIONS.labels(status.value).inc)


RESCHEDULED = Counter(
    "mutualis_bookings_rescheduled_total",
    "Bookings moved to other dates, by the side that moved them",
    ["side"],
)
for _side in ("borrower", "lender"):
    RESCHEDULED.labels(_side)


def move_dates(
    tx: UnitOfWork,
    row: BookingRow,
    slot: Slot,
    quote: Quote,
    caller: Caller,
    note: str,
    moved_by_commune: str,
) -> None:
    """The booking at new dates with its new quote, its status kept, and the line in its
    history that says so (not counted as entering its status again); `caller` is who
    applied them (the borrower accepting its lender's proposal), counted by the side that
    moved it."""
    row.start, row.end = slot.start, slot.end
    row.quote = quote.model_dump(mode="json")
    row.decide_by = decide_by(PricingUnit(quote.pricing_unit), slot.start)
    record_note(tx, row, caller, note)
    side = "lender" if moved_by_commune == row.lender_commune else "borrower"
    tx.after_commit(RESCHEDULED.labels(side).inc)


def record_note(tx: UnitOfWork, row: BookingRow, caller: Caller, note: str) -> None:
    """A line in the booking's history, its status kept: new dates applied, proposed,
    declined or withdrawn."""
    now = clock.now()
    row.updated_at = now
    tx.session.add(
        TransitionRow(
            booking_id=row.id,
            status=row.status,
            at=now,
            by_user=caller.user_id,
            by_commune=caller.commune,
            note=note,
        )
    )


def snapshot_of(row: BookingRow, reason: str = "") -> BookingSnapshot:
    return BookingSnapshot(
        booking_id=row.id,
        listing_id=row.listing_id,
        listing_title=row.listing_title,
        status=BookingStatus(row.status),
        lender_commune=row.lender_commune,
        borrower_commune=row.borrower_commune,
        start=row.start,
        end=row.end,
        quantity=row.quantity,
        with_operator=row.with_operator,
        quote=Quote.model_validate(row.quote),
        order_reference=row.order_reference,
        cancellation_fee_cents=row.cancellation_fee_cents,
        damages=[Damage.model_validate(d) for d in row.damages],
        reason=reason,
        checked_out_at=row.checked_out_at,
        returned_at=row.returned_at,
        days_late=days_late(row.end, row.returned_at) if row.returned_at else 0,
        requested_by=row.requested_by,
        agreement_reference=row.agreement_reference,
        dates_revision=row.dates_revision,
    )


def pending_proposal(session: Session, booking_id: str) -> DatesProposalRow | None:
    """The booking's proposal still awaiting the borrower's answer (at most one: a new one
    replaces it, under the booking's lock)."""
    return session.scalars(
        select(DatesProposalRow).where(
            DatesProposalRow.booking_id == booking_id,
            DatesProposalRow.status == ProposalStatus.PENDING.value,
        )
    ).first()


def propose_dates(
    session: Session, row: BookingRow, slot: Slot, quote: Quote, caller: Caller, reason: str
) -> DatesProposalRow:
    """The new dates proposed, replacing the one pending if any."""
    now = clock.now()
    close_proposal(session, row.id, ProposalStatus.REPLACED, caller)
    proposal = DatesProposalRow(
        id=str(uuid.uuid4()),
        booking_id=row.id,
        start=slot.start,
        end=slot.end,
        quote=quote.model_dump(mode="json"),
        proposed_by=caller.user_id,
        proposed_by_commune=caller.commune,
        reason=reason,
        proposed_at=now,
        status=ProposalStatus.PENDING.value,
        answer="",
    )
    session.add(proposal)
    return proposal


def close_proposal(
    session: Session,
    booking_id: str,
    status: ProposalStatus,
    caller: Caller | None,
    answer: str = "",
) -> DatesProposalRow | None:
    """The booking's pending proposal, if any, answered (or lapsed, withdrawn, replaced)."""
    proposal = pending_proposal(session, booking_id)
    if proposal is not None:
        proposal.status = status.value
        proposal.answered_at = clock.now()
        proposal.answered_by = caller.user_id if caller else None
        proposal.answered_by_commune = caller.commune if caller else None
        proposal.answer = answer
        session.flush()
    return proposal


def proposal_view(proposal: DatesProposalRow | None) -> DatesProposal | None:
    if proposal is None:
        return None
    return DatesProposal.model_validate(proposal, from_attributes=True)


def booking_for_update(session: Session, booking_id: str) -> BookingRow:
    if not is_uuid(booking_id):
        raise NotFound("No such booking")
    row = session.scalars(
        select(BookingRow).where(BookingRow.id == booking_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound("No such booking")
    return row


def get_booking(session: Session, booking_id: str) -> BookingRow:
    if not is_uuid(booking_id):
        raise NotFound("No such booking")
    row = session.get(BookingRow, booking_id)
    if row is None:
        raise NotFound("No such booking")
    return row


def history_of(session: Session, booking_ids: list[str]) -> dict[str, list[Transition]]:
    found: dict[str, list[Transition]] = {i: [] for i in booking_ids}
    if not booking_ids:
        return found
    rows = session.scalars(
        select(TransitionRow)
        .where(TransitionRow.booking_id.in_(booking_ids))
        .order_by(TransitionRow.id)
    )
    for t in rows:
        found[t.booking_id].append(Transition.model_validate(t, from_attributes=True))
    return found


def view_of(
    row: BookingRow,
    history: list[Transition] | None = None,
    proposal: DatesProposalRow | None = None,
) -> BookingView:
    """The booking as shown; with its pending proposal, unless it has lapsed."""
    view = BookingView.model_validate(row, from_attributes=True)
    view.history = history or []
    now = clock_now()
    view.overdue = is_overdue(row.status, row.end, now)
    if proposal is not None and not proposal_lapsed(row.status, row.start, now):
        view.proposal = proposal_view(proposal)
    return view


def bookings_of(
    session: Session, commune: str, query: BookingQuery
) -> tuple[list[BookingRow], str | None]:
    stmt = select(BookingRow).where(
        as_party(commune, query.as_, BookingRow.borrower_commune, BookingRow.lender_commune)
    )
    if query.status is not None:
        stmt = stmt.where(BookingRow.status == query.status.value)
    if query.listing_id is not None:
        stmt = stmt.where(BookingRow.listing_id == query.listing_id)
    return one_page(
        session, stmt.order_by(BookingRow.start, BookingRow.id), query.cursor, query.limit
    )


def waiting_for(session: Session, listing_id: str) -> list[BookingRow]:
    """The waitlist of a listing, first come first served."""
    return list(
        session.scalars(
            select(BookingRow)
            .where(
                BookingRow.listing_id == listing_id,
                BookingRow.status == BookingStatus.WAITING.value,
            )
            .order_by(BookingRow.created_at, BookingRow.id)
        )
    )


def due_to_expire(session: Session, now: datetime, limit: int = 100) -> list[BookingRow]:
    """Requests still undecided when they can no longer start (domain.decide_by), but for
    urgent ones still waiting for their allocation window: a request made at 10:52 for the
    current hour would expire at 11:00, before its window closes at 11:02 (and the lender
    may not approve it by hand meanwhile); the allocation decides it first."""
    waiting_for_allocation = (
        select(UrgentRequestRow.booking_id)
        .where(UrgentRequestRow.booking_id == BookingRow.id, UrgentRequestRow.decided_at.is_(None))
        .exists()
    )
    return _locked_for_a_timer(
        session,
        select(BookingRow)
        .where(
            BookingRow.status.in_([BookingStatus.REQUESTED.value, BookingStatus.WAITING.value]),
            BookingRow.decide_by <= now,
            ~waiting_for_allocation,
        )
        .order_by(BookingRow.decide_by)
        .limit(limit),
    )


def due_overdue(session: Session, now: datetime, limit: int = 100) -> list[BookingRow]:
    """Loans handed over, not returned by their end, whose overdue was not announced yet."""
    return _locked_for_a_timer(
        session,
        select(BookingRow)
        .where(
            BookingRow.status == BookingStatus.CHECKED_OUT.value,
            BookingRow.end <= now,
            BookingRow.overdue_sent_at.is_(None),
        )
        .order_by(BookingRow.end)
        .limit(limit),
    )


def due_to_lapse(session: Session, now: datetime, limit: int = 100) -> list[DatesProposalRow]:
    """Proposals still marked pending whose loan has started or left the approved status
    (domain.proposal_lapsed): nobody can answer them any more, and the table must say so
    to whoever audits it, not only the views that read it."""
    return _locked_for_a_timer(
        session,
        select(DatesProposalRow)
        .join(BookingRow, BookingRow.id == DatesProposalRow.booking_id)
        .where(
            DatesProposalRow.status == ProposalStatus.PENDING.value,
            or_(BookingRow.start <= now, BookingRow.status != BookingStatus.APPROVED.value),
        )
        .order_by(DatesProposalRow.proposed_at)
        .limit(limit),
    )


def lapse(proposal: DatesProposalRow, now: datetime) -> None:
    """Marked lapsed by time: answered by nobody, when the timer saw it."""
    proposal.status = ProposalStatus.LAPSED.value
    proposal.answered_at = now
    proposal.answered_by = proposal.answered_by_commune = None
    proposal.answer = ""


def _locked_for_a_timer(session: Session, query: Select) -> list:
    """The rows a timer acts on, locked; on PostgreSQL a second replica's timer skips those
    the first holds (SQLite's BEGIN IMMEDIATE has them wait their turn)."""
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))
