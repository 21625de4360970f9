"""Two replicas of every process: killing one of each in turn under load loses nothing,
charges nothing twice, books no slot twice and leaves no gap in the invoice numbers.

The short form of `make drills` (bench/drills.py, `DRILLS_SHORT=1`), run as a process of
its own: its load is plain threads, which this eventlet-patched test process would make
green. Clients spread their requests over both gateways; agents race for the same slots;
two billing runs go at once, one through each gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from infra.settings import PROJECT_ROOT

# a drill: minutes of both cores, so `make drills-short`, not `make test`
pytestmark = [pytest.mark.e2e, pytest.mark.drill]


def test_killing_one_replica_of_each_process_in_turn_keeps_every_guarantee(tmp_path):
    env = dict(os.environ, DRILLS_SHORT="1", DRILLS_REPLICAS="2", DRILLS_OUTPUT=str(tmp_path))
    drill = subprocess.run(
        [sys.executable, "-m", "bench.drills"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = json.loads((tmp_path / "report.json").read_text())
    summary = (tmp_path / "report.md").read_text()
    assert report["replicas"] == 2
    kills = [row["fault"] for row in report["rows"] if row["fault"].startswith("kill -9")]
    assert len(kills) == 12, kills  # the six components and the six relays
    assert report["bookings_returned"] > 0 and report["invoice_numbers"]["invoices"] > 0, summary
    assert report["races"]["answers"].get("201"), summary
    assert not report["abandoned_lifecycles"], summary  # each step answered in the end
    assert drill.returncode == 0, summary + drill.stderr[-3000:]
    assert report["passed"]
