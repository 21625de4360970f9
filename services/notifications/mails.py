"""A decided mail made into its message: French subject, text and HTML from the kind's
template (templates/<kind>.txt, a few paragraphs), the link to the page that needs action,
and for a loan's approval, new dates or cancellation its iCalendar invitation."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime as rfc2822_date
from email.utils import make_msgid
from pathlib import Path

import icalendar
from babel.dates import format_date, format_datetime
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

from contracts import clock
from contracts.clock import PARIS
from contracts.listings import phone_national
from services.notifications.domain import RULE_OF_KIND

TEMPLATES = Path(__file__).resolve().parent / "templates"
# headers on one line (SMTP allows 998 characters): the standard library folds a long
# non-ASCII subject leaving a space on each side of the fold, which readers show doubled
UNFOLDED = policy.default.clone(max_line_length=998)


def when(value: str | datetime) -> str:
    """'lundi 7 décembre 2026 à 9 h 00', Paris time (23:30 UTC is already tomorrow there)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return format_datetime(moment, "EEEE d MMMM y 'à' H 'h' mm", tzinfo=PARIS, locale="fr_FR")


def day(value: str) -> str:
    """'lundi 7 décembre 2026'."""
    return format_date(datetime.fromisoformat(value).date(), "EEEE d MMMM y", locale="fr_FR")


def euros(cents: int) -> str:
    return f"{cents / 100:,.2f} €".replace(",", "\u202f").replace(".", ",")


@functools.cache
def environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,  # a field missing from the context is a bug, not a blank
        autoescape=select_autoescape(["html"]) if autoescape else False,
        keep_trailing_newline=True,
    )
    env.filters.update(when=when, day=day, euros=euros, phone=phone_national)
    return env


@dataclass(frozen=True)
class Letter:
    subject: str
    text: str
    html: str
    invitations: tuple[bytes, ...]  # text/calendar, one per loan


@functools.cache
def subject_template(kind: str) -> Template:
    """The kind's subject, compiled once (Jinja compiles a string at each from_string)."""
    return environment(False).from_string(RULE_OF_KIND[kind].subject)


def _paragraphs(kind: str, context: dict, public_url: str) -> tuple[str, list[str]]:
    """A notice's subject and the paragraphs of its kind's template (which may link to other
    pages than the one that needs action: `public_url`)."""
    plain = environment(False)
    subject = subject_template(kind).render(context).strip()
    body = (
        plain.get_template(f"{kind}.txt")
        .render(context | {"public_url": public_url.rstrip("/")})
        .strip()
    )
    return subject, [p.strip() for p in body.split("\n\n") if p.strip()]


def _letter(subject: str, sections: list[dict], name: str, url: str, invitations) -> Letter:
    page = {
        "recipient_name": name,
        "subject": subject,
        "sections": sections,
        "preferences_url": url.rstrip("/") + "/compte/notifications",
    }
    return Letter(
        subject=subject,
        text=environment(False).get_template("mail.txt").render(page),
        html=environment(True).get_template("mail.html").render(page),
        invitations=tuple(invitations),
    )


def _section(kind: str, context: dict, public_url: str, titled: bool) -> tuple[str, dict]:
    """A notice's subject, and its section of the mail (titled with it in a digest)."""
    subject, paragraphs = _paragraphs(kind, context, public_url)
    return subject, {
        "title": subject if titled else None,
        "paragraphs": paragraphs,
        "url": public_url.rstrip("/") + context["link"],
    }


def _invitations(kinds_and_contexts, public_url: str) -> list[bytes]:
    return [
        invitation(context, public_url)
        for kind, context in kinds_and_contexts
        if RULE_OF_KIND[kind].invites(context)
    ]


def compose(kind: str, context: dict, recipient_name: str, public_url: str) -> Letter:
    """The mail of this kind for this context (what the rule decided), to this person."""
    subject, section = _section(kind, context, public_url, titled=False)
    invitations = _invitations([(kind, context)], public_url)
    return _letter(subject, [section], recipient_name, public_url, invitations)


def compose_digest(notices: list[tuple[str, dict]], recipient_name: str, public_url: str):
    """One mail for the (kind, context) of the day that a person wants as a digest."""
    count = len(notices)
    subject = f"Votre résumé Mutualis : {count} notification{'s' if count > 1 else ''}"
    sections = [_section(kind, context, public_url, titled=True)[1] for kind, context in notices]
    invitations = _invitations(notices, public_url)
    return _letter(subject, sections, recipient_name, public_url, invitations)


def _sequence(context: dict) -> int:
    """The revision of the loan's dates the event carries (approval 0, each move and the
    cancellation one more), so two changes in one second still follow each other. Events
    written before it was carried: the approval's is 0, a move's its instant in seconds, a
    cancellation's one more."""
    if context.get("dates_revision") is not None:
        return context["dates_revision"]
    if context["status"] != "cancelled" and not context.get("rescheduling_id"):
        return 0
    instant = int(datetime.fromisoformat(context["occurred_at"]).timestamp())
    return instant + 1 if context["status"] == "cancelled" else instant


def invitation(context: dict, public_url: str) -> bytes:
    """The loan as a calendar event: REQUEST when approved or moved to new dates, CANCEL when
    cancelled. One UID per booking, a SEQUENCE that grows with each change, so calendars
    update the event in place."""
    cancelled = context["status"] == "cancelled"
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Mutualis//Prêts entre communes//FR")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    event = icalendar.Event()
    event.add("uid", f"booking-{context['booking_id']}@mutualis")
    event.add("sequence", _sequence(context))
    event.add("dtstamp", clock.now())
    event.add("dtstart", datetime.fromisoformat(context["start"]).astimezone(PARIS))
    event.add("dtend", datetime.fromisoformat(context["end"]).astimezone(PARIS))
    event.add("summary", f"Prêt : {context['listing_title']} ({context['lender_name']})")
    event.add("description", f"Prêté par la commune {context['lender_of']}.")
    event.add("url", public_url.rstrip("/") + context["link"])
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical()


def message(letter: Letter, sender: str, address: str, mail_id: str) -> EmailMessage:
    """The MIME message: text, its HTML alternative, and the invitation if any."""
    msg = EmailMessage(policy=UNFOLDED)
    msg["From"] = sender
    msg["To"] = address
    msg["Subject"] = letter.subject
    msg["Date"] = rfc2822_date(clock.now())
    msg["Message-ID"] = make_msgid(idstring=mail_id, domain="mutualis")
    msg["X-Mutualis-Mail"] = mail_id  # which decided mail this is (a resent one says so)
    msg.set_content(letter.text)
    msg.add_alternative(letter.html, subtype="html")
    for ics in letter.invitations:
        method = "CANCEL" if b"METHOD:CANCEL" in ics else "REQUEST"
        msg.add_attachment(
            ics,
            maintype="text",
            subtype="calendar",
            filename="invitation.ics",
            params={"method": method},
        )
    return msg
