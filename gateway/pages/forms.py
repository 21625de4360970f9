"""What the pages' forms send, turned into the API's inputs; and the quote a booking form
shows before it is sent. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from gateway.pages.french import period_text

PARIS = ZoneInfo("Europe/Paris")
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


def booking_preview(
    listing: dict,
    start: date | datetime,
    end: date | datetime,
    quantity: int,
    with_operator: bool,
    busy: list[tuple[datetime, datetime]],
    now: datetime,
) -> Preview:
    """The listing's published terms applied to the period, as the bookings service will
    (units × rate × quantity, plus the operator), and the rules a person can check at once.
    The bookings service has the last word when the request is sent."""
    begin, finish = instant(start), instant(end)
    if listing["pricing_unit"] == "hour":
        units = int((finish - begin) // timedelta(hours=1))
        unit = "heure"
    else:
        units = (end - start).days if not isinstance(start, datetime) else 0
        unit = "jour"
    units = max(units, 0)
    rental = units * listing["rate_cents"] * quantity
    operator = units * listing["operator_rate_cents"] * quantity if with_operator else 0
    preview = Preview(
        units=units,
        unit=unit,
        rental_cents=rental,
        operator_cents=operator,
        amount_cents=rental + operator,
        deposit_cents=listing["deposit_cents"] * quantity,
    )
    plural = "s" if listing["min_duration"] > 1 else ""
    if units <= 0:
        preview.problems.append("La fin doit suivre le début.")
    elif units < listing["min_duration"]:
        preview.problems.append(f"Durée minimale : {listing['min_duration']} {unit}{plural}.")
    max_duration = listing.get("max_duration")
    if max_duration is not None and units > max_duration:
        preview.problems.append(
            f"Durée maximale : {max_duration} {unit}{'s' if max_duration > 1 else ''}."
        )
    if begin < now:
        preview.problems.append("La date de début est déjà passée.")
    elif begin < now + timedelta(days=listing["lead_time_days"]):
        preview.problems.append(
            f"Le prêteur demande au moins {listing['lead_time_days']} jours de prévenance."
        )
    if quantity > listing["quantity"]:
        preview.problems.append(f"Cette annonce compte {listing['quantity']} exemplaire(s).")
    if with_operator and not listing["with_operator"]:
        preview.problems.append("Cette annonce est proposée sans chauffeur ni opérateur.")
    for s, e in busy:
        if s < finish and e > begin:
            preview.problems.append(
                f"Déjà réservé ou fermé {period_text(s, e, listing['pricing_unit'])}."
            )
            break
    return preview
