"""The accountant's export on PostgreSQL (and SQLite): a month with an invoice issued, a
partial credit note and an invoice received becomes titres, a réduction de titre and a
mandat on the M57 accounts of each line's listing category; exporting it again gives the
same file and says so; a credit note issued since shows as what changed; an imputation
outside the M57 chart is refused and nothing is stored."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest

from contracts.bookings import BookingSnapshot, BookingStatus, Quote
from contracts.clock import PARIS, paris_today
from contracts.consultants import TimesheetApproval
from contracts.errors import InvalidInput
from contracts.listings import ListingPublished
from infra.messaging_tables import metadata as messaging_metadata
from infra.messaging_tables import requests_metadata
from services.billing import domain
from services.billing.models import metadata as billing_metadata
from services.billing.service import charge_at_commit
from tests.integration.billing_support import (
    billing_database,
    billing_service,
    caller,
    declare_profiles,
)
from tests.integration.messaging import listing_published
from tests.support.schema import differences

LENDER, BORROWER = "42218", "42044"  # Saint-Étienne, Le Chambon-Feugerolles
PLOUGH, HALL = str(uuid.uuid4()), str(uuid.uuid4())
OPERATOR = caller(LENDER, "operator")


def _paris(day, hour: int) -> datetime:
    return datetime.combine(day, time(hour), PARIS)


def _loan(listing_id: str, lender: str, borrower: str, cents: int, agreement=None):
    today = paris_today()
    return BookingSnapshot(
        booking_id=str(uuid.uuid4()),
        listing_id=listing_id,
        listing_title="Chasse-neige" if listing_id == PLOUGH else "Salle des fêtes",
        status=BookingStatus.RETURNED,
        lender_commune=lender,
        borrower_commune=borrower,
        start=_paris(today, 0),
        end=_paris(today + timedelta(days=1), 0),
        quantity=1,
        with_operator=False,
        quote=Quote(
            units=1,
            pricing_unit="day",
            unit_rate_cents=cents,
            quantity=1,
            rental_cents=cents,
            operator_cents=0,
            amount_cents=cents,
            deposit_cents=0,
        ),
        checked_out_at=_paris(today, 8),
        returned_at=_paris(today, 9),
        agreement_reference=agreement,
    )


def _expert_day() -> TimesheetApproval:
    return TimesheetApproval(
        engagement_id="e-1",
        timesheet_id=str(uuid.uuid4()),
        consultant_id="c-1",
        consultant_name="Claire Martin",
        lender_commune=LENDER,
        borrower_commune=BORROWER,
        work_date=paris_today(),
        days=Decimal(1),
        day_rate_cents=45000,
        amount_cents=45000,
    )


@pytest.fixture
def month(database_url):
    """Saint-Étienne lends its plough (snow clearing) under an agreement and an expert's day
    to Le Chambon-Feugerolles, which lends it its hall; the month is invoiced and Saint-
    Étienne credits part of the plough's invoice."""
    db = billing_database(database_url)
    declare_profiles(db, [LENDER, BORROWER])
    service = billing_service(db)
    hall = listing_published(owner=BORROWER, listing_id=HALL).payload
    hall = ListingPublished.new(hall.model_copy(update={"category": "salles"}), producer="t")
    service.keep_listing_categories([listing_published(owner=LENDER, listing_id=PLOUGH), hall])
    now = _paris(paris_today(), 10)
    with db.transaction() as tx:
        drafts = domain.charges_for_return(_loan(PLOUGH, LENDER, BORROWER, 84000, "CONV-1"), now)
        drafts += domain.charges_for_timesheet(_expert_day(), now)
        drafts += domain.charges_for_return(_loan(HALL, BORROWER, LENDER, 30000), now)
        charge_at_commit(tx, drafts, str(uuid.uuid4()))
    run = service.run_billing(OPERATOR, {"period": domain.period_of(paris_today())})
    by_line = {
        (i["supplier_commune"], i["total_cents"]): i for i in run["invoices"]
    }  # no VAT declared: totals are the lines
    plough = by_line[(LENDER, 84000)]
    finance = caller(LENDER, "finance")
    service.issue_credit_note(
        finance, plough["id"], {"reason": "Panne", "lines": [{"line": 1, "amount_cents": 4000}]}
    )
    return service, by_line


def test_a_month_is_titres_a_reduction_and_a_mandat_exported_again_the_same(month):
    service, invoices = month
    finance, period = caller(LENDER, "finance"), domain.period_of(paris_today())
    first = service.export_accounts(finance, {"period": period})
    rows = [
        (r["operation"], r["chapter"], r["account"], r["total_cents"], r["agreement_reference"])
        for r in first["items"]
    ]
    assert sorted(rows) == sorted(
        [
            ("titre", "70", "7083", 84000, "CONV-1"),
            ("titre", "70", "70848", 45000, None),
            ("reduction_titre", "70", "7083", 4000, "CONV-1"),
            ("mandat", "011", "6132", 30000, None),
        ]
    )
    assert [r["side"] for r in first["items"]] == ["titre"] * 3 + ["mandat"]
    assert {r["counterparty_insee"] for r in first["items"]} == {BORROWER}
    assert (first["titres_cents"], first["mandats_cents"]) == (84000 + 45000 - 4000, 30000)
    assert first["previous"] == [] and first["same_as_previous"] is None
    assert first["checksum"][:12] in first["filename"]

    again = service.export_accounts(finance, {"period": period})
    assert (again["checksum"], again["filename"]) == (first["checksum"], first["filename"])
    assert again["same_as_previous"] is True and again["changes"] == []
    assert [p["id"] for p in again["previous"]] == [first["id"]]
    recorded = service.get_accounting_export(finance, again["id"])
    assert recorded["content"].startswith("sens;operation;budget;chapitre;compte")
    assert [e["id"] for e in service.list_accounting_exports(finance)["items"]] == [
        again["id"],
        first["id"],
    ]

    expert = invoices[(LENDER, 45000)]
    service.issue_credit_note(finance, expert["id"], {"reason": "Mission annulée"})
    third = service.export_accounts(finance, {"period": period})
    assert third["same_as_previous"] is False and third["checksum"] != first["checksum"]
    assert [
        (c["change"], c["row"]["operation"], c["row"]["account"]) for c in third["changes"]
    ] == [("added", "annulation_titre", "70848")]


def test_the_borrower_exports_the_same_invoices_as_mandats_on_its_accounts(month):
    service, _ = month
    finance = caller(BORROWER, "finance")
    service.put_imputations(
        finance,
        {
            "items": [
                {"category": "personnel", "side": "mandat", "chapter": "011", "account": "611"}
            ]
        },
    )
    export = service.export_accounts(finance, {"period": domain.period_of(paris_today())})
    rows = sorted((r["operation"], r["account"], r["total_cents"]) for r in export["items"])
    assert rows == [
        ("mandat", "611", 45000),
        ("mandat", "6135", 84000),
        ("reduction_mandat", "6135", 4000),
        ("titre", "752", 30000),
    ]
    siret = service.get_profile(caller(LENDER, "finance"))["siret"]
    assert {r["counterparty_siret"] for r in export["items"]} == {siret}


@pytest.mark.parametrize(
    ("item", "rule"),
    [
        ({"chapter": "70", "account": "7084"}, "not_an_m57_account"),
        ({"chapter": "011", "account": "7083"}, "account_not_in_chapter"),
        ({"chapter": "011", "account": "6135", "side": "titre"}, "account_of_the_other_side"),
    ],
)
def test_an_imputation_that_is_not_an_m57_account_is_refused_and_nothing_stored(month, item, rule):
    service, _ = month
    finance = caller(LENDER, "finance")
    before = service.get_imputations(finance)
    asked = {"category": "deneigement", "side": "mandat"} | item
    good = {"category": "salles", "side": "titre", "chapter": "70", "account": "7083"}
    with pytest.raises(InvalidInput) as refused:
        service.put_imputations(finance, {"items": [good, asked]})
    assert [e["type"] for e in refused.value.errors] == [rule]
    assert service.get_imputations(finance) == before
    assert not any(i["configured"] for i in before["items"])


def test_the_migrated_billing_schema_is_the_models(pg_database):
    """Migrations 0009 and 0010 create what the models say, nothing more or less."""
    billing_database(pg_database.url)
    assert (
        differences(pg_database.url, billing_metadata, messaging_metadata, requests_metadata) == []
    )
