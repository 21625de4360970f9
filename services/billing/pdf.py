"""Invoices and credit notes as printable A4 PDF documents, in French."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from contracts.billing import CreditNoteView, InvoiceView, Party, VatBreakdown, unit_name
from services.billing.domain import euros

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
)
# what Helvetica (Latin-1) cannot show, when no Unicode font is installed
LATIN1 = str.maketrans({"—": "-", "–": "-", "’": "'", "œ": "oe", "Œ": "OE", "…": "...", "€": "EUR"})
GREY = (90, 90, 90)


def money(cents: int) -> str:
    """12345678 -> '123 456,78 €' (French grouping and decimal comma)."""
    text = f"{euros(abs(cents)):,.2f}".replace(",", " ").replace(".", ",")
    return f"{'-' if cents < 0 else ''}{text} €"


def served(first: date | None, last: date | None) -> str:
    """A line's service period (hand-over to return, the late days, the day worked), both
    days included, after its description, which says what was booked."""
    if first is None:
        return ""
    if last is None or last == first:
        return f" — réalisé le {first:%d/%m/%Y}"
    return f" — réalisé du {first:%d/%m/%Y} au {last:%d/%m/%Y}"


def quantity(value: Decimal) -> str:
    return format(value.normalize(), "f").replace(".", ",")


class _Document(FPDF):
    def __init__(self, title: str):
        super().__init__(format="A4")
        self.title_text = title
        self.set_auto_page_break(auto=True, margin=20)
        self.set_margins(18, 18, 18)
        self.unicode = self._use_unicode_font()
        self.set_title(title)
        self.set_creator("Mutualis")

    def _use_unicode_font(self) -> bool:
        for folder in FONT_DIRS:
            regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
            if regular.exists() and bold.exists():
                self.add_font("Body", "", str(regular))
                self.add_font("Body", "B", str(bold))
                return True
        return False

    def font(self, size: float, bold: bool = False) -> None:
        family = "Body" if self.unicode else "Helvetica"
        self.set_font(family, "B" if bold else "", size)

    def text_of(self, value: str) -> str:
        if self.unicode:
            return value
        return value.translate(LATIN1).encode("latin-1", "replace").decode("latin-1")

    def line_of(self, text: str, size: float = 9, bold: bool = False, height: float = 4.6):
        self.font(size, bold)
        self.multi_cell(
            0, height, self.text_of(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    def footer(self) -> None:
        self.set_y(-14)
        self.font(7.5)
        self.set_text_color(*GREY)
        self.cell(
            0, 5, self.text_of(f"{self.title_text} — page {self.page_no()}/{{nb}}"), align="C"
        )
        self.set_text_color(0, 0, 0)


def _party_block(pdf: _Document, x: float, y: float, width: float, label: str, party: Party):
    pdf.set_xy(x, y)
    pdf.font(8, bold=True)
    pdf.set_text_color(*GREY)
    pdf.cell(width, 5, pdf.text_of(label), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    lines = [party.legal_name, party.address.street]
    if party.address.additional_street:
        lines.append(party.address.additional_street)
    lines.append(f"{party.address.postal_code} {party.address.city}")
    details = [f"SIRET {party.siret}  (SIREN {party.siren}, INSEE {party.insee_code})"]
    if party.vat_number:
        details.append(f"N° TVA {party.vat_number}")
    if party.service_code:
        details.append(f"Code service Chorus Pro : {party.service_code}")
    if party.engagement_number:
        details.append(f"N° d'engagement : {party.engagement_number}")
    if party.email:
        details.append(party.email)
    for n, text in enumerate(lines):
        pdf.set_x(x)
        pdf.font(10 if n == 0 else 9, bold=n == 0)
        pdf.multi_cell(width, 4.8, pdf.text_of(text), align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.font(8)
    for text in details:
        pdf.set_x(x)
        pdf.multi_cell(width, 4.2, pdf.text_of(text), align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    return pdf.get_y()


def _header(pdf: _Document, title: str, facts: list[tuple[str, str]], supplier, customer):
    pdf.add_page()
    half = (pdf.w - pdf.l_margin - pdf.r_margin) / 2
    bottom = _party_block(pdf, pdf.l_margin, 18, half - 6, "ÉMETTEUR", supplier)
    pdf.set_xy(pdf.l_margin + half + 6, 18)
    pdf.font(16, bold=True)
    pdf.cell(half - 6, 9, pdf.text_of(title), new_x=XPos.LEFT, new_y=YPos.NEXT)
    for label, value in facts:
        pdf.set_x(pdf.l_margin + half + 6)
        pdf.font(9)
        pdf.cell(34, 5, pdf.text_of(label))
        pdf.font(9, bold=True)
        pdf.cell(half - 40, 5, pdf.text_of(value), new_x=XPos.LEFT, new_y=YPos.NEXT)
    top = max(bottom, pdf.get_y()) + 6
    bottom = _party_block(pdf, pdf.l_margin + half + 6, top, half - 6, "DESTINATAIRE", customer)
    pdf.set_y(bottom + 8)


def _table(pdf: _Document, headings, widths, aligns, rows) -> None:
    pdf.font(8.5, bold=True)
    pdf.set_fill_color(235, 238, 242)
    for heading, width, align in zip(headings, widths, aligns, strict=True):
        pdf.cell(width, 7, pdf.text_of(heading), border="B", align=align, fill=True)
    pdf.ln(7)
    pdf.font(8.5)
    for row in rows:
        if pdf.will_page_break(12):
            pdf.add_page()
        y = pdf.get_y()
        x = pdf.l_margin
        heights = []
        for text, width, align in zip(row, widths, aligns, strict=True):
            pdf.set_xy(x, y)
            pdf.multi_cell(width, 4.6, pdf.text_of(text), align=align, new_x=XPos.RIGHT)
            heights.append(pdf.get_y() - y)
            x += width
        pdf.set_y(y + max(max(heights), 4.6) + 1.5)
        pdf.set_draw_color(220, 220, 220)
        pdf.line(pdf.l_margin, pdf.get_y() - 0.7, pdf.w - pdf.r_margin, pdf.get_y() - 0.7)
    pdf.ln(2)


def _totals(pdf: _Document, rows: list[tuple[str, str, bool]]) -> None:
    width = 80
    for label, value, strong in rows:
        pdf.set_x(pdf.w - pdf.r_margin - width)
        pdf.font(9.5 if strong else 9, bold=strong)
        pdf.cell(width - 32, 6, pdf.text_of(label), border="T" if strong else 0)
        pdf.cell(32, 6, pdf.text_of(value), align="R", border="T" if strong else 0)
        pdf.ln(6)
    pdf.ln(3)


def _vat_rows(breakdown: list[VatBreakdown]) -> list[tuple[str, str, bool]]:
    rows = []
    for vat in breakdown:
        if vat.rate is None:
            rows.append(("TVA (non soumis)", money(0), False))
        else:
            rows.append(
                (
                    f"TVA {quantity(vat.rate)} % sur {money(vat.taxable_cents)}",
                    money(vat.tax_cents),
                    False,
                )
            )
    return rows


def _mentions(pdf: _Document, breakdown: list[VatBreakdown]) -> None:
    for vat in breakdown:
        if vat.exemption_reason:
            pdf.line_of(vat.exemption_reason, size=8.5)


def invoice_pdf(invoice: InvoiceView) -> bytes:
    pdf = _Document(f"Facture {invoice.number}")
    facts = [
        ("Numéro", invoice.number),
        ("Date d'émission", f"{invoice.issue_date:%d/%m/%Y}"),
        ("Échéance", f"{invoice.due_date:%d/%m/%Y}"),
        ("Période", invoice.period),
    ]
    if invoice.order_reference:
        facts.append(("N° d'engagement", invoice.order_reference))
    if invoice.buyer_reference:
        facts.append(("Code service", invoice.buyer_reference))
    _header(pdf, "FACTURE", facts, invoice.supplier, invoice.customer)
    widths = (10, 86, 16, 14, 24, 24)
    _table(
        pdf,
        ("N°", "Désignation", "Qté", "Unité", "PU HT", "Montant HT"),
        widths,
        ("L", "L", "R", "L", "R", "R"),
        [
            (
                str(line.line),
                line.description + served(line.service_start, line.service_end),
                quantity(line.quantity),
                unit_name(line.unit, line.quantity),
                money(line.unit_price_cents),
                money(line.amount_cents),
            )
            for line in invoice.lines
        ],
    )
    _totals(
        pdf,
        [
            ("Total HT", money(invoice.totals.net_cents), False),
            *_vat_rows(invoice.vat_breakdown),
            ("Total TTC à payer", money(invoice.totals.total_cents), True),
        ],
    )
    _mentions(pdf, invoice.vat_breakdown)
    pdf.ln(2)
    pdf.line_of("Règlement", size=10, bold=True)
    pdf.line_of(
        f"Par virement au plus tard le {invoice.due_date:%d/%m/%Y} (30 jours), en indiquant "
        f"la référence {invoice.number}."
    )
    if invoice.supplier.iban:
        pdf.line_of(f"IBAN {invoice.supplier.iban}   BIC {invoice.supplier.bic or ''}")
    pdf.line_of("Pas d'escompte pour paiement anticipé.", size=8.5)
    return bytes(pdf.output())


def credit_note_pdf(note: CreditNoteView) -> bytes:
    pdf = _Document(f"Avoir {note.number}")
    _header(
        pdf,
        "AVOIR",
        [
            ("Numéro", note.number),
            ("Date d'émission", f"{note.issue_date:%d/%m/%Y}"),
            ("Facture d'origine", note.invoice_number),
            ("du", f"{note.invoice_issue_date:%d/%m/%Y}"),
        ],
        note.supplier,
        note.customer,
    )
    pdf.line_of(f"Motif : {note.reason}")
    pdf.ln(2)
    _table(
        pdf,
        ("N°", "Ligne", "Désignation", "Montant HT"),
        (10, 18, 122, 24),
        ("L", "L", "L", "R"),
        [
            (
                str(line.line),
                f"ligne {line.invoice_line}",
                line.description,
                money(line.amount_cents),
            )
            for line in note.lines
        ],
    )
    _totals(
        pdf,
        [
            ("Total HT", money(note.totals.net_cents), False),
            *_vat_rows(note.vat_breakdown),
            ("Total TTC crédité", money(note.totals.total_cents), True),
        ],
    )
    _mentions(pdf, note.vat_breakdown)
    return bytes(pdf.output())
