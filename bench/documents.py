"""`python -m bench.documents`: CPU time to print an invoice as a PDF and as the Factur-X PDF
the API serves (PDF/A-3 carrying its CII, written in the same single write), target ≤ 15 ms
per document for both, measured in-process over documents that differ from one another,
next to the floor of the same layout in a core font (no font to embed). Writes
test-output/bench/documents.json."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal

from infra.settings import PROJECT_ROOT
from services.billing import pdf
from tests.unit.test_billing_ubl import SNOWPLOUGH, URBANIST, invoice_of

OUTPUT = PROJECT_ROOT / "test-output" / "bench"
DOCUMENTS = 60
TARGET_MS = 15.0


def _invoices() -> list:
    """Invoices of varied lines and words, so that no two embed the same glyphs."""
    invoices = []
    for n in range(DOCUMENTS):
        lines = (SNOWPLOUGH + URBANIST)[: 1 + n % 3]
        extra = [("rental", Decimal(1 + n % 4), "DAY", 1000 + n)]
        invoice = invoice_of(lines + extra)
        words = f"Tronçonneuse n°{n} — élagage « {'àéèêëïôùç'[: n % 9]} » Œ{n}"
        lines = [line.model_copy(update={"description": words}) for line in invoice.lines]
        invoices.append(invoice.model_copy(update={"lines": lines}))
    return invoices


def _cpu_ms_per_document(invoices: list, print_one=pdf.printed_invoice) -> float:
    print_one(invoices[0])  # fonts parsed and embedded once per process: not what is measured
    started = time.process_time()
    for invoice in invoices:
        print_one(invoice)
    return (time.process_time() - started) / len(invoices) * 1000


def run() -> dict:
    invoices = _invoices()
    measured = _cpu_ms_per_document(invoices)
    factur_x = _cpu_ms_per_document(invoices, pdf.invoice_pdf)
    parsed, pdf._parsed_fonts = pdf._parsed_fonts, lambda whole=False: None
    try:
        floor = _cpu_ms_per_document(invoices)
    finally:
        pdf._parsed_fonts = parsed
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "documents": len(invoices),
        "cpu_ms_per_pdf": round(measured, 2),
        "cpu_ms_per_pdf_core_font": round(floor, 2),
        "cpu_ms_per_factur_x_pdf": round(factur_x, 2),
        "target_ms": TARGET_MS,
        "met": max(measured, factur_x) <= TARGET_MS,
    }
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "documents.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
