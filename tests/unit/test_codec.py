"""Messages in orjson's JSON read the same as kombu's own JSON, both ways."""

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import kombu.serialization
import pytest
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
