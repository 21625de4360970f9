"""Where the CPU goes during a scenario: user+system time of each process, from /proc.

The stack, PostgreSQL, RabbitMQ and the load generator share the same cores; this says
how they shared them. Linux only; elsewhere it measures nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

PROC = Path("/proc")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# processes found by name rather than pid: every PostgreSQL backend, the Erlang VM
BY_NAME = {"postgres": "postgresql", "beam.smp": "rabbitmq"}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, from /proc (Linux); None once it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # after "pid (comm)": state is field 3, utime 14 and stime 15 (1-based)
    return (int(fields[11]) + int(fields[12])) / TICK


def _by_name() -> dict[str, float]:
    """CPU seconds of every process named in BY_NAME, keyed "label:pid"."""
    found: dict[str, float] = {}
    for entry in PROC.iterdir() if PROC.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        label = BY_NAME.get(comm)
        if label is None:
            continue
        seconds = cpu_seconds(int(entry.name))
        if seconds is not None:
            found[f"{label}:{entry.name}"] = seconds
    return found


def _machine() -> dict[str, float]:
    """Busy and stolen CPU seconds of the whole machine, all cores together."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()
    except OSError:
        return {}
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return {
        "machine busy": (user + nice + system + irq + softirq) / TICK,
        "machine steal": steal / TICK,
    }


class CpuMeter:
    """`with CpuMeter(pids) as meter: …` then `meter.shares()`: % of one core per process."""

    def __init__(self, pids: Mapping[str, int]):
        self.pids = dict(pids) | {"load generator (bench)": os.getpid()}

    def _snapshot(self) -> dict[str, float]:
        snap = _by_name() | _machine()
        for label, pid in self.pids.items():
            seconds = cpu_seconds(pid)
            if seconds is not None:
                snap[f"{label}:{pid}"] = seconds
        return snap

    def __enter__(self) -> CpuMeter:
        self._before = self._snapshot()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.elapsed = time.perf_counter() - self._started
        after = self._snapshot()
        # per pid: a backend that started in the window counts whole, one that ended is lost
        self.used: dict[str, float] = {}
        for key, seconds in after.items():
            label = key.split(":", 1)[0]
            self.used[label] = self.used.get(label, 0.0) + seconds - self._before.get(key, 0.0)

    @classmethod
    def combined(cls, meters: list[CpuMeter]) -> CpuMeter:
        """The windows of several meters as one (interleaved rounds of a scenario)."""
        total = cls({})
        total.elapsed = sum(m.elapsed for m in meters)
        total.used = {}
        for meter in meters:
            for label, seconds in meter.used.items():
                total.used[label] = total.used.get(label, 0.0) + seconds
        return total

    def shares(self) -> dict[str, float]:
        """Percent of one core each process used over the window, busiest first; then
        "other processes" (the machine's busy time that none of them used), "machine busy"
        and "machine steal" (time the hypervisor gave to someone else)."""
        if not getattr(self, "elapsed", 0):
            return {}
        pct = {k: 100 * v / self.elapsed for k, v in self.used.items()}
        machine = {k: pct.pop(k) for k in ("machine busy", "machine steal") if k in pct}
        ordered = dict(sorted(pct.items(), key=lambda kv: -kv[1]))
        if "machine busy" in machine:
            ordered["other processes"] = max(0.0, machine["machine busy"] - sum(pct.values()))
        return ordered | machine
