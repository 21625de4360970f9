"""People are told by e-mail, through a real SMTP server (the mail catcher, aiosmtpd, as a
process): Firminy asks Le Chambon-Feugerolles for its snowplough, Chambon's managers are told;
Chambon approves, the agent who asked is told, with the loan as a calendar invitation; and
nobody else gets anything. A cause told twice is mailed once; a mail server down delays the
mails and loses none; an address the server refuses for good is recorded for the operator.
A netting Le Chambon proposes asks Firminy's and Saint-Étienne's finance teams, not its own;
Firminy declining it tells all three. Days worked recorded on a mission are mailed to the
borrowing commune's managers, to approve."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timedelta

import icalendar
import pytest
import requests
from kombu import Connection, Exchange
from sqlalchemy import select, update

from contracts import clock
from services.notifications.mails import day as french_day
from services.notifications.models import MailRow
from tests.browser import axe_violations, chromium, describe, screenshot, sign_in
from tests.e2e.test_billing_flow import approve_timesheet
from tests.e2e.test_bookings_flow import SNOWPLOUGH
from tests.e2e.test_consultants_flow import ask_for, consent, worked
from tests.support import COMPONENTS, PARIS, Stack, assert_problem, day, this_period, wait_until
from tests.support.mail import MailCatcher

pytestmark = pytest.mark.e2e

CHAMBON, FIRMINY, SAINT_ETIENNE = "42044", "42095", "42218"
REQUESTER = f"agent.{FIRMINY}@mutualis-demo.fr"
LENDER_MANAGER = f"manager.{CHAMBON}@mutualis-demo.fr"
GONE = f"parti.{CHAMBON}@mutualis-demo.fr"  # a manager whose mailbox no longer exists


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def mail_stack(request, tmp_path_factory):
    """A stack of its own, its mail going to a catcher that refuses GONE's address."""
    workdir = tmp_path_factory.mktemp(f"mail-{request.param}")
    with MailCatcher(workdir / "mail", refuse=(GONE,)) as catcher:
        settings = {f"{c.upper()}_MAX_WORKERS": "4" for c in COMPONENTS}
        settings |= catcher.settings | {
            "NOTIFICATIONS_RETRY_BASE_SECONDS": "0.5",
            "NOTIFICATIONS_RETRY_CAP_SECONDS": "2",
            "NOTIFICATIONS_REMINDER_INTERVAL_SECONDS": "1",
        }
        with Stack(request.param, workdir, settings=settings).running() as stack:
            created = stack.mutualis(
                *("create-user", "--email", GONE, "--name", "Ancien responsable"),
                *("--commune", CHAMBON, "--roles", "manager", "--password-stdin"),
                input="une phrase de passe solide\n",
            )
            assert created.returncode == 0, created.stderr
            # the notifications service learns every demo user, and GONE, from the gateway
            wait_until(lambda: people_known(stack) == 18, timeout=30)
            yield stack, catcher


def people_known(stack) -> int:
    from sqlalchemy import text

    with stack.database("notifications").connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM people"))


def snowplough(stack) -> str:
    lender = stack.session("manager", CHAMBON)
    listing = lender.post(
        f"{stack.url}/api/v1/listings",
        json=SNOWPLOUGH | {"title": f"Chasse-neige Unimog {uuid.uuid4().hex[:4]}"},
        timeout=10,
    )
    assert listing.status_code == 201, listing.text
    stack.known_to_bookings(listing.json())
    return listing.json()["id"]


def requested(stack, listing_id: str, start: int, end: int) -> dict:
    asked = stack.session("agent", FIRMINY).post(
        f"{stack.url}/api/v1/bookings",
        json={"listing_id": listing_id, "start": day(start), "end": day(end)},
        timeout=10,
    )
    assert asked.status_code == 201, asked.text
    return asked.json()


def about(catcher: MailCatcher, booking_id: str) -> list:
    return [m for m in catcher.messages() if booking_id in m.get_body(("plain",)).get_content()]


def envelope(message) -> str:
    return message["X-Envelope-To"]


def calendar_of(message) -> icalendar.Calendar:
    (attachment,) = [
        part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"
    ]
    return icalendar.Calendar.from_ical(attachment.get_content())


def test_snowplough_requested_then_approved_tells_exactly_who_must_know(mail_stack):
    stack, catcher = mail_stack
    booking = requested(stack, snowplough(stack), 3, 4)
    link = f"{stack.url}/reservations/{booking['id']}"

    # Chambon's managers are asked to decide; GONE's server refuses, for good
    (asked,) = wait_until(lambda: about(catcher, booking["id"]), timeout=30)
    assert envelope(asked) == LENDER_MANAGER
    assert asked["Subject"].startswith("Demande de réservation : Chasse-neige Unimog")
    assert asked["Subject"].endswith(", de Firminy")
    text = asked.get_body(("plain",)).get_content()
    assert text.startswith("Bonjour Responsable des services techniques — Le Chambon-Feugerolles")
    assert "La commune de Firminy demande à emprunter « Chasse-neige Unimog" in text
    assert "d'un responsable de la commune du Chambon-Feugerolles" in text
    assert link in text
    assert f'href="{link}"' in asked.get_body(("html",)).get_content()
    assert not list(asked.iter_attachments())

    approved = stack.session("manager", CHAMBON).post(
        f"{stack.url}/api/v1/bookings/{booking['id']}/approve", timeout=10
    )
    assert approved.status_code == 200, approved.text

    # the agent who asked is told, with the invitation
    wait_until(lambda: len(about(catcher, booking["id"])) == 2, timeout=30)
    told = about(catcher, booking["id"])[1]
    assert envelope(told) == REQUESTER
    assert told["Subject"] == asked["Subject"].replace(
        "Demande de réservation", "Réservation acceptée"
    ).removesuffix(", de Firminy")
    assert (
        "La commune du Chambon-Feugerolles accepte votre demande"
        in told.get_body(("plain",)).get_content()
    )
    calendar = calendar_of(told)
    (event,) = calendar.walk("VEVENT")
    assert str(calendar["method"]) == "REQUEST"
    assert str(event["uid"]) == f"booking-{booking['id']}@mutualis"
    assert event.decoded("dtstart").isoformat()[:10] == day(3)

    # and nobody else: not Chambon's agent or finance, not Firminy's manager
    with stack.database("notifications").connect() as conn:
        from sqlalchemy import text as sql

        refused = conn.execute(
            sql("SELECT address, kind, last_error FROM mails WHERE status = 'refused'")
        ).all()
    assert [(r.address, r.kind) for r in refused] == [(GONE, "booking_requested")]
    assert refused[0].last_error.startswith("550")
    assert sorted(envelope(m) for m in about(catcher, booking["id"])) == sorted(
        [LENDER_MANAGER, REQUESTER]
    )


def test_a_cause_told_twice_is_mailed_once(mail_stack):
    """The same booking.requested published again (a new event id, as a producer that
    crashed before marking its outbox might): the dedup table keeps one mail per cause."""
    stack, catcher = mail_stack
    booking = requested(stack, snowplough(stack), 6, 7)
    wait_until(lambda: about(catcher, booking["id"]), timeout=30)
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "booking.requested",
        "version": 1,
        "occurred_at": booking["created_at"],
        "producer": "bookings",
        "payload": snapshot_of(booking),
    }
    with Connection(stack.vhost.amqp_uri) as conn:
        conn.Producer().publish(
            event,
            exchange=Exchange("bookings.events", type="topic", durable=True),
            routing_key="booking.requested",
            serializer="json",
        )
    wait_until(lambda: handled(stack, event["event_id"]), timeout=30)
    assert [envelope(m) for m in about(catcher, booking["id"])] == [LENDER_MANAGER]


def snapshot_of(booking: dict) -> dict:
    keys = [
        "listing_id",
        "listing_title",
        "status",
        "lender_commune",
        "borrower_commune",
        "start",
        "end",
        "quantity",
        "with_operator",
        "quote",
        "order_reference",
    ]
    return {"booking_id": booking["id"], **{k: booking[k] for k in keys}}


def handled(stack, event_id: str) -> bool:
    from sqlalchemy import text

    with stack.database("notifications").connect() as conn:
        return bool(
            conn.scalar(
                text("SELECT count(*) FROM processed_events WHERE event_id = :id"), {"id": event_id}
            )
        )


def metric(stack, name: str) -> float:
    body = requests.get(stack.metrics_url("notifications"), timeout=5).text
    found = re.search(rf"^{name} (\S+)$", body, flags=re.M)
    return float(found.group(1)) if found else -1.0


def test_a_mail_server_down_delays_the_mails_and_loses_none(mail_stack):
    stack, catcher = mail_stack
    booking = requested(stack, snowplough(stack), 8, 9)
    wait_until(lambda: about(catcher, booking["id"]), timeout=30)
    catcher.stop()
    try:
        cancelled = stack.session("agent", FIRMINY).post(
            f"{stack.url}/api/v1/bookings/{booking['id']}/cancel", json={}, timeout=10
        )
        assert cancelled.status_code == 200, cancelled.text
        # the server down: the cancellation's mails wait, counted by the backlog metric
        wait_until(lambda: metric(stack, "mutualis_mail_backlog") >= 2, timeout=30)
        wait_until(lambda: metric(stack, "mutualis_mail_oldest_pending_age_seconds") > 1)
    finally:
        catcher.start()
    wait_until(lambda: metric(stack, "mutualis_mail_backlog") == 0, timeout=30)
    mails = about(catcher, booking["id"])
    assert sorted(envelope(m) for m in mails[1:]) == sorted([LENDER_MANAGER, REQUESTER])
    for cancellation in mails[1:]:
        assert cancellation["Subject"].startswith("Réservation annulée : Chasse-neige Unimog")
        assert str(calendar_of(cancellation)["method"]) == "CANCEL"


def preferences_url(stack) -> str:
    return f"{stack.url}/api/v1/notifications/preferences"


def test_preferences_by_api_refuse_what_is_wrong_and_change_nothing(mail_stack):
    stack, _ = mail_stack
    requester = stack.session("agent", FIRMINY)
    before = requester.get(preferences_url(stack), timeout=10)
    assert before.status_code == 200, before.text
    kinds = {p["kind"]: p for p in before.json()["items"]}
    assert kinds["booking_approved"]["mode"] == "immediately"
    assert kinds["emergency_declared"]["security"] is True

    for wrong, field in (
        ({"kind": "emergency_declared", "mode": "never"}, "preferences.1.mode"),
        ({"kind": "invoice_forgotten", "mode": "daily"}, "preferences.1.kind"),
    ):
        refused = requester.put(
            preferences_url(stack),
            json={"preferences": [{"kind": "booking_approved", "mode": "never"}, wrong]},
            timeout=10,
        )
        problem = assert_problem(refused, 422)
        assert [e["field"] for e in problem["errors"]] == [field]
    for bad in ({"kind": "booking_approved", "mode": "daily", "digest_hour": 24}, {}):
        assert requester.put(preferences_url(stack), json={"preferences": [bad]}).status_code == 422
    assert requester.get(preferences_url(stack), timeout=10).json() == before.json()


def test_an_approval_wanted_in_the_daily_digest_waits_for_its_paris_hour(mail_stack):
    stack, catcher = mail_stack
    requester = stack.session("agent", FIRMINY)
    chosen = requester.put(
        preferences_url(stack),
        json={"preferences": [{"kind": "booking_approved", "mode": "daily", "digest_hour": 7}]},
        timeout=10,
    )
    assert chosen.status_code == 200, chosen.text
    try:
        booking = requested(stack, snowplough(stack), 11, 12)
        wait_until(lambda: about(catcher, booking["id"]), timeout=30)
        approved = stack.session("manager", CHAMBON).post(
            f"{stack.url}/api/v1/bookings/{booking['id']}/approve", timeout=10
        )
        assert approved.status_code == 200, approved.text
        waiting = wait_until(lambda: digest_mail(stack, booking["id"]), timeout=30)
        assert waiting.status == "pending" and waiting.digest
        due = waiting.next_attempt_at.astimezone(PARIS)
        assert (due.hour, due.minute) == (7, 0) and waiting.next_attempt_at > clock.now()
        assert [envelope(m) for m in about(catcher, booking["id"])] == [LENDER_MANAGER]

        # seven o'clock comes (the mail's time moved, as the stack cannot move the clock)
        with stack.database("notifications").begin() as conn:
            conn.execute(
                update(MailRow)
                .where(MailRow.id == waiting.id)
                .values(next_attempt_at=clock.now() - timedelta(seconds=1))
            )
        wait_until(lambda: len(about(catcher, booking["id"])) == 2, timeout=30)
        digest = about(catcher, booking["id"])[1]
        assert envelope(digest) == REQUESTER
        assert digest["Subject"] == "Votre résumé Mutualis : 1 notification"
        assert (
            "■ Réservation acceptée : Chasse-neige Unimog"
            in digest.get_body(("plain",)).get_content()
        )
        assert str(calendar_of(digest)["method"]) == "REQUEST"
    finally:
        requester.put(
            preferences_url(stack),
            json={"preferences": [{"kind": "booking_approved", "mode": "immediately"}]},
            timeout=10,
        )


def digest_mail(stack, booking_id: str):
    with stack.database("notifications").connect() as conn:
        return conn.execute(
            select(MailRow.__table__).where(
                MailRow.cause == f"booking.approved:{booking_id}", MailRow.digest.is_(True)
            )
        ).first()


def test_the_preferences_page_saves_the_choices_and_shows_the_operator_the_refusals(mail_stack):
    stack, _ = mail_stack
    manager = signed_in(stack, f"manager.{FIRMINY}@mutualis-demo.fr")
    shown = manager.get(f"{stack.url}/compte/notifications", timeout=10)
    assert shown.status_code == 200
    assert "Une demande de réservation attend votre décision" in shown.text
    assert "Courriels refusés" not in shown.text  # the operator's part only
    csrf = shown.text.split('name="csrf" value="')[1].split('"')[0]
    saved = manager.post(
        f"{stack.url}/compte/notifications",
        data={"csrf": csrf, "mode-engagement_accepted": "daily", "heure-engagement_accepted": "18"},
        timeout=10,
    )
    assert saved.status_code == 200 and "Vos choix sont enregistrés." in saved.text
    kinds = {
        p["kind"]: p
        for p in stack.session("manager", FIRMINY)
        .get(preferences_url(stack), timeout=10)
        .json()["items"]
    }
    assert (kinds["engagement_accepted"]["mode"], kinds["engagement_accepted"]["digest_hour"]) == (
        "daily",
        18,
    )
    assert kinds["booking_requested"]["mode"] == "immediately"

    # a request to Chambon: its mail to GONE is refused for good
    requested(stack, snowplough(stack), 20, 21)
    refused_url = f"{stack.url}/api/v1/notifications/refused"
    api = stack.user("operator@mutualis-demo.fr")
    wait_until(lambda: api.get(refused_url, timeout=10).json()["items"], timeout=30)
    operator = signed_in(stack, "operator@mutualis-demo.fr")
    page = operator.get(f"{stack.url}/compte/notifications", timeout=10)
    assert "Courriels refusés par le serveur de messagerie" in page.text
    assert GONE in page.text
    assert {m["address"] for m in api.get(refused_url, timeout=10).json()["items"]} == {GONE}
    assert (
        stack.session("manager", FIRMINY)
        .get(f"{stack.url}/api/v1/notifications/refused", timeout=10)
        .status_code
        == 403
    )


def signed_in(stack, email: str) -> requests.Session:
    """A browser's session on the pages (cookie), signed in through the login form."""
    session = requests.Session()
    login = session.get(f"{stack.url}/connexion", timeout=10)
    csrf = login.text.split('name="csrf" value="')[1].split('"')[0]
    done = session.post(
        f"{stack.url}/connexion",
        data={"csrf": csrf, "email": email, "password": "mutualis-demo"},
        timeout=10,
    )
    assert done.status_code == 200, done.text[:500]
    return session


def test_in_demo_mode_the_page_courriels_lists_the_mails_caught(mail_stack):
    stack, catcher = mail_stack
    booking = requested(stack, snowplough(stack), 14, 15)
    (asked,) = wait_until(lambda: about(catcher, booking["id"]), timeout=30)
    page = signed_in(stack, f"agent.{FIRMINY}@mutualis-demo.fr").get(
        f"{stack.url}/courriels", timeout=10
    )
    assert page.status_code == 200
    assert "Courriels envoyés (démonstration)" in page.text
    assert f"— à {LENDER_MANAGER}" in page.text
    assert asked["Subject"].replace("'", "&#39;") in page.text
    assert f"/reservations/{booking['id']}" in page.text


def conversation_url(stack, subject_id: str) -> str:
    return f"{stack.url}/api/v1/conversations/{subject_id}"


def test_the_two_communes_of_a_loan_write_to_each_other_and_nobody_else_sees(mail_stack):
    stack, catcher = mail_stack
    booking = requested(stack, snowplough(stack), 16, 17)
    url = conversation_url(stack, booking["id"])
    borrower, lender = stack.session("agent", FIRMINY), stack.session("manager", CHAMBON)
    stranger = stack.session("manager", "42218")
    wait_until(lambda: lender.get(url, timeout=10).status_code == 200, timeout=30)
    for answer in (
        stranger.get(url, timeout=10),
        stranger.post(f"{url}/messages", json={"text": "Bonjour"}, timeout=10),
        lender.get(conversation_url(stack, str(uuid.uuid4())), timeout=10),
    ):
        assert_problem(answer, 404)

    written = borrower.post(
        f"{url}/messages", json={"text": "Où récupère-t-on la lame ?\nMerci !"}, timeout=10
    )
    assert written.status_code == 201, written.text
    seen = written.json()
    assert [(m["author_commune"], m["text"]) for m in seen["messages"]] == [
        (FIRMINY, "Où récupère-t-on la lame ?\nMerci !")
    ]
    assert seen["messages"][0]["author_name"] == "Agent — Firminy"
    assert seen["read_up_to"][FIRMINY] is not None and seen["read_up_to"][CHAMBON] is None

    for bad in ("x" * 5001, "Sonnette\x07", "", "   "):
        assert_problem(borrower.post(f"{url}/messages", json={"text": bad}, timeout=10), 422)
    assert len(lender.get(url, timeout=10).json()["messages"]) == 1

    read = lender.post(f"{url}/read", timeout=10)
    assert read.status_code == 200 and read.json()["read_up_to"][CHAMBON] is not None

    # Chambon's agent and managers are told; Firminy (the author's side) is not
    def told():
        return [
            m
            for m in catcher.messages()
            if m["Subject"].startswith("Message de Firminy : ")
            and booking["id"] in m.get_body(("plain",)).get_content()
        ]

    wait_until(lambda: len(told()) == 2, timeout=30)
    assert sorted(envelope(m) for m in told()) == sorted(
        [LENDER_MANAGER, f"agent.{CHAMBON}@mutualis-demo.fr"]
    )
    text = told()[0].get_body(("plain",)).get_content()
    assert "Agent — Firminy, de la commune de Firminy, vous écrit" in text
    assert "Où récupère-t-on la lame ?" in text


def test_a_message_is_posted_and_read_on_the_bookings_page(mail_stack):
    stack, _ = mail_stack
    booking = requested(stack, snowplough(stack), 18, 19)
    page_url = f"{stack.url}/reservations/{booking['id']}"
    borrower = signed_in(stack, REQUESTER)
    wait_until(lambda: "Votre message" in borrower.get(page_url, timeout=10).text, timeout=30)
    shown = borrower.get(page_url, timeout=10)
    assert "Aucun message pour l'instant." in shown.text
    assert "Pas encore lu par Le Chambon-Feugerolles." in shown.text
    csrf = shown.text.split('name="csrf" value="')[1].split('"')[0]
    too_long = borrower.post(
        f"{page_url}/messages", data={"csrf": csrf, "message": "x" * 5001}, timeout=10
    )
    assert too_long.status_code == 422 and "de 1 à 5 000 caractères" in too_long.text
    posted = borrower.post(
        f"{page_url}/messages",
        data={"csrf": csrf, "message": "Nous passerons à 8 h.\nÀ quelle porte ?"},
        timeout=10,
    )
    assert posted.status_code == 200 and "Nous passerons à 8 h." in posted.text

    lender = signed_in(stack, LENDER_MANAGER)
    assert "Nous passerons à 8 h." in lender.get(page_url, timeout=10).text  # read, now
    again = borrower.get(page_url, timeout=10).text
    assert "Lu par Le Chambon-Feugerolles le " in again
    assert (
        len(
            stack.session("agent", FIRMINY)
            .get(conversation_url(stack, booking["id"]), timeout=10)
            .json()["messages"]
        )
        == 1
    )


def test_the_day_before_an_approved_loan_both_sides_are_reminded_once(mail_stack):
    stack, catcher = mail_stack
    booking = requested(stack, snowplough(stack), 1, 2)  # tomorrow, in Paris
    wait_until(lambda: about(catcher, booking["id"]), timeout=30)
    approved = stack.session("manager", CHAMBON).post(
        f"{stack.url}/api/v1/bookings/{booking['id']}/approve", timeout=10
    )
    assert approved.status_code == 200, approved.text

    def reminders():
        return [m for m in about(catcher, booking["id"]) if m["Subject"].startswith("Demain : ")]

    wait_until(lambda: len(reminders()) == 2, timeout=30)
    assert sorted(envelope(m) for m in reminders()) == sorted([LENDER_MANAGER, REQUESTER])
    assert reminders()[0]["Subject"].endswith(", du Chambon-Feugerolles à Firminy")
    time.sleep(3)  # the timer looks again every second: nobody is reminded twice
    assert len(reminders()) == 2


def finance_of(commune: str) -> str:
    return f"finance.{commune}@mutualis-demo.fr"


def test_a_netting_proposed_mails_exactly_the_other_parties_finance_teams(mail_stack):
    """Three communes owe each other for a month; Le Chambon proposes to net it: the finance
    teams of Firminy and Saint-Étienne are asked, with the deadline and the page where they
    decide; nobody at Le Chambon (it proposed) nor anywhere else. Firminy declines: the three
    finance teams are told."""
    stack, catcher = mail_stack
    api, period = f"{stack.url}/api/v1", this_period()
    approve_timesheet(stack, SAINT_ETIENNE, CHAMBON, "1", 30000)
    approve_timesheet(stack, FIRMINY, CHAMBON, "1", 20000)
    approve_timesheet(stack, SAINT_ETIENNE, FIRMINY, "1", 10000)
    operator = stack.user("operator@mutualis-demo.fr")
    issued: set = set()

    def all_issued():
        run = operator.post(f"{api}/billing/runs", json={"period": period}, timeout=10)
        assert run.status_code in (200, 201), run.text
        issued.update(
            (i["supplier_commune"], i["customer_commune"]) for i in run.json()["invoices"]
        )
        return len(issued) == 3

    wait_until(all_issued, timeout=30)
    proposed = stack.session("finance", CHAMBON).post(
        f"{api}/settlements", json={"period": period}, timeout=10
    )
    assert proposed.status_code == 201, proposed.text
    netting = proposed.json()
    assert {p["commune"] for p in netting["parties"]} == {CHAMBON, FIRMINY, SAINT_ETIENNE}
    link = f"{stack.url}/finances/compensation/{netting['id']}"

    def about_netting(subject: str) -> list:
        return [
            m
            for m in catcher.messages()
            if m["Subject"].startswith(subject) and link in m.get_body(("plain",)).get_content()
        ]

    wait_until(lambda: about_netting("Compensation à accepter"), timeout=30)
    # decided at once, in one transaction: the mails the rule chose are these two only
    with stack.database("notifications").connect() as conn:
        decided = conn.execute(
            select(MailRow.address).where(MailRow.cause == f"settlement.proposed:{netting['id']}")
        ).scalars()
        assert sorted(decided) == sorted([finance_of(FIRMINY), finance_of(SAINT_ETIENNE)])
    wait_until(lambda: len(about_netting("Compensation à accepter")) == 2, timeout=30)
    asked = about_netting("Compensation à accepter")
    assert sorted(envelope(m) for m in asked) == sorted(
        [finance_of(FIRMINY), finance_of(SAINT_ETIENNE)]
    )
    text = asked[0].get_body(("plain",)).get_content()
    assert "La commune du Chambon-Feugerolles propose de compenser les factures" in text
    assert asked[0]["Subject"] == (
        f"Compensation à accepter ou refuser avant le {french_day(netting['deadline'])}"
    )
    assert f"au plus tard le {french_day(netting['deadline'])}" in text
    assert "Le Chambon-Feugerolles, Firminy et Saint-Étienne" in text
    assert f'href="{link}"' in asked[0].get_body(("html",)).get_content()

    declined = stack.session("finance", FIRMINY).post(
        f"{api}/settlements/{netting['id']}/decline", json={"reason": "Facture à vérifier"}
    )
    assert declined.status_code == 200, declined.text
    wait_until(lambda: len(about_netting("Compensation refusée")) == 3, timeout=30)
    told = about_netting("Compensation refusée")
    assert sorted(envelope(m) for m in told) == sorted(
        finance_of(c) for c in (CHAMBON, FIRMINY, SAINT_ETIENNE)
    )
    assert told[0]["Subject"] == "Compensation refusée par la commune de Firminy"
    assert "« Facture à vérifier »" in told[0].get_body(("plain",)).get_content()


URBANIST = {
    "name": "Claire Besson",
    "title": "Urbaniste, cheffe de projet PLU",
    "skills": ["plu", "urbanisme"],
    "bio": "A piloté la révision du plan local d'urbanisme de Firminy.",
    "languages": ["fr"],
    "day_rate_cents": 65000,
    "max_days_per_month": 8,
}


def test_a_message_is_posted_and_read_on_the_engagements_page(mail_stack):
    """Saint-Étienne asks for Firminy's urbanist; on the mission's page, as on a booking's,
    its agent writes (a message too long is refused, nothing posted), Firminy's manager reads
    it there and is mailed a link to that page."""
    stack, catcher = mail_stack
    published = stack.session("manager", FIRMINY).post(
        f"{stack.url}/api/v1/consultants", json=URBANIST, timeout=10
    )
    assert published.status_code == 201, published.text
    today = clock.now().astimezone(PARIS).date()
    asked = stack.session("agent", SAINT_ETIENNE).post(
        f"{stack.url}/api/v1/engagements",
        json={
            "consultant_id": published.json()["id"],
            "start": today.isoformat(),
            "end": (today + timedelta(days=14)).isoformat(),
            "days": 2,
            "mission": "Relecture du règlement du PLU",
        },
        timeout=10,
    )
    assert asked.status_code == 201, asked.text
    engagement_id = asked.json()["id"]
    page_url = f"{stack.url}/missions/{engagement_id}"
    borrower = signed_in(stack, f"agent.{SAINT_ETIENNE}@mutualis-demo.fr")
    wait_until(lambda: "Votre message" in borrower.get(page_url, timeout=10).text, timeout=30)
    shown = borrower.get(page_url, timeout=10).text
    assert f'action="/missions/{engagement_id}/messages"' in shown
    assert "Pas encore lu par Firminy." in shown
    csrf = shown.split('name="csrf" value="')[1].split('"')[0]
    too_long = borrower.post(
        f"{page_url}/messages", data={"csrf": csrf, "message": "x" * 5001}, timeout=10
    )
    assert too_long.status_code == 422 and "de 1 à 5 000 caractères" in too_long.text
    assert "Relecture du règlement du PLU" in too_long.text  # the mission's page, again
    posted = borrower.post(
        f"{page_url}/messages",
        data={"csrf": csrf, "message": "Pouvez-vous venir mardi à 9 h ?"},
        timeout=10,
    )
    assert posted.status_code == 200 and "Pouvez-vous venir mardi à 9 h ?" in posted.text

    lender = signed_in(stack, f"manager.{FIRMINY}@mutualis-demo.fr")
    assert "Pouvez-vous venir mardi à 9 h ?" in lender.get(page_url, timeout=10).text
    assert "Lu par Firminy le " in borrower.get(page_url, timeout=10).text
    conversation = stack.session("agent", SAINT_ETIENNE).get(
        conversation_url(stack, engagement_id), timeout=10
    )
    assert [m["text"] for m in conversation.json()["messages"]] == [
        "Pouvez-vous venir mardi à 9 h ?"
    ]

    def told():
        return [
            envelope(m)
            for m in catcher.messages()
            if page_url in m.get_body(("plain",)).get_content()
            and m["Subject"].startswith("Message de Saint-Étienne")
        ]

    wait_until(lambda: len(told()) == 2, timeout=30)
    assert sorted(told()) == sorted(
        [f"agent.{FIRMINY}@mutualis-demo.fr", f"manager.{FIRMINY}@mutualis-demo.fr"]
    )


def test_in_the_browser_the_borrower_writes_on_the_bookings_page_and_the_lender_reads(
    mail_stack,
):
    """A real browser: Firminy's agent writes under its request for the snowplough, Le
    Chambon's manager opens the booking and reads it; the page passes axe (no serious or
    critical WCAG A/AA violation)."""
    stack, _ = mail_stack
    booking = requested(stack, snowplough(stack), 22, 23)
    path = f"/reservations/{booking['id']}"
    words = "Bonjour, nous viendrons avec la remorque. À quelle heure ouvre le dépôt ?"
    with chromium() as browser:
        borrower = sign_in(browser, stack.url, REQUESTER, bypass_csp=True)

        def form_shown() -> bool:
            borrower.goto(path)  # the conversation is there once notifications knows the loan
            return borrower.get_by_label("Votre message").count() == 1

        wait_until(form_shown, timeout=30)
        borrower.get_by_label("Votre message").fill(words)
        borrower.get_by_role("button", name="Envoyer").click()
        borrower.wait_for_url(f"**{path}#conversation")
        conversation = borrower.get_by_role("region", name="Conversation entre les deux communes")
        assert words in conversation.inner_text()
        assert "Pas encore lu par Le Chambon-Feugerolles." in conversation.inner_text()

        lender = sign_in(browser, stack.url, LENDER_MANAGER, bypass_csp=True)
        lender.goto(path)
        seen = lender.get_by_role("region", name="Conversation entre les deux communes")
        assert words in seen.inner_text()
        assert "Agent — Firminy — Firminy" in seen.inner_text()
        violations = axe_violations(lender)
        assert violations == [], describe(violations)
        screenshot(lender, "conversation-reservation-preteur")

        borrower.reload()
        assert "Lu par Le Chambon-Feugerolles le " in conversation.inner_text()
        violations = axe_violations(borrower)
        assert violations == [], describe(violations)
        screenshot(borrower, "conversation-reservation-emprunteur")


def test_days_recorded_are_mailed_to_the_borrowers_managers(mail_stack):
    """Firminy's manager accepts Saint-Étienne's request for its urbanist (with the
    official's consent) and records a day worked: Saint-Étienne's manager is mailed the
    days to approve with a link to the mission, and nobody else is."""
    stack, catcher = mail_stack
    name = f"Claire Besson {uuid.uuid4().hex[:4]}"
    firminy = stack.session("manager", FIRMINY)
    published = firminy.post(
        f"{stack.url}/api/v1/consultants", json=URBANIST | {"name": name}, timeout=10
    )
    assert published.status_code == 201, published.text
    agent = stack.session("agent", SAINT_ETIENNE)
    engagement = ask_for(stack, agent, published.json(), days=2, mission="Relecture du PLU")
    path = f"{stack.url}/api/v1/engagements/{engagement['id']}"
    assert firminy.post(f"{path}/accept", json=consent(), timeout=10).status_code == 200
    today = clock.now().astimezone(PARIS).date()
    recorded = firminy.post(f"{path}/timesheets", json=worked(today, 1), timeout=10)
    assert recorded.status_code == 201, recorded.text

    subject = f"Jours à approuver : {name}, de Firminy"
    manager = f"manager.{SAINT_ETIENNE}@mutualis-demo.fr"
    (told,) = wait_until(
        lambda: [m for m in catcher.to(manager) if m["Subject"] == subject], timeout=30
    )
    text = told.get_body(("plain",)).get_content()
    assert f"La commune de Firminy déclare 1 jour de travail de {name} le " in text
    assert f"/missions/{engagement['id']}" in text
    time.sleep(1)  # a second mail, or one to someone else, would be there by now
    sent = [m for m in catcher.messages() if m["Subject"] == subject]
    assert len(sent) == 1 and sent[0]["X-Envelope-To"] == manager, [
        m["X-Envelope-To"] for m in sent
    ]


def reschedule(session, stack, booking_id: str, first: int, last: int, **more):
    return session.post(
        f"{stack.url}/api/v1/bookings/{booking_id}/reschedule",
        json={"start": day(first), "end": day(last)} | more,
        timeout=10,
    )


def test_new_dates_tell_the_other_side_and_update_the_calendar_invitation(mail_stack):
    """Firminy's agent edits its request (Chambon's managers told, no invitation); Chambon
    approves (the invitation), then its manager moves the loan, the request sent twice with
    one Idempotency-Key: the agent who asked gets one mail whose invitation has the same UID,
    a higher SEQUENCE and the new first day. A move into a taken slot is a 409 that changes
    nothing; the borrower may not move an approved loan."""
    stack, catcher = mail_stack
    listing_id = snowplough(stack)
    booking = requested(stack, listing_id, 24, 25)
    borrower, lender = stack.session("agent", FIRMINY), stack.session("manager", CHAMBON)
    wait_until(lambda: about(catcher, booking["id"]), timeout=30)

    edited = reschedule(borrower, stack, booking["id"], 25, 27, reason="Réunion déplacée")
    assert edited.status_code == 200, edited.text
    assert edited.json()["status"] == "requested"
    assert edited.json()["quote"]["units"] == 2
    wait_until(lambda: len(about(catcher, booking["id"])) == 2, timeout=30)
    told = about(catcher, booking["id"])[1]
    assert envelope(told) == LENDER_MANAGER
    assert told["Subject"].startswith("Demande de réservation modifiée : Chasse-neige Unimog")
    assert "Motif : Réunion déplacée" in told.get_body(("plain",)).get_content()
    assert not list(told.iter_attachments())

    approved = lender.post(f"{stack.url}/api/v1/bookings/{booking['id']}/approve", timeout=10)
    assert approved.status_code == 200, approved.text
    wait_until(lambda: len(about(catcher, booking["id"])) == 3, timeout=30)
    (first,) = calendar_of(about(catcher, booking["id"])[2]).walk("VEVENT")

    # the borrower may not move an approved loan; nor anyone into a taken slot
    assert_problem(reschedule(borrower, stack, booking["id"], 28, 29), 403)
    other = requested(stack, listing_id, 30, 31)
    taken = assert_problem(reschedule(lender, stack, booking["id"], 29, 31), 409)
    conflicting = datetime.fromisoformat(taken["conflicting_period"]["start"])
    assert conflicting.astimezone(PARIS).date().isoformat() == day(30)
    assert (
        lender.get(f"{stack.url}/api/v1/bookings/{booking['id']}").json()["start"]
        == (approved.json()["start"])
    )

    key = {"Idempotency-Key": uuid.uuid4().hex}
    # as long as before (dearer dates are only proposed: see the test after this one)
    body = {"start": day(26), "end": day(28), "reason": "Lame en révision"}
    url = f"{stack.url}/api/v1/bookings/{booking['id']}/reschedule"
    moved = lender.post(url, json=body, headers=key, timeout=10)
    assert moved.status_code == 200, moved.text
    again = lender.post(url, json=body, headers=key, timeout=10)
    assert again.json() == moved.json()
    assert moved.json()["status"] == "approved" and moved.json()["quote"]["units"] == 2
    assert moved.json()["proposal"] is None

    def busy_from() -> list[str]:
        """The first days of the listing's busy periods, as listings shows them."""
        answer = borrower.get(
            f"{stack.url}/api/v1/listings/{listing_id}/availability",
            params={"from": day(24), "to": day(33)},
            timeout=10,
        )
        starts = [datetime.fromisoformat(p["start"]) for p in answer.json()["busy"]]
        return [start.astimezone(PARIS).date().isoformat() for start in starts]

    # listings follows the move: the loan's old days are free again
    wait_until(lambda: busy_from() == [day(26), day(30)], timeout=30)

    wait_until(lambda: len(about(catcher, booking["id"])) == 4, timeout=30)
    told = about(catcher, booking["id"])[3]
    assert envelope(told) == REQUESTER
    assert told["Subject"].startswith("Réservation déplacée : Chasse-neige Unimog")
    text = told.get_body(("plain",)).get_content()
    assert f"et non plus du {french_day(day(25))} à 0 h 00" in text
    assert "Motif : Lame en révision" in text
    calendar = calendar_of(told)
    assert str(calendar["method"]) == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    assert str(event["uid"]) == str(first["uid"]) == f"booking-{booking['id']}@mutualis"
    assert event["sequence"] > first["sequence"]
    assert event.decoded("dtstart").isoformat()[:10] == day(26)
    assert event.decoded("dtstart").isoformat()[:10] != first.decoded("dtstart").isoformat()[:10]

    # and nobody else, once each: not the other request's people, not the borrower twice
    wait_until(lambda: metric(stack, "mutualis_mail_backlog") == 0, timeout=30)
    assert [envelope(m) for m in about(catcher, booking["id"])] == [
        LENDER_MANAGER,
        LENDER_MANAGER,
        REQUESTER,
        REQUESTER,
    ]
    assert about(catcher, other["id"]) and all(
        "déplac" not in m["Subject"] for m in about(catcher, other["id"])
    )

    # the booking's page: the lender's manager moves it again by its form, prefilled (in
    # the same second, maybe: the invitation's SEQUENCE counts the loan's changes)
    page_url = f"{stack.url}/reservations/{booking['id']}"
    manager = signed_in(stack, LENDER_MANAGER)
    shown = manager.get(page_url, timeout=10)
    assert "Déplacer le prêt" in shown.text
    assert f'name="du" type="date" required value="{day(26)}"' in shown.text
    assert f'name="au" type="date" required value="{day(27)}"' in shown.text
    csrf = shown.text.split('name="csrf" value="')[1].split('"')[0]
    form = {"csrf": csrf, "du": day(27), "au": day(28), "motif": ""}
    done = manager.post(f"{page_url}/deplacer", data=form, timeout=10)
    assert done.status_code == 200 and "La réservation est déplacée" in done.text, done.text[:500]
    taken_by_form = manager.post(
        f"{page_url}/deplacer", data=form | {"du": day(30), "au": day(30)}, timeout=10
    )
    assert taken_by_form.status_code == 409
    assert "Ce créneau est déjà réservé" in taken_by_form.text
    wait_until(lambda: len(about(catcher, booking["id"])) == 5, timeout=30)
    told_again = about(catcher, booking["id"])[4]
    assert envelope(told_again) == REQUESTER
    (moved_again,) = calendar_of(told_again).walk("VEVENT")
    assert moved_again["sequence"] > event["sequence"]
    assert moved_again.decoded("dtstart").isoformat()[:10] == day(27)
    borrower_page = signed_in(stack, REQUESTER).get(page_url, timeout=10).text
    assert "Déplacer le prêt" not in borrower_page
    assert "demandez-le au prêteur dans la conversation" in borrower_page


BORROWER_MANAGER = f"manager.{FIRMINY}@mutualis-demo.fr"


def test_dearer_dates_wait_for_the_borrowers_manager_who_accepts_them_on_the_loans_page(
    mail_stack,
):
    """Chambon's manager moves an approved loan to three days instead of one: it is only
    proposed (the loan keeps its dates and price), and Firminy's manager is mailed to
    answer. A first proposal is declined (Chambon's manager told why), a second accepted
    on the loan's page after another commune took one of its days (409, said in words) and
    then freed it: the loan moves, the requester's invitation is updated."""
    stack, catcher = mail_stack
    listing_id = snowplough(stack)
    booking = requested(stack, listing_id, 24, 25)
    lender, borrower = stack.session("manager", CHAMBON), stack.session("manager", FIRMINY)
    url = f"{stack.url}/api/v1/bookings/{booking['id']}"
    assert lender.post(f"{url}/approve", timeout=10).status_code == 200
    wait_until(lambda: len(about(catcher, booking["id"])) == 2, timeout=30)
    (approval,) = calendar_of(about(catcher, booking["id"])[1]).walk("VEVENT")

    dearer = {"start": day(26), "end": day(29), "reason": "Lame en révision"}
    proposed = lender.post(f"{url}/reschedule", json=dearer, timeout=10)
    assert proposed.status_code == 200, proposed.text
    answer = proposed.json()
    assert answer["start"] == booking["start"] and answer["quote"]["units"] == 1
    assert answer["proposal"]["quote"]["units"] == 3
    assert_problem(lender.post(f"{url}/reschedule/accept", timeout=10), 403)
    declined = borrower.post(f"{url}/reschedule/decline", json={"reason": "Trop cher"}, timeout=10)
    assert declined.status_code == 200 and declined.json()["proposal"] is None, declined.text

    def told(subject: str) -> list:
        return [m for m in about(catcher, booking["id"]) if m["Subject"].startswith(subject)]

    (asked,) = wait_until(lambda: told("Nouvelles dates à accepter : Chasse-neige"), timeout=30)
    (refused,) = wait_until(lambda: told("Nouvelles dates refusées : Chasse-neige"), timeout=30)
    assert (envelope(asked), envelope(refused)) == (BORROWER_MANAGER, LENDER_MANAGER)
    assert "Motif : Trop cher" in refused.get_body(("plain",)).get_content()

    assert lender.post(f"{url}/reschedule", json=dearer, timeout=10).status_code == 200
    other = requested(stack, listing_id, 27, 28)
    page_url = f"{stack.url}/reservations/{booking['id']}"
    manager = signed_in(stack, BORROWER_MANAGER)
    shown = manager.get(page_url, timeout=10)
    assert (
        "Nouvelles dates proposées" in shown.text and "Accepter les nouvelles dates" in shown.text
    )
    lenders_page = signed_in(stack, LENDER_MANAGER).get(page_url, timeout=10).text
    assert "Retirer la proposition" in lenders_page
    assert "Accepter les nouvelles dates" not in lenders_page
    csrf = {"csrf": shown.text.split('name="csrf" value="')[1].split('"')[0]}
    taken = manager.post(f"{page_url}/accepter-dates", data=csrf, timeout=10)
    assert taken.status_code == 409 and "Ce créneau est déjà réservé" in taken.text
    assert borrower.get(url, timeout=10).json()["start"] == booking["start"]
    gone = stack.session("agent", FIRMINY).post(
        f"{stack.url}/api/v1/bookings/{other['id']}/cancel", json={}, timeout=10
    )
    assert gone.status_code == 200, gone.text
    accepted = manager.post(f"{page_url}/accepter-dates", data=csrf, timeout=10)
    assert accepted.status_code == 200 and "le prêt est déplacé" in accepted.text
    moved = borrower.get(url, timeout=10).json()
    assert moved["quote"]["units"] == 3 and moved["proposal"] is None

    def invitations() -> list:
        return [m for m in told("Réservation déplacée") if envelope(m) == REQUESTER]

    (updated,) = wait_until(invitations, timeout=30)
    (event,) = calendar_of(updated).walk("VEVENT")
    assert event["sequence"] > approval["sequence"]
    assert event.decoded("dtstart").isoformat()[:10] == day(26)
