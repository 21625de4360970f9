"""`make drills`: the stack survives faults under load, through the gateway.

Starts the whole stack on fresh PostgreSQL databases, publishes hourly listings of Le
Chambon-Feugerolles, then drives a steady closed-loop load (agents of Saint-Étienne, Firminy
and Saint-Chamond request bookings; Chambon's manager approves, checks out and returns each)
while these faults happen one after another, each followed by a recovery wait:

1. `kill -9` of each process in turn (gateway, services, relays), then a restart;
2. RabbitMQ stopped for ~5 s (`rabbitmqctl stop_app` / `start_app`);
3. PostgreSQL restarted (`pg_ctlcluster … restart`);
4. the mail server (the catcher, aiosmtpd) down for 30 s: the notifications wait and go.

Every state-changing request carries an Idempotency-Key; an ambiguous answer (503, timeout)
is retried with the same key, as a careful client would. After the load stops and the event
path settles, it checks that every accepted request is there (each 201 booking readable,
each 200 return `returned`), that every returned booking was charged exactly once, that every
mail decided reached the mail server exactly once (its X-Mutualis-Mail header), that no
consumer queue holds messages, and that during the faults the API answered only 2xx, 4xx or
503 problem+json, never a 500 and never a hang. Writes test-output/drills/report.md and
.json; exits non-zero on anything lost, duplicated, answered 500, hung or not recovered.
`DRILLS_ONLY=SMTP` (any part of the faults' names) runs only those faults.
"""

from __future__ import annotations

import warnings

# nameko (imported through infra) pulls in eventlet, which warns that it is deprecated; the
# drills never monkey-patch: plain threads drive the load
warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

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
from pathlib import Path  # noqa: E402

import requests  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.bookings import publish_listings  # noqa: E402
from infra.settings import PROJECT_ROOT  # noqa: E402
from tests.support import SERVICES, Stack  # noqa: E402
from tests.support.mail import MailCatcher  # noqa: E402
from tests.support.stack import RELAYED  # noqa: E402

OUTPUT = PROJECT_ROOT / "test-output" / "drills"
LENDER = "42044"
BORROWERS = ("42218", "42095", "42207")
CLIENTS = int(os.environ.get("DRILLS_CLIENTS", "5"))
LISTINGS = 10
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

    def set(self, name: str) -> None:
        with self.lock:
            self.name = name


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
    url: str
    phases: Phases
    stop: threading.Event
    log: list[Sent] = field(default_factory=list)
    bookings: list[Booking] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    stale_keys: int = 0  # keys answered 409 "in progress" after their request had failed
    # hours after the current one this client books: one more for each slot a booking it
    # gave up on (or one it did not make) may still hold
    skipped_hours: int = 0
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
                f"{self.url}{path}",
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
        """One loan, booked for the current hour (or the next free one): a loan is handed
        over from its first day in Paris (the day before with early pick-up, which the
        drill's rooms allow), so a loan booked further ahead could not be checked out.
        Returned, it frees its hour for the next one."""
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start += timedelta(hours=self.skipped_hours)
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
            if created is not None and created.status == 409:
                self.skipped_hours += 1  # held by a booking this client gave up on
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
                self.give_up(booking)
                return
            if done.ok:
                booking.accepted_status = status
                if step == "return" and done.status == 200:
                    booking.returned_phase = done.phase
            elif done.status != 409:  # 409: already done by an earlier, ambiguous try
                self.give_up(booking)
                return

    def give_up(self, booking: Booking) -> None:
        """A loan left where it is (reported): the next ones book the hour after its."""
        with self.lock:
            self.abandoned.append(booking.id)
        self.skipped_hours += 1

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


def restart(stack: Stack, name: str) -> None:
    stack.start_process(name)
    if name.endswith("-relay"):
        time.sleep(1)
        if stack.processes[name].poll() is not None:
            raise RuntimeError(f"{name} exited after its restart: see {stack.logs}")
    else:
        stack.wait_ready(name, timeout=60)


def faults(stack: Stack, catcher: MailCatcher):
    """(name, inflict, restore) for each drill, in order (those DRILLS_ONLY names)."""
    every = []
    for name in ("gateway", *SERVICES, *(f"{s}-relay" for s in RELAYED)):
        every.append(
            (f"kill -9 {name}", lambda n=name: stack.kill(n), lambda n=name: restart(stack, n))
        )
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
    return [fault for fault in every if ONLY in fault[0]]


def mails_check(stack: Stack, catcher: MailCatcher) -> dict:
    """Waits until no mail is pending, then compares the mails decided with those the
    server received: each exactly once (by the X-Mutualis-Mail header)."""
    engine = stack.database("notifications")
    started = time.monotonic()
    while True:
        with engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT id, status FROM mails")).all())
        pending = [m for m, status in rows.items() if status == "pending"]
        if not pending or time.monotonic() - started > SETTLE_LIMIT:
            break
        time.sleep(1)
    received = Counter(m["X-Mutualis-Mail"] for m in catcher.messages())
    return {
        "decided": len(rows),
        "received": sum(received.values()),
        "pending": len(pending),
        "lost": sorted(m for m, status in rows.items() if status == "sent" and not received[m]),
        "duplicated": sorted(m for m, n in received.items() if n > 1),
        "refused": sorted(m for m, status in rows.items() if status == "refused"),
    }


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


def drill() -> int:
    ensure_not_monkey_patched()
    OUTPUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="drills-"))
    catcher = MailCatcher(workdir / "mail")
    catcher.start()
    settings = catcher.settings | {
        "NOTIFICATIONS_RETRY_BASE_SECONDS": "1",
        "NOTIFICATIONS_RETRY_CAP_SECONDS": "10",
    }
    stack = Stack("postgresql", workdir, settings=settings)
    broker_stopped = False
    try:
        print(f"starting the stack on PostgreSQL (vhost {stack.vhost.name})", flush=True)
        stack.start()
        # early pick-up: a loan booked for the next hour that falls tomorrow (near Paris
        # midnight) is still handed over today
        listing_ids = publish_listings(stack, LISTINGS, "Salle des drills", early_pickup=True)
        lender = dict(stack.as_role("manager", LENDER).headers)
        borrowers = {c: dict(stack.as_role("agent", c).headers) for c in BORROWERS}
        phases, stop = Phases(), threading.Event()
        clients = [
            Client(
                index=i,
                borrower=BORROWERS[i % len(BORROWERS)],
                borrower_headers=borrowers[BORROWERS[i % len(BORROWERS)]],
                lender_headers=lender,
                listing_id=listing_ids[i % len(listing_ids)],
                url=stack.url,
                phases=phases,
                stop=stop,
            )
            for i in range(CLIENTS)
        ]
        threads = [threading.Thread(target=c.run, name=f"drill-{c.index}") for c in clients]
        for thread in threads:
            thread.start()
        drills = []
        try:
            time.sleep(BEFORE_FAULT)
            for name, inflict, restore in faults(stack, catcher):
                time.sleep(BEFORE_FAULT)
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
                time.sleep(AFTER_RECOVERY)
            phases.set("after")
            time.sleep(BEFORE_FAULT)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=STEP_GIVE_UP + CLIENT_TIMEOUT * 2)
        print("-- load stopped; settling", flush=True)
        report = verify(stack, clients, borrowers, drills)
        report["mails"] = mails = mails_check(stack, catcher)
        report["passed"] = report["passed"] and not (
            mails["pending"] or mails["lost"] or mails["duplicated"] or mails["refused"]
        )
    finally:
        if broker_stopped:
            rabbitmqctl("start_app")
        stack.stop()
        catcher.stop()
    write(report)
    return 0 if report["passed"] else 1


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
    refused_elsewhere = sum(r["refused"] for r in rows if r["fault"] != "kill -9 gateway")
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


def markdown(report: dict) -> str:
    lines = [
        "# Fault drills",
        "",
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
        f"{len(report['mails']['duplicated'])}, refused: {len(report['mails']['refused'])}",
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


def write(report: dict) -> None:
    document = markdown(report)
    (OUTPUT / "report.md").write_text(document)
    (OUTPUT / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(document)
    print(f"written to {OUTPUT}/report.md and report.json")


def ensure_not_monkey_patched() -> None:
    if "eventlet" in sys.modules:
        from eventlet import patcher

        if patcher.is_monkey_patched("socket") or patcher.is_monkey_patched("thread"):
            raise RuntimeError("the drills process is eventlet-patched: its threads would lie")


if __name__ == "__main__":
    sys.exit(drill())
