"""Consultant rules: skills, French text analysis, working calendars and commitments,
explainable matching and the engagement state machine. Pure, no I/O."""

from __future__ import annotations

import difflib
import heapq
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from itertools import pairwise

from contracts.caller import Caller, Role
from contracts.consultants import (
    AvailabilityFit,
    AvailabilityKind,
    AvailabilityPeriod,
    ConsultantChanges,
    ConsultantTerms,
    EngagementStatus,
    Explanation,
    RateFit,
    SkillCoverage,
    SkillMatch,
    TextRelevance,
)
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound, validated
from contracts.errors import field_error as _error
from infra.communes import fold, great_circle_km
from services.consultants.skills import SKILLS, Skill

HALF = Decimal("0.5")


def half_days(days: Decimal) -> int:
    """Days are stored and summed as whole half days: exact on every database."""
    return int(days / HALF)


def as_days(half_day_count: int) -> Decimal:
    return (HALF * half_day_count).quantize(Decimal("0.1"))


def amount_cents(days: Decimal, day_rate_cents: int) -> int:
    """Days × day rate, rounded half up to the cent."""
    return int((days * day_rate_cents).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- French text analysis ---------------------------------------------------------------

_STOP_WORDS = """
    a au aux avec ce ces cet cette c d de des du elle elles en et eux il ils j je l la le
    les leur leurs lui m ma mais me meme mes moi mon n ne nos notre nous on ou par pas pour
    qu que qui s sa se ses son sur t ta te tes toi ton tu un une vos votre vous y est sont
    etre avoir ete fait faire plus tres tout tous toute toutes autre autres ainsi afin entre
    chez vers sous depuis pendant selon comme dont si sans aussi deja bien peu car donc or ni
    cela ceci celui celle ceux celles quel quelle quels quelles contre avant apres lors
    durant puis ensuite encore chaque
    besoin besoins cherche cherchons recherchons souhaite souhaitons voudrions
    urgent urgence svp merci"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
# plurals and forms a suffix rule would get wrong
IRREGULAR = {"travaux": "travail", "yeux": "oeil", "cieux": "ciel"}


def stem(word: str) -> str:
    """A light French stemmer (after Savoy's): plurals, feminine and the commonest
    derivational endings, so that 'marchés publics' and 'marché public', 'urbaniste' and
    'urbanisme', 'animateur' and 'animation' meet. Expects folded, lower-case words."""
    if word in IRREGULAR:
        return IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("eaux"):
        word = word[:-1]
    elif word.endswith("aux") and len(word) > 4:
        word = word[:-3] + "al"
    elif word[-1] in "sx" and not word.endswith("ss"):
        word = word[:-1]
    for suffix, replacement, keep in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            word = word[: len(word) - len(suffix)] + replacement
            break
    for _ in range(2):  # chargée -> chargee -> charge -> charg
        if len(word) > 4 and word.endswith("e"):
            word = word[:-1]
    if len(word) > 5 and word.endswith("er"):
        word = word[:-2]
    if len(word) > 4 and word[-1] == word[-2] and word[-1].isalpha():
        word = word[:-1]  # culturell -> culturel
    return word


# (ending, replacement, shortest stem kept): the first that applies wins
_SUFFIXES: tuple[tuple[str, str, int], ...] = (
    ("issement", "", 4),
    ("ement", "", 4),
    ("atrice", "", 4),
    ("ateur", "", 4),
    ("ation", "", 4),
    ("ition", "", 4),
    ("ienne", "ien", 3),
    ("ique", "ic", 3),
    ("isme", "", 4),
    ("iste", "", 4),
    ("euse", "", 4),
    ("eur", "", 4),
    ("ive", "if", 3),
    ("ere", "er", 3),
    ("ie", "", 4),
)


def tokens(text: str) -> list[str]:
    """Folded (accents, case, ligatures, punctuation), stop words out, stemmed."""
    return [stem(word) for word in fold(text).split() if word not in STOP_WORDS]


# -- the skills vocabulary --------------------------------------------------------------


class Vocabulary:
    """Skills by id, their related skills (both ways) and the phrases that name them."""

    def __init__(self, skills: Iterable[Skill] = SKILLS):
        self.skills: dict[str, Skill] = {s.id: s for s in skills}
        related: dict[str, set[str]] = {sid: set() for sid in self.skills}
        for skill in self.skills.values():
            for other in skill.related:
                if other not in self.skills:
                    raise ValueError(f"skill {skill.id} is related to unknown {other}")
                if other != skill.id:
                    related[skill.id].add(other)
                    related[other].add(skill.id)
        self.related = {sid: frozenset(r) for sid, r in related.items()}
        # what a manager may type for a skill: its id, label or any synonym
        self._names: dict[str, set[str]] = {}
        # the analysed phrases that name each skill, for recognising skills in a need
        self._phrases: dict[tuple[str, ...], set[str]] = {}
        for skill in self.skills.values():
            for name in (skill.id.replace("-", " "), skill.label, *skill.synonyms):
                self._names.setdefault(fold(name), set()).add(skill.id)
                phrase = tuple(tokens(name))
                if phrase:
                    self._phrases.setdefault(phrase, set()).add(skill.id)
        self._longest = max(len(p) for p in self._phrases)
        self.terms: dict[str, tuple[list[str], list[str]]] = {
            s.id: (tokens(s.label), [t for syn in s.synonyms for t in tokens(syn)])
            for s in self.skills.values()
        }

    def label(self, skill_id: str) -> str:
        skill = self.skills.get(skill_id)
        return skill.label if skill else skill_id

    def resolve(self, names: Sequence[str], field: str = "skills") -> list[str]:
        """Skill ids for what a manager typed; unknown names are refused (422) with the
        closest known skills."""
        found: list[str] = []
        errors = []
        for position, name in enumerate(names):
            ids = {name} if name in self.skills else self._names.get(fold(name), set())
            if len(ids) == 1:
                (skill_id,) = ids
                if skill_id not in found:
                    found.append(skill_id)
                continue
            close = sorted(ids) if ids else self.suggestions(name)
            listed = ", ".join(f"{c} ({self.label(c)})" for c in close) or "none"
            problem = "ambiguous" if ids else "unknown"
            errors.append(
                _error(
                    f"{field}.{position}",
                    f"{problem} skill {name!r}; close known skills: {listed}",
                    f"{problem}_skill",
                    suggestions=[{"id": c, "label": self.label(c)} for c in close],
                )
            )
        if errors:
            raise InvalidInput("Unknown skills: see GET /api/v1/consultants/skills", errors)
        return found

    def suggestions(self, name: str, limit: int = 5) -> list[str]:
        """The known skills closest to `name`: by spelling, then by shared words."""
        folded, words = fold(name), set(tokens(name))
        best: dict[str, float] = {}
        for known, ids in self._names.items():
            ratio = difflib.SequenceMatcher(None, folded, known).ratio()
            shared = len(words & set(tokens(known))) / max(len(words), 1)
            closeness = max(ratio, 0.5 + shared / 2 if shared else 0.0)
            for skill_id in ids:
                best[skill_id] = max(best.get(skill_id, 0.0), closeness)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
        return [sid for sid, closeness in ranked[:limit] if closeness >= 0.6]

    def recognise(self, words: Sequence[str]) -> list[str]:
        """Skills named in an analysed text, longest phrase first: 'plan local
        d'urbanisme' is the PLU, not also 'urbanisme'."""
        found: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(self._longest, len(words) - i), 0, -1):
                ids = self._phrases.get(tuple(words[i : i + n]))
                if ids:
                    found.extend(sorted(s for s in ids if s not in found))
                    i += n
                    break
            else:
                i += 1
        return found


@cache
def vocabulary() -> Vocabulary:
    """The vocabulary shipped with the service (skills.py), built once per process."""
    return Vocabulary()


# -- working days and calendars ---------------------------------------------------------


def easter(year: int) -> date:
    """Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return date(year, month, day)


@cache
def public_holidays(year: int) -> tuple[date, ...]:
    """Public holidays of metropolitan France, sorted."""
    sunday = easter(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    days = [date(year, m, d) for m, d in fixed]
    days += [sunday + timedelta(days=n) for n in (1, 39, 50)]  # Monday, Ascension, Whit Monday
    return tuple(sorted(days))


def working_days(start: date, end: date) -> int:
    """Mondays to Fridays of [start, end) that are not public holidays."""
    if end <= start:
        return 0
    total = (end - start).days
    weeks, rest = divmod(total, 7)
    count = weeks * 5 + sum(1 for n in range(rest) if (start.weekday() + n) % 7 < 5)
    for year in range(start.year, end.year + 1):
        count -= sum(1 for h in public_holidays(year) if start <= h < end and h.weekday() < 5)
    return count


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in public_holidays(day.year)


@dataclass(frozen=True)
class Period:
    """Half-open [start, end) of days."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a period ends after it starts")


def merge(periods: Iterable[Period]) -> tuple[Period, ...]:
    merged: list[Period] = []
    for p in sorted(periods, key=lambda p: (p.start, p.end)):
        if merged and p.start <= merged[-1].end:
            merged[-1] = Period(merged[-1].start, max(merged[-1].end, p.end))
        else:
            merged.append(p)
    return tuple(merged)


@dataclass(frozen=True)
class Calendar:
    """When a consultant may be lent: inside the `available` periods if there are any, on
    every working day otherwise; never inside an `unavailable` one."""

    available: tuple[Period, ...] = ()
    unavailable: tuple[Period, ...] = ()

    @classmethod
    def of(cls, periods: Iterable[AvailabilityPeriod]) -> Calendar:
        periods = list(periods)
        return cls(
            available=merge(
                Period(p.start, p.end) for p in periods if p.kind == AvailabilityKind.AVAILABLE
            ),
            unavailable=merge(
                Period(p.start, p.end) for p in periods if p.kind == AvailabilityKind.UNAVAILABLE
            ),
        )

    @property
    def constrained(self) -> bool:
        return bool(self.available or self.unavailable)

    def open_periods(self, start: date, end: date) -> list[Period]:
        """The parts of [start, end) where the consultant may be lent."""
        if not self.available:
            open_ = [Period(start, end)] if start < end else []
        else:
            open_ = [
                Period(max(a.start, start), min(a.end, end))
                for a in self.available
                if a.start < end and a.end > start
            ]
        for u in self.unavailable:
            if u.end <= start or u.start >= end:
                continue
            rest = []
            for o in open_:
                if u.end <= o.start or u.start >= o.end:
                    rest.append(o)
                    continue
                if o.start < u.start:
                    rest.append(Period(o.start, u.start))
                if u.end < o.end:
                    rest.append(Period(u.end, o.end))
            open_ = rest
        return open_

    def open_days(self, start: date, end: date) -> int:
        """Working days of [start, end) on which the consultant may be lent."""
        if not self.constrained:
            return working_days(start, end)
        return sum(working_days(p.start, p.end) for p in self.open_periods(start, end))


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def months(start: date, end: date) -> list[Period]:
    """[start, end) cut at month boundaries."""
    parts, cursor = [], start
    while cursor < end:
        boundary = min(next_month(cursor), end)
        parts.append(Period(cursor, boundary))
        cursor = boundary
    return parts


# -- commitments: days reserved by accepted engagements ---------------------------------


@dataclass(frozen=True)
class Commitment:
    """Days an engagement holds somewhere in its period, in half days."""

    engagement_id: str
    start: date
    end: date
    half_days: int


class _FlowNetwork:
    """Max flow by shortest augmenting paths (Edmonds-Karp); small graphs only."""

    def __init__(self) -> None:
        self.capacity: list[dict[int, int]] = []

    def node(self) -> int:
        self.capacity.append({})
        return len(self.capacity) - 1

    def edge(self, a: int, b: int, capacity: int) -> None:
        self.capacity[a][b] = self.capacity[a].get(b, 0) + capacity
        self.capacity[b].setdefault(a, 0)

    def augment(self, source: int, sink: int) -> int:
        """Pushes as much more flow as the residual network allows; returns how much."""
        pushed = 0
        while True:
            parent = {source: source}
            queue = deque([source])
            while queue and sink not in parent:
                a = queue.popleft()
                for b, residual in self.capacity[a].items():
                    if residual > 0 and b not in parent:
                        parent[b] = a
                        queue.append(b)
            if sink not in parent:
                return pushed
            b = parent[sink]
            bottleneck = self.capacity[b][sink]
            while b != source:
                bottleneck = min(bottleneck, self.capacity[parent[b]][b])
                b = parent[b]
            b = sink
            while b != source:
                a = parent[b]
                self.capacity[a][b] -= bottleneck
                self.capacity[b][a] += bottleneck
                b = a
            pushed += bottleneck


def entangled(commitments: Iterable[Commitment], span: Period) -> list[Commitment]:
    """The commitments that can weigh on days of `span`: those sharing a month with it, or
    (through a chain of shared months) with one that does. Days and monthly maxima are
    only shared within a month, so the others cannot change what fits in `span`."""
    pending = sorted(commitments, key=lambda c: (c.start, c.engagement_id))
    low, high = month_start(span.start), span.end
    kept: list[Commitment] = []
    grew = True
    while grew:
        grew = False
        for c in pending:
            if c in kept or c.half_days <= 0:
                continue
            if month_start(c.start) < high and c.end > low:
                kept.append(c)
                low, high = min(low, month_start(c.start)), max(high, next_month_end(c.end))
                grew = True
    return sorted(kept, key=lambda c: (c.start, c.engagement_id))


def next_month_end(end: date) -> date:
    """The first day after the month holding the last day of a half-open period ending at
    `end`: its month span's end."""
    return next_month(end - timedelta(days=1))


def free_half_days(
    calendar: Calendar,
    max_days_per_month: int,
    commitments: Sequence[Commitment],
    window: Period | None = None,
) -> tuple[bool, int]:
    """Whether the commitments fit the calendar and the monthly maximum together, and how
    many more half days fit inside `window` on top of them.

    Each commitment's half days must be laid on open working days of its period, at most
    two half days a day and 2 × max_days_per_month a month: a flow from commitments through
    runs of days (cut where a period or a month starts or ends) to months. The commitments
    fit when the max flow carries all their half days; the window's share is what a last
    commitment over the window can add once they are placed (augmenting paths never take
    flow back from the source, so placed half days stay placed)."""
    spans = [Period(c.start, c.end) for c in commitments if c.half_days > 0]
    if window is not None:
        spans.append(window)
    if not spans:
        return True, 0
    first, last = min(p.start for p in spans), max(p.end for p in spans)
    cuts = {first, last} | {p.start for p in spans} | {p.end for p in spans}
    cuts |= {m.end for m in months(first, last)}
    edges = sorted(cuts)
    net = _FlowNetwork()
    source, sink = net.node(), net.node()
    month_nodes: dict[date, int] = {}
    runs: list[tuple[Period, int]] = []
    for a, b in pairwise(edges):
        capacity = 2 * calendar.open_days(a, b)
        if capacity == 0:
            continue
        m = month_start(a)
        if m not in month_nodes:
            month_nodes[m] = net.node()
            net.edge(month_nodes[m], sink, 2 * max_days_per_month)
        run = net.node()
        net.edge(run, month_nodes[m], capacity)
        runs.append((Period(a, b), run))

    def demand(span: Period, half_day_count: int) -> int:
        node = net.node()
        net.edge(source, node, half_day_count)
        for run_period, run in runs:
            if run_period.start >= span.start and run_period.end <= span.end:
                net.edge(node, run, 2 * (run_period.end - run_period.start).days)
        return node

    needed = 0
    for c in commitments:
        if c.half_days > 0:
            demand(Period(c.start, c.end), c.half_days)
            needed += c.half_days
    fits = net.augment(source, sink) == needed
    if window is None:
        return fits, 0
    demand(window, 2 * (window.end - window.start).days)
    return fits, net.augment(source, sink)


def commitments_fit(
    calendar: Calendar, max_days_per_month: int, commitments: Sequence[Commitment]
) -> bool:
    return free_half_days(calendar, max_days_per_month, commitments)[0]


# -- profiles and the matching index ----------------------------------------------------


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
    calendar: Calendar = Calendar()
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


# -- matching ---------------------------------------------------------------------------

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
        parts = months(window.start, window.end)
        self.month_parts = [(m, working_days(m.start, m.end)) for m in parts]
        self._plain: dict[int, int] = {}
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
            if cap not in self._plain:
                self._plain[cap] = sum(min(2 * wd, cap) for _, wd in self.month_parts)
            return self._plain[cap]
        return sum(
            min(2 * profile.calendar.open_days(m.start, m.end), cap) for m, _ in self.month_parts
        )


def match_consultants(index: ConsultantIndex, need: Need) -> MatchResult:
    """Ranks the index's profiles for a need: fitting candidates first (available for the
    days needed, within the rate ceiling), then by score, nearer, then by id. Each comes
    with the explanation of its score.

    Relevance (skills, text) and distance are scored for every candidate; availability
    and rate, the dear part, only for as many as can still enter the top: candidates are
    taken by their best possible score and the scan stops once `limit` fitting ones beat
    the best any other could reach (Fagin's threshold algorithm)."""
    vocab = index.vocabulary
    words = tokens(need.text)
    need_terms = list(dict.fromkeys(words))
    inferred = vocab.recognise(words)
    asked = list(need.skills) or inferred
    text_scores = index.bm25(need_terms)

    coverage: dict[str, float] = {}
    for skill_id in asked:
        direct = index.by_skill.get(skill_id, set())
        for cid in direct:
            coverage[cid] = coverage.get(cid, 0.0) + 1.0
        near_miss: set[str] = set()
        for related in vocab.related.get(skill_id, ()):
            near_miss |= index.by_skill.get(related, set())
        for cid in near_miss - direct:
            coverage[cid] = coverage.get(cid, 0.0) + RELATED_COVERAGE

    best_text = max(text_scores.values(), default=0.0)
    if need_terms or asked:
        # a word shared with thousands of profiles ('plan', 'gestion') is no relevance
        floor = TEXT_FLOOR * best_text
        pool: Iterable[str] = {c for c, s in text_scores.items() if s >= floor} | coverage.keys()
    else:
        pool = index.profiles.keys()
    applies = {
        "skills": bool(asked),
        "text": best_text > 0,
        "distance": need.origin is not None,
        "availability": need.window is not None,
        "rate": need.max_day_rate_cents is not None,
    }
    total_weight = sum(w for name, w in WEIGHTS.items() if applies[name])
    weights = (
        {n: w / total_weight for n, w in WEIGHTS.items() if applies[n]} if total_weight else {}
    )
    distances = index.distances_from(need.origin) if need.origin is not None else {}

    # cheap part: relevance and distance, and the most availability and rate could add
    w_skills, w_text = weights.get("skills", 0.0), weights.get("text", 0.0)
    w_distance = weights.get("distance", 0.0)
    reachable = weights.get("availability", 0.0) + weights.get("rate", 0.0)
    bounded = []
    for cid in pool:
        profile = index.profiles[cid]
        if profile.home_commune == need.exclude_commune:
            continue
        base = 0.0
        if asked:
            base += w_skills * coverage.get(cid, 0.0) / len(asked)
        if best_text > 0:
            base += w_text * text_scores.get(cid, 0.0) / best_text
        distance, near = math.inf, 0.0
        if need.origin is not None:
            home = profile.home_commune
            if home not in distances:
                km = _distance(need.origin, profile)
                distances[home] = (math.inf, 0.0) if km is None else (km, proximity(km))
            distance, near = distances[home]
            base += w_distance * near
        # the slack keeps the bound above the exact score whatever the float rounding
        bounded.append((-(base + reachable + 1e-9), base, distance, cid))
    bounded.sort()

    # dear part, in order of best possible score, until nothing left can enter the top
    needed = half_days(need.days or Decimal(1)) if need.window is not None else 0
    oracle = _AvailabilityOracle(need.window) if need.window is not None else None
    ceiling = need.max_day_rate_cents
    top: list[_ReverseKey] = []  # the best `limit` so far, the worst of them first
    for negative_bound, base, distance, cid in bounded:
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
    items = [
        _explained(
            index.profiles[cid],
            need,
            vocab=vocab,
            words=index.words[cid],
            asked=asked,
            inferred=inferred,
            need_terms=need_terms,
            text_score=text_scores.get(cid, 0.0),
            best_text=best_text,
            distance=None if math.isinf(distance) else distance,
            oracle=oracle,
            needed=needed,
            weights=weights,
            fits=not unfit,
        )
        for unfit, _, distance, cid in ranked
    ]
    return MatchResult(items, len(bounded), need_terms, inferred)


def _distance(origin: tuple[float, float], profile: Profile) -> float | None:
    if profile.latitude is None or profile.longitude is None:
        return None
    return great_circle_km(*origin, profile.latitude, profile.longitude)


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
    text_score: float,
    best_text: float,
    distance: float | None,
    oracle: _AvailabilityOracle | None,
    needed: int,
    weights: dict[str, float],
    fits: bool,
) -> Ranked:
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
            working_days=working_days(oracle.window.start, oracle.window.end),
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
    score = sum(weights[name] * value for name, value in components.items())
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
        parts.append(f"text relevance {text.score:.2f} on {', '.join(text.matched_terms)}")
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


# -- profiles: who may change them ------------------------------------------------------


def ensure_manager_of(caller: Caller, home_commune: str) -> None:
    """Only a manager of the consultant's home commune publishes or changes the profile."""
    if not caller.has(Role.MANAGER):
        raise Forbidden("Only a manager may publish or change consultants")
    if caller.commune != home_commune:
        raise Forbidden("This consultant belongs to another commune")


def amended(current: ConsultantTerms, changes: ConsultantChanges) -> ConsultantTerms:
    """The terms after an edit, validated as a whole."""
    merged = current.model_dump() | changes.model_dump(exclude_unset=True)
    return validated(ConsultantTerms, merged)


# -- engagements ------------------------------------------------------------------------

E = EngagementStatus
TRANSITIONS: dict[str, tuple[frozenset[EngagementStatus], EngagementStatus]] = {
    "accept": (frozenset({E.REQUESTED}), E.ACCEPTED),
    "reject": (frozenset({E.REQUESTED}), E.REJECTED),
    "cancel": (frozenset({E.REQUESTED, E.ACCEPTED}), E.CANCELLED),
    "complete": (frozenset({E.ACCEPTED}), E.COMPLETED),
}
# statuses whose days are held in the consultant's calendar
RESERVING = (E.ACCEPTED, E.COMPLETED)
LENDER_MANAGER_ACTIONS = {"accept", "reject"}
LENDER_ACTIONS = {"record_timesheet"}
BORROWER_ACTIONS = {"approve_timesheet"}


def next_status(current: EngagementStatus, action: str) -> EngagementStatus:
    allowed, target = TRANSITIONS[action]
    if current not in allowed:
        raise Conflict(f"A {current.value} engagement cannot {action}", current_status=current)
    return target


def ensure_party(caller: Caller, borrower: str, lender: str) -> None:
    """Only the two communes concerned see an engagement: to others it does not exist."""
    if caller.commune not in (borrower, lender) and not caller.has(Role.OPERATOR):
        raise NotFound("No such engagement")


def ensure_may(caller: Caller, action: str, borrower: str, lender: str) -> None:
    ensure_party(caller, borrower, lender)
    if action in LENDER_MANAGER_ACTIONS:
        if caller.commune != lender or not caller.has(Role.MANAGER):
            raise Forbidden("Only a manager of the consultant's commune may do this")
        return
    if not caller.has(Role.AGENT, Role.MANAGER):
        raise Forbidden("Only an agent or a manager may do this")
    if action in LENDER_ACTIONS and caller.commune != lender:
        raise Forbidden("Only the consultant's commune records the days worked")
    if action in BORROWER_ACTIONS and caller.commune != borrower:
        raise Forbidden("Only the commune that engaged the consultant approves the days")
    if caller.commune not in (borrower, lender):
        raise Forbidden("Only the two communes concerned may do this")


def check_request(
    *,
    published: bool,
    home_commune: str,
    borrower: str,
    start: date,
    end: date,
    days: Decimal,
    calendar: Calendar,
    today: date,
) -> None:
    """An engagement request's own rules; every broken one is reported at once (422)."""
    errors = []
    if not published:
        errors.append(_error("consultant_id", "this consultant is withdrawn", "withdrawn"))
    if home_commune == borrower:
        errors.append(
            _error("consultant_id", "a commune does not engage its own staff", "own_consultant")
        )
    if start < today:
        errors.append(_error("start", "is in the past", "in_the_past"))
    open_days = calendar.open_days(start, end)
    if days > open_days:
        errors.append(
            _error(
                "days",
                f"the consultant has {open_days} working day(s) open in this period",
                "beyond_period",
            )
        )
    if errors:
        raise InvalidInput("The request breaks the engagement rules", errors)


def check_cancellable(start: date, today: date) -> None:
    if today >= start:
        raise Conflict("An engagement can only be cancelled before it starts")


def check_timesheet(
    *,
    status: EngagementStatus,
    start: date,
    end: date,
    days_total: Decimal,
    days_recorded: Decimal,
    work_date: date,
    days: Decimal,
    today: date,
) -> None:
    """Days worked: during an accepted engagement, within its period, not in the future,
    never beyond the engagement's days."""
    if status != E.ACCEPTED:
        raise Conflict(f"Days are recorded on accepted engagements, not {status.value} ones")
    errors = []
    if not start <= work_date < end:
        errors.append(_error("date", "must be within the engagement's period", "out_of_period"))
    elif work_date > today:
        errors.append(_error("date", "is in the future", "in_the_future"))
    left = days_total - days_recorded
    if days > left:
        errors.append(
            _error("days", f"only {left} day(s) of the engagement are left", "beyond_engagement")
        )
    if errors:
        raise InvalidInput("The timesheet breaks the engagement's terms", errors)
