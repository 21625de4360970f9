"""Uploaded photos checked and re-encoded with Pillow before anyone stores or shows them.

Only JPEG, PNG and WebP decoders are ever asked (never PDF, EPS or the dozens of formats
Pillow can read); the dimensions are read from the header and an image bomb (a small file
that decodes to gigabytes) refused before decoding; the decoded image is turned upright
(EXIF orientation) and written again without its metadata (EXIF, GPS position, XMP), at most
MAX_SIDE pixels on its longer side, with a thumbnail beside it."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# what an upload may weigh (the gateway reads no more)
MAX_PHOTO_BYTES = 10 * 1024 * 1024
# what an image may decode to: 40 megapixels (a 48 MP phone writes 12 MP by default)
MAX_PIXELS = 40_000_000
# the stored photo's longer side, and its thumbnail's
MAX_SIDE = 2560
THUMBNAIL_SIDE = 480
# Pillow format -> (media type, file extension)
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}


class ImageRefused(ValueError):
    """Why an upload is no photo we keep; `too_large` when its size alone refuses it."""

    def __init__(self, message: str, too_large: bool = False):
        super().__init__(message)
        self.message = message
        self.too_large = too_large


@dataclass(frozen=True)
class CheckedPhoto:
    """A photo as stored: re-encoded bytes, their thumbnail, what they are."""

    data: bytes
    thumbnail: bytes
    content_type: str
    extension: str
    width: int
    height: int

    @property
    def digest(self) -> str:
        """SHA-256 of the stored bytes: their content address."""
        return hashlib.sha256(self.data).hexdigest()


def header_of(raw: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header alone: no pixel decoded yet."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=tuple(FORMATS)) as probe:
                return probe.format, probe.width, probe.height
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(f"the image is larger than {MAX_PIXELS:,} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageRefused("the file is no JPEG, PNG or WebP image") from None


def checked_photo(raw: bytes) -> CheckedPhoto:
    """`raw` as a photo we store, or ImageRefused saying why not."""
    if len(raw) > MAX_PHOTO_BYTES:
        raise ImageRefused(f"a photo weighs at most {MAX_PHOTO_BYTES // 2**20} MB", True)
    if not raw:
        raise ImageRefused("the file is empty")
    kind, width, height = header_of(raw)
    if width * height > MAX_PIXELS:
        raise ImageRefused(f"the image is larger than {MAX_PIXELS:,} pixels ({width}×{height})")
    try:
        with Image.open(io.BytesIO(raw), formats=(kind,)) as image:
            if kind == "JPEG":  # decoded at 1/2, 1/4 or 1/8 scale when that is still enough
                image.draft(image.mode, (MAX_SIDE, MAX_SIDE))
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ImageRefused("the image is damaged or truncated") from None
    content_type, extension = FORMATS[kind]
    upright.thumbnail((MAX_SIDE, MAX_SIDE))
    data = _encoded(upright, kind)
    small = upright.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return CheckedPhoto(
        data=data,
        thumbnail=_encoded(small, kind),
        content_type=content_type,
        extension=extension,
        width=upright.width,
        height=upright.height,
    )


def _encoded(image: Image.Image, kind: str) -> bytes:
    """`image` written in `kind` with no metadata but its colour profile (nothing passed to
    save is nothing written: Pillow writes EXIF and XMP only when given them)."""
    out = io.BytesIO()
    icc = image.info.get("icc_profile")
    extra = {"icc_profile": icc} if icc else {}
    if kind == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=85, optimize=True, progressive=True, **extra)
    elif kind == "PNG":
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            image = image.convert("RGBA")
        image.save(out, "PNG", optimize=True, **extra)
    else:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode else "RGB")
        image.save(out, "WEBP", quality=85, method=4, **extra)
    return out.getvalue()
