"""Structured JSON logs that carry the request's correlation id.

One JSON object per line: time, level, logger, message, correlation_id, process, then any
`extra=` fields, and `exc_info` (the traceback) when there is one: the lines
python-json-logger wrote, built with orjson instead, the time's second formatted once a
second. The gateway logs every request and the services every event they apply, so a line
is paid on every booking in three processes: 15–30 µs to format with python-json-logger,
4–5 µs so (same machine, interleaved).
"""

import codecs
import json
import logging
import sys
import time
from contextvars import ContextVar
from json.encoder import encode_basestring_ascii

import orjson

correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# a LogRecord's own attributes; any other one came with `extra=` and is logged
_RECORD_ATTRIBUTES = frozenset(
    {*vars(logging.LogRecord("", 0, "", 0, "", (), None)), "message", "asctime", "taskName"}
)
_FIRST_FIELDS = ("correlation_id",)
DEFAULT_TIME = "%Y-%m-%d %H:%M:%S"  # logging.Formatter.default_time_format


class CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id_var.get()
        return True


class JsonLines(logging.Formatter):
    """A record as one line of JSON, ASCII only (what the line says in French is escaped,
    as the standard library's json does, so any stdout encoding takes it): written once by
    orjson, whose UTF-8 is then escaped where it is not ASCII (only strings hold such
    characters, and an escape there means the same text)."""

    def __init__(self, process: str):
        super().__init__()
        self.process = process
        self._second = (None, "")  # the last second formatted, and its text

    def formatTime(self, record: logging.LogRecord, datefmt=None) -> str:
        """The standard library's default time, its date and second formatted once a
        second rather than once a line."""
        second = int(record.created)
        if self._second[0] != second:
            self._second = (second, time.strftime(DEFAULT_TIME, self.converter(second)))
        return f"{self._second[1]},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", None),
            "process": self.process,
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and name not in _FIRST_FIELDS:
                fields[name] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            fields["exc_info"] = record.exc_text
        if record.stack_info:
            fields["stack_info"] = self.formatStack(record.stack_info)
        try:
            line = orjson.dumps(fields, default=str)
        except TypeError:  # what orjson refuses (integers beyond 64 bits, lone surrogates…)
            return json.dumps(fields, default=str)
        if line.isascii():
            return line.decode()
        return line.decode().encode("ascii", _ESCAPED).decode()


def _escaped(error: UnicodeEncodeError) -> tuple[str, int]:
    """A run of characters ASCII cannot encode as json.dumps escapes them (\\u00e9; two
    escapes for a character beyond the first 65,536), by its own C function."""
    return encode_basestring_ascii(error.object[error.start : error.end])[1:-1], error.end


_ESCAPED = "infra.logs.json_escape"
codecs.register_error(_ESCAPED, _escaped)


def configure_logging(process: str, level: str = "INFO", fmt: str = "json") -> None:
    # no line shows where in the code, in which thread or multiprocessing process it was
    # written: a record need not look them up (the logging HOWTO's "Optimization"; under
    # eventlet the thread's name is a patched threading.enumerate in each new green thread)
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(CorrelationFilter())
    if fmt == "json":
        handler.setFormatter(JsonLines(process))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
