"""People are told by e-mail, through a real SMTP server (the mail catcher, aiosmtpd, as a
process): Firminy asks Le Chambon-Feugerolles for its snowplough, Chambon's managers are told;
Chambon approves, the agent who asked is told, with the loan as a calendar invitation; and
nobody else gets anything. A cause told twice is mailed once; a mail server down delays the
mails and loses none; an address the server refuses for good is recorded for the operator."""

from __future__ import annotations

import re
import uuid

import icalendar
import pytest
import requests
from kombu import Connection, Exchange

from tests.e2e.test_bookings_flow import SNOWPLOUGH
from tests.support import COMPONENTS, Stack, day, wait_until
from tests.support.mail import MailCatcher

pytestmark = pytest.mark.e2e

CHAMBON, FIRMINY = "42044", "42095"
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
        }
        with Stack(request.param, workdir, settings=settings) as stack:
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
    body = requests.get(f"http://127.0.0.1:{stack.ports['notifications']}/metrics", timeout=5).text
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
