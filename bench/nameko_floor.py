"""The bare nameko HTTP→RPC floor that issue 20's throughput targets are ratios of.

Two services of nameko 2.14 and nothing else: `FloorGateway`'s `@http('GET', '/ping')`
calls `FloorEcho.ping` over `RpcProxy`, which returns a small dict; each runs in a process
of its own under `nameko run`, with nameko's defaults (10 workers, its own serializer,
publisher confirms) and a RabbitMQ vhost of its own. No Mutualis code is in the path of a
request (no token check, no codec, no metrics): this is what the framework alone costs on
this machine. `with running(amqp_uri, logs) as floor:` starts both and stops them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODULE = "bench.nameko_floor"
PATH = "/ping"


class FloorEcho:
    name = "floor_echo"

    @rpc
    def ping(self) -> dict:
        return {"pong": True}


class FloorGateway:
    name = "floor_gateway"

    echo = RpcProxy("floor_echo")

    @http("GET", PATH)
    def ping(self, request) -> str:
        return json.dumps(self.echo.ping())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NamekoFloor:
    """Both services as `nameko run` processes on `amqp_uri`; `url` answers `GET /ping`
    once `start` returns; `pids` names them for the CPU meter."""

    def __init__(self, amqp_uri: str, logs: Path):
        self.amqp_uri = amqp_uri
        self.logs = logs
        self.port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.processes.items()}

    def start(self, timeout: float = 60) -> NamekoFloor:
        self.logs.mkdir(parents=True, exist_ok=True)
        # YAML reads JSON; max_workers left at nameko's default (10)
        config = self.logs / "nameko-floor.yaml"
        config.write_text(
            json.dumps({"AMQP_URI": self.amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{self.port}"})
        )
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        for label, service in (("nameko rpc", "FloorEcho"), ("nameko http", "FloorGateway")):
            log = open(self.logs / f"{service}.log", "ab")  # noqa: SIM115 - closed with the process
            self.processes[label] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "nameko",
                    "run",
                    "--config",
                    str(config),
                    f"{MODULE}:{service}",
                ],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until one `GET /ping` answers 200: the web server is up and the RPC went round."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for label, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{label} exited ({proc.returncode}): see {self.logs}")
            try:
                with urllib.request.urlopen(self.url + PATH, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # refused, reset, 500 (HTTPError) while the other starts
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the bare nameko floor did not answer in {timeout:g} s: {self.logs}")

    def stop(self) -> None:
        """The HTTP service first, then the RPC service it calls (no request left waiting
        on a reply that cannot come); each killed if still there after 10 s."""
        for label in ("nameko http", "nameko rpc"):
            proc = self.processes.pop(label, None)
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def running(amqp_uri: str, logs: Path) -> Iterator[NamekoFloor]:
    """The floor started, and stopped however the block ends (a failed start included)."""
    floor = NamekoFloor(amqp_uri, logs)
    try:
        yield floor.start()
    finally:
        floor.stop()
