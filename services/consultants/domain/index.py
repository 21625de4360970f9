"""The matching index: what matching knows of each published consultant, with an
inverted index of their words for BM25 ranking."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

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


@dataclass
class Document:
    """What profiles written alike share: their weighted words and skills. Relevance is
    scored once per document, not per profile (many profiles start from the same template),
    and its profiles are kept by home commune for taking the nearest first."""

    key: int
    weights: dict[str, float]
    words: frozenset[str]
    length: float
    skills: frozenset[str]
    homes: dict[str, set[str]] = field(default_factory=dict)  # home commune -> ids
    size: int = 0


class ConsultantIndex:
    """Published profiles, grouped into documents (profiles with the same analysed words and
    skills), with an inverted index of the documents' words for BM25 ranking, and the
    profiles by home commune; kept in memory and changed one profile at a time."""

    def __init__(self, vocab: Vocabulary | None = None):
        self.vocabulary = vocab or vocabulary()
        self.profiles: dict[str, Profile] = {}
        self.documents: dict[int, Document] = {}
        self.document_of: dict[str, Document] = {}
        self._document_keys: dict[tuple, int] = {}
        self._next_key = 0
        self.postings: dict[str, dict[int, float]] = {}  # word -> document key -> weight
        self.frequency: dict[str, int] = {}  # word -> profiles holding it
        self.lengths: dict[str, float] = {}
        self.words: dict[str, frozenset[str]] = {}  # each profile's analysed words
        self.total_length = 0.0
        self.by_skill: dict[str, set[int]] = {}  # skill -> keys of the documents holding it
        self.homes: dict[str, set[str]] = {}  # home commune -> ids
        self.places: dict[str, tuple[float, float] | None] = {}  # home commune -> its point
        self.homes_added = 0  # moves when a commune gets its first profile
        self._distances: dict[tuple[float, float], dict[str, tuple[float, float]]] = {}
        self._nearest: dict[tuple[float, float], tuple[int, list[str]]] = {}

    def distances_from(self, origin: tuple[float, float]) -> dict[str, tuple[float, float]]:
        """(km, proximity) from `origin` to home communes (inf, 0 when unknown), kept between
        requests: communes do not move, and most requests come from a few origins."""
        if origin not in self._distances and len(self._distances) >= MAX_ORIGINS_KEPT:
            self._nearest.pop(next(iter(self._distances)), None)
            self._distances.pop(next(iter(self._distances)))
        return self._distances.setdefault(origin, {})

    def nearest_first(self, origin: tuple[float, float]) -> list[str] | None:
        """The home communes by distance from `origin` as last remembered, if no commune
        has been added since (a commune left empty stays listed: callers skip it)."""
        known = self._nearest.get(origin)
        return known[1] if known is not None and known[0] == self.homes_added else None

    def remember_nearest_first(self, origin: tuple[float, float], homes: list[str]) -> None:
        if origin in self._distances:  # kept as long as the origin's distances
            self._nearest[origin] = (self.homes_added, homes)

    def __len__(self) -> int:
        return len(self.profiles)

    def __contains__(self, consultant_id: str) -> bool:
        return consultant_id in self.profiles

    def put(self, profile: Profile) -> None:
        self.drop(profile.consultant_id)
        cid = profile.consultant_id
        document = self._document(profile)
        document.homes.setdefault(profile.home_commune, set()).add(cid)
        document.size += 1
        for word in document.weights:
            self.frequency[word] = self.frequency.get(word, 0) + 1
        self.document_of[cid] = document
        self.lengths[cid] = document.length
        self.words[cid] = document.words
        self.total_length += document.length
        if profile.home_commune not in self.homes:
            self.homes[profile.home_commune] = set()
            self.homes_added += 1
        self.homes[profile.home_commune].add(cid)
        if profile.home_commune not in self.places:
            known = profile.latitude is not None and profile.longitude is not None
            self.places[profile.home_commune] = (
                (profile.latitude, profile.longitude) if known else None
            )
        self.profiles[cid] = profile

    def _document(self, profile: Profile) -> Document:
        doc = document_of(profile, self.vocabulary)
        # the words in their order: a length summed in another order may round otherwise
        signature = (tuple(doc.items()), frozenset(profile.skills))
        key = self._document_keys.get(signature)
        if key is not None:
            return self.documents[key]
        key = self._document_keys[signature] = self._next_key
        self._next_key += 1
        document = self.documents[key] = Document(
            key, doc, frozenset(doc), sum(doc.values()), signature[1]
        )
        for word, weight in doc.items():
            self.postings.setdefault(word, {})[key] = weight
        for skill_id in document.skills:
            self.by_skill.setdefault(skill_id, set()).add(key)
        return document

    def drop(self, consultant_id: str) -> None:
        profile = self.profiles.pop(consultant_id, None)
        if profile is None:
            return
        document = self.document_of.pop(consultant_id)
        del self.words[consultant_id]
        self.total_length -= self.lengths.pop(consultant_id)
        home = profile.home_commune
        _discard(document.homes, home, consultant_id)
        _discard(self.homes, home, consultant_id)
        if home not in self.homes:
            del self.places[home]
        for word in document.weights:
            self.frequency[word] -= 1
            if not self.frequency[word]:
                del self.frequency[word]
        document.size -= 1
        if document.size:
            return
        del self.documents[document.key]
        del self._document_keys[(tuple(document.weights.items()), document.skills)]
        for word in document.weights:
            posting = self.postings[word]
            del posting[document.key]
            if not posting:
                del self.postings[word]
        for skill_id in document.skills:
            self.by_skill[skill_id].discard(document.key)
            if not self.by_skill[skill_id]:
                del self.by_skill[skill_id]

    def bm25_of_documents(self, words: Sequence[str]) -> dict[int, float]:
        """BM25 score of every document holding at least one of `words`, by its key: the
        score of each of its profiles (the number of profiles holding a word gives its idf)."""
        n = len(self.profiles)
        if n == 0:
            return {}
        average = self.total_length / n
        scores: dict[int, float] = {}
        for word in dict.fromkeys(words):
            posting = self.postings.get(word)
            if not posting:
                continue
            held = self.frequency[word]
            idf = math.log(1 + (n - held + 0.5) / (held + 0.5))
            # tf·(k1+1) / (tf + k1·(1 − b + b·length/average)), the constant parts hoisted
            base, slope = BM25_K1 * (1 - BM25_B), BM25_K1 * BM25_B / average
            documents = self.documents
            for key, tf in posting.items():
                scores[key] = scores.get(key, 0.0) + idf * tf * (BM25_K1 + 1) / (
                    tf + base + slope * documents[key].length
                )
        return scores

    def bm25(self, words: Sequence[str]) -> dict[str, float]:
        """BM25 score of every profile holding at least one of `words`."""
        by_document = self.bm25_of_documents(words)
        return {
            cid: score
            for key, score in by_document.items()
            for ids in self.documents[key].homes.values()
            for cid in ids
        }


def _discard(groups: dict[str, set[str]], key: str, member: str) -> None:
    group = groups[key]
    group.discard(member)
    if not group:
        del groups[key]
