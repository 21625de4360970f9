"""Matching by documents and nearest first ranks exactly as scoring every candidate did:
the brute force of before (kept here as the reference: per-profile BM25, every candidate
scored and sorted) against match_consultants on seeded random catalogues (profiles written
alike or not, calendars, commitments, homes without a place) and many needs (text, skills,
place, period, ceiling, only fitting, limits), before and after the catalogue changes."""

from __future__ import annotations

import json
import math
import random
from datetime import date, timedelta
from decimal import Decimal

import pytest

from bench.consultants import EVALUATION, needs
from bench.seed import bench_communes
from contracts.consultants import AvailabilityPeriod
from infra.communes import great_circle_km
from services.consultants.domain import matching
from services.consultants.domain.commitments import Commitment
from services.consultants.domain.index import (
    BM25_B,
    BM25_K1,
    ConsultantIndex,
    Profile,
    document_of,
)
from services.consultants.domain.matching import (
    RELATED_COVERAGE,
    TEXT_FLOOR,
    MatchResult,
    Need,
    _AvailabilityOracle,
    _explained,
    _score_one,
    criterion_weights,
    match_consultants,
    proximity,
)
from services.consultants.domain.text import tokens, written_forms
from services.consultants.domain.working_days import Calendar, half_days

TODAY = date.today()
NOWHERE = "99999"  # a home commune without coordinates


def reference_match(
    index: ConsultantIndex, need: Need, docs: dict[str, dict[str, float]]
) -> MatchResult:
    """match_consultants as it was: every candidate profile scored, one by one (`docs`:
    each profile's document_of)."""
    vocab = index.vocabulary
    n = len(docs)
    words = tokens(need.text)
    need_terms = list(dict.fromkeys(words))
    inferred = vocab.recognise(words)
    asked = list(need.skills) or inferred

    text_scores: dict[str, float] = {}
    if n:
        average = index.total_length / n
        base_, slope = BM25_K1 * (1 - BM25_B), BM25_K1 * BM25_B / average
        for word in need_terms:
            posting = {cid: d[word] for cid, d in docs.items() if word in d}
            if not posting:
                continue
            idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            for cid, tf in posting.items():
                length = sum(docs[cid].values())
                text_scores[cid] = text_scores.get(cid, 0.0) + idf * tf * (BM25_K1 + 1) / (
                    tf + base_ + slope * length
                )
    by_skill: dict[str, set[str]] = {}
    for cid, p in index.profiles.items():
        for s in p.skills:
            by_skill.setdefault(s, set()).add(cid)
    coverage: dict[str, float] = {}
    for skill_id in asked:
        direct = by_skill.get(skill_id, set())
        for cid in direct:
            coverage[cid] = coverage.get(cid, 0.0) + 1.0
        near_miss: set[str] = set()
        for related in vocab.related.get(skill_id, ()):
            near_miss |= by_skill.get(related, set())
        for cid in near_miss - direct:
            coverage[cid] = coverage.get(cid, 0.0) + RELATED_COVERAGE

    best_text = max(text_scores.values(), default=0.0)
    if need_terms or asked:
        floor = TEXT_FLOOR * best_text
        pool = {c for c, s in text_scores.items() if s >= floor} | coverage.keys()
    else:
        pool = set(index.profiles)
    # the weighting is shared: what the reference checks is the selection and the scores
    weights = criterion_weights(need, bool(asked), best_text > 0)
    w_skills, w_text = weights.get("skills", 0.0), weights.get("text", 0.0)
    w_distance = weights.get("distance", 0.0)
    needed = half_days(need.days or Decimal(1)) if need.window is not None else 0
    oracle = _AvailabilityOracle(need.window) if need.window is not None else None
    scored, candidates = [], 0
    for cid in pool:
        profile = index.profiles[cid]
        if profile.home_commune == need.exclude_commune:
            continue
        candidates += 1
        base = 0.0
        if asked:
            base += w_skills * coverage.get(cid, 0.0) / len(asked)
        if best_text > 0:
            base += w_text * text_scores.get(cid, 0.0) / best_text
        distance, near = math.inf, 0.0
        if need.origin is not None and profile.latitude is not None:
            distance = great_circle_km(*need.origin, profile.latitude, profile.longitude)
            near = proximity(distance)
        if need.origin is not None:
            base += w_distance * near
        score, fits = _score_one(profile, base, weights, oracle, needed, need.max_day_rate_cents)
        if need.only_fitting and not fits:
            continue
        scored.append((not fits, -round(score, 6), distance, cid))
    ranked = sorted(scored)[: need.limit]
    written = written_forms(need.text) if ranked else {}
    items = [
        _explained(
            index.profiles[cid],
            need,
            vocab=vocab,
            words=frozenset(docs[cid]),
            asked=asked,
            inferred=inferred,
            need_terms=need_terms,
            written=written,
            text_score=text_scores.get(cid, 0.0),
            best_text=best_text,
            distance=None if math.isinf(distance) else distance,
            oracle=oracle,
            needed=needed,
            weights=weights,
            fits=not unfit,
            score=-negative_score,
        )
        for unfit, negative_score, distance, cid in ranked
    ]
    return MatchResult(items, candidates, need_terms, inferred)


def catalogue(rng: random.Random, count: int) -> list[Profile]:
    """`count` profiles after the evaluation set's: most as the bench writes them (a
    model's text, one more skill), some with a bio cut short (a document of their own),
    a few at home without coordinates; a third with a calendar, one in ten committed."""
    evaluation = json.loads(EVALUATION.read_text(encoding="utf-8"))
    models = evaluation["profiles"]
    homes = bench_communes()[:300]  # few communes: many profiles share one
    skill_ids = sorted({s for m in models for s in m["skills"]})
    profiles = []
    for n in range(count):
        model = rng.choice(models)
        skills = tuple(dict.fromkeys([*model["skills"], rng.choice(skill_ids)]))[:4]
        bio = model["bio"]
        if rng.random() < 0.3:
            bio = " ".join(bio.split()[: rng.randrange(1, 12)])
        home = rng.choice(homes)
        place = (home.latitude, home.longitude)
        commune = home.insee_code
        if rng.random() < 0.02:
            commune, place = NOWHERE, (None, None)
        periods = []
        if rng.random() < 0.33:
            start = TODAY + timedelta(days=rng.randrange(0, 120))
            periods.append(
                AvailabilityPeriod(
                    kind=rng.choice(["available", "unavailable"]),
                    start=start,
                    end=start + timedelta(days=rng.randrange(5, 60)),
                )
            )
        commitments = ()
        if rng.random() < 0.1:
            start = TODAY + timedelta(days=rng.randrange(20, 90))
            commitments = (
                Commitment(f"e{n}", start, start + timedelta(days=14), rng.randrange(2, 10)),
            )
        profiles.append(
            Profile(
                consultant_id=f"c{n:05d}",
                home_commune=commune,
                latitude=place[0],
                longitude=place[1],
                name=model["name"],
                title=model["title"],
                skills=skills,
                bio=bio,
                day_rate_cents=max(20000, model["day_rate_cents"] + rng.randrange(-80, 81) * 100),
                max_days_per_month=rng.randrange(2, 13),
                calendar=Calendar.of(periods, commune),
                commitments=commitments,
            )
        )
    return profiles


def variants(rng: random.Random, count: int, homes: list[str]) -> list[Need]:
    """The bench's needs, and the same varied: limits, only fitting, no text, no skill,
    no place, another excluded commune."""
    made = []
    for _, need in needs(rng, count):
        made.append(need)
        made.append(
            Need(
                text=need.text if rng.random() < 0.7 else "",
                skills=need.skills if rng.random() < 0.7 else (),
                origin=need.origin if rng.random() < 0.85 else None,
                window=need.window,
                days=need.days,
                max_day_rate_cents=need.max_day_rate_cents,
                exclude_commune=rng.choice([None, rng.choice(homes)]),
                only_fitting=rng.random() < 0.3,
                limit=rng.choice([1, 3, 10, 25, 60]),
            )
        )
    return made


def answered(result: MatchResult) -> tuple:
    return (
        [(r.profile.consultant_id, r.score, r.fits, r.explanation) for r in result.items],
        result.candidates,
        result.need_terms,
        result.inferred_skills,
    )


def assert_same_rankings(index: ConsultantIndex, asked: list[Need]) -> None:
    docs = {cid: document_of(p, index.vocabulary) for cid, p in index.profiles.items()}
    for need in asked:
        expected = reference_match(index, need, docs)
        assert answered(match_consultants(index, need)) == answered(expected), need


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_ranking_is_the_brute_forces(seed):
    rng = random.Random(seed)
    profiles = catalogue(rng, 3000)
    index = ConsultantIndex()
    for p in profiles:
        index.put(p)
    assert len(index.documents) < len(index)  # profiles written alike share a document
    homes = sorted(index.homes)
    assert_same_rankings(index, variants(rng, 60, homes))


def test_the_ranking_stays_the_brute_forces_as_profiles_change():
    rng = random.Random(4)
    profiles = catalogue(rng, 2500)
    index = ConsultantIndex()
    for p in profiles[:2000]:
        index.put(p)
    homes = sorted(index.homes)
    asked = variants(rng, 20, homes)
    assert_same_rankings(index, asked)  # the distances and orders of each origin kept
    for p in profiles[2000:]:  # new profiles, some in communes new to the index
        index.put(p)
    for p in rng.sample(profiles[:2000], 300):  # withdrawn
        index.drop(p.consultant_id)
    for p in rng.sample(profiles[:2000], 300):  # edited: another text, skill, home
        other = rng.choice(profiles)
        index.put(
            Profile(
                **{
                    **p.__dict__,
                    "title": other.title,
                    "skills": other.skills,
                    "home_commune": other.home_commune,
                    "latitude": other.latitude,
                    "longitude": other.longitude,
                }
            )
        )
    for home in rng.sample(homes, 5):  # communes left empty
        for cid in list(index.homes.get(home, ())):
            index.drop(cid)
    assert_same_rankings(index, asked)


def test_a_match_takes_only_the_profiles_it_needs(monkeypatch):
    """The point of it: of the thousands of candidates of the bench's needs, a match
    takes (scores availability and rate of) a small share to find its top ten."""
    rng = random.Random(5)
    index = ConsultantIndex()
    for p in catalogue(rng, 3000):
        index.put(p)
    taken = []
    original = matching._score_one

    def counted(*args, **kwargs):
        taken.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(matching, "_score_one", counted)
    candidates = 0
    for _, need in needs(rng, 40):
        candidates += match_consultants(index, need).candidates
    assert candidates > 10_000 and len(taken) < candidates / 5
