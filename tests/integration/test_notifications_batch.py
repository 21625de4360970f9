"""The notifications service's events applied in batches (services.notifications.service.tell)
on a migrated notifications database, on both backends: a batch decides the mails its events
would one at a time, in the same few statements and one transaction whatever its size; a
failing event leaves nothing of its batch, and its fellows then apply alone, once. And the
mail server down is tried again once per wait, not at every round."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest
import time_machine
from sqlalchemy import event as sql_event
from sqlalchemy import func, select

from contracts import clock
from contracts.bookings import (
    BookingApproved,
    BookingCheckedOut,
    BookingRejected,
    BookingRequested,
)
from contracts.caller import Role
from contracts.users import UserCreated, UserSnapshot
from infra.database import DatabaseAccess, make_engine
from infra.messaging_tables import processed_events
from services.notifications import domain, repository
from services.notifications import service as notifications
from services.notifications.mailer import ServerUnavailable
from services.notifications.models import MailRow, SubjectRow
from services.notifications.service import booking_subject
from tests.support.mail import MailCatcher, carried
from tests.support.schema import migrated
from tests.unit.test_notifications_rules import CHAMBON, FIRMINY, LYON
from tests.unit.test_notifications_rules import booking as loan

PEOPLE = [
    ("lender-manager", CHAMBON, [Role.MANAGER]),
    ("lender-manager-2", CHAMBON, [Role.MANAGER, Role.FINANCE]),
    ("lender-agent", CHAMBON, [Role.AGENT]),
    ("borrower-agent", FIRMINY, [Role.AGENT]),
    ("borrower-agent-2", FIRMINY, [Role.AGENT]),
    ("borrower-manager", FIRMINY, [Role.MANAGER]),
    ("far-manager", LYON, [Role.MANAGER]),
]


def booking(booking_id: str, status: str, lender=CHAMBON, requested_by="borrower-agent"):
    return loan(status, requested_by).model_copy(
        update={"booking_id": booking_id, "lender_commune": lender}
    )


def event(kind, payload):
    return kind.new(payload, producer="bookings")


def database(url: str) -> DatabaseAccess:
    """A migrated notifications database that knows PEOPLE, two of whom chose how they
    are told."""
    migrated("notifications", url)
    engine = make_engine(url)
    people = DatabaseAccess(engine, "notifications", None, "notifications.learn_people")
    users = [
        UserCreated.new(
            UserSnapshot(
                user_id=user_id, email=f"{user_id}@example.fr", name=user_id, commune=c, roles=r
            ),
            producer="gateway",
        )
        for user_id, c, r in PEOPLE
    ]
    with people.handling_all(users) as (tx, fresh):
        repository.keep_people(tx.session, [(e.payload, e.occurred_at) for e in fresh])
        now = clock.now()
        repository.set_preferences(
            tx.session, "lender-manager-2", {"booking_requested": domain.Choice("daily")}, now
        )
        repository.set_preferences(
            tx.session, "borrower-agent", {"booking_approved": domain.Choice("never")}, now
        )
    return DatabaseAccess(engine, "notifications", None, "notifications.tell_about_bookings")


def mails(db: DatabaseAccess) -> set[tuple]:
    with db.reading() as session:
        rows = session.scalars(select(MailRow))
        return {(r.recipient_id, r.cause, r.kind, r.digest, r.status) for r in rows}


def subjects(db: DatabaseAccess) -> set[tuple]:
    with db.reading() as session:
        return {(r.subject_id, r.status) for r in session.scalars(select(SubjectRow))}


def applied(db: DatabaseAccess) -> int:
    with db.reading() as session:
        return session.scalar(select(func.count()).select_from(processed_events))


# a Tuesday at 10:00 in Paris: the digests (07:00) are a day away, so the mails due within
# the hour are the immediate ones whatever the hour the suite runs (at 06:00-07:00 in Paris
# the next digest fell within it)
@time_machine.travel(datetime(2026, 12, 8, 9, 0, tzinfo=UTC), tick=True)
def test_a_batch_decides_the_mails_its_events_would_one_at_a_time(database_url, tmp_path):
    requested = event(BookingRequested, booking("b-1", "requested"))
    events = [
        requested,
        event(BookingApproved, booking("b-1", "approved")),  # its requester wants none
        event(BookingRequested, booking("b-2", "requested", lender=LYON)),
        event(BookingRequested, booking("b-1", "requested")),  # the same cause again
        requested,  # delivered twice
        event(BookingCheckedOut, booking("b-1", "checked_out")),  # no mail, its subject kept
        # its requester is not of its two communes (but of b-2's): its agents are told
        event(BookingRejected, booking("b-3", "rejected", requested_by="far-manager")),
    ]
    alone = database(f"sqlite:///{tmp_path / 'alone.sqlite3'}")
    for each in events:
        notifications.tell(alone, [each], notifications.booking_subject)
    together = database(database_url)

    notifications.tell(together, events, notifications.booking_subject)

    assert (
        mails(together)
        == mails(alone)
        == {
            ("lender-manager", "booking.requested:b-1", "booking_requested", False, "pending"),
            ("lender-manager-2", "booking.requested:b-1", "booking_requested", True, "pending"),
            ("far-manager", "booking.requested:b-2", "booking_requested", False, "pending"),
            ("borrower-agent", "booking.rejected:b-3", "booking_rejected", False, "pending"),
            ("borrower-agent-2", "booking.rejected:b-3", "booking_rejected", False, "pending"),
        }
    )
    assert (
        subjects(together)
        == subjects(alone)
        == {
            ("b-1", "checked_out"),
            ("b-2", "requested"),
            ("b-3", "rejected"),
        }
    )
    assert applied(together) == applied(alone) == len(PEOPLE) + 6
    with together.transaction() as tx:  # sent in the order of their events
        due = repository.due_mails(tx.session, clock.now() + timedelta(hours=1), 10)
        assert [m.cause for m in due] == [
            "booking.requested:b-1",
            "booking.requested:b-2",
            "booking.rejected:b-3",
            "booking.rejected:b-3",
        ]

    notifications.tell(together, events, notifications.booking_subject)  # delivered again
    assert len(mails(together)) == 5 and applied(together) == len(PEOPLE) + 6


@pytest.mark.parametrize("rows", ["subjects", "mails"])
def test_two_batches_of_the_same_keys_in_opposite_orders_never_deadlock(rows, pg_database):
    """Two replicas may apply events of the same bookings at once (or one delivered again):
    their upserts and inserts take the subjects' and mails' keys in one order, so one waits
    for the other."""
    db = database(pg_database.url)
    now = clock.now()
    lender = domain.Person(
        "lender-manager", "lender-manager@example.fr", "L", CHAMBON, frozenset({"manager"})
    )
    (notice,) = domain.notices("booking.requested", booking("b-1", "requested"), [lender], now)
    failures = []

    def decide(causes: list[str], ready: threading.Barrier) -> None:
        try:
            with db.transaction() as tx:
                ready.wait(timeout=10)
                if rows == "subjects":
                    kept = [booking_subject(booking(c, "requested")) for c in causes]
                    repository.keep_subjects(tx.session, [s | {"as_of": now} for s in kept])
                else:
                    planned = [(replace(notice, cause=c), now, False, now) for c in causes]
                    repository.add_mails(tx.session, planned)
        except Exception as exc:  # a deadlock detected aborts one of them
            failures.append(exc)

    for attempt in range(20):
        causes = [f"c-{attempt}-{n:03}" for n in range(300)]
        ready = threading.Barrier(2)
        both = [threading.Thread(target=decide, args=(c, ready)) for c in (causes, causes[::-1])]
        for each in both:
            each.start()
        for each in both:
            each.join(timeout=30)
    assert failures == []
    assert len(subjects(db) if rows == "subjects" else mails(db)) == 20 * 300


def statements_of(db: DatabaseAccess, events: list) -> tuple[int, int]:
    """The SQL statements and the commits applying `events` as one batch takes."""
    counted = {"statements": 0, "commits": 0}

    def statement(_conn, _cursor, sql, *_):
        counted["statements"] += not sql.startswith("BEGIN")  # SQLite's BEGIN IMMEDIATE

    def commit(*_):
        counted["commits"] += 1

    sql_event.listen(db.engine, "before_cursor_execute", statement)
    sql_event.listen(db.engine, "commit", commit)
    try:
        notifications.tell(db, events, notifications.booking_subject)
    finally:
        sql_event.remove(db.engine, "before_cursor_execute", statement)
        sql_event.remove(db.engine, "commit", commit)
    return counted["statements"], counted["commits"]


def test_a_batch_of_twenty_costs_the_statements_and_transaction_of_one(database_url):
    db = database(database_url)
    one = statements_of(db, [event(BookingRequested, booking("b-0", "requested"))])
    twenty = statements_of(
        db, [event(BookingRequested, booking(f"b-{n}", "requested")) for n in range(1, 21)]
    )
    # applied-once record, subjects, people with their choices, mails
    assert one == twenty == (4, 1)
    assert len(mails(db)) == 2 * 21


def test_the_people_of_the_communes_come_once_each_with_their_choices_of_the_kinds_asked(
    database_url,
):
    db = database(database_url)
    with db.transaction() as tx:
        repository.set_preferences(
            tx.session,
            "lender-manager",
            {"booking_cancelled": domain.Choice("daily", 9), "invoice_issued": domain.Choice()},
            clock.now(),
        )
        gone = UserSnapshot(
            user_id="lender-gone",
            email="g@example.fr",
            name="g",
            commune=CHAMBON,
            roles=[Role.MANAGER],
            disabled=True,
        )
        repository.keep_people(tx.session, [(gone, clock.now())])
        kinds = {"booking_requested", "booking_cancelled"}
        people, choices = repository.people_and_choices(tx.session, {CHAMBON, FIRMINY}, kinds)
        everyone, _ = repository.people_and_choices(tx.session, None, kinds)
        nobody = repository.people_and_choices(tx.session, set(), kinds)
    # the disabled left out, each person once however many choices they made
    assert sorted(p.user_id for p in people) == sorted(
        user_id for user_id, commune, _ in PEOPLE if commune in (CHAMBON, FIRMINY)
    )
    assert sorted(p.user_id for p in everyone) == sorted(user_id for user_id, _, _ in PEOPLE)
    manager = next(p for p in people if p.user_id == "lender-manager-2")
    assert (manager.commune, manager.email) == (CHAMBON, "lender-manager-2@example.fr")
    assert manager.roles == {Role.MANAGER.value, Role.FINANCE.value}
    # only the kinds asked: borrower-agent's booking_approved and the invoices are not
    assert choices == {
        ("lender-manager", "booking_cancelled"): domain.Choice("daily", 9),
        ("lender-manager-2", "booking_requested"): domain.Choice("daily"),
    }
    assert nobody == ([], {})


def test_a_failing_event_leaves_nothing_of_its_batch_and_its_fellows_apply_alone_once(
    database_url, monkeypatch
):
    db = database(database_url)
    decided = domain.notices

    def poisoned(event_type, payload, people, occurred_at):
        if payload.booking_id == "poison":
            raise RuntimeError("a template that cannot render")
        return decided(event_type, payload, people, occurred_at)

    monkeypatch.setattr(domain, "notices", poisoned)
    batch = [
        event(BookingRequested, booking("b-1", "requested")),
        event(BookingRequested, booking("poison", "requested")),
        event(BookingRequested, booking("b-2", "requested")),
    ]
    before = applied(db)
    with pytest.raises(RuntimeError):
        notifications.tell(db, batch, notifications.booking_subject)
    assert mails(db) == set() and applied(db) == before

    # what EventBatchConsumer does with a batch that failed: each event on its own
    for each in batch:
        if each.payload.booking_id == "poison":
            with pytest.raises(RuntimeError):
                notifications.tell(db, [each], notifications.booking_subject)
        else:
            notifications.tell(db, [each], notifications.booking_subject)
    notifications.tell(db, batch[::2], notifications.booking_subject)  # redelivered

    assert sorted(cause for _, cause, *_ in mails(db)) == [
        "booking.requested:b-1",
        "booking.requested:b-1",
        "booking.requested:b-2",
        "booking.requested:b-2",
    ]
    assert applied(db) == before + 2


class DownServer:
    """A mail server that cannot be reached: counts the connection attempts."""

    attempts = 0

    def __init__(self, settings):
        pass

    def open(self):
        DownServer.attempts += 1
        raise ServerUnavailable("ConnectionRefusedError: [Errno 111] Connection refused")

    def close(self):
        pass


class UpServer(DownServer):
    received: list = []
    sent = 0  # messages on this connection, as Mailer counts them

    def open(self):
        return self

    def answering(self):
        return True

    def send(self, message):
        UpServer.received.extend(carried(message_from_bytes(bytes(message), policy=policy.default)))


def sender(db: DatabaseAccess, url: str, port: int) -> notifications.Service:
    """The notifications service's sending part, its mail server on `port`."""
    service = notifications.Service()
    service.db = db
    settings = SimpleNamespace(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_username=None,
        smtp_timeout_seconds=10.0,
        mail_from="Mutualis <ne-pas-repondre@mutualis.fr>",
        public_url="http://localhost:8000",
        retry_base_seconds=5.0,
        retry_cap_seconds=900.0,
    )
    service.config = {"DATABASE_URL": url, "SERVICE_SETTINGS": settings}
    service.mail_server = notifications.MailServer()
    return service


def test_a_mail_server_down_is_tried_again_once_per_wait_and_none_is_lost(
    database_url, monkeypatch
):
    db = database(database_url)
    now = [datetime.now(UTC)]
    monkeypatch.setattr(clock, "now", lambda: now[0])
    lender = domain.Person(
        "lender-manager", "lender-manager@example.fr", "L", CHAMBON, frozenset({"manager"})
    )
    (template,) = domain.notices("booking.requested", booking("b-1", "requested"), [lender], now[0])
    with db.transaction() as tx:
        repository.add_mails(
            tx.session,
            [(replace(template, cause=f"c-{n}"), now[0], False, now[0]) for n in range(120)],
        )
    service = sender(db, database_url, port=0)
    monkeypatch.setattr(notifications, "Mailer", DownServer)
    DownServer.attempts = 0

    def tick(seconds: float) -> int:
        """The deliver timer, `seconds` later: the connection attempts it made."""
        now[0] += timedelta(seconds=seconds)
        before = DownServer.attempts
        service.deliver()
        return DownServer.attempts - before

    # 120 mails due: one attempt (not one per round of 50); then none until 5 s have
    # passed, then none until 10 s more, although 70 mails were due all along
    assert [tick(0), tick(2), tick(2), tick(1.5), tick(2), tick(2), tick(2), tick(4)] == [
        1,
        0,
        0,
        1,
        0,
        0,
        0,
        1,
    ]
    with db.reading() as session:
        rows = session.scalars(select(MailRow)).all()
    assert len(rows) == 120 and {r.status for r in rows} == {"pending"}
    assert sum(r.attempts for r in rows) == 3 * notifications.ROUND  # each round tried waits

    monkeypatch.setattr(notifications, "Mailer", UpServer)
    UpServer.received = []
    tick(3600)
    with db.reading() as session:
        rows = session.scalars(select(MailRow)).all()
    # one person's 120 requests: a mail per round of 50, carrying them all once
    assert {r.status for r in rows} == {"sent"} and sorted(UpServer.received) == sorted(
        r.id for r in rows
    )
    assert service.mail_server.may_try(now[0]) and service.mail_server.failures == 0


def test_a_burst_of_requests_to_one_manager_reaches_the_server_as_one_mail(database_url, tmp_path):
    """Requests decided together for one manager are one mail listing them, naming each
    decided mail it carries; a request alone, an approval with its invitation, each their
    own mail as ever; every mail due sent once."""
    db = database(database_url)
    requests = [event(BookingRequested, booking(f"b-{n}", "requested")) for n in range(4)]
    far = event(BookingRequested, booking("b-far", "requested", lender=LYON))
    approved = event(BookingApproved, booking("b-0", "approved", requested_by="borrower-agent-2"))
    notifications.tell(db, [*requests, far, approved], notifications.booking_subject)
    with MailCatcher(tmp_path / "mail") as catcher:
        service = sender(db, database_url, port=catcher.port)
        service.deliver()
        received = catcher.messages()
    with db.reading() as session:
        rows = session.scalars(select(MailRow)).all()
    # but lender-manager-2's, who wants requests in the daily digest
    assert {(r.digest, r.status, r.attempts, r.sent_at is not None) for r in rows} == {
        (False, "sent", 1, True),
        (True, "pending", 0, False),
    }
    by_cause = {(r.recipient_id, r.cause): r.id for r in rows if not r.digest}
    assert sorted(i for m in received for i in carried(m)) == sorted(by_cause.values())
    (burst,) = catcher.to("lender-manager@example.fr")
    assert carried(burst) == [
        by_cause["lender-manager", f"booking.requested:b-{n}"] for n in range(4)
    ]
    assert burst["Subject"].endswith(", de Firminy (et 3 autres)")
    text = burst.get_body(("plain",)).get_content()
    assert [text.count(f"/reservations/b-{n}") for n in range(4)] == [1, 1, 1, 1]
    (alone,) = catcher.to("far-manager@example.fr")
    assert carried(alone) == [by_cause["far-manager", "booking.requested:b-far"]]
    assert alone["Subject"] == "Demande de réservation : Chasse-neige Unimog U400, de Firminy"
    (told,) = catcher.to("borrower-agent-2@example.fr")
    assert [a.get_content_type() for a in told.iter_attachments()] == ["text/calendar"]


def test_rounds_close_together_share_a_connection_and_a_lost_one_is_made_again(
    database_url, tmp_path, monkeypatch
):
    """Under load a round goes at every tick: they share one connection while it answers.
    The server gone and back (its connection lost), the next round connects again and
    sends every mail, none postponed."""
    db = database(database_url)
    opened = []

    class CountedMailer(notifications.Mailer):
        def open(self):
            opened.append(True)
            return super().open()

    monkeypatch.setattr(notifications, "Mailer", CountedMailer)
    with MailCatcher(tmp_path / "mail") as catcher:
        service = sender(db, database_url, port=catcher.port)
        for n in range(3):
            notifications.tell(
                db,
                [event(BookingRequested, booking(f"r-{n}", "requested", lender=LYON))],
                notifications.booking_subject,
            )
            service.deliver()
        assert len(catcher.to("far-manager@example.fr")) == 3 and len(opened) == 1
        catcher.stop()
        catcher.start()  # the same port: the connection kept is gone
        notifications.tell(
            db,
            [event(BookingRequested, booking("r-3", "requested", lender=LYON))],
            notifications.booking_subject,
        )
        service.deliver()
        assert len(catcher.to("far-manager@example.fr")) == 4 and len(opened) == 2
    assert service.mail_server.failures == 0
    with db.reading() as session:
        rows = session.scalars(select(MailRow).where(MailRow.recipient_id == "far-manager"))
        assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
