"""Invoices and credit notes as UBL 2.1 documents of the EN 16931 core invoice, with the
identifiers French public buyers expect (Chorus Pro): SIRET under scheme 0009, SIREN under
0002, the service code as buyer reference (BT-10), the engagement number as order
reference (BT-13); and what the French 2026 reform adds (the BR-FR rules): the billing
framework (BT-23) and the three payment notes #PMT#, #PMD#, #AAB# (BT-21/BT-22)."""

from __future__ import annotations

from calendar import monthrange
from datetime import date
from decimal import Decimal

from lxml import etree

from contracts.billing import CreditNoteView, InvoiceView, Party, VatBreakdown
from services.billing.domain import PAYMENT_NOTES, billing_framework, euros, unit_price

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


def _party(parent, role: str, party: Party, with_vat_number: bool) -> None:
    """A party; its VAT number only when `with_vat_number`: EN 16931 BR-O-02 forbids both
    parties' on a document whose lines are outside VAT (category O)."""
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
    if party.vat_number and with_vat_number:
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


def _notes(root, first: str) -> None:
    """The document's note, then the payment notes French rules require (BR-FR-05), each
    under its subject code: '#PMT#…'."""
    b.cbc(root, "Note", first)
    for code, text in PAYMENT_NOTES.items():
        b.cbc(root, "Note", f"#{code}#{text}")


def _period(parent, start: date, end: date) -> None:
    node = b.cac(parent, "InvoicePeriod")
    b.cbc(node, "StartDate", start.isoformat())
    b.cbc(node, "EndDate", end.isoformat())


def served_span(lines) -> tuple[date, date] | None:
    """The earliest and the latest day the lines' services span (BG-14 from BG-26)."""
    starts = [line.service_start for line in lines if line.service_start is not None]
    ends = [line.service_end for line in lines if line.service_end is not None]
    if not starts or not ends:
        return None
    return min(starts), max(ends)


def month_span(period: str) -> tuple[date, date]:
    year, month = (int(part) for part in period.split("-"))
    return date(year, month, 1), date(year, month, monthrange(year, month)[1])


def vat_numbers_allowed(categories) -> bool:
    return "O" not in set(categories)


def _line(parent, name: str, quantity_name: str, line, item_name: str) -> None:
    """An invoice or credit-note line: quantity and unit supplied, its amount, the period
    served (BG-26), and a unit price whose product by the quantity is the amount."""
    node = b.cac(parent, name)
    b.cbc(node, "ID", line.line)
    b.cbc(node, quantity_name, _quantity(line.quantity), unitCode=line.unit)
    _amount(node, "LineExtensionAmount", line.amount_cents)
    if line.service_start is not None and line.service_end is not None:
        _period(node, line.service_start, line.service_end)
    item = b.cac(node, "Item")
    b.cbc(item, "Description", line.description)
    b.cbc(item, "Name", item_name)
    if getattr(line, "source_reference", None):
        b.cbc(b.cac(item, "SellersItemIdentification"), "ID", line.source_reference)
    _tax_category(item, "ClassifiedTaxCategory", line.vat_category, line.vat_rate)
    price = unit_price(line.amount_cents, line.quantity)
    b.cbc(b.cac(node, "Price"), "PriceAmount", price, currencyID="EUR")


def _serialise(root) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def invoice_xml(invoice: InvoiceView) -> bytes:
    """The invoice as a UBL 2.1 Invoice (type 380)."""
    root = etree.Element(
        f"{{{INVOICE_NS}}}Invoice", nsmap={None: INVOICE_NS, "cac": CAC, "cbc": CBC}
    )
    b.cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    b.cbc(root, "ProfileID", billing_framework(line.kind for line in invoice.lines))
    b.cbc(root, "ID", invoice.number)
    b.cbc(root, "IssueDate", invoice.issue_date.isoformat())
    b.cbc(root, "DueDate", invoice.due_date.isoformat())
    b.cbc(root, "InvoiceTypeCode", COMMERCIAL_INVOICE)
    _notes(root, f"Prestations entre communes via Mutualis, période {invoice.period}")
    b.cbc(root, "DocumentCurrencyCode", invoice.currency)
    if invoice.buyer_reference:
        b.cbc(root, "BuyerReference", invoice.buyer_reference)
    served = served_span(invoice.lines)
    _period(root, *(served or month_span(invoice.period)))
    if invoice.order_reference:
        b.cbc(b.cac(root, "OrderReference"), "ID", invoice.order_reference)
    if invoice.agreement_reference:  # BT-12, after the references UBL orders before it
        b.cbc(b.cac(root, "ContractDocumentReference"), "ID", invoice.agreement_reference)
    vat_numbers = vat_numbers_allowed(line.vat_category for line in invoice.lines)
    _party(root, "AccountingSupplierParty", invoice.supplier, vat_numbers)
    _party(root, "AccountingCustomerParty", invoice.customer, vat_numbers)
    if served:  # BT-72: the last day of what was supplied
        b.cbc(b.cac(root, "Delivery"), "ActualDeliveryDate", served[1].isoformat())
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
        name = ITEM_NAMES.get(line.kind, line.kind)
        _line(root, "InvoiceLine", "InvoicedQuantity", line, name)
    return _serialise(root)


def credit_note_xml(note: CreditNoteView) -> bytes:
    """The credit note as a UBL 2.1 CreditNote (type 381) referring to its invoice (BT-25)."""
    root = etree.Element(
        f"{{{CREDIT_NOTE_NS}}}CreditNote", nsmap={None: CREDIT_NOTE_NS, "cac": CAC, "cbc": CBC}
    )
    b.cbc(root, "CustomizationID", CUSTOMIZATION_ID)
    b.cbc(root, "ProfileID", billing_framework(line.kind for line in note.lines))
    b.cbc(root, "ID", note.number)
    b.cbc(root, "IssueDate", note.issue_date.isoformat())
    b.cbc(root, "CreditNoteTypeCode", CREDIT_NOTE)
    _notes(root, note.reason)
    b.cbc(root, "DocumentCurrencyCode", note.currency)
    if note.customer.service_code:
        b.cbc(root, "BuyerReference", note.customer.service_code)
    served = served_span(note.lines)
    if served:
        _period(root, *served)
    if note.customer.engagement_number:
        b.cbc(b.cac(root, "OrderReference"), "ID", note.customer.engagement_number)
    reference = b.cac(b.cac(root, "BillingReference"), "InvoiceDocumentReference")
    b.cbc(reference, "ID", note.invoice_number)
    b.cbc(reference, "IssueDate", note.invoice_issue_date.isoformat())
    if note.agreement_reference:
        b.cbc(b.cac(root, "ContractDocumentReference"), "ID", note.agreement_reference)
    vat_numbers = vat_numbers_allowed(line.vat_category for line in note.lines)
    _party(root, "AccountingSupplierParty", note.supplier, vat_numbers)
    _party(root, "AccountingCustomerParty", note.customer, vat_numbers)
    if served:
        b.cbc(b.cac(root, "Delivery"), "ActualDeliveryDate", served[1].isoformat())
    _tax_total(root, note.vat_breakdown, note.totals.vat_cents)
    _monetary_total(root, note.totals.net_cents, note.totals.vat_cents, note.totals.total_cents)
    for line in note.lines:
        name = f"Avoir sur la ligne {line.invoice_line} de {note.invoice_number}"
        _line(root, "CreditNoteLine", "CreditedQuantity", line, name)
    return _serialise(root)
