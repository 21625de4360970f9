"""What the pages' forms send, the quote shown before sending, and the words said to people."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from contracts.errors import Conflict, InvalidInput
from gateway.pages.forms import (
    FormError,
    booking_period,
    cents_from_euros,
    euros_from_cents,
    preview_from_quote,
)
from gateway.pages.french import (
    counted,
    date_time,
    explain_refusal,
    free_from,
    km,
    long_date,
    money,
    month_name,
    number,
    period_text,
    profile_problems,
)


@pytest.mark.parametrize(
    ("text", "cents"),
    [("420", 42000), ("420,5", 42050), ("1 234,56", 123456), ("0.99", 99), ("15 €", 1500)],
)
def test_euros_are_read_exactly(text, cents):
    assert cents_from_euros(text, "rate") == cents


@pytest.mark.parametrize("text", ["abc", "1,234", "12,345", "--1", "1e3"])
def test_unreadable_amounts_are_refused_with_the_field(text):
    with pytest.raises(FormError) as refused:
        cents_from_euros(text, "rate_cents")
    assert refused.value.field == "rate_cents"


def test_amounts_round_trip_through_the_form():
    assert euros_from_cents(42000) == "420" and euros_from_cents(42050) == "420,50"
    assert cents_from_euros(euros_from_cents(123456), "x") == 123456


def test_a_day_booking_runs_from_the_first_to_the_day_after_the_last():
    start, end = booking_period("day", {"du": "2026-03-10", "au": "2026-03-11"})
    assert (start, end) == (date(2026, 3, 10), date(2026, 3, 12))
    with pytest.raises(FormError):
        booking_period("day", {"du": "2026-03-10", "au": "2026-03-09"})


def test_an_hour_booking_is_in_paris_time():
    start, end = booking_period(
        "hour", {"jour": "2026-07-01", "heure_debut": "09:00", "heure_fin": "12:00"}
    )
    assert start.isoformat() == "2026-07-01T09:00:00+02:00"
    assert (end - start) == timedelta(hours=3)


QUOTE = {
    "units": 2,
    "pricing_unit": "day",
    "unit_rate_cents": 42000,
    "quantity": 1,
    "rental_cents": 84000,
    "operator_cents": 64000,
    "amount_cents": 148000,
    "deposit_cents": 150000,
    "currency": "EUR",
}


def test_the_form_shows_the_services_quote():
    preview = preview_from_quote({"quote": QUOTE, "problems": [], "conflict": None})
    assert (preview.units, preview.unit, preview.rental_cents) == (2, "jour", 84000)
    assert preview.amount_cents == 148000 and preview.deposit_cents == 150000
    assert preview.problems == []


def test_the_form_says_in_words_what_would_refuse_the_request():
    preview = preview_from_quote(
        {
            "quote": QUOTE,
            "problems": [
                {"field": "quantity", "message": "this listing has 2", "type": "quantity"}
            ],
            "conflict": "1 of 1 already booked from …",
            "conflicting_period": {
                "start": "2026-03-02T23:00:00+00:00",
                "end": "2026-03-03T23:00:00+00:00",
            },
        }
    )
    text = " ".join(preview.problems)
    assert "déjà réservé le 3 mars 2026" in text
    assert len(preview.problems) == 2


def test_refusals_are_explained_in_words():
    taken = explain_refusal(
        Conflict(
            "1 of 1 already booked from …",
            conflicting_period={
                "start": "2026-03-09T23:00:00+00:00",
                "end": "2026-03-11T23:00:00+00:00",
            },
        )
    )
    assert taken == [
        "Ce créneau est déjà réservé du 10 au 11 mars 2026. Choisissez d'autres dates."
    ]
    closed = explain_refusal(
        Conflict(
            "The listing is closed from … to …: révision annuelle",
            conflicting_period={
                "start": "2026-03-09T23:00:00+00:00",
                "end": "2026-03-10T23:00:00+00:00",
            },
        )
    )
    assert closed[0].startswith("L'annonce est fermée le 10 mars 2026 (révision annuelle).")
    rules = explain_refusal(
        InvalidInput(
            "The request breaks the listing's rules",
            [{"field": "start", "message": "must be at least 14 days ahead", "type": "lead_time"}],
        )
    )
    assert rules == [
        "Début : Le prêteur demande d'être prévenu plus tôt : must be at least 14 days ahead."
    ]
    moved_on = explain_refusal(
        Conflict("A returned booking cannot approve", current_status="returned")
    )
    assert "« rendu »" in moved_on[0]


def test_money_and_dates_read_the_french_way():
    # babel's CLDR French: narrow no-break spaces between thousands, a no-break space
    assert money(123456789) == "1\u202f234\u202f567,89\u00a0€"
    assert money(-500) == "-5,00\u00a0€"
    assert number(Decimal("12345.50")) == "12\u202f345,5" and number(2.0) == "2"
    assert km(6.04) == "6,0" and km(1234.56) == "1\u202f234,6"
    assert counted(1, "facture émise", "factures émises") == "1 facture émise"
    assert counted(2, "facture émise", "factures émises") == "2 factures émises"
    assert counted(Decimal("1.5"), "jour") == "1,5 jour" and counted(0, "jour") == "0 jour"
    assert counted(2, "jour") == "2 jours"
    assert long_date(date(2026, 3, 1)) == "dimanche 1er mars 2026"
    assert period_text("2026-07-01T07:00:00+00:00", "2026-07-01T10:00:00+00:00", "hour") == (
        "mercredi 1er juillet 2026 de 9 h à 12 h"
    )


@pytest.mark.parametrize(
    ("start", "end", "unit", "said"),
    [
        # the manager's dashboard showed a 7–8 December loan as "07 → 09"
        (
            "2026-12-06T23:00:00+00:00",
            "2026-12-08T23:00:00+00:00",
            "day",
            "du 7 au 8 décembre 2026",
        ),
        ("2026-12-06T23:00:00+00:00", "2026-12-07T23:00:00+00:00", "day", "le 7 décembre 2026"),
        (
            "2026-11-29T23:00:00+00:00",
            "2026-12-02T23:00:00+00:00",
            "day",
            "du 30 novembre au 2 décembre 2026",
        ),
        (
            "2026-12-30T23:00:00+00:00",
            "2027-01-02T23:00:00+00:00",
            "day",
            "du 31 décembre 2026 au 2 janvier 2027",
        ),
        ("2026-02-28T23:00:00+00:00", "2026-03-02T23:00:00+00:00", "day", "du 1er au 2 mars 2026"),
        # the night of the spring DST change: a Paris day of 23 hours is still one day
        ("2026-03-28T23:00:00+00:00", "2026-03-29T22:00:00+00:00", "day", "le 29 mars 2026"),
        # engagements: dates, the end excluded
        (date(2026, 12, 7), date(2026, 12, 12), "day", "du 7 au 11 décembre 2026"),
        (
            "2026-12-07T21:00:00+00:00",
            "2026-12-07T23:00:00+00:00",
            "hour",
            "lundi 7 décembre 2026 de 22 h à minuit",
        ),
        (
            "2026-12-07T21:00:00+00:00",
            "2026-12-08T01:30:00+00:00",
            "hour",
            "du lundi 7 décembre 2026 à 22 h au mardi 8 décembre 2026 à 2 h 30",
        ),
    ],
)
def test_periods_read_with_their_last_day_included(start, end, unit, said):
    assert period_text(start, end, unit) == said


def test_a_moment_and_a_month_read_as_said():
    assert date_time("2026-12-07T08:05:00+00:00") == "lundi 7 décembre 2026 à 9 h 05"
    # 23:30 UTC is already the next day in Paris
    assert date_time("2026-12-06T23:30:00+00:00") == "lundi 7 décembre 2026 à 0 h 30"
    assert month_name("2026-12") == "décembre 2026"


def test_the_rules_about_time_are_said_in_french_with_the_first_allowed_moment():
    from gateway.pages.french import field_message

    assert field_message(
        {
            "type": "lead_time",
            "message": "must be at least 2 days ahead: from 2026-12-09",
            "first_allowed": "2026-12-09",
        }
    ) == (
        "Le prêteur demande d'être prévenu plus tôt : must be at least 2 days ahead: from "
        "2026-12-09 : au plus tôt mercredi 9 décembre 2026."
    )
    assert field_message(
        {"type": "hand_over_too_early", "message": "…", "first_allowed": "2026-12-09"}
    ) == (
        "Le matériel se remet à partir du premier jour de la réservation : au plus tôt "
        "mercredi 9 décembre 2026."
    )
    assert (
        field_message(
            {"type": "in_the_past", "message": "…", "first_allowed": "2026-12-07T09:00:00+01:00"}
        )
        == "La date de début est déjà passée : au plus tôt lundi 7 décembre 2026 à 9 h."
    )
    assert field_message({"type": "one_day_per_date", "message": "…", "days_left": "0.5"}) == (
        "Une personne travaille au plus une journée par date, toutes missions comprises : "
        "il reste 0.5 jour ce jour-là."
    )
    assert field_message(
        {
            "type": "exceptional_work_required",
            "message": "…",
            "day": "samedi 12 décembre 2026",
            "why": "samedi",
        }
    ) == (
        "Le samedi 12 décembre 2026 n'est pas un jour ouvré (samedi) : cochez « travail "
        "exceptionnel » et dites pourquoi."
    )


def test_invoice_lines_say_their_units_and_days_in_french():
    from gateway.pages.french import quantity_with_unit, served_days

    assert quantity_with_unit("2", "DAY") == "2 jours"
    assert quantity_with_unit("0.5", "DAY") == "0,5 jour"
    assert quantity_with_unit("1", "C62") == "1 unité"
    assert quantity_with_unit("4", "HUR") == "4 heures"
    assert served_days("2026-12-07", "2026-12-08") == "du 7 au 8 décembre 2026"
    assert served_days("2026-12-07", "2026-12-07") == "le 7 décembre 2026"
    assert served_days(None, None) == ""


def test_a_profile_that_holds_invoices_is_explained_in_french():
    errors = [
        {"field": "profiles.42044.siret", "cause": "siret_siren", "message": "…"},
        {"field": "profiles.42189.service_code", "cause": "service_code", "message": "…"},
        {"field": "profiles.99999.siret", "cause": "unknown", "message": "a SIRET has 14 digits"},
    ]
    assert profile_problems(errors) == [
        "Profil de facturation du Chambon-Feugerolles : le SIRET n'est pas celui de la commune.",
        "Profil de facturation de Roche-la-Molière : le code service exigé (Chorus Pro) manque.",
        "Profil de facturation : a SIRET has 14 digits.",
    ]


def test_when_a_listing_is_free_soonest_reads_in_french():
    today = date(2026, 12, 7)
    assert free_from("2026-12-06T23:00:00+00:00", today) == "aujourd'hui"
    assert free_from("2026-12-09T23:00:00+00:00", today) == "le jeudi 10 décembre 2026"
    # a booking given back at 18:00 Paris time
    assert free_from("2026-12-10T17:00:00+00:00", today) == ("le jeudi 10 décembre 2026 à 18 h")
