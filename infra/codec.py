"""JSON made by orjson, for messages (a kombu serializer) and HTTP answers.

The same JSON kombu's own `json` serializer writes and reads, so every process and tool
still speaks `application/json`: datetimes, decimals, bytes … go as kombu's typed objects
(`{"__type__": "datetime", "__value__": …}`) and come back as such. Only faster: a search
answer of 20 listings (16 KB) is encoded and decoded about five times quicker, and it is
encoded in the service, decoded and encoded again in the gateway on every search.

Read back, a body gives the very objects kombu's decoder gives: what orjson would read
otherwise is left to kombu's (a typed value; an integer beyond 64 bits, which orjson makes a
float; NaN and what else orjson refuses). nameko registers it for every service process
(ServiceSettings.nameko_config), so every consumer and every RPC reply is read by it.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from kombu.utils import json as kombu_json

CONTENT_TYPE = "application/json"
# datetimes go through kombu's typed form rather than orjson's plain strings; int keys
# become strings as with the standard library
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS
_kombu_default = kombu_json.JSONEncoder().default
_TYPED = b'"__type__"'
_ESCAPE = b"\\u"  # a backslash-u escape may spell `__type__` (or half a surrogate pair)
# orjson reads an integer beyond 64 bits as a float; such an integer has 19 digits at least
_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19


def dumps(obj: Any) -> bytes:
    """Message body: kombu's JSON, typed values included."""
    try:
        return orjson.dumps(obj, default=_kombu_default, option=_OPTIONS)
    except orjson.JSONEncodeError:  # what orjson refuses (integers beyond 64 bits, …)
        return kombu_json.dumps(obj).encode()


def loads(data: bytes | str) -> Any:
    """Message body back to Python, as kombu's own decoder reads it: by orjson unless the
    body holds what orjson reads otherwise (rare: see the module's docstring)."""
    if isinstance(data, str):
        return kombu_json.loads(data)  # not what a broker delivers
    if isinstance(data, memoryview | bytearray):
        data = bytes(data)
    if not (_TYPED in data or _ESCAPE in data or _LONG_NUMBER in data.translate(_DIGITS)):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # NaN, Infinity, 1e400, bad UTF-8: kombu's decoder reads it or says why
    return kombu_json.loads(data)


def to_json(obj: Any) -> bytes:
    """An HTTP answer's body: plain JSON, datetimes as ISO 8601 strings."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # integers beyond 64 bits
        return json.dumps(obj, ensure_ascii=False).encode()


# what nameko's config registers (see ServiceSettings.nameko_config)
SERIALIZER = "mutualis-json"
SERIALIZERS = {
    SERIALIZER: {
        "encoder": "infra.codec.dumps",
        "decoder": "infra.codec.loads",
        "content_type": CONTENT_TYPE,
        "content_encoding": "utf-8",
    }
}
