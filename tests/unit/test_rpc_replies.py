"""A service whose reply cannot reach the broker stays up: the reply is dropped, logged."""

import logging
from types import SimpleNamespace

from infra import rpc


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
