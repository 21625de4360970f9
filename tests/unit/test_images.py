"""The checks an uploaded photo passes before it is stored, on real images made with Pillow:
the three formats kept and re-encoded, EXIF (and its GPS position) gone, the orientation
applied, a thumbnail beside it; a bomb refused from its header, a PDF named .jpg, a
truncated file, an oversized one refused."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from infra.images import (
    MAX_PHOTO_BYTES,
    MAX_SIDE,
    THUMBNAIL_SIDE,
    ImageRefused,
    checked_photo,
)

ORIENTATION, GPS_INFO, ARTIST = 0x0112, 0x8825, 0x013B


def image_bytes(kind: str, size=(64, 48), colour=(200, 30, 30), exif=None, mode="RGB") -> bytes:
    out = io.BytesIO()
    picture = Image.new(mode, size, colour)
    options = {"exif": exif} if exif is not None else {}
    picture.save(out, kind, **options)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")],
)
def test_each_kept_format_is_re_encoded_with_a_thumbnail(kind, content_type):
    photo = checked_photo(image_bytes(kind, size=(1200, 900)))
    assert photo.content_type == content_type
    assert (photo.width, photo.height) == (1200, 900)
    assert decoded(photo.data).format == kind
    small = decoded(photo.thumbnail)
    assert small.format == kind
    assert max(small.size) == THUMBNAIL_SIDE
    assert len(photo.digest) == 64


def test_exif_is_stripped_and_the_orientation_applied():
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # the camera was turned: show it rotated 90° clockwise
    exif[ARTIST] = "Agent municipal"
    exif[GPS_INFO] = {2: (45.0, 26.0, 0.0), 4: (4.0, 23.0, 0.0)}
    raw = image_bytes("JPEG", size=(80, 40), exif=exif)
    assert decoded(raw).getexif()[ARTIST] == "Agent municipal"  # the upload had them

    photo = checked_photo(raw)
    stored = decoded(photo.data)
    assert (photo.width, photo.height) == (40, 80)  # upright
    assert stored.size == (40, 80)
    assert dict(stored.getexif()) == {}
    assert b"Exif" not in photo.data and b"Agent municipal" not in photo.data
    assert dict(decoded(photo.thumbnail).getexif()) == {}


def test_a_large_photo_is_stored_at_a_bounded_size():
    photo = checked_photo(image_bytes("PNG", size=(4000, 1000), mode="L", colour=128))
    assert (photo.width, photo.height) == (MAX_SIDE, MAX_SIDE // 4)


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header says width × height (its few pixels would never decode to it)."""
    small = image_bytes("PNG", size=(1, 1))
    # IHDR is the first chunk: length, type, then width and height, then its CRC
    header = b"IHDR" + struct.pack(">II", width, height) + small[24:29]
    crc = struct.pack(">I", zlib.crc32(header))
    return small[:12] + header + crc + small[33:]


@pytest.mark.parametrize("side", [7000, 50_000, 100_000])
def test_an_image_bomb_is_refused_from_its_header(side, monkeypatch):
    raw = bomb_png(side, side)
    assert len(raw) < 100
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("decoded a bomb"))
    with pytest.raises(ImageRefused, match="pixels") as refused:
        checked_photo(raw)
    assert not refused.value.too_large


def test_a_pdf_named_jpg_is_no_image():
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    with pytest.raises(ImageRefused, match="no JPEG, PNG or WebP"):
        checked_photo(pdf)


@pytest.mark.parametrize("kind", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_refused(kind):
    with pytest.raises(ImageRefused, match="no JPEG, PNG or WebP"):
        checked_photo(image_bytes(kind))


def test_a_truncated_image_is_refused():
    raw = image_bytes("PNG", size=(300, 300), mode="RGB", colour=(1, 2, 3))
    noisy = Image.effect_noise((300, 300), 80).convert("RGB")
    out = io.BytesIO()
    noisy.save(out, "JPEG")
    for damaged in (raw[: len(raw) // 2], out.getvalue()[: len(out.getvalue()) // 2]):
        with pytest.raises(ImageRefused, match="damaged"):
            checked_photo(damaged)


def test_an_oversized_or_empty_upload_is_refused_before_reading_it():
    with pytest.raises(ImageRefused) as refused:
        checked_photo(b"\xff" * (MAX_PHOTO_BYTES + 1))
    assert refused.value.too_large
    with pytest.raises(ImageRefused, match="empty"):
        checked_photo(b"")
