"""`python -m bench.consume`: the CPU a consuming service spends per event, end to end.

A real `mutualis serve <CONSUME_SERVICE>` process (billing, notifications or listings), on a
vhost and a fresh PostgreSQL database of its own, is sent CONSUME_EVENTS (2,000) events at
CONSUME_RATE (200) a second, as the relay sends them (persistent, with the commit and claim
headers), after CONSUME_WARMUP (200) not counted: `booking.returned` for billing,
`booking.requested` (built as bookings builds it) for notifications and listings. Once the
service has recorded every one in processed_events (and, for notifications, sent every mail
they decided to a mail catcher of its own, in its delivery rounds: the people of the demo's
communes are known to it beforehand), its CPU (user + system, /proc) over the whole window,
less what it burns idle over the same time (its timers), divided by the events: ms of CPU
per event. Every hop of an event waits for one of the machine's cores, so this is what the
handling costs the event lag beside it (issue 20), and what the consumers cost each
booking. Also the lag from each publish to its processed_events row (the handler's clock,
before its commit), the CPU per event of the PostgreSQL backends serving it (those
connected at the end: a backend gone meanwhile is missed) and, for notifications, of the
mail catcher.

CONSUME_ROUNDS (3) rounds, each with a fresh service, database and vhost, reported as a
range (the machine is shared). CONSUME_COMPARE=path (another checkout, e.g. `git archive`
of the commit before a change) runs that checkout's service beside this one's in each round,
each sent its own stream at the same time: a before/after under the same load (one after
the other, the machine's load moved the figure of the same code by a third).
CONSUME_SPY=path.txt samples the last round's service with py-spy (CONSUME_PY_SPY,
/tmp/spy/bin/py-spy) and prints the frames on the stack in most samples (py-spy counts a
thread waiting for a core or in a system call as busy: a guide, not a CPU measurement);
CONSUME_SPY=path.data records it with `perf` instead (CPU by library and kernel: `perf
report -i path.data --sort dso`). Writes test-output/bench/consume-<service>.json.
"""

from __future__ import annotations

import warnings

# nameko (imported through infra) pulls in eventlet, which warns that it is deprecated; the
# bench never monkey-patches: it publishes from plain threads
warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

from kombu import Connection, Producer  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.cpu import cpu_seconds  # noqa: E402
from bench.load import percentile  # noqa: E402
from contracts.bookings import BookingRequested, BookingReturned, BookingStatus  # noqa: E402
from contracts.events import Event  # noqa: E402
from contracts.topology import event_exchange  # noqa: E402
from demo.seed import DEMO_COMMUNES, DEMO_DOMAIN  # noqa: E402
from infra.database import make_engine  # noqa: E402
from infra.migrations import upgrade  # noqa: E402
from infra.relay import CLAIMED_AT_HEADER, COMMITTED_AT_HEADER  # noqa: E402
from infra.settings import PROJECT_ROOT  # noqa: E402
from tests.support.billing import ServiceProcess, returned  # noqa: E402
from tests.support.mail import MailCatcher  # noqa: E402
from tests.support.stack import PostgresDatabase, Vhost  # noqa: E402

OUTPUT = PROJECT_ROOT / "test-output" / "bench"
SERVICE = os.environ.get("CONSUME_SERVICE", "billing")
EVENTS = int(os.environ.get("CONSUME_EVENTS", "2000"))
WARMUP = int(os.environ.get("CONSUME_WARMUP", "200"))
RATE = float(os.environ.get("CONSUME_RATE", "200"))
ROUNDS = int(os.environ.get("CONSUME_ROUNDS", "3"))
SPY = os.environ.get("CONSUME_SPY")
COMPARE = os.environ.get("CONSUME_COMPARE")
PY_SPY = os.environ.get("CONSUME_PY_SPY", "/tmp/spy/bin/py-spy")
IDLE_SECONDS = 3.0
LISTINGS = 40  # as bench.run's `book`: requests spread over 40 listings of one lender


def returned_event(n: int) -> BookingReturned:
    """A loan of two days returned in good condition (no damage: one charge), with what
    bookings announces beside it."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    snapshot = returned().payload.model_copy(
        update={
            "listing_id": f"listing-{n % 50}",
            "damages": [],
            "order_reference": f"BC-2026-{n:05d}",
            "checked_out_at": start,
            "returned_at": start + timedelta(days=2),
            "requested_by": f"user-{n % 20}",
            "agreement_reference": "CONV-42044-42218",
            "dates_revision": 0,
        }
    )
    return BookingReturned.new(snapshot, producer="bookings", correlation_id=str(uuid.uuid4()))


def requested_event(n: int) -> BookingRequested:
    """An hour of a room of the lender's asked by the borrower's agent, as bench.run's
    `book` asks it (a listing of 40, hour after hour): the manager of the lender is told."""
    first_hour = (datetime.now(UTC) + timedelta(days=30)).replace(minute=0, second=0, microsecond=0)
    start = first_hour + timedelta(hours=n // LISTINGS)
    quote = returned().payload.quote.model_copy(
        update={"units": 1, "pricing_unit": "hour", "unit_rate_cents": 4000}
        | {"rental_cents": 4000, "amount_cents": 4000}
    )
    snapshot = returned().payload.model_copy(
        update={
            "listing_id": f"listing-{n % LISTINGS}",
            "listing_title": f"Salle de réunion {n % LISTINGS + 1}",
            "status": BookingStatus.REQUESTED,
            "start": start,
            "end": start + timedelta(hours=1),
            "quote": quote,
            "damages": [],
            "order_reference": None,
            "requested_by": "agent-42218",
            "agreement_reference": "CONV-42044-42218",
            "dates_revision": 0,
        }
    )
    return BookingRequested.new(snapshot, producer="bookings", correlation_id=str(uuid.uuid4()))


EVENT_OF = {
    "billing": returned_event,
    "notifications": requested_event,
    "listings": requested_event,
}


def publish(amqp_uri: str, events: list[Event], rate: float) -> dict[str, float]:
    """Publishes `events` at `rate` a second, as the relay does (persistent, confirmed,
    with the commit and claim headers); returns each event's publish time (time.time())."""
    sent: dict[str, float] = {}
    exchange = event_exchange("bookings")
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        started = time.monotonic()
        for n, event in enumerate(events):
            pause = started + n / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            now = time.time()
            micros = round(now * 1e6)
            producer.publish(
                event.model_dump_json(),
                exchange=exchange,
                routing_key=event.type,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                mandatory=True,
                headers={
                    "nameko.correlation_id": event.correlation_id,
                    COMMITTED_AT_HEADER: micros,
                    CLAIMED_AT_HEADER: micros,
                },
                message_id=str(event.event_id),
            )
            sent[str(event.event_id)] = now
    return sent


def demo_people() -> list[dict]:
    """The demo's agents and managers of each commune, as notifications learnt them."""
    return [
        {
            "user_id": f"{role}-{commune}",
            "email": f"{role}.{commune}@{DEMO_DOMAIN}",
            "name": f"{role.title()} {commune}",
            "commune": commune,
            "roles": role,
            "disabled": False,
            "as_of": datetime.now(UTC),
        }
        for commune in DEMO_COMMUNES
        for role in ("agent", "manager", "finance")
    ]


class Consumer:
    """`mutualis serve <SERVICE>` (of `checkout`) on its own database and vhost (and, for
    notifications, its own mail catcher)."""

    def __init__(self, tag: str, workdir: Path, checkout: Path = PROJECT_ROOT):
        self.vhost = Vhost(prefix="mutualis-bench-consume", ready=False)
        self.db = PostgresDatabase(f"mutualis_consume_{tag}")
        upgrade(SERVICE, self.db.url)
        self.engine = make_engine(self.db.url)
        self.catcher = None
        settings = {}
        if SERVICE == "notifications":
            with self.engine.begin() as conn:
                conn.execute(
                    text(
                        "INSERT INTO people (user_id, email, name, commune, roles, disabled,"
                        " as_of) VALUES (:user_id, :email, :name, :commune, :roles,"
                        " :disabled, :as_of)"
                    ),
                    demo_people(),
                )
            self.catcher = MailCatcher(workdir / f"mail-{tag}")
            self.catcher.start()
            settings = self.catcher.settings
        self.vhost.wait()
        log = workdir / f"{SERVICE}-{tag}.log"
        self.process = ServiceProcess(
            SERVICE, self.db.url, self.vhost.amqp_uri, log, "json", checkout, settings
        )
        self.process.wait_ready()

    def handled(self) -> int:
        """The events handled, once every mail they decided is sent (notifications)."""
        with self.engine.connect() as conn:
            if SERVICE == "notifications":
                pending = "SELECT count(*) FROM mails WHERE status = 'pending'"
                if conn.scalar(text(pending)):
                    return 0
            return conn.scalar(text("SELECT count(*) FROM processed_events"))

    def wait_handled(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.handled() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.handled()} of {count} events handled")
            time.sleep(0.1)

    def processed_at(self) -> dict[str, float]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT event_id, processed_at FROM processed_events"))
            return {event_id: at.timestamp() for event_id, at in rows}

    def database_cpu(self) -> float:
        """The CPU seconds so far of the PostgreSQL backends serving the service (this
        bench's own polling connection left out): what its statements cost the server."""
        with self.engine.connect() as conn:
            pids = conn.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).all()
        return sum(cpu_seconds(pid) or 0.0 for pid in pids)

    def catcher_cpu(self) -> float:
        return cpu_seconds(self.catcher.process.pid) if self.catcher else 0.0

    def stop(self) -> None:
        self.process.kill(signal.SIGTERM)
        if self.catcher is not None:
            self.catcher.stop()
        self.engine.dispose()
        self.vhost.delete(ready=False)
        self.db.drop()
        self.vhost.wait()


def _each(function, items: list) -> list:
    """`function` of each item at once, one thread each: services side by side see the
    same load."""
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(function, items))


def _spy(pid: int, path: str) -> subprocess.Popen:
    duration = str(int(EVENTS / RATE) + 1)
    command = [PY_SPY, "record", "-p", str(pid), "-r", "500", "-f", "raw"]
    command += ["-o", path, "-d", duration, "--nonblocking"]
    if path.endswith(".data"):  # perf's: the CPU by library and kernel, not by frame
        command = ["perf", "record", "-F", "999", "-p", str(pid), "-o", path, "--", "sleep"]
        command.append(duration)
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def one_round(tag: str, workdir: Path, checkouts: list[Path], spy: str | None) -> list[dict]:
    """A service per checkout, each sent the same stream at the same time; the last one
    sampled by `spy`."""
    event_of = EVENT_OF[SERVICE]
    consumers: list[Consumer] = []
    try:
        for n, checkout in enumerate(checkouts):
            consumers.append(Consumer(f"{tag}_{n}", workdir, checkout))
        pids = [consumer.process.proc.pid for consumer in consumers]

        def warm(consumer: Consumer) -> None:
            publish(consumer.vhost.amqp_uri, [event_of(n) for n in range(WARMUP)], RATE)
            consumer.wait_handled(WARMUP, timeout=120)

        _each(warm, consumers)
        time.sleep(0.5)
        idle_start = [cpu_seconds(pid) for pid in pids]
        time.sleep(IDLE_SECONDS)
        idle_cpu = [cpu_seconds(pid) - s for pid, s in zip(pids, idle_start, strict=True)]
        idle_rates = [seconds / IDLE_SECONDS for seconds in idle_cpu]
        spying = _spy(pids[-1], spy) if spy else None

        def measure(consumer: Consumer) -> tuple[float, float, float, float, dict]:
            events = [event_of(WARMUP + n) for n in range(EVENTS)]
            pid = consumer.process.proc.pid
            cpu_start, started = cpu_seconds(pid), time.monotonic()
            catcher_start, database_start = consumer.catcher_cpu(), consumer.database_cpu()
            sent = publish(consumer.vhost.amqp_uri, events, RATE)
            consumer.wait_handled(WARMUP + EVENTS, timeout=300)
            cpu, elapsed = cpu_seconds(pid) - cpu_start, time.monotonic() - started
            catcher = consumer.catcher_cpu() - catcher_start
            database = consumer.database_cpu() - database_start
            handled = consumer.processed_at()
            lag_of = {key: handled[key] - at for key, at in sent.items()}
            return cpu, elapsed, catcher, database, lag_of

        measured = _each(measure, consumers)
        if spying is not None:
            spying.wait(timeout=60)
    finally:
        if consumers:
            _each(Consumer.stop, consumers)
    results = []
    for (cpu, elapsed, catcher, database, lag_of), idle_rate in zip(
        measured, idle_rates, strict=True
    ):
        lags = sorted(max(lag, 0.0) for lag in lag_of.values())
        results.append(
            {
                "events": EVENTS,
                "seconds": round(elapsed, 2),
                "cpu_ms_per_event": round((cpu - idle_rate * elapsed) / EVENTS * 1000, 3),
                "cpu_ms_per_event_raw": round(cpu / EVENTS * 1000, 3),
                "idle_cpu_percent": round(idle_rate * 100, 2),
                "catcher_cpu_ms_per_event": round(catcher / EVENTS * 1000, 3),
                "postgresql_cpu_ms_per_event": round(database / EVENTS * 1000, 3),
                "lag_p50_ms": round(percentile(lags, 50) * 1000, 2),
                "lag_p99_ms": round(percentile(lags, 99) * 1000, 2),
            }
        )
    return results


def profile(path: str, top: int = 40) -> list[tuple[str, float]]:
    """From py-spy's raw output (collapsed stacks): the share of samples in which each frame
    is on the stack (inclusive), the `top` first."""
    inclusive: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        for frame in set(stack.split(";")):
            inclusive[frame] += samples
    return [(frame, round(100 * n / total, 1)) for frame, n in inclusive.most_common(top)]


def main() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    workdir = OUTPUT / "consume-logs"
    workdir.mkdir(exist_ok=True)
    checkouts = {"this": PROJECT_ROOT}
    if COMPARE:
        checkouts = {"compared": Path(COMPARE).resolve(), **checkouts}
    rounds: dict[str, list[dict]] = {name: [] for name in checkouts}
    for n in range(ROUNDS):
        spy = SPY if n == ROUNDS - 1 else None
        tag = f"{uuid.uuid4().hex[:6]}_{n}"
        results = one_round(tag, workdir, list(checkouts.values()), spy)
        for name, result in zip(checkouts, results, strict=True):
            print(name, json.dumps(result), flush=True)
            rounds[name].append(result)
    summary: dict = {"service": SERVICE, "rate": RATE, "events": EVENTS}
    event_type = EVENT_OF[SERVICE](0).type
    for name, results in rounds.items():
        per_event = [r["cpu_ms_per_event"] for r in results]
        summary[name] = {"cpu_ms_per_event": [min(per_event), max(per_event)], "rounds": results}
        print(
            f"{name} ({checkouts[name]}): {SERVICE} CPU per {event_type}"
            f" {min(per_event):.3f}–{max(per_event):.3f} ms"
        )
    if SPY and not SPY.endswith(".data"):
        summary["profile"] = profile(SPY)
        for frame, share in summary["profile"]:
            print(f"{share:5.1f}%  {frame}")
    (OUTPUT / f"consume-{SERVICE}.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
