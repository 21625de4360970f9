"""Who is told what: each kind's audience (lender's managers for a request, the requester
for a decision, finance for an invoice, a netting, a dispute or a reversed payment, a
territory's managers for an emergency), once per
person and cause, never a disabled person; and the mail each makes, in French, with its
link and, for a loan, its calendar invitation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from types import SimpleNamespace

import icalendar
import pytest

from contracts.billing import (
    DisputeSnapshot,
    InvoiceSnapshot,
    NettingSnapshot,
    PaymentReversalSnapshot,
    Position,
    SettlementSnapshot,
    Transfer,
)
from contracts.bookings import BookingSnapshot, Quote
from contracts.consultants import EngagementSnapshot, RecordedTimesheet
from contracts.emergencies import EmergencySnapshot, Territory
from contracts.errors import InvalidInput, NotFound
from contracts.notifications import HandOverReminder, MessageSnapshot
from services.notifications.domain import (
    RULE_OF_EVENT,
    RULES,
    Choice,
    Person,
    check_choice,
    ensure_party,
    hand_over_window,
    letters,
    next_digest,
    notices,
    reminder_id,
    schedule,
)
from services.notifications.mails import (
    compose,
    compose_digest,
    compose_together,
    message,
    when,
)

CHAMBON, FIRMINY, SAINT_ETIENNE, LYON = "42044", "42095", "42218", "69123"
AT = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)  # already Monday 7 December in Paris


def person(user_id: str, commune: str, *roles: str, disabled: bool = False) -> Person:
    return Person(
        user_id=user_id,
        email=f"{user_id}@example.fr",
        name=user_id.title(),
        commune=commune,
        roles=frozenset(roles),
        disabled=disabled,
    )


PEOPLE = [
    person("lender-manager", CHAMBON, "manager"),
    person("lender-manager-2", CHAMBON, "manager", "finance"),
    person("lender-agent", CHAMBON, "agent"),
    person("lender-finance", CHAMBON, "finance"),
    person("gone-manager", CHAMBON, "manager", disabled=True),
    person("borrower-agent", FIRMINY, "agent"),
    person("borrower-agent-2", FIRMINY, "agent"),
    person("borrower-manager", FIRMINY, "manager"),
    person("borrower-finance", FIRMINY, "finance"),
    person("far-manager", LYON, "manager"),
]


def booking(status: str, requested_by: str | None = "borrower-agent", **extra) -> BookingSnapshot:
    return BookingSnapshot(
        booking_id="b-1",
        listing_id="l-1",
        listing_title="Chasse-neige Unimog U400",
        status=status,
        lender_commune=CHAMBON,
        borrower_commune=FIRMINY,
        start=datetime(2026, 12, 7, 7, 0, tzinfo=UTC),
        end=datetime(2026, 12, 9, 17, 0, tzinfo=UTC),
        quantity=1,
        with_operator=False,
        quote=Quote(
            units=3,
            pricing_unit="day",
            unit_rate_cents=42000,
            quantity=1,
            rental_cents=126000,
            operator_cents=0,
            amount_cents=126000,
            deposit_cents=150000,
        ),
        requested_by=requested_by,
        **extra,
    )


def told(event_type: str, payload) -> dict[str, str]:
    return {n.recipient.user_id: n.cause for n in notices(event_type, payload, PEOPLE, AT)}


def test_a_booking_request_tells_the_lenders_managers_only():
    assert told("booking.requested", booking("requested")) == {
        "lender-manager": "booking.requested:b-1",
        "lender-manager-2": "booking.requested:b-1",
    }


@pytest.mark.parametrize("event_type", ["booking.approved", "booking.rejected"])
def test_a_decision_tells_the_requester_only(event_type):
    status = event_type.split(".")[1]
    assert told(event_type, booking(status)) == {"borrower-agent": f"{event_type}:b-1"}


def test_a_decision_on_a_request_by_someone_unknown_tells_the_borrowing_agents():
    assert set(told("booking.approved", booking("approved", requested_by="left-us"))) == {
        "borrower-agent",
        "borrower-agent-2",
    }
    assert set(told("booking.approved", booking("approved", requested_by=None))) == {
        "borrower-agent",
        "borrower-agent-2",
    }


def test_a_cancellation_and_an_overdue_loan_tell_both_sides():
    both = {"borrower-agent", "lender-manager", "lender-manager-2"}
    assert set(told("booking.cancelled", booking("cancelled"))) == both
    assert set(told("booking.overdue", booking("checked_out"))) == both


def test_an_event_no_rule_is_about_tells_nobody():
    assert notices("booking.checked_out", booking("checked_out"), PEOPLE, AT) == []


def test_engagements_tell_the_deciding_then_the_asking_managers():
    engagement = EngagementSnapshot(
        engagement_id="e-1",
        consultant_id="c-1",
        consultant_name="Claire Martin",
        status="requested",
        lender_commune=CHAMBON,
        borrower_commune=FIRMINY,
        start="2026-12-07",
        end="2026-12-11",
        days="5",
        day_rate_cents=45000,
    )
    assert set(told("engagement.requested", engagement)) == {"lender-manager", "lender-manager-2"}
    assert set(told("engagement.accepted", engagement)) == {"borrower-manager"}


def recorded(days: str, recorded_at: str, corrected: bool = False) -> RecordedTimesheet:
    return RecordedTimesheet(
        engagement_id="e-1",
        timesheet_id="t-1",
        recording=f"t-1@{recorded_at}",
        consultant_id="c-1",
        consultant_name="Claire Martin",
        lender_commune=CHAMBON,
        borrower_commune=FIRMINY,
        work_date="2026-12-07",
        days=days,
        note="relevés de terrain" if corrected else "",
        corrected=corrected,
    )


def test_days_recorded_tell_the_borrowers_managers_once_per_recording():
    first = recorded("1.0", "2026-12-07T17:00:00+00:00")
    assert told("engagement.timesheet_recorded", first) == {
        "borrower-manager": "engagement.timesheet_recorded:t-1@2026-12-07T17:00:00+00:00"
    }
    # corrected after a rejection: a new cause, so the manager is told again
    again = recorded("0.5", "2026-12-08T09:00:00+00:00", corrected=True)
    assert told("engagement.timesheet_recorded", again) != told(
        "engagement.timesheet_recorded", first
    )
    (notice,) = notices("engagement.timesheet_recorded", again, PEOPLE, AT)
    letter = compose(notice.kind, notice.context, "Borrower Manager", "https://mutualis.example")
    assert letter.subject == "Jours à approuver : Claire Martin, du Chambon-Feugerolles"
    assert (
        "La commune du Chambon-Feugerolles corrige 0,5 jour de travail de Claire Martin le "
        "lundi 7 décembre 2026." in letter.text
    )
    assert "Note : relevés de terrain" in letter.text
    assert "approbation d'un responsable de la commune de Firminy" in letter.text
    assert "https://mutualis.example/missions/e-1" in letter.text
    (notice,) = notices("engagement.timesheet_recorded", recorded("2", "x"), PEOPLE, AT)
    text = compose(notice.kind, notice.context, "B", "https://m.example").text
    assert "déclare 2 jours de travail" in text


def test_an_invoice_tells_the_customers_finance_team():
    invoice = InvoiceSnapshot(
        invoice_id="i-1",
        number="F-2026-0001",
        supplier_commune=CHAMBON,
        customer_commune=FIRMINY,
        period="2026-11",
        issue_date="2026-12-01",
        due_date="2026-12-31",
        total_cents=126000,
        balance_cents=126000,
        status="issued",
    )
    assert told("invoice.issued", invoice) == {"borrower-finance": "invoice.issued:i-1"}


def test_an_emergency_tells_the_territorys_managers_but_the_declaring_communes():
    episode = EmergencySnapshot(
        emergency_id="u-1",
        name="Neige sur le Pilat",
        territory=Territory(departments=["42"]),
        categories=["deneigement"],
        start=AT,
        end=None,
        declared_by_commune=FIRMINY,
    )
    assert set(told("emergency.declared", episode)) == {"lender-manager", "lender-manager-2"}
    assert RULE_OF_EVENT["emergency.declared"].security


def test_every_kind_has_its_own_event_and_template():
    assert len({r.kind for r in RULES}) == len({r.event_type for r in RULES}) == len(RULES)


def test_paris_time_in_the_mail():
    assert when(AT) == "lundi 7 décembre 2026 à 0 h 30"


def test_the_request_mail_is_french_with_its_link():
    (notice,) = notices("booking.requested", booking("requested"), PEOPLE[:1], AT)
    letter = compose(notice.kind, notice.context, "Lender Manager", "https://mutualis.example")
    assert letter.subject == "Demande de réservation : Chasse-neige Unimog U400, de Firminy"
    assert "La commune de Firminy demande à emprunter « Chasse-neige Unimog U400 »" in letter.text
    assert "du lundi 7 décembre 2026 à 8 h 00 au mercredi 9 décembre 2026 à 18 h 00" in letter.text
    assert "https://mutualis.example/reservations/b-1" in letter.text
    assert 'href="https://mutualis.example/reservations/b-1"' in letter.html
    assert "commune du Chambon-Feugerolles" in letter.text
    assert letter.invitations == ()


def test_an_approved_loan_carries_an_invitation_its_cancellation_cancels():
    (approved,) = notices("booking.approved", booking("approved"), PEOPLE, AT)
    letter = compose(approved.kind, approved.context, "Agent", "https://mutualis.example")
    sent = message_from_bytes(
        bytes(message(letter, "Mutualis <m@example.fr>", "a@example.fr", "m-1")),
        policy=policy.default,
    )
    (attachment,) = list(sent.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    calendar = icalendar.Calendar.from_ical(attachment.get_content())
    (event,) = calendar.walk("VEVENT")
    assert str(calendar["method"]) == "REQUEST" and str(event["uid"]) == "booking-b-1@mutualis"
    assert event.decoded("dtstart") == datetime(2026, 12, 7, 7, 0, tzinfo=UTC)

    later = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    (cancelled,) = [
        n
        for n in notices("booking.cancelled", booking("cancelled"), PEOPLE, later)
        if n.recipient.user_id == "borrower-agent"
    ]
    cancel = compose(cancelled.kind, cancelled.context, "Agent", "https://mutualis.example")
    cancel_event = icalendar.Calendar.from_ical(cancel.invitations[0]).walk("VEVENT")[0]
    assert b"METHOD:CANCEL" in cancel.invitations[0]
    assert str(cancel_event["uid"]) == str(event["uid"])
    assert cancel_event["sequence"] > event["sequence"]  # calendars replace the approved one


def test_a_digest_goes_at_the_next_paris_hour_chosen():
    # 23:30 UTC on 6 December is 00:30 on the 7th in Paris: 7 o'clock is that morning
    assert next_digest(7, AT) == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    # summer time: 7 o'clock in Paris is 05:00 UTC; past it, the next is tomorrow's
    summer = datetime(2026, 7, 1, 5, 0, tzinfo=UTC)
    assert next_digest(7, summer) == datetime(2026, 7, 2, 5, 0, tzinfo=UTC)
    assert next_digest(18, summer) == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)


def test_the_choice_says_when_a_notice_goes_but_a_security_notice_goes_now():
    request = RULE_OF_EVENT["booking.requested"]
    emergency = RULE_OF_EVENT["emergency.declared"]
    assert schedule(request, Choice(), AT) == (AT, False)
    assert schedule(request, Choice("daily", 7), AT) == (next_digest(7, AT), True)
    assert schedule(request, Choice("never"), AT) is None
    assert schedule(emergency, Choice("never"), AT) == (AT, False)
    assert schedule(emergency, Choice("daily", 18), AT) == (AT, False)


def test_security_notices_cannot_be_turned_off_and_unknown_kinds_are_refused():
    assert check_choice("booking_requested", "never").kind == "booking_requested"
    with pytest.raises(InvalidInput) as refused:
        check_choice("emergency_declared", "never")
    assert refused.value.errors[0]["field"] == "mode"
    with pytest.raises(InvalidInput) as unknown:
        check_choice("invoice_forgotten", "daily")
    assert unknown.value.errors[0]["field"] == "kind"


def test_a_digest_gathers_the_days_notices_with_their_invitations():
    (approved,) = notices("booking.approved", booking("approved"), PEOPLE, AT)
    (requested,) = notices("booking.requested", booking("requested"), PEOPLE[:1], AT)
    letter = compose_digest(
        [(approved.kind, approved.context), (requested.kind, requested.context)],
        "Agent",
        "https://mutualis.example",
    )
    assert letter.subject == "Votre résumé Mutualis : 2 notifications"
    assert "■ Réservation acceptée : Chasse-neige Unimog U400" in letter.text
    assert "■ Demande de réservation : Chasse-neige Unimog U400, de Firminy" in letter.text
    assert letter.text.count("https://mutualis.example/reservations/b-1") == 2
    assert len(letter.invitations) == 1


def due(mail_id: str, recipient: str, kind: str, digest=False, **context):
    """A mail row as the delivery round reads it."""
    return SimpleNamespace(
        id=mail_id,
        recipient_id=recipient,
        address=f"{recipient}@example.fr",
        kind=kind,
        context=context,
        digest=digest,
    )


def test_the_notices_of_one_kind_due_together_for_a_person_make_one_mail_in_order():
    """A burst of requests to one approver is one mail; someone else's, a digest's and a
    lone notice's are as they were."""
    rows = [
        due("1", "approver", "booking_requested"),
        due("2", "agent", "booking_requested"),
        due("3", "approver", "booking_requested"),
        due("4", "approver", "booking_overdue", digest=True),
        due("5", "approver", "booking_requested"),
        due("6", "agent", "booking_overdue", digest=True),
        due("7", "approver", "booking_overdue", digest=True),
    ]
    assert [[r.id for r in letter] for letter in letters(rows)] == [
        ["1", "3", "5"],
        ["2"],
        ["4", "7"],
        ["6"],
    ]
    assert [[r.id for r in letter] for letter in letters(rows[:1])] == [["1"]]


def test_a_person_reads_notices_in_their_order_and_invitations_and_crises_stay_alone():
    """Another kind, an invitation or a security notice ends the row: a request decided
    after an approval is never read before it."""
    rows = [
        due("1", "p", "booking_requested"),
        due("2", "p", "booking_requested"),
        due("3", "p", "booking_approved", status="approved"),  # carries the invitation
        due("4", "p", "booking_requested"),
        due("5", "p", "message_posted"),
        due("6", "p", "booking_requested"),
        due("7", "p", "emergency_declared"),
        due("8", "p", "emergency_declared"),
        due("9", "p", "booking_rescheduled", status="requested"),  # no invitation
        due("10", "p", "booking_rescheduled", status="approved"),  # an invitation updated
        due("11", "p", "booking_rescheduled", status="requested"),
        due("12", "p", "booking_rescheduled", status="requested"),
    ]
    assert [[r.id for r in letter] for letter in letters(rows)] == [
        ["1", "2"],
        ["3"],
        ["4"],
        ["5"],
        ["6"],
        ["7"],
        ["8"],
        ["9"],
        ["10"],
        ["11", "12"],
    ]
    other_address = [due("1", "p", "booking_requested"), due("2", "p", "booking_requested")]
    other_address[1].address = "p@ailleurs.fr"  # the address changed between the two
    assert [[r.id for r in letter] for letter in letters(other_address)] == [["1"], ["2"]]


def test_notices_due_together_read_as_one_mail_that_names_every_mail_it_carries():
    found = [
        notices(
            "booking.requested",
            booking("requested").model_copy(update={"booking_id": b}),
            PEOPLE[:1],
            AT,
        )[0]
        for b in ("b-1", "b-2", "b-3")
    ]
    letter = compose_together(
        [(n.kind, n.context) for n in found], "Manager", "https://mutualis.example"
    )
    assert (
        letter.subject
        == "Demande de réservation : Chasse-neige Unimog U400, de Firminy (et 2 autres)"
    )
    for b in ("b-1", "b-2", "b-3"):
        assert letter.text.count(f"https://mutualis.example/reservations/{b}") == 1
        assert f'href="https://mutualis.example/reservations/{b}"' in letter.html
    assert letter.text.count("■ Demande de réservation : Chasse-neige Unimog U400") == 3
    assert letter.invitations == ()
    ids = [f"mail-{n:02}-{'x' * 32}" for n in range(50)]  # a whole round's ids
    raw = bytes(message(letter, "Mutualis <m@example.fr>", "m@example.fr", *ids))
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    read = message_from_bytes(raw, policy=policy.default)
    assert read["X-Mutualis-Mail"] == ids[0] and read["X-Mutualis-Mails"].split() == ids
    alone = bytes(message(letter, "Mutualis <m@example.fr>", "m@example.fr", "m-1"))
    assert message_from_bytes(alone, policy=policy.default)["X-Mutualis-Mails"] is None


def test_a_message_tells_the_other_communes_agents_and_managers():
    message = MessageSnapshot(
        message_id="m-1",
        subject_id="b-1",
        subject_kind="booking",
        title="Chasse-neige",
        lender_commune=CHAMBON,
        borrower_commune=FIRMINY,
        author_commune=FIRMINY,
        written_by="Borrower Agent",
        text="Où récupère-t-on la lame ?",
        posted_at=AT,
    )
    assert set(told("message.posted", message)) == {
        "lender-manager",
        "lender-manager-2",
        "lender-agent",
    }
    answer = message.model_copy(update={"author_commune": CHAMBON, "message_id": "m-2"})
    assert told("message.posted", answer) == {
        "borrower-agent": "message.posted:m-2",
        "borrower-agent-2": "message.posted:m-2",
        "borrower-manager": "message.posted:m-2",
    }
    (notice,) = notices("message.posted", answer, PEOPLE[5:6], AT)
    assert notice.context["link"] == "/reservations/b-1"


def test_only_the_two_communes_see_a_conversation():
    ensure_party(FIRMINY, CHAMBON, FIRMINY)
    for stranger, lender, borrower in ((SAINT_ETIENNE, CHAMBON, FIRMINY), (FIRMINY, None, None)):
        with pytest.raises(NotFound):
            ensure_party(stranger, lender, borrower)


def test_tomorrow_is_pariss_and_a_reminder_is_once_per_booking_and_first_day():
    # 23:30 UTC on 6 December: already the 7th in Paris, so tomorrow is the 8th
    assert hand_over_window(AT) == (
        datetime(2026, 12, 7, 23, 0, tzinfo=UTC),
        datetime(2026, 12, 8, 23, 0, tzinfo=UTC),
    )
    assert reminder_id("b-1", datetime(2026, 12, 7, 23, 0, tzinfo=UTC)) == "b-1:2026-12-08"


def test_the_day_before_a_loan_both_sides_are_reminded():
    reminder = HandOverReminder(
        reminder_id="b-1:2026-12-08",
        booking_id="b-1",
        listing_title="Chasse-neige Unimog U400",
        lender_commune=CHAMBON,
        borrower_commune=FIRMINY,
        start=datetime(2026, 12, 7, 23, 0, tzinfo=UTC),
        end=datetime(2026, 12, 9, 23, 0, tzinfo=UTC),
        requested_by="borrower-agent",
    )
    assert told("booking.hand_over_tomorrow", reminder) == {
        person: "booking.hand_over_tomorrow:b-1:2026-12-08"
        for person in ("borrower-agent", "lender-manager", "lender-manager-2")
    }
    (notice,) = notices("booking.hand_over_tomorrow", reminder, PEOPLE[5:6], AT)
    letter = compose(notice.kind, notice.context, "Agent", "https://mutualis.example")
    assert letter.subject == "Demain : Chasse-neige Unimog U400, du Chambon-Feugerolles à Firminy"
    assert "Demain, le mardi 8 décembre 2026 à 0 h 00, la commune du Chambon-Feugerolles" in (
        letter.text
    )


def test_a_long_french_subject_reads_back_as_written():
    (approved,) = notices("booking.approved", booking("approved"), PEOPLE, AT)
    letter = compose(approved.kind, approved.context, "Agent", "https://mutualis.example")
    letter = replace(
        letter, subject="Demain : Chasse-neige Unimog 33dc, du Chambon-Feugerolles à Firminy"
    )
    raw = bytes(message(letter, "Mutualis <m@example.fr>", "a@example.fr", "m-1"))
    assert message_from_bytes(raw, policy=policy.default)["Subject"] == letter.subject


def test_a_message_reads_back_as_composed_whatever_its_lines_and_names():
    """The message is written as bytes (not through EmailMessage): a reader finds the same
    subject, sender, parts and invitation, a line past SMTP's 998 octets included."""
    (approved,) = notices("booking.approved", booking("approved"), PEOPLE, AT)
    letter = compose(approved.kind, approved.context, "Agent", "https://mutualis.example")
    long_line = "Très long paragraphe " * 80  # 1,680 characters on one line
    letter = replace(letter, text=letter.text + long_line + "\n", subject="é" * 120)
    raw = bytes(message(letter, "Mutualité Loire <m@example.fr>", "a@example.fr", "m-1"))
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    read = message_from_bytes(raw, policy=policy.default)
    assert (read["Subject"], read["From"], read["To"]) == (
        letter.subject,
        "Mutualité Loire <m@example.fr>",
        "a@example.fr",
    )
    assert read["X-Mutualis-Mail"] == "m-1" and not read.defects
    plain = read.get_body(("plain",)).get_content()
    assert plain.replace("\r\n", "\n") == letter.text
    assert read.get_body(("html",)).get_content().replace("\r\n", "\n") == letter.html
    (attachment,) = read.iter_attachments()
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "REQUEST"
    assert attachment.get_content().encode() == letter.invitations[0]  # accents and all


# -- money: nettings, disputes, reversed payments ------------------------------------------

MONEY_PEOPLE = [
    *PEOPLE,
    person("third-finance", SAINT_ETIENNE, "finance"),
    person("third-agent", SAINT_ETIENNE, "agent"),
    person("third-finance-gone", SAINT_ETIENNE, "finance", disabled=True),
]


def money_told(event_type: str, payload) -> dict[str, str]:
    return {n.recipient.user_id: n.cause for n in notices(event_type, payload, MONEY_PEOPLE, AT)}


def netting(**extra) -> NettingSnapshot:
    fields = {
        "settlement_id": "n-1",
        "period": "2026-11",
        "up_to": None,
        "status": "proposed",
        "deadline": "2026-12-14",
        "parties": [CHAMBON, FIRMINY, SAINT_ETIENNE],
        "proposed_by": "lender-finance",
        "proposed_by_commune": CHAMBON,
        "compensated_cents": 50000,
    }
    return NettingSnapshot(**fields | extra)


def mail_of(event_type: str, payload, recipient: int = 0):
    found = notices(event_type, payload, MONEY_PEOPLE, AT)[recipient]
    return compose(found.kind, found.context, "Finance", "https://mutualis.example")


def test_a_netting_proposed_asks_every_other_partys_finance_team():
    assert money_told("settlement.proposed", netting()) == {
        "borrower-finance": "settlement.proposed:n-1",
        "third-finance": "settlement.proposed:n-1",
    }
    # an operator's proposal asks every party, its own commune's too
    operator = person("operator", SAINT_ETIENNE, "operator")
    by_operator = netting(proposed_by="operator", proposed_by_commune=SAINT_ETIENNE)
    chosen = notices("settlement.proposed", by_operator, [*MONEY_PEOPLE, operator], AT)
    assert {n.recipient.user_id for n in chosen} == {
        "lender-manager-2",
        "lender-finance",
        "borrower-finance",
        "third-finance",
    }


def test_the_proposal_mail_says_who_proposes_the_deadline_and_links_the_decision_page():
    letter = mail_of("settlement.proposed", netting())
    assert letter.subject == "Compensation à accepter ou refuser avant le lundi 14 décembre 2026"
    assert letter.text.count("La commune du Chambon-Feugerolles propose de compenser") == 1
    assert "entre Le Chambon-Feugerolles, Firminy et Saint-Étienne" in letter.text
    assert "500,00 € de factures réglées sans virement" in letter.text
    assert "au plus tard le lundi 14 décembre 2026" in letter.text
    assert "https://mutualis.example/finances/compensation/n-1" in letter.text


def test_a_netting_declined_or_voided_tells_every_partys_finance_team():
    everyone = {"lender-manager-2", "lender-finance", "borrower-finance", "third-finance"}
    declined = netting(status="declined", declined_by_commune=FIRMINY, reason="À vérifier")
    assert set(money_told("settlement.declined", declined)) == everyone
    letter = mail_of("settlement.declined", declined)
    assert letter.subject == "Compensation refusée par la commune de Firminy"
    assert "est refusée par la commune de Firminy, pour ce motif : « À vérifier »" in letter.text
    voided = netting(status="void", reason="changed since proposed: F-1")
    assert money_told("settlement.voided", voided) == dict.fromkeys(
        everyone, "settlement.voided:n-1"
    )
    text = mail_of("settlement.voided", voided).text
    assert "est annulée : une de ses factures a changé" in text
    assert "changed since" not in text  # billing's reason is for the audit, in English


def test_a_netting_completed_tells_the_parties_even_one_netting_to_zero():
    done = SettlementSnapshot(
        settlement_id="s-1",
        period="2026-11",
        positions=[
            Position(commune=CHAMBON, net_cents=-30000),
            Position(commune=FIRMINY, net_cents=30000),
        ],
        transfers=[Transfer(payer=CHAMBON, payee=FIRMINY, amount_cents=30000)],
        invoices_settled=3,
        compensated_cents=90000,
        proposal_id="n-1",
        parties=[CHAMBON, FIRMINY, SAINT_ETIENNE],
    )
    assert set(money_told("settlement.completed", done)) == {
        "lender-manager-2",
        "lender-finance",
        "borrower-finance",
        "third-finance",
    }
    letter = mail_of("settlement.completed", done)
    assert letter.subject == "Compensation effective : 3 factures réglées"
    assert "Il reste 1 virement à faire" in letter.text
    assert "https://mutualis.example/finances/compensation/n-1" in letter.text
    # an event from before the parties were named: its positions say who
    older = done.model_copy(update={"parties": [], "proposal_id": None})
    assert set(money_told("settlement.completed", older)) == {
        "lender-manager-2",
        "lender-finance",
        "borrower-finance",
    }
    assert notices("settlement.completed", older, MONEY_PEOPLE, AT)[0].context["link"] == (
        "/finances/compensation"
    )


def dispute(**extra) -> DisputeSnapshot:
    return DisputeSnapshot(
        dispute_id="d-1",
        invoice_id="i-1",
        invoice_number="F-2026-0001",
        supplier_commune=CHAMBON,
        customer_commune=FIRMINY,
        line=2,
        amount_cents=15000,
        reason="Rétroviseur déjà fêlé",
        status=extra.pop("status", "open"),
        **extra,
    )


def test_a_dispute_tells_the_suppliers_finance_its_answer_the_customers():
    assert money_told("invoice.disputed", dispute()) == {
        "lender-manager-2": "invoice.disputed:d-1",
        "lender-finance": "invoice.disputed:d-1",
    }
    letter = mail_of("invoice.disputed", dispute())
    assert letter.subject == "Facture F-2026-0001 contestée par la commune de Firminy"
    assert "conteste la ligne 2 de la facture F-2026-0001 (150,00 € hors taxes)" in letter.text
    assert "https://mutualis.example/finances/factures/i-1" in letter.text

    credited = dispute(status="credited", resolution="D'accord", credit_note_id="c-1")
    assert money_told("invoice.dispute_resolved", credited) == {
        "borrower-finance": "invoice.dispute_resolved:d-1"
    }
    letter = mail_of("invoice.dispute_resolved", credited)
    assert letter.subject == "Contestation de la facture F-2026-0001 : avoir émis"
    assert "La commune du Chambon-Feugerolles accepte votre contestation" in letter.text
    rejected = mail_of("invoice.dispute_resolved", dispute(status="rejected", resolution="Non"))
    assert rejected.subject.endswith(" : refusée")
    assert "la somme reste due, pour ce motif : « Non »" in rejected.text


def test_a_reversed_payment_tells_the_customers_finance_team_it_owes_again():
    reversal = PaymentReversalSnapshot(
        payment_id="p-1",
        invoice_id="i-1",
        invoice_number="F-2026-0001",
        supplier_commune=CHAMBON,
        customer_commune=FIRMINY,
        amount_cents=126000,
        balance_cents=126000,
        reason="Virement rejeté par la banque",
    )
    assert money_told("payment.reversed", reversal) == {"borrower-finance": "payment.reversed:p-1"}
    letter = mail_of("payment.reversed", reversal)
    assert letter.subject == "Paiement annulé : facture F-2026-0001 du Chambon-Feugerolles"
    assert "annule le paiement de 1\u202f260,00 € enregistré sur sa facture" in letter.text


def test_billing_tells_the_notifications_service_every_event_a_money_rule_is_about():
    from contracts.topology import BILLING_MONEY_EVENTS, BILLING_TO_NOTIFICATIONS

    money_rules = {r.event_type for r in RULES} & set(BILLING_MONEY_EVENTS)
    assert money_rules == set(BILLING_TO_NOTIFICATIONS.event_types)
