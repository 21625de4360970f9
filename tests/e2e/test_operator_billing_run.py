"""The operator re-runs a billing period from the command line: nothing is issued twice."""

from __future__ import annotations

import subprocess

from tests.support import this_period


def billing_run(stack, period: str) -> subprocess.CompletedProcess:
    return stack.mutualis("billing-run", "--period", period, check=False, timeout=120)


def test_a_billing_period_run_twice_issues_nothing_the_second_time(stack):
    period = this_period()
    first = billing_run(stack, period)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"period {period}: ")
    again = billing_run(stack, period)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"period {period}: 0 invoice(s) issued"
    bad = billing_run(stack, "2026-13")
    assert bad.returncode != 0 and "period" in bad.stderr
