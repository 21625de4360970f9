"""The activity report's figures: loans inside a period, by counterpart; buy or borrow by
its documented formula; items' use; the CSV read back and the PDF's text."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from pypdf import PdfReader

from gateway.pages.french import money
from gateway.pages.reports import activity, as_csv, as_pdf, buy_or_borrow, days_within
from tests.support.rendering import assert_drawn

HERE, CHAMBON, FIRMINY = "42218", "42044", "42095"


def loan(lender, borrower, start, end, amount, status="returned", unit="day", listing="l-1"):
    return {
        "listing_id": listing,
        "listing_title": f"Annonce {listing}",
        "status": status,
        "lender_commune": lender,
        "borrower_commune": borrower,
        "start": start,
        "end": end,
        "quote": {"pricing_unit": unit, "amount_cents": amount},
    }


YEAR = (date(2026, 1, 1), date(2026, 12, 31))


def test_a_loan_counts_its_paris_days_inside_the_period():
    # 30 Dec 23:00 UTC is 31 Dec in Paris: a day loan of 31 Dec and 1 Jan (end exclusive)
    across = loan(HERE, CHAMBON, "2025-12-30T23:00:00+00:00", "2026-01-01T23:00:00+00:00", 0)
    assert days_within(across, *YEAR) == 1  # 1 January only
    hours = loan(
        HERE, CHAMBON, "2026-03-02T08:00:00+00:00", "2026-03-02T11:00:00+00:00", 0, unit="hour"
    )
    assert days_within(hours, *YEAR) == 1


def test_what_was_lent_and_borrowed_by_counterpart():
    bookings = [
        loan(HERE, CHAMBON, "2026-02-01T23:00:00+00:00", "2026-02-03T23:00:00+00:00", 84000),
        loan(HERE, CHAMBON, "2026-05-01T22:00:00+00:00", "2026-05-02T22:00:00+00:00", 42000),
        loan(
            HERE,
            FIRMINY,
            "2026-06-01T22:00:00+00:00",
            "2026-06-04T22:00:00+00:00",
            9000,
            listing="l-2",
        ),
        loan(
            CHAMBON,
            HERE,
            "2026-07-01T22:00:00+00:00",
            "2026-07-11T22:00:00+00:00",
            30000,
            listing="l-9",
        ),
        # requested, refused or cancelled: no loan took place
        loan(
            HERE,
            FIRMINY,
            "2026-06-01T22:00:00+00:00",
            "2026-06-04T22:00:00+00:00",
            1,
            status="cancelled",
        ),
        # another year
        loan(HERE, FIRMINY, "2025-06-01T22:00:00+00:00", "2025-06-04T22:00:00+00:00", 1),
    ]
    report = activity(bookings, HERE, *YEAR)
    assert [(r.commune, r.loans, r.days, r.amount_cents) for r in report.lent] == [
        (CHAMBON, 2, 3, 126000),
        (FIRMINY, 1, 3, 9000),
    ]
    assert [(r.commune, r.loans, r.days, r.amount_cents) for r in report.borrowed] == [
        (CHAMBON, 1, 10, 30000)
    ]
    assert report.total("lent", "amount_cents") == 135000
    assert report.borrowed_by_listing == {"l-9": (10, 30000)}
    first = report.items[0]
    assert (first.listing_id, first.loans, first.days, first.days_in_period) == ("l-1", 2, 3, 365)
    assert first.share == 3 / 365


def test_buy_or_borrow_follows_its_formula():
    # 20 days of snow clearing borrowed over a year for 8,000 €: borrowing is 8,000 € a year;
    # a 40,000 € machine over 8 years with 1,500 € upkeep a year costs 6,500 €: buy
    (verdict,) = buy_or_borrow(
        {"deneigement": (20, 800_000), "evenementiel": (3, 50_000)},
        365,
        {"deneigement": (4_000_000, 150_000)},
        lifetime_years=8,
        min_days=10,
    )
    assert verdict.category == "deneigement"  # 3 days of events: under the threshold
    assert verdict.borrowing_per_year_cents == 800_000
    assert verdict.owning_per_year_cents == 650_000 and verdict.buy is True
    # half a year's spending is twice as much a year; no price, no verdict
    (half,) = buy_or_borrow({"deneigement": (20, 800_000)}, 182, {})
    assert half.borrowing_per_year_cents == 1_604_396 and half.buy is None


def test_the_csv_reads_back_and_the_pdf_states_the_totals():
    bookings = [
        loan(HERE, CHAMBON, "2026-02-01T23:00:00+00:00", "2026-02-03T23:00:00+00:00", 84000),
        loan(
            FIRMINY,
            HERE,
            "2026-03-01T23:00:00+00:00",
            "2026-03-02T23:00:00+00:00",
            12345,
            listing="l-3",
        ),
    ]
    report = activity(bookings, HERE, *YEAR)
    names = {CHAMBON: "Le Chambon-Feugerolles", FIRMINY: "Firminy"}
    rows = list(csv.reader(io.StringIO(as_csv(report, names)), delimiter=";"))
    assert rows[0] == ["section", "commune", "code_insee", "prets", "jours", "montant_eur"]
    assert ["prete", "Le Chambon-Feugerolles", CHAMBON, "1", "2", "840.00"] in rows
    assert ["total_prete", "", "", "1", "2", "840.00"] in rows
    assert ["emprunte", "Firminy", FIRMINY, "1", "1", "123.45"] in rows
    document = as_pdf(report, names, "Activité de Saint-Étienne en 2026", money)
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)
    assert "Activité de Saint-Étienne en 2026" in text
    assert "1 prêt · 2 jours · total 840,00" in text.replace("\u202f", " ").replace("\xa0", " ")
    assert "Firminy" in text and "123,45" in text
    # rendered by poppler as a reader sees it: the totals are drawn, not only in the text
    assert_drawn(
        document,
        "Activité de Saint-Étienne en 2026",
        "Prêté : 1 prêt · 2 jours · total 840,00 €",
        "Emprunté : 1 prêt · 1 jour · total 123,45 €",
    )


@pytest.mark.parametrize("status", ["requested", "approved", "rejected", "expired"])
def test_only_loans_that_took_place_count(status):
    bookings = [
        loan(
            HERE,
            CHAMBON,
            "2026-02-01T23:00:00+00:00",
            "2026-02-03T23:00:00+00:00",
            1,
            status=status,
        )
    ]
    assert activity(bookings, HERE, *YEAR).lent == []
