"""A small closed-loop HTTP load generator: N threads, each with its own keep-alive connection.

    result = measure("floor", lambda n: "/api/v1/ping", url=stack.url, headers=auth)
    result = measure("book", lambda n: Request("POST", "/api/v1/bookings", body={...}), ...)

Every request of the measured window is timed; requests made during the warm-up are not.
The generator runs on the same machine as the system under test and takes its share of
the CPU: `Result.generator_cpu_seconds` says how much.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CONNECTIONS = 16
DEFAULT_SECONDS = 15.0
DEFAULT_WARMUP = 3.0


def env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass(frozen=True)
class Request:
    """One request to send; `body` is JSON-encoded unless it is already bytes."""

    method: str
    path: str
    body: Any = None
    headers: Mapping[str, str] | None = None

    def encoded_body(self) -> bytes | None:
        if self.body is None or isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False).encode()


# what a scenario gives: for the n-th request (0, 1, 2, … shared by all connections), a path
# to GET or a full Request
RequestFactory = Callable[[int], "str | Request"]


def percentile(ordered: list[float], p: float) -> float:
    """Linear interpolation between closest ranks; `ordered` is sorted, p in [0, 100]."""
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Result:
    name: str
    connections: int
    seconds: float  # the measured window as it really lasted
    latencies: list[float] = field(repr=False)  # seconds, every request of the window
    errors: int
    statuses: Counter
    failures: Counter  # exceptions by type name (connection reset, timeout, …)
    generator_cpu_seconds: float
    sample_error: str | None = None

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def pct_ms(self, p: float) -> float:
        return percentile(self._ordered, p) * 1000

    @property
    def _ordered(self) -> list[float]:
        cached = self.__dict__.get("_sorted")
        if cached is None or len(cached) != len(self.latencies):
            cached = self.__dict__["_sorted"] = sorted(self.latencies)
        return cached

    def summary(self) -> dict:
        ordered = self._ordered
        return {
            "name": self.name,
            "connections": self.connections,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "errors": self.errors,
            "throughput_rps": round(self.throughput, 1),
            "latency_ms": {
                "min": round(ordered[0] * 1000, 2) if ordered else None,
                "mean": round(sum(ordered) / len(ordered) * 1000, 2) if ordered else None,
                "p50": round(self.pct_ms(50), 2),
                "p90": round(self.pct_ms(90), 2),
                "p99": round(self.pct_ms(99), 2),
                "max": round(ordered[-1] * 1000, 2) if ordered else None,
            },
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": dict(self.failures),
            "generator_cpu_seconds": round(self.generator_cpu_seconds, 2),
            "sample_error": self.sample_error,
        }


class _Worker(threading.Thread):
    """One connection, one request at a time (closed loop)."""

    def __init__(
        self,
        index: int,
        host: str,
        port: int,
        factory: RequestFactory,
        sequence: itertools.count,
        headers: Mapping[str, str],
        timeout: float,
        window: _Window,
    ):
        super().__init__(name=f"load-{index}", daemon=True)
        self.host, self.port = host, port
        self.factory = factory
        self.sequence = sequence
        self.headers = dict(headers)
        self.timeout = timeout
        self.window = window
        self.latencies: list[float] = []
        self.statuses: Counter = Counter()
        self.failures: Counter = Counter()
        self.errors = 0
        self.last_end = 0.0
        self.sample_error: str | None = None
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def run(self) -> None:
        window = self.window
        window.ready.wait()
        while not window.stop.is_set():
            spec = self.factory(next(self.sequence))
            request = spec if isinstance(spec, Request) else Request("GET", spec)
            headers = dict(self.headers)
            if request.headers:
                headers.update(request.headers)
            body = request.encoded_body()
            if body is not None:
                headers.setdefault("Content-Type", "application/json")
            started = time.perf_counter()
            if started >= window.end:
                break
            status, failure, text = None, None, None
            try:
                conn = self._connection()
                conn.request(request.method, request.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                status = response.status
                if status >= 300:
                    text = payload[:300].decode(errors="replace")
                if response.will_close:
                    self._drop_connection()
            except (OSError, http.client.HTTPException) as exc:
                failure = type(exc).__name__
                text = str(exc)
                self._drop_connection()
            ended = time.perf_counter()
            if started < window.start:
                continue  # warm-up
            self.latencies.append(ended - started)
            self.last_end = ended
            if failure is not None:
                self.failures[failure] += 1
                self.errors += 1
            else:
                self.statuses[status] += 1
                if status >= 300:
                    self.errors += 1
            if text is not None and self.sample_error is None:
                self.sample_error = f"{status or failure}: {text}"
        self._drop_connection()


class _Window:
    def __init__(self, warmup: float, seconds: float):
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.warmup = warmup
        self.seconds = seconds
        self.start = self.end = 0.0

    def open(self) -> None:
        now = time.perf_counter()
        self.start = now + self.warmup
        self.end = self.start + self.seconds
        self.ready.set()


def combined(parts: list[Result]) -> Result:
    """Several measured windows of one scenario as one result (interleaved rounds)."""
    first = parts[0]
    statuses: Counter = Counter()
    failures: Counter = Counter()
    for part in parts:
        statuses.update(part.statuses)
        failures.update(part.failures)
    return Result(
        name=first.name,
        connections=first.connections,
        seconds=sum(p.seconds for p in parts),
        latencies=[x for p in parts for x in p.latencies],
        errors=sum(p.errors for p in parts),
        statuses=statuses,
        failures=failures,
        generator_cpu_seconds=sum(p.generator_cpu_seconds for p in parts),
        sample_error=next((p.sample_error for p in parts if p.sample_error), None),
    )


def measure(
    name: str,
    make_request: RequestFactory,
    *,
    url: str,
    connections: int = DEFAULT_CONNECTIONS,
    seconds: float | None = None,
    warmup: float | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    during: AbstractContextManager | None = None,
) -> Result:
    """Drive `url` with `connections` keep-alive connections for `seconds` after `warmup`.

    `make_request(n)` gives the n-th request: a path (GET) or a Request (any method, JSON
    body). Errors are non-2xx answers and failed exchanges (reset, timeout); each still
    counts as a request with its latency. `during`, a context manager (e.g. a CPU meter),
    is entered when the measured window opens and left when it closes.
    """
    seconds = env_seconds("BENCH_SECONDS", DEFAULT_SECONDS) if seconds is None else seconds
    warmup = env_seconds("BENCH_WARMUP", DEFAULT_WARMUP) if warmup is None else warmup
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise ValueError(f"plain http://host:port expected, not {url}")
    host, port = parts.hostname, parts.port or 80
    base = {"Connection": "keep-alive", "Accept": "application/json"} | dict(headers or {})
    window = _Window(warmup, seconds)
    sequence = itertools.count()
    workers = [
        _Worker(i, host, port, make_request, sequence, base, timeout, window)
        for i in range(connections)
    ]
    for worker in workers:
        worker.start()
    window.open()
    try:
        time.sleep(max(0.0, window.start - time.perf_counter()))
        cpu_before = time.process_time()  # the generator's own CPU, measured window only
        with during if during is not None else contextlib.nullcontext():
            time.sleep(max(0.0, window.end - time.perf_counter()))
        cpu = time.process_time() - cpu_before
        while any(w.is_alive() for w in workers):
            for worker in workers:
                worker.join(timeout=0.2)
    finally:
        window.stop.set()  # on Ctrl-C the threads stop after their current request
    latencies = [x for w in workers for x in w.latencies]
    last_end = max((w.last_end for w in workers), default=window.end)
    statuses: Counter = Counter()
    failures: Counter = Counter()
    for worker in workers:
        statuses.update(worker.statuses)
        failures.update(worker.failures)
    return Result(
        name=name,
        connections=connections,
        seconds=max(last_end, window.end) - window.start,
        latencies=latencies,
        errors=sum(w.errors for w in workers),
        statuses=statuses,
        failures=failures,
        generator_cpu_seconds=cpu,
        sample_error=next((w.sample_error for w in workers if w.sample_error), None),
    )
