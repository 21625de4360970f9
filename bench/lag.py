"""`python -m bench.lag`: how long an event takes from its commit to its handler's commit.

Three measurements, each in LAG_ROUNDS (3) short rounds, reported as ranges:
- the relay alone: 200 transactions, 100 a second, each committing one event on a fresh
  database, and one relay process; from each commit's end to the event's delivery from
  its queue (the relay's wait, its batch and confirm, the broker), with few processes
  around, so that it says what the relay adds even on a busy machine.
- the broker's floor: a persistent message published with a publisher confirm, to a
  durable classic queue and to a quorum queue, until a consumer (manual acks) receives
  it; 8 publishers at once, as many messages as the stack's rounds carry. This is what an
  event costs with no database and no relay, and which queue type costs less.
- the stack's lag on PostgreSQL: LAG_RETURNS (200) loans booked, approved, handed over and
  returned by LAG_CLIENTS (8) clients at once (bench.bookings.returned_lag), from the commit of each
  `booking.returned` to the commit of billing's charge for it, both read from PostgreSQL's
  commit timestamps (`track_commit_timestamp = on`; one server, so one clock): the event's
  as the relay claims its row (the header it sends; a queue of the bench's own, bound to
  `booking.returned`, reads it), billing's from its processed_events row. Split in stages:
  until the relay claimed the row, until the broker confirmed its publish (outbox
  `published_at`), until the bench's queue delivered it (a classic queue beside billing's
  quorum one; the bench's clock), until billing's commit. Beside it, as a secondary
  figure, the same counted from `occurred_at` (stamped in the return's transaction, before
  its commit: it also counts the end of that transaction). And the CPU of the relays and
  of billing per event in the same window, and how busy the machine was (the event path
  waits for a core like everything else). `make bench`'s table reads the worst round's
  commit → handler's commit (`p50_ms`, `p99_ms` at the top of the JSON); with
  track_commit_timestamp off the events come without commit times and the table says not
  measured.

Extra environment for the stack's processes is passed with LAG_STACK_ENV='NAME=value …'.
LAG_COMPARE=1 also measures, in the same stack and interleaved round by round, the relays
as they were (one batch at a time: `<SERVICE>_RELAY_IN_FLIGHT=1`, relays restarted between
rounds). LAG_ONLY=stack measures the stack alone (no relay alone, no broker floor: a
quicker before/after). LAG_CLIENTS=1 drives the loans one at a time: the lag of an unloaded
stack, the pipeline's own latency apart from its wait for a core (`make bench`'s figure
stays the 8 clients'). Each round is also run as an open loop: loans started whatever the
answers' speed at 70 % of the pace the round's closed loop reached, about as busy as the
HorizontalPodAutoscalers keep a pod: the lag a deployment scaled as deploy/k8s scales it
sees (LAG_RATE=<loans a second> fixes the pace instead, LAG_RATE=0 leaves it out; a round
whose closed loop is lost has no pace to share, and the report names it, skipped). The
stack runs production's timer periods (mails sent every 2 s, requests expired every 30 s),
not the tests' quick ones: their work is part of the load. Writes
test-output/bench/event-lag.md and .json; `make bench` runs it, `make bench-lag` alone.
PostgreSQL and RabbitMQ may serve other work on the
machine: their CPU is left out of the per-event figures.
"""

from __future__ import annotations

import warnings

# nameko (imported through infra) pulls in eventlet, which warns that it is deprecated; the
# bench never monkey-patches: plain threads drive the load
warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from statistics import median  # noqa: E402

import requests  # noqa: E402
from amqp.exceptions import ChannelError  # noqa: E402
from kombu import Connection, Consumer, Exchange, Producer, Queue  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.bookings import returned_lag  # noqa: E402
from bench.cpu import CpuMeter, cpu_seconds  # noqa: E402
from bench.load import percentile  # noqa: E402
from bench.summary import skipped_open_loops  # noqa: E402
from contracts.listings import ListingPublished, ListingSnapshot  # noqa: E402
from contracts.topology import LISTINGS_TO_BOOKINGS, event_exchange  # noqa: E402
from infra.database import DatabaseAccess, make_engine  # noqa: E402
from infra.migrations import upgrade  # noqa: E402
from infra.relay import CLAIMED_AT_HEADER, COMMITTED_AT_HEADER  # noqa: E402
from infra.settings import PROJECT_ROOT  # noqa: E402
from tests.support import Stack  # noqa: E402
from tests.support.mail import MailCatcher  # noqa: E402
from tests.support.stack import MUTUALIS, RELAYED, PostgresDatabase, Vhost  # noqa: E402

OUTPUT = PROJECT_ROOT / "test-output" / "bench"
TARGET_P50_MS = 8.0
TARGET_P99_MS = 20.0
PUBLISHERS = 8
RELAY_EVENTS = 200  # per round of the relay alone, 100 a second
# the open loop starts loans at this share of the pace the closed loop reached just before
# in the same round: the stack about as busy as deploy/k8s' HorizontalPodAutoscalers keep a
# pod (they add a replica at 70 % of its CPU), whatever this machine's speed that day (a
# fixed 12 loans a second kept it 1.39 cores busy, then 1.77 an hour later)
OPEN_LOOP_SHARE = 0.7


def broker_floor(amqp_uri: str, queue_type: str, count: int) -> dict:
    """Publish→delivery time of `count` persistent, confirmed messages to a durable queue
    of `queue_type`, from PUBLISHERS threads at once, each waiting for its confirm."""
    queue = Queue(
        f"bench-floor-{queue_type}",
        exchange=Exchange("bench-floor", type="direct", durable=True),
        routing_key="floor",
        durable=True,
        queue_arguments={"x-queue-type": queue_type},
    )
    received: list[float] = []
    done = threading.Event()

    def on_message(body, message):
        received.append(time.perf_counter() - body["sent"])
        message.ack()
        if len(received) >= count:
            done.set()

    with Connection(amqp_uri) as consuming:
        channel = consuming.channel()
        queue(channel).declare()
        queue(channel).purge()
        with Consumer(channel, [queue], callbacks=[on_message], prefetch_count=100):

            def drain():
                while not done.is_set():
                    try:
                        consuming.drain_events(timeout=0.2)
                    except TimeoutError:
                        continue

            drainer = threading.Thread(target=drain, daemon=True)
            drainer.start()

            def publish(share: int) -> None:
                with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
                    producer = Producer(conn.channel())
                    for _ in range(share):
                        producer.publish(
                            {"sent": time.perf_counter()},
                            exchange=queue.exchange,
                            routing_key="floor",
                            delivery_mode=2,
                            mandatory=True,
                            serializer="json",
                        )

            with ThreadPoolExecutor(PUBLISHERS) as pool:
                shares = [count // PUBLISHERS + (n < count % PUBLISHERS) for n in range(PUBLISHERS)]
                list(pool.map(publish, shares))
            done.wait(60)
            drainer.join(5)
        queue(channel).delete()
    return summary(received)


def relay_lag(in_flight: int, count: int) -> dict:
    """The relay alone: `count` transactions, 100 a second, each committing one event on a
    fresh listings database, published by one `mutualis relay listings` process with
    `in_flight` batches at most awaiting their confirms; time from each commit's end to the
    event's delivery from its queue."""
    database = PostgresDatabase(f"mutualis_lag_relay_{uuid.uuid4().hex[:8]}")
    vhost = Vhost("mutualis-bench-relay")
    relay = None
    try:
        upgrade("listings", database.url)
        env = dict(
            os.environ,
            LISTINGS_DATABASE_URL=database.url,
            AMQP_URI=vhost.amqp_uri,
            LISTINGS_RELAY_IN_FLIGHT=str(in_flight),
        )
        relay = subprocess.Popen(
            [*MUTUALIS, "relay", "listings"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        committed: dict[str, float] = {}
        lags: list[float] = []
        queue = LISTINGS_TO_BOOKINGS.queue
        with Connection(vhost.amqp_uri) as conn:
            channel = conn.channel()
            deadline = time.monotonic() + 60
            while True:  # the relay declares the topology when it starts
                try:
                    channel.queue_declare(queue, passive=True)
                    break
                except ChannelError:
                    if time.monotonic() > deadline:
                        raise
                    channel = conn.channel()
                    time.sleep(0.2)
            settle([relay.pid])

            def on_message(body, message):
                arrived = time.perf_counter()
                event = body if isinstance(body, dict) else json.loads(body)
                sent = committed.get(event["event_id"])
                if sent is not None:
                    lags.append(arrived - sent)
                message.ack()

            db = DatabaseAccess(make_engine(database.url), "listings", None, "bench")
            with Consumer(channel, [Queue(queue, no_declare=True)], callbacks=[on_message]):
                for n in range(count):
                    with db.transaction() as tx:
                        event = tx.emit(ListingPublished, listing_snapshot(n))
                    committed[str(event.event_id)] = time.perf_counter()
                    pause = time.perf_counter() + 0.01
                    while (left := pause - time.perf_counter()) > 0:
                        with contextlib.suppress(TimeoutError):
                            conn.drain_events(timeout=left)
                deadline = time.monotonic() + 30
                while len(lags) < count and time.monotonic() < deadline:
                    with contextlib.suppress(TimeoutError):
                        conn.drain_events(timeout=0.5)
    finally:
        if relay is not None:
            relay.terminate()
            relay.wait(timeout=15)
        vhost.delete()
        database.drop()
    return summary(lags)


def listing_snapshot(n: int) -> ListingSnapshot:
    return ListingSnapshot(
        listing_id=str(uuid.uuid4()),
        owner_commune="42044",
        status="published",
        revision=1,
        title=f"Saleuse {n}",
        category="deneigement",
        kind="equipment",
        pricing_unit="day",
        rate_cents=9000,
    )


def summary(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "p50_ms": round(median(ordered) * 1000, 2) if ordered else None,
        "p99_ms": round(percentile(ordered, 99) * 1000, 2) if ordered else None,
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else None,
    }


def published_events(stack: Stack) -> int:
    """Outbox rows published so far by every relay of the stack."""
    total = 0
    for component in RELAYED:
        with stack.database(component).connect() as conn:
            total += conn.execute(
                text("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
            ).scalar_one()
    return total


# the relays measured: as now, and (LAG_COMPARE=1) as they were before they pipelined their
# batches (one batch published, confirmed and marked before the next is read)
BEFORE = "before (one batch at a time)"
VARIANTS = {"now": {}, BEFORE: {"RELAY_IN_FLIGHT": "1"}}


def restart_relays(stack: Stack, settings: dict[str, str]) -> None:
    """Every relay of the stack again, with `settings` for each relayed component."""
    for relayed in RELAYED:
        for name, value in settings.items():
            stack.settings[f"{relayed.upper()}_{name}"] = value
        for name in VARIANTS[BEFORE]:
            if name not in settings:
                stack.settings.pop(f"{relayed.upper()}_{name}", None)
        stack.kill(f"{relayed}-relay", signal.SIGTERM)
        stack.start_process(f"{relayed}-relay")
    settle([stack.processes[f"{relayed}-relay"].pid for relayed in RELAYED])


def settle(pids: list[int], timeout: float = 60) -> None:
    """Waits until these processes are idle (their start-up, imports and declarations,
    must not count as CPU spent on the round's events)."""
    deadline = time.monotonic() + timeout
    before = sum(cpu_seconds(pid) or 0 for pid in pids)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = sum(cpu_seconds(pid) or 0 for pid in pids)
        if now - before < 0.05:
            return
        before = now


class CommitTimes:
    """Reads, from a queue of its own bound to `booking.returned`, the commit time (and the
    relay's claim time) each event carries: a classic, exclusive queue, beside billing's."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.seen: dict[str, tuple[int, int]] = {}  # event_id: (committed, claimed) in µs
        self.arrived: dict[str, float] = {}  # event_id: time.time() of its delivery here
        self.missing = 0  # events that came without them (commit timestamps not tracked)
        self._done = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._consume, daemon=True)

    def __enter__(self) -> CommitTimes:
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("the bench's booking.returned queue was never declared")
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(10)

    def _on_message(self, body, message) -> None:
        headers = message.headers or {}
        event = body if isinstance(body, dict) else json.loads(body)
        if isinstance(headers.get(COMMITTED_AT_HEADER), int):
            self.arrived[event["event_id"]] = time.time()
            self.seen[event["event_id"]] = (
                headers[COMMITTED_AT_HEADER],
                headers[CLAIMED_AT_HEADER],
            )
        else:
            self.missing += 1
        message.ack()

    def _consume(self) -> None:
        exchange = Exchange(event_exchange("bookings"), type="topic", no_declare=True)
        queue = Queue(
            f"bench-lag-returned-{uuid.uuid4().hex[:8]}",
            exchange=exchange,
            routing_key="booking.returned",
            exclusive=True,
            auto_delete=True,
            durable=False,
        )
        with (
            Connection(self.amqp_uri) as conn,
            Consumer(conn.channel(), [queue], callbacks=[self._on_message]),
        ):
            self._ready.set()
            while not self._done.is_set():
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=0.2)


def commit_stages(
    stack: Stack, seen: dict[str, tuple[int, int]], arrived: dict[str, float]
) -> dict:
    """For the events in `seen`: commit → relay's claim, → publish confirmed, → delivered
    to the bench's own queue (`arrived`: a classic queue, the broker's share beside
    billing's quorum queue), → billing's commit, p50/p99/max in ms (a stage's figure counts
    from the event's commit)."""
    handled = moments_of(
        stack,
        "billing",
        "SELECT event_id, pg_xact_commit_timestamp(xmin) FROM processed_events "
        "WHERE event_type = 'booking.returned'",
        seen,
    )
    confirmed = moments_of(
        stack,
        "bookings",
        "SELECT event_id, published_at FROM outbox WHERE routing_key = 'booking.returned'",
        seen,
    )
    since = {event_id: committed / 1e6 for event_id, (committed, _) in seen.items()}
    figures = {"events_with_commit_time": len(seen), "events_handled_commit": len(handled)}
    for stage, moments in (
        ("claimed", {e: claimed / 1e6 for e, (_, claimed) in seen.items()}),
        ("confirmed", {e: epoch(at) for e, at in confirmed.items()}),
        ("delivered", arrived),
        ("commit", {e: epoch(at) for e, at in handled.items()}),
    ):
        lags = summary([moment - since[e] for e, moment in moments.items()])
        for key in ("p50_ms", "p99_ms", "max_ms"):
            figures[f"{stage}_{key}"] = lags[key]
    return figures


def moments_of(stack: Stack, component: str, query: str, wanted) -> dict[str, datetime]:
    """event_id → moment, from `query`'s two columns in `component`'s database, for the
    events in `wanted` that have one."""
    engine = stack.database(component)
    try:
        with engine.connect() as conn:
            return {
                event_id: moment
                for event_id, moment in conn.execute(text(query))
                if event_id in wanted and moment is not None
            }
    finally:
        engine.dispose()


def epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def stack_round(stack: Stack, returns: int, clients: int, rate: float | None = None) -> dict:
    """One round of returned_lag (closed loop, or loans started at `rate` a second), with
    the CPU the relays and billing spent on it."""
    pids = {name: proc.pid for name, proc in stack.processes.items()}
    before = published_events(stack)
    with CommitTimes(stack.vhost.amqp_uri) as times, CpuMeter(pids) as meter:
        lag = returned_lag(stack, returns, clients, rate)
    lag |= commit_stages(stack, times.seen, times.arrived)
    lag["events_without_commit_time"] = times.missing
    # the last events of the round are published by the time billing handled its returns
    events = published_events(stack) - before
    relays = sum(seconds for name, seconds in meter.used.items() if name.endswith("-relay"))
    lag["events_published"] = events
    lag["relays_cpu_ms_per_event"] = round(1000 * relays / events, 3) if events else None
    lag["billing_cpu_ms_per_return"] = round(1000 * meter.used.get("billing", 0) / returns, 3)
    lag["mutualis_cpu_ms_per_loan"] = round(
        1000 * sum(meter.used.get(name, 0) for name in pids) / returns, 2
    )
    lag["machine_steal_percent"] = round(100 * meter.used.get("machine steal", 0) / meter.elapsed)
    # how saturated the machine was: the event path waits for a core like everything else
    lag["round_seconds"] = round(meter.elapsed, 1)
    lag["machine_busy_cores"] = round(meter.used.get("machine busy", 0) / meter.elapsed, 2)
    lag["mutualis_busy_cores"] = round(sum(meter.used.get(n, 0) for n in pids) / meter.elapsed, 2)
    return lag


def spread(rounds: list[dict], key: str) -> str:
    values = [r[key] for r in rounds if r.get(key) is not None]
    if not values:
        return "–"
    low, high = min(values), max(values)
    return f"{low:g}" if low == high else f"{low:g}–{high:g}"


def met(rounds: list[dict]) -> bool:
    """Commit → handler's commit within the target in every round."""
    return bool(rounds) and all(
        r.get("commit_p50_ms") is not None
        and r["commit_p50_ms"] <= TARGET_P50_MS
        and r["commit_p99_ms"] <= TARGET_P99_MS
        for r in rounds
    )


def worst(rounds: list[dict], key: str) -> float | None:
    """The round that did worst: the target is to be met in every one."""
    values = [r[key] for r in rounds if r.get(key) is not None]
    return max(values) if values else None


def render(report: dict) -> str:
    floor, variants = report["broker_floor"], report["stack"]
    now = variants["now"]
    # each load's rounds: the closed loop (the target's), and the open loop at a rate
    loads = {f"relays {name}": rounds for name, rounds in variants.items()}
    if report.get("open_loop"):
        loads[f"open loop, {open_loop_pace(report)}"] = report["open_loop"]
    lines = [
        "# Event lag: from a committed event to its handler's commit",
        "",
        f"{report['when']}, commit {report['commit']}, {report['rounds']} rounds of "
        f"{report['returns_per_round']} loans by {report['clients']} clients "
        f"({report.get('rounds_lost', 0)} lost to errors); "
        f"stack environment: `{report['stack_env'] or 'defaults'}`.",
        "",
        f"**Target p50 ≤ {TARGET_P50_MS:g} ms, p99 ≤ {TARGET_P99_MS:g} ms: "
        f"{'met' if met(now) else 'NOT met'}** in every round.",
        "",
        *open_loop_verdict(report),
        "| measurement | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|",
    ]
    for queue_type, rounds in floor.items():
        lines.append(
            f"| broker floor, {queue_type} queue (publish + confirm → delivery) | "
            f"{spread(rounds, 'p50_ms')} | {spread(rounds, 'p99_ms')} | "
            f"{spread(rounds, 'max_ms')} |"
        )
    for name, rounds in report["relay_alone"].items():
        lines.append(
            f"| relay alone ({RELAY_EVENTS} commits at 100/s): commit → delivered, relays "
            f"{name} | {spread(rounds, 'p50_ms')} | {spread(rounds, 'p99_ms')} | "
            f"{spread(rounds, 'max_ms')} |"
        )
    for name, lag in loads.items():
        lines.append(
            f"| **`booking.returned` committed → billing's charge committed**, {name} | "
            f"{spread(lag, 'commit_p50_ms')} | {spread(lag, 'commit_p99_ms')} | "
            f"{spread(lag, 'commit_max_ms')} |"
        )
        for stage, label in (
            ("claimed", "committed → the relay claimed it"),
            ("confirmed", "committed → its publish confirmed by the broker"),
            ("delivered", "committed → delivered to a queue of the bench's (classic)"),
        ):
            lines.append(
                f"| … {label}, {name} | {spread(lag, f'{stage}_p50_ms')} | "
                f"{spread(lag, f'{stage}_p99_ms')} | {spread(lag, f'{stage}_max_ms')} |"
            )
        lines.append(
            f"| secondary: from `occurred_at` (stamped before the return's commit) → billing's "
            f"charge started, {name} | {spread(lag, 'lag_p50_ms')} | "
            f"{spread(lag, 'lag_p99_ms')} | {spread(lag, 'lag_max_ms')} |"
        )
        lines.append(
            f"| … of which from `occurred_at` until the relay had it confirmed, {name} | "
            f"{spread(lag, 'published_p50_ms')} | {spread(lag, 'published_p99_ms')} | |"
        )
        lines.append(
            f"| the same counted from the return's HTTP answer (after its commit: a "
            f"lower bound), {name} | {spread(lag, 'after_answer_p50_ms')} | "
            f"{spread(lag, 'after_answer_p99_ms')} | |"
        )
    lines += [
        "",
        "| CPU (ranges over the rounds) | " + " | ".join(loads) + " |",
        "|---|" + "---:|" * len(loads),
    ]
    for label, key in (
        ("relays, ms per event published", "relays_cpu_ms_per_event"),
        ("billing, ms per `booking.returned`", "billing_cpu_ms_per_return"),
        ("Mutualis processes, ms per loan (4 requests, 4+ events)", "mutualis_cpu_ms_per_loan"),
        ("events published per round", "events_published"),
        ("`booking.returned` without a commit time (not counted)", "events_without_commit_time"),
        ("machine steal, % of one core", "machine_steal_percent"),
        ("round, seconds", "round_seconds"),
        (f"machine busy, cores (of {os.cpu_count()})", "machine_busy_cores"),
        ("Mutualis processes busy, cores", "mutualis_busy_cores"),
    ):
        lines.append(f"| {label} | " + " | ".join(spread(v, key) for v in loads.values()) + " |")
    return "\n".join(lines) + "\n"


def open_loop_pace(report: dict) -> str:
    rounds = report["open_loop"]
    if report.get("open_loop_share"):
        return (
            f"{report['open_loop_share']:.0%} of the closed loop's pace "
            f"({spread(rounds, 'rate')} loans/s)"
        )
    return f"{spread(rounds, 'rate')} loans/s"


def open_loop_verdict(report: dict) -> list[str]:
    """The lag at a traffic the machine takes with room to spare, beside the target's, and
    the rounds it has not (their closed loop lost)."""
    skipped = skipped_open_loops(report)
    if not report.get("open_loop"):
        return [f"Open loop not measured: {skipped}.", ""] if skipped else []
    rounds = report["open_loop"]
    return [
        f"Loans started whatever the answers' speed, at {open_loop_pace(report)} "
        f"(machine {spread(rounds, 'machine_busy_cores')} of {os.cpu_count()} cores busy): "
        f"p50 {spread(rounds, 'commit_p50_ms')} ms, p99 {spread(rounds, 'commit_p99_ms')} ms, "
        f"{'within' if met(rounds) else 'NOT within'} the target in every round"
        + (f" measured; {skipped}." if skipped else "."),
        "",
    ]


def open_loop_rate(fixed: float | None, closed_pace: float | None) -> float | None:
    """Loans a second of a round's open loop: LAG_RATE's, or OPEN_LOOP_SHARE of the pace the
    round's closed loop reached; None when there is none to take a share of (that closed
    loop was lost)."""
    if fixed is not None:
        return fixed
    if not closed_pace:
        return None
    return round(OPEN_LOOP_SHARE * closed_pace, 1) or None  # too slow to take a share of


def stack_env() -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(os.environ.get("LAG_STACK_ENV", "")))


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rounds = int(os.environ.get("LAG_ROUNDS", 3))
    returns = int(os.environ.get("LAG_RETURNS", 200))
    clients = int(os.environ.get("LAG_CLIENTS", 8))
    rate = os.environ.get("LAG_RATE")  # loans a second; by default a share of the closed loop's
    fixed = float(rate) if rate else None
    share = None if rate else OPEN_LOOP_SHARE
    extra = stack_env()
    compare = os.environ.get("LAG_COMPARE") == "1"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": os.popen("git rev-parse --short HEAD").read().strip(),
        "rounds": rounds,
        "returns_per_round": returns,
        "clients": clients,
        "stack_env": " ".join(f"{k}={v}" for k, v in extra.items()),
        "broker_floor": {"classic": [], "quorum": []},
        "stack": {name: [] for name in VARIANTS if name == "now" or compare},
        "open_loop_rate": fixed,
        "open_loop_share": share,
        "open_loop": [],
        "open_loop_skipped": [],  # rounds (from 1) whose closed loop was lost: no pace
    }
    in_flight = {name: int(v.get("RELAY_IN_FLIGHT", 4)) for name, v in VARIANTS.items()}
    report["relay_alone"] = {name: [] for name in report["stack"]}
    only_stack = os.environ.get("LAG_ONLY") == "stack"
    for n in range(0 if only_stack else rounds):
        for name, rounds_of in report["relay_alone"].items():
            print(f"relay alone, {name}, round {n + 1} …", flush=True)
            rounds_of.append(relay_lag(in_flight[name], RELAY_EVENTS))
    vhost = Vhost("mutualis-bench-floor")
    try:
        # interleaved, so that a drifting machine weighs on both
        for n in range(0 if only_stack else rounds):
            for queue_type in report["broker_floor"]:
                print(f"broker floor, {queue_type}, round {n + 1} …", flush=True)
                floor = broker_floor(vhost.amqp_uri, queue_type, 4 * returns)
                report["broker_floor"][queue_type].append(floor)
    finally:
        vhost.delete()
    with (
        tempfile.TemporaryDirectory(prefix="mutualis-lag-") as workdir,
        MailCatcher(Path(workdir) / "mail") as catcher,  # the loans' mails are sent, as live
    ):
        print("starting the stack on PostgreSQL …", flush=True)
        stack = Stack(
            "postgresql", Path(workdir), settings=catcher.settings | extra, quick_timers=False
        )
        try:
            stack.start()
            for n in range(rounds):
                loads = [(name, rounds_of, None) for name, rounds_of in report["stack"].items()]
                if fixed != 0:  # LAG_RATE=0 leaves the open loop out
                    loads.append(("open loop", report["open_loop"], None))
                closed_pace = None  # loans a second of this round's closed loop ("now")
                for name, rounds_of, pace in loads:
                    if rounds_of is report["open_loop"]:
                        pace = open_loop_rate(fixed, closed_pace)
                        if pace is None:
                            print(f"open loop, round {n + 1}, skipped: its closed loop was lost")
                            report["open_loop_skipped"].append(n + 1)
                            continue
                    if compare and name in VARIANTS:
                        restart_relays(stack, VARIANTS[name])
                    print(f"booking.returned → billing, {name}, round {n + 1} …", flush=True)
                    try:
                        rounds_of.append(stack_round(stack, returns, clients, pace))
                        if pace is not None:
                            rounds_of[-1]["rate"] = pace
                        elif name == "now":
                            closed_pace = rounds_of[-1]["loans_per_second"]
                    # the others still count (a loan whose booking never got its 201
                    # answer ends in a KeyError in returned_lag)
                    except (requests.RequestException, KeyError) as exc:
                        print(f"  round lost: {type(exc).__name__}: {exc}", flush=True)
                        report["rounds_lost"] = report.get("rounds_lost", 0) + 1
        except KeyboardInterrupt:
            print("\ninterrupted", file=sys.stderr)
            return 130
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("stopping the stack …", flush=True)
            stack.stop()
    # what `make bench`'s table reads: the worst round of commit → handler's commit
    report["p50_ms"] = worst(report["stack"]["now"], "commit_p50_ms")
    report["p99_ms"] = worst(report["stack"]["now"], "commit_p99_ms")
    report["open_loop_p50_ms"] = worst(report["open_loop"], "commit_p50_ms")
    report["open_loop_p99_ms"] = worst(report["open_loop"], "commit_p99_ms")
    markdown = render(report)
    (OUTPUT / "event-lag.md").write_text(markdown, encoding="utf-8")
    (OUTPUT / "event-lag.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print()
    print(markdown)
    print(f"written to {OUTPUT / 'event-lag.md'} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
