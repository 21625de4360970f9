"""Generated invoices and credit notes pass the UBL 2.1 XSD and every fatal EN 16931 rule,
carry the identifiers Chorus Pro expects, and print as readable PDFs."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest
from lxml import etree
from pypdf import PdfReader

from contracts.billing import (
    CreditNoteLineView,
    CreditNoteView,
    InvoiceLineView,
    InvoiceView,
    Party,
    PostalAddress,
    Totals,
    VatRegime,
)
from contracts.french import commune_title
from services.billing import cii as cii_module
from services.billing import domain, pdf, ubl
from services.billing.validation import embedded_cii, factur_x_problems, problems, rule_failures

NS = {"cac": ubl.CAC, "cbc": ubl.CBC}


def party(insee: str, siren: str, name: str, **extra) -> Party:
    return Party(
        insee_code=insee,
        name=name,
        legal_name=commune_title(name),
        siren=siren,
        siret=domain.siret_for(siren),
        address=PostalAddress(street="Hôtel de ville", postal_code="42000", city=name),
        **extra,
    )


SUPPLIER = party(
    "42044",
    "214200446",
    "Le Chambon-Feugerolles",
    iban="FR283000100794C420440000028",
    bic="BDFEFRPPCCT",
)
CUSTOMER = party(
    "42218", "214202186", "Saint-Étienne", service_code="DIRFIN", engagement_number="EJ-42"
)


def invoice_of(
    lines: list[tuple[str, Decimal, str, int]],
    regime: VatRegime = VatRegime.NOT_SUBJECT,
    customer: Party = CUSTOMER,
    order_reference: str | None = "EJ-42",
) -> InvoiceView:
    category, rate = domain.vat_of(regime)
    supplier = SUPPLIER
    if regime == VatRegime.STANDARD:
        supplier = supplier.model_copy(update={"vat_number": domain.french_vat_number("214200446")})
    views = [
        InvoiceLineView(
            line=n,
            charge_id=f"c{n}",
            kind=kind,
            description=f"Ligne {n} : {kind}",
            quantity=quantity,
            unit=unit,
            unit_price_cents=price,
            amount_cents=domain.round_cents(quantity * price),
            vat_category=category,
            vat_rate=rate,
            source_reference=f"booking:b:{n}",
        )
        for n, (kind, quantity, unit, price) in enumerate(lines, start=1)
    ]
    totals = domain.totals_of((v.amount_cents, category, rate) for v in views)
    return InvoiceView(
        id="i-1",
        number="42044-2026-000001",
        period="2026-02",
        issue_date=date(2026, 3, 2),
        due_date=date(2026, 4, 1),
        supplier=supplier,
        customer=customer,
        buyer_reference=customer.service_code,
        order_reference=order_reference,
        lines=views,
        totals=Totals(
            net_cents=totals.net_cents, vat_cents=totals.vat_cents, total_cents=totals.total_cents
        ),
        vat_breakdown=totals.breakdown,
        status="issued",
        balance_cents=totals.total_cents,
    )


def credit_note_of(invoice: InvoiceView, credits: list[tuple[int, int]]) -> CreditNoteView:
    lines = {line.line: line for line in invoice.lines}
    chosen = [(lines[n], cents) for n, cents in credits]
    totals = domain.totals_of((c, line.vat_category, line.vat_rate) for line, c in chosen)
    return CreditNoteView(
        id="cn-1",
        number="42044-AV-2026-000001",
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        invoice_issue_date=invoice.issue_date,
        issue_date=date(2026, 3, 10),
        reason="Dommage contesté & accepté",
        supplier=invoice.supplier,
        customer=invoice.customer,
        lines=[
            CreditNoteLineView(
                line=n,
                invoice_line=line.line,
                description=line.description,
                amount_cents=cents,
                vat_category=line.vat_category,
                vat_rate=line.vat_rate,
            )
            for n, (line, cents) in enumerate(chosen, start=1)
        ],
        totals=Totals(
            net_cents=totals.net_cents, vat_cents=totals.vat_cents, total_cents=totals.total_cents
        ),
        vat_breakdown=totals.breakdown,
    )


SNOWPLOUGH = [("rental", Decimal(2), "DAY", 42000), ("damage", Decimal(1), "C62", 15000)]
URBANIST = [("consulting", Decimal("2.5"), "DAY", 45000)]


@pytest.mark.parametrize("regime", list(VatRegime))
@pytest.mark.parametrize("lines", [SNOWPLOUGH, URBANIST], ids=["snowplough", "urbanist"])
def test_invoices_and_credit_notes_pass_the_xsd_and_en16931(regime, lines):
    invoice = invoice_of(lines, regime)
    assert problems(ubl.invoice_xml(invoice)) == []
    note = credit_note_of(invoice, [(1, 10000)])
    assert problems(ubl.credit_note_xml(note)) == []


def test_documents_without_buyer_or_order_reference_are_valid_too():
    customer = CUSTOMER.model_copy(update={"service_code": None, "engagement_number": None})
    invoice = invoice_of(SNOWPLOUGH, customer=customer, order_reference=None)
    document = ubl.invoice_xml(invoice)
    assert problems(document) == []
    root = etree.fromstring(document)
    assert root.find("cbc:BuyerReference", NS) is None
    assert root.find("cac:OrderReference", NS) is None


def test_many_lines_and_awkward_text_stay_valid():
    lines = [("damage", Decimal(1), "C62", 1 + n) for n in range(150)]
    invoice = invoice_of(lines, VatRegime.STANDARD)
    weird = invoice.lines[0].model_copy(
        update={"description": 'Rétroviseur <gauche> & "droit" — 100 % cassé 🚜'}
    )
    invoice = invoice.model_copy(update={"lines": [weird, *invoice.lines[1:]]})
    assert problems(ubl.invoice_xml(invoice)) == []


def test_chorus_pro_identifiers_are_where_french_public_buyers_expect_them():
    root = etree.fromstring(ubl.invoice_xml(invoice_of(SNOWPLOUGH)))
    seller = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    buyer = root.find("cac:AccountingCustomerParty/cac:Party", NS)
    for node, who in ((seller, SUPPLIER), (buyer, CUSTOMER)):
        siret = node.find("cac:PartyIdentification/cbc:ID", NS)
        assert (siret.text, siret.get("schemeID")) == (who.siret, "0009")
        endpoint = node.find("cbc:EndpointID", NS)
        assert (endpoint.text, endpoint.get("schemeID")) == (who.siret, "0009")
        siren = node.find("cac:PartyLegalEntity/cbc:CompanyID", NS)
        assert (siren.text, siren.get("schemeID")) == (who.siren, "0002")
    assert root.findtext("cbc:BuyerReference", namespaces=NS) == "DIRFIN"  # BT-10
    assert root.findtext("cac:OrderReference/cbc:ID", namespaces=NS) == "EJ-42"  # BT-13
    assert root.findtext("cbc:DueDate", namespaces=NS) == "2026-04-01"
    assert root.findtext("cac:PaymentMeans/cbc:PaymentID", namespaces=NS) == "42044-2026-000001"
    assert (
        root.findtext("cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", namespaces=NS)
        == SUPPLIER.iban
    )
    assert root.find("cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID", NS).text == "O"
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS) == "990.00"
    quantity = root.find("cac:InvoiceLine/cbc:InvoicedQuantity", NS)
    assert (quantity.text, quantity.get("unitCode")) == ("2", "DAY")


def test_a_credit_note_refers_to_its_invoice():
    invoice = invoice_of(SNOWPLOUGH)
    root = etree.fromstring(ubl.credit_note_xml(credit_note_of(invoice, [(2, 15000)])))
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "381"
    assert (
        root.findtext("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", namespaces=NS)
        == invoice.number
    )


def test_the_validator_catches_a_document_whose_totals_do_not_add_up():
    document = ubl.invoice_xml(invoice_of(SNOWPLOUGH)).replace(
        b'<cbc:TaxInclusiveAmount currencyID="EUR">990.00',
        b'<cbc:TaxInclusiveAmount currencyID="EUR">991.00',
    )
    failed = {rule for flag, rule, _ in rule_failures(document) if flag == "fatal"}
    assert "BR-CO-15" in failed
    assert problems(document)
    broken = document.replace(b"<cbc:IssueDate>", b"<cbc:IssueDay>", 1)
    assert any(
        "XSD" in p for p in problems(broken.replace(b"</cbc:IssueDate>", b"</cbc:IssueDay>", 1))
    )


def text_of(document: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


def test_the_pdf_shows_who_what_how_much_and_where_to_pay():
    text = text_of(pdf.invoice_pdf(invoice_of(SNOWPLOUGH)))
    for expected in (
        "FACTURE",
        "42044-2026-000001",
        "Commune du Chambon-Feugerolles",
        "Commune de Saint-Étienne",
        SUPPLIER.siret,
        "DIRFIN",
        "EJ-42",
        "840,00 €",
        "990,00 €",
        "01/04/2026",
        "FR283000100794C420440000028",
        "256 B",
        "Net à payer",
        "40 euros",
        "huit points",
        "Pas d'escompte",
    ):
        assert expected in text, expected
    assert "TTC" not in text  # no VAT: a net amount to pay


def test_a_taxed_invoice_totals_ttc_and_prices_units_to_the_cent_of_the_line():
    lines = [("rental", Decimal(2), "DAY", 42000), ("consulting", Decimal(3), "DAY", 3333)]
    invoice = invoice_of(lines, VatRegime.STANDARD)
    odd = invoice.lines[1].model_copy(update={"amount_cents": 10000})  # 100 € for 3 days
    text = text_of(pdf.invoice_pdf(invoice.model_copy(update={"lines": [invoice.lines[0], odd]})))
    assert "Total TTC à payer" in text and "Net à payer" not in text
    assert "33,333 €" in text and "100,00 €" in text  # 3 × 33,333 = 100,00 to the cent


def test_characters_beyond_latin_print_in_the_whole_font():
    invoice = invoice_of(SNOWPLOUGH)
    line = invoice.lines[0].model_copy(update={"description": "Grue Ω ≥ 12 m → chantier"})
    text = text_of(pdf.invoice_pdf(invoice.model_copy(update={"lines": [line]})))
    assert "Grue Ω ≥ 12 m → chantier" in text


def test_a_long_invoice_runs_over_pages_and_a_credit_note_prints():
    invoice = invoice_of([("damage", Decimal(1), "C62", 100 + n) for n in range(80)])
    reader = PdfReader(io.BytesIO(pdf.invoice_pdf(invoice)))
    assert len(reader.pages) >= 2
    text = text_of(pdf.credit_note_pdf(credit_note_of(invoice, [(1, 100)])))
    assert "AVOIR" in text and "42044-AV-2026-000001" in text and invoice.number in text
    assert "Net crédité" in text


@pytest.mark.parametrize("regime", list(VatRegime))
def test_the_pdfs_are_factur_x_carrying_a_valid_cii_of_the_same_document(regime):
    invoice = invoice_of(SNOWPLOUGH + URBANIST, regime)
    printed = pdf.invoice_pdf(invoice)
    assert factur_x_problems(printed) == []
    cii = etree.fromstring(embedded_cii(printed))
    ram = {"ram": cii_module.RAM}
    total = cii.findtext(".//ram:GrandTotalAmount", namespaces=ram)
    assert total == str(domain.euros(invoice.totals.total_cents))
    assert [q.text for q in cii.iterfind(".//ram:BilledQuantity", ram)] == ["2", "1", "2.5"]
    assert "FACTURE" in text_of(printed)  # still the printed invoice
    note = pdf.credit_note_pdf(credit_note_of(invoice, [(1, 10000)]))
    assert factur_x_problems(note) == []
