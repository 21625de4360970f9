"""What the pages' forms send, turned into the API's inputs; and the quote a booking form
shows before it is sent. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from contracts.clock import PARIS
from contracts.errors import Conflict, InvalidInput
from gateway.pages.french import explain_refusal

_EUROS = re.compile(r"^-?\d+(?:[.,]\d{1,2})?$")


class FormError(ValueError):
    """A field the form cannot turn into a value: (field, message in French)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def cents_from_euros(text: str | None, field: str, required: bool = True) -> int | None:
    """'1 234,50' or '1234.5' (euros) -> 123450 cents; exact, never through a float."""
    cleaned = (text or "").replace("\u202f", "").replace("\xa0", "").replace(" ", "").strip()
    cleaned = cleaned.removesuffix("€")
    if not cleaned:
        if required:
            raise FormError(field, "Ce champ est obligatoire.")
        return None
    if not _EUROS.match(cleaned):
        raise FormError(field, "Indiquez un montant en euros, par exemple 420 ou 420,50.")
    try:
        value = Decimal(cleaned.replace(",", "."))
    except InvalidOperation:
        raise FormError(field, "Montant illisible.") from None
    return int(value * 100)


def euros_from_cents(cents: int | None) -> str:
    """For a form's initial value: 42050 -> '420,50'; 42000 -> '420'."""
    if cents is None:
        return ""
    euros, rest = divmod(cents, 100)
    return f"{euros},{rest:02d}" if rest else str(euros)


def day(text: str | None, field: str, required: bool = True) -> date | None:
    value = (text or "").strip()
    if not value:
        if required:
            raise FormError(field, "Indiquez une date.")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FormError(field, "Indiquez une date au format jj/mm/aaaa.") from None


def whole_number(text: str | None, field: str, default: int | None = None) -> int | None:
    value = (text or "").strip()
    if not value:
        if default is None:
            return None
        return default
    if not value.isdigit():
        raise FormError(field, "Indiquez un nombre entier.")
    return int(value)


def paris_hour(on: date, hour_text: str | None, field: str) -> datetime:
    """'09:00' on a day -> that Paris time, with its offset."""
    try:
        wall = time.fromisoformat((hour_text or "").strip())
    except ValueError:
        raise FormError(field, "Indiquez une heure, par exemple 09:00.") from None
    return datetime.combine(on, wall, tzinfo=PARIS)


def booking_period(
    pricing_unit: str, form: dict[str, str]
) -> tuple[date | datetime, date | datetime]:
    """The API's half-open [start, end) from the form: for day listings the first and the
    last day (included); for hourly ones a day and two hours."""
    if pricing_unit == "hour":
        on = day(form.get("jour"), "start")
        start = paris_hour(on, form.get("heure_debut"), "start")
        end = paris_hour(on, form.get("heure_fin"), "end")
        return start, end
    first = day(form.get("du"), "start")
    last = day(form.get("au"), "end")
    if last < first:
        raise FormError("end", "Le dernier jour doit suivre le premier.")
    return first, last + timedelta(days=1)


def instant(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=PARIS).astimezone(UTC)


@dataclass
class Preview:
    """What the form shows before sending: the quote, and what already stands in the way."""

    units: int
    unit: str
    rental_cents: int
    operator_cents: int
    amount_cents: int
    deposit_cents: int
    problems: list[str] = field(default_factory=list)


def preview_from_quote(answer: dict) -> Preview:
    """The bookings service's quote of a request (POST /bookings/quote) as the form shows it:
    amounts as computed there, and what would refuse the request, in words."""
    quote = answer["quote"]
    preview = Preview(
        units=quote["units"],
        unit="heure" if quote["pricing_unit"] == "hour" else "jour",
        rental_cents=quote["rental_cents"],
        operator_cents=quote["operator_cents"],
        amount_cents=quote["amount_cents"],
        deposit_cents=quote["deposit_cents"],
    )
    if answer.get("problems"):
        preview.problems += explain_refusal(InvalidInput("", answer["problems"]))
    if answer.get("conflict"):
        preview.problems += explain_refusal(
            Conflict(answer["conflict"], conflicting_period=answer["conflicting_period"])
        )
    return preview
