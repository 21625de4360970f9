"""`python -m bench.book`: booking requests alone, in a few minutes instead of `make bench`'s
whole run, for paired before/after measurements of their CPU cost.

Starts the stack on PostgreSQL (mails to a local catcher), publishes bench.bookings'
hourly rooms, then drives `POST /api/v1/bookings` with BENCH_CONNECTIONS (16) keep-alive
connections in BENCH_ROUNDS (3) windows of BENCH_SECONDS (10) each, after BENCH_WARMUP (3).
Prints, per window and in all, throughput, p50 and p99, and the CPU ms per request of each
process: the stack's by name, PostgreSQL's as the backends connected to the stack's own
databases (other stacks on the same server are not counted), RabbitMQ's as the whole broker
(shared: read it knowing that); and the requests per group commit and what the bookings
database did meanwhile (commits, rows read and written per table).
Writes test-output/bench/book.json.
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import text

from bench.bookings import booking_requests, publish_listings
from bench.cpu import CpuMeter
from bench.load import combined, measure
from bench.run import (
    AGENT,
    OUTPUT,
    ensure_not_monkey_patched,
    load_shape,
    unwind_on_signals,
)
from tests.support import Stack
from tests.support.mail import MailCatcher

SECONDS = 10.0
# CpuMeter counts every postgres process of the machine under this label: other stacks'
STACK_BACKEND = "pg"


def stack_backends(stack: Stack) -> dict[str, int]:
    """The PostgreSQL backends serving this stack's databases, by a label of their own."""
    names = [url.rsplit("/", 1)[1] for url in stack.urls.values()]
    engine = stack.database("bookings")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT pid, datname FROM pg_stat_activity WHERE datname = ANY(:names)"),
            {"names": names},
        ).all()
    return {f"{STACK_BACKEND}-{row.datname.rsplit('_', 1)[1]}-{row.pid}": row.pid for row in rows}


def bookings_counters(stack: Stack) -> dict[str, int]:
    """Commits, rollbacks and rows written by the bookings database so far."""
    engine = stack.database("bookings")
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = conn.execute(
            text(
                "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_fetched "
                "FROM pg_stat_database WHERE datname = current_database()"
            )
        ).one()
        counters = dict(row._mapping)
        for table in conn.execute(
            text(
                "SELECT relname, seq_tup_read, idx_tup_fetch, n_tup_ins, n_tup_upd, "
                "n_tup_hot_upd FROM pg_stat_user_tables"
            )
        ):
            for name, value in table._mapping.items():
                if name != "relname" and value:
                    counters[f"{table.relname}.{name}"] = value
    return counters


def batches(stack: Stack) -> tuple[float, float]:
    """Booking requests decided so far, and the group commits that decided them."""
    found = {"sum": 0.0, "count": 0.0}
    page = requests.get(stack.metrics_url("bookings"), timeout=10).text
    for line in page.splitlines():
        if line.startswith("mutualis_group_commit_size_") and 'work="bookings.requests"' in line:
            kind = line.split("{", 1)[0].rsplit("_", 1)[1]
            if kind in found:
                found[kind] = float(line.rsplit(" ", 1)[1])
    return found["sum"], found["count"]


def per_request(meter: CpuMeter, requests: int) -> dict[str, float]:
    """CPU ms per request by process; the stack's PostgreSQL backends summed by database."""
    out: dict[str, float] = {}
    for label, seconds in meter.used.items():
        if label.startswith(f"{STACK_BACKEND}-"):
            label = "postgresql (stack) " + label.split("-")[1]
        elif label == "postgresql":
            label = "postgresql (whole server)"
        elif label in ("machine busy", "machine steal"):
            continue
        out[label] = out.get(label, 0.0) + seconds * 1000 / max(requests, 1)
    out["stack total (services, its backends, generator)"] = sum(
        v for k, v in out.items() if not k.startswith(("postgresql (whole", "rabbitmq"))
    )
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def main() -> int:
    ensure_not_monkey_patched()
    unwind_on_signals()
    seconds, warmup, connections, rounds = load_shape(SECONDS)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="mutualis-bench-book-") as workdir,
        MailCatcher(Path(workdir) / "mail") as catcher,
    ):
        stack = Stack("postgresql", Path(workdir), settings=catcher.settings, quick_timers=False)
        try:
            stack.start()
            return bench(stack, seconds, warmup, connections, rounds)
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stack.stop()


def bench(stack: Stack, seconds: float, warmup: float, connections: int, rounds: int) -> int:
    headers = {"Authorization": stack.login(AGENT).headers["Authorization"]}
    listing_ids = publish_listings(stack)
    first_hour = (datetime.now(UTC) + timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    book = booking_requests(listing_ids, first_hour)
    pids = {name: proc.pid for name, proc in stack.processes.items()}
    results, meters, windows = [], [], []
    for n in range(rounds):
        time.sleep(2)  # the last window's mails and events handled
        # backends the pools open during the window count from their start
        meter = CpuMeter(pids | stack_backends(stack))
        before = bookings_counters(stack)
        asked_before, commits_before = batches(stack)
        result = measure(
            "book",
            book,
            url=stack.url,
            connections=connections,
            seconds=seconds,
            warmup=warmup,
            headers=headers,
            during=meter,
        )
        after = bookings_counters(stack)
        asked, commits = batches(stack)
        batch = (asked - asked_before) / max(commits - commits_before, 1)
        # the warm-up's requests are in the counters: count them from the meter's window
        counted = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k)}
        results.append(result)
        meters.append(meter)
        cpu = per_request(meter, result.requests)
        windows.append(
            {
                "requests": result.requests,
                "errors": result.errors,
                "throughput_rps": round(result.throughput, 1),
                "p50_ms": round(result.pct_ms(50), 1),
                "p99_ms": round(result.pct_ms(99), 1),
                "cpu_ms_per_request": {k: round(v, 3) for k, v in cpu.items()},
                "requests_per_group_commit": round(batch, 2),
                "bookings_db_during_warmup_and_window": counted,
            }
        )
        print(
            f"round {n + 1}: {result.throughput:.1f} req/s, p50 {result.pct_ms(50):.1f} ms, "
            f"p99 {result.pct_ms(99):.1f} ms, {result.errors} errors, "
            f"{batch:.1f} requests per group commit; "
            + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if v >= 0.05),
            flush=True,
        )
        if result.sample_error:
            print(f"  first error: {result.sample_error}", flush=True)
    result = combined(results)
    cpu = per_request(CpuMeter.combined(meters), result.requests)
    report = {
        "throughput_rps": round(result.throughput, 1),
        "p50_ms": round(result.pct_ms(50), 1),
        "p99_ms": round(result.pct_ms(99), 1),
        "errors": result.errors,
        "cpu_ms_per_request": {k: round(v, 3) for k, v in cpu.items()},
        "windows": windows,
    }
    (OUTPUT / "book.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "windows"}, indent=2))
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
