"""Consultant matching over 10,000 profiles: how long a match takes inside the service.

`run(stack)` seeds BENCH_CONSULTANTS (10,000) profiles into a running stack's consultants
database the way the service writes them (service.publish_consultant, outbox included; a
third with availability periods, one in twenty with an accepted engagement), then times a mix
of needs (the evaluation set's, each from its commune; half with a period and days, a third
with a day-rate ceiling, a few with required skills), once the relay has published the
seeding's events:

- `ranking_ms`: domain.match_consultants alone, on the warm in-memory index (wall time;
  `ranking_cpu_ms` is its CPU time, which other work on the machine does not inflate);
- `in_service_ms`: what the `match` RPC does after validation, Catalogue.match: a session,
  the catalogue's change check (the sum of catalogue_changes) and the ranking;
- `http_ms`: the same needs through the gateway (token, RPC over RabbitMQ, JSON), for
  reference, with the consultants service's own `match` RPC histogram and the gateway's
  route histogram from their /metrics.

`python -m bench.consultants` starts a stack on PostgreSQL, runs it and prints the figures.
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import date, timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.cpu import cpu_seconds  # noqa: E402
from bench.load import percentile  # noqa: E402
from bench.seed import bench_communes  # noqa: E402
from contracts.caller import Caller, Role  # noqa: E402
from contracts.consultants import (  # noqa: E402
    AvailabilityPeriod,
    ConsultantTerms,
    EngagementRequest,
    EngagementStatus,
)
from infra.communes import communes  # noqa: E402
from infra.database import DatabaseAccess, make_engine  # noqa: E402
from infra.settings import PROJECT_ROOT  # noqa: E402
from services.consultants import service  # noqa: E402
from services.consultants.dependencies import Catalogue  # noqa: E402
from services.consultants.domain import Need, Period, match_consultants  # noqa: E402

EVALUATION = PROJECT_ROOT / "services" / "consultants" / "evaluation" / "matching.json"
TARGET_P95_MS = 50.0
AGENT = "agent.42218@mutualis-demo.fr"


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)

    def at(p: float) -> float:
        return percentile(ordered, p) * 1000

    return {
        "p50": round(at(50), 2),
        "p95": round(at(95), 2),
        "p99": round(at(99), 2),
        "max": round(ordered[-1] * 1000, 2),
        "mean": round(statistics.fmean(ordered) * 1000, 2),
    }


def histogram(metrics_url: str, name: str, **labels: str) -> dict:
    """A Prometheus histogram as its process exposes it: count, mean, and the p50/p95
    interpolated within buckets (upper bounds of LATENCY_BUCKETS)."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    body = requests.get(metrics_url, timeout=10).text
    buckets, count, total = [], 0.0, 0.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if not labels.items() <= sample.labels.items():
                continue
            if sample.name == f"{name}_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == f"{name}_count":
                count = sample.value
            elif sample.name == f"{name}_sum":
                total = sample.value
    buckets.sort()

    def at(p: float) -> float | None:
        wanted, low_bound, low_count = count * p / 100, 0.0, 0.0
        for bound, cumulative in buckets:
            if cumulative >= wanted and cumulative > low_count:
                if bound == float("inf"):
                    return None
                share = (wanted - low_count) / (cumulative - low_count)
                return round((low_bound + (bound - low_bound) * share) * 1000, 1)
            low_bound, low_count = bound, cumulative
        return None

    return {
        "count": int(count),
        "mean_ms": round(total / count * 1000, 2) if count else None,
        "p50_ms_from_buckets": at(50),
        "p95_ms_from_buckets": at(95),
    }


def wait_for_outbox(access: DatabaseAccess, timeout: float = 300) -> float:
    """Seconds until the relay has published every seeded event (so that it does not
    compete with the measurements)."""
    from sqlalchemy import func, select

    from infra.messaging_tables import outbox

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        with access.reading() as session:
            pending = session.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        if not pending:
            break
        time.sleep(0.5)
    return time.perf_counter() - started


def seed_consultants(url: str, count: int, rng: random.Random) -> float:
    """`count` consultants over the communes of bench.seed.DEPARTMENTS, 1,000 per
    transaction; returns the seconds it took."""
    evaluation = json.loads(EVALUATION.read_text(encoding="utf-8"))
    models = evaluation["profiles"]
    homes = bench_communes()
    skill_ids = sorted({s for p in models for s in p["skills"]})
    access = DatabaseAccess(
        make_engine(url), producer="consultants", correlation_id="bench", consumer="bench"
    )
    today = date.today()
    started = time.perf_counter()
    done = 0
    while done < count:
        with access.transaction() as tx:
            for _ in range(min(1000, count - done)):
                model = rng.choice(models)
                home = rng.choice(homes)
                skills = list(dict.fromkeys([*model["skills"], rng.choice(skill_ids)]))[:4]
                terms = ConsultantTerms(
                    name=f"{model['name']} {done}",
                    title=model["title"],
                    skills=skills,
                    bio=model["bio"],
                    day_rate_cents=max(
                        20000, model["day_rate_cents"] + rng.randrange(-80, 81) * 100
                    ),
                    max_days_per_month=rng.randrange(2, 13),
                )
                periods = []
                if rng.random() < 0.33:
                    start = today + timedelta(days=rng.randrange(0, 180))
                    periods.append(
                        AvailabilityPeriod(
                            kind=rng.choice(["available", "unavailable"]),
                            start=start,
                            end=start + timedelta(days=rng.randrange(5, 60)),
                        )
                    )
                manager = Caller(
                    user_id="bench", commune=home.insee_code, roles=frozenset({Role.MANAGER})
                )
                row = service.publish_consultant(tx, manager, terms, periods)
                if rng.random() < 0.05:
                    borrower = Caller(
                        user_id="bench", commune="42218", roles=frozenset({Role.AGENT})
                    )
                    start = today + timedelta(days=rng.randrange(1, 90))
                    request = EngagementRequest(
                        consultant_id=row.id,
                        start=start,
                        end=start + timedelta(days=14),
                        days=Decimal(rng.randrange(1, 3)),
                        mission="bench",
                    )
                    engagement = service.request_days(tx, row, borrower, request)
                    service.move_engagement(tx, engagement, EngagementStatus.ACCEPTED, None)
                done += 1
    return time.perf_counter() - started


def needs(rng: random.Random, count: int) -> list[tuple[dict, Need]]:
    """(query string of the HTTP API, the Need the service builds from it)."""
    evaluation = json.loads(EVALUATION.read_text(encoding="utf-8"))
    directory = communes()
    start = date.today() + timedelta(days=30)
    made = []
    for n in range(count):
        asked = evaluation["needs"][n % len(evaluation["needs"])]
        near = directory.get(asked["near"])
        query: dict = {"need": asked["need"], "near": asked["near"]}
        window, days, ceiling = None, None, None
        if asked.get("skills"):
            query["skills"] = ",".join(asked["skills"])
        if n % 2:
            first = start + timedelta(days=rng.randrange(0, 60))
            window = Period(first, first + timedelta(days=21))
            days = Decimal(rng.randrange(1, 9)) / 2
            query |= {"from": first.isoformat(), "to": (window.end - timedelta(days=1)).isoformat()}
            query["days"] = str(days)
        if n % 3 == 0:
            ceiling = rng.randrange(35, 70) * 1000
            query["max_day_rate_cents"] = ceiling
        made.append(
            (
                query,
                Need(
                    text=asked["need"],
                    skills=tuple(asked.get("skills", ())),
                    origin=(near.latitude, near.longitude),
                    window=window,
                    days=days,
                    max_day_rate_cents=ceiling,
                    exclude_commune="42218",  # the agent asking: Saint-Étienne
                ),
            )
        )
    return made


def run(stack, count: int | None = None, queries: int | None = None) -> dict:
    """Seeds `count` (BENCH_CONSULTANTS, 10,000) consultants into `stack` and times
    `queries` (BENCH_MATCHES, 600) matches in-process and 200 through the gateway."""
    count = count or int(os.environ.get("BENCH_CONSULTANTS", 10_000))
    queries = queries or int(os.environ.get("BENCH_MATCHES", 600))
    rng = random.Random(20260301)
    url = stack.urls["consultants"]
    print(f"seeding {count:,} consultants …", flush=True)
    seed_seconds = seed_consultants(url, count, rng)
    print(f"  seeded in {seed_seconds:.1f} s", flush=True)

    access = DatabaseAccess(
        make_engine(url), producer="consultants", correlation_id="bench", consumer="bench"
    )
    drain_seconds = wait_for_outbox(access)
    print(f"  outbox published {drain_seconds:.1f} s after the last commit", flush=True)
    load_before = os.getloadavg()
    catalogue = Catalogue()
    started = time.perf_counter()
    with access.reading() as session:
        index = catalogue.current(session)
    load_seconds = time.perf_counter() - started
    asked = needs(rng, queries)

    ranking, ranking_cpu, in_service, candidates = [], [], [], []
    for _, need in asked[:50]:  # warm-up: the distance caches of each origin
        with access.reading() as session:
            match_consultants(catalogue.current(session), need)
    for _, need in asked:
        t0 = time.perf_counter()
        with access.reading() as session:
            result, _ = catalogue.match(session, need)  # what the match RPC does
        in_service.append(time.perf_counter() - t0)
        t1, c1 = time.perf_counter(), time.thread_time()
        match_consultants(index, need)
        ranking.append(time.perf_counter() - t1)
        ranking_cpu.append(time.thread_time() - c1)
        candidates.append(result.candidates)

    agent = stack.login(AGENT)
    http = []
    first = time.perf_counter()
    answer = agent.get(f"{stack.url}/api/v1/consultants/match", params=asked[0][0], timeout=120)
    answer.raise_for_status()
    service_load_seconds = time.perf_counter() - first  # the service builds its own index
    floor = []
    for _ in range(200):
        t0 = time.perf_counter()
        agent.get(f"{stack.url}/api/v1/ping", timeout=30).raise_for_status()
        floor.append(time.perf_counter() - t0)
    service_pid = stack.processes["consultants"].pid
    cpu_before = cpu_seconds(service_pid)
    for query, _ in asked[:200]:
        t0 = time.perf_counter()
        answer = agent.get(f"{stack.url}/api/v1/consultants/match", params=query, timeout=30)
        http.append(time.perf_counter() - t0)
        if answer.status_code != 200:
            raise RuntimeError(f"match {query}: {answer.status_code} {answer.text[:300]}")
    service_cpu = cpu_seconds(service_pid) - cpu_before
    agent.close()
    service_rpc = histogram(
        stack.metrics_url("consultants"),
        "mutualis_rpc_duration_seconds",
        service="consultants",
        method="match",
    )
    gateway_http = histogram(
        stack.metrics_url("gateway"),
        "mutualis_http_request_duration_seconds",
        service="gateway",
        route="/api/v1/consultants/match",
    )

    in_service_ms = _percentiles(in_service)
    return {
        "profiles": len(index),
        "seed_seconds": round(seed_seconds, 1),
        "index_load_seconds": round(load_seconds, 2),
        "service_first_match_seconds": round(service_load_seconds, 2),
        "queries": len(asked),
        "candidates_median": int(statistics.median(candidates)),
        "ranking_ms": _percentiles(ranking),
        "ranking_cpu_ms": _percentiles(ranking_cpu),  # CPU time: what other load cannot add
        "in_service_ms": in_service_ms,
        "http_ms": _percentiles(http),
        "http_floor_ms": _percentiles(floor),  # GET /api/v1/ping: token check + one trivial RPC
        # as the processes measured themselves during the HTTP part (bucketed)
        "service_rpc_match": service_rpc,
        # CPU the consultants process spent per match served (RPC, validation, DB client,
        # ranking, JSON): its cost whatever the machine's load
        "service_cpu_ms_per_match": round(service_cpu / len(http) * 1000, 2),
        "gateway_http_match": gateway_http,
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "target_p95_ms": TARGET_P95_MS,
        "met": in_service_ms["p95"] < TARGET_P95_MS,
    }


def main() -> int:
    from tests.support import Stack

    with tempfile.TemporaryDirectory(prefix="mutualis-bench-") as workdir:
        stack = Stack("postgresql", Path(workdir))
        try:
            print("starting the stack on PostgreSQL …", flush=True)
            stack.start()
            print(json.dumps(run(stack), indent=2))
        finally:
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
