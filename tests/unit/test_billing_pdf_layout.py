"""Documents break their lines word by word instead of through fpdf2's `multi_cell` (which
measures the line again after each character): the same lines at the same places, or
`multi_cell` itself when the text needs its finer rules."""

from __future__ import annotations

import io
import re

import pytest
from fpdf.enums import XPos, YPos
from pypdf import PdfReader

from services.billing import pdf
from services.billing.domain import PAYMENT_NOTES
from tests.unit.test_billing_ubl import SNOWPLOUGH, invoice_of

TEXTS = [
    "",
    "Règlement",
    "Commune du Chambon-Feugerolles",
    "SIRET 21420044600018  (SIREN 214200446, INSEE 42044)",
    "IBAN FR283000100794C420440000028   BIC BDFEFRPPCCT",
    *PAYMENT_NOTES.values(),
    "Tronçonneuse n°7 — élagage « àéèêëïô » Œ7 — réalisé du 02/03/2026 au 05/03/2026",
    "Tronçonneuse n°9 — élagage «  » Œ9 — réalisé du 02/03/2026 au 05/03/2026",
    "Anticonstitutionnellementanticonstitutionnellement en un seul mot trop long",
    "Deux  espaces   puis une fin avec espace ",
    "Une ligne\nou deux",
]


def _printed(write, width: float, align: str, new_x: XPos, bold: bool) -> tuple:
    document = pdf._Document("Essai", "")
    document.add_page()
    for size in (8, 9, 10):
        for text in TEXTS:
            document.font(size, bold)
            document.set_xy(40, document.get_y())
            write(document, width, text, align, new_x)
    # the footer's page count is a placeholder of its own in each document
    content = re.sub(rb"::placeholder:[^:]+::", b"{nb}", bytes(document.pages[1].contents))
    return content, document.get_x(), document.get_y()


@pytest.mark.parametrize("width", [0, 20, 44.5, 86])
@pytest.mark.parametrize("align", ["L", "R"])
@pytest.mark.parametrize("new_x", [XPos.RIGHT, XPos.LMARGIN])
@pytest.mark.parametrize("bold", [False, True])
def test_paragraphs_print_exactly_what_multi_cell_prints(width, align, new_x, bold):
    def by_multi_cell(document, width, text, align, new_x):
        document.multi_cell(width, 4.6, text, align=align, new_x=new_x, new_y=YPos.NEXT)

    def by_paragraph(document, width, text, align, new_x):
        document.paragraph(width, 4.6, text, align, new_x, YPos.NEXT)

    assert _printed(by_paragraph, width, align, new_x, bold) == _printed(
        by_multi_cell, width, align, new_x, bold
    )


def test_most_text_is_broken_without_multi_cell():
    document = pdf._Document("Essai", "")
    document.add_page()
    document.font(9)
    assert document._lines(PAYMENT_NOTES["PMD"], 170) is not None
    assert len(document._lines(PAYMENT_NOTES["PMD"], 60)) > 3
    assert document._lines("Une ligne\nou deux", 170) is None


def _font_files(document: bytes) -> list[bytes]:
    reader = PdfReader(io.BytesIO(document))
    fonts = reader.pages[0]["/Resources"]["/Font"]
    return [
        font.get_object()["/DescendantFonts"][0]
        .get_object()["/FontDescriptor"]["/FontFile2"]
        .get_object()
        .get_data()
        for font in fonts.values()
    ]


def test_documents_carry_the_same_reduced_font_whatever_they_write():
    """The reduced font is embedded whole, written once per process: documents writing
    different characters carry the same font files and still read back as text."""
    described = []
    for words in ("Tronçonneuse — élagage « àéè »", "Broyeur Œ n°42 ; Zürich ½"):
        invoice = invoice_of(SNOWPLOUGH)
        lines = [line.model_copy(update={"description": words}) for line in invoice.lines]
        document = pdf.printed_invoice(invoice.model_copy(update={"lines": lines}))
        text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)
        assert words in text
        described.append(_font_files(document))
    assert len(described[0]) == 2  # regular and bold
    assert described[0] == described[1]


def test_characters_beyond_the_reduced_font_are_cut_from_the_whole_font():
    invoice = invoice_of(SNOWPLOUGH)
    lines = [
        line.model_copy(update={"description": "Chasse-neige Ωμέγα"}) for line in invoice.lines
    ]
    document = pdf.printed_invoice(invoice.model_copy(update={"lines": lines}))
    assert "Chasse-neige Ωμέγα" in PdfReader(io.BytesIO(document)).pages[0].extract_text()
    whole = pdf._parsed_fonts(True)[""].ttffile.stat().st_size
    assert all(len(font_file) < whole / 4 for font_file in _font_files(document))
