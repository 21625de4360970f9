"""The matching index, exactly: a profile's weighted words, BM25 against its textbook
formula, a profile dropped leaving the index as it was, and the distances kept per origin."""

from __future__ import annotations

import math

import pytest

from services.consultants.domain.index import (
    BM25_B,
    BM25_K1,
    MAX_ORIGINS_KEPT,
    ConsultantIndex,
    Profile,
    document_of,
)
from services.consultants.domain.text import Vocabulary, tokens
from services.consultants.skills import Skill

VOCABULARY = Vocabulary(
    [
        Skill("voirie", "Voirie", "technique", ("routes",)),
        Skill("amiante", "Désamiantage", "technique", ("amiante",)),
    ]
)


def profile(cid: str, title: str, skills: tuple[str, ...] = (), bio: str = "") -> Profile:
    return Profile(cid, "42218", None, None, cid, title, skills, bio, 40000, 10)


def test_a_profiles_words_weigh_by_field():
    doc = document_of(
        profile("a", "Ingénieur voirie", ("voirie", "unknown"), "voirie et routes"), VOCABULARY
    )
    assert doc == {"ingenier": 2.0, "voir": 2.0 + 1.5 + 1.0, "rout": 0.4 + 1.0}


def textbook_bm25(index: ConsultantIndex, words: list[str], cid: str) -> float:
    n = len(index.profiles)
    average = sum(index.lengths.values()) / n
    score = 0.0
    for word in dict.fromkeys(words):
        posting = index.postings.get(word, {})
        if cid not in posting:
            continue
        idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
        tf, norm = posting[cid], 1 - BM25_B + BM25_B * index.lengths[cid] / average
        score += idf * tf * (BM25_K1 + 1) / (tf + BM25_K1 * norm)
    return score


def test_bm25_is_the_textbook_formula_on_weighted_frequencies():
    index = ConsultantIndex(VOCABULARY)
    assert index.bm25(["voir"]) == {}
    index.put(profile("a", "Ingénieur voirie", ("voirie",), "routes et chaussées"))
    index.put(profile("b", "Chargée de désamiantage", ("amiante",), "amiante, voirie"))
    index.put(profile("c", "Secrétaire de mairie", (), "état civil"))
    words = tokens("voirie voirie amiante routes")
    scores = index.bm25(words)
    assert set(scores) == {"a", "b"}
    for cid, score in scores.items():
        assert score == pytest.approx(textbook_bm25(index, words, cid))
    assert scores["a"] > scores["b"]


def test_a_profile_put_again_or_dropped_leaves_no_trace():
    index = ConsultantIndex(VOCABULARY)
    index.put(profile("a", "Ingénieur voirie", ("voirie",), "routes"))
    before = (
        {w: dict(p) for w, p in index.postings.items()},
        dict(index.lengths),
        index.total_length,
        {s: set(c) for s, c in index.by_skill.items()},
    )
    index.put(profile("b", "Désamiantage", ("amiante", "voirie"), "routes et voirie"))
    index.put(profile("b", "Désamiantage", ("amiante", "voirie"), "routes et voirie"))
    assert len(index) == 2 and "b" in index
    index.drop("b")
    index.drop("nobody")
    assert "b" not in index and len(index) == 1
    assert {w: dict(p) for w, p in index.postings.items()} == before[0]
    assert index.lengths == before[1]
    assert index.total_length == pytest.approx(before[2])
    assert {s: c for s, c in index.by_skill.items() if c} == before[3]


def test_distances_are_kept_for_the_most_recent_origins():
    index = ConsultantIndex(VOCABULARY)
    first = index.distances_from((45.0, 4.0))
    first["a"] = (1.0, 0.9)
    assert index.distances_from((45.0, 4.0)) is first
    for n in range(1, MAX_ORIGINS_KEPT):
        index.distances_from((45.0, 4.0 + n))
    assert index.distances_from((45.0, 4.0)) is first  # 64 kept
    index.distances_from((46.0, 4.0))  # a 65th: the oldest goes
    assert index.distances_from((45.0, 4.0)) == {}
    assert len(index._distances) == MAX_ORIGINS_KEPT
