"""Test infrastructure: throw-away RabbitMQ vhosts and databases, and the whole stack as
real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from contracts.clock import PARIS, paris_today  # noqa: F401 - the tests take them from here
from infra.settings import PROJECT_ROOT

AMQP_HOST = os.environ.get("TEST_AMQP_HOST", "guest:guest@127.0.0.1:5672")
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
OUTPUT = PROJECT_ROOT / "test-output"
COMPONENTS = ("gateway", "listings", "bookings", "consultants", "billing")
SERVICES = ("listings", "bookings", "consultants", "billing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True)


class Vhost:
    """A RabbitMQ virtual host of its own, so tests never see each other's messages."""

    def __init__(self, prefix: str = "mutualis-test"):
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")

    @property
    def amqp_uri(self) -> str:
        return f"amqp://{AMQP_HOST}/{self.name}"

    def delete(self) -> None:
        rabbitmqctl("delete_vhost", self.name)


class PostgresDatabase:
    def __init__(self, name: str):
        self.name = name
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
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


def database_urls(backend: str, workdir: Path, tag: str) -> tuple[dict[str, str], list]:
    """One fresh database per component; returns the URLs and what to drop afterwards."""
    urls, owned = {}, []
    for component in COMPONENTS:
        if backend == "sqlite":
            urls[component] = f"sqlite:///{workdir / (component + '.sqlite3')}"
        else:
            db = PostgresDatabase(f"mutualis_{tag}_{component}")
            owned.append(db)
            urls[component] = db.url
    return urls, owned


class Stack:
    """Every service, its relay and the gateway, as separate processes, as `make run` starts
    them, on fresh databases and a vhost of their own."""

    def __init__(self, backend: str, workdir: Path):
        self.backend = backend
        self.workdir = workdir
        self.tag = f"e2e_{backend}_{uuid.uuid4().hex[:6]}"
        self.vhost = Vhost()
        self.urls, self._owned = database_urls(backend, workdir, self.tag)
        self.ports = {c: free_port() for c in COMPONENTS}
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = OUTPUT / "logs" / self.tag
        self.logs.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["AMQP_URI"] = self.vhost.amqp_uri
        env["LOG_FORMAT"] = "json"
        for component in COMPONENTS:
            env[f"{component.upper()}_DATABASE_URL"] = self.urls[component]
            env[f"{component.upper()}_HTTP_PORT"] = str(self.ports[component])
        env["GATEWAY_PUBLIC_URL"] = self.url
        env["GATEWAY_DEMO_MODE"] = "true"
        env["GATEWAY_RPC_TIMEOUT_SECONDS"] = "5"
        env["BOOKINGS_EXPIRY_INTERVAL_SECONDS"] = "1"
        return env

    def mutualis(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "infra.cli", *args],
            env=self.env(),
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
            text=True,
        )

    def start(self) -> Stack:
        self.mutualis("migrate")
        self.mutualis("seed")
        for component in COMPONENTS:
            self.start_process(component)
        for service in SERVICES:
            self.start_process(f"{service}-relay")
        for component in COMPONENTS:
            self.wait_ready(component)
        return self

    def start_process(self, name: str) -> None:
        if name.endswith("-relay"):
            args = ["relay", name.removesuffix("-relay")]
        else:
            args = ["serve", name]
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", *args],
            env=self.env(),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, component: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.ports[component]}/health/ready"
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
        for db in self._owned:
            db.drop()
        self.vhost.delete()

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

    def database(self, component: str):
        """A plain engine on a component's database, for checking what was stored."""
        return create_engine(self.urls[component])


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Polls `predicate` until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
