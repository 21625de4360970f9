"""Consultant rules: French text analysis, the skills vocabulary, working days, commitments
against calendars and monthly maxima, each scoring component and their combination, the
ranking, and the engagement state machine."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.caller import Caller, Role
from contracts.consultants import (
    ENGAGEMENT_STEPS,
    AvailabilityPeriod,
    EngagementStatus,
    TimesheetStatus,
)
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from infra.communes import communes
from services.consultants import domain
from services.consultants.domain import (
    Calendar,
    Commitment,
    ConsultantIndex,
    Need,
    Period,
    Profile,
    match_consultants,
    tokens,
    vocabulary,
)
from services.consultants.skills import SKILLS

SAINT_ETIENNE = communes().get("42218")
ORIGIN = (SAINT_ETIENNE.latitude, SAINT_ETIENNE.longitude)


def profile(cid: str, *, home: str = "42095", **fields) -> Profile:
    commune = communes().get(home)
    values = dict(
        consultant_id=cid,
        home_commune=home,
        latitude=commune.latitude,
        longitude=commune.longitude,
        name=f"Consultant {cid}",
        title="Agent territorial",
        skills=("urbanisme",),
        bio="",
        day_rate_cents=50000,
        max_days_per_month=10,
    )
    return Profile(**(values | fields))


def index_of(*profiles: Profile) -> ConsultantIndex:
    index = ConsultantIndex()
    for p in profiles:
        index.put(p)
    return index


def ids(result) -> list[str]:
    return [r.profile.consultant_id for r in result.items]


def caller(commune: str = "42218", *roles: Role) -> Caller:
    return Caller(user_id="u1", commune=commune, roles=frozenset(roles or {Role.AGENT}))


# -- French text analysis ---------------------------------------------------------------


@pytest.mark.parametrize(
    "variants",
    [
        ("marché public", "Marchés publics", "MARCHES PUBLICS"),
        ("urbanisme", "urbaniste", "urbanistes"),
        ("animateur", "animatrice", "animation"),
        ("réseau", "réseaux"),
        ("municipal", "municipaux", "municipale"),
        ("aménagement", "aménageur", "aménager"),
        ("éducatif", "éducative", "éducatifs"),
        ("conseiller", "conseillère", "conseil"),
        ("crèche", "crèches", "creche"),
    ],
)
def test_accents_case_plurals_and_light_suffixes_meet(variants):
    assert len({tuple(tokens(v)) for v in variants}) == 1, [tokens(v) for v in variants]


def test_stop_words_and_elisions_are_dropped():
    assert tokens("révision du plan local d'urbanisme") == ["revis", "plan", "local", "urban"]
    assert tokens("Nous cherchons quelqu'un pour l'eau et les réseaux") == [
        "quelqu",
        "eau",
        "reseau",
    ]


# -- the skills vocabulary --------------------------------------------------------------


def test_the_vocabulary_covers_municipal_work_and_relates_both_ways():
    vocab = vocabulary()
    domains = {s.domain for s in SKILLS}
    assert len(SKILLS) >= 60 and len(domains) >= 15
    for skill_id in (
        "plu",
        "marches-publics",
        "voirie",
        "assainissement",
        "cybersecurite",
        "rh",
        "subventions",
        "juridique",
        "petite-enfance",
        "police-municipale",
    ):
        assert skill_id in vocab.skills
    for skill_id, related in vocab.related.items():
        assert skill_id not in related
        for other in related:
            assert skill_id in vocab.related[other]
    assert all(s.synonyms for s in SKILLS)


def test_skills_are_resolved_from_ids_labels_and_synonyms():
    assert vocabulary().resolve(["plu", "Urbanisme", "commande publique", "DPO"]) == [
        "plu",
        "urbanisme",
        "marches-publics",
        "rgpd",
    ]
    assert vocabulary().resolve(["PLU", "plan local d'urbanisme"]) == ["plu"]


def test_an_unknown_skill_is_refused_with_the_closest_known_ones():
    with pytest.raises(InvalidInput) as refused:
        vocabulary().resolve(["plu", "urbanism", "cyber securite"])
    errors = refused.value.errors
    assert [e["field"] for e in errors] == ["skills.1", "skills.2"]
    assert errors[0]["suggestions"][0]["id"] == "urbanisme"
    assert "cybersecurite" in [s["id"] for s in errors[1]["suggestions"]]
    assert errors[0]["type"] == "unknown_skill"


def test_skills_named_in_a_need_are_recognised_longest_phrase_first():
    vocab = vocabulary()
    assert vocab.recognise(tokens("Révision du plan local d'urbanisme")) == ["plu"]
    assert vocab.recognise(tokens("DCE pour les travaux de voirie")) == [
        "marches-publics",
        "voirie",
    ]
    assert vocab.recognise(tokens("station d'épuration")) == ["assainissement"]
    assert vocab.recognise(tokens("une belle journée")) == []


# -- working days and calendars ---------------------------------------------------------


def test_the_public_holidays_of_france():
    holidays = domain.public_holidays(2026)
    assert len(holidays) == 11
    assert {date(2026, 4, 6), date(2026, 5, 14), date(2026, 5, 25), date(2026, 7, 14)} <= set(
        holidays
    )


def test_working_days_skip_weekends_and_holidays():
    assert domain.working_days(date(2026, 5, 4), date(2026, 5, 11)) == 4  # 8 May, a Friday
    assert domain.working_days(date(2026, 5, 1), date(2026, 6, 1)) == 17  # 4 holidays
    assert domain.working_days(date(2026, 5, 9), date(2026, 5, 11)) == 0
    assert domain.working_days(date(2026, 5, 11), date(2026, 5, 11)) == 0


@given(st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.integers(0, 400))
def test_working_days_count_the_days_one_by_one(start, length):
    end = start + timedelta(days=length)
    one_by_one = sum(domain.is_working_day(start + timedelta(days=n)) for n in range(length))
    assert domain.working_days(start, end) == one_by_one


def test_a_calendar_opens_available_periods_and_closes_unavailable_ones():
    march = (date(2026, 3, 1), date(2026, 4, 1))
    assert Calendar().open_days(*march) == 22
    calendar = Calendar.of(
        [
            AvailabilityPeriod(kind="available", start=date(2026, 3, 2), end=date(2026, 3, 14)),
            AvailabilityPeriod(kind="unavailable", start=date(2026, 3, 4), end=date(2026, 3, 6)),
        ]
    )
    assert calendar.open_days(*march) == 8  # 10 working days, 2 of them away
    closed = Calendar.of(
        [AvailabilityPeriod(kind="unavailable", start=date(2026, 3, 16), end=date(2026, 3, 21))]
    )
    assert closed.open_days(*march) == 17


# -- commitments ------------------------------------------------------------------------


def test_commitments_fit_within_the_monthly_maximum_only():
    march = Commitment("a", date(2026, 3, 2), date(2026, 3, 21), 2 * 3)
    more = Commitment("b", date(2026, 3, 9), date(2026, 3, 14), 2 * 2)
    assert domain.commitments_fit(Calendar(), 5, [march, more])
    assert not domain.commitments_fit(Calendar(), 4, [march, more])
    half = Commitment("c", date(2026, 3, 9), date(2026, 3, 14), 1)
    assert not domain.commitments_fit(Calendar(), 5, [march, more, half])
    assert domain.commitments_fit(Calendar(), 5, [march, half])


def test_commitments_fit_the_days_the_consultant_is_there():
    away = Calendar.of(
        [AvailabilityPeriod(kind="unavailable", start=date(2026, 3, 10), end=date(2026, 3, 14))]
    )
    week = Commitment("a", date(2026, 3, 9), date(2026, 3, 14), 2 * 2)
    assert not domain.commitments_fit(away, 20, [week])  # only Monday 9 is left
    assert domain.commitments_fit(away, 20, [Commitment("a", week.start, week.end, 2)])


def test_days_are_laid_out_where_they_fit_not_first_come():
    # at most 2 days a month: placing A's days first come, first served fills March and
    # leaves none for B (30 and 31 March); they fit when A works in April
    a = Commitment("a", date(2026, 3, 23), date(2026, 4, 18), 2 * 2)
    b = Commitment("b", date(2026, 3, 30), date(2026, 4, 1), 2 * 2)
    assert domain.commitments_fit(Calendar(), 2, [a, b])
    assert not domain.commitments_fit(Calendar(), 2, [a, b, Commitment("c", b.start, b.end, 1)])


def test_free_days_in_a_window_count_what_is_already_held():
    held = [Commitment("a", date(2026, 3, 2), date(2026, 3, 31), 2 * 6)]
    window = Period(date(2026, 3, 16), date(2026, 3, 21))
    fits, free = domain.free_half_days(Calendar(), 8, held, window)
    assert fits and free == 2 * 2  # the month has 8, 6 are held
    _, free = domain.free_half_days(Calendar(), 8, [], window)
    assert free == 2 * 5


def test_only_commitments_sharing_months_are_entangled():
    window = Period(date(2026, 6, 8), date(2026, 6, 13))
    may_june = Commitment("a", date(2026, 5, 25), date(2026, 6, 5), 2)
    april_may = Commitment("b", date(2026, 4, 27), date(2026, 5, 8), 2)
    september = Commitment("c", date(2026, 9, 1), date(2026, 9, 10), 2)
    assert domain.entangled([september, april_may, may_june], window) == [april_may, may_june]


# -- scoring components -----------------------------------------------------------------


def test_proximity_halves_at_25_km_and_rate_prefers_cheaper_under_the_ceiling():
    assert domain.proximity(0) == 1 and domain.proximity(25) == 0.5
    assert domain.rate_score(40000, 80000) == pytest.approx(0.875)
    assert domain.rate_score(80000, 80000) == pytest.approx(0.75)
    assert domain.rate_score(80001, 80000) == 0


def test_skill_coverage_counts_related_skills_for_half():
    index = index_of(
        profile("direct", skills=("plu",)),
        profile("related", skills=("scot",)),
        profile("none", skills=("voirie",), title="Urbaniste"),
    )
    result = match_consultants(index, Need(skills=("plu",), limit=10))
    by_id = {r.profile.consultant_id: r.explanation.skills for r in result.items}
    assert by_id["direct"].coverage == 1 and by_id["direct"].matched[0].via == "direct"
    assert by_id["related"].coverage == 0.5
    assert by_id["related"].matched[0].model_dump() == {
        "skill": "plu",
        "via": "related",
        "through": "scot",
    }
    assert "none" not in by_id  # neither the skill nor a word of the need
    assert ids(result) == ["direct", "related"]


def test_text_relevance_is_bm25_with_titles_weighing_more_than_bios():
    index = index_of(
        profile("title", title="Chargée d'éclairage public", skills=("voirie",)),
        profile("bio", bio="A suivi un chantier d'éclairage public.", skills=("voirie",)),
        profile("elsewhere", bio="Voirie et trottoirs.", skills=("voirie",)),
    )
    result = match_consultants(index, Need(text="éclairages publics", limit=3))
    texts = {r.profile.consultant_id: r.explanation.text for r in result.items}
    assert texts["title"].score == 1.0
    assert 0 < texts["bio"].score < 1
    assert texts["title"].matched_terms == ["eclairag", "public"]


def test_rare_words_of_a_need_count_more_than_common_ones():
    common = [profile(f"p{n}", bio="gestion des bâtiments communaux") for n in range(20)]
    index = index_of(
        *common,
        profile("rare", bio="gestion des bâtiments et de l'amiante", skills=("voirie",)),
        profile("common", bio="gestion, gestion et gestion", skills=("voirie",)),
    )
    scores = index.bm25(tokens("gestion de l'amiante"))
    assert scores["rare"] > scores["common"]


def test_availability_counts_free_days_against_those_needed():
    away = Calendar.of(
        [AvailabilityPeriod(kind="unavailable", start=date(2026, 3, 2), end=date(2026, 3, 12))]
    )
    index = index_of(
        profile("free"),
        profile("busy", calendar=away),
        profile("capped", max_days_per_month=1),
    )
    need = Need(
        skills=("urbanisme",),
        window=Period(date(2026, 3, 2), date(2026, 3, 14)),
        days=Decimal("2.5"),
        limit=3,
    )
    fits = {
        r.profile.consultant_id: r.explanation.availability
        for r in match_consultants(index, need).items
    }
    assert fits["free"].available_days == 10 and fits["free"].fits and fits["free"].score == 1
    assert fits["busy"].available_days == 2 and not fits["busy"].fits
    assert fits["busy"].score == pytest.approx(0.8)
    assert fits["capped"].available_days == 1 and fits["capped"].score == pytest.approx(0.4)
    assert fits["free"].working_days == 10 and fits["free"].days_needed == Decimal("2.5")


def test_the_score_is_the_weighted_sum_of_the_components_that_apply():
    index = index_of(profile("a", title="Urbaniste PLU", skills=("plu",), day_rate_cents=60000))
    need = Need(
        text="révision du PLU",
        origin=ORIGIN,
        window=Period(date(2026, 3, 2), date(2026, 3, 7)),
        days=Decimal(2),
        max_day_rate_cents=80000,
    )
    (ranked,) = match_consultants(index, need).items
    why = ranked.explanation
    assert set(why.weights) == {"skills", "text", "distance", "availability", "rate"}
    assert sum(why.weights.values()) == pytest.approx(1)
    assert ranked.score == pytest.approx(
        sum(why.weights[k] * why.components[k] for k in why.components), abs=1e-3
    )
    assert why.components["rate"] == pytest.approx(1 - 0.25 * 60000 / 80000)
    assert why.distance_km == pytest.approx(9.3, abs=0.5)
    assert why.summary.startswith("Covers 1 of 1 skill(s) asked (plu)")

    bare = match_consultants(index, Need(skills=("plu",))).items[0]
    assert bare.explanation.weights == {"skills": 1.0} and bare.score == 1.0


def test_who_does_not_fit_ranks_below_who_does_or_is_left_out():
    index = index_of(
        profile("star", title="Urbaniste PLU", skills=("plu", "urbanisme"), day_rate_cents=90000),
        profile("fits", skills=("urbanisme",), day_rate_cents=50000),
    )
    need = Need(text="PLU", skills=("plu",), max_day_rate_cents=60000)
    result = match_consultants(index, need)
    assert ids(result) == ["fits", "star"]
    assert [r.fits for r in result.items] == [True, False]
    assert result.items[1].score > result.items[0].score
    assert not result.items[1].explanation.rate.within
    assert ids(
        match_consultants(index, Need(text="PLU", max_day_rate_cents=60000, only_fitting=True))
    ) == ["fits"]


def test_the_ranking_is_deterministic_nearer_first_then_by_id():
    index = index_of(
        profile("b-firminy"),
        profile("a-firminy"),
        profile("c-lyon", home="69123"),
        profile("d-chambon", home="42044"),
    )
    need = Need(skills=("urbanisme",), origin=ORIGIN, limit=10)
    assert ids(match_consultants(index, need)) == ["d-chambon", "a-firminy", "b-firminy", "c-lyon"]


def test_the_requesting_communes_own_staff_are_no_candidates():
    index = index_of(profile("home", home="42218"), profile("away", home="42095"))
    need = Need(skills=("urbanisme",), exclude_commune="42218")
    result = match_consultants(index, need)
    assert ids(result) == ["away"] and result.candidates == 1


def test_an_index_forgets_what_is_dropped_or_replaced():
    index = index_of(profile("a", bio="amiante"), profile("b", bio="amiante"))
    index.put(profile("a", bio="plomb"))
    index.drop("b")
    assert ids(match_consultants(index, Need(text="amiante"))) == []
    assert ids(match_consultants(index, Need(text="plomb"))) == ["a"]
    assert len(index) == 1


@settings(max_examples=min(60, settings.default.max_examples), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["42095", "42044", "42207", "69123", "43157"]),
            st.lists(
                st.sampled_from(["plu", "urbanisme", "scot", "voirie", "sig"]),
                min_size=1,
                max_size=3,
            ),
            st.sampled_from(["", "plan local", "cadastre et SIG", "voirie communale"]),
            st.integers(30000, 90000),
            st.integers(1, 6),
            st.booleans(),
        ),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from(["PLU", "urbanisme et voirie", "SIG", ""]),
    st.sampled_from([None, 50000, 70000]),
    st.booleans(),
    st.integers(1, 5),
)
def test_the_early_stop_ranks_the_top_exactly_as_a_full_scan(rows, text, ceiling, window, limit):
    profiles = []
    for n, (home, skills, bio, rate, max_days, committed) in enumerate(rows):
        commitments = (
            (Commitment(f"e{n}", date(2026, 3, 2), date(2026, 3, 20), 4),) if committed else ()
        )
        profiles.append(
            profile(
                f"c{n:02d}",
                home=home,
                skills=tuple(dict.fromkeys(skills)),
                bio=bio,
                day_rate_cents=rate,
                max_days_per_month=max_days,
                commitments=commitments,
            )
        )
    index = index_of(*profiles)
    need = Need(
        text=text,
        skills=() if text else ("urbanisme",),
        origin=ORIGIN,
        window=Period(date(2026, 3, 9), date(2026, 3, 14)) if window else None,
        days=Decimal(3) if window else None,
        max_day_rate_cents=ceiling,
        limit=limit,
    )
    full = match_consultants(index, Need(**{**need.__dict__, "limit": len(profiles)}))
    top = match_consultants(index, need)
    assert ids(top) == ids(full)[:limit]
    assert [r.score for r in top.items] == [r.score for r in full.items[:limit]]
    assert top.candidates == full.candidates


# -- engagements ------------------------------------------------------------------------


def test_the_engagement_state_machine():
    E = EngagementStatus
    assert domain.next_status(E.REQUESTED, "accept") == E.ACCEPTED
    assert domain.next_status(E.REQUESTED, "reject") == E.REJECTED
    assert domain.next_status(E.ACCEPTED, "cancel") == E.CANCELLED
    assert domain.next_status(E.ACCEPTED, "complete") == E.COMPLETED
    for status, action in [
        (E.ACCEPTED, "accept"),
        (E.REJECTED, "cancel"),
        (E.REQUESTED, "complete"),
        (E.COMPLETED, "cancel"),
    ]:
        with pytest.raises(Conflict):
            domain.next_status(status, action)


def test_who_may_do_what_on_an_engagement():
    borrower, lender = "42218", "42095"
    with pytest.raises(NotFound):
        domain.ensure_may(caller("42207", Role.MANAGER), "accept", borrower, lender)
    with pytest.raises(Forbidden):
        domain.ensure_may(caller(borrower, Role.MANAGER), "accept", borrower, lender)
    with pytest.raises(Forbidden):
        domain.ensure_may(caller(lender, Role.AGENT), "accept", borrower, lender)
    domain.ensure_may(caller(lender, Role.MANAGER), "accept", borrower, lender)
    domain.ensure_may(caller(lender, Role.AGENT), "record_timesheet", borrower, lender)
    with pytest.raises(Forbidden):
        domain.ensure_may(caller(borrower), "record_timesheet", borrower, lender)
    domain.ensure_may(caller(borrower), "approve_timesheet", borrower, lender)
    with pytest.raises(Forbidden):
        domain.ensure_may(caller(lender, Role.MANAGER), "approve_timesheet", borrower, lender)
    with pytest.raises(Forbidden):
        domain.ensure_may(caller(borrower, Role.FINANCE), "cancel", borrower, lender)
    domain.ensure_may(caller(lender), "cancel", borrower, lender)


def test_the_actions_the_steps_leave_open_are_those_the_service_allows():
    """What contracts.ENGAGEMENT_STEPS tells the pages to show is what the service lets pass."""
    borrower, lender = "42218", "42095"
    for action, step in ENGAGEMENT_STEPS.items():
        for commune in (borrower, lender):
            for role in Role:
                who = caller(commune, role)
                try:
                    domain.ensure_may(who, action, borrower, lender)
                    allowed = True
                except Forbidden:
                    allowed = False
                assert allowed == step.open_to(commune, who.roles, borrower, lender), (
                    action,
                    commune,
                    role,
                )


def test_completion_waits_for_every_day_worked_to_be_approved():
    E, T = EngagementStatus, TimesheetStatus
    terms = dict(start=date(2026, 3, 2), today=date(2026, 3, 20))
    assert (
        domain.check_transition("complete", E.ACCEPTED, **terms, timesheets=[T.APPROVED])
        == E.COMPLETED
    )
    with pytest.raises(Conflict):
        domain.check_transition("complete", E.ACCEPTED, **terms, timesheets=[T.RECORDED])
    with pytest.raises(Conflict):  # cancelled only before it starts
        domain.check_transition("cancel", E.ACCEPTED, **terms, timesheets=[])
    assert domain.moves_held_days(E.ACCEPTED, E.CANCELLED)
    assert not domain.moves_held_days(E.REQUESTED, E.REJECTED)


def test_a_request_reports_every_broken_rule():
    with pytest.raises(InvalidInput) as refused:
        domain.check_request(
            published=False,
            home_commune="42218",
            borrower="42218",
            start=date(2026, 3, 1),
            end=date(2026, 3, 7),
            days=Decimal(6),
            calendar=Calendar(),
            today=date(2026, 3, 2),
        )
    assert [e["type"] for e in refused.value.errors] == [
        "withdrawn",
        "own_consultant",
        "in_the_past",
        "beyond_period",
    ]


def test_days_worked_stay_within_the_engagement():
    terms = dict(
        status=EngagementStatus.ACCEPTED,
        start=date(2026, 3, 2),
        end=date(2026, 3, 16),
        days_total=Decimal(3),
        today=date(2026, 3, 10),
    )
    domain.check_timesheet(
        **terms, days_recorded=Decimal("0.5"), work_date=date(2026, 3, 9), days=Decimal(1)
    )
    with pytest.raises(InvalidInput) as refused:
        domain.check_timesheet(
            **terms, days_recorded=Decimal(1), work_date=date(2026, 3, 11), days=Decimal("2.5")
        )
    assert [e["type"] for e in refused.value.errors] == [
        "in_the_future",
        "beyond_engagement",
        "one_day_per_date",  # one person's day is one day
    ]
    with pytest.raises(Conflict):
        domain.check_timesheet(
            **(terms | {"status": EngagementStatus.REQUESTED}),
            days_recorded=Decimal(0),
            work_date=date(2026, 3, 9),
            days=Decimal(1),
        )


def test_amounts_are_days_times_rate_rounded_half_up_to_the_cent():
    assert domain.amount_cents(Decimal("2.5"), 65000) == 162500
    assert domain.amount_cents(Decimal("0.5"), 10001) == 5001
    assert domain.half_days(Decimal("2.5")) == 5 and domain.as_days(5) == Decimal("2.5")
