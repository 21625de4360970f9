"""The operator re-runs a billing period from the command line: nothing is issued twice."""

from __future__ import annotations

import subprocess
import sys

from infra.settings import PROJECT_ROOT
from tests.support import paris_today


def billing_run(stack, period: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mutualis", "billing-run", "--period", period],
        env=stack.env(),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_billing_period_run_twice_issues_nothing_the_second_time(stack):
    period = paris_today().strftime("%Y-%m")
    first = billing_run(stack, period)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"period {period}: ")
    again = billing_run(stack, period)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"period {period}: 0 invoice(s) issued"
    bad = billing_run(stack, "2026-13")
    assert bad.returncode != 0 and "period" in bad.stderr
