"""Matching quality on the evaluation set shipped with the service: precision@3 over needs as
agents type them, against the candidate profiles of that file. Fails below 0.8; the figure
and each need's top 3 are written to test-output/consultants/matching-quality.json."""

from __future__ import annotations

import json
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
REPORT = PROJECT_ROOT / "test-output" / "consultants" / "matching-quality.json"
K = 3
THRESHOLD = 0.8


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


def test_precision_at_3_is_at_least_0_8(evaluation, record_property):
    index = index_of(evaluation["profiles"])
    rows = []
    for need in evaluation["needs"]:
        origin = communes().get(need["near"])
        result = match_consultants(
            index,
            Need(
                text=need["need"],
                skills=tuple(need.get("skills", ())),
                origin=(origin.latitude, origin.longitude),
                max_day_rate_cents=need.get("max_day_rate_cents"),
                exclude_commune=need["near"],
                limit=K,
            ),
        )
        top = [r.profile.consultant_id for r in result.items]
        relevant = need["relevant"]
        # with fewer than 3 relevant consultants, finding them all is perfect
        precision = len(set(top) & set(relevant)) / min(K, len(relevant))
        rows.append(
            {
                "need": need["need"],
                "near": need["near"],
                "top": top,
                "relevant": relevant,
                "precision_at_3": round(precision, 4),
                "first_is_expected": top[:1] == relevant[:1],
            }
        )
    precision_at_3 = sum(r["precision_at_3"] for r in rows) / len(rows)
    first_right = sum(r["first_is_expected"] for r in rows) / len(rows)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(
        json.dumps(
            {
                "needs": len(rows),
                "profiles": len(evaluation["profiles"]),
                "precision_at_3": round(precision_at_3, 4),
                "first_is_expected": round(first_right, 4),
                "results": rows,
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    record_property("precision_at_3", round(precision_at_3, 4))
    print(
        f"\nconsultant matching: precision@3 = {precision_at_3:.3f} over {len(rows)} needs "
        f"(expected first ranked first: {first_right:.0%}); details in {Path(REPORT).name}"
    )
    misses = [r for r in rows if r["precision_at_3"] < 1]
    assert precision_at_3 >= THRESHOLD, json.dumps(misses, ensure_ascii=False, indent=1)
