"""Who is told what, and why: one Rule per kind of notice, the rows of RULES.

Pure: a rule reads an event's payload and the people of the communes it names, and says who
gets a notice for which cause. A cause names what the mail is about (`booking.approved:<id>`):
a person gets at most one mail per cause, however often the event is delivered. Adding a kind
(invoice.disputed, netting.proposed, …) is adding one Rule to RULES and its templates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from contracts.caller import Role
from contracts.clock import PARIS, paris_date, paris_today
from contracts.errors import InvalidInput, NotFound, field_error
from contracts.french import of_commune, to_commune
from infra.communes import communes

# a person may change how they are told, per kind: now, in a daily digest, or never
IMMEDIATELY = "immediately"
DAILY = "daily"
NEVER = "never"
MODES = (IMMEDIATELY, DAILY, NEVER)


@dataclass(frozen=True)
class Person:
    user_id: str
    email: str
    name: str
    commune: str
    roles: frozenset[str]
    disabled: bool = False

    def has(self, role: Role) -> bool:
        return role.value in self.roles


@dataclass(frozen=True)
class Notice:
    """One mail to decide: to `recipient`, of `kind`, for `cause`, showing `context`."""

    kind: str
    cause: str
    recipient: Person
    context: dict


Audience = Callable[[Any, list[Person]], Iterable[Person]]


def with_role(role: Role, commune_of: Callable[[Any], str]) -> Audience:
    """The people with `role` in the commune `commune_of(payload)` names."""

    def audience(payload, people: list[Person]) -> Iterable[Person]:
        commune = commune_of(payload)
        return (p for p in people if p.commune == commune and p.has(role))

    return audience


def requester_else(role: Role, commune_of: Callable[[Any], str]) -> Audience:
    """Whoever made the request (when the event names them and they are known), else the
    people with `role` in the requesting commune."""
    fallback = with_role(role, commune_of)

    def audience(payload, people: list[Person]) -> Iterable[Person]:
        requester = getattr(payload, "requested_by", None)
        found = [p for p in people if p.user_id == requester]
        return found or fallback(payload, people)

    return audience


def both(*audiences: Audience) -> Audience:
    def audience(payload, people: list[Person]) -> Iterable[Person]:
        return (p for each in audiences for p in each(payload, people))

    return audience


def managers_in_territory(payload, people: list[Person]) -> Iterable[Person]:
    """An emergency: the managers of every commune of its territory but the declaring one."""
    directory = communes()
    return (
        p
        for p in people
        if p.has(Role.MANAGER)
        and p.commune != payload.declared_by_commune
        and payload.territory.contains(p.commune, directory)
    )


def lender(payload) -> str:
    return payload.lender_commune


def borrower(payload) -> str:
    return payload.borrower_commune


def customer(payload) -> str:
    return payload.customer_commune


def supplier(payload) -> str:
    return payload.supplier_commune


@dataclass(frozen=True, kw_only=True)
class Rule:
    kind: str  # what people set their preference for; names the templates too
    event_type: str
    label: str  # French, on the preferences page
    subject: str  # the mail's subject (Jinja, from the mail's context)
    audience: Audience
    about: str  # the payload's field naming what the notice is about
    # the page that needs action: formatted with the payload's fields, or made from it
    link: str | Callable[[Any], str]
    # the communes whose people the audience chooses from (None: every commune)
    communes: Callable[[Any], Iterable[str]] | None
    security: bool = False  # sent whatever the person's preference
    # carries the booking's iCalendar invitation (or its cancel): always, or when the
    # mail's context says so
    invitation: bool | Callable[[dict], bool] = False

    def cause(self, payload) -> str:
        return f"{self.event_type}:{getattr(payload, self.about)}"

    def invites(self, context: dict) -> bool:
        """Whether this mail carries the loan's calendar invitation."""
        return self.invitation(context) if callable(self.invitation) else self.invitation


def _parties(payload) -> tuple[str, str]:
    return (payload.lender_commune, payload.borrower_commune)


def _invoice_parties(payload) -> tuple[str, str]:
    return (payload.supplier_commune, payload.customer_commune)


_BOOKING = "/reservations/{booking_id}"
_ENGAGEMENT = "/missions/{engagement_id}"
_requester = requester_else(Role.AGENT, borrower)
_lender_managers = with_role(Role.MANAGER, lender)

RULES: tuple[Rule, ...] = (
    Rule(
        kind="booking_requested",
        event_type="booking.requested",
        label="Une demande de réservation attend votre décision",
        subject="Demande de réservation : {{ listing_title }}, {{ borrower_of }}",
        audience=_lender_managers,
        about="booking_id",
        link=_BOOKING,
        communes=_parties,
    ),
    Rule(
        kind="booking_approved",
        event_type="booking.approved",
        label="Votre demande de réservation est acceptée",
        subject="Réservation acceptée : {{ listing_title }}",
        audience=_requester,
        about="booking_id",
        link=_BOOKING,
        communes=_parties,
        invitation=True,
    ),
    Rule(
        kind="booking_rejected",
        event_type="booking.rejected",
        label="Votre demande de réservation est refusée",
        subject="Réservation refusée : {{ listing_title }}",
        audience=_requester,
        about="booking_id",
        link=_BOOKING,
        communes=_parties,
    ),
    Rule(
        kind="booking_cancelled",
        event_type="booking.cancelled",
        label="Une réservation est annulée",
        subject="Réservation annulée : {{ listing_title }}",
        audience=both(_requester, _lender_managers),
        about="booking_id",
        link=_BOOKING,
        communes=_parties,
        invitation=True,  # the invitation sent at approval is cancelled
    ),
    Rule(
        kind="booking_overdue",
        event_type="booking.overdue",
        label="Un matériel prêté n'est pas rendu à temps",
        subject="Retour en retard : {{ listing_title }}",
        audience=both(_requester, _lender_managers),
        about="booking_id",
        link=_BOOKING,
        communes=_parties,
    ),
    Rule(
        kind="engagement_requested",
        event_type="engagement.requested",
        label="Une demande de mission attend votre décision",
        subject="Demande de mission : {{ consultant_name }}, {{ borrower_of }}",
        audience=with_role(Role.MANAGER, lender),
        about="engagement_id",
        link=_ENGAGEMENT,
        communes=_parties,
    ),
    Rule(
        kind="engagement_accepted",
        event_type="engagement.accepted",
        label="Votre demande de mission est acceptée",
        subject="Mission acceptée : {{ consultant_name }}",
        audience=with_role(Role.MANAGER, borrower),
        about="engagement_id",
        link=_ENGAGEMENT,
        communes=_parties,
    ),
    Rule(
        kind="timesheet_recorded",
        event_type="engagement.timesheet_recorded",
        label="Des jours de mission attendent votre approbation",
        subject="Jours à approuver : {{ consultant_name }}, {{ lender_of }}",
        audience=with_role(Role.MANAGER, borrower),
        about="recording",  # a correction after a rejection is to approve again
        link=_ENGAGEMENT,
        communes=_parties,
    ),
    Rule(
        kind="invoice_issued",
        event_type="invoice.issued",
        label="Une facture vous est adressée",
        subject="Facture {{ number }} {{ supplier_of }}",
        audience=with_role(Role.FINANCE, customer),
        about="invoice_id",
        link="/finances/factures/{invoice_id}",
        communes=_invoice_parties,
    ),
    Rule(
        kind="emergency_declared",
        event_type="emergency.declared",
        label="Un épisode d'urgence est déclaré sur votre territoire",
        subject="Épisode d'urgence déclaré : {{ name }}",
        audience=managers_in_territory,
        about="emergency_id",
        link="/urgences",
        communes=None,
        security=True,  # a crisis: told whatever the preference
    ),
)

RULES += (
    Rule(
        kind="message_posted",
        event_type="message.posted",
        label="Un message vous est écrit au sujet d'un prêt ou d'une mission",
        subject="Message {{ author_of }} : {{ title }}",
        audience=lambda payload, people: other_side(payload, people),
        about="message_id",
        link=lambda payload: page_of(payload.subject_kind, payload.subject_id),
        communes=_parties,
    ),
)


def told_of_new_dates(payload, people: list[Person]) -> Iterable[Person]:
    """New dates tell the other side: a request its borrower edited, the lender's managers
    (still to decide); a loan the lender moved, whoever asked for it; new dates the lender
    proposed and the borrower accepted, both (the requester's calendar is updated)."""
    if getattr(payload, "accepted_by_commune", None):
        return both(_requester, _lender_managers)(payload, people)
    if payload.moved_by_commune == payload.lender_commune:
        return _requester(payload, people)
    return _lender_managers(payload, people)


RULES += (
    Rule(
        kind="booking_rescheduled",
        event_type="booking.rescheduled",
        label="Une réservation change de dates",
        subject="{{ 'Réservation déplacée' if status == 'approved' "
        "else 'Demande de réservation modifiée' }} : {{ listing_title }}",
        audience=told_of_new_dates,
        about="rescheduling_id",  # one mail per move: a loan moved twice is told twice
        link=_BOOKING,
        communes=_parties,
        # an approved loan's invitation updated in place (same UID, later SEQUENCE); a
        # request had none
        invitation=lambda context: context["status"] == "approved",
    ),
)

# new dates that would cost the borrower more are only proposed: its managers (who alone
# may accept) are asked; a refusal tells the lender's managers
RULES += (
    Rule(
        kind="booking_dates_proposed",
        event_type="booking.dates_proposed",
        label="De nouvelles dates d'un prêt attendent votre accord",
        subject="Nouvelles dates à accepter : {{ listing_title }}, {{ lender_of }}",
        audience=with_role(Role.MANAGER, borrower),
        about="proposal_id",
        link=_BOOKING,
        communes=_parties,
    ),
    Rule(
        kind="booking_dates_declined",
        event_type="booking.dates_declined",
        label="Des nouvelles dates proposées sont refusées",
        subject="Nouvelles dates refusées : {{ listing_title }}, {{ borrower_of }}",
        audience=_lender_managers,
        about="proposal_id",
        link=_BOOKING,
        communes=_parties,
    ),
)

# not an event: the service's own reminder, the day before (Paris) an approved loan starts
HAND_OVER_TOMORROW = "booking.hand_over_tomorrow"
RULES += (
    Rule(
        kind="booking_hand_over_tomorrow",
        event_type=HAND_OVER_TOMORROW,
        label="Un prêt commence demain",
        subject="Demain : {{ listing_title }}, {{ lender_of }} {{ borrower_to }}",
        audience=both(_requester, _lender_managers),
        about="reminder_id",
        link=_BOOKING,
        communes=_parties,
    ),
)


def netting_parties(payload) -> list[str]:
    """The communes of a netting: its parties (a completed one's before they were named, its
    positions: a commune netting to zero was then left out)."""
    parties = payload.parties or [p.commune for p in getattr(payload, "positions", [])]
    return list(parties)


def finance_of_parties(payload, people: list[Person]) -> Iterable[Person]:
    """Every party's finance team."""
    parties = set(netting_parties(payload))
    return (p for p in people if p.commune in parties and p.has(Role.FINANCE))


def finance_asked(payload, people: list[Person]) -> Iterable[Person]:
    """A netting proposed: the finance team of every party but the proposer's, which has
    nothing to be told; an operator's proposal (no finance team of its commune's) asks them
    all."""
    proposer = next((p for p in people if p.user_id == payload.proposed_by), None)
    if proposer is not None and not proposer.has(Role.FINANCE):
        return finance_of_parties(payload, people)
    return (
        p for p in finance_of_parties(payload, people) if p.commune != payload.proposed_by_commune
    )


def netting_page(payload) -> str:
    """A netting's page, where its parties accept or decline it and see its transfers."""
    proposal = getattr(payload, "proposal_id", payload.settlement_id)
    return f"/finances/compensation/{proposal}" if proposal else "/finances/compensation"


_INVOICE = "/finances/factures/{invoice_id}"
_NETTING = {"audience": finance_of_parties, "link": netting_page, "communes": netting_parties}
_ON_INVOICE = {"link": _INVOICE, "communes": _invoice_parties}

# money between communes that needs a person: a netting to decide, or its outcome; a line
# contested (the supplier answers), its answer (the customer); a payment reversed (owed again)
RULES += (
    Rule(
        kind="settlement_proposed",
        event_type="settlement.proposed",
        label="Une compensation de factures attend l'accord de votre commune",
        subject="Compensation à accepter ou refuser avant le {{ deadline|day }}",
        about="settlement_id",
        **(_NETTING | {"audience": finance_asked}),
    ),
    Rule(
        kind="settlement_declined",
        event_type="settlement.declined",
        label="Une compensation de factures est refusée",
        subject="Compensation refusée{% if declined_by_of is defined %} "
        "par la commune {{ declined_by_of }}{% endif %}",
        about="settlement_id",
        **_NETTING,
    ),
    Rule(
        kind="settlement_voided",
        event_type="settlement.voided",
        label="Une compensation de factures est annulée",
        subject="Compensation annulée : ses factures ont changé",
        about="settlement_id",
        **_NETTING,
    ),
    Rule(
        kind="settlement_completed",
        event_type="settlement.completed",
        label="Une compensation de factures est acceptée par toutes les communes",
        subject="Compensation effective : {{ invoices_settled }} facture"
        "{{ 's' if invoices_settled > 1 }} réglée{{ 's' if invoices_settled > 1 }}",
        about="settlement_id",
        **_NETTING,
    ),
    Rule(
        kind="invoice_disputed",
        event_type="invoice.disputed",
        label="Une de vos factures est contestée",
        subject="Facture {{ invoice_number }} contestée par la commune {{ customer_of }}",
        audience=with_role(Role.FINANCE, supplier),
        about="dispute_id",
        **_ON_INVOICE,
    ),
    Rule(
        kind="invoice_dispute_resolved",
        event_type="invoice.dispute_resolved",
        label="Votre contestation d'une facture a reçu sa réponse",
        subject="Contestation de la facture {{ invoice_number }} : "
        "{{ 'avoir émis' if status == 'credited' else 'refusée' }}",
        audience=with_role(Role.FINANCE, customer),
        about="dispute_id",
        **_ON_INVOICE,
    ),
    Rule(
        kind="payment_reversed",
        event_type="payment.reversed",
        label="Un paiement de facture est annulé : la somme est de nouveau due",
        subject="Paiement annulé : facture {{ invoice_number }} {{ supplier_of }}",
        audience=with_role(Role.FINANCE, customer),
        about="payment_id",
        **_ON_INVOICE,
    ),
)

RULE_OF_EVENT: dict[str, Rule] = {rule.event_type: rule for rule in RULES}
RULE_OF_KIND: dict[str, Rule] = {rule.kind: rule for rule in RULES}


def sent_alone(kind: str, context: dict) -> bool:
    """Whether a notice is always a mail of its own, never listed with others due with it:
    a security notice (its subject must not hide behind another's) and one carrying a
    calendar invitation (a calendar reads one invitation per mail)."""
    rule = RULE_OF_KIND[kind]
    return rule.security or rule.invites(context)


def letters(due: Sequence) -> list[list]:
    """The mails due (rows with recipient_id, address, digest, kind and context, oldest
    first) as the letters they make, in order of their first notice: a person's
    digest notices (and those of the same address) together; a person's other notices of
    one kind due together, in a row, as one mail listing them (ten requests made within a
    second to one approver read as one mail; a notice alone is the mail it always was).
    A notice sent alone (sent_alone) or of another kind ends the person's row, so
    the person still reads every notice in the order it was decided."""
    found: list[list] = []
    digests: dict[tuple, list] = {}
    rows_of: dict[tuple, list] = {}  # the letter a person's next notice may join
    for row in due:
        person = (row.recipient_id, row.address)
        if row.digest:
            if person not in digests:
                digests[person] = []
                found.append(digests[person])
            digests[person].append(row)
            continue
        alone = sent_alone(row.kind, row.context)
        current = rows_of.get(person)
        if not alone and current is not None and current[0].kind == row.kind:
            current.append(row)
            continue
        found.append([row])
        if alone:
            rows_of.pop(person, None)
        else:
            rows_of[person] = found[-1]
    return found


def commune_names(fields: dict) -> dict:
    """For each `<side>_commune` INSEE code, `<side>_name` ("Le Chambon-Feugerolles") and
    `<side>_of` ("du Chambon-Feugerolles") and `<side>_to` ("au Chambon-Feugerolles"), as the
    subjects and templates write them; a netting's `parties` as `parties_names`."""
    directory = communes()
    names = {}
    for key, code in fields.items():
        if key.endswith("_commune") and isinstance(code, str):
            found = directory.get(code)
            name = found.name if found is not None else code
            side = key.removesuffix("_commune")
            names[f"{side}_name"] = name
            names[f"{side}_of"] = of_commune(name)
            names[f"{side}_to"] = to_commune(name)
    if isinstance(fields.get("parties"), list):
        listed = [getattr(directory.get(c), "name", c) for c in fields["parties"]]
        names["parties_names"] = and_list(listed)
    return names


def and_list(names: list[str]) -> str:
    """'Firminy, Le Chambon-Feugerolles et Saint-Étienne'."""
    return " et ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def page_of(subject_kind: str, subject_id: str) -> str:
    """The page of a booking or an engagement, where its conversation is."""
    return (_BOOKING if subject_kind == "booking" else _ENGAGEMENT).format(
        booking_id=subject_id, engagement_id=subject_id
    )


def other_side(message, people: list[Person]) -> Iterable[Person]:
    """A message tells the other commune's agents and managers (not its author's)."""
    other = (
        message.borrower_commune
        if message.author_commune == message.lender_commune
        else message.lender_commune
    )
    return (p for p in people if p.commune == other and (p.has(Role.AGENT) or p.has(Role.MANAGER)))


def ensure_party(commune: str, lender: str | None, borrower: str | None) -> None:
    """Only the two communes of a booking or an engagement see its conversation: anyone
    else is told there is none (404), as for an unknown one."""
    if commune not in (lender, borrower):
        raise NotFound("No such conversation")


def notices(event_type: str, payload, people: list[Person], occurred_at: datetime) -> list[Notice]:
    """The notices an event calls for: one per person its rule chooses (once each, disabled
    people left out); none for an event no rule is about."""
    rule = RULE_OF_EVENT.get(event_type)
    if rule is None:
        return []
    context = payload.model_dump(mode="json") | {
        "link": rule.link(payload)
        if callable(rule.link)
        else rule.link.format(**payload.model_dump()),
        "occurred_at": occurred_at.isoformat(),
    }
    context |= commune_names(context)
    chosen: dict[str, Person] = {}
    for person in rule.audience(payload, people):
        if not person.disabled:
            chosen.setdefault(person.user_id, person)
    return [Notice(rule.kind, rule.cause(payload), person, context) for person in chosen.values()]


@dataclass(frozen=True)
class Choice:
    """How a person wants one kind of notice: `mode`, and the Paris hour of their digest."""

    mode: str = IMMEDIATELY
    digest_hour: int = 7


def check_choice(kind: str, mode: str) -> Rule:
    """The rule of `kind`, if a person may choose `mode` for it (never: not for security)."""
    rule = RULE_OF_KIND.get(kind)
    if rule is None:
        raise InvalidInput("Unknown kind", [field_error("kind", f"no kind of notice {kind}")])
    if rule.security and mode == NEVER:
        raise InvalidInput(
            "Security notices are always sent",
            [field_error("mode", f"{kind} is a security notice: it cannot be turned off")],
        )
    return rule


def next_digest(hour: int, now: datetime) -> datetime:
    """The next `hour` o'clock in Paris after `now` (today's if still to come), in UTC: at
    23:30 UTC in winter, a 7 o'clock digest is the one 6 h 30 later."""
    local = now.astimezone(PARIS)
    at = datetime.combine(local.date(), time(hour), PARIS)
    if at <= local:
        at = datetime.combine(local.date() + timedelta(days=1), time(hour), PARIS)
    return at.astimezone(UTC)


def schedule(rule: Rule, choice: Choice, now: datetime) -> tuple[datetime, bool] | None:
    """When a notice goes, and whether in a digest; None when the person wants none of it.
    A security notice goes at once whatever the choice."""
    if rule.security or choice.mode == IMMEDIATELY:
        return now, False
    if choice.mode == NEVER:
        return None
    return next_digest(choice.digest_hour, now), True


Decision = tuple[Rule, Any, datetime]  # a rule, the payload it reads, when it happened


def communes_wanted(decisions: Iterable[Decision]) -> set[str] | None:
    """The communes whose people these decisions choose from, to read them all at once
    (None: every commune, as soon as one rule looks at them all)."""
    wanted: set[str] = set()
    for rule, payload, _ in decisions:
        if rule.communes is None:
            return None
        wanted.update(rule.communes(payload))
    return wanted


def decided_notices(decisions: Iterable[Decision], people: list[Person]) -> list[list[Notice]]:
    """The notices of each decision, in turn, each choosing among the people of its own
    communes only (`people` were read for all of them): as if each were decided alone."""
    found: list[list[Notice]] = []
    for rule, payload, occurred_at in decisions:
        if rule.communes is None:
            theirs = people
        else:
            communes = set(rule.communes(payload))
            theirs = [p for p in people if p.commune in communes]
        found.append(notices(rule.event_type, payload, theirs, occurred_at))
    return found


def plan(
    decided: Iterable[list[Notice]], choices: dict[tuple[str, str], Choice], now: datetime
) -> list[tuple[Notice, datetime, bool, datetime]]:
    """Each notice with when it goes, whether in a digest, and when it was decided, as its
    recipient chose for its kind (`choices` by (user, kind); none for who wants none of
    it). A (recipient, cause) once, as its first notice says: what the mails' unique key
    would keep. The notices of each decision are decided a microsecond after those of
    the one before: the mails are sent in the order of their events (oldest first), as
    when each event was decided alone."""
    seen: set[tuple[str, str]] = set()
    planned = []
    for index, notices_of_one in enumerate(decided):
        at = now + timedelta(microseconds=index)
        for notice in notices_of_one:
            key = (notice.recipient.user_id, notice.cause)
            if key in seen:
                continue
            seen.add(key)
            chosen = choices.get((notice.recipient.user_id, notice.kind), Choice())
            if when := schedule(RULE_OF_KIND[notice.kind], chosen, at):
                planned.append((notice, *when, at))
    return planned


def hand_over_window(now: datetime) -> tuple[datetime, datetime]:
    """Tomorrow in Paris, as [start, end) in UTC: the loans starting then are reminded."""
    tomorrow = paris_today(now) + timedelta(days=1)
    start = datetime.combine(tomorrow, time(0), PARIS)
    end = datetime.combine(tomorrow + timedelta(days=1), time(0), PARIS)
    return start.astimezone(UTC), end.astimezone(UTC)


def reminder_id(booking_id: str, start: datetime) -> str:
    """One reminder per booking and first day: a loan moved to another day is reminded again."""
    return f"{booking_id}:{paris_date(start).isoformat()}"
