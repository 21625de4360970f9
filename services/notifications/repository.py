"""SQL of the notifications service: the people it knows, the mails it decided."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts.users import UserSnapshot
from infra.database import insert_new, upsert_latest
from services.notifications.domain import Notice, Person
from services.notifications.models import MailRow, PersonRow

PENDING = "pending"
SENT = "sent"
REFUSED = "refused"


def keep_people(session: Session, announced: Sequence[tuple[UserSnapshot, datetime]]) -> None:
    """The users as last announced (an older announcement arriving late changes nothing)."""
    upsert_latest(
        session,
        PersonRow.__table__,
        [
            {
                "user_id": user.user_id,
                "email": user.email,
                "name": user.name,
                "commune": user.commune,
                "roles": ",".join(sorted(r.value for r in user.roles)),
                "disabled": user.disabled,
                "as_of": at,
            }
            for user, at in announced
        ],
        key="user_id",
        rank="as_of",
    )


def person_of(row: PersonRow) -> Person:
    return Person(
        user_id=row.user_id,
        email=row.email,
        name=row.name,
        commune=row.commune,
        roles=frozenset(r for r in row.roles.split(",") if r),
        disabled=row.disabled,
    )


def people_of(session: Session, communes: Iterable[str] | None) -> list[Person]:
    """The enabled people of these communes (of every commune for None)."""
    query = select(PersonRow).where(PersonRow.disabled.is_(False))
    if communes is not None:
        query = query.where(PersonRow.commune.in_(sorted(set(communes))))
    return [person_of(row) for row in session.scalars(query)]


def add_mails(session: Session, notices: Sequence[Notice], now: datetime) -> list[str]:
    """A pending mail per notice whose (recipient, cause) has none yet; the ids of those
    added (a cause told twice adds nothing the second time)."""
    return insert_new(
        session,
        MailRow.__table__,
        [
            {
                "id": str(uuid.uuid4()),
                "recipient_id": notice.recipient.user_id,
                "address": notice.recipient.email,
                "cause": notice.cause,
                "kind": notice.kind,
                "context": notice.context,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": None,
                "created_at": now,
                "sent_at": None,
            }
            for notice in notices
        ],
        returning="id",
    )


def due_mails(session: Session, now: datetime, limit: int) -> list[MailRow]:
    """Pending mails whose time has come, oldest first, locked: two replicas never send the
    same one (SKIP LOCKED; SQLite's transaction holds the whole database)."""
    return list(
        session.scalars(
            select(MailRow)
            .where(MailRow.status == PENDING, MailRow.next_attempt_at <= now)
            .order_by(MailRow.next_attempt_at, MailRow.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def backlog(session: Session) -> tuple[int, datetime | None]:
    """How many mails wait to be sent, and since when the oldest does."""
    count, oldest = session.execute(
        select(func.count(), func.min(MailRow.created_at)).where(MailRow.status == PENDING)
    ).one()
    return count, oldest


def mails_to(session: Session, recipient_id: str) -> list[MailRow]:
    return list(
        session.scalars(
            select(MailRow).where(MailRow.recipient_id == recipient_id).order_by(MailRow.created_at)
        )
    )


def refused_mails(session: Session, limit: int = 200) -> list[MailRow]:
    """Mails the server refused for good (an address that does not exist): for the operator."""
    return list(
        session.scalars(
            select(MailRow)
            .where(MailRow.status == REFUSED)
            .order_by(MailRow.created_at.desc())
            .limit(limit)
        )
    )
