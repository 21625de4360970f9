"""Cursors of paginated lists: opaque to clients, an offset inside."""

import base64

from contracts.errors import InvalidInput, field_error


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        kind, value = text.split(":", 1)
        offset = int(value)
        if kind != "o" or offset < 0:
            raise ValueError
        return offset
    except ValueError:
        raise InvalidInput(
            "Invalid cursor",
            [field_error("cursor", "not a cursor this API gave")],
        ) from None
