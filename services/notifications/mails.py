"""A decided mail made into its message: French subject, text and HTML from the kind's
template (templates/<kind>.txt, a few paragraphs), the link to the page that needs action,
and for a loan's approval, new dates or cancellation its iCalendar invitation."""

from __future__ import annotations

import functools
import re
import uuid
from base64 import b64encode
from binascii import b2a_base64
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime as rfc2822_date
from email.utils import make_msgid, parseaddr
from pathlib import Path

import icalendar
from babel.dates import format_date, format_datetime
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

from contracts import clock
from contracts.clock import PARIS
from contracts.listings import phone_national
from services.notifications.domain import RULE_OF_KIND

TEMPLATES = Path(__file__).resolve().parent / "templates"


def when(value: str | datetime) -> str:
    """'lundi 7 décembre 2026 à 9 h 00', Paris time (23:30 UTC is already tomorrow there)."""
    return _paris_time(datetime.fromisoformat(value) if isinstance(value, str) else value)


@functools.lru_cache(maxsize=4096)
def _paris_time(moment: datetime) -> str:
    """`when`, worked out once per instant: a round's mails name the same few hours again
    and again (a letter of 50 requests, two each), and Babel's formatting was a
    seventh of the delivery's samples."""
    return format_datetime(moment, "EEEE d MMMM y 'à' H 'h' mm", tzinfo=PARIS, locale="fr_FR")


def day(value: str) -> str:
    """'lundi 7 décembre 2026': a day as sent, or an instant's day in Paris (23:30 UTC on
    31 December is already 1 January there)."""
    moment = datetime.fromisoformat(value)
    on = clock.paris_date(moment) if moment.tzinfo else moment.date()
    return format_date(on, "EEEE d MMMM y", locale="fr_FR")


def euros(cents: int) -> str:
    return f"{cents / 100:,.2f} €".replace(",", "\u202f").replace(".", ",")


@functools.cache
def environment(autoescape: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,  # a field missing from the context is a bug, not a blank
        autoescape=select_autoescape(["html"]) if autoescape else False,
        keep_trailing_newline=True,
        # the templates ship with the code: no stat of their file at each render
        auto_reload=False,
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


def compose_together(notices: list[tuple[str, dict]], recipient_name: str, public_url: str):
    """One mail for several notices of one kind due together (domain.letters): each its
    titled section, the subject the first's and how many more."""
    more = len(notices) - 1
    sections = [_section(kind, context, public_url, titled=True) for kind, context in notices]
    subject = f"{sections[0][0]} (et {more} autre{'s' if more > 1 else ''})"
    invitations = _invitations(notices, public_url)
    return _letter(
        subject, [section for _, section in sections], recipient_name, public_url, invitations
    )


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


@dataclass(frozen=True)
class Outgoing:
    """A message as the server takes it: its envelope and its bytes."""

    sender: str  # the envelope's addresses (MAIL FROM, RCPT TO)
    recipient: str
    data: bytes  # CRLF lines, headers ASCII (RFC 2047) unless an address is not

    def __bytes__(self) -> bytes:
        return self.data


def message(letter: Letter, sender: str, address: str, *mail_ids: str) -> Outgoing:
    """The MIME message of the decided mails `mail_ids` (one, or those a letter gathers):
    text, its HTML alternative, and the invitations if any. Written as bytes directly:
    EmailMessage's header policy and generator took about 3 ms a mail, most of the
    service's CPU per booking; the structure is the one it made (multipart/alternative,
    within multipart/mixed when an invitation is attached)."""
    body = _alternative(letter.text, letter.html)
    if letter.invitations:
        body = _multipart("mixed", [body, *map(_invitation_part, letter.invitations)])
    head = [
        _header("From", _address_header(sender)),
        f"To: {address}",  # as it is: an international address goes with SMTPUTF8
        _header("Subject", letter.subject),
        f"Date: {rfc2822_date(clock.now())}",
        f"Message-ID: {make_msgid(idstring=mail_ids[0], domain='mutualis')}",
        # which decided mail this is (a resent one says so), and every one it carries
        f"X-Mutualis-Mail: {mail_ids[0]}",
        "MIME-Version: 1.0",
    ]
    if len(mail_ids) > 1:
        head.append("X-Mutualis-Mails: " + "\r\n ".join(mail_ids))
    data = "\r\n".join(head).encode() + b"\r\n" + body
    return Outgoing(parseaddr(sender)[1], address, data)


_PLAIN = re.compile(r"[\x20-\x7e]*")  # printable ASCII: a header value written as it is
_WORD_BYTES = 45  # utf-8 bytes per encoded word: 60 in base64, 75 characters with its marks


def _header(name: str, value: str) -> str:
    """`name: value`, the value in RFC 2047 encoded words unless printable ASCII (each word
    within 75 characters, one per folded line: readers join them without a space, which
    the standard library's folding of a long French subject did not let them do)."""
    if _PLAIN.fullmatch(value) and len(value) < 900:
        return f"{name}: {value}"
    words, chunk, size = [], [], 0
    for character in value:
        length = len(character.encode())
        if size + length > _WORD_BYTES:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(character)
        size += length
    words.append("".join(chunk))
    encoded = (f"=?utf-8?b?{b64encode(word.encode()).decode()}?=" for word in words)
    return f"{name}: " + "\r\n ".join(encoded)


def _address_header(value: str) -> str:
    """'Name <address>' with a non-ASCII name encoded (the address itself left as is)."""
    name, address = parseaddr(value)
    if not name or _PLAIN.fullmatch(name):
        return value
    return f"{_header('X', name)[3:]} <{address}>"


def _text_part(subtype: str, text: str) -> bytes:
    """A UTF-8 text part: as it is (7 or 8 bit) when its lines fit SMTP's 998 octets,
    else in base64."""
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
    if max(map(len, data.split(b"\r\n"))) <= 998:
        encoding = "7bit" if data.isascii() else "8bit"
    else:
        encoding, data = "base64", _base64_lines(data)
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {encoding}'
    return head.encode() + b"\r\n\r\n" + data


def _invitation_part(ics: bytes) -> bytes:
    method = "CANCEL" if b"METHOD:CANCEL" in ics else "REQUEST"
    head = (
        f'Content-Type: text/calendar; charset="utf-8"; method="{method}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="invitation.ics"'
    )
    return head.encode() + b"\r\n\r\n" + _base64_lines(ics)


def _alternative(text: str, html: str) -> bytes:
    return _multipart("alternative", [_text_part("plain", text), _text_part("html", html)])


def _multipart(subtype: str, parts: list[bytes]) -> bytes:
    """The parts within a random boundary (a UUID: no part's content contains it)."""
    boundary = f"=_{uuid.uuid4().hex}"
    delimiter = f"\r\n--{boundary}\r\n".encode()
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n'.encode()
    return head + delimiter + delimiter.join(parts) + f"\r\n--{boundary}--\r\n".encode()


def _base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters."""
    return b"\r\n".join(
        b2a_base64(data[i : i + 57], newline=False) for i in range(0, len(data), 57)
    )
