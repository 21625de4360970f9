"""Invoices and credit notes as UBL 2.1 documents of the EN 16931 core invoice, with the
identifiers French public buyers expect (Chorus Pro): SIRET under scheme 0009, SIREN under
0002, the service code as buyer reference (BT-10), the engagement number as order
reference (BT-13)."""

from __future__ import annotations

from calendar import monthrange
from decimal import Decimal

from lxml import etree

from contracts.billing import CreditNoteView, InvoiceView, Party, VatBreakdown
from services.billing.domain import euros

INVOICE_NS = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE_NS = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017"
SIRET_SCHEME = "0009"  # ISO 6523 ICD of the SIRET
SIREN_SCHEME = "0002"  # ISO 6523 ICD of the SIREN (SIRENE)
COMMERCIAL_INVOICE, CREDIT_NOTE = "380", "381"  # UNTDID 1001
CREDIT_TRANSFER = "30"  # UNTDID 4461
ITEM_NAMES = {
    "rental": "Location de matériel",
    "operator": "Conducteur ou opérateur",
    "damage": "Dommages",
    "late_fee": "Pénalités de retard",
    "cancellation_fee": "Frais d'annulation",
    "consulting": "Mise à disposition d'expert",
}


class _Builder:
    """Appends UBL elements in schema order: `b.cbc(parent, "ID", "42")`."""

    @staticmethod
    def cbc(parent, name: str, text: object, **attributes: str):
        node = etree.SubElement(parent, f"{{{CBC}}}{name}", attributes)
        node.text = str(text)
        return node

    @staticmethod
    def cac(parent, name: str):
        return etree.SubElement(parent, f"{{{CAC}}}{name}")


b = _Builder()


def _amount(parent, name: str, cents: int) -> None:
    b.cbc(parent, name, euros(cents), currencyID="EUR")


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")  # 2.500 -> 2.5, 20.00 -> 20


def _party(parent, role: str, party: Party) -> None:
    node = b.cac(b.cac(parent, role), "Party")
    b.cbc(node, "EndpointID", party.siret, schemeID=SIRET_SCHEME)
    b.cbc(b.cac(node, "PartyIdentification"), "ID", party.siret, schemeID=SIRET_SCHEME)
    b.cbc(b.cac(node, "PartyName"), "Name", party.name)
    address = b.cac(node, "PostalAddress")
    b.cbc(address, "StreetName", party.address.street)
    if party.address.additional_street:
        b.cbc(address, "AdditionalStreetName", party.address.additional_street)
    b.cbc(address, "CityName", party.address.city)
    b.cbc(address, "PostalZone", party.address.postal_code)
    b.cbc(b.cac(address, "Country"), "IdentificationCode", party.address.country_code)
    if party.vat_number:
        tax = b.cac(node, "PartyTaxScheme")
        b.cbc(tax, "CompanyID", party.vat_number)
        b.cbc(b.cac(tax, "TaxScheme"), "ID", "VAT")
    legal = b.cac(node, "PartyLegalEntity")
    b.cbc(legal, "RegistrationName", party.legal_name)
    b.cbc(legal, "CompanyID", party.siren, schemeID=SIREN_SCHEME)
    if party.email:
        b.cbc(b.cac(node, "Contact"), "ElectronicMail", party.email)


def _tax_category(parent, name: str, category: str, rate: Decimal | None, vat=None) -> None:
    node = b.cac(parent, name)
    b.cbc(node, "ID", category)
    if rate is not None:
        b.cbc(node, "Percent", _quantity(rate))
    if vat is not None and vat.exemption_reason:
        if vat.exemption_reason_code:
            b.cbc(node, "TaxExemptionReasonCode", vat.exemption_reason_code)
        b.cbc(node, "TaxExemptionReason", vat.exemption_reason)
    b.cbc(b.cac(node, "TaxScheme"), "ID", "VAT")


def _tax_total(root, breakdown: list[VatBreakdown], vat_cents: int) -> None:
    total = b.cac(root, "TaxTotal")
    _amount(total, "TaxAmount", vat_cents)
    for vat in breakdown:
        sub = b.cac(total, "TaxSubtotal")
        _amount(sub, "TaxableAmount", vat.taxable_cents)
        _amount(sub, "TaxAmount", vat.tax_cents)
        _tax_category(sub, "TaxCategory", vat.category, vat.rate, vat)


def _monetary_total(root, net: int, vat: int, total: int) -> None:
    node = b.cac(root, "LegalMonetaryTotal")
    _amount(node, "LineExtensionAmount", net)
    _amount(node, "TaxExclusiveAmount", net)
    _amount(node, "TaxInclusiveAmount", total)
    _amount(node, "PayableAmount", total)


def _serialise(root) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def invoice_xml(invoice: InvoiceView) -> bytes:
    """The invoice as a UBL 2.1 Invoice (type 380)."""
    root = etree.Element(
        f"{{{INVOICE_NS}}}Invoice", nsmap={None: INVOICE_NS, "cac": CAC, "cbc": CBC}
    )
    b.cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    b.cbc(root, "ID", invoice.number)
    b.cbc(root, "IssueDate", invoice.issue_date.isoformat())
    b.cbc(root, "DueDate", invoice.due_date.isoformat())
    b.cbc(root, "InvoiceTypeCode", COMMERCIAL_INVOICE)
    b.cbc(root, "Note", f"Prestations entre communes via Mutualis, période {invoice.period}")
    b.cbc(root, "DocumentCurrencyCode", invoice.currency)
    if invoice.buyer_reference:
        b.cbc(root, "BuyerReference", invoice.buyer_reference)
    year, month = (int(part) for part in invoice.period.split("-"))
    period = b.cac(root, "InvoicePeriod")
    b.cbc(period, "StartDate", f"{invoice.period}-01")
    b.cbc(period, "EndDate", f"{invoice.period}-{monthrange(year, month)[1]:02d}")
    if invoice.order_reference:
        b.cbc(b.cac(root, "OrderReference"), "ID", invoice.order_reference)
    _party(root, "AccountingSupplierParty", invoice.supplier)
    _party(root, "AccountingCustomerParty", invoice.customer)
    means = b.cac(root, "PaymentMeans")
    b.cbc(means, "PaymentMeansCode", CREDIT_TRANSFER)
    # the remittance information a payer should quote: what statement matching looks for
    b.cbc(means, "PaymentID", invoice.number)
    if invoice.supplier.iban:
        account = b.cac(means, "PayeeFinancialAccount")
        b.cbc(account, "ID", invoice.supplier.iban)
        b.cbc(account, "Name", invoice.supplier.legal_name)
        if invoice.supplier.bic:
            b.cbc(b.cac(account, "FinancialInstitutionBranch"), "ID", invoice.supplier.bic)
    terms = b.cac(root, "PaymentTerms")
    b.cbc(
        terms,
        "Note",
        f"Paiement par virement au plus tard le {invoice.due_date:%d/%m/%Y}, "
        f"en rappelant le numéro {invoice.number}.",
    )
    _tax_total(root, invoice.vat_breakdown, invoice.totals.vat_cents)
    _monetary_total(
        root, invoice.totals.net_cents, invoice.totals.vat_cents, invoice.totals.total_cents
    )
    for line in invoice.lines:
        node = b.cac(root, "InvoiceLine")
        b.cbc(node, "ID", line.line)
        b.cbc(node, "InvoicedQuantity", _quantity(line.quantity), unitCode=line.unit)
        _amount(node, "LineExtensionAmount", line.amount_cents)
        if line.service_start is not None and line.service_end is not None:
            period = b.cac(node, "InvoicePeriod")  # BG-26, the service the line charges
            b.cbc(period, "StartDate", line.service_start.isoformat())
            b.cbc(period, "EndDate", line.service_end.isoformat())
        item = b.cac(node, "Item")
        b.cbc(item, "Description", line.description)
        b.cbc(item, "Name", ITEM_NAMES.get(line.kind, line.kind))
        b.cbc(b.cac(item, "SellersItemIdentification"), "ID", line.source_reference)
        _tax_category(item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate)
        b.cbc(b.cac(node, "Price"), "PriceAmount", euros(line.unit_price_cents), currencyID="EUR")
    return _serialise(root)


def credit_note_xml(note: CreditNoteView) -> bytes:
    """The credit note as a UBL 2.1 CreditNote (type 381) referring to its invoice (BT-25)."""
    root = etree.Element(
        f"{{{CREDIT_NOTE_NS}}}CreditNote", nsmap={None: CREDIT_NOTE_NS, "cac": CAC, "cbc": CBC}
    )
    b.cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    b.cbc(root, "ID", note.number)
    b.cbc(root, "IssueDate", note.issue_date.isoformat())
    b.cbc(root, "CreditNoteTypeCode", CREDIT_NOTE)
    b.cbc(root, "Note", note.reason)
    b.cbc(root, "DocumentCurrencyCode", note.currency)
    if note.customer.service_code:
        b.cbc(root, "BuyerReference", note.customer.service_code)
    if note.customer.engagement_number:
        b.cbc(b.cac(root, "OrderReference"), "ID", note.customer.engagement_number)
    reference = b.cac(b.cac(root, "BillingReference"), "InvoiceDocumentReference")
    b.cbc(reference, "ID", note.invoice_number)
    b.cbc(reference, "IssueDate", note.invoice_issue_date.isoformat())
    _party(root, "AccountingSupplierParty", note.supplier)
    _party(root, "AccountingCustomerParty", note.customer)
    _tax_total(root, note.vat_breakdown, note.totals.vat_cents)
    _monetary_total(root, note.totals.net_cents, note.totals.vat_cents, note.totals.total_cents)
    for line in note.lines:
        node = b.cac(root, "CreditNoteLine")
        b.cbc(node, "ID", line.line)
        b.cbc(node, "CreditedQuantity", "1", unitCode="C62")
        _amount(node, "LineExtensionAmount", line.amount_cents)
        item = b.cac(node, "Item")
        b.cbc(item, "Description", line.description)
        b.cbc(item, "Name", f"Avoir sur la ligne {line.invoice_line} de {note.invoice_number}")
        _tax_category(item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate)
        b.cbc(b.cac(node, "Price"), "PriceAmount", euros(line.amount_cents), currencyID="EUR")
    return _serialise(root)
