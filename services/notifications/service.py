"""The notifications nameko service: learns people from the gateway's events, decides from
the other services' events who is told what (rules in domain.py), and sends the mails."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from contracts import clock
from contracts.bookings import BookingSnapshot
from contracts.caller import Caller, Role
from contracts.errors import Forbidden, InvalidInput, validated
from contracts.events import Event
from contracts.notifications import (
    ConversationView,
    HandOverReminder,
    MessageDraft,
    MessagePosted,
    MessageSnapshot,
    MessageView,
    PreferenceList,
    PreferencesChange,
    PreferenceView,
)
from contracts.topology import (
    BILLING_TO_NOTIFICATIONS,
    BOOKINGS_TO_NOTIFICATIONS,
    CONSULTANTS_TO_NOTIFICATIONS,
    GATEWAY_TO_NOTIFICATIONS,
)
from infra.consumer import consume_event_batches
from infra.database import DatabaseAccess, UnitOfWork, service_engine
from infra.health import OperableService
from infra.rpc import rpc
from infra.timers import periodic
from services.notifications import domain, repository
from services.notifications.dependencies import CommunesPreloaded
from services.notifications.mailer import Mailer, Refused, ServerUnavailable
from services.notifications.mails import compose, compose_digest, compose_together, message
from services.notifications.metrics import BACKLOG, MAILS, export_zeros

log = logging.getLogger(__name__)

ROUND = 50  # mails sent per round and connection


def retry_delay(attempts: int, base: float, cap: float) -> timedelta:
    """The wait before the next try of a mail the server could not take: doubling, capped."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


DEFAULT = domain.Choice()


def preference_list(chosen: dict[str, domain.Choice]) -> dict:
    return PreferenceList(
        items=[
            PreferenceView(
                kind=rule.kind,
                label=rule.label,
                mode=chosen.get(rule.kind, DEFAULT).mode,
                digest_hour=chosen.get(rule.kind, DEFAULT).digest_hour,
                security=rule.security,
            )
            for rule in domain.RULES
        ]
    ).model_dump(mode="json")


def views(rows) -> list[dict]:
    return [
        {
            "id": row.id,
            "kind": row.kind,
            "cause": row.cause,
            "address": row.address,
            "status": row.status,
            "attempts": row.attempts,
            "last_error": row.last_error,
            "created_at": row.created_at.isoformat(),
            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        }
        for row in rows
    ]


def booking_subject(payload) -> dict | None:
    """A booking's two communes, for its conversation (none for an emergency)."""
    if not isinstance(payload, BookingSnapshot):
        return None
    return {
        "subject_id": payload.booking_id,
        "kind": "booking",
        "title": payload.listing_title,
        "lender_commune": payload.lender_commune,
        "borrower_commune": payload.borrower_commune,
        "status": payload.status.value,
        "start": payload.start,
        "end": payload.end,
        "requested_by": payload.requested_by,
    }


def engagement_subject(engagement) -> dict:
    """An engagement's two communes, for its conversation."""
    return {
        "subject_id": engagement.engagement_id,
        "kind": "engagement",
        "title": f"Mission de {engagement.consultant_name}",
        "lender_commune": engagement.lender_commune,
        "borrower_commune": engagement.borrower_commune,
        "status": None,
        "start": None,
        "end": None,
        "requested_by": None,
    }


def no_subject(payload) -> None:
    return None


def tell(db: DatabaseAccess, events: Sequence[Event], subject_of: Callable) -> None:
    """Applies each event once (processed_events), all in one transaction: keeps the
    subjects (`subject_of` the payload: a booking's or engagement's two communes) and
    decides the mails the events call for, as if each were applied alone and in order.
    One batch costs the same few statements as one event; a batch that fails is applied
    again event by event (EventBatchConsumer), so a poison event costs the others
    nothing."""
    subjects = {e.event_id: subject_of(e.payload) for e in events}  # once per event
    wanted = [e for e in events if e.type in domain.RULE_OF_EVENT or subjects[e.event_id]]
    if not wanted:
        return
    with db.handling_all(wanted) as (tx, fresh):
        repository.keep_subjects(
            tx.session,
            [
                subject | {"as_of": e.occurred_at}
                for e in fresh
                if (subject := subjects[e.event_id]) is not None
            ],
        )
        decide(
            tx,
            [
                (rule, e.payload, e.occurred_at)
                for e in fresh
                if (rule := domain.RULE_OF_EVENT.get(e.type)) is not None
            ],
        )


def decide(tx: UnitOfWork, decisions: list[domain.Decision]) -> list[str]:
    """The mails these decisions call for, once per (recipient, cause) whatever delivers
    that cause again; the people and their choices read once for all, in one statement,
    the mails inserted together. The ids of the mails added."""
    if not decisions:
        return []
    kinds = {rule.kind for rule, _, _ in decisions}
    people, choices = repository.people_and_choices(
        tx.session, domain.communes_wanted(decisions), kinds
    )
    found = domain.decided_notices(decisions, people)
    added = repository.add_mails(tx.session, domain.plan(found, choices, clock.now()))
    log.info("%d mail(s) decided for %d event(s)", len(added), len(decisions))
    return added


export_zeros(rule.kind for rule in domain.RULES)


KEEP_OPEN = timedelta(seconds=10)  # a connection unused longer is closed, not reused


class MailServer:
    """The mail server as this process last found it. Once it could not take a round, no
    round is tried before its wait is over (retry_delay of the failures in a row): a
    server down costs a connection attempt per wait, not rounds at every tick for each
    mail that came due meanwhile. Rounds close together share one connection (under load
    a round every tick: connecting, greeting and leaving cost both sides more than the
    mails), checked with a NOOP before each round."""

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at: datetime | None = None
        self._mailer: Mailer | None = None
        self._used_at: datetime | None = None

    def connection(self, settings, now: datetime) -> Mailer:
        """The last round's connection if recent and still answering, else a new one
        (ServerUnavailable if none can be made)."""
        mailer = self._mailer
        if (
            mailer is not None
            and now - self._used_at <= KEEP_OPEN
            and mailer.sent < ROUND  # servers may cap the messages of a connection
            and mailer.answering()
        ):
            self._used_at = now
            return mailer
        self.hang_up()
        self._mailer, self._used_at = Mailer(settings).open(), now
        return self._mailer

    def hang_up(self) -> None:
        """Closes the connection: stale, or left in an unknown state by a failed round."""
        if self._mailer is not None:
            self._mailer.close()
        self._mailer = None

    def may_try(self, now: datetime) -> bool:
        return self.retry_at is None or now >= self.retry_at

    def down(self, now: datetime, settings) -> timedelta:
        """Found down once more: the wait before the next try."""
        self.failures += 1
        wait = retry_delay(self.failures, settings.retry_base_seconds, settings.retry_cap_seconds)
        self.retry_at = now + wait
        return wait

    def up(self) -> None:
        self.failures, self.retry_at = 0, None


class Service(OperableService):
    name = "notifications"
    mail_server = MailServer()  # one per process: its rounds share what they found
    communes = CommunesPreloaded()

    def _settings(self):
        return self.config["SERVICE_SETTINGS"]

    @rpc
    def ping(self) -> str:
        return "pong"

    @rpc
    def refused(self, caller: dict) -> list[dict]:
        """Mails the server refused for good (an address that does not exist): the operator
        corrects the address at the gateway (the next mails go to the new one)."""
        who = Caller.model_validate(caller)
        if not who.has(Role.OPERATOR):
            raise Forbidden("Only an operator sees the refused mails")
        with self.db.reading() as session:
            return views(repository.refused_mails(session))

    @rpc
    def preferences(self, caller: dict) -> dict:
        """Every kind of notice, with how the caller wants it (immediately unless chosen)."""
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            chosen = repository.preferences_of(session, who.user_id)
        return preference_list(chosen)

    @rpc
    def set_preferences(self, caller: dict, change: dict) -> dict:
        """The caller's choices for the kinds given (the others unchanged); 422 for an
        unknown kind or `never` for a security notice, and nothing is changed."""
        who = Caller.model_validate(caller)
        wanted = validated(PreferencesChange, change)
        choices = {}
        for index, preference in enumerate(wanted.preferences):
            try:
                domain.check_choice(preference.kind, preference.mode)
            except InvalidInput as exc:
                for error in exc.errors:
                    error["field"] = f"preferences.{index}.{error['field']}"
                raise
            choices[preference.kind] = domain.Choice(preference.mode, preference.digest_hour)
        with self.db.transaction() as tx:
            repository.set_preferences(tx.session, who.user_id, choices, clock.now())
            chosen = repository.preferences_of(tx.session, who.user_id)
        return preference_list(chosen)

    # -- events -----------------------------------------------------------------------

    @consume_event_batches(GATEWAY_TO_NOTIFICATIONS)
    def learn_people(self, events: list[Event]) -> None:
        """Keeps who each user is (commune, roles, e-mail): never read from the gateway."""
        with self.db.handling_all(events) as (tx, fresh):
            repository.keep_people(tx.session, [(e.payload, e.occurred_at) for e in fresh])

    @consume_event_batches(BOOKINGS_TO_NOTIFICATIONS)
    def tell_about_bookings(self, events: list[Event]) -> None:
        tell(self.db, events, booking_subject)

    @consume_event_batches(CONSULTANTS_TO_NOTIFICATIONS)
    def tell_about_engagements(self, events: list[Event]) -> None:
        tell(self.db, events, engagement_subject)

    @consume_event_batches(BILLING_TO_NOTIFICATIONS)
    def tell_about_money(self, events: list[Event]) -> None:
        """An invoice issued, a netting proposed or ended, a dispute, a payment reversed."""
        tell(self.db, events, no_subject)

    @periodic("reminder_interval_seconds", default=600.0)
    def remind_hand_overs(self) -> None:
        """The day before (Paris) an approved loan starts, both sides are reminded, once per
        booking and first day (the dedup table), whichever replica looks first."""
        now = clock.now()
        rule = domain.RULE_OF_EVENT[domain.HAND_OVER_TOMORROW]
        reminders = []
        with self.db.transaction() as tx:
            for row in repository.approved_starting(tx.session, *domain.hand_over_window(now)):
                reminder = HandOverReminder(
                    reminder_id=domain.reminder_id(row.subject_id, row.start),
                    booking_id=row.subject_id,
                    listing_title=row.title,
                    lender_commune=row.lender_commune,
                    borrower_commune=row.borrower_commune,
                    start=row.start,
                    end=row.end,
                    requested_by=row.requested_by,
                )
                reminders.append((rule, reminder, now))
            decide(tx, reminders)

    # -- conversations ----------------------------------------------------------------

    def _party(self, session, who: Caller, subject_id: str):
        found = repository.subject(session, subject_id)
        domain.ensure_party(
            who.commune,
            found.lender_commune if found else None,
            found.borrower_commune if found else None,
        )
        return found

    def _conversation(self, session, found) -> dict:
        receipts = repository.read_up_to(session, found.subject_id)
        return ConversationView(
            subject_id=found.subject_id,
            subject_kind=found.kind,
            title=found.title,
            lender_commune=found.lender_commune,
            borrower_commune=found.borrower_commune,
            messages=[
                MessageView(
                    id=m.id,
                    author_commune=m.author_commune,
                    author_name=m.author_name,
                    text=m.text,
                    posted_at=m.posted_at,
                )
                for m in repository.messages_of(session, found.subject_id)
            ],
            read_up_to={
                commune: receipts.get(commune)
                for commune in (found.lender_commune, found.borrower_commune)
            },
        ).model_dump(mode="json")

    @rpc
    def conversation(self, caller: dict, subject_id: str) -> dict:
        """A booking's or engagement's messages; 404 for anyone but its two communes."""
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            return self._conversation(session, self._party(session, who, subject_id))

    @rpc
    def post_message(self, caller: dict, subject_id: str, draft: dict) -> dict:
        """A message added (never edited); the other commune's agents and managers are told
        (message.posted, and their mails decided in the same transaction). The author's
        commune has read up to it."""
        who = Caller.model_validate(caller)
        text = validated(MessageDraft, draft).text
        with self.db.transaction() as tx:
            found = self._party(tx.session, who, subject_id)
            author = repository.person(tx.session, who.user_id)
            now = clock.now()
            snapshot = MessageSnapshot(
                message_id=str(uuid.uuid4()),
                subject_id=found.subject_id,
                subject_kind=found.kind,
                title=found.title,
                lender_commune=found.lender_commune,
                borrower_commune=found.borrower_commune,
                author_commune=who.commune,
                written_by=author.name if author is not None else who.commune,
                text=text,
                posted_at=now,
            )
            repository.add_message(
                tx.session,
                {
                    "id": snapshot.message_id,
                    "subject_id": found.subject_id,
                    "author_id": who.user_id,
                    "author_commune": who.commune,
                    "author_name": snapshot.written_by,
                    "text": text,
                    "posted_at": now,
                },
            )
            repository.mark_read(tx.session, found.subject_id, who.commune, now)
            tx.emit(MessagePosted, snapshot)
            decide(tx, [(domain.RULE_OF_EVENT[MessagePosted.TYPE], snapshot, now)])
            return self._conversation(tx.session, found)

    @rpc
    def mark_read(self, caller: dict, subject_id: str) -> dict:
        """The caller's commune has read the conversation up to now (its read receipt)."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            found = self._party(tx.session, who, subject_id)
            repository.mark_read(tx.session, found.subject_id, who.commune, clock.now())
            return self._conversation(tx.session, found)

    # -- sending ----------------------------------------------------------------------

    @periodic("delivery_interval_seconds", default=2.0)
    def deliver(self) -> None:
        """Sends the mails due, a round at a time. The server down: each waits longer
        (retry_delay), none is lost, and this process tries the server again only once its
        own wait is over (MailServer). A mail refused for good is kept as refused."""
        BACKLOG.engine = service_engine(self.config)
        settings = self._settings()
        while self.mail_server.may_try(clock.now()) and self._deliver_round(settings) == ROUND:
            pass

    def _deliver_round(self, settings) -> int:
        """A round of mails sent; how many were due (0 once the server is found down). The
        mails sent are marked so in one statement at the round's end (one UPDATE per mail
        cost PostgreSQL more than deciding them); those before a server found down too."""
        with self.db.transaction() as tx:
            now = clock.now()
            due = repository.due_mails(tx.session, now, ROUND)
            if not due:
                return 0
            people = repository.people_by_id(tx.session, {row.recipient_id for row in due})
            sent: set[str] = set()
            try:
                mailer = self.mail_server.connection(settings, now)
                for rows in domain.letters(due):
                    if self._send(mailer, rows, people.get(rows[0].recipient_id), settings):
                        sent.update(row.id for row in rows)
            except ServerUnavailable as exc:
                self.mail_server.hang_up()
                for row in due:
                    if row.status == repository.PENDING and row.id not in sent:
                        self._postpone(row, str(exc), settings)
                repository.mark_sent(tx.session, sent, clock.now())
                wait = self.mail_server.down(clock.now(), settings)
                log.warning(
                    "mail server unavailable, %d mail(s) wait, next try in %.0f s: %s",
                    len(due) - len(sent),
                    wait.total_seconds(),
                    exc,
                )
                return 0
            except BaseException:
                self.mail_server.hang_up()  # the connection's state is unknown
                raise
            repository.mark_sent(tx.session, sent, clock.now())
        self.mail_server.up()
        return len(due)

    def _send(self, mailer: Mailer, rows: list, person, settings) -> bool:
        """One mail: a notice, several of one kind, or a person's digest; whether the server
        took it (refused for good, its rows are kept as refused)."""
        name = person.name if person is not None else rows[0].address
        notices = [(row.kind, row.context) for row in rows]
        if rows[0].digest:
            letter = compose_digest(notices, name, settings.public_url)
        elif len(rows) > 1:
            letter = compose_together(notices, name, settings.public_url)
        else:
            letter = compose(rows[0].kind, rows[0].context, name, settings.public_url)
        mail_ids = [row.id for row in rows]
        try:
            mailer.send(message(letter, settings.mail_from, rows[0].address, *mail_ids))
        except Refused as exc:
            for row in rows:
                row.attempts += 1
                row.status, row.last_error = repository.REFUSED, str(exc)[:2000]
                MAILS.labels(row.kind, "refused").inc()
            log.error("mail %s to %s refused for good: %s", rows[0].id, rows[0].address, exc)
            return False
        for row in rows:
            MAILS.labels(row.kind, "sent").inc()
        return True

    def _postpone(self, row, error: str, settings) -> None:
        row.attempts += 1
        delay = retry_delay(row.attempts, settings.retry_base_seconds, settings.retry_cap_seconds)
        row.next_attempt_at = clock.now() + delay
        row.last_error = error[:2000]
        MAILS.labels(row.kind, "retried").inc()
