"""deploy/ stays true to the code: every component deployed, scraped and nothing stale;
compose, Kubernetes and Prometheus files valid; the broker definitions match the topology."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.settings import Settings as GatewaySettings
from infra.settings import PROJECT_ROOT
from infra.topology import rabbitmq_definitions
from mutualis.components import COMPONENTS, RELAYED

DEPLOY = PROJECT_ROOT / "deploy"
K8S = DEPLOY / "k8s"


def tool(name: str) -> str:
    """The path of a validation tool; CI installs them (.ci/run), elsewhere the test skips."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: .ci/run should have installed it")
        pytest.skip(f"{name} not installed (apt-get install prometheus docker-compose)")
    return path


def expected_processes() -> set[str]:
    return set(COMPONENTS) | {f"{relayed}-relay" for relayed in RELAYED}


def test_compose_runs_every_component_and_nothing_stale():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    ours = {
        name
        for name, svc in compose["services"].items()
        if svc.get("image", "").startswith("mutualis")
    }
    assert ours - {"migrate"} == expected_processes()


def test_compose_postgres_records_commit_timestamps():
    """Relays send each event's commit time, read from PostgreSQL's commit timestamps."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    command = compose["services"]["postgres"]["command"]
    assert command[0] == "postgres"
    assert "track_commit_timestamp=on" in command[command.index("-c") + 1 :]


def test_compose_is_valid():
    subprocess.run(
        [tool("docker-compose"), "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        check=True,
        capture_output=True,
    )


def k8s_documents() -> list[tuple[Path, dict]]:
    return [
        (path, doc)
        for path in sorted(K8S.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_kubernetes_runs_every_component_and_nothing_stale():
    deployments = {
        doc["metadata"]["name"] for _, doc in k8s_documents() if doc["kind"] == "Deployment"
    }
    assert deployments == expected_processes()
    kinds = {
        (doc["kind"], doc["metadata"]["name"])
        for _, doc in k8s_documents()
        if doc["kind"] != "Kustomization"
    }
    for component in COMPONENTS:
        assert ("Service", component) in kinds
    assert ("Job", "mutualis-migrate") in kinds and ("Ingress", "gateway") in kinds


def test_every_process_keeps_a_replica_through_a_drain_and_every_service_autoscales():
    """Two replicas of everything (issue 20): a PodDisruptionBudget per Deployment that
    selects its pods and lets a drain take all but one; an autoscaler per service and
    gateway, never below the Deployment's two replicas; relays stay at two (one publishes
    at a time, so that each aggregate's events leave in order: more would add nothing)."""
    docs = k8s_documents()
    deployments = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Deployment"}
    budgets = [d for _, d in docs if d["kind"] == "PodDisruptionBudget"]
    scalers = {
        d["spec"]["scaleTargetRef"]["name"]: d
        for _, d in docs
        if d["kind"] == "HorizontalPodAutoscaler"
    }
    for name, deployment in deployments.items():
        pods = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["replicas"] >= 2, name
        covering = [
            b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= pods.items()
        ]
        assert len(covering) == 1, f"{name}: {len(covering)} disruption budgets"
        assert covering[0]["spec"]["minAvailable"] == 1, name
    assert set(scalers) == set(COMPONENTS)
    for name, scaler in scalers.items():
        assert scaler["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert scaler["spec"]["minReplicas"] == deployments[name]["spec"]["replicas"] == 2
        assert scaler["spec"]["maxReplicas"] > scaler["spec"]["minReplicas"]
        (metric,) = scaler["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        # a CPU target needs a CPU request to be measured against
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"]["cpu"]


def test_every_kubernetes_deployment_has_probes_and_limits():
    for _, doc in k8s_documents():
        if doc["kind"] != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert container["resources"]["requests"] and container["resources"]["limits"]
            if not doc["metadata"]["name"].endswith("-relay"):
                assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
                assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"


def test_kubernetes_manifests_match_the_schemas():
    import kubernetes_validate

    for _, doc in k8s_documents():
        if doc["kind"] != "Kustomization":  # kustomize's own file has no cluster schema
            kubernetes_validate.validate(doc, "1.30.0", strict=True)


def test_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert listed == present


def test_prometheus_scrapes_every_component():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "mutualis")
    scraped = {t["labels"]["component"] for t in job["static_configs"]}
    assert scraped == set(COMPONENTS)


def test_the_gateway_is_scraped_on_a_port_that_nothing_public_routes():
    """The ingress sends every path to the gateway's public port, which answers /metrics 404:
    Prometheus reads the metrics port, which neither the Service nor the host publishes."""
    public = GatewaySettings.model_fields["http_port"].default
    private = GatewaySettings.model_fields["metrics_port"].default
    docs = {(doc["kind"], doc.get("metadata", {}).get("name")): doc for _, doc in k8s_documents()}
    pod = docs[("Deployment", "gateway")]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": public, "metrics": private}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(private)
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == public
    service_ports = docs[("Service", "gateway")]["spec"]["ports"]
    assert [(p["port"], p["targetPort"]) for p in service_ports] == [(public, "http")]
    (rule,) = docs[("Ingress", "gateway")]["spec"]["rules"]
    backends = {path["backend"]["service"]["port"]["name"] for path in rule["http"]["paths"]}
    assert backends == {"http"}

    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "mutualis")
    targets = {t["labels"]["component"]: t["targets"] for t in job["static_configs"]}
    assert targets["gateway"] == [f"gateway:{private}"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert compose["services"]["gateway"]["ports"] == [f"{public}:{public}"]


@pytest.mark.parametrize(
    "args",
    [
        ["check", "config", "deploy/prometheus/prometheus.yml"],
        ["check", "rules", "deploy/prometheus/alerts.yml"],
        ["test", "rules", "deploy/prometheus/tests/alerts_test.yml"],
    ],
)
def test_promtool(args):
    result = subprocess.run(
        [tool("promtool"), *args], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((DEPLOY / "prometheus" / "tests" / "alerts_test.yml").read_text())
    tested = {case["alertname"] for t in tests["tests"] for case in t["alert_rule_test"]}
    assert alerts == tested


def test_rabbitmq_definitions_match_the_topology():
    committed = json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text())
    assert committed == rabbitmq_definitions(), (
        "regenerate: mutualis topology > deploy/rabbitmq/definitions.json"
    )


def test_the_image_runs_as_a_non_root_user_in_a_slim_final_stage():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)
    assert len(stages) == 2 and stages[-1] == "python:3.11-slim"
    final = dockerfile.split("\nFROM ")[-1]
    assert re.search(r"^USER 10001$", final, flags=re.M)
    assert "pip install" not in final  # dependencies come built from the first stage


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\b(mutualis_[a-z_]+)", expr))


def dashboard_and_rule_metrics() -> set[str]:
    names = set()
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "mutualis.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= metric_names_in(target["expr"])
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            names |= metric_names_in(rule["expr"])
    return names


def test_the_dashboard_queries_our_metrics():
    assert dashboard_and_rule_metrics()  # the e2e test checks each is really exported
