"""What a manager reads of a match: the need an agent's query makes (its period's last day
included, its own commune's staff left out), each candidate's explanation component by
component (skills matched directly, through a related one or missing; text relevance;
distance; free days against those needed; the rate against the ceiling), and the sentence
that sums it up."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from contracts.consultants import (
    AvailabilityFit,
    AvailabilityPeriod,
    MatchQuery,
    RateFit,
    SkillCoverage,
    SkillMatch,
    TextRelevance,
)
from infra.communes import communes
from services.consultants.domain import (
    Calendar,
    Commitment,
    ConsultantIndex,
    Need,
    Period,
    Profile,
    match_consultants,
    need_for,
)
from services.consultants.domain.matching import rate_score, summary

SAINT_ETIENNE = communes().get("42218")
FIRMINY = communes().get("42095")
HERE = (SAINT_ETIENNE.latitude, SAINT_ETIENNE.longitude)
# Monday 2 to Friday 13 March 2026: ten working days
FORTNIGHT = Period(date(2026, 3, 2), date(2026, 3, 14))
NO_TEXT = TextRelevance(score=0.0, bm25=0.0, matched_terms=[])
NOT_ASKED = AvailabilityFit(asked=False)


# -- the need of a query ----------------------------------------------------------------


def test_a_query_makes_a_need_with_its_last_day_included_and_its_commune_left_out():
    query = MatchQuery(
        need="Révision du PLU",
        skills=["PLU", "SCoT"],
        from_=date(2026, 3, 2),
        to=date(2026, 3, 13),
        days=Decimal("2.5"),
        max_day_rate_cents=60000,
        only_fitting=True,
        limit=3,
    )
    assert need_for(query, ["plu", "scot"], HERE, "42218") == Need(
        text="Révision du PLU",
        skills=("plu", "scot"),
        origin=HERE,
        window=FORTNIGHT,
        days=Decimal("2.5"),
        max_day_rate_cents=60000,
        exclude_commune="42218",
        only_fitting=True,
        limit=3,
    )


def test_a_bare_query_asks_no_period_text_or_ceiling():
    assert need_for(MatchQuery(), [], HERE, "42095") == Need(
        text="",
        skills=(),
        origin=HERE,
        window=None,
        days=None,
        max_day_rate_cents=None,
        exclude_commune="42095",
        only_fitting=False,
        limit=10,
    )


def test_a_one_day_period_is_a_window_of_one_day():
    query = MatchQuery(from_=date(2026, 12, 31), to=date(2026, 12, 31))
    need = need_for(query, [], HERE, "42218")
    assert need.window == Period(date(2026, 12, 31), date(2027, 1, 1))


# -- the explanation of each candidate --------------------------------------------------


def candidates() -> ConsultantIndex:
    index = ConsultantIndex()
    index.put(
        Profile(
            "a-firminy",
            "42095",
            FIRMINY.latitude,
            FIRMINY.longitude,
            "Anne",
            "Urbaniste PLU",
            ("plu", "voirie"),
            "révision du plan",
            61234,
            1,
        )
    )
    index.put(Profile("b-chambon", "42044", None, None, "Bruno", "Voirie", ("scot",), "", 60000, 2))
    index.put(
        Profile(
            "c-saint-etienne",
            "42218",
            SAINT_ETIENNE.latitude,
            SAINT_ETIENNE.longitude,
            "Chloé",
            "Diagnostic amiante",
            ("amiante",),
            "révision",
            5,
            10,
        )
    )
    return index


FULL_NEED = Need(
    text="révision du PLU",
    skills=("plu", "scot", "amiante"),
    origin=HERE,
    window=FORTNIGHT,
    days=Decimal("2"),
    max_day_rate_cents=60000,
    limit=5,
)


def two_days_needed(*, of: Decimal) -> dict:
    """The availability of a candidate with enough free days in the fortnight."""
    return {
        "asked": True,
        "start": date(2026, 3, 2),
        "end": date(2026, 3, 13),  # the window's last day, included
        "working_days": 10,
        "days_needed": Decimal("2.0"),
        "available_days": of,
        "fits": True,
        "score": 1.0,
    }


ALL_WEIGHTS = {"availability": 0.1, "distance": 0.15, "rate": 0.05, "skills": 0.4, "text": 0.3}


def test_every_component_of_a_full_need_is_explained_and_weighed():
    result = match_consultants(candidates(), FULL_NEED)
    assert result.need_terms == ["revis", "plu"] and result.inferred_skills == ["plu"]
    assert result.candidates == 3
    near, exact, short = result.items
    assert (near.profile.consultant_id, near.score, near.fits) == ("c-saint-etienne", 0.5279, True)
    assert near.explanation.model_dump() == {
        "skills": {
            "asked": ["plu", "scot", "amiante"],
            "required": ["plu", "scot", "amiante"],
            "inferred": ["plu"],
            "matched": [{"skill": "amiante", "via": "direct", "through": "amiante"}],
            "missing": ["plu", "scot"],
            "coverage": 0.3333,
        },
        "text": {
            "score": 0.3153,
            "bm25": 0.6114,
            "matched_terms": ["revis"],
            "matched_words": ["révision"],  # as written
        },
        "distance_km": 0.0,
        "availability": two_days_needed(of=Decimal("10.0")),
        "rate": {"day_rate_cents": 5, "max_day_rate_cents": 60000, "within": True, "score": 1.0},
        "components": {
            "skills": 0.3333,
            "text": 0.3153,
            "distance": 1.0,
            "availability": 1.0,
            "rate": 1.0,
        },
        "weights": ALL_WEIGHTS,
        "summary": "Covers 1 of 3 skill(s) asked (amiante); text relevance 0.32 on révision; "
        "0.0 km away; 10.0 day(s) free of 2.0 needed; 0.05 €/day, within the 600.00 € ceiling.",
    }

    # at the ceiling is within it, and free days exactly as many as needed fit
    assert (exact.profile.consultant_id, exact.score, exact.fits) == ("b-chambon", 0.3375, True)
    assert exact.explanation.model_dump() == {
        "skills": {
            "asked": ["plu", "scot", "amiante"],
            "required": ["plu", "scot", "amiante"],
            "inferred": ["plu"],
            "matched": [
                {"skill": "plu", "via": "related", "through": "scot"},
                {"skill": "scot", "via": "direct", "through": "scot"},
            ],
            "missing": ["amiante"],
            "coverage": 0.5,
        },
        "text": {"score": 0.0, "bm25": 0.0, "matched_terms": [], "matched_words": []},
        "distance_km": None,
        "availability": two_days_needed(of=Decimal("2.0")),
        "rate": {
            "day_rate_cents": 60000,
            "max_day_rate_cents": 60000,
            "within": True,
            "score": 0.75,
        },
        "components": {
            "skills": 0.5,
            "text": 0.0,
            "distance": 0.0,  # no position: no proximity
            "availability": 1.0,
            "rate": 0.75,
        },
        "weights": ALL_WEIGHTS,
        "summary": "Covers 2 of 3 skill(s) asked (plu via scot, scot); 2.0 day(s) free of 2.0 "
        "needed; 600.00 €/day, within the 600.00 € ceiling.",
    }

    # the best score, but short of days and above the ceiling: ranked after who fits
    assert (short.profile.consultant_id, short.score, short.fits) == ("a-firminy", 0.6593, False)
    why = short.explanation
    assert why.skills.matched == [
        SkillMatch(skill="plu", via="direct", through="plu"),
        SkillMatch(skill="scot", via="related", through="plu"),
    ]
    assert why.text.model_dump() == {
        "score": 1.0,
        "bm25": 1.9389,
        "matched_terms": ["revis", "plu"],
        "matched_words": ["révision", "PLU"],  # as the need wrote them
    }
    assert why.distance_km == 9.3
    assert why.availability.available_days == Decimal("1.0")
    assert not why.availability.fits and why.availability.score == 0.5
    assert why.rate.model_dump() == {
        "day_rate_cents": 61234,
        "max_day_rate_cents": 60000,
        "within": False,
        "score": 0.0,
    }
    assert why.components == {
        "skills": 0.5,
        "text": 1.0,
        "distance": 0.7284,
        "availability": 0.5,
        "rate": 0.0,
    }
    assert why.summary == (
        "Covers 2 of 3 skill(s) asked (plu, scot via plu); text relevance 1.00 on révision, "
        "PLU; 9.3 km away; 1.0 day(s) free of 2.0 needed (not enough); 612.34 €/day, above "
        "the 600.00 € ceiling."
    )


def test_skills_recognised_in_the_text_are_asked_when_none_is_required():
    (item,) = match_consultants(candidates(), Need(text="diagnostic amiante des écoles")).items
    assert (item.profile.consultant_id, item.score, item.fits) == ("c-saint-etienne", 0.4286, True)
    assert item.explanation.model_dump() == {
        "skills": {
            "asked": ["batiment", "education"],
            "required": [],
            "inferred": ["batiment", "education"],
            "matched": [],
            "missing": ["batiment", "education"],
            "coverage": 0.0,
        },
        "text": {
            "score": 1.0,
            "bm25": 3.2071,
            "matched_terms": ["diagnostic", "ami"],
            "matched_words": ["diagnostic", "amiante"],
        },
        "distance_km": None,
        "availability": NOT_ASKED.model_dump(),
        "rate": {"day_rate_cents": 5, "max_day_rate_cents": None, "within": True, "score": None},
        "components": {"skills": 0.0, "text": 1.0},
        "weights": {"skills": 0.5714, "text": 0.4286},
        "summary": "Covers 0 of 2 skill(s) asked; text relevance 1.00 on diagnostic, amiante; "
        "0.05 €/day.",
    }


def test_without_a_skill_asked_or_recognised_coverage_is_not_measured():
    index = candidates()
    result = match_consultants(index, Need(text="révision", origin=HERE, limit=1))
    (item,) = result.items
    assert item.profile.consultant_id == "c-saint-etienne"
    assert item.explanation.skills.model_dump() == {
        "asked": [],
        "required": [],
        "inferred": [],
        "matched": [],
        "missing": [],
        "coverage": None,
    }
    assert item.explanation.weights == {"text": 0.6667, "distance": 0.3333}
    assert item.explanation.components == {"text": 1.0, "distance": 1.0}
    assert item.explanation.summary == ("Text relevance 1.00 on révision; 0.0 km away; 0.05 €/day.")


# -- the sentence -----------------------------------------------------------------------


def coverage(asked: list[str], *matched: SkillMatch) -> SkillCoverage:
    return SkillCoverage(
        asked=asked, required=asked, inferred=[], matched=list(matched), missing=[], coverage=0
    )


def test_the_sentence_of_a_bare_need_names_only_the_rate():
    rate = RateFit(day_rate_cents=45000, max_day_rate_cents=None, within=True, score=None)
    assert summary(coverage([]), NO_TEXT, None, NOT_ASKED, rate) == "450.00 €/day."


def test_the_sentence_starts_with_a_capital_whatever_part_comes_first():
    text = TextRelevance(score=0.456, bm25=2.0, matched_terms=["voir", "eclairag"])
    rate = RateFit(day_rate_cents=100005, max_day_rate_cents=None, within=True, score=None)
    assert summary(coverage([]), text, 12.349, NOT_ASKED, rate) == (
        "Text relevance 0.46 on voir, eclairag; 12.3 km away; 1000.05 €/day."
    )
    assert summary(coverage([]), NO_TEXT, 0.05, NOT_ASKED, rate) == ("0.1 km away; 1000.05 €/day.")


def test_the_sentence_names_skills_matched_and_those_through_a_related_one():
    skills = coverage(
        ["plu", "scot", "amiante"],
        SkillMatch(skill="plu", via="direct", through="plu"),
        SkillMatch(skill="scot", via="related", through="plu"),
    )
    free = AvailabilityFit(asked=True, days_needed=Decimal("3"), available_days=Decimal("2.5"))
    short = free.model_copy(update={"fits": False})
    rate = RateFit(day_rate_cents=99, max_day_rate_cents=100, within=True, score=0.9)
    above = RateFit(day_rate_cents=101, max_day_rate_cents=100, within=False, score=0.0)
    assert summary(skills, NO_TEXT, None, free, rate) == (
        "Covers 2 of 3 skill(s) asked (plu, scot via plu); 2.5 day(s) free of 3 needed; "
        "0.99 €/day, within the 1.00 € ceiling."
    )
    assert summary(coverage(["plu"]), NO_TEXT, None, short, above) == (
        "Covers 0 of 1 skill(s) asked; 2.5 day(s) free of 3 needed (not enough); "
        "1.01 €/day, above the 1.00 € ceiling."
    )


def test_explanations_at_their_edges():
    """Half a position is no position; no free day scores nothing; two free half days of
    three needed are two thirds; without text asked, text relevance is nothing; without days
    asked, one day is needed."""
    away = Calendar.of(
        [AvailabilityPeriod(kind="unavailable", start=date(2026, 3, 1), end=date(2026, 3, 20))]
    )
    index = ConsultantIndex()
    index.put(Profile("half-placed", "42095", 45.38, None, "H", "Urbaniste", ("plu",), "", 500, 1))
    index.put(Profile("away", "42044", None, None, "A", "Urbaniste", ("plu",), "", 500, 10, away))
    need = Need(skills=("plu",), origin=HERE, window=FORTNIGHT, days=Decimal("1.5"))
    items = {r.profile.consultant_id: r for r in match_consultants(index, need).items}
    half = items["half-placed"].explanation
    assert half.distance_km is None
    assert half.text.model_dump() == {
        "score": 0.0,
        "bm25": 0.0,
        "matched_terms": [],
        "matched_words": [],
    }
    assert (half.availability.available_days, half.availability.score) == (Decimal("1.0"), 0.6667)
    assert half.components == {"skills": 1.0, "distance": 0.0, "availability": 0.6667}
    # skills 8/13 + availability 2/13 × 2/3 = 28/39, rounded as ranked (not 0.718, what the
    # rounded 0.6667 would add up to)
    assert items["half-placed"].score == 0.7179 and not items["half-placed"].fits
    gone = items["away"].explanation
    assert (gone.availability.available_days, gone.availability.score) == (Decimal("0.0"), 0.0)
    assert gone.components == {"skills": 1.0, "distance": 0.0, "availability": 0.0}
    assert items["away"].score == 0.6154

    one_day = match_consultants(index, Need(skills=("plu",), window=FORTNIGHT)).items
    assert [(r.profile.consultant_id, r.fits) for r in one_day] == [
        ("half-placed", True),
        ("away", False),
    ]
    assert {r.explanation.availability.days_needed for r in one_day} == {Decimal("1.0")}


def test_a_free_consultant_is_within_a_zero_ceiling():
    assert rate_score(0, 0) == 1.0
    assert rate_score(1, 0) == 0.0


def test_days_an_engagement_holds_in_the_window_are_not_free():
    held = Commitment("e1", date(2026, 3, 2), date(2026, 3, 14), 18)  # 9 days of 10
    index = ConsultantIndex()
    index.put(Profile("free", "42044", None, None, "F", "Voirie", ("voirie",), "", 500, 10))
    index.put(replace(index.profiles["free"], consultant_id="engaged", commitments=(held,)))
    need = Need(skills=("voirie",), window=FORTNIGHT, days=Decimal("2"))
    free = {
        r.profile.consultant_id: (r.explanation.availability.available_days, r.fits)
        for r in match_consultants(index, need).items
    }
    assert free == {"free": (Decimal("10.0"), True), "engaged": (Decimal("1.0"), False)}
