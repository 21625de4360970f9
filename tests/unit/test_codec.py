"""Messages in orjson's JSON read the same as kombu's own JSON, both ways."""

import json
import math
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

import kombu.serialization
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kombu.utils import json as kombu_json

from infra import codec

MESSAGE = {
    "id": "7c6f3a52-0000-4000-8000-000000000001",
    "title": "Chasse-neige à lame biaise — Saint-Étienne",
    "rate_cents": 42000,
    "ratio": 0.69,
    "flags": [True, False, None],
    "nested": {"depth": [{"x": 1}]},
}
TYPED = {
    "at": datetime(2026, 11, 27, 13, 57, 17, 123456, tzinfo=UTC),
    "day": date(2026, 12, 24),
    "amount": Decimal("150.00"),
    "raw": b"\x00\xff",
}


@pytest.mark.parametrize("value", [MESSAGE, TYPED, [MESSAGE, TYPED], "plain", 7, None])
def test_what_kombu_writes_we_read_and_what_we_write_kombu_reads(value):
    assert codec.loads(kombu_json.dumps(value)) == value
    assert kombu_json.loads(codec.dumps(value)) == value
    assert codec.loads(codec.dumps(value)) == value


def test_uuids_arrive_as_their_text():
    ident = uuid.uuid4()
    assert codec.loads(codec.dumps({"id": ident})) == {"id": str(ident)}


def test_what_orjson_refuses_still_goes_through_kombu():
    huge = {"n": 2**70, 3: "int key"}
    assert codec.loads(codec.dumps(huge)) == {"n": 2**70, "3": "int key"}


def read_by(decoder, body):
    """What `decoder` makes of `body`: its value with every type spelt out (1 and 1.0,
    NaN and NaN, alike), or the kind of error it raises."""
    try:
        return typed(decoder(body))
    except Exception as exc:
        return type(exc)


def typed(value):
    if isinstance(value, dict):
        return ("dict", [(typed(k), typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


# bodies orjson alone would read otherwise than kombu: a float for an integer beyond 64
# bits, a refusal of NaN, Infinity, 1e400 or half a surrogate pair, a typed value missed
# when its key is escaped; and what both must refuse alike
EDGE_BODIES = [
    b'{"n": 1180591620717411303425}',
    b"[18446744073709551616, -9223372036854775809, 18446744073709551615]",
    b"[NaN, Infinity, -Infinity]",
    b"[1e400, -1e400, 1e-400]",
    b'["\\ud800", "\\udc00x"]',
    b'{"\\u005f_type__": "decimal", "__value__": "1.50"}',
    b'{"__type__": "decimal", "__value__": "1.50"}',
    b'{"__type__": "no such type", "__value__": 1}',
    b'{"a": 1, "b": 2, "a": 3}',
    b'["\xff"]',
    b'["a\x01b"]',
    b"\xef\xbb\xbf[1]",
    b"[1] x",
    b"[1.]",
    b"",
    b"[0.1, 5e-324, 2.2250738585072011e-308, 1.7976931348623157e308, -0.0, -0, 1E+2]",
]


@pytest.mark.parametrize("body", EDGE_BODIES)
def test_every_body_reads_as_kombu_reads_it(body):
    assert read_by(codec.loads, body) == read_by(kombu_json.loads, body)


def test_typed_values_come_back_as_the_objects_kombu_makes():
    """What nameko's default (kombu's) serializer sends in RPC arguments and replies."""
    values = {
        "at": datetime(2026, 12, 7, 3, 24, 29, 378927, tzinfo=UTC),
        "day": date(2026, 12, 24),
        "hour": time(8, 30),
        "amount": Decimal("150.00"),
        "id": uuid.UUID("7c6f3a52-0000-4000-8000-000000000001"),
        "text": b"caf\xc3\xa9",
        "raw": b"\x00\xff",
    }
    body = kombu_json.dumps(values).encode()
    assert read_by(codec.loads, body) == read_by(kombu_json.loads, body)
    assert codec.loads(body) == values


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from([10**19, -(2**63) - 1, 2**64, math.inf, -math.inf]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.just("__type__"), children, max_size=4)
    ),
    max_leaves=12,
)


@given(JSON_VALUES)
def test_any_json_value_reads_as_kombu_reads_it(value):
    for body in (
        kombu_json.dumps(value).encode(),  # ASCII, escapes for the rest
        json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"),
        codec.dumps(value),
    ):
        assert read_by(codec.loads, body) == read_by(kombu_json.loads, body)


@given(
    st.lists(
        st.sampled_from(list(b'{}[],:"\\ 0123456789-+.eEtrufalsnNIy_u\xc3\xa9\xff')), max_size=30
    )
)
def test_any_bytes_read_or_refused_as_kombu_does(chars):
    body = bytes(chars)
    assert read_by(codec.loads, body) == read_by(kombu_json.loads, body)


def test_bodies_of_every_shape_are_read():
    body = codec.dumps(MESSAGE)
    for shape in (body, body.decode(), bytearray(body), memoryview(body)):
        assert codec.loads(shape) == MESSAGE


def test_registered_with_nameko_the_content_type_stays_json():
    from nameko.serialization import setup

    serializer, accept = setup({"SERIALIZERS": codec.SERIALIZERS, "serializer": codec.SERIALIZER})
    content_type, encoding, body = kombu.serialization.dumps(MESSAGE, serializer=serializer)
    assert (content_type, encoding) == ("application/json", "utf-8")
    accepted = kombu.serialization.prepare_accept_content(accept)
    assert kombu.serialization.loads(body, content_type, encoding, accept=accepted) == MESSAGE


def test_http_bodies_are_plain_json_with_iso_datetimes():
    body = codec.to_json({"at": TYPED["at"], "name": "Firminy"})
    assert body.decode() == '{"at":"2026-11-27T13:57:17.123456+00:00","name":"Firminy"}'
    assert codec.to_json({"n": 2**70}) == b'{"n": 1180591620717411303424}'
