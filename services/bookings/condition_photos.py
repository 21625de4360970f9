"""Reading and writing the photos of loans' condition in the bookings database."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts import clock
from contracts.bookings import ConditionPhoto
from contracts.caller import Caller
from contracts.listings import PhotoStored
from services.bookings.models import BookingRow, ConditionPhotoRow


def condition_photo(row: ConditionPhotoRow) -> ConditionPhoto:
    return ConditionPhoto(
        **row.photo_fields(), stage=row.stage, added_by_commune=row.added_by_commune
    )


def condition_photos_of(session: Session, booking_id: str) -> list[ConditionPhoto]:
    """A booking's photos of its condition, hand-over's then return's, first taken first."""
    rows = session.scalars(
        select(ConditionPhotoRow)
        .where(ConditionPhotoRow.booking_id == booking_id)
        .order_by(ConditionPhotoRow.stage != "check_out", ConditionPhotoRow.added_at)
    )
    return [condition_photo(row) for row in rows]


def taken_at(session: Session, booking_id: str, stage: str) -> int:
    return session.scalar(
        select(func.count())
        .select_from(ConditionPhotoRow)
        .where(ConditionPhotoRow.booking_id == booking_id, ConditionPhotoRow.stage == stage)
    )


def with_digest(
    session: Session, booking_id: str, stage: str, digest: str
) -> ConditionPhotoRow | None:
    return session.scalars(
        select(ConditionPhotoRow).where(
            ConditionPhotoRow.booking_id == booking_id,
            ConditionPhotoRow.stage == stage,
            ConditionPhotoRow.digest == digest,
        )
    ).one_or_none()


def add_condition_photo(
    session: Session, booking: BookingRow, stage: str, stored: PhotoStored, caller: Caller
) -> ConditionPhotoRow:
    row = ConditionPhotoRow(
        id=str(uuid.uuid4()),
        booking_id=booking.id,
        stage=stage,
        added_by=caller.user_id,
        added_by_commune=caller.commune,
        added_at=clock.now(),
        **stored.model_dump(),
    )
    session.add(row)
    session.flush()
    return row
