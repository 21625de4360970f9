"""A PDF as a reader sees it: rendered by poppler's `pdftoppm`, and whether given words are
really drawn on the page (ink where poppler places them), not only present in the text."""

from __future__ import annotations

import html
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

DPI = 100
_WORD = re.compile(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
)


@dataclass(frozen=True)
class Drawn:
    """A word where poppler places it, and the share of dark pixels in that box once
    rendered."""

    text: str
    page: int
    ink: float


def drawn_words(document: bytes) -> list[Drawn]:
    """Every word of the PDF with the ink of its box on the page pdftoppm renders."""
    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "document.pdf"
        pdf.write_bytes(document)
        boxes = subprocess.run(
            ["pdftotext", "-bbox", str(pdf), "-"], check=True, capture_output=True, text=True
        ).stdout
        subprocess.run(
            ["pdftoppm", "-r", str(DPI), "-gray", "-png", str(pdf), str(Path(folder) / "page")],
            check=True,
            capture_output=True,
        )
        pages = [Image.open(p).convert("L") for p in sorted(Path(folder).glob("page-*.png"))]
        words = []
        for number, chunk in enumerate(boxes.split("<page ")[1:]):
            picture = pages[number]
            for x0, y0, x1, y1, text in _WORD.findall(chunk):
                box = tuple(round(float(v) * DPI / 72) for v in (x0, y0, x1, y1))
                region = picture.crop(box)
                pixels = region.width * region.height or 1
                dark = sum(count for value, count in enumerate(region.histogram()) if value < 128)
                words.append(Drawn(html.unescape(text), number + 1, dark / pixels))
        return words


def assert_drawn(document: bytes, *phrases: str) -> None:
    """Each phrase's words appear in order on a rendered page, each with ink in its box."""
    words = drawn_words(document)
    for phrase in phrases:
        wanted = phrase.split()
        texts = [w.text.replace("\u202f", " ").replace("\xa0", " ") for w in words]
        starts = [i for i in range(len(texts)) if texts[i : i + len(wanted)] == wanted]
        assert starts, f"{phrase!r} is not on any rendered page: {' '.join(texts)[:2000]}"
        found = words[starts[0] : starts[0] + len(wanted)]
        blank = [w.text for w in found if w.ink < 0.02]
        assert not blank, f"{phrase!r}: nothing drawn where {blank} should be"
