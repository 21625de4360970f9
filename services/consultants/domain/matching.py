"""Matching: consultants ranked for a need, each score with its explanation."""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from contracts.consultants import (
    AvailabilityFit,
    Explanation,
    MatchQuery,
    RateFit,
    SkillCoverage,
    SkillMatch,
    TextRelevance,
)
from infra.communes import great_circle_km
from services.consultants.domain.commitments import entangled, free_half_days
from services.consultants.domain.index import ConsultantIndex, Profile
from services.consultants.domain.text import Vocabulary, tokens, written_forms
from services.consultants.domain.working_days import (
    Period,
    as_days,
    half_days,
    months,
    working_days,
)

# how much each component weighs when it applies; the weights of those that apply are
# rescaled to sum to 1, so a score is always in [0, 1]
WEIGHTS = {"skills": 0.40, "text": 0.30, "distance": 0.15, "availability": 0.10, "rate": 0.05}
# proximity is 1 at home, one half at this distance
HALF_PROXIMITY_KM = 25.0
# coverage of an asked skill by a related one, rather than the skill itself
RELATED_COVERAGE = 0.5
# share of the rate score a consultant at the ceiling loses against a free one
RATE_SPREAD = 0.25
# text relevance below this share of the best candidate's, without a skill asked, is noise
TEXT_FLOOR = 0.15


@dataclass(frozen=True)
class Need:
    """What an agent asks for. `window` is half-open; without it availability is not
    asked; `days` defaults to one day when there is a window."""

    text: str = ""
    skills: tuple[str, ...] = ()
    origin: tuple[float, float] | None = None
    window: Period | None = None
    days: Decimal | None = None
    max_day_rate_cents: int | None = None
    exclude_commune: str | None = None
    only_fitting: bool = False
    limit: int = 10


def need_for(
    query: MatchQuery, skills: Sequence[str], origin: tuple[float, float], commune: str
) -> Need:
    """The need an agent of `commune` asks with `query` (its skills already resolved to
    ids, its place as coordinates): a period's `to` is included, and a commune does not
    engage its own staff."""
    window = None
    if query.from_ is not None and query.to is not None:
        window = Period(query.from_, query.to + timedelta(days=1))
    return Need(
        text=query.need or "",
        skills=tuple(skills),
        origin=origin,
        window=window,
        days=query.days,
        max_day_rate_cents=query.max_day_rate_cents,
        exclude_commune=commune,
        only_fitting=query.only_fitting,
        limit=query.limit,
    )


@dataclass(frozen=True)
class Ranked:
    profile: Profile
    score: float
    fits: bool
    explanation: Explanation


@dataclass
class MatchResult:
    items: list[Ranked]
    candidates: int
    need_terms: list[str]
    inferred_skills: list[str] = field(default_factory=list)


def criterion_weights(need: Need, has_skills: bool, has_text: bool) -> dict[str, float]:
    """The weight of each criterion the need gives a say, scaled to sum to 1: a criterion
    the need says nothing about (no skill asked, no place, no window, no ceiling) weighs 0."""
    applies = {
        "skills": has_skills,
        "text": has_text,
        "distance": need.origin is not None,
        "availability": need.window is not None,
        "rate": need.max_day_rate_cents is not None,
    }
    total = sum(w for name, w in WEIGHTS.items() if applies[name])
    return {n: w / total for n, w in WEIGHTS.items() if applies[n]} if total else {}


def proximity(distance_km: float) -> float:
    return 1.0 / (1.0 + distance_km / HALF_PROXIMITY_KM)


def rate_score(day_rate_cents: int, ceiling: int) -> float:
    if day_rate_cents > ceiling:
        return 0.0
    return 1.0 - RATE_SPREAD * (day_rate_cents / ceiling if ceiling else 0.0)


class _AvailabilityOracle:
    """Free half days of each candidate in the need's window, shared work cached: most
    profiles have no calendar and no commitment near the window, and then only their
    monthly maximum matters."""

    def __init__(self, window: Period):
        self.window = window
        self.months = months(window.start, window.end)
        # by the consultant's holidays: Alsace-Moselle keeps two more than the rest of France
        self._plain: dict[tuple[int, str | None], int] = {}
        self._free: dict[str, int] = {}

    def free(self, profile: Profile) -> int:
        known = self._free.get(profile.consultant_id)
        if known is None:
            known = self._free[profile.consultant_id] = self._compute(profile)
        return known

    def _compute(self, profile: Profile) -> int:
        cap = 2 * profile.max_days_per_month
        commitments = entangled(profile.commitments, self.window) if profile.commitments else []
        if commitments:
            return free_half_days(
                profile.calendar, profile.max_days_per_month, commitments, self.window
            )[1]
        if not profile.calendar.constrained:
            key = (cap, profile.calendar.subdivision)
            if key not in self._plain:
                self._plain[key] = sum(
                    min(2 * working_days(m.start, m.end, key[1]), cap) for m in self.months
                )
            return self._plain[key]
        return sum(min(2 * profile.calendar.open_days(m.start, m.end), cap) for m in self.months)


def match_consultants(index: ConsultantIndex, need: Need) -> MatchResult:
    """Ranks the index's profiles for a need: fitting candidates first (available for the
    days needed, within the rate ceiling), then by score, nearer, then by id. Each comes
    with the explanation of its score.

    Relevance (skills, text) is scored once per document (profiles written alike), never
    per profile. Candidates are then taken by their best possible score, each document's
    nearest first (its relevance plus its proximity, plus the most availability and rate
    could add), a document being opened only once its best could still enter the top; the
    dear part (availability, rate) is scored for those taken, and the scan stops once
    `limit` fitting ones beat the best any other could reach (Fagin's threshold
    algorithm). So a match costs the documents sharing a skill or a word with the need and
    the few profiles near the top, not the whole catalogue; the ranking is the one of
    scoring every candidate (tests/unit/test_consultants_matching_exact.py)."""
    vocab = index.vocabulary
    words = tokens(need.text)
    need_terms = list(dict.fromkeys(words))
    inferred = vocab.recognise(words)
    asked = list(need.skills) or inferred
    text_scores = index.bm25_of_documents(need_terms)

    coverage: dict[int, float] = {}  # by document
    for skill_id in asked:
        direct = index.by_skill.get(skill_id, set())
        for key in direct:
            coverage[key] = coverage.get(key, 0.0) + 1.0
        near_miss: set[int] = set()
        for related in vocab.related.get(skill_id, ()):
            near_miss |= index.by_skill.get(related, set())
        for key in near_miss - direct:
            coverage[key] = coverage.get(key, 0.0) + RELATED_COVERAGE

    best_text = max(text_scores.values(), default=0.0)
    relevant = bool(need_terms or asked)
    if relevant:
        # a word shared with thousands of profiles ('plan', 'gestion') is no relevance
        floor = TEXT_FLOOR * best_text
        pool = {k for k, s in text_scores.items() if s >= floor} | coverage.keys()
    weights = criterion_weights(need, bool(asked), best_text > 0)

    # relevance of each candidate document, and the groups of profiles to take from
    w_skills, w_text = weights.get("skills", 0.0), weights.get("text", 0.0)
    groups: list[tuple[float, dict[str, set[str]]]] = []
    excluded = need.exclude_commune
    if relevant:
        candidates = 0
        for key in pool:
            document = index.documents[key]
            relevance = 0.0
            if asked:
                relevance += w_skills * coverage.get(key, 0.0) / len(asked)
            if best_text > 0:
                relevance += w_text * text_scores.get(key, 0.0) / best_text
            groups.append((relevance, document.homes))
            candidates += document.size - len(document.homes.get(excluded, ()))
    else:  # nothing asked but place, period or rate: every profile, nearest first
        groups.append((0.0, index.homes))
        candidates = len(index.profiles) - len(index.homes.get(excluded, ()))
    groups.sort(key=lambda group: group[0], reverse=True)

    needed = half_days(need.days or Decimal(1)) if need.window is not None else 0
    oracle = _AvailabilityOracle(need.window) if need.window is not None else None
    ceiling = need.max_day_rate_cents
    top: list[_ReverseKey] = []  # the best `limit` so far, the worst of them first
    for negative_bound, base, distance, cid in _by_bound(index, need, weights, groups):
        if len(top) == need.limit:
            worst_unfit, worst_negative_score = top[0].key[:2]
            if not worst_unfit and round(-negative_bound, 6) < -worst_negative_score:
                break  # bounds only decrease from here: no one left can enter the top
        score, fits = _score_one(index.profiles[cid], base, weights, oracle, needed, ceiling)
        if need.only_fitting and not fits:
            continue
        entry = _ReverseKey((not fits, -round(score, 6), distance, cid))
        if len(top) < need.limit:
            heapq.heappush(top, entry)
        elif top[0] < entry:
            heapq.heapreplace(top, entry)
    ranked = sorted(entry.key for entry in top)
    written = written_forms(need.text) if ranked else {}
    items = [
        _explained(
            index.profiles[cid],
            need,
            vocab=vocab,
            words=index.words[cid],
            asked=asked,
            inferred=inferred,
            need_terms=need_terms,
            written=written,
            text_score=text_scores.get(index.document_of[cid].key, 0.0),
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


def _by_bound(
    index: ConsultantIndex,
    need: Need,
    weights: dict[str, float],
    groups: list[tuple[float, dict[str, set[str]]]],
) -> Iterator[tuple[float, float, float, str]]:
    """(−bound, base, km, id) of the candidates, best possible score first: `groups` are
    (relevance, profiles by home commune), the most relevant first; a group is opened
    once its best (at distance 0) could match the best bound yet to be taken, and gives
    its profiles nearest first. The bound is the base (relevance, proximity) plus the
    most availability and rate could add; the slack keeps it above the exact score
    whatever the float rounding."""
    w_distance = weights.get("distance", 0.0)
    reachable = weights.get("availability", 0.0) + weights.get("rate", 0.0)
    origin = need.origin
    distances = index.distances_from(origin) if origin is not None else {}
    nearest = _nearest_first(index, origin, distances) if origin is not None else None
    excluded = need.exclude_commune

    def members(relevance: float, homes: dict[str, set[str]]):
        if origin is None:
            ordered: Iterable[str] = homes
        elif len(homes) * 8 < len(nearest):
            ordered = sorted(homes, key=lambda home: distances[home][0])
        else:
            ordered = (home for home in nearest if home in homes)
        for home in ordered:
            if home == excluded:
                continue
            distance, base = math.inf, relevance
            if origin is not None:
                distance, near = distances[home]
                base += w_distance * near
            bound = -(base + reachable + 1e-9)
            for cid in homes[home]:
                yield bound, base, distance, cid

    heap: list[tuple[float, int, tuple[float, float, float, str], Iterator]] = []
    opened = 0

    def take(stream: Iterator, order: int) -> None:
        entry = next(stream, None)
        if entry is not None:
            heapq.heappush(heap, (entry[0], order, entry, stream))

    while True:
        while opened < len(groups):
            relevance, homes = groups[opened]
            best = relevance + w_distance * 1.0 if origin is not None else relevance
            if heap and -(best + reachable + 1e-9) > heap[0][0]:
                break  # neither this group nor any after it can beat the best open one
            take(members(relevance, homes), opened)
            opened += 1
        if not heap:
            return
        _, order, entry, stream = heapq.heappop(heap)
        yield entry
        take(stream, order)


def _nearest_first(
    index: ConsultantIndex, origin: tuple[float, float], distances: dict
) -> list[str]:
    """The index's home communes by distance from `origin`, each one's distance known."""
    nearest = index.nearest_first(origin)
    if nearest is None:
        for home, place in index.places.items():
            if home not in distances:
                km = None if place is None else great_circle_km(*origin, *place)
                distances[home] = (math.inf, 0.0) if km is None else (km, proximity(km))
        nearest = sorted(index.places, key=lambda home: (distances[home][0], home))
        index.remember_nearest_first(origin, nearest)
    return nearest


def _score_one(
    profile: Profile,
    base: float,
    weights: dict[str, float],
    oracle: _AvailabilityOracle | None,
    needed: int,
    ceiling: int | None,
) -> tuple[float, bool]:
    score, fits = base, True
    if oracle is not None:
        free = oracle.free(profile)
        fits = free >= needed
        score += weights["availability"] * min(1.0, free / needed)
    if ceiling is not None:
        fits = fits and profile.day_rate_cents <= ceiling
        score += weights["rate"] * rate_score(profile.day_rate_cents, ceiling)
    return score, fits


class _ReverseKey:
    """A ranking key in reverse order, so that heapq's min-heap keeps the worst of the top
    first."""

    __slots__ = ("key",)

    def __init__(self, key: tuple):
        self.key = key

    def __lt__(self, other: _ReverseKey) -> bool:
        return self.key > other.key


def _explained(
    profile: Profile,
    need: Need,
    *,
    vocab: Vocabulary,
    words: frozenset[str],
    asked: list[str],
    inferred: list[str],
    need_terms: list[str],
    written: dict[str, str],
    text_score: float,
    best_text: float,
    distance: float | None,
    oracle: _AvailabilityOracle | None,
    needed: int,
    weights: dict[str, float],
    fits: bool,
    score: float,
) -> Ranked:
    """The ranked item and its explanation. The score shown is the one it was ranked by,
    rounded: summed again from the shown (rounded) components, two scores a hair apart could
    read in the opposite order of their ranks."""
    held = set(profile.skills)
    matched, missing = [], []
    covered = 0.0
    for skill_id in asked:
        if skill_id in held:
            matched.append(SkillMatch(skill=skill_id, via="direct", through=skill_id))
            covered += 1
            continue
        through = sorted(vocab.related.get(skill_id, frozenset()) & held)
        if through:
            matched.append(SkillMatch(skill=skill_id, via="related", through=through[0]))
            covered += RELATED_COVERAGE
        else:
            missing.append(skill_id)
    skills = SkillCoverage(
        asked=asked,
        required=list(need.skills),
        inferred=inferred,
        matched=matched,
        missing=missing,
        coverage=round(covered / len(asked), 4) if asked else None,
    )
    doc_words = words
    text = TextRelevance(
        score=round(text_score / best_text, 4) if best_text > 0 else 0.0,
        bm25=round(text_score, 4),
        matched_terms=[t for t in need_terms if t in doc_words],
        matched_words=list(
            dict.fromkeys(written[t] for t in need_terms if t in doc_words and t in written)
        ),
    )
    components: dict[str, float] = {}
    if "skills" in weights:
        components["skills"] = skills.coverage or 0.0
    if "text" in weights:
        components["text"] = text.score
    if "distance" in weights:
        components["distance"] = round(proximity(distance), 4) if distance is not None else 0.0
    if oracle is not None:
        free = oracle.free(profile)
        availability = AvailabilityFit(
            asked=True,
            start=oracle.window.start,
            end=oracle.window.end - timedelta(days=1),
            working_days=working_days(
                oracle.window.start, oracle.window.end, profile.calendar.subdivision
            ),
            days_needed=as_days(needed),
            available_days=as_days(free),
            fits=free >= needed,
            score=round(min(1.0, free / needed), 4),
        )
        components["availability"] = availability.score or 0.0
    else:
        availability = AvailabilityFit(asked=False)
    ceiling = need.max_day_rate_cents
    rate = RateFit(
        day_rate_cents=profile.day_rate_cents,
        max_day_rate_cents=ceiling,
        within=ceiling is None or profile.day_rate_cents <= ceiling,
        score=None if ceiling is None else round(rate_score(profile.day_rate_cents, ceiling), 4),
    )
    if ceiling is not None:
        components["rate"] = rate.score or 0.0
    explanation = Explanation(
        skills=skills,
        text=text,
        distance_km=None if distance is None else round(distance, 1),
        availability=availability,
        rate=rate,
        components={k: round(v, 4) for k, v in components.items()},
        weights={k: round(v, 4) for k, v in weights.items()},
        summary=summary(skills, text, distance, availability, rate),
    )
    return Ranked(profile, round(min(1.0, score), 4), fits, explanation)


def _euros(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d} €"


def summary(
    skills: SkillCoverage,
    text: TextRelevance,
    distance: float | None,
    availability: AvailabilityFit,
    rate: RateFit,
) -> str:
    """One sentence a person reads: why this consultant is where they are."""
    parts = []
    if skills.asked:
        how = ", ".join(
            m.skill + ("" if m.via == "direct" else f" via {m.through}") for m in skills.matched
        )
        parts.append(
            f"covers {len(skills.matched)} of {len(skills.asked)} skill(s) asked"
            + (f" ({how})" if how else "")
        )
    if text.matched_terms:
        # the words as the person wrote them ('révision'), not the stems ('revis')
        shown = text.matched_words or text.matched_terms
        parts.append(f"text relevance {text.score:.2f} on {', '.join(shown)}")
    if distance is not None:
        parts.append(f"{distance:.1f} km away")
    if availability.asked:
        parts.append(
            f"{availability.available_days} day(s) free of {availability.days_needed} needed"
            + ("" if availability.fits else " (not enough)")
        )
    if rate.max_day_rate_cents is not None:
        parts.append(
            f"{_euros(rate.day_rate_cents)}/day, "
            + ("within" if rate.within else "above")
            + f" the {_euros(rate.max_day_rate_cents)} ceiling"
        )
    else:
        parts.append(f"{_euros(rate.day_rate_cents)}/day")
    text_ = "; ".join(parts)
    return text_[:1].upper() + text_[1:] + "."
