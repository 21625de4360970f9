"""Reading and writing emergency episodes and urgent requests in the bookings database."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from contracts.bookings import HOLDING, BookingStatus, Urgency
from contracts.caller import Caller
from contracts.emergencies import (
    EmergencyDeclaration,
    EmergencySnapshot,
    EmergencyView,
    Need,
    Territory,
)
from contracts.errors import NotFound
from contracts.fields import is_uuid
from infra.database import UnitOfWork
from services.bookings.emergency import Hold, Urgent, UrgentRequest
from services.bookings.models import BookingRow, EmergencyRow, TransitionRow, UrgentRequestRow

# -- episodes ---------------------------------------------------------------------------


def add_emergency(session: Session, who: Caller, declared: EmergencyDeclaration, now: datetime):
    row = EmergencyRow(
        id=str(uuid.uuid4()),
        name=declared.name,
        territory=declared.territory.model_dump(mode="json"),
        categories=list(declared.categories),
        start=declared.start,
        end=declared.end,
        declared_by=who.user_id,
        declared_by_commune=who.commune,
        declared_at=now,
        reason="",
    )
    session.add(row)
    session.flush()
    return row


def emergency_for_update(session: Session, emergency_id: str) -> EmergencyRow:
    if not is_uuid(emergency_id):
        raise NotFound("No such emergency")
    row = session.scalars(
        select(EmergencyRow).where(EmergencyRow.id == emergency_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound("No such emergency")
    return row


def get_emergency(session: Session, emergency_id: str) -> EmergencyRow:
    row = session.get(EmergencyRow, emergency_id) if is_uuid(emergency_id) else None
    if row is None:
        raise NotFound("No such emergency")
    return row


def end_emergency(row: EmergencyRow, who: Caller, reason: str, now: datetime) -> None:
    """Ended now: its end is now, unless it was to end before."""
    row.ended_at = now
    row.ended_by = who.user_id
    row.reason = reason
    if row.end is None or row.end > now:
        row.end = now


def emergencies(
    session: Session, at: datetime | None, include_ended: bool, limit: int = 200
) -> list[EmergencyRow]:
    """Episodes in force at `at` (all of them when None), the latest started first; ended
    ones only if asked."""
    query = select(EmergencyRow)
    if at is not None:
        query = query.where(
            EmergencyRow.start <= at, or_(EmergencyRow.end.is_(None), EmergencyRow.end > at)
        )
    if not include_ended:
        query = query.where(EmergencyRow.ended_at.is_(None))
    return list(session.scalars(query.order_by(EmergencyRow.start.desc()).limit(limit)))


def emergency_view(row: EmergencyRow) -> EmergencyView:
    return EmergencyView(
        id=row.id,
        name=row.name,
        territory=Territory.model_validate(row.territory),
        categories=row.categories,
        start=row.start,
        end=row.end,
        declared_by=row.declared_by,
        declared_by_commune=row.declared_by_commune,
        declared_at=row.declared_at,
        ended_at=row.ended_at,
        ended_by=row.ended_by,
        reason=row.reason,
    )


def emergency_snapshot(row: EmergencyRow) -> EmergencySnapshot:
    view = emergency_view(row)
    return EmergencySnapshot(
        emergency_id=view.id,
        ended=view.ended_at is not None,
        **view.model_dump(
            include={"name", "territory", "categories", "start", "end", "declared_by_commune"}
        ),
        reason=view.reason,
    )


# -- urgent requests --------------------------------------------------------------------


def add_urgent(tx: UnitOfWork, bookings: Iterable[BookingRow], urgent: Urgent) -> None:
    """The bookings of one request are urgent, written with the commit as they are."""
    tx.insert_at_commit(
        UrgentRequestRow.__table__,
        [
            {
                "booking_id": row.id,
                "emergency_id": urgent.emergency_id,
                "listing_id": row.listing_id,
                "need": urgent.need.value,
                "distance_km": urgent.distance_km,
                "requested_at": row.created_at,
                "decided_at": None,
                "granted": None,
                "position": None,
                "explanation": "",
            }
            for row in bookings
        ],
    )


def urgent_request(session: Session, booking_id: str) -> UrgentRequestRow | None:
    return session.get(UrgentRequestRow, booking_id)


def urgencies_of(session: Session, booking_ids: Sequence[str]) -> dict[str, Urgency]:
    if not booking_ids:
        return {}
    rows = session.scalars(
        select(UrgentRequestRow).where(UrgentRequestRow.booking_id.in_(booking_ids))
    )
    return {r.booking_id: Urgency.model_validate(r, from_attributes=True) for r in rows}


_UNDECIDED = (
    UrgentRequestRow.decided_at.is_(None),
    BookingRow.id == UrgentRequestRow.booking_id,
    BookingRow.status == BookingStatus.REQUESTED.value,
)


def listings_with_windows_closed(session: Session, opened_before: datetime) -> list[str]:
    """The listings with an undecided urgent request made before `opened_before`: their
    allocation window has closed."""
    return list(
        session.scalars(
            select(UrgentRequestRow.listing_id)
            .where(*_UNDECIDED, UrgentRequestRow.requested_at <= opened_before)
            .distinct()
        )
    )


def undecided(
    session: Session, listing_id: str
) -> list[tuple[BookingRow, UrgentRequestRow, UrgentRequest]]:
    """The urgent requests of a listing still waiting for their allocation, each as its
    rows and as the allocation sees it. Their bookings are locked, before the listing, as a
    cancellation or a rejection locks a booking and then its listing (the other order
    deadlocks them); on PostgreSQL a request another transaction holds is skipped: a second
    replica's timer finds none, and one being cancelled is left out of the window."""
    query = (
        select(BookingRow, UrgentRequestRow)
        .where(*_UNDECIDED, UrgentRequestRow.listing_id == listing_id)
        .order_by(UrgentRequestRow.requested_at)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(of=BookingRow, skip_locked=True)
    rows = session.execute(query)
    return [
        (
            booking,
            urgent,
            UrgentRequest(
                id=booking.id,
                start=booking.start,
                end=booking.end,
                quantity=booking.quantity,
                need=Need(urgent.need),
                distance_km=urgent.distance_km,
                requested_at=urgent.requested_at,
            ),
        )
        for booking, urgent in rows
    ]


def holds_besides(
    session: Session, listing_id: str, start: datetime, end: datetime, besides: set[str]
) -> list[Hold]:
    """The holds of a listing during [start, end), but for the bookings `besides` (the
    urgent requests not yet allocated: they hold nothing until they are)."""
    rows = session.execute(
        select(BookingRow.id, BookingRow.start, BookingRow.end, BookingRow.quantity).where(
            BookingRow.listing_id == listing_id,
            BookingRow.status.in_([s.value for s in HOLDING]),
            BookingRow.start < end,
            BookingRow.end > start,
        )
    )
    return [(r.start, r.end, r.quantity) for r in rows if r.id not in besides]


def decide(row: UrgentRequestRow, now: datetime, granted: bool, position: int, why: str) -> None:
    row.decided_at = now
    row.granted = granted
    row.position = position
    row.explanation = why


def note(session: Session, row: BookingRow, text: str, now: datetime) -> None:
    """A line in the booking's history, its status unchanged (the allocation granted it,
    the lender still decides)."""
    session.add(
        TransitionRow(
            booking_id=row.id, status=row.status, at=now, by_user=None, by_commune=None, note=text
        )
    )


def waiting(session: Session) -> tuple[int, datetime | None]:
    """How many urgent requests wait for a decision (the allocation's or the lender's), and
    when the oldest was made."""
    count, first = session.execute(
        select(func.count(), func.min(UrgentRequestRow.requested_at)).where(
            BookingRow.id == UrgentRequestRow.booking_id,
            BookingRow.status == BookingStatus.REQUESTED.value,
        )
    ).one()  # min() keeps the column's type: an aware datetime on either database
    return count, first


def bookings_of_emergency(session: Session, emergency_id: str, limit: int = 500) -> list:
    """The bookings an episode made urgent, the latest first."""
    return list(
        session.scalars(
            select(BookingRow)
            .join(UrgentRequestRow, UrgentRequestRow.booking_id == BookingRow.id)
            .where(UrgentRequestRow.emergency_id == emergency_id)
            .order_by(BookingRow.created_at.desc())
            .limit(limit)
        )
    )
