"""Invoices and credit notes as printable A4 PDF documents, in French."""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.enums import PageMode, XPos, YPos
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.output import OutputProducer, PDFFont
from fpdf.util import FloatTolerance

from contracts.billing import CreditNoteView, InvoiceView, Party, VatBreakdown, unit_name
from services.billing import cii
from services.billing.domain import PAYMENT_NOTES, euros, unit_price

FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/local/share/fonts"),
)
# what Helvetica (Latin-1) cannot show, when no Unicode font is installed
LATIN1 = str.maketrans({"—": "-", "–": "-", "’": "'", "œ": "oe", "Œ": "OE", "…": "...", "€": "EUR"})
GREY = (90, 90, 90)
SOFT_HYPHEN = "\u00ad"
# what documents write: Latin (French and its neighbours), Greek, Cyrillic, punctuation,
# currencies, arrows and common symbols; DejaVu reduced to them parses four times faster
SCRIPTS = ((0x20, 0x17F), (0x2010, 0x2044), (0x20AC, 0x20AC), (0x2116, 0x2116), (0x2122, 0x2122))
COVERED = frozenset(c for first, last in SCRIPTS for c in range(first, last + 1))
STYLES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}


def _reduced(source: Path) -> Path:
    """`source` reduced to SCRIPTS, once per machine: written next to the temporary files
    under a name of its content, atomically (two processes may write it at once)."""
    digest = hashlib.sha256(source.read_bytes() + repr(SCRIPTS).encode() + b"unhinted, no FFTM")
    digest = digest.hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / "mutualis-fonts" / f"{source.stem}-{digest}.ttf"
    if target.exists():
        return target
    font = TTFont(source)
    options = subset.Options(notdef_outline=True, recommended_glyphs=True)
    options.layout_features = []
    options.hinting = False  # screens hint, paper does not: smaller, and faster to embed
    options.drop_tables += ["FFTM"]  # FontForge's timestamp: nothing to print
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(COVERED))
    subsetter.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.part")
    font.save(partial)
    os.replace(partial, target)
    return target


@functools.cache
def _parsed_fonts(whole: bool = False) -> dict[str, TTFFont] | None:
    """The body font's styles parsed once per process (widths, glyph map): each document
    copies them instead of parsing the font file again; reduced to SCRIPTS unless `whole`
    (a document writing other characters). None without DejaVu installed."""
    for folder in FONT_DIRS:
        sources = {style: folder / name for style, name in STYLES.items()}
        if all(path.exists() for path in sources.values()):
            holder = FPDF()
            return {
                style: TTFFont(holder, path if whole else _reduced(path), f"body{style}", style)
                for style, path in sources.items()
            }
    return None


# widths in font units of the texts measured, and of their beginnings: line breaking asks
# for the width of a line after each character it adds
_UNITS: dict[tuple[Path, str], int] = {}
_UNITS_KEPT = 200_000


class _MeasuredFont(TTFFont):
    """A parsed font that measures a text from the width of the text one character shorter.

    fpdf2 breaks lines by adding one character at a time and measuring the whole line
    again after each: quadratic in the length of a line, and most of a document's CPU.
    Widths are sums of integer glyph widths, so these are exactly the widths fpdf2 computes."""

    __slots__ = ()

    def get_text_width(self, text: str, font_size_pt: float, text_shaping_params):
        if text_shaping_params or self.is_symbol or not text:
            return super().get_text_width(text, font_size_pt, text_shaping_params)
        self.biggest_size_pt = max(self.biggest_size_pt, font_size_pt)
        units = _UNITS.get((self.ttffile, text))
        if units is None:
            head = _UNITS.get((self.ttffile, text[:-1]))
            if head is None:
                units = sum(self.cw[ord(c)] for c in text)
            else:
                units = head + self.cw[ord(text[-1])]
            if len(_UNITS) >= _UNITS_KEPT:
                _UNITS.clear()
            _UNITS[self.ttffile, text] = units
        return len(text), units * font_size_pt * 0.001


@functools.cache
def _every_glyph(parsed: TTFFont) -> SubsetMap:
    """The reduced font's every character, coded once per process in the order of the
    characters: what each document of the process embeds (see `_Output`)."""
    subset = SubsetMap(parsed)
    for code in sorted(parsed.cmap):
        subset.pick(code)
    return subset


# the subsets of every glyph, by font file
_EVERY: dict[Path, SubsetMap] = {}
# by font file, once per process: the Type0 font fpdf2 wrote for a reduced font carrying
# every glyph, and all the objects it wrote for it (the Type0 font among them)
_EMBEDDED: dict[Path, tuple[PDFFont, list]] = {}


class _Output(OutputProducer):
    """fpdf2's writer, embedding a reduced font as it wrote it for the first document of
    the process. fontTools cut the font down to the glyphs of each document (~8 ms per style
    and document); documents printed in the reduced font now all carry its every glyph under
    the same codes (`_every_glyph`), about 20 KB per style, so their font objects are the
    same: written once, added to each document under its own object numbers."""

    def _add_fonts(self, *resources):
        registry = self.fpdf.fonts  # what fpdf2 writes: one font at a time here
        every = dict(registry)
        written = {}
        try:
            for key, font in sorted(every.items(), key=lambda item: item[1].i):
                shared = isinstance(font, TTFFont) and font.subset is _EVERY.get(font.ttffile)
                if shared and font.ttffile in _EMBEDDED:
                    first, objects = _EMBEDDED[font.ttffile]
                    for pdf_object in objects:
                        self._add_pdf_obj(pdf_object, "fonts")
                    written[font.i] = first
                    font.close()
                    continue
                registry.clear()
                registry[key] = font
                start = len(self.pdf_objs)
                written.update(super()._add_fonts(*resources))
                if shared:
                    _EMBEDDED[font.ttffile] = (written[font.i], self.pdf_objs[start:])
        finally:
            registry.clear()
            registry.update(every)
        return written


def _font_for(document: FPDF, parsed: TTFFont, whole: bool) -> TTFFont:
    """A document's own copy of a parsed font: the parsed widths and glyph map (shared, not
    copied) and its own font file. A reduced font comes with every glyph picked (the same
    for every document, see `_Output`); the whole font with a fresh subset, cut down to the
    glyphs used when the PDF is written."""
    font = copy.copy(parsed)  # widths and glyph ids shared: read only
    font.__class__ = _MeasuredFont
    font.i = len(document.fonts) + 1
    font.missing_glyphs = []
    if whole:
        font.subset = SubsetMap(font)
    else:
        font.subset = _EVERY.setdefault(parsed.ttffile, _every_glyph(parsed))
    # the reduced font's bounding boxes are right already: computing them again would
    # decode and encode every glyph
    font.ttfont = TTFont(parsed.ttffile, recalcTimestamp=False, recalcBBoxes=False, lazy=True)
    return font


def money(cents: int) -> str:
    """12345678 -> '123 456,78 €' (French grouping and decimal comma)."""
    text = f"{euros(abs(cents)):,.2f}".replace(",", " ").replace(".", ",")
    return f"{'-' if cents < 0 else ''}{text} €"


def price(value: Decimal) -> str:
    """A unit price as exact as the document states it: '420,00 €', '420,005 €'."""
    whole, _, decimals = f"{value:,f}".partition(".")
    decimals = decimals.rstrip("0").ljust(2, "0")
    return f"{whole.replace(',', ' ')},{decimals} €"


def total_label(breakdown: list[VatBreakdown], taxed: str, untaxed: str) -> str:
    """'Total TTC à payer' when VAT applies, 'Net à payer' when it does not."""
    return taxed if any(vat.rate is not None for vat in breakdown) else untaxed


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
    def __init__(self, title: str, text: str, xml: bytes | None = None):
        """A document titled `title` that writes `text` (what chooses its font), a Factur-X
        PDF carrying `xml` (its CII) when given.

        A Factur-X PDF is PDF/A-3 B when its fonts are embedded (DejaVu installed): fpdf2
        then refuses what PDF/A forbids, adds the sRGB output intent with its ICC profile
        and writes no Info dictionary (the XMP says it all). Without DejaVu, Helvetica is
        not embedded and the PDF, carrying the same parts, is not PDF/A."""
        whole = not COVERED.issuperset(map(ord, text))
        embedded = _parsed_fonts(whole) is not None
        super().__init__(format="A4", enforce_compliance="PDFA_3B" if xml and embedded else None)
        self.title_text = title
        self.set_auto_page_break(auto=True, margin=20)
        self.set_margins(18, 18, 18)
        self.unicode = self._use_unicode_font(whole)
        self.set_title(title)
        self.set_creator("Mutualis")
        if xml is not None:
            self._carry(xml)

    def _carry(self, xml: bytes) -> None:
        """The Factur-X parts, written with the rest in fpdf2's single write (the factur-x
        package reads the written PDF again and rewrites it: more CPU than writing it):
        the CII embedded as factur-x.xml, an associated file of the document (/AF) related
        as /Data (the package's choice for EN 16931), its XMP, the attachments shown on
        opening, the language."""
        self.embed_file(
            bytes=cii.checked(xml),
            basename=cii.FILENAME,
            mime_type="text/xml",
            associated_file_relationship="Data",
            desc="Factur-X XML file",
            modification_date=self.creation_date,
            compress=True,
            checksum=True,
        )
        self.set_xmp_metadata(cii.xmp(self.title_text, self.creation_date))
        self.page_mode = PageMode.USE_ATTACHMENTS
        self.set_lang("fr-FR")

    def _use_unicode_font(self, whole: bool) -> bool:
        parsed = _parsed_fonts(whole)
        if parsed is None:
            return False
        for font in parsed.values():
            self.fonts[font.fontkey] = _font_for(self, font, whole)
        return True

    def output(self, *args, **kwargs):
        return super().output(*args, output_producer_class=_Output, **kwargs)

    def font(self, size: float, bold: bool = False) -> None:
        family = "body" if self.unicode else "Helvetica"
        self.set_font(family, "B" if bold else "", size)

    def text_of(self, value: str) -> str:
        if self.unicode:
            return value
        return value.translate(LATIN1).encode("latin-1", "replace").decode("latin-1")

    def line_of(self, text: str, size: float = 9, bold: bool = False, height: float = 4.6):
        self.font(size, bold)
        self.paragraph(0, height, self.text_of(text), "L", XPos.LMARGIN, YPos.NEXT)

    def paragraph(self, width, height, text: str, align: str, new_x: XPos, new_y: YPos) -> None:
        """`multi_cell` of plain text, its lines found word by word: the same lines, cells
        and positions, without fpdf2 measuring the line again after each character (most of
        a document's CPU). Text with anything but single spaces between words, or a word
        wider than the cell, goes through `multi_cell` itself."""
        if width == 0:
            width = self.w - self.r_margin - self.x
        lines = self._lines(text, width - 2 * self.c_margin)
        if lines is None:
            self.multi_cell(width, height, text, align=align, new_x=new_x, new_y=new_y)
            return
        for line in lines[:-1]:
            self.cell(width, height, line, align=align, new_x=XPos.LEFT, new_y=YPos.NEXT)
        self.cell(width, height, lines[-1], align=align, new_x=new_x, new_y=new_y)

    def _lines(self, text: str, room: float) -> list[str] | None:
        """`text` broken where fpdf2 breaks it (before the word whose last character would
        pass `room`, dropping the space), or None when its rules need more than that."""
        if self.text_shaping or self.char_spacing or self.font_stretching != 100:
            return None
        if not text.isprintable() or SOFT_HYPHEN in text:
            return None
        if not self._overflows(text, room):
            return [text]
        words = text.split(" ")
        if "" in words:  # spaces kept at the ends of lines: fpdf2's own rules
            return None
        lines, line = [], ""
        for word in words:
            candidate = f"{line} {word}" if line else word
            if self._overflows(candidate, room):
                if not line or self._overflows(word, room):
                    return None  # a word wider than the cell: broken inside by fpdf2
                lines.append(line)
                candidate = word
            line = candidate
        lines.append(line)
        return lines

    def _overflows(self, text: str, room: float) -> bool:
        """Whether fpdf2, adding `text`'s last character to the rest, passes `room`."""
        if not text:
            return False
        font, size = self.current_font, self.font_size_pt
        head = font.get_text_width(text[:-1], size, None)[1] / self.k
        last = font.get_text_width(text[-1], size, None)[1] / self.k
        return FloatTolerance.greater_than(head + last, room)

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
        pdf.paragraph(width, 4.8, pdf.text_of(text), "L", XPos.LEFT, YPos.NEXT)
    pdf.font(8)
    for text in details:
        pdf.set_x(x)
        pdf.paragraph(width, 4.2, pdf.text_of(text), "L", XPos.LEFT, YPos.NEXT)
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
            pdf.paragraph(width, 4.6, pdf.text_of(text), align, XPos.RIGHT, YPos.NEXT)
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
    """The invoice as a Factur-X EN 16931 PDF: the printed invoice with its CII embedded."""
    return _invoice(invoice, cii.invoice_xml(invoice))


def credit_note_pdf(note: CreditNoteView) -> bytes:
    """The credit note as a Factur-X EN 16931 PDF."""
    return _credit_note(note, cii.credit_note_xml(note))


def printed_invoice(invoice: InvoiceView) -> bytes:
    """The invoice as a reader sees it (a PDF without its XML)."""
    return _invoice(invoice, None)


def _invoice(invoice: InvoiceView, xml: bytes | None) -> bytes:
    pdf = _Document(f"Facture {invoice.number}", invoice.model_dump_json(), xml)
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
    if invoice.agreement_reference:
        facts.append(("Convention n°", invoice.agreement_reference))
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
                price(unit_price(line.amount_cents, line.quantity)),
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
            (
                total_label(invoice.vat_breakdown, "Total TTC à payer", "Net à payer"),
                money(invoice.totals.total_cents),
                True,
            ),
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
    for text in PAYMENT_NOTES.values():  # late-payment interest, recovery fee, discount
        pdf.line_of(text, size=8.5)
    return bytes(pdf.output())


def _credit_note(note: CreditNoteView, xml: bytes | None) -> bytes:
    pdf = _Document(f"Avoir {note.number}", note.model_dump_json(), xml)
    _header(
        pdf,
        "AVOIR",
        [
            ("Numéro", note.number),
            ("Date d'émission", f"{note.issue_date:%d/%m/%Y}"),
            ("Facture d'origine", note.invoice_number),
            ("du", f"{note.invoice_issue_date:%d/%m/%Y}"),
            *([("Convention n°", note.agreement_reference)] if note.agreement_reference else []),
        ],
        note.supplier,
        note.customer,
    )
    pdf.line_of(f"Motif : {note.reason}")
    pdf.ln(2)
    _table(
        pdf,
        ("N°", "Ligne", "Désignation", "Qté", "Unité", "PU HT", "Montant HT"),
        (10, 14, 72, 14, 16, 24, 24),
        ("L", "L", "L", "R", "L", "R", "R"),
        [
            (
                str(line.line),
                f"ligne {line.invoice_line}",
                line.description + served(line.service_start, line.service_end),
                quantity(line.quantity),
                unit_name(line.unit, line.quantity),
                price(unit_price(line.amount_cents, line.quantity)),
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
            (
                total_label(note.vat_breakdown, "Total TTC crédité", "Net crédité"),
                money(note.totals.total_cents),
                True,
            ),
        ],
    )
    _mentions(pdf, note.vat_breakdown)
    return bytes(pdf.output())
