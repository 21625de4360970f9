"""What operators see: every metric the dashboard and alerts use is really exported, and a
real Prometheus scrapes every component of the running stack."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import COMPONENTS, free_port, wait_until
from tests.unit.test_deploy import dashboard_and_rule_metrics


def exported_samples(stack) -> set[str]:
    names = set()
    for component in COMPONENTS:
        text = requests.get(stack.metrics_url(component), timeout=5).text
        for family in text_string_to_metric_families(text):
            names |= {sample.name for sample in family.samples}
    return names


def some_traffic(stack) -> None:
    agent = stack.as_role("agent", "42218")
    assert agent.get(f"{stack.url}/api/v1/listings", params={"near": "42218"}).ok
    assert agent.get(f"{stack.url}/api/v1/ping").ok


def test_every_metric_of_the_dashboard_and_alerts_is_exported(stack):
    some_traffic(stack)
    exported = exported_samples(stack)
    missing = sorted(
        name
        for name in dashboard_and_rule_metrics()
        if name not in exported and f"{name}_bucket" not in exported
    )
    assert missing == []


def test_a_real_prometheus_scrapes_every_component(stack, tmp_path):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not installed (apt-get install prometheus)")
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "mutualis",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{stack.metrics_port(c)}"],
                        "labels": {"component": c},
                    }
                    for c in COMPONENTS
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        some_traffic(stack)

        def all_up():
            try:
                targets = requests.get(f"{api}/targets", timeout=2).json()["data"]
            except (requests.RequestException, ValueError):
                return None
            health = {t["labels"]["component"]: t["health"] for t in targets["activeTargets"]}
            return (
                health
                if set(health) == set(COMPONENTS) and set(health.values()) == {"up"}
                else None
            )

        wait_until(all_up, timeout=30, interval=0.5)
        time.sleep(1.5)  # one more scrape after the traffic

        def red_series():
            answer = requests.get(
                f"{api}/query",
                timeout=2,
                params={
                    "query": "sum by (route) "
                    '(mutualis_http_requests_total{route="/api/v1/listings"})'
                },
            ).json()
            return answer["data"]["result"]

        series = wait_until(red_series, timeout=10, interval=0.5)
        assert float(series[0]["value"][1]) >= 1
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_every_service_froze_what_it_built_to_start(stack):
    """infra.heap: once started, each process's start-up objects are out of the garbage
    collector's way (tens of thousands of them; a full collection no longer walks them)."""
    for component in COMPONENTS:
        text = requests.get(stack.metrics_url(component), timeout=5).text
        frozen = next(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "mutualis_gc_frozen_objects"
        )
        assert frozen > 10_000, (component, frozen)
