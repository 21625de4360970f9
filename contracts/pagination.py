"""Cursors of paginated lists: opaque to clients. An offset inside, or, for lists whose rows
come and go while someone pages (the listings search), a keyset: the sort key of the last
row shown, so that a row added or removed between two pages neither repeats nor skips one."""

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

from contracts.errors import InvalidInput, field_error


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _not_ours() -> InvalidInput:
    return InvalidInput("Invalid cursor", [field_error("cursor", "not a cursor this API gave")])


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
        raise _not_ours() from None


# what each value of a keyset is; JSON carries instants as ISO text
KEY_KINDS = ("instant", "integer", "number", "text")


def _check(scope: str, values: list) -> str:
    """Ties a keyset to the list it came from (`scope`: the query's filters and sort) and to
    its values: a cursor edited, or taken to another search, is refused. An integrity check,
    not a secret: a forged cursor could only start a page elsewhere in the same list."""
    text = json.dumps([scope, values], separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def encode_keyset(scope: str, values: Sequence) -> str:
    """The cursor after a row whose sort key is `values` (the last one being its id)."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    text = json.dumps({"k": plain, "c": _check(scope, plain)}, separators=(",", ":"))
    return "k" + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _typed(value, kind: str):
    if kind == "instant" and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            return moment
    elif kind == "integer" and type(value) is int:
        return value
    elif kind == "number" and type(value) in (int, float):
        return float(value)
    elif kind == "text" and isinstance(value, str) and len(value) <= 100:
        return value
    raise ValueError(kind)


def decode_keyset(cursor: str | None, scope: str, kinds: Sequence[str]) -> list | None:
    """The sort key a cursor of `encode_keyset(scope, ...)` holds, typed as `kinds` say;
    None for the first page. Anything else (garbage, an edited cursor, one of another search
    or sort, an offset cursor) is invalid input on `cursor`."""
    if not cursor:
        return None
    try:
        if not cursor.startswith("k"):
            raise ValueError
        body = cursor[1:]
        found = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        values, check = found["k"], found["c"]
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError
        if check != _check(scope, values):
            raise ValueError
        return [_typed(value, kind) for value, kind in zip(values, kinds, strict=True)]
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise _not_ours() from None
