"""Consultant matching measured in one process, no stack: precision@3 and nDCG@5 on both
evaluation sets (services/consultants/evaluation), and the ranking's p50/p95 over 10,000
in-memory profiles (the bench's mix of needs, without periods: relevance, distance and rate).
For comparing a change of the text analysis (a stemmer) before and after in a minute;
`python -m bench.consultants` measures the service itself.

`python -m bench.matching_offline`"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

from bench.consultants import EVALUATION, needs  # noqa: E402
from bench.load import percentile  # noqa: E402
from bench.seed import bench_communes  # noqa: E402
from infra.communes import communes  # noqa: E402
from services.consultants.domain import Need, match_consultants  # noqa: E402
from tests.unit.test_consultants_matching_quality import BLIND, index_of, quality  # noqa: E402


def run(count: int = 10_000, queries: int = 300, seed: int = 7) -> dict:
    evaluation = json.loads(EVALUATION.read_text(encoding="utf-8"))
    index = index_of(evaluation["profiles"])
    figures = {}
    for name, asked in (
        ("vocabulary", evaluation["needs"]),
        ("blind", json.loads(BLIND.read_text(encoding="utf-8"))["needs"]),
    ):
        precision, ndcg, _, _ = quality(index, asked)
        figures[name] = {"precision_at_3": round(precision, 4), "ndcg_at_5": round(ndcg, 4)}

    rng = random.Random(seed)
    homes = bench_communes()
    skill_ids = sorted({s for p in evaluation["profiles"] for s in p["skills"]})
    models = []
    for n in range(count):
        model = rng.choice(evaluation["profiles"])
        skills = list(dict.fromkeys([*model["skills"], rng.choice(skill_ids)]))[:4]
        home = rng.choice(homes).insee_code
        models.append(model | {"id": f"b{n}", "skills": skills, "home_commune": home})
    big = index_of(models)
    times = []
    for _, need in needs(rng, queries):
        ranking_only = Need(
            text=need.text,
            skills=need.skills,
            origin=need.origin,
            max_day_rate_cents=need.max_day_rate_cents,
            exclude_commune=need.exclude_commune,
        )
        started = time.perf_counter()
        match_consultants(big, ranking_only)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    figures["ranking_ms"] = {
        "profiles": count,
        "needs": queries,
        "p50": round(percentile(times, 50), 2),
        "p95": round(percentile(times, 95), 2),
    }
    return figures


if __name__ == "__main__":
    communes()  # loaded before timing
    print(json.dumps(run(), indent=2))
