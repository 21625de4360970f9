"""A service whose reply cannot reach the broker stays up: the reply is dropped, logged; a
reply is encoded once and published with nameko's own options on a Connection kept."""

import json
import logging
import sys
import uuid
from contextlib import contextmanager
from types import SimpleNamespace

import nameko.amqp.publish
import pytest
import yaml
from nameko.amqp.publish import Publisher
from nameko.exceptions import IncorrectSignature, serialize

from contracts.errors import Conflict
from infra import rpc
from infra.exactly_once import KeptReply, Request, encoded_reply


class Remember(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_reply_to_an_unreachable_broker_is_dropped_not_fatal(monkeypatch):
    monkeypatch.setattr(
        rpc,
        "REPLY_RETRY_POLICY",
        {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1},
    )
    seen = Remember()
    logging.getLogger("infra.rpc").addHandler(seen)
    message = SimpleNamespace(
        properties={
            "reply_to": "rpc.reply-gateway",
            "correlation_id": "c1",
            "content_type": "application/json",
        }
    )
    responder = rpc.PatientResponder("amqp://guest:guest@127.0.0.1:1/", None, "json", message)
    responder.publisher_cls = rpc._patient_publisher
    try:
        result, exc_info = responder.send_response({"ok": True}, None)
    finally:
        logging.getLogger("infra.rpc").removeHandler(seen)

    assert result == {"ok": True} and exc_info is None
    assert any("reply to rpc.reply-gateway lost" in m for m in seen.messages)


class Captured:
    """A publisher that keeps what it is asked to publish."""

    sent: list = []

    def __init__(self, amqp_uri, **kwargs):
        pass

    def publish(self, body, **kwargs):
        Captured.sent.append((body, kwargs))


def reply(result, exc_info=None, request=None, kept=None, content_type="application/json"):
    """What the responder answers and publishes; with `request`, one applied once, whose
    replies it stores into `kept`."""
    message = SimpleNamespace(
        properties={
            "reply_to": "rpc.reply-gateway",
            "correlation_id": "c2",
            "content_type": content_type,
        }
    )
    responder = rpc.PatientResponder("amqp://unused/", "nameko-rpc", "json", message)
    responder.publisher_cls = Captured
    if request is not None:
        responder.request, responder.keep = request, kept.append
    Captured.sent = []
    answer = responder.send_response(result, exc_info)
    [(body, options)] = Captured.sent
    if content_type != "application/json":
        return answer, body, options
    return answer, json.loads(body), options


def test_a_reply_stored_with_its_effect_is_sent_as_stored_unless_another_answer():
    """The body a group commit stored with the effect is the one sent, not stored again,
    for that very outcome (a result, or a refusal raised); a copy of it, or a request in
    another content type, is encoded and stored as any other answer."""
    booked, refused = {"id": "b1"}, Conflict("taken")
    replies = []
    for outcome in (booked, refused):
        error = serialize(outcome) if outcome is refused else None
        body, encoding = encoded_reply(None if error else outcome, error, "application/json")
        request = Request("r1", "bookings.request", recorded=True)
        request.reply = KeptReply(outcome, "application/json", body, encoding)
        replies.append((request, body))
    kept = []

    (booked_request, booked_body), (refused_request, refused_body) = replies
    reply(booked, None, booked_request, kept)
    assert Captured.sent[0][0] is booked_body
    try:
        raise refused
    except Conflict:
        reply(None, sys.exc_info(), refused_request, kept)
    assert Captured.sent[0][0] is refused_body
    assert kept == []

    _, body, _ = reply(dict(booked), None, booked_request, kept)
    assert Captured.sent[0][0] == booked_body and body["result"] == booked
    assert kept == [(booked_request, booked_request.reply.text)]  # stored as text
    reply(booked, None, booked_request, kept, content_type="application/x-yaml")
    assert yaml.safe_load(Captured.sent[0][0]) == {"result": booked, "error": None}
    sent = Captured.sent[0][0]
    assert kept[-1] == (booked_request, sent.decode() if isinstance(sent, bytes) else sent)


def test_a_reply_is_encoded_once_and_sent_without_confirm_nor_persistence():
    (result, exc_info), body, options = reply({"items": [1, 2]})

    assert (result, exc_info) == ({"items": [1, 2]}, None)
    assert body == {"result": {"items": [1, 2]}, "error": None}
    assert options["content_type"] == "application/json"
    assert (options["use_confirms"], options["delivery_mode"]) == (False, rpc.TRANSIENT)
    assert (options["routing_key"], options["correlation_id"]) == ("rpc.reply-gateway", "c2")


def test_a_result_that_cannot_be_encoded_answers_an_error():
    (result, exc_info), body, _ = reply({"oops": object()})

    assert result is None and exc_info is not None  # the encoding error, as nameko keeps it
    assert body["result"] is None
    assert body["error"]["exc_type"] == "UnserializableValueError"


def test_an_error_is_answered_as_nameko_serializes_it():
    try:
        raise ValueError("no such listing")
    except ValueError:
        exc_info = sys.exc_info()
    (_, kept), body, _ = reply(None, exc_info)

    assert kept is exc_info
    assert body["error"]["exc_type"] == "ValueError"
    assert body["error"]["value"] == "no such listing"


def test_a_kept_connection_publish_merges_its_options_as_naminos_own(monkeypatch):
    """KeptConnectionPublisher runs nameko's Publisher.publish: what reaches the producer
    is what nameko's would send; only the producer's Connection is made once per broker."""
    sent = {"kept": [], "nameko": []}

    @contextmanager
    def producer_of(where, connection):
        yield SimpleNamespace(publish=lambda body, **kw: sent[where].append((connection, kw)))

    class Pools(dict):
        def __missing__(self, connection):
            return SimpleNamespace(acquire=lambda block: producer_of("kept", connection))

    def nameko_producer(amqp_uri, confirms, ssl, login_method, transport_options):
        return producer_of("nameko", confirms)

    monkeypatch.setattr(rpc, "producers", Pools())
    monkeypatch.setattr(nameko.amqp.publish, "get_producer", nameko_producer)
    uri = f"amqp://guest:guest@127.0.0.1/{uuid.uuid4().hex}"  # brokers of this test alone
    made = {"headers": {"a": 1, "b": 1}, "declare": ["q1"], "retry_policy": rpc.REPLY_RETRY_POLICY}
    calls = [
        {"headers": {"b": 2}, "extra_headers": {"c": 3}, "declare": ["q2"], "use_confirms": False},
        {"routing_key": "r", "priority": 5, "delivery_mode": rpc.TRANSIENT},
        {"use_confirms": False, "correlation_id": "c3"},
    ]
    for publisher_cls in (rpc.KeptConnectionPublisher, Publisher):
        for options in calls:
            publisher_cls(uri, **made).publish(b"{}", **dict(options))

    assert [kw for _, kw in sent["kept"]] == [kw for _, kw in sent["nameko"]]
    first, second, third = (connection for connection, _ in sent["kept"])
    assert sent["kept"][0][1]["headers"] == {"a": 1, "b": 2, "c": 3}
    assert sent["kept"][0][1]["declare"] == ["q1", "q2"]
    assert first is third and first is not second  # one Connection per broker and confirms
    assert first.transport_options["confirm_publish"] is False
    assert second.transport_options["confirm_publish"] is True


def test_a_request_is_checked_against_its_methods_signature_read_once():
    class Service:
        def request(self, caller: dict, request: dict) -> dict:
            return {}

    entrypoint = rpc.PatientRpc(expected_exceptions=())
    entrypoint.container = SimpleNamespace(service_cls=Service)
    entrypoint.method_name = "request"

    entrypoint.check_signature(({"user_id": "u1"},), {"request": {}})
    for args, kwargs in (((), {}), (({}, {}, {}), {}), (({},), {"other": 1})):
        with pytest.raises(IncorrectSignature):
            entrypoint.check_signature(args, kwargs)
    assert entrypoint.signature is entrypoint.signature  # read once
