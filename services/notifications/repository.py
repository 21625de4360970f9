"""SQL of the notifications service: the people it knows, the mails it decided."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from contracts.users import UserSnapshot
from infra.database import insert_new, upsert_latest
from services.notifications.domain import Choice, Notice, Person
from services.notifications.models import (
    MailRow,
    MessageRow,
    PersonRow,
    PreferenceRow,
    ReadReceiptRow,
    SubjectRow,
)

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


def people_by_id(session: Session, user_ids: Iterable[str]) -> dict[str, Person]:
    """The enabled people among these users, by id."""
    query = select(PersonRow).where(
        PersonRow.disabled.is_(False), PersonRow.user_id.in_(sorted(set(user_ids)))
    )
    return {row.user_id: person_of(row) for row in session.scalars(query)}


def add_mails(
    session: Session, planned: Sequence[tuple[Notice, datetime, bool, datetime]]
) -> list[str]:
    """A pending mail per (notice, when, in the digest, decided at) whose (recipient, cause)
    has none yet; the ids of those added (a cause told twice adds nothing the second time). Inserted
    in key order: two replicas' batches wait for each other's keys, never deadlock."""
    planned = sorted(planned, key=lambda p: (p[0].recipient.user_id, p[0].cause))
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
                "next_attempt_at": when,
                "last_error": None,
                "created_at": decided_at,
                "sent_at": None,
                "digest": digest,
            }
            for notice, when, digest, decided_at in planned
        ],
        returning="id",
    )


def people_and_choices(
    session: Session, communes: Iterable[str] | None, kinds: Iterable[str]
) -> tuple[list[Person], dict[tuple[str, str], Choice]]:
    """The enabled people of these communes (of every commune for None) and what each chose
    for these kinds (by (user, kind); the pairs nobody chose anything for left out), in one
    statement: the mails of a batch of events were decided with a round trip more (the
    choices of those told, read after them), and their people loaded as ORM objects."""
    people, chosen = PersonRow.__table__, PreferenceRow.__table__
    communes = None if communes is None else sorted(set(communes))
    if communes == []:
        return [], {}
    query = (
        select(
            people.c.user_id,
            people.c.email,
            people.c.name,
            people.c.commune,
            people.c.roles,
            chosen.c.kind,
            chosen.c.mode,
            chosen.c.digest_hour,
        )
        .select_from(
            people.outerjoin(
                chosen,
                (chosen.c.user_id == people.c.user_id) & chosen.c.kind.in_(sorted(set(kinds))),
            )
        )
        .where(people.c.disabled.is_(False))
    )
    if communes is not None:
        query = query.where(people.c.commune.in_(communes))
    found: dict[str, Person] = {}
    choices: dict[tuple[str, str], Choice] = {}
    for user_id, email, name, commune, roles, kind, mode, digest_hour in session.execute(query):
        if user_id not in found:
            found[user_id] = Person(
                user_id=user_id,
                email=email,
                name=name,
                commune=commune,
                roles=frozenset(r for r in roles.split(",") if r),
            )
        if kind is not None:
            choices[(user_id, kind)] = Choice(mode, digest_hour)
    return list(found.values()), choices


def preferences_of(session: Session, user_id: str) -> dict[str, Choice]:
    rows = session.scalars(select(PreferenceRow).where(PreferenceRow.user_id == user_id))
    return {row.kind: Choice(row.mode, row.digest_hour) for row in rows}


def set_preferences(
    session: Session, user_id: str, choices: dict[str, Choice], now: datetime
) -> None:
    """The person's choices for these kinds, replacing theirs (one statement: two saves at
    once end with one of them, never with an error)."""
    _replace(
        session,
        PreferenceRow.__table__,
        ("user_id", "kind"),
        [
            {
                "user_id": user_id,
                "kind": kind,
                "mode": choice.mode,
                "digest_hour": choice.digest_hour,
                "changed_at": now,
            }
            for kind, choice in choices.items()
        ],
    )


def _replace(session: Session, table, keys: tuple[str, ...], rows: list[dict]) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE: each row replaces the one of its keys."""
    if not rows:
        return
    dialect = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}
    statement = dialect[session.get_bind().dialect.name](table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: statement.excluded[name] for name in rows[0] if name not in keys},
    )
    session.execute(statement, rows)


# -- conversations --------------------------------------------------------------------


def keep_subjects(session: Session, subjects: Sequence[dict]) -> None:
    """The bookings and engagements as their latest events tell (their two communes); in
    id order (a stable sort: the later of two events on a tie still wins), so two replicas'
    batches never deadlock on the same subjects."""
    subjects = sorted(subjects, key=lambda s: s["subject_id"])
    upsert_latest(session, SubjectRow.__table__, subjects, key="subject_id", rank="as_of")


def subject(session: Session, subject_id: str) -> SubjectRow | None:
    return session.get(SubjectRow, subject_id) if len(subject_id) <= 36 else None


def approved_starting(session: Session, start: datetime, end: datetime) -> list[SubjectRow]:
    """The approved bookings whose loan starts in [start, end)."""
    return list(
        session.scalars(
            select(SubjectRow).where(
                SubjectRow.status == "approved",
                SubjectRow.start >= start,
                SubjectRow.start < end,
            )
        )
    )


def person(session: Session, user_id: str) -> Person | None:
    row = session.get(PersonRow, user_id)
    return person_of(row) if row is not None else None


def add_message(session: Session, message: dict) -> None:
    session.add(MessageRow(**message))


def messages_of(session: Session, subject_id: str) -> list[MessageRow]:
    return list(
        session.scalars(
            select(MessageRow)
            .where(MessageRow.subject_id == subject_id)
            .order_by(MessageRow.posted_at, MessageRow.id)
        )
    )


def read_up_to(session: Session, subject_id: str) -> dict[str, datetime]:
    rows = session.scalars(select(ReadReceiptRow).where(ReadReceiptRow.subject_id == subject_id))
    return {row.commune: row.read_up_to for row in rows}


def mark_read(session: Session, subject_id: str, commune: str, at: datetime) -> None:
    _replace(
        session,
        ReadReceiptRow.__table__,
        ("subject_id", "commune"),
        [{"subject_id": subject_id, "commune": commune, "read_up_to": at}],
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


def mark_sent(session: Session, mail_ids: Iterable[str], at: datetime) -> None:
    """These mails sent at `at` (a try more each), in one statement for all."""
    mail_ids = sorted(mail_ids)
    if not mail_ids:
        return
    session.execute(
        update(MailRow.__table__)
        .where(MailRow.__table__.c.id.in_(mail_ids))
        .values(status=SENT, sent_at=at, last_error=None, attempts=MailRow.__table__.c.attempts + 1)
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
