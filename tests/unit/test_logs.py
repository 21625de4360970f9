"""Log lines (infra.logs): one JSON object each, with the request's correlation id, the
fields an `extra=` adds and the traceback of an exception."""

from __future__ import annotations

import io
import json
import logging

import pytest

from infra.logs import JsonLines, configure_logging, correlation_id_var


def parsed(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def lines():
    """What is logged, as written."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("bookings")
    stream = root.handlers[0].stream = io.StringIO()
    token = correlation_id_var.set("req-42")
    yield stream.getvalue
    correlation_id_var.reset(token)
    root.handlers[:], root.level = handlers, level


def test_a_line_names_its_time_level_logger_message_request_and_process(lines):
    logging.getLogger("services.bookings").info("booking %s requested", "b-1")

    [line] = parsed(lines())
    assert list(line) == ["time", "level", "logger", "message", "correlation_id", "process"]
    assert line["level"] == "INFO" and line["logger"] == "services.bookings"
    assert line["message"] == "booking b-1 requested"
    assert (line["correlation_id"], line["process"]) == ("req-42", "bookings")


def test_the_time_is_the_standard_librarys_to_the_millisecond():
    record = logging.LogRecord("x", logging.INFO, "f", 1, "m", (), None)
    record.created, record.msecs = 1_800_000_000.25, 250.0
    formatter = JsonLines("gateway")
    for _ in range(2):  # the second from what was kept
        assert formatter.formatTime(record) == logging.Formatter().formatTime(record)


def test_extra_fields_and_a_traceback_are_kept(lines):
    try:
        raise ValueError("no such listing")
    except ValueError:
        logging.getLogger("infra.rpc").exception("failed", extra={"booking_id": "b-2"})

    [line] = parsed(lines())
    assert line["booking_id"] == "b-2"
    assert "ValueError: no such listing" in line["exc_info"]


def test_what_is_written_in_french_comes_out_ascii(lines):
    logging.getLogger("services.notifications").warning("échéance dépassée")

    assert lines().isascii()
    assert parsed(lines())[0]["message"] == "échéance dépassée"
