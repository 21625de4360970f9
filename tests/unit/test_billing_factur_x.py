"""The invoice and credit-note PDFs are Factur-X EN 16931 documents written by fpdf2 in one
go: the factur-x package recognises them (the same CII, level en16931), and they carry the
PDF/A-3 parts Factur-X requires (XMP with pdfaid and fx entries, /AF, sRGB output intent,
embedded fonts)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import facturx
import pytest
from lxml import etree
from pypdf import PdfReader

from services.billing import cii, pdf
from tests.unit.test_billing_ubl import SNOWPLOUGH, URBANIST, credit_note_of, invoice_of

XMP_NS = {
    "rdf": cii.RDF,
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "fx": cii.XMP_NAMESPACE,
}


@pytest.fixture(scope="module")
def documents():
    """The Factur-X invoice and credit note, each with its CII and title."""
    invoice = invoice_of(SNOWPLOUGH + URBANIST)
    note = credit_note_of(invoice, [(1, 10000)])
    return [
        (pdf.invoice_pdf(invoice), cii.invoice_xml(invoice), f"Facture {invoice.number}"),
        (pdf.credit_note_pdf(note), cii.credit_note_xml(note), f"Avoir {note.number}"),
    ]


def test_the_factur_x_package_reads_back_the_same_cii_at_level_en16931(documents):
    for document, xml, _ in documents:
        filename, embedded = facturx.get_facturx_xml_from_pdf(document, check_xsd=True)
        assert filename == "factur-x.xml"
        assert embedded == xml
        assert facturx.get_level(etree.fromstring(embedded), "factur-x") == "en16931"


def test_the_xmp_declares_pdf_a_3b_and_the_factur_x_properties(documents):
    for document, _, title in documents:
        catalog = PdfReader(io.BytesIO(document)).trailer["/Root"]
        xmp = etree.fromstring(catalog["/Metadata"].get_object().get_data())
        assert xmp.findtext(".//pdfaid:part", namespaces=XMP_NS) == "3"
        assert xmp.findtext(".//pdfaid:conformance", namespaces=XMP_NS) == "B"
        assert xmp.findtext(".//dc:title/rdf:Alt/rdf:li", namespaces=XMP_NS) == title
        fx = {
            name: xmp.findtext(f".//fx:{name}", namespaces=XMP_NS)
            for name in ("DocumentType", "DocumentFileName", "Version", "ConformanceLevel")
        }
        assert fx == {
            "DocumentType": "INVOICE",
            "DocumentFileName": "factur-x.xml",
            "Version": "1.0",
            "ConformanceLevel": "EN 16931",
        }
        # PDF/A accepts the fx properties only as declared by an extension schema
        declared = xmp.xpath(
            ".//rdf:li[pdfaSchema:prefix='fx']"
            "[pdfaSchema:namespaceURI='urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#']"
            "//pdfaProperty:name/text()",
            namespaces=XMP_NS,
        )
        assert sorted(declared) == sorted(fx)
        descriptions = xmp.iterfind(".//rdf:Description", XMP_NS)
        assert all(d.get(f"{{{cii.RDF}}}about") == "" for d in descriptions)


def test_the_cii_is_an_associated_file_and_the_pdf_a_parts_are_there(documents):
    for document, xml, _ in documents:
        assert document.startswith(b"%PDF-1.7\n") and document.count(b"%PDF-") == 1
        reader = PdfReader(io.BytesIO(document))
        catalog = reader.trailer["/Root"]
        (associated,) = [spec.get_object() for spec in catalog["/AF"]]
        assert associated["/F"] == associated["/UF"] == "factur-x.xml"
        assert associated["/AFRelationship"] == "/Data"  # the factur-x package's choice
        stream = associated["/EF"]["/F"].get_object()
        assert stream.get_data() == xml and stream["/Subtype"] == "/text/xml"
        assert "/ModDate" in stream["/Params"]
        assert catalog["/PageMode"] == "/UseAttachments" and catalog["/Lang"] == "fr-FR"
        (intent,) = [i.get_object() for i in catalog["/OutputIntents"]]
        assert intent["/S"] == "/GTS_PDFA1" and intent["/OutputConditionIdentifier"] == "sRGB"
        profile = intent["/DestOutputProfile"].get_object()
        icc = profile.get_data()
        assert profile["/N"] == 3 and icc[36:40] == b"acsp" and icc[16:20] == b"RGB "
        fonts = [
            font.get_object()
            for page in reader.pages
            for font in page["/Resources"]["/Font"].values()
        ]
        assert fonts
        for font in fonts:
            (descendant,) = font["/DescendantFonts"]
            assert "/FontFile2" in descendant.get_object()["/FontDescriptor"]


def test_the_printed_pdf_carries_no_cii():
    printed = PdfReader(io.BytesIO(pdf.printed_invoice(invoice_of(SNOWPLOUGH))))
    assert list(printed.attachment_list) == [] and "/AF" not in printed.trailer["/Root"]


def test_a_cii_the_xsd_refuses_is_not_embedded():
    xml = cii.invoice_xml(invoice_of(SNOWPLOUGH))
    broken = xml.replace(b"<ram:TypeCode>", b"<ram:TypCode>", 1).replace(
        b"</ram:TypeCode>", b"</ram:TypCode>", 1
    )
    with pytest.raises(ValueError, match="Factur-X EN 16931 XSD"):
        cii.checked(broken)
    assert cii.checked(xml) == xml


def test_the_xmp_escapes_the_title():
    created = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    xmp = etree.fromstring(cii.xmp("Facture <A & B>", created))
    assert xmp.findtext(".//dc:title/rdf:Alt/rdf:li", namespaces=XMP_NS) == "Facture <A & B>"
    xap = "{http://ns.adobe.com/xap/1.0/}"
    assert xmp.findtext(f".//{xap}CreateDate") == "2026-03-01T09:30:00+00:00"
