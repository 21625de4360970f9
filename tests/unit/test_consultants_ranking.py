"""Ranking consultants, against its own definition: the threshold algorithm's top `limit`
is the first `limit` of every candidate scored, and each score is the weighted sum of the
components its explanation shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.consultants.domain import matching
from services.consultants.domain.commitments import Commitment
from services.consultants.domain.index import ConsultantIndex, Profile
from services.consultants.domain.working_days import Period
from services.consultants.skills import SKILLS

SKILL_IDS = [s.id for s in SKILLS[:8]]
WORDS = ["urbanisme", "voirie", "marchés", "publics", "amiante", "paie", "archives", "eau"]
PLACES = [(45.43, 4.39), (45.75, 4.85), (45.20, 5.70), None]

profiles = st.lists(
    st.builds(
        lambda n, skills, words, place, rate, maximum, held: Profile(
            consultant_id=f"c{n:02d}",
            home_commune=f"42{n:03d}",
            latitude=place[0] if place else None,
            longitude=place[1] if place else None,
            name=f"c{n}",
            title=" ".join(words[:2]),
            skills=tuple(skills),
            bio=" ".join(words[2:]),
            day_rate_cents=rate,
            max_days_per_month=maximum,
            commitments=tuple(
                Commitment(f"e{n}", date(2026, 3, 2), date(2026, 3, 14), held) for _ in [1] if held
            ),
        ),
        st.integers(0, 99),
        st.lists(st.sampled_from(SKILL_IDS), max_size=3, unique=True),
        st.lists(st.sampled_from(WORDS), max_size=5),
        st.sampled_from(PLACES),
        st.integers(20000, 80000),
        st.integers(1, 10),
        st.integers(0, 8),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda p: p.consultant_id,
)
needs = st.builds(
    matching.Need,
    text=st.lists(st.sampled_from(WORDS), max_size=3).map(" ".join),
    skills=st.lists(st.sampled_from(SKILL_IDS), max_size=2, unique=True).map(tuple),
    origin=st.sampled_from(PLACES),
    window=st.sampled_from([None, Period(date(2026, 3, 2), date(2026, 3, 16))]),
    days=st.sampled_from([None, Decimal("1"), Decimal("4.5")]),
    max_day_rate_cents=st.sampled_from([None, 30000, 60000]),
    exclude_commune=st.sampled_from([None, "42001"]),
    only_fitting=st.booleans(),
    limit=st.integers(1, 4),
)


def ranking(result: matching.MatchResult) -> list[tuple[str, float, bool]]:
    return [(r.profile.consultant_id, r.score, r.fits) for r in result.items]


def ranked_as_explained(index: ConsultantIndex, need: matching.Need) -> None:
    """The top is the first of every candidate ranked; who fits comes first, then the
    higher score; the score and whether one fits are those the explanation shows."""
    top = matching.match_consultants(index, need)
    everyone = matching.match_consultants(index, replace(need, limit=100))
    assert ranking(top) == ranking(everyone)[: need.limit]
    assert top.candidates == everyone.candidates
    keys = [(not item.fits, -item.score) for item in everyone.items]
    assert keys == sorted(keys)
    for item in everyone.items:
        explanation = item.explanation
        weighted = sum(explanation.weights[k] * v for k, v in explanation.components.items())
        assert abs(item.score - min(1.0, weighted)) < 1e-3
        if explanation.weights:
            assert abs(sum(explanation.weights.values()) - 1.0) < 1e-3
        assert item.fits == (explanation.availability.fits and explanation.rate.within)
        assert item.profile.home_commune != need.exclude_commune
        assert item.fits or not need.only_fitting


@settings(deadline=None)
@given(profiles, needs)
def test_the_top_is_the_first_of_every_candidate_ranked(given_profiles, need):
    index = ConsultantIndex()
    for p in given_profiles:
        index.put(p)
    ranked_as_explained(index, need)


def test_the_summary_says_why_in_one_sentence():
    index = ConsultantIndex()
    skill = SKILL_IDS[0]
    index.put(Profile("c1", "42218", 45.43, 4.39, "Claire", "voirie", (skill,), "", 45050, 10))
    need = matching.Need(
        text="voirie",
        skills=(skill,),
        origin=(45.43, 4.39),
        window=Period(date(2026, 3, 2), date(2026, 3, 7)),
        days=Decimal("2"),
        max_day_rate_cents=40000,
    )
    (item,) = matching.match_consultants(index, need).items
    assert item.explanation.summary == (
        f"Covers 1 of 1 skill(s) asked ({skill}); text relevance 1.00 on voirie; 0.0 km away; "
        "5.0 day(s) free of 2.0 needed; 450.50 €/day, above the 400.00 € ceiling."
    )
    assert not item.fits
    assert matching.rate_score(40000, 40000) == 0.75 and matching.rate_score(40001, 40000) == 0
    assert matching.proximity(25.0) == 0.5
    assert date(2026, 3, 2) + timedelta(days=4) == item.explanation.availability.end


# -- the same, on a fixed grid of needs -------------------------------------------------

SAINT_ETIENNE, FIRMINY, LYON = (45.43389, 4.39), (45.38732, 4.29074), (45.758, 4.835)


def grid_profiles() -> list[Profile]:
    def one(cid, place, title, skills, bio="", rate=50000, maximum=10, held=0):
        return Profile(
            consultant_id=cid,
            home_commune=f"42{len(cid):03d}{cid[-1]}",
            latitude=place[0] if place else None,
            longitude=place[1] if place else None,
            name=cid,
            title=title,
            skills=skills,
            bio=bio,
            day_rate_cents=rate,
            max_days_per_month=maximum,
            commitments=(Commitment(f"e-{cid}", date(2026, 3, 2), date(2026, 3, 14), held),)
            if held
            else (),
        )

    return [
        one("both-far", LYON, "Urbaniste", ("plu", "voirie"), rate=70000),
        one("plu-near", SAINT_ETIENNE, "Chargée de mission", ("plu",), "révision", 30000),
        one("scot-text", FIRMINY, "Révision du PLU", ("scot",), "plan local", 52000, 2),
        one("voirie-held", FIRMINY, "Voirie", ("voirie",), "chaussées", 40000, 10, 18),
        one("nowhere", None, "Urbanisme et voirie", ("urbanisme",), "PLU", 20000, 1),
        one("text-only", SAINT_ETIENNE, "Révision générale", (), "plan local d'urbanisme"),
        one("cheap-far", LYON, "Voirie", ("voirie",), "", 10000, 3),
    ]


GRID = [
    matching.Need(
        text=text,
        skills=skills,
        origin=origin,
        window=window,
        days=days,
        max_day_rate_cents=ceiling,
        limit=2,
    )
    for text in ("", "révision du PLU", "voirie")
    for skills in ((), ("plu",), ("plu", "voirie"))
    for origin in (None, SAINT_ETIENNE)
    for window, days in (
        (None, None),
        (Period(date(2026, 3, 2), date(2026, 3, 14)), None),
        (Period(date(2026, 3, 2), date(2026, 3, 14)), Decimal("3")),
    )
    for ceiling in (None, 55000)
]


def test_on_a_grid_of_needs_the_ranking_follows_the_explained_scores():
    index = ConsultantIndex()
    for p in grid_profiles():
        index.put(p)
    for need in GRID:
        ranked_as_explained(index, need)


def test_a_consultant_of_alsace_moselle_is_free_on_their_own_working_days():
    """April 2026: 21 working days in France (Easter Monday), 20 in Moselle (Good Friday
    too). Matching counted the national ones for everybody, then the request was refused."""
    from services.consultants.domain.matching import _AvailabilityOracle
    from services.consultants.domain.working_days import Calendar, Period

    april = Period(date(2026, 4, 1), date(2026, 5, 1))
    oracle = _AvailabilityOracle(april)

    def consultant(cid: str, home: str) -> Profile:
        calendar = Calendar.of([], home_commune=home)
        return Profile(cid, home, None, None, cid, "urbaniste", (), "", 40000, 23, calendar)

    assert oracle.free(consultant("metz", "57463")) == 2 * 20
    assert oracle.free(consultant("firminy", "42095")) == 2 * 21
