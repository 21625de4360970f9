"""The bare nameko floor of `make bench` answers through its own two nameko processes."""

from __future__ import annotations

import json
import urllib.request

from bench.nameko_floor import PATH, running


def test_the_bare_nameko_floor_answers_its_ping_over_rabbitmq_and_stops(vhost, tmp_path):
    with running(vhost.amqp_uri, tmp_path / "logs") as floor:
        with urllib.request.urlopen(floor.url + PATH, timeout=10) as answer:
            status, body = answer.status, json.loads(answer.read())
        processes = list(floor.processes.values())
        assert set(floor.pids) == {"nameko http", "nameko rpc"}
    assert (status, body) == (200, {"pong": True})
    # stopped with SIGTERM, as `nameko run` expects: each exits, neither is left running
    assert all(proc.returncode is not None for proc in processes)
    assert floor.processes == {}
