"""Log lines (infra.logs): one JSON object each, with the request's correlation id, the
fields an `extra=` adds and the traceback of an exception."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime

import orjson
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


def test_an_ascii_line_is_orjsons_compact_json(lines):
    logging.getLogger("services.bookings").info("booking b-1 returned", extra={"cents": 1250})

    [line] = lines().splitlines()
    assert line == orjson.dumps(json.loads(line)).decode()


def test_a_french_line_is_written_as_the_same_line_in_ascii_would_be(lines):
    """Same fields, order and separators; only its letters beyond ASCII escaped (a character
    beyond the first 65,536, like 𝔈, as two), and an extra date written alike."""
    logger = logging.getLogger("services.notifications")
    when = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    logger.warning("échéance dépassée 𝔈", extra={"due": when})
    logger.warning("echeance depassee E", extra={"due": when})

    french, plain = lines().splitlines()
    assert french.isascii()
    assert json.loads(french)["message"] == "échéance dépassée 𝔈"
    assert json.loads(french)["due"] == json.loads(plain)["due"] == "2026-12-07T09:30:00+00:00"
    unescaped = french.replace("\\u00e9", "e").replace("\\ud835\\udd08", "E")
    assert json.loads(unescaped)["message"] == json.loads(plain)["message"]
    assert unescaped[unescaped.index(',"level"') :] == plain[plain.index(',"level"') :]


def test_a_french_exception_comes_out_ascii_with_its_traceback(lines):
    try:
        raise ValueError("échéance inconnue")
    except ValueError:
        logging.getLogger("services.billing").exception("facture non émise")

    [line] = lines().splitlines()
    assert line.isascii()
    logged = json.loads(line)
    assert logged["message"] == "facture non émise"
    assert logged["exc_info"].endswith("ValueError: échéance inconnue")
    assert '"level":"ERROR"' in line  # the format of every line (json.dumps adds a space)
