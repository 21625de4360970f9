"""The accountant's export, pure: documents become titres and mandats on M57 accounts, in
one CSV that the same documents always write alike."""

from __future__ import annotations

import csv
import io
from datetime import date
from types import SimpleNamespace

import pytest

from contracts.accounting import (
    PERSONNEL,
    UNKNOWN,
    ExportRequest,
    ImputationInput,
    Operation,
    Side,
)
from contracts.errors import InvalidInput, validated
from services.billing import accounting
from services.billing.accounting import Counterparty, Document, Imputed

LENDER = Counterparty("42218", "Saint-Étienne", "21420218600017")
BORROWER = Counterparty("42044", "Le Chambon-Feugerolles", "21420044600011")
DEFAULTS = accounting.imputations_of({})


def document(**changes) -> Document:
    fields = dict(
        credit_note=False,
        issued=True,
        number="42218-2026-000001",
        issue_date=date(2026, 12, 3),
        invoice_number="42218-2026-000001",
        whole_invoice=False,
        counterparty=BORROWER,
        lines=(("deneigement", 84000), ("deneigement", 15000), (PERSONNEL, 45050)),
        vat_cents=0,
        engagement_number="EJ-2026-001",
        agreement_reference="CONV-2026-014",
    )
    return Document(**(fields | changes))


def test_an_issued_invoice_is_a_titre_per_account_with_its_references():
    rows = accounting.rows_of([document()], DEFAULTS)
    assert [(r.side, r.operation, r.chapter, r.account, r.net_cents) for r in rows] == [
        (Side.TITRE, Operation.TITRE, "70", "7083", 99000),
        (Side.TITRE, Operation.TITRE, "70", "70848", 45050),
    ]
    assert {(r.engagement_number, r.agreement_reference) for r in rows} == {
        ("EJ-2026-001", "CONV-2026-014")
    }
    assert {r.counterparty_siret for r in rows} == {BORROWER.siret}


def test_the_same_invoice_received_is_a_mandat_on_expense_accounts():
    received = document(issued=False, counterparty=LENDER)
    rows = accounting.rows_of([received], DEFAULTS)
    assert [(r.side, r.operation, r.chapter, r.account) for r in rows] == [
        (Side.MANDAT, Operation.MANDAT, "011", "6135"),
        (Side.MANDAT, Operation.MANDAT, "012", "6218"),
    ]


def test_vat_is_shared_to_the_cent_over_the_accounts():
    rows = accounting.rows_of([document(vat_cents=28811)], DEFAULTS)
    assert sum(r.vat_cents for r in rows) == 28811
    assert [r.vat_cents for r in rows] == [19801, 9010]  # 0.69 beats 0.30
    assert all(r.total_cents == r.net_cents + r.vat_cents for r in rows)
    assert accounting.shares(100, [1, 1, 1]) == [34, 33, 33]
    assert accounting.shares(5, [0, 0]) == [5, 0]


def test_credit_notes_reduce_or_cancel_the_titre_and_come_off_its_total():
    invoice = document(lines=(("salles", 10000),))
    partial = document(credit_note=True, number="42218-AV-2026-000001", lines=(("salles", 1000),))
    whole = document(
        credit_note=True,
        number="42218-AV-2026-000002",
        lines=(("salles", 10000),),
        whole_invoice=True,
    )
    rows = accounting.rows_of([invoice, partial, whole], DEFAULTS)
    assert [(r.operation, r.chapter, r.account) for r in rows] == [
        (Operation.TITRE, "75", "752"),
        (Operation.REDUCTION_TITRE, "75", "752"),
        (Operation.ANNULATION_TITRE, "75", "752"),
    ]
    assert accounting.signed_total(rows, Side.TITRE) == 10000 - 1000 - 10000
    received = accounting.rows_of([document(credit_note=True, issued=False)], DEFAULTS)
    assert {r.operation for r in received} == {Operation.REDUCTION_MANDAT}


def test_a_configured_imputation_and_budget_replace_the_default():
    configured = {("deneigement", Side.TITRE): Imputed("70", "70688", "Viabilité hivernale")}
    rows = accounting.rows_of([document()], accounting.imputations_of(configured))
    assert [(r.budget, r.account) for r in rows] == [
        ("Viabilité hivernale", "70688"),
        ("principal", "70848"),
    ]


def test_lines_take_their_listing_category_experts_are_staff_and_the_rest_is_other():
    assert accounting.category_of("rental", "salles") == "salles"
    assert accounting.category_of("damage", "deneigement") == "deneigement"
    assert accounting.category_of("consulting", None) == PERSONNEL
    assert accounting.category_of("rental", None) == UNKNOWN


def test_the_file_is_the_same_bytes_for_the_same_rows_in_french_notation():
    rows = accounting.rows_of([document(vat_cents=28811)], DEFAULTS)
    content = accounting.csv_of(rows)
    assert content == accounting.csv_of(accounting.rows_of([document(vat_cents=28811)], DEFAULTS))
    read = list(csv.DictReader(io.StringIO(content.decode()), delimiter=";"))
    assert read[0]["montant_ht"] == "990,00" and read[0]["date_piece"] == "03/12/2026"
    assert read[1]["montant_ttc"] == "540,60"
    assert read[0]["tiers_siret"] == BORROWER.siret and read[0]["sens"] == "titre"
    assert read[0]["reference_convention"] == "CONV-2026-014"
    checksum = accounting.checksum_of(content)
    assert checksum[:12] in accounting.filename_of("42218", "2026-12", checksum)


def test_changes_since_name_the_rows_added_and_removed():
    before = accounting.rows_of([document()], DEFAULTS)
    note = document(credit_note=True, number="42218-AV-2026-000001", lines=(("salles", 100),))
    after = accounting.rows_of([document(), note], DEFAULTS)
    changes = accounting.changes_since(before, after)
    assert [(c.change, c.row.document_number) for c in changes] == [
        ("added", "42218-AV-2026-000001")
    ]
    assert accounting.changes_since(after, after) == []


@pytest.mark.parametrize(
    ("item", "rule", "field"),
    [
        (dict(account="7084"), "not_an_m57_account", "items.0.account"),
        (dict(account="6135", chapter="70"), "account_not_in_chapter", "items.0.chapter"),
        (dict(side="mandat"), "account_of_the_other_side", "items.0.account"),
        (dict(category="chasse"), "unknown_category", "items.0.category"),
    ],
)
def test_an_imputation_outside_the_m57_chart_is_refused_naming_the_rule(item, rule, field):
    asked = ImputationInput(
        **(dict(category="deneigement", side="titre", chapter="70", account="7083") | item)
    )
    with pytest.raises(InvalidInput) as refused:
        accounting.ensure_imputations([asked])
    assert [(e["type"], e["field"]) for e in refused.value.errors] == [(rule, field)]


def test_every_default_is_an_account_of_the_chart_on_its_side():
    items = [
        ImputationInput(category=c, side=s, chapter=i.chapter, account=i.account)
        for (c, s), i in DEFAULTS.items()
    ]
    assert accounting.imputation_errors(items) == []


def test_a_month_before_2000_is_refused_naming_the_period():
    with pytest.raises(InvalidInput) as refused:
        validated(ExportRequest, {"period": "0000-01"})
    assert [e["field"] for e in refused.value.errors] == ["period"]
    assert validated(ExportRequest, {"period": "2000-01"}).period == "2000-01"


def _invoice_row(**changes) -> SimpleNamespace:
    """An invoice row as the export reads it (no VAT: O)."""
    party = {"insee_code": "", "name": "", "siret": ""}
    fields = dict(
        supplier_commune="42218",
        customer_commune="42044",
        number="42218-2026-000001",
        issue_date=date(2026, 12, 3),
        supplier=party | {"insee_code": "42218", "name": "Saint-Étienne", "siret": LENDER.siret},
        customer=party
        | {"insee_code": "42044", "name": "Le Chambon-Feugerolles", "siret": BORROWER.siret},
        vat_cents=0,
        total_cents=129050,
        order_reference="EJ-2026-001",
        agreement_reference="CONV-2026-014",
    )
    return SimpleNamespace(**(fields | changes))


SOURCES = {
    2: ("consulting", 45050, None),
    1: ("rental", 84000, "deneigement"),
    3: ("damage", 0, "salles"),
}


def test_an_invoice_reads_from_each_side_with_its_lines_in_order():
    invoice = _invoice_row()
    issued = accounting.invoice_document(invoice, "42218", SOURCES)
    assert (issued.issued, issued.credit_note, issued.whole_invoice) == (True, False, False)
    assert issued.counterparty == BORROWER
    assert issued.lines == (("deneigement", 84000), (PERSONNEL, 45050), ("salles", 0))
    assert (issued.number, issued.invoice_number) == ("42218-2026-000001",) * 2
    assert (issued.issue_date, issued.vat_cents) == (date(2026, 12, 3), 0)
    assert (issued.engagement_number, issued.agreement_reference) == (
        "EJ-2026-001",
        "CONV-2026-014",
    )
    received = accounting.invoice_document(invoice, "42044", SOURCES)
    assert (received.issued, received.counterparty) == (False, LENDER)


def test_a_credit_note_reads_its_lines_on_the_categories_of_the_lines_it_credits():
    invoice = _invoice_row()
    note = SimpleNamespace(
        supplier_commune="42218",
        number="42218-AV-2026-000001",
        issue_date=date(2026, 12, 9),
        total_cents=5000,
        vat_cents=1000,
        lines=[
            {"invoice_line": 1, "amount_cents": 1000, "kind": "rental"},
            # a line the invoice does not list (never written so): known by its kind alone
            {"invoice_line": 9, "amount_cents": 4000, "kind": "consulting"},
            {"invoice_line": 8, "amount_cents": 10, "kind": "rental"},
        ],
    )
    issued = accounting.credit_note_document(note, invoice, "42218", SOURCES)
    assert issued.lines == (("deneigement", 1000), (PERSONNEL, 4000), (UNKNOWN, 10))
    assert (issued.vat_cents, issued.engagement_number) == (1000, "EJ-2026-001")
    assert (issued.credit_note, issued.issued, issued.whole_invoice) == (True, True, False)
    assert (issued.number, issued.invoice_number) == ("42218-AV-2026-000001", invoice.number)
    assert (issued.issue_date, issued.counterparty) == (date(2026, 12, 9), BORROWER)
    assert issued.agreement_reference == "CONV-2026-014"
    whole = SimpleNamespace(**(vars(note) | {"total_cents": 129050}))
    received = accounting.credit_note_document(whole, invoice, "42044", SOURCES)
    assert (received.whole_invoice, received.issued, received.counterparty) == (
        True,
        False,
        LENDER,
    )
    assert accounting.operation_of(received) == Operation.ANNULATION_MANDAT


def test_shares_go_to_the_largest_remainders():
    assert accounting.shares(1, [1, 2]) == [0, 1]
    assert accounting.shares(3, [5, 2]) == [2, 1]  # 2.14 and 0.86: the remainder decides
    assert accounting.shares(7, []) == []


def test_titres_come_before_mandats_whatever_their_dates():
    received = document(issued=False, issue_date=date(2026, 12, 1), number="42044-2026-000001")
    issued = document(issue_date=date(2026, 12, 20), lines=(("salles", 100),))
    rows = accounting.rows_of([received, issued], DEFAULTS)
    assert [r.side for r in rows] == [Side.TITRE, Side.MANDAT, Side.MANDAT]


def test_the_file_ends_its_lines_as_spreadsheets_expect_and_names_itself_by_checksum():
    content = accounting.csv_of(accounting.rows_of([document()], DEFAULTS))
    assert content.count(b"\r\n") == 3 and content.endswith(b"\r\n")
    row = content.decode().split("\r\n")[1].split(";")
    assert row[:5] == ["titre", "titre", "principal", "70", "7083"]
    assert row[12:15] == ["990,00", "0,00", "990,00"]
    assert accounting.filename_of("42218", "2026-12", "a" * 64) == (
        "mutualis-42218-2026-12-titres-mandats-aaaaaaaaaaaa.csv"
    )
    empty = accounting.csv_of(accounting.rows_of([document(engagement_number=None)], DEFAULTS))
    assert empty.decode().split("\r\n")[1].split(";")[15] == ""


def test_a_row_gone_since_is_said_removed():
    before = accounting.rows_of([document()], DEFAULTS)
    changes = accounting.changes_since(before, before[1:])
    assert [(c.change, c.row.account) for c in changes] == [("removed", "7083")]


def test_refusals_name_the_account_and_the_rule_in_their_message():
    asked = [
        ImputationInput(category="salles", side="titre", chapter="70", account="7084"),
        ImputationInput(category="salles", side="titre", chapter="011", account="6135"),
        ImputationInput(category="chasse", side="mandat", chapter="011", account="6135"),
    ]
    with pytest.raises(InvalidInput) as refused:
        accounting.ensure_imputations(asked)
    assert "M57" in refused.value.detail
    assert [(e["field"], e["type"]) for e in refused.value.errors] == [
        ("items.0.account", "not_an_m57_account"),
        ("items.1.account", "account_of_the_other_side"),
        ("items.1", "duplicate_imputation"),
        ("items.2.category", "unknown_category"),
    ]
    messages = [e["message"] for e in refused.value.errors]
    assert "7084" in messages[0] and "6135" in messages[1] and "chasse" in messages[3]
    assert messages[2] == "given twice"
    wrong_chapter = ImputationInput(category="salles", side="titre", chapter="70", account="752")
    (error,) = accounting.imputation_errors([wrong_chapter])
    assert "752" in error["message"] and "75" in error["message"]
