"""The matching index: what matching knows of each published consultant, with an
inverted index of their words for BM25 ranking."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.consultants.domain.commitments import Commitment
from services.consultants.domain.text import Vocabulary, tokens, vocabulary
from services.consultants.domain.working_days import Calendar


@dataclass(frozen=True)
class Profile:
    """What matching knows of a published consultant."""

    consultant_id: str
    home_commune: str
    latitude: float | None
    longitude: float | None
    name: str
    title: str
    skills: tuple[str, ...]
    bio: str
    day_rate_cents: int
    max_days_per_month: int
    calendar: Calendar = Calendar()  # noqa: RUF009 (a frozen dataclass, shared safely)
    commitments: tuple[Commitment, ...] = ()


# BM25 with field weights (a light BM25F): a word of the title says more than one of the bio
BM25_K1, BM25_B = 1.2, 0.6
FIELD_WEIGHTS = {"title": 2.0, "skill": 1.5, "synonym": 0.4, "bio": 1.0}
MAX_ORIGINS_KEPT = 64


def document_of(profile: Profile, vocab: Vocabulary) -> dict[str, float]:
    """The profile's analysed words with their weighted frequencies: title, the labels and
    synonyms of its skills, bio."""
    weights: dict[str, float] = {}

    def add(words: Iterable[str], weight: float) -> None:
        for word in words:
            weights[word] = weights.get(word, 0.0) + weight

    add(tokens(profile.title), FIELD_WEIGHTS["title"])
    for skill_id in profile.skills:
        label_words, synonym_words = vocab.terms.get(skill_id, ([], []))
        add(label_words, FIELD_WEIGHTS["skill"])
        add(synonym_words, FIELD_WEIGHTS["synonym"])
    add(tokens(profile.bio), FIELD_WEIGHTS["bio"])
    return weights


class ConsultantIndex:
    """Published profiles with an inverted index of their words, for BM25 ranking; kept
    in memory and changed one profile at a time."""

    def __init__(self, vocab: Vocabulary | None = None):
        self.vocabulary = vocab or vocabulary()
        self.profiles: dict[str, Profile] = {}
        self.postings: dict[str, dict[str, float]] = {}
        self.lengths: dict[str, float] = {}
        self.words: dict[str, frozenset[str]] = {}  # each profile's analysed words
        self.total_length = 0.0
        self.by_skill: dict[str, set[str]] = {}
        self._distances: dict[tuple[float, float], dict[str, tuple[float, float]]] = {}

    def distances_from(self, origin: tuple[float, float]) -> dict[str, tuple[float, float]]:
        """(km, proximity) from `origin` to home communes (inf, 0 when unknown), kept between
        requests: communes do not move, and most requests come from a few origins."""
        if origin not in self._distances and len(self._distances) >= MAX_ORIGINS_KEPT:
            self._distances.pop(next(iter(self._distances)))
        return self._distances.setdefault(origin, {})

    def __len__(self) -> int:
        return len(self.profiles)

    def __contains__(self, consultant_id: str) -> bool:
        return consultant_id in self.profiles

    def put(self, profile: Profile) -> None:
        self.drop(profile.consultant_id)
        doc = document_of(profile, self.vocabulary)
        for word, weight in doc.items():
            self.postings.setdefault(word, {})[profile.consultant_id] = weight
        length = sum(doc.values())
        self.lengths[profile.consultant_id] = length
        self.words[profile.consultant_id] = frozenset(doc)
        self.total_length += length
        for skill_id in profile.skills:
            self.by_skill.setdefault(skill_id, set()).add(profile.consultant_id)
        self.profiles[profile.consultant_id] = profile

    def drop(self, consultant_id: str) -> None:
        profile = self.profiles.pop(consultant_id, None)
        if profile is None:
            return
        for word in self.words.pop(consultant_id):
            posting = self.postings.get(word)
            if posting is not None:
                posting.pop(consultant_id, None)
                if not posting:
                    del self.postings[word]
        self.total_length -= self.lengths.pop(consultant_id)
        for skill_id in profile.skills:
            self.by_skill.get(skill_id, set()).discard(consultant_id)

    def bm25(self, words: Sequence[str]) -> dict[str, float]:
        """BM25 score of every profile holding at least one of `words`."""
        n = len(self.profiles)
        if n == 0:
            return {}
        average = self.total_length / n
        scores: dict[str, float] = {}
        for word in dict.fromkeys(words):
            posting = self.postings.get(word)
            if not posting:
                continue
            idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            # tf·(k1+1) / (tf + k1·(1 − b + b·length/average)), the constant parts hoisted
            base, slope = BM25_K1 * (1 - BM25_B), BM25_K1 * BM25_B / average
            lengths = self.lengths
            for cid, tf in posting.items():
                scores[cid] = scores.get(cid, 0.0) + idf * tf * (BM25_K1 + 1) / (
                    tf + base + slope * lengths[cid]
                )
        return scores
