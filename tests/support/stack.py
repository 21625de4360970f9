"""Throw-away RabbitMQ vhosts and databases, and the whole stack as real processes."""

from __future__ import annotations

import atexit
import json
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine, text

from infra.settings import PROJECT_ROOT
from tests.support.waiting import wait_until

if TYPE_CHECKING:
    from eventlet.greenthread import GreenThread

AMQP_HOST = os.environ.get("TEST_AMQP_HOST", "guest:guest@127.0.0.1:5672")
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OUTPUT = PROJECT_ROOT / "test-output"
COMPONENTS = ("gateway", "listings", "bookings", "consultants", "billing", "notifications")
SERVICES = ("listings", "bookings", "consultants", "billing", "notifications")
RELAYED = (*SERVICES, "gateway")  # the gateway's relay announces users
# the `mutualis` command of this checkout (the installed script may be another checkout's)
MUTUALIS = (sys.executable, "-m", "mutualis")
SESSION_REUSE_SECONDS = 20 * 60
# the periods of a test stack's timers: mails sent, requests expired and urgent requests
# allocated within a second or two, not production's minutes (services' settings)
QUICK_TIMERS = {
    "NOTIFICATIONS_DELIVERY_INTERVAL_SECONDS": "0.2",
    "BOOKINGS_EXPIRY_INTERVAL_SECONDS": "1",
    # a short allocation window of urgent requests, looked for often: tests see it decided
    "BOOKINGS_ALLOCATION_WINDOW_SECONDS": "3",
    "BOOKINGS_ALLOCATION_INTERVAL_SECONDS": "0.5",
}
# the demo accounts' password of a test stack hashed at argon2's least cost: the gateway
# verifies a hash at the cost it was made with, and the production cost (a quarter of a
# second of CPU) at each of the suite's thousand-odd sign-ins was minutes of the suite
QUICK_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


class Vhost:
    """A RabbitMQ virtual host of its own, so tests never see each other's messages.
    `ready=False` leaves `rabbitmqctl` adding it (a second or two) while the caller does
    something else; `wait()` then returns once it is there."""

    def __init__(self, prefix: str = "mutualis-test", ready: bool = True):
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self._pending = self._rabbitmqctl(
            ("add_vhost", self.name), ("set_permissions", "-p", self.name, "guest", *[".*"] * 3)
        )
        if ready:
            self.wait()

    @classmethod
    def made(cls, name: str) -> Vhost:
        """One that is there already (`Vhosts` made it)."""
        host = cls.__new__(cls)
        host.name, host._pending = name, None
        return host

    @property
    def amqp_uri(self) -> str:
        return f"amqp://{AMQP_HOST}/{self.name}"

    def delete(self, ready: bool = True) -> None:
        self.wait()
        self._pending = self._rabbitmqctl(("delete_vhost", self.name))
        if ready:
            self.wait()

    def wait(self) -> None:
        """Waits for the `rabbitmqctl` commands under way, failing as they do."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            _, errors = pending.communicate()
            if pending.returncode:
                raise subprocess.CalledProcessError(pending.returncode, pending.args, stderr=errors)

    @staticmethod
    def _rabbitmqctl(*commands: tuple[str, ...]) -> subprocess.Popen:
        """`rabbitmqctl` commands one after the other, in the background."""
        script = " && ".join(shlex.join(["rabbitmqctl", "-q", *c]) for c in commands)
        return subprocess.Popen(
            ["sh", "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )


class Vhosts:
    """Throw-away vhosts for the tests, none of them waiting for `rabbitmqctl`, which starts
    an Erlang VM each time (a second or two, and most of it CPU): made `batch` at a time by
    one `import_definitions`, the next batch while the tests use this one; deleted in the
    background, those given back since the last deletion in one go. `close` waits for all
    of it, deleting what is left, and fails as any of it did."""

    def __init__(self, prefix: str = "mutualis-test", batch: int = 6):
        self.prefix, self.batch = prefix, batch
        self._made: list[str] = []  # there, for the next tests
        self._making: tuple[list[str], subprocess.Popen] | None = None
        self._given_back: list[str] = []  # used, to be deleted
        self._deleting: subprocess.Popen | None = None

    def take(self) -> Vhost:
        if not self._made:
            self._make_batch()
            self._made = self._wait_made()
        if len(self._made) == 1:
            self._make_batch()  # while the tests use the last one
        return Vhost.made(self._made.pop(0))

    def give_back(self, host: Vhost) -> None:
        self._given_back.append(host.name)
        if self._deleting is None or self._deleting.poll() is not None:
            self._delete_given_back()

    def close(self) -> None:
        """Deletes every vhost left, all at once: the session is ending."""
        left = [*self._given_back, *self._made, *self._wait_made()]
        self._given_back, self._made = [], []
        deleting, self._deleting = self._deleting, None
        self._finish(deleting)
        self._finish(delete_vhosts(left) if left else None)

    def _make_batch(self) -> None:
        if self._making is not None:
            return
        names = [f"{self.prefix}-{uuid.uuid4().hex[:8]}" for _ in range(self.batch)]
        everything = ("configure", "write", "read")
        definitions = {
            "vhosts": [{"name": name} for name in names],
            "permissions": [
                {"user": "guest", "vhost": name} | dict.fromkeys(everything, ".*") for name in names
            ],
        }
        making = subprocess.Popen(
            ["rabbitmqctl", "-q", "import_definitions", "--format", "json"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        making.stdin.write(json.dumps(definitions).encode())
        making.stdin.close()
        self._making = (names, making)

    def _wait_made(self) -> list[str]:
        if self._making is None:
            return []
        (names, making), self._making = self._making, None
        self._finish(making)
        return names

    def _delete_given_back(self) -> None:
        """Deletes every vhost given back, in the background, by one `rabbitmqctl`; the
        deletion before must be over."""
        self._finish(self._deleting)
        names, self._given_back = self._given_back, []
        self._deleting = delete_vhosts(names) if names else None

    @staticmethod
    def _finish(process: subprocess.Popen | None) -> None:
        if process is not None:
            errors = process.stderr.read()
            if process.wait():
                raise subprocess.CalledProcessError(process.returncode, process.args, errors)


def delete_vhosts(names: list[str]) -> subprocess.Popen:
    """Deletes the vhosts `names`, in the background, in one `rabbitmqctl` (an Erlang VM,
    most of a second of CPU, where `delete_vhost` takes one each): what `delete_vhost` does
    (`rabbit_vhost:delete`), for each of them; it fails unless every one was deleted."""
    vhosts = ", ".join(f'<<"{name}">>' for name in names)
    deleting = (
        f'case [R || R <- [rabbit_vhost:delete(V, <<"mutualis-tests">>) || V <- [{vhosts}]],'
        " R =/= ok] of [] -> ok; Failed -> exit({not_deleted, Failed}) end."
    )
    return subprocess.Popen(
        ["rabbitmqctl", "-q", "eval", deleting], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


class PostgresDatabase:
    """A database of its own on the shared server; empty, or a copy of `template`'s."""

    def __init__(self, name: str, template: str | None = None):
        self.name = name
        copy_of = f' TEMPLATE "{template}"' if template else ""
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"{copy_of}'))
        admin.dispose()
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    def drop(self) -> None:
        from infra.database import _engines

        engine = _engines.pop(self.url, None)
        if engine is not None:
            engine.dispose()
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        admin.dispose()


def database_urls(
    backend: str, workdir: Path, tag: str, templates: dict[str, str] | None = None
) -> tuple[dict[str, str], list]:
    """One database per component, fresh or a copy of `templates`' (component → URL);
    returns the URLs and what to drop afterwards."""
    urls, owned = {}, []
    workdir.mkdir(parents=True, exist_ok=True)
    for component in COMPONENTS:
        if backend == "sqlite":
            path = workdir / (component + ".sqlite3")
            if templates:
                shutil.copyfile(templates[component].removeprefix("sqlite:///"), path)
            urls[component] = f"sqlite:///{path}"
        else:
            template = templates[component].rsplit("/", 1)[1] if templates else None
            db = PostgresDatabase(f"mutualis_{tag}_{component}", template=template)
            owned.append(db)
            urls[component] = db.url
    return urls, owned


_seeded: dict[str, dict[str, str]] = {}


def seeded_databases(backend: str) -> dict[str, str]:
    """Every component's database migrated and seeded with the demo data, once per backend
    and process: a stack starts from copies of them (`CREATE DATABASE … TEMPLATE`, a file
    copy) instead of running the migrations and the seed again, some 10 s a stack. Neither
    reads the stack's settings, only the database URLs. Dropped when the process exits."""
    if backend not in _seeded:
        workdir = Path(tempfile.mkdtemp(prefix=f"mutualis-template-{backend}-"))
        tag = f"template_{backend}_{uuid.uuid4().hex[:6]}"
        urls, owned = database_urls(backend, workdir, tag)
        atexit.register(_drop_seeded, owned, workdir)
        env = dict(os.environ)
        env |= {f"{c.upper()}_DATABASE_URL": url for c, url in urls.items()}
        for command in (("migrate", "--no-broker"), ("seed",)):
            subprocess.run(
                [*MUTUALIS, *command], env=env, cwd=PROJECT_ROOT, check=True, capture_output=True
            )
        if backend == "sqlite":
            for url in urls.values():
                # what the seed left in the write-ahead log goes into the file copied
                with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as db:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _seeded[backend] = urls
    return _seeded[backend]


def _drop_seeded(owned: list, workdir: Path) -> None:
    for db in owned:
        db.drop()
    shutil.rmtree(workdir, ignore_errors=True)


def quicken_demo_logins(gateway_url: str) -> None:
    """The demo accounts' password (the seed's, one hash for all) hashed again by
    `QUICK_HASHER`: signing in checks the same password, in microseconds. Hashes of other
    passwords are left as they are."""
    from demo.seed import DEMO_PASSWORD
    from gateway.auth import password_matches

    engine = create_engine(gateway_url)
    with engine.begin() as conn:
        for seeded in conn.scalars(text("SELECT DISTINCT password_hash FROM users")).all():
            if password_matches(seeded, DEMO_PASSWORD):
                conn.execute(
                    text("UPDATE users SET password_hash = :quick WHERE password_hash = :seeded"),
                    {"quick": QUICK_HASHER.hash(DEMO_PASSWORD), "seeded": seeded},
                )
    engine.dispose()


def declare_queues(amqp_uri: str) -> None:
    """What `mutualis migrate` declares on the broker: every event's exchange and queues."""
    from kombu import Connection

    from infra.topology import declare_all

    with Connection(amqp_uri) as conn:
        declare_all(conn)


def replica_name(name: str, n: int) -> str:
    """The process name of a component's or relay's `n`-th replica: the first keeps the
    plain name (`bookings`, `bookings-relay`), the others are `bookings#2`, …"""
    return name if n == 1 else f"{name}#{n}"


def replica_of(process: str) -> str:
    """What a process is a replica of: `bookings#2` → `bookings`."""
    return process.partition("#")[0]


class Stack:
    """Every service, its relay and the gateway, as separate processes, as `make run` starts
    them, on fresh databases and a vhost of their own. `with Stack(…) as stack:` starts it
    and stops it, dropping what it made. With `replicas=2`, two of each process (services,
    relays, gateways), each replica on ports of its own, competing for the same queues and
    rows; `gateway_urls` lists every gateway, for a client to spread its requests over."""

    def __init__(
        self,
        backend: str,
        workdir: Path,
        settings: dict[str, str] | None = None,
        replicas: int = 1,
        tag_prefix: str = "e2e",
        seeded: bool = True,
        quick_timers: bool = True,
        quick_logins: bool = True,
    ):
        self.backend = backend
        # QUICK_TIMERS, for tests to see a period's work within seconds; a bench runs the
        # periods production runs (`quick_timers=False`): their work is part of its load
        self.quick_timers = quick_timers
        # the demo accounts' password hashed by QUICK_HASHER (`quicken_demo_logins`)
        self.quick_logins = quick_logins
        self.workdir = workdir
        self.settings = settings or {}  # environment of its processes, beside the defaults
        self.replicas = replicas
        # its databases are mutualis_<tag>_<component>
        self.tag = f"{tag_prefix}_{backend}_{uuid.uuid4().hex[:6]}"
        self.vhost = Vhost(ready=False)  # added while the databases are made
        # copies of databases migrated and seeded once (`seeded=False`: fresh databases,
        # migrated and seeded by the stack's start as `make run` does)
        self.seeded = seeded
        templates = seeded_databases(backend) if seeded else None
        self.urls, self._owned = database_urls(backend, workdir, self.tag, templates)
        self.vhost.wait()
        # the first replica's ports under the component's name, every replica's by process
        self.replica_ports = {
            replica_name(c, n): free_port() for c in COMPONENTS for n in range(1, replicas + 1)
        }
        self.ports = {c: self.replica_ports[c] for c in COMPONENTS}
        self.gateway_metrics_ports = {
            replica_name("gateway", n): free_port() for n in range(1, replicas + 1)
        }
        # the gateway's metrics are off its public port
        self.gateway_metrics_port = self.gateway_metrics_ports["gateway"]
        self.processes: dict[str, subprocess.Popen] = {}
        self._sessions: dict[str, tuple[float, requests.Session]] = {}
        self._engines: dict[str, Engine] = {}
        self.logs = OUTPUT / "logs" / self.tag
        self.logs.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def gateway_urls(self) -> list[str]:
        return [
            f"http://127.0.0.1:{self.replica_ports[replica_name('gateway', n)]}"
            for n in range(1, self.replicas + 1)
        ]

    def process_names(self) -> list[str]:
        """Every process of the stack, replicas included: components first, then relays."""
        return [
            replica_name(name, n)
            for name in (*COMPONENTS, *(f"{r}-relay" for r in RELAYED))
            for n in range(1, self.replicas + 1)
        ]

    def metrics_port(self, component: str) -> int:
        """Where Prometheus reads a component: its own port, or the gateway's metrics port."""
        return self.gateway_metrics_port if component == "gateway" else self.ports[component]

    def metrics_url(self, component: str) -> str:
        return f"http://127.0.0.1:{self.metrics_port(component)}/metrics"

    def env(self, process: str | None = None) -> dict[str, str]:
        """The environment of the stack's processes; a replica's (`process`) has its own
        ports."""
        env = dict(os.environ)
        env["AMQP_URI"] = self.vhost.amqp_uri
        env["LOG_FORMAT"] = "json"
        for component in COMPONENTS:
            env[f"{component.upper()}_DATABASE_URL"] = self.urls[component]
            env[f"{component.upper()}_HTTP_PORT"] = str(self.ports[component])
        env["GATEWAY_METRICS_PORT"] = str(self.gateway_metrics_port)
        env["GATEWAY_PUBLIC_URL"] = self.url
        env["NOTIFICATIONS_PUBLIC_URL"] = self.url  # the pages the mails link to
        env["GATEWAY_DEMO_MAIL_DIR"] = str(self.workdir / "mail")  # where a MailCatcher writes
        env["STORAGE_LOCAL_DIR"] = str(self.workdir / "storage")  # uploaded photos
        env["GATEWAY_DEMO_MODE"] = "true"
        env["GATEWAY_RPC_TIMEOUT_SECONDS"] = "5"
        if self.quick_timers:
            env.update(QUICK_TIMERS)
        env.update(self.settings)
        if process in self.replica_ports:
            env[f"{replica_of(process).upper()}_HTTP_PORT"] = str(self.replica_ports[process])
        if process in self.gateway_metrics_ports:
            env["GATEWAY_METRICS_PORT"] = str(self.gateway_metrics_ports[process])
        return env

    def mutualis(self, *args: str, **options: Any) -> subprocess.CompletedProcess:
        """Runs the operator's command against this stack (and fails unless `check=False`)."""
        return subprocess.run(
            [*MUTUALIS, *args],
            env=self.env(),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            **{"check": True} | options,
        )

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except Exception:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @contextmanager
    def running(self) -> Iterator[Stack]:
        """Starts the stack for a fixture and, when the fixture ends, stops it in the
        background (`stop_in_background`): the next module's stack starts meanwhile."""
        self.__enter__()
        try:
            yield self
        finally:
            self.stop_in_background()

    def start(self) -> Stack:
        if self.seeded:
            declare_queues(self.vhost.amqp_uri)
        else:
            self.mutualis("migrate")
            self.mutualis("seed")
        if self.quick_logins:
            quicken_demo_logins(self.urls["gateway"])
        for name in self.process_names():
            self.start_process(name)
        for name in self.process_names():
            if not replica_of(name).endswith("-relay"):
                # every process starts at once: twice as many take about twice as long
                self.wait_ready(name, timeout=90 * self.replicas)
        return self

    def start_process(self, name: str) -> None:
        """Starts a process by name: a component (`bookings`), a relay (`bookings-relay`) or
        a replica of either (`bookings#2`, `bookings-relay#2`)."""
        what = replica_of(name)
        if what.endswith("-relay"):
            args = ["relay", what.removesuffix("-relay")]
        else:
            args = ["serve", what]
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            [*MUTUALIS, *args],
            env=self.env(name),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, component: str, timeout: float = 90) -> None:
        """Waits for a component's (or replica's: `bookings#2`) readiness probe."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.replica_ports[component]}/health/ready"
        while time.monotonic() < deadline:
            proc = self.processes.get(component)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{component} exited: see {self.logs}/{component}.log")
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{component} not ready after {timeout}s")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes.pop(name)
        proc.send_signal(sig)
        proc.wait(timeout=15)

    def stop(self) -> None:
        for proc in self.processes.values():
            proc.terminate()
        for proc in self.processes.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.processes.clear()
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        self.vhost.delete(ready=False)  # deleted while the databases are dropped
        for db in self._owned:
            db.drop()
        self.vhost.wait()

    def stop_in_background(self) -> None:
        """`stop` in a green thread of the (eventlet-patched) test process, signalling the
        processes at once: waiting for them to exit, deleting the vhost and dropping the
        databases take seconds, spent while the tests go on. `wait_for_stops` then waits for
        every stop, and fails as they did."""
        import eventlet  # the tests' process only: the benchmarks' threads are plain ones

        _stopping.append((self.tag, eventlet.spawn(self.stop)))
        eventlet.sleep(0)  # into `stop` until its first wait: the processes are signalled

    # -- clients ----------------------------------------------------------------------

    def login(self, email: str, password: str = "mutualis-demo") -> requests.Session:
        session = requests.Session()
        answer = session.post(
            f"{self.url}/api/v1/auth/token", json={"email": email, "password": password}, timeout=10
        )
        answer.raise_for_status()
        session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return session

    def as_role(self, role: str, insee: str) -> requests.Session:
        return self.login(f"{role}.{insee}@mutualis-demo.fr")

    def session(self, role: str, insee: str) -> requests.Session:
        """A demo user's session, shared by the tests of this stack (as_role signs in again
        each time)."""
        return self.user(f"{role}.{insee}@mutualis-demo.fr")

    def user(self, email: str) -> requests.Session:
        """A demo account's session, shared by the tests of this stack; signed in again well
        before its token (an hour by default) expires."""
        signed_in, session = self._sessions.get(email, (0.0, None))
        if session is None or time.monotonic() - signed_in > SESSION_REUSE_SECONDS:
            session = self.login(email)
            self._sessions[email] = (time.monotonic(), session)
        return session

    def web_session(self, email: str, password: str = "mutualis-demo") -> requests.Session:
        """A browser-like session signed in through the pages' form (cookie and CSRF token),
        for fetching pages without a browser."""
        session = requests.Session()
        form = session.get(f"{self.url}/connexion", timeout=10)
        token = form.text.split('name="csrf" value="')[1].split('"')[0]
        signed_in = session.post(
            f"{self.url}/connexion",
            data={"csrf": token, "email": email, "password": password},
            timeout=10,
            allow_redirects=False,
        )
        assert signed_in.status_code == 303, signed_in.text
        return session

    def database(self, component: str) -> Engine:
        """A plain engine on a component's database, for checking what was stored; one per
        component, disposed when the stack stops."""
        if component not in self._engines:
            self._engines[component] = create_engine(self.urls[component])
        return self._engines[component]

    def known_to_bookings(self, listing: dict) -> None:
        """Waits until the bookings service holds this revision of the listing (from its
        event): until then, it refuses to book it."""

        def arrived():
            with self.database("bookings").connect() as conn:
                kept = conn.scalar(
                    text("SELECT revision FROM listing_copies WHERE listing_id = :id"),
                    {"id": listing["id"]},
                )
            return kept is not None and kept >= listing["revision"]

        wait_until(arrived, timeout=10)

    def row_counts(self, component: str, tables: tuple[str, ...]) -> dict[str, int]:
        """How many rows each of a component's `tables` holds: what a refused request must
        leave unchanged."""
        with self.database(component).connect() as conn:
            return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


_stopping: list[tuple[str, GreenThread]] = []  # (stack's tag, its stop)


def wait_for_stops() -> None:
    """Waits for every stop under way (`Stack.stop_in_background`): by the end of the
    session no process is left running, no vhost or database left behind; the stops that
    failed fail here, all of them named."""
    failed = []
    while _stopping:
        tag, stop = _stopping.pop(0)
        try:
            stop.wait()
        except Exception as exc:  # every stop is waited for, then the failures reported
            failed.append(f"{tag}: {exc!r}")
    if failed:
        raise RuntimeError("stacks not stopped cleanly: " + "; ".join(failed))
