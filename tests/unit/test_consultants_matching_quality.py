"""Matching quality on the evaluation sets shipped with the service: precision@3 and nDCG@5
over needs as agents type them, against the candidate profiles of matching.json; the second
set (matching_blind.json) was written without reading the skills vocabulary. precision@3
fails below 0.8 on the first set; the figures and each need's top 5 are written to
test-output/consultants/matching-quality.json (and matching-quality-blind.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from infra.communes import communes
from infra.settings import PROJECT_ROOT
from services.consultants.domain import (
    ConsultantIndex,
    Need,
    Profile,
    match_consultants,
    vocabulary,
)

EVALUATION = PROJECT_ROOT / "services" / "consultants" / "evaluation" / "matching.json"
BLIND = EVALUATION.with_name("matching_blind.json")
REPORT = PROJECT_ROOT / "test-output" / "consultants" / "matching-quality.json"
K = 3
RANKED = 5  # nDCG's depth
THRESHOLD = 0.8
# needs in everyday words, not the vocabulary's: measured 0.467 (nDCG@5 0.538) when the set
# was made; a guard against losing more, the bar to raise as matching learns everyday words
BLIND_THRESHOLD = 0.4
BLIND_NDCG_THRESHOLD = 0.5


@pytest.fixture(scope="module")
def evaluation() -> dict:
    return json.loads(EVALUATION.read_text(encoding="utf-8"))


def index_of(profiles: list[dict]) -> ConsultantIndex:
    index = ConsultantIndex()
    for p in profiles:
        home = communes().get(p["home_commune"])
        index.put(
            Profile(
                consultant_id=p["id"],
                home_commune=p["home_commune"],
                latitude=home.latitude,
                longitude=home.longitude,
                name=p["name"],
                title=p["title"],
                skills=tuple(p["skills"]),
                bio=p["bio"],
                day_rate_cents=p["day_rate_cents"],
                max_days_per_month=p["max_days_per_month"],
            )
        )
    return index


def test_the_evaluation_set_is_sound(evaluation):
    profiles = {p["id"]: p for p in evaluation["profiles"]}
    assert len(evaluation["needs"]) >= 40
    assert len(profiles) == len(evaluation["profiles"])
    for p in evaluation["profiles"]:
        assert vocabulary().resolve(p["skills"]) == p["skills"]
        assert communes().get(p["home_commune"]) is not None
    for need in evaluation["needs"]:
        assert need["relevant"], need
        for cid in need["relevant"]:
            # the requester's own staff are no candidates: they cannot be expected
            assert profiles[cid]["home_commune"] != need["near"], need


def ndcg(top: list[str], relevant: list[str], depth: int = RANKED) -> float:
    """Normalised discounted cumulative gain: each relevant consultant counts 1/log2(rank+1)
    of its rank in the top `depth`, against the best order possible."""
    gain = sum(1 / math.log2(rank + 2) for rank, c in enumerate(top[:depth]) if c in relevant)
    best = sum(1 / math.log2(rank + 2) for rank in range(min(depth, len(relevant))))
    return gain / best


def quality(index: ConsultantIndex, needs: list[dict]) -> tuple[float, float, float, list]:
    """precision@3, nDCG@5 and how often the expected first is first, with each need's row."""
    rows = []
    for need in needs:
        origin = communes().get(need["near"])
        result = match_consultants(
            index,
            Need(
                text=need["need"],
                skills=tuple(need.get("skills", ())),
                origin=(origin.latitude, origin.longitude),
                max_day_rate_cents=need.get("max_day_rate_cents"),
                exclude_commune=need["near"],
                limit=RANKED,
            ),
        )
        top = [r.profile.consultant_id for r in result.items]
        relevant = need["relevant"]
        # with fewer than 3 relevant consultants, finding them all is perfect
        precision = len(set(top[:K]) & set(relevant)) / min(K, len(relevant))
        rows.append(
            {
                "need": need["need"],
                "near": need["near"],
                "top": top,
                "relevant": relevant,
                "precision_at_3": round(precision, 4),
                "ndcg_at_5": round(ndcg(top, relevant), 4),
                "first_is_expected": top[:1] == relevant[:1],
            }
        )
    n = len(rows)
    return (
        sum(r["precision_at_3"] for r in rows) / n,
        sum(r["ndcg_at_5"] for r in rows) / n,
        sum(r["first_is_expected"] for r in rows) / n,
        rows,
    )


def report(path: Path, profiles: int, figures: tuple[float, float, float, list]) -> None:
    precision_at_3, ndcg_at_5, first_right, rows = figures
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "needs": len(rows),
                "profiles": profiles,
                "precision_at_3": round(precision_at_3, 4),
                "ndcg_at_5": round(ndcg_at_5, 4),
                "first_is_expected": round(first_right, 4),
                "results": rows,
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    print(
        f"\nconsultant matching: precision@3 = {precision_at_3:.3f}, nDCG@5 = {ndcg_at_5:.3f} "
        f"over {len(rows)} needs (expected first ranked first: {first_right:.0%}); details "
        f"in {path.name}"
    )


def test_precision_at_3_is_at_least_0_8(evaluation, record_property):
    index = index_of(evaluation["profiles"])
    figures = quality(index, evaluation["needs"])
    report(REPORT, len(evaluation["profiles"]), figures)
    precision_at_3, ndcg_at_5, _, rows = figures
    record_property("precision_at_3", round(precision_at_3, 4))
    record_property("ndcg_at_5", round(ndcg_at_5, 4))
    misses = [r for r in rows if r["precision_at_3"] < 1]
    assert precision_at_3 >= THRESHOLD, json.dumps(misses, ensure_ascii=False, indent=1)


def test_needs_written_without_the_vocabulary_are_matched_too(evaluation, record_property):
    blind = json.loads(BLIND.read_text(encoding="utf-8"))
    profiles = {p["id"]: p for p in evaluation["profiles"]}
    assert len(blind["needs"]) == 10
    for need in blind["needs"]:
        for cid in need["relevant"]:
            assert profiles[cid]["home_commune"] != need["near"], need
    figures = quality(index_of(evaluation["profiles"]), blind["needs"])
    report(REPORT.with_name("matching-quality-blind.json"), len(profiles), figures)
    precision_at_3, ndcg_at_5, _, rows = figures
    record_property("blind_precision_at_3", round(precision_at_3, 4))
    record_property("blind_ndcg_at_5", round(ndcg_at_5, 4))
    misses = [r for r in rows if r["precision_at_3"] < 1]
    assert precision_at_3 >= BLIND_THRESHOLD, json.dumps(misses, ensure_ascii=False, indent=1)
    assert ndcg_at_5 >= BLIND_NDCG_THRESHOLD, json.dumps(misses, ensure_ascii=False, indent=1)
