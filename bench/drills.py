"""`make drills`: the stack survives faults under load, through the gateway.

Starts the whole stack on fresh PostgreSQL databases, with two replicas of every process
(`DRILLS_REPLICAS`, 2: services, relays and gateways; the clients spread their requests
over the gateways as a load balancer would), publishes hourly listings of Le
Chambon-Feugerolles, then drives a steady closed-loop load (agents of Saint-Étienne, Firminy
and Saint-Chamond book the next hour of their room again and again, one of its many units each
time, so that it is handed over today and charged this month; Chambon's manager approves,
checks out and returns each; agents race for the same slots of one shared listing; Chambon's finance
team runs the month's billing through both gateways at once every few seconds) while these
faults happen one after another, each followed by a recovery wait:

1. `kill -9` of one replica of each process in turn (gateway, services, relays), then its
   restart (its twin carries the load meanwhile);
2. RabbitMQ stopped for ~5 s (`rabbitmqctl stop_app` / `start_app`);
3. PostgreSQL restarted (`pg_ctlcluster … restart`);
4. the mail server (the catcher, aiosmtpd) down for 30 s: the notifications wait and go.

Every state-changing request carries an Idempotency-Key; an ambiguous answer (503, timeout)
is retried with the same key, as a careful client would. After the load stops and the event
path settles, it checks that every accepted request is there (each 201 booking readable,
each 200 return `returned`), that every returned booking was charged exactly once, that every
mail decided reached the mail server exactly once (the ids its mail carries: one, or the
several of a grouped mail, tests.support.mail.carried; those of a round a killed
notifications process was sending are counted apart: sent again by its twin), that no
consumer queue holds messages, that no slot raced for is held by two bookings, that every
commune's invoice numbers run from 1 without a gap or a repeat (after a last billing run),
and that during the faults the API answered only 2xx, 4xx or 503 problem+json, never a 500
and never a hang. Writes test-output/drills/report.md and
.json; exits non-zero on anything lost, duplicated, answered 500, hung or not recovered.
`DRILLS_ONLY=SMTP` (any part of the faults' names) runs only those faults. `run(Plan(…))`
is the same drill in short (tests/e2e/test_replicas.py: kills only, no restarts).
"""

from __future__ import annotations

import warnings

# nameko (imported through infra) pulls in eventlet, which warns that it is deprecated; the
# drills never monkey-patch: plain threads drive the load
warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from email import message_from_bytes, policy  # noqa: E402
from pathlib import Path  # noqa: E402

import requests  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.bookings import publish_listings  # noqa: E402
from contracts.clock import PARIS, paris_today  # noqa: E402
from infra.settings import PROJECT_ROOT  # noqa: E402
from tests.support import SERVICES, Stack  # noqa: E402
from tests.support.mail import MailCatcher, carried  # noqa: E402
from tests.support.stack import RELAYED, replica_name, replica_of  # noqa: E402

OUTPUT = PROJECT_ROOT / "test-output" / "drills"
LENDER = "42044"
BORROWERS = ("42218", "42095", "42207")
CLIENTS = int(os.environ.get("DRILLS_CLIENTS", "5"))
REPLICAS = int(os.environ.get("DRILLS_REPLICAS", "2"))
LISTINGS = 10
RACERS = 4  # requests sent at once for each slot of the shared listing
UNITS = 1000  # of each client's listing (the most a listing has): returned ones are free again
BILLING_EVERY = 2.0  # seconds between two billing runs (each sent through both gateways)
CLIENT_TIMEOUT = 15.0  # a request without an answer by then is a hang
RETRY_PAUSE = 0.25  # between retries of an ambiguous answer (503, timeout, reset)
STEP_GIVE_UP = 90.0  # a step still unanswered after this is abandoned (and reported)
BEFORE_FAULT = 3.0  # steady load before each fault
RECOVERY_LIMIT = 90.0  # every client must have succeeded again within this
AFTER_RECOVERY = 3.0  # steady load after recovery, before the next fault
BROKER_DOWN = 5.0
SMTP_DOWN = 30.0
ONLY = os.environ.get("DRILLS_ONLY", "")
SETTLE_LIMIT = 120.0
PG_CLUSTER = ("15", "main")
STEPS = (("approve", "approved", None), ("check-out", "checked_out", {"condition": "ok"}))
RETURN = ("return", "returned", {"condition": "ok", "damages": []})
RANK = {"requested": 0, "approved": 1, "checked_out": 2, "returned": 3}


@dataclass(frozen=True)
class Plan:
    """What a drill does: `make drills` restarts each process it kills and stops the broker,
    the database and the mail server too; the e2e test only kills, with shorter pauses."""

    replicas: int = REPLICAS
    only: str = ONLY
    before_fault: float = BEFORE_FAULT
    after_recovery: float = AFTER_RECOVERY
    restart_killed: bool = True
    outages: bool = True  # RabbitMQ, PostgreSQL and the mail server down, after the kills
    output: Path | None = OUTPUT


class Gateways:
    """The gateways a load balancer sends to: every replica, but one killed until it is back
    (as a balancer's health check would take it out); each request goes to the next one."""

    def __init__(self, urls: list[str]):
        self.urls = list(urls)
        self.down: set[str] = set()
        self._turn = itertools.count()
        self.lock = threading.Lock()

    def next(self) -> str:
        with self.lock:
            live = [url for url in self.urls if url not in self.down] or self.urls
            return live[next(self._turn) % len(live)]

    def set_down(self, url: str, down: bool) -> None:
        with self.lock:
            (self.down.add if down else self.down.discard)(url)


@dataclass
class Sent:
    """One request and what came back (status, or `failure` for a timeout or reset)."""

    client: int
    phase: str
    action: str
    booking_id: str | None
    sent_at: float
    answered_at: float
    status: int | None = None
    content_type: str = ""
    failure: str | None = None
    detail: str = ""
    payload: object = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def bad(self) -> bool:
        """What the API must never do: a 5xx other than 503 problem+json, or no answer."""
        if self.failure == "Timeout":
            return True
        if self.status is None:
            return False  # a refused or reset connection: the gateway itself is down
        if self.status >= 500:
            return not (self.status == 503 and self.content_type.startswith("application/problem"))
        return False


class Phases:
    """What is going on now, so each request is counted against the fault it met."""

    def __init__(self):
        self.name = "baseline"
        self.lock = threading.Lock()
        self.began = [(time.time(), self.name)]  # wall clock: when each phase began

    def set(self, name: str) -> None:
        with self.lock:
            self.name = name
            self.began.append((time.time(), name))

    def at(self, moment: float) -> str:
        """The phase going on at `moment` (wall clock)."""
        return [name for began, name in self.began if began <= moment][-1]


@dataclass
class Booking:
    id: str
    client: int
    created_phase: str
    accepted_status: str = "requested"
    returned_phase: str | None = None  # the phase in which a return answered 200


@dataclass
class Client:
    index: int
    borrower: str
    borrower_headers: dict
    lender_headers: dict
    listing_id: str
    first_hour: datetime
    gateways: Gateways
    phases: Phases
    stop: threading.Event
    log: list[Sent] = field(default_factory=list)
    bookings: list[Booking] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    stale_keys: int = 0  # keys answered 409 "in progress" after their request had failed
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.borrower_http = requests.Session()
        self.borrower_http.headers.update(self.borrower_headers)
        self.lender_http = requests.Session()
        self.lender_http.headers.update(self.lender_headers)

    def send(self, http, method, path, action, booking_id=None, body=None, key=None) -> Sent:
        headers = {"Idempotency-Key": key} if key else {}
        sent_at = time.monotonic()
        record = Sent(self.index, self.phases.name, action, booking_id, sent_at, sent_at)
        try:
            answer = http.request(
                method,
                f"{self.gateways.next()}{path}",
                json=body,
                headers=headers,
                timeout=CLIENT_TIMEOUT,
            )
            record.status = answer.status_code
            record.content_type = answer.headers.get("Content-Type", "")
            record.detail = answer.text[:300] if answer.status_code >= 300 else ""
            record.payload = answer.json() if "json" in record.content_type else None
        except requests.Timeout:
            record.failure = "Timeout"
        except requests.RequestException as exc:
            record.failure = type(exc).__name__
            record.detail = str(exc)[:300]
        except ValueError:  # a body that is not JSON
            record.payload = None
        record.answered_at = time.monotonic()
        record.phase = self.phases.name  # a request in flight when a fault began met it
        with self.lock:
            self.log.append(record)
        return record

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            self.lifecycle(n)
            n += 1

    def lifecycle(self, n: int) -> None:
        start = self.first_hour
        body = {
            "listing_id": self.listing_id,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
            "purpose": f"drill {self.index}-{n}",
        }
        created = self.until_answered(
            self.borrower_http, "POST", "/api/v1/bookings", "request", None, body
        )
        if created is None or created.status != 201:
            return
        booking = Booking(created.payload["id"], self.index, created.phase)
        with self.lock:
            self.bookings.append(booking)
        path = f"/api/v1/bookings/{booking.id}"
        for step, status, step_body in (*STEPS, RETURN):
            done = self.until_answered(
                self.lender_http, "POST", f"{path}/{step}", step, booking.id, step_body, status
            )
            if done is None:
                with self.lock:
                    self.abandoned.append(booking.id)
                return
            if done.ok:
                booking.accepted_status = status
                if step == "return" and done.status == 200:
                    booking.returned_phase = done.phase
            elif done.status != 409:  # 409: already done by an earlier, ambiguous try
                with self.lock:
                    self.abandoned.append(booking.id)
                return

    def until_answered(self, http, method, path, action, booking_id, body, target=None):
        """Sends until a definitive answer (2xx or 4xx), with the same Idempotency-Key on
        every try. A 409 of a transition already made by an earlier, ambiguous try (or a key
        left in progress by a killed gateway) is resolved by reading the booking."""
        key = uuid.uuid4().hex
        deadline = time.monotonic() + STEP_GIVE_UP
        while time.monotonic() < deadline:
            if self.stop.is_set() and action == "request":
                return None
            sent = self.send(http, method, path, action, booking_id, body, key)
            if sent.ok or (sent.status is not None and 400 <= sent.status < 500):
                if sent.status == 409 and target is not None:
                    seen = self.send(http, "GET", path.rsplit("/", 1)[0], "read", booking_id)
                    if seen.ok and RANK[seen.payload["status"]] >= RANK[target]:
                        return sent  # done by an earlier try: move on
                    if seen.ok and "in progress" in sent.detail:
                        key = uuid.uuid4().hex  # a key whose answer was never stored
                        with self.lock:
                            self.stale_keys += 1
                    time.sleep(RETRY_PAUSE)
                    continue
                return sent
            time.sleep(RETRY_PAUSE)
        return None


class Racer(Client):
    """Agents of several communes asking for the same slot at once, a new slot each round,
    through every gateway: one of them gets it (the others 409), whichever replicas decide."""

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            start = self.first_hour + timedelta(hours=n)
            body = {
                "listing_id": self.listing_id,
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
                "purpose": f"course {n}",
            }
            racers = [
                threading.Thread(
                    target=self.until_answered,
                    args=(self.borrower_http, "POST", "/api/v1/bookings", "race", None, body),
                )
                for _ in range(RACERS)
            ]
            for racer in racers:
                racer.start()
            for racer in racers:
                racer.join()
            n += 1
            time.sleep(RETRY_PAUSE)


class Biller(Client):
    """The lender's finance team running this month's billing through two gateways at once,
    every BILLING_EVERY seconds: two billing replicas issue at the same time."""

    def run(self) -> None:
        body = {"period": paris_today().strftime("%Y-%m")}
        while not self.stop.wait(BILLING_EVERY):
            runs = [
                threading.Thread(
                    target=self.until_answered,
                    args=(self.lender_http, "POST", "/api/v1/billing/runs", "billing run"),
                    kwargs={"booking_id": None, "body": body},
                )
                for _ in range(2)
            ]
            for run in runs:
                run.start()
            for run in runs:
                run.join()


def rabbitmqctl(*args: str) -> str:
    return subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout


def restart_postgres() -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *PG_CLUSTER, "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


def wait_postgres(stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            engine = stack.database("billing")
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def restart(stack: Stack, name: str, gateways: Gateways | None = None) -> None:
    stack.start_process(name)
    if replica_of(name).endswith("-relay"):
        time.sleep(1)
        if stack.processes[name].poll() is not None:
            raise RuntimeError(f"{name} exited after its restart: see {stack.logs}")
    else:
        stack.wait_ready(name, timeout=60)
        if gateways is not None and replica_of(name) == "gateway":
            gateways.set_down(gateway_url(stack, name), False)


def gateway_url(stack: Stack, name: str) -> str:
    return f"http://127.0.0.1:{stack.replica_ports[name]}"


def kill(stack: Stack, name: str, gateways: Gateways) -> None:
    if replica_of(name) == "gateway":
        gateways.set_down(gateway_url(stack, name), True)
    stack.kill(name)


def faults(stack: Stack, catcher: MailCatcher, plan: Plan, gateways: Gateways):
    """(name, inflict, restore) for each drill, in order (those `plan.only` names). The
    replica killed is each process's last (its first, `gateway`, stays: the checks read
    through it)."""
    every = []
    for name in ("gateway", *SERVICES, *(f"{s}-relay" for s in RELAYED)):
        victim = replica_name(name, plan.replicas)
        every.append(
            (
                f"kill -9 {victim}",
                lambda v=victim: kill(stack, v, gateways),
                (lambda v=victim: restart(stack, v, gateways))
                if plan.restart_killed
                else (lambda: None),
            )
        )
    if not plan.outages:
        return [fault for fault in every if plan.only in fault[0]]
    every.append(
        (
            "RabbitMQ stop_app 5 s",
            lambda: (rabbitmqctl("stop_app"), time.sleep(BROKER_DOWN)),
            lambda: rabbitmqctl("start_app"),
        )
    )
    every.append(("PostgreSQL restart", restart_postgres, lambda: wait_postgres(stack)))
    every.append(
        (
            "SMTP server down 30 s",
            lambda: (catcher.stop(), time.sleep(SMTP_DOWN)),
            catcher.start,
        )
    )
    return [fault for fault in every if plan.only in fault[0]]


def mails_check(stack: Stack, catcher: MailCatcher, phases: Phases) -> dict:
    """Waits until no mail is pending, then compares the mails decided with those the
    server received: each exactly once (by the ids a mail carries, `carried`), but for the mails
    of a round a notifications process was sending when it was killed, or when PostgreSQL
    ended its connection: the server had accepted them, their commit never came, and the
    process (or its twin) sends them again (SMTP has no idempotency key: at least once at
    the server, docs/architecture.md; the header lets a mailbox tell). Those count as
    `resent_after_kill`, the others as `duplicated`."""
    engine = stack.database("notifications")
    started = time.monotonic()
    while True:
        with engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT id, status FROM mails")).all())
        pending = [m for m, status in rows.items() if status == "pending"]
        if not pending or time.monotonic() - started > SETTLE_LIMIT:
            break
        time.sleep(1)
    arrivals: dict[str, list[float]] = {}
    for path in catcher.directory.glob("*.eml"):
        mail = message_from_bytes(path.read_bytes(), policy=policy.default)
        for decided in carried(mail):  # a grouped mail carries several decided mails
            arrivals.setdefault(decided, []).append(path.stat().st_mtime)
    received = Counter({mail: len(times) for mail, times in arrivals.items()})
    again = {
        mail: phases.at(sorted(times)[1]) for mail, times in arrivals.items() if len(times) > 1
    }
    resent = sorted(mail for mail, phase in again.items() if may_send_twice(phase))
    return {
        "decided": len(rows),
        "received": sum(received.values()),
        "pending": len(pending),
        "lost": sorted(m for m, status in rows.items() if status == "sent" and not received[m]),
        "duplicated": sorted(mail for mail in again if mail not in resent),
        "resent_after_kill": resent,
        "refused": sorted(m for m, status in rows.items() if status == "refused"),
    }


def may_send_twice(phase: str) -> bool:
    """Faults that can end a mail round between the server's acceptance and the commit."""
    killed = phase.startswith("kill -9 notifications") and "relay" not in phase
    return killed or phase.startswith("PostgreSQL")


def recovered_at(clients: list[Client], since: float) -> float | None:
    """When the last client had its first 2xx after `since`; None if one has not yet."""
    firsts = []
    for client in clients:
        with client.lock:
            first = next((s.answered_at for s in client.log if s.ok and s.sent_at >= since), None)
        if first is None:
            return None
        firsts.append(first)
    return max(firsts)


def queue_depths(stack: Stack) -> dict[str, int]:
    out = rabbitmqctl("list_queues", "-p", stack.vhost.name, "name", "messages")
    depths = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            depths[parts[0]] = int(parts[1])
    return depths


def charges_by_booking(stack: Stack) -> Counter:
    engine = stack.database("billing")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT source_reference FROM charges WHERE source_reference LIKE 'booking:%'")
            )
            return Counter(ref.split(":")[1] for (ref,) in rows)
    finally:
        engine.dispose()


def settle(stack: Stack, returned: set[str]) -> tuple[dict[str, int], Counter, float]:
    """Waits until every evt-* queue is empty and every returned booking is charged."""
    started = time.monotonic()
    while True:
        depths = queue_depths(stack)
        charges = charges_by_booking(stack)
        stuck = {q: m for q, m in depths.items() if q.startswith("evt-") and m}
        if not stuck and all(charges[b] for b in returned):
            return depths, charges, time.monotonic() - started
        if time.monotonic() - started > SETTLE_LIMIT:
            return depths, charges, time.monotonic() - started
        time.sleep(1)


def stored_statuses(stack: Stack) -> dict[str, str]:
    engine = stack.database("bookings")
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT id, status FROM bookings")).all())
    finally:
        engine.dispose()


def read_booking(stack: Stack, headers: dict, booking_id: str, stored: dict) -> tuple[int, str]:
    """Through the API; if the API cannot answer (a service that did not come back), what
    the bookings database holds, with the API's answer (0: no answer) kept for the report."""
    try:
        answer = requests.get(
            f"{stack.url}/api/v1/bookings/{booking_id}", headers=headers, timeout=CLIENT_TIMEOUT
        )
        if answer.status_code == 200:
            return 200, answer.json()["status"]
        code = answer.status_code
    except requests.RequestException:
        code = 0
    return code, stored.get(booking_id)


def run(plan: Plan, workdir: Path | None = None) -> dict:
    """Starts the stack with `plan.replicas` of each process, drives the load through the
    faults and returns the report (written under `plan.output` unless None)."""
    ensure_not_monkey_patched()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="drills-"))
    catcher = MailCatcher(workdir / "mail")
    catcher.start()
    settings = catcher.settings | {
        "NOTIFICATIONS_RETRY_BASE_SECONDS": "1",
        "NOTIFICATIONS_RETRY_CAP_SECONDS": "10",
    }
    stack = Stack("postgresql", workdir, settings=settings, replicas=plan.replicas)
    broker_stopped = False
    try:
        print(
            f"starting the stack on PostgreSQL, {plan.replicas} replica(s) of each process "
            f"(vhost {stack.vhost.name})",
            flush=True,
        )
        stack.start()
        # each client books the same hour of its listing again and again (a unit each time)
        listing_ids = publish_listings(stack, LISTINGS, "Salle des drills", quantity=UNITS)
        (contested,) = publish_listings(stack, 1, "Salle disputée")  # one unit, raced for
        lender = dict(stack.as_role("manager", LENDER).headers)
        finance = dict(stack.as_role("finance", LENDER).headers)
        borrowers = {c: dict(stack.as_role("agent", c).headers) for c in BORROWERS}
        gateways = Gateways(stack.gateway_urls)
        phases, stop = Phases(), threading.Event()
        base = lifecycle_hour(datetime.now(UTC))
        common = {"gateways": gateways, "phases": phases, "stop": stop}
        clients = [
            Client(
                index=i,
                borrower=BORROWERS[i % len(BORROWERS)],
                borrower_headers=borrowers[BORROWERS[i % len(BORROWERS)]],
                lender_headers=lender,
                listing_id=listing_ids[i % len(listing_ids)],
                first_hour=base,
                **common,
            )
            for i in range(CLIENTS)
        ]
        # far enough ahead that no raced slot expires while the drill runs
        racer = Racer(
            CLIENTS,
            BORROWERS[0],
            borrowers[BORROWERS[0]],
            lender,
            contested,
            base + timedelta(days=60),
            **common,
        )
        biller = Biller(CLIENTS + 1, LENDER, finance, finance, contested, base, **common)
        everyone = [*clients, racer, biller]
        threads = [threading.Thread(target=c.run, name=f"drill-{c.index}") for c in everyone]
        for thread in threads:
            thread.start()
        drills = []
        try:
            time.sleep(plan.before_fault)
            for name, inflict, restore in faults(stack, catcher, plan, gateways):
                time.sleep(plan.before_fault)
                print(f"-- {name}", flush=True)
                phases.set(name)
                began = time.monotonic()
                try:
                    if name.startswith("RabbitMQ"):
                        broker_stopped = True
                    inflict()
                finally:
                    restore()
                    broker_stopped = False
                ended = time.monotonic()
                recovered = None
                while time.monotonic() - ended < RECOVERY_LIMIT:
                    recovered = recovered_at(clients, ended)
                    if recovered is not None:
                        break
                    time.sleep(0.2)
                seconds = None if recovered is None else round(max(recovered - ended, 0.0), 2)
                print(f"   fault {ended - began:.1f} s, recovery {seconds} s", flush=True)
                drills.append({"fault": name, "fault_seconds": round(ended - began, 2)})
                drills[-1]["recovery_seconds"] = seconds
                time.sleep(plan.after_recovery)
            phases.set("after")
            time.sleep(plan.before_fault)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=STEP_GIVE_UP + CLIENT_TIMEOUT * 2)
        print("-- load stopped; settling", flush=True)
        report = verify(stack, everyone, borrowers, drills)
        report["replicas"] = plan.replicas
        report["clients"] = len(clients)  # the racers and the finance team come on top
        report["mails"] = mails = mails_check(stack, catcher, phases)
        report["double_bookings"] = double = double_bookings(stack, contested)
        report["races"] = races_won(racer)
        report["invoice_numbers"] = numbers = invoice_numbers(stack, biller)
        report["passed"] = report["passed"] and not (
            mails["pending"] or mails["lost"] or mails["duplicated"] or mails["refused"]
        )
        report["passed"] = report["passed"] and not double and numbers["passed"]
        # a process that died of a fault it should have weathered (its twin hid it)
        report["exited"] = exited = sorted(
            name for name, process in stack.processes.items() if process.poll() is not None
        )
        report["passed"] = report["passed"] and not exited
    finally:
        if broker_stopped:
            rabbitmqctl("start_app")
        stack.stop()
        catcher.stop()
    if plan.output is not None:
        write(report, plan.output)
    return report


def plan_from_environment() -> Plan:
    """`make drills`' plan, or with `DRILLS_SHORT=1` the e2e test's: one replica of each
    process killed in turn and not restarted (its twin carries on), shorter pauses, no
    outages; `DRILLS_OUTPUT` says where the report goes."""
    output = Path(os.environ.get("DRILLS_OUTPUT", OUTPUT))
    if os.environ.get("DRILLS_SHORT") == "1":
        return Plan(
            before_fault=1.5, after_recovery=1.0, restart_killed=False, outages=False, output=output
        )
    return Plan(output=output)


def drill() -> int:
    return 0 if run(plan_from_environment())["passed"] else 1


def lifecycle_hour(now: datetime) -> datetime:
    """The hour every lifecycle books: the next one if it starts today in Paris (a loan is
    handed over from its first day, and charged in the month it ends), else this one."""
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    following = this_hour + timedelta(hours=1)
    same_day = following.astimezone(PARIS).date() == now.astimezone(PARIS).date()
    return following if same_day else this_hour


def double_bookings(stack: Stack, listing_id: str) -> list[str]:
    """The raced slots held by more than one booking (requested, approved or checked out),
    read in the bookings database: what no replica may ever let happen."""
    engine = stack.database("bookings")
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT start, count(*) FROM bookings WHERE listing_id = :listing "
                "AND status IN ('requested', 'approved', 'checked_out') "
                "GROUP BY start HAVING count(*) > 1"
            ),
            {"listing": listing_id},
        ).all()
    return [f"{start.isoformat()}: {count} bookings" for start, count in rows]


def races_won(racer: Racer) -> dict:
    """How the races went: slots raced for, and the answers (one 201 each, the rest 409)."""
    answers = Counter(str(s.status or s.failure) for s in racer.log if s.action == "race")
    return {"answers": dict(sorted(answers.items()))}


def invoice_numbers(stack: Stack, biller: Biller) -> dict:
    """After a last billing run (what the runs under faults left), every supplier's invoice
    numbers of each year are 1, 2, … n: none skipped, none twice, n its sequence's last."""
    final = biller.until_answered(
        biller.lender_http,
        "POST",
        "/api/v1/billing/runs",
        "billing run",
        None,
        {"period": paris_today().strftime("%Y-%m")},
    )
    engine = stack.database("billing")
    with engine.connect() as conn:
        numbers = conn.execute(text("SELECT supplier_commune, number FROM invoices")).all()
        sequences = conn.execute(
            text(
                "SELECT supplier_commune, year, last_number FROM number_sequences "
                "WHERE series = 'invoice'"
            )
        ).all()
        uninvoiced = conn.scalar(
            text(
                "SELECT count(*) FROM charges c WHERE c.period = :period AND NOT EXISTS "
                "(SELECT 1 FROM invoice_lines l WHERE l.charge_id = c.id)"
            ),
            {"period": paris_today().strftime("%Y-%m")},
        )
    issued: dict[tuple[str, int], list[int]] = {}
    for supplier, number in numbers:
        _, year, sequence = number.rsplit("-", 2)
        issued.setdefault((supplier, int(year)), []).append(int(sequence))
    faults = []
    for supplier, year, last in sequences:
        got = sorted(issued.pop((supplier, year), []))
        if got != list(range(1, last + 1)):
            missing = sorted(set(range(1, last + 1)) - set(got))
            twice = sorted(n for n, c in Counter(got).items() if c > 1)
            faults.append(f"{supplier} {year}: last {last}, missing {missing}, twice {twice}")
    faults += [f"{s} {y}: numbers without a sequence" for s, y in issued]
    runs = Counter(str(s.status or s.failure) for s in biller.log if s.action == "billing run")
    return {
        "invoices": len(numbers),
        "billing_runs": dict(sorted(runs.items())),
        "last_run": final.status if final else None,
        "uninvoiced_charges_of_the_period": uninvoiced,
        "faults": faults,
        "passed": not faults and final is not None and final.ok and uninvoiced == 0,
    }


def verify(stack: Stack, clients: list[Client], borrowers: dict, drills: list[dict]) -> dict:
    log = [s for c in clients for s in c.log]
    bookings = [b for c in clients for b in c.bookings]
    # what the store says of every booking a 201 answered for
    stored = stored_statuses(stack)
    actual, unreadable = {}, 0
    for b in bookings:
        if unreadable >= 3:  # the API is not answering: the database says the rest
            actual[b.id] = (0, stored.get(b.id))
            continue
        actual[b.id] = read_booking(stack, borrowers[clients[b.client].borrower], b.id, stored)
        unreadable += actual[b.id][0] != 200
    returned = {b for b, (_, status) in actual.items() if status == "returned"}
    depths, charges, settle_seconds = settle(stack, returned)
    lost: dict[str, list[str]] = {}
    duplicated: dict[str, list[str]] = {}
    for b in bookings:
        code, status = actual[b.id]
        reasons = []
        if status is None or (code != 200 and code >= 400 and code != 503):
            reasons.append(f"GET answered {code}, stored status {status}")
        elif RANK[status] < RANK[b.accepted_status]:
            reasons.append(f"status {status}, accepted {b.accepted_status}")
        if status == "returned" and charges[b.id] == 0:
            reasons.append("returned but not charged")
        if reasons:
            phase = b.returned_phase or b.created_phase
            lost.setdefault(phase, []).append(f"{b.id}: {'; '.join(reasons)}")
        if charges[b.id] > 1:
            duplicated.setdefault(b.returned_phase or b.created_phase, []).append(b.id)
    stuck = {q: m for q, m in depths.items() if q.startswith("evt-") and m}
    names = ["baseline", *(d["fault"] for d in drills), "after"]
    rows = []
    for name in names:
        mine = [s for s in log if s.phase == name]
        drill = next((d for d in drills if d["fault"] == name), {})
        statuses = Counter(str(s.status or s.failure) for s in mine)
        rows.append(
            {
                "fault": name,
                "requests": len(mine),
                "accepted": sum(s.ok for s in mine),
                "503": sum(s.status == 503 for s in mine),
                "500": sum(
                    s.status is not None and s.status >= 500 and s.status != 503 for s in mine
                ),
                "bad_503": sum(s.status == 503 and s.bad for s in mine),
                "timeouts": sum(s.failure == "Timeout" for s in mine),
                "refused": sum(s.failure is not None and s.failure != "Timeout" for s in mine),
                "lost": len(lost.get(name, [])),
                "duplicated": len(duplicated.get(name, [])),
                "recovery_seconds": drill.get("recovery_seconds"),
                "fault_seconds": drill.get("fault_seconds"),
                "statuses": dict(sorted(statuses.items())),
                "samples": sorted(
                    {f"{s.action} {s.status or s.failure}: {s.detail[:160]}" for s in mine if s.bad}
                )[:5],
            }
        )
    not_recovered = [d["fault"] for d in drills if d["recovery_seconds"] is None]
    # a refused or reset connection is expected only while the gateway process is down
    refused_elsewhere = sum(r["refused"] for r in rows if not kills_a_gateway(r["fault"]))
    abandoned = [b for c in clients for b in c.abandoned]
    total = {
        key: sum(r[key] for r in rows)
        for key in (
            "requests",
            "accepted",
            "503",
            "500",
            "bad_503",
            "timeouts",
            "lost",
            "duplicated",
        )
    }
    passed = (
        total["500"] == 0
        and total["bad_503"] == 0
        and total["timeouts"] == 0
        and total["lost"] == 0
        and total["duplicated"] == 0
        and not stuck
        and not not_recovered
        and refused_elsewhere == 0
        and all(code == 200 for code, _ in actual.values())
    )
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "clients": len(clients),
        "client_timeout_seconds": CLIENT_TIMEOUT,
        "bookings_created": len(bookings),
        "bookings_unreadable_through_api": sum(1 for code, _ in actual.values() if code != 200),
        "bookings_returned": len(returned),
        "charged_bookings": sum(1 for b in bookings if charges[b.id]),
        "abandoned_lifecycles": abandoned,
        "stale_idempotency_keys": sum(c.stale_keys for c in clients),
        "settle_seconds": round(settle_seconds, 1),
        "queues": depths,
        "stuck_queues": stuck,
        "not_recovered": not_recovered,
        "refused_outside_gateway_kill": refused_elsewhere,
        "lost": lost,
        "duplicated": duplicated,
        "rows": rows,
        "total": total,
        "passed": passed,
    }


def kills_a_gateway(fault: str) -> bool:
    """`kill -9 gateway` or `kill -9 gateway#2`, not the gateway's relay."""
    return fault.startswith("kill -9 gateway") and "relay" not in fault


def markdown(report: dict) -> str:
    numbers = report["invoice_numbers"]
    lines = [
        "# Fault drills",
        "",
        f"{report['replicas']} replica(s) of every process (services, relays, gateways). "
        f"{report['clients']} clients, each request, approve, check-out and return of hourly "
        f"bookings through the gateway; client timeout {report['client_timeout_seconds']:g} s. "
        f"Generated {report['generated_at']}.",
        "",
        "| fault | fault s | requests sent | accepted | 503s | 500s | timeouts | refused | lost "
        "| duplicated | recovery s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        recovery = "—" if r["recovery_seconds"] is None else f"{r['recovery_seconds']:.2f}"
        if r["fault"] in report["not_recovered"]:
            recovery = "**not recovered**"
        lines.append(
            f"| {r['fault']} | {'' if r['fault_seconds'] is None else r['fault_seconds']} "
            f"| {r['requests']} | {r['accepted']} | {r['503']} | {r['500']} "
            f"| {r['timeouts']} | {r['refused']} | {r['lost']} | {r['duplicated']} | {recovery} |"
        )
    t = report["total"]
    lines += [
        f"| **total** | | {t['requests']} | {t['accepted']} | {t['503']} | {t['500']} "
        f"| {t['timeouts']} | | {t['lost']} | {t['duplicated']} | |",
        "",
        "Each request counts against the phase it was answered in; a fault's phase lasts "
        "until the next fault (its recovery included). fault s: from the fault to the end of "
        "its repair (process ready again, broker started, database answering). refused: "
        "connection refused or reset (the gateway process itself was down). recovery s: "
        "from the end of the repair to the first 2xx of every client.",
        "",
        f"- bookings created: {report['bookings_created']}, returned: "
        f"{report['bookings_returned']}, charged: {report['charged_bookings']}; not readable "
        f"through the API at the end (checked in the bookings database instead): "
        f"{report['bookings_unreadable_through_api']}",
        f"- 503 answers that were not problem+json: {t['bad_503']}; connections refused "
        f"or reset outside the gateway's own kill: {report['refused_outside_gateway_kill']}",
        f"- lifecycles abandoned (a step unanswered for {STEP_GIVE_UP:g} s or refused): "
        f"{len(report['abandoned_lifecycles'])}",
        f"- Idempotency-Keys left 'in progress' by a failed request (retried with a new key): "
        f"{report['stale_idempotency_keys']}",
        f"- settled in {report['settle_seconds']} s; queues holding messages: "
        f"{report['stuck_queues'] or 'none'}",
        f"- mails decided: {report['mails']['decided']}, received by the mail server: "
        f"{report['mails']['received']}; pending at the end: {report['mails']['pending']}, "
        f"lost: {len(report['mails']['lost'])}, received twice: "
        f"{len(report['mails']['duplicated'])}, sent again after a notifications process was "
        f"killed or lost its database mid-round (SMTP: at least once at the server): "
        f"{len(report['mails']['resent_after_kill'])}, refused: "
        f"{len(report['mails']['refused'])}",
        f"- slots raced for by {RACERS} agents at once: answers {report['races']['answers']}; "
        f"slots held by two bookings: {report['double_bookings'] or 'none'}",
        f"- billing runs (two at once, one per gateway): {numbers['billing_runs']}; "
        f"{numbers['invoices']} invoices; numbers skipped or repeated: "
        f"{numbers['faults'] or 'none'}; this month's charges left uninvoiced after a last "
        f"run: {numbers['uninvoiced_charges_of_the_period']}",
        f"- processes that exited on their own: {', '.join(report.get('exited', [])) or 'none'}",
        f"- **{'PASSED' if report['passed'] else 'FAILED'}**",
    ]
    for title, key in (("Lost", "lost"), ("Duplicated", "duplicated")):
        if report[key]:
            lines += ["", f"## {title}", ""]
            for phase, items in report[key].items():
                lines += [f"- {phase}: {item}" for item in items]
    samples = [(r["fault"], s) for r in report["rows"] for s in r["samples"]]
    if samples:
        lines += ["", "## Bad answers (samples)", ""]
        lines += [f"- {fault}: `{sample}`" for fault, sample in samples]
    return "\n".join(lines) + "\n"


def write(report: dict, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    document = markdown(report)
    (output / "report.md").write_text(document)
    (output / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(document)
    print(f"written to {output}/report.md and report.json")


def ensure_not_monkey_patched() -> None:
    if "eventlet" in sys.modules:
        from eventlet import patcher

        if patcher.is_monkey_patched("socket") or patcher.is_monkey_patched("thread"):
            raise RuntimeError("the drills process is eventlet-patched: its threads would lie")


if __name__ == "__main__":
    sys.exit(drill())
