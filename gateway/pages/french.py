"""How the pages say things in French: money, dates, statuses, and errors a person understands."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from babel.numbers import format_currency, format_decimal

from contracts.billing import unit_name
from contracts.clock import MONTHS, PARIS, WEEKDAYS
from contracts.errors import ServiceError
from contracts.french import of_commune, plural
from infra.communes import communes

LOCALE = "fr_FR"


BOOKING_STATUS = {
    "waiting": "En liste d'attente",
    "requested": "Demandée",
    "approved": "Acceptée",
    "rejected": "Refusée",
    "cancelled": "Annulée",
    "expired": "Expirée",
    # the equipment's state from the hand-over on ("Remise" read as a discount)
    "checked_out": "Remis",
    "returned": "Rendu",
}
ENGAGEMENT_STATUS = {
    "requested": "Demandée",
    "accepted": "Acceptée",
    "rejected": "Refusée",
    "cancelled": "Annulée",
    "completed": "Terminée",
    "expired": "Expirée",
}
TIMESHEET_STATUS = {"recorded": "À approuver", "approved": "Approuvé", "rejected": "Refusé"}
INVOICE_STATUS = {
    "issued": "Émise",
    "partially_paid": "Payée en partie",
    "paid": "Payée",
    "cancelled": "Annulée (avoir)",
    "settled": "Compensée",
}
NETTING_STATUS = {
    "proposed": "En attente des réponses",
    "effective": "Acceptée par tous, en vigueur",
    "declined": "Refusée",
    "expired": "Expirée",
    "void": "Annulée (une facture a changé)",
}
NETTING_DECISION = {"pending": "pas encore répondu", "accepted": "acceptée", "declined": "refusée"}
KINDS = {
    "equipment": "Matériel",
    "vehicle": "Véhicule",
    "space": "Salle ou espace",
    "service": "Service",
}
UNITS = {"day": "jour", "hour": "heure"}
ROLES = {
    "agent": "Agent",
    "manager": "Responsable",
    "finance": "Finances",
    "operator": "Opérateur",
    "coordinator": "Coordinateur",
}

# what a field is called on the forms, for messages naming it
FIELD_LABELS = {
    "listing_id": "Annonce",
    "start": "Début",
    "end": "Fin",
    "quantity": "Quantité",
    "with_operator": "Avec chauffeur ou opérateur",
    "purpose": "Objet",
    "title": "Titre",
    "description": "Description",
    "category": "Catégorie",
    "kind": "Type",
    "pricing_unit": "Unité de prix",
    "rate_cents": "Tarif",
    "deposit_cents": "Caution",
    "min_duration": "Durée minimale",
    "max_duration": "Durée maximale",
    "lead_time_days": "Délai de prévenance",
    "operator_rate_cents": "Tarif du chauffeur ou opérateur",
    "rules": "Règles",
    "reason": "Motif",
    "condition": "État constaté",
    "damages": "Dommages",
    "days": "Jours",
    "mission": "Mission",
    "date": "Date",
    "amount_cents": "Montant",
    "reference": "Référence",
    "invoice_id": "Facture",
    "period": "Période",
    "consultant_id": "Expert",
    "number": "Numéro",
    "parties": "Parties",
    "epci": "EPCI",
    "categories": "Champ",
    "starts_on": "Début",
    "ends_on": "Fin",
    "decision_id": "Délibération",
    "signatory": "Signataire",
    "subject": "Objet",
    "file": "Fichier",
}

# the rules of the bookings service, in words (by error type)
RULE_MESSAGES = {
    "in_the_past": "La date de début est déjà passée.",
    "lead_time": "Le prêteur demande d'être prévenu plus tôt : {message}.",
    "min_duration": "La durée est trop courte : {message}.",
    "max_duration": "La durée est trop longue : {message}.",
    "quantity": "Vous demandez plus d'exemplaires qu'il n'y en a : {message}.",
    "no_operator": "Cette annonce est proposée sans chauffeur ni opérateur.",
    "own_listing": "Une commune ne réserve pas ses propres équipements.",
    "listing_withdrawn": "Cette annonce a été retirée : elle ne prend plus de réservations.",
    "same_dates": "La réservation a déjà ces dates : choisissez-en d'autres.",
    "hand_over_too_early": "Le matériel se remet à partir du premier jour de la réservation.",
    "out_of_period": "Cette date est en dehors de la période de la mission.",
    "in_the_future": "On ne déclare pas à l'avance le temps travaillé.",
    "beyond_engagement": "C'est plus que les jours prévus par la mission.",
    "one_day_per_date": (
        "Une personne travaille au plus une journée par date, toutes missions comprises : "
        "il reste {days_left} jour ce jour-là."
    ),
    "over_balance": (
        "Le montant dépasse le reste dû ({balance}) : cochez « trop-perçu » pour enregistrer "
        "l'excédent comme un crédit du payeur."
    ),
    "future_date": "La date ne peut pas être dans le futur (au plus tard {latest_day}).",
    "before_issue_date": "La date précède l'émission de la facture ({earliest_day}).",
    "over_credit": "C'est plus que ce qui reste sur la ligne ou sur la facture : {message}.",
    "no_line": "La facture n'a pas cette ligne.",
    # agreements between communes and council decisions
    "parties_not_distinct": (
        "Une convention lie au moins deux communes distinctes, chacune une fois."
    ),
    "unknown_epci": "Aucun EPCI n'a ce numéro SIREN.",
    "empty_scope": "Choisissez au moins une catégorie, ou la mise à disposition d'agents.",
    "ends_before_start": "La fin de la convention précède son début.",
    "overlapping_agreement": (
        "La convention {reference} lie déjà ces communes pour ce champ et ces dates."
    ),
    "decision_in_the_future": (
        "Une délibération ne peut pas être datée dans le futur (au plus tard {latest_day})."
    ),
    "unknown_decision": "Choisissez une délibération de votre commune.",
    "decision_does_not_approve": (
        "Cette délibération n'approuve pas cette convention et n'autorise pas le maire à signer."
    ),
    "unknown_agreement": "Cette convention n'est pas une convention de votre commune.",
    "not_a_pdf": "Le fichier n'est pas un PDF.",
    "pdf_too_large": "Le PDF dépasse la taille autorisée (1 Mo).",
    "exceptional_work_required": (
        "Le {day} n'est pas un jour ouvré ({why}) : cochez « travail exceptionnel » et "
        "dites pourquoi."
    ),
}

# pydantic's error types, in words
INPUT_MESSAGES = {
    "missing": "Ce champ est obligatoire.",
    "phone_invalid": "Ce numéro de téléphone n'est pas valide.",
    "phone_not_french": "Indiquez un numéro de téléphone français.",
    "email_invalid": "Cette adresse électronique n'est pas valide.",
    "contact_unreachable": "Indiquez un téléphone ou une adresse électronique du contact.",
    "string_too_short": "Ce texte est trop court.",
    "string_too_long": "Ce texte est trop long.",
    "greater_than": "La valeur est trop petite.",
    "greater_than_equal": "La valeur est trop petite.",
    "less_than_equal": "La valeur est trop grande.",
    "int_parsing": "Indiquez un nombre entier.",
    "decimal_parsing": "Indiquez un nombre.",
    "date_or_datetime": "Indiquez une date.",
    "date_from_datetime_parsing": "Indiquez une date.",
    "date_parsing": "Indiquez une date.",
    "date_out_of_range": "Cette année n'est pas plausible.",
    "half_days": "Les jours se comptent en jours entiers ou en demi-journées.",
    "literal_error": "Choisissez une valeur de la liste.",
    "enum": "Choisissez une valeur de la liste.",
    "string_pattern_mismatch": "Le format n'est pas reconnu.",
    "string_nul": "Caractère non autorisé.",
    "string_control": "Caractère non autorisé.",
    "string_bidi": "Caractère non autorisé (inversion du sens d'écriture).",
    "string_invisible": "Ce texte ne contient aucun caractère visible.",
    "iso_date": "Indiquez une date (AAAA-MM-JJ).",
}


def money(cents: int | None, currency: str = "EUR") -> str:
    """12345678 -> '123 456,78 €' (CLDR's French: narrow no-break spaces between thousands,
    a no-break space before the symbol)."""
    if cents is None:
        return "—"
    return format_currency(Decimal(int(cents)) / 100, currency, locale=LOCALE)


def number(value: Decimal | float | int | None) -> str:
    """2.5 -> '2,5'; 2.0 -> '2'; 12345 -> '12 345'."""
    if value is None:
        return "—"
    return format_decimal(Decimal(str(value)), locale=LOCALE)


def counted(
    quantity: Decimal | float | int | None, singular: str, plural_form: str | None = None
) -> str:
    """'1 facture émise', '2 jours', '0,5 jour': the number and its noun in the right number
    (French: singular below 2)."""
    if quantity is None:
        return f"— {plural_form or singular + 's'}"
    return f"{number(quantity)} {plural(quantity, singular, plural_form)}"


def km(value: float | None) -> str:
    """6.04 -> '6,0'."""
    return "—" if value is None else format_decimal(value, format="#,##0.0", locale=LOCALE)


def _as_date(value: date | datetime | str) -> date:
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        return value.astimezone(PARIS).date() if value.tzinfo else value.date()
    return value


def _as_local(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(PARIS) if value.tzinfo else value


def _day_month(day: date) -> str:
    """'7 décembre', '1er mars'."""
    first = "1er" if day.day == 1 else str(day.day)
    return f"{first} {MONTHS[day.month - 1]}"


def long_date(value: date | datetime | str | None) -> str:
    """'jeudi 12 mars 2026'."""
    if value is None:
        return "—"
    day = _as_date(value)
    return f"{WEEKDAYS[day.weekday()]} {_day_month(day)} {day.year}"


def free_from(value: datetime | str, today: date) -> str:
    """When a listing is free soonest (search's `earliest_available`): 'aujourd'hui',
    'le lundi 7 décembre 2026', or with the hour when it is free in the course of a day."""
    local = _as_local(value)
    if local.time() == time(0):
        return "aujourd'hui" if local.date() <= today else f"le {long_date(local.date())}"
    return f"le {date_time(local)}"


def short_date(value: date | datetime | str | None) -> str:
    """'12/03/2026', for dense tables (statements, invoice lists)."""
    if value is None:
        return "—"
    return _as_date(value).strftime("%d/%m/%Y")


def clock_time(local: datetime) -> str:
    """'9 h', '14 h 05': how the French say the hour."""
    return f"{local.hour} h" if local.minute == 0 else f"{local.hour} h {local.minute:02d}"


def date_time(value: datetime | str | None) -> str:
    """'lundi 7 décembre 2026 à 9 h' in Paris time."""
    if value is None:
        return "—"
    local = _as_local(value)
    return f"{long_date(local.date())} à {clock_time(local)}"


def month_title(year: int, month: int) -> str:
    return f"{MONTHS[month - 1].capitalize()} {year}"


# UN/ECE recommendation 20 codes of invoice lines, singular and plural
def quantity_with_unit(quantity: Any, code: str) -> str:
    """'2 jours', '0,5 jour', '1 unité'."""
    return f"{number(quantity)} {unit_name(code, quantity)}"


def served_days(first: date | str | None, last: date | str | None) -> str:
    """A line's service period, both days included: 'le 7 décembre 2026', 'du 7 au 8 …'."""
    if not first:
        return ""
    return day_span(_as_date(first), _as_date(last or first))


def month_name(period: str | None) -> str:
    """A month as the API writes it ('2026-12') as a page says it: 'décembre 2026'."""
    if not period:
        return "—"
    year, month = period.split("-")
    return f"{MONTHS[int(month) - 1]} {year}"


def day_span(first: date, last: date) -> str:
    """Days from `first` to `last`, both included: 'le 7 décembre 2026', 'du 7 au 8 décembre
    2026', 'du 30 novembre au 2 décembre 2026', 'du 31 décembre 2026 au 2 janvier 2027'."""
    if last <= first:
        return f"le {_day_month(first)} {first.year}"
    if first.year != last.year:
        return f"du {_day_month(first)} {first.year} au {_day_month(last)} {last.year}"
    if first.month != last.month:
        return f"du {_day_month(first)} au {_day_month(last)} {last.year}"
    start = "1er" if first.day == 1 else str(first.day)
    return f"du {start} au {_day_month(last)} {last.year}"


def period_text(
    start: date | datetime | str, end: date | datetime | str, pricing_unit: str = "day"
) -> str:
    """A half-open period [start, end) as people say it, the last day included: 'du 7 au 8
    décembre 2026'; with hours for hourly listings: 'lundi 7 décembre 2026 de 9 h à 12 h'.
    A page never shows the exclusive end the API uses."""
    if pricing_unit == "hour":
        begin, finish = _as_local(start), _as_local(end)
        if finish.date() == begin.date() or finish == datetime.combine(
            begin.date() + timedelta(days=1), time(0), finish.tzinfo
        ):
            until = "minuit" if finish.date() != begin.date() else clock_time(finish)
            return f"{long_date(begin)} de {clock_time(begin)} à {until}"
        return f"du {date_time(begin)} au {date_time(finish)}"
    first = _as_date(start)
    last = _as_date(end) - timedelta(days=1)
    return day_span(first, last)


def field_label(field: str | None) -> str:
    if not field:
        return ""
    head = field.split(".")[0]
    return FIELD_LABELS.get(head, head.replace("_", " ").capitalize())


class _Details(dict):
    """An error's details for its French sentence; a detail the error lacks reads as '?'."""

    def __missing__(self, key: str) -> str:
        return "?"


def _first_allowed(moment: str) -> str:
    """The first allowed day ('2026-12-09') or moment (with its time), as a page says it."""
    return long_date(moment) if "T" not in moment else date_time(moment)


def _said(error: dict[str, Any]) -> dict[str, str]:
    """An error's amounts and days, as a French sentence says them."""
    said = {}
    if error.get("balance_cents") is not None:
        said["balance"] = money(int(error["balance_cents"]))  # text, once through nameko
    for key in ("latest", "earliest"):
        if error.get(key):
            said[f"{key}_day"] = long_date(error[key])
    return said


def field_message(error: dict[str, Any]) -> str:
    """One entry of a problem's `errors`, in words."""
    kind = error.get("type", "")
    message = error.get("message", "")
    if kind in RULE_MESSAGES:
        said = RULE_MESSAGES[kind].format_map(_Details(error, message=message, **_said(error)))
        if error.get("first_allowed"):
            said = said.rstrip(".") + f" : au plus tôt {_first_allowed(error['first_allowed'])}."
        return said
    if kind in INPUT_MESSAGES:
        return INPUT_MESSAGES[kind]
    return message[:1].upper() + message[1:] if message else "Valeur refusée."


def errors_by_field(errors: list[dict[str, Any]]) -> dict[str, list[str]]:
    by_field: dict[str, list[str]] = {}
    for error in errors:
        field = (error.get("field") or "").split(".")[0] or "_"
        by_field.setdefault(field, []).append(field_message(error))
    return by_field


def explain_refusal(exc: ServiceError) -> list[str]:
    """Why a service said no, as sentences: a taken slot, a closure, broken rules."""
    code, detail, errors, extra = exc.code, exc.detail, exc.errors, exc.extra
    if code == "conflict" and "conflicting_period" in extra:
        period = extra["conflicting_period"]
        when = period_text(period["start"], period["end"])
        if "closed" in detail:
            reason = detail.split(": ", 1)[1] if ": " in detail else ""
            return [
                f"L'annonce est fermée {when}"
                + (f" ({reason})." if reason else ".")
                + " Choisissez d'autres dates."
            ]
        return [f"Ce créneau est déjà réservé {when}. Choisissez d'autres dates."]
    if code == "conflict" and "current_status" in extra:
        now = BOOKING_STATUS.get(extra["current_status"], extra["current_status"]).lower()
        return [f"Cette action n'est plus possible : la réservation est maintenant « {now} »."]
    if code == "conflict" and "duplicate_of" in extra:
        return [
            "Un paiement du même montant, à la même date et avec la même référence est déjà "
            "enregistré : cochez « second paiement identique » si c'en est bien un autre."
        ]
    if code == "conflict" and "statement_line_id" in extra:
        return [
            "Ce paiement vient d'un relevé bancaire : dissociez la ligne du relevé pour l'annuler."
        ]
    if code == "conflict":
        return ["Cette action n'est pas possible : " + _conflict_words(detail)]
    if code == "not_found":
        return ["Cet élément n'existe pas ou ne vous est pas accessible."]
    if code == "forbidden":
        return ["Votre rôle ne permet pas cette action."]
    if code == "unavailable":
        return ["Un service ne répond pas pour le moment. Réessayez dans un instant."]
    if errors:
        return [
            (f"{field_label(e.get('field'))} : " if e.get("field") else "") + field_message(e)
            for e in errors
        ]
    return [detail]


def _conflict_words(detail: str) -> str:
    lowered = detail.lower()
    if "only under an agreement" in lowered:
        return (
            "votre commune ne prête que sous une convention en vigueur, et aucune ne couvre "
            "cette demande : proposez une convention ponctuelle, que la commune emprunteuse "
            "signe ensuite."
        )
    if "agreement" in lowered and "already signed" in lowered:
        return "votre commune a déjà signé cette convention."
    if "an agreement" in lowered and "cannot be" in lowered:
        return "l'état de la convention ne le permet plus."
    if "withdrawn" in lowered:
        return "l'élément a été retiré."
    if "days" in lowered and ("free" in lowered or "available" in lowered):
        return "l'expert n'a pas assez de jours libres sur cette période."
    if "contested already" in lowered:
        return "cette ligne est déjà contestée : attendez la réponse du fournisseur."
    if "this dispute is" in lowered:
        return "cette contestation a déjà reçu une réponse."
    if "already reversed" in lowered:
        return "ce paiement est déjà annulé."
    if "invoice owes nothing" in lowered or "takes no payment" in lowered:
        return "la facture ne doit plus rien."
    if "not matched" in lowered:
        return "cette ligne du relevé n'est associée à aucune facture."
    return detail


# what a billing profile lacks to produce a valid invoice, by the cause billing names
PROFILE_CAUSES = {
    "siret_format": "le SIRET n'a pas 14 chiffres",
    "siret_checksum": "la clé du SIRET est fausse",
    "siret_siren": "le SIRET n'est pas celui de la commune",
    "service_code": "le code service exigé (Chorus Pro) manque",
}


def profile_problems(errors: list[dict]) -> list[str]:
    """What keeps a commune's billing profile from producing a valid invoice, in French:
    'Le profil de facturation du Chambon-Feugerolles : le SIRET n'est pas celui de la
    commune.'"""
    lines = []
    for error in errors:
        field = error.get("field") or ""
        parts = field.split(".")
        commune = parts[1] if len(parts) > 2 and parts[0] == "profiles" else None
        cause = PROFILE_CAUSES.get(error.get("cause", ""), error.get("message", ""))
        found = communes().get(commune) if commune else None
        owner = f" {of_commune(found.name)}" if found else ""
        lines.append(f"Profil de facturation{owner} : {cause}.")
    return lines
