"""The matching index, exactly: a profile's weighted words, BM25 against its textbook
formula, a profile dropped leaving the index as it was, and the distances kept per origin."""

from __future__ import annotations

import math
from dataclasses import replace

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
    """BM25 of one profile from every profile's own document, nothing shared."""
    docs = {c: document_of(p, index.vocabulary) for c, p in index.profiles.items()}
    n = len(docs)
    average = sum(sum(d.values()) for d in docs.values()) / n
    score = 0.0
    for word in dict.fromkeys(words):
        if word not in docs[cid]:
            continue
        held = sum(word in d for d in docs.values())
        idf = math.log(1 + (n - held + 0.5) / (held + 0.5))
        tf, norm = docs[cid][word], 1 - BM25_B + BM25_B * sum(docs[cid].values()) / average
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


def state(index: ConsultantIndex) -> tuple:
    return (
        {
            w: {tuple(index.documents[k].weights.items()): v for k, v in p.items()}
            for w, p in index.postings.items()
        },
        dict(index.frequency),
        dict(index.lengths),
        index.total_length,
        {s: {tuple(index.documents[k].weights) for k in c} for s, c in index.by_skill.items()},
        {h: set(c) for h, c in index.homes.items()},
        dict(index.places),
        {k: (d.size, {h: set(c) for h, c in d.homes.items()}) for k, d in index.documents.items()},
    )


def test_a_profile_put_again_or_dropped_leaves_no_trace():
    index = ConsultantIndex(VOCABULARY)
    index.put(profile("a", "Ingénieur voirie", ("voirie",), "routes"))
    before = state(index)
    index.put(profile("b", "Désamiantage", ("amiante", "voirie"), "routes et voirie"))
    index.put(profile("b", "Désamiantage", ("amiante", "voirie"), "routes et voirie"))
    assert len(index) == 2 and "b" in index
    index.drop("b")
    index.drop("nobody")
    assert "b" not in index and len(index) == 1
    assert state(index) == before
    assert index.total_length == pytest.approx(2.0 + 2.0 + 1.5 + 0.4 + 1.0)


def test_profiles_written_alike_share_one_document_until_the_last_goes():
    index = ConsultantIndex(VOCABULARY)
    index.put(profile("a", "Ingénieur voirie", ("voirie",), "routes"))
    index.put(
        replace(profile("b", "Ingénieur voirie", ("voirie",), "routes"), home_commune="69123")
    )
    index.put(profile("c", "Ingénieur voirie", ("voirie", "amiante"), "routes"))
    assert len(index.documents) == 2
    shared = index.document_of["a"]
    assert index.document_of["b"] is shared and shared.size == 2
    assert shared.homes == {"42218": {"a"}, "69123": {"b"}}
    assert index.frequency["ingenier"] == 3 and len(index.postings["ingenier"]) == 2
    assert index.bm25(["ingenier"]).keys() == {"a", "b", "c"}
    # an edit moves a profile to another document; the one it leaves stays for the others
    index.put(profile("a", "Ingénieur voirie", ("voirie", "amiante"), "routes"))
    assert index.document_of["a"] is index.document_of["c"] and shared.size == 1
    assert index.homes == {"42218": {"a", "c"}, "69123": {"b"}}
    index.drop("b")
    assert shared.key not in index.documents and "69123" not in index.homes
    assert index.by_skill == {
        "voirie": {index.document_of["a"].key},
        "amiante": {index.document_of["a"].key},
    }
    assert index.frequency["ingenier"] == 2 and len(index.postings["ingenier"]) == 1


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
