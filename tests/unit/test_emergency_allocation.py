"""The allocation of scarce units among urgent requests: the published rule, proved on random
windows (never more units than exist, a higher need never loses to a lower one, ties by
distance then time, whatever order the requests arrive in), and the explanations given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.emergencies import Need
from services.bookings.emergency import (
    ALLOCATION_WINDOW,
    Hold,
    UrgentRequest,
    allocate,
    collected,
)

HOUR = timedelta(hours=1)
DAWN = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)  # 6:30 in Paris, the episode is declared


def at(hours: float) -> datetime:
    return DAWN + timedelta(hours=hours)


def ask(
    id: str,
    need: Need = Need.MAIN_ROADS,
    *,
    start: float = 1,
    end: float = 25,
    quantity: int = 1,
    km: float | None = 5.0,
    minute: int = 30,
) -> UrgentRequest:
    return UrgentRequest(
        id=id,
        start=at(start),
        end=at(end),
        quantity=quantity,
        need=need,
        distance_km=km,
        requested_at=DAWN + timedelta(minutes=minute),
    )


def decided(quantity: int, held: list[Hold], requests: list[UrgentRequest], **kw) -> dict:
    return {d.request_id: d for d in allocate(quantity, held, requests, **kw)}


# -- random windows ---------------------------------------------------------------------

slots = st.tuples(st.integers(0, 10), st.integers(1, 6)).map(lambda s: (at(s[0]), at(s[0] + s[1])))
holds = st.lists(
    st.tuples(slots, st.integers(1, 2)).map(lambda h: (h[0][0], h[0][1], h[1])), max_size=3
)


@st.composite
def windows(draw) -> tuple[int, list[Hold], list[UrgentRequest]]:
    # few distances and times, so that ties happen
    count = draw(st.integers(0, 8))
    requests = []
    for n in range(count):
        start, end = draw(slots)
        requests.append(
            UrgentRequest(
                id=f"r{n}",
                start=start,
                end=end,
                quantity=draw(st.integers(1, 3)),
                need=draw(st.sampled_from(Need)),
                distance_km=draw(st.sampled_from([0.0, 3.5, 6.0, 12.0, None])),
                requested_at=DAWN + timedelta(minutes=draw(st.integers(0, 3))),
            )
        )
    return draw(st.integers(1, 4)), draw(holds), requests


def level(periods: list[Hold], moment: datetime) -> int:
    return sum(q for start, end, q in periods if start <= moment < end)


def moments(periods: list[Hold]) -> set[datetime]:
    """Where a level can change: every start and end (checked, not trusted from the code)."""
    return {m for start, end, _ in periods for m in (start, end)}


def fits(quantity: int, taken: list[Hold], request: UrgentRequest) -> bool:
    """Whether the request's units fit beside `taken` at every instant of its slot."""
    inside = {request.start} | {m for m in moments(taken) if request.start <= m < request.end}
    return all(level(taken, m) + request.quantity <= quantity for m in inside)


def as_hold(request: UrgentRequest) -> Hold:
    return (request.start, request.end, request.quantity)


@given(windows())
@settings(max_examples=200)
def test_never_more_units_than_exist_where_anything_was_granted(window):
    quantity, held, requests = window
    decisions = decided(quantity, held, requests)
    grants = [as_hold(r) for r in requests if decisions[r.id].granted]
    for moment in moments(held + grants):
        if level(grants, moment):
            assert level(held, moment) + level(grants, moment) <= quantity


@given(windows())
@settings(max_examples=200)
def test_a_refusal_is_due_only_to_bookings_and_to_grants_ranked_before_it(window):
    """So a higher need never loses to a lower one, nor the nearer to the farther among
    equal needs, nor the earlier to the later among equal needs and distances."""
    quantity, held, requests = window
    decisions = decided(quantity, held, requests)
    for request in requests:
        before = [
            as_hold(r)
            for r in requests
            if decisions[r.id].granted and decisions[r.id].position < decisions[request.id].position
        ]
        assert decisions[request.id].granted == fits(quantity, held + before, request)


@given(windows())
@settings(max_examples=200)
def test_the_published_order_is_need_then_distance_then_time(window):
    _, held, requests = window
    positions = {d.request_id: d.position for d in allocate(4, held, requests)}
    ranked = sorted(requests, key=lambda r: positions[r.id])
    far = float("inf")
    keys = [
        (r.need.rank, far if r.distance_km is None else r.distance_km, r.requested_at)
        for r in ranked
    ]
    assert keys == sorted(keys)


@given(windows(), st.data())
@settings(max_examples=200)
def test_the_decisions_do_not_depend_on_the_order_requests_are_given(window, data):
    quantity, held, requests = window
    shuffled = data.draw(st.permutations(requests))
    assert allocate(quantity, held, shuffled) == allocate(quantity, held, requests)


@given(
    slots,
    st.integers(1, 3),
    st.integers(1, 3),
    holds,
    st.lists(st.sampled_from(Need), min_size=2, max_size=2, unique=True),
)
def test_for_the_same_slot_a_lower_need_granted_means_the_higher_one_was(
    slot, quantity, asked, held, needs
):
    (start, end), (higher, lower) = slot, sorted(needs, key=lambda n: n.rank)
    requests = [
        # the lower need nearer and earlier: the need still comes first
        UrgentRequest("low", start, end, asked, lower, 1.0, DAWN),
        UrgentRequest("high", start, end, asked, higher, 50.0, DAWN + HOUR),
    ]
    decisions = decided(quantity, held, requests)
    if decisions["low"].granted:
        assert decisions["high"].granted


@given(slots, st.integers(1, 3), holds, st.sampled_from(Need))
def test_among_equal_needs_the_nearer_then_the_earlier_wins(slot, quantity, held, need):
    start, end = slot
    requests = [
        UrgentRequest("far-early", start, end, 1, need, 20.0, DAWN),
        UrgentRequest("near-late", start, end, 1, need, 2.0, DAWN + timedelta(minutes=9)),
        UrgentRequest("near-early", start, end, 1, need, 2.0, DAWN),
    ]
    decisions = decided(quantity, held, requests)
    assert [decisions[i].position for i in ("near-early", "near-late", "far-early")] == [1, 2, 3]
    if decisions["far-early"].granted:
        assert decisions["near-late"].granted
    if decisions["near-late"].granted:
        assert decisions["near-early"].granted


# -- boundaries -------------------------------------------------------------------------


def test_exactly_the_quantity_is_granted_and_one_more_is_refused_with_why():
    requests = [
        ask("stetienne", Need.SAFETY_OF_PEOPLE, km=6.0),
        ask("firminy", Need.MAIN_ROADS, km=3.0),
        ask("roche", Need.COMFORT, km=1.0),
    ]
    decisions = decided(2, [], requests, units="chasse-neige")
    assert decisions["stetienne"].explanation == (
        "accordée : besoin « sécurité des personnes », 6,0 km"
    )
    assert decisions["firminy"].explanation == "accordée : besoin « grands axes routiers », 3,0 km"
    assert not decisions["roche"].granted
    assert decisions["roche"].explanation == (
        "refusée : les 2 chasse-neige sont attribués à des besoins prioritaires "
        "(besoin « sécurité des personnes », 6,0 km ; besoin « grands axes routiers », 3,0 km)"
    )
    assert [decisions[i].position for i in ("stetienne", "firminy", "roche")] == [1, 2, 3]


def test_two_units_asked_at_once_fit_exactly():
    decisions = decided(2, [], [ask("a", quantity=2)])
    assert decisions["a"].granted


def test_adjacent_slots_share_units():
    requests = [ask("morning", start=1, end=4), ask("afternoon", start=4, end=8)]
    held = [(at(0), at(1), 1), (at(8), at(9), 1)]
    decisions = decided(1, held, requests)
    assert decisions["morning"].granted and decisions["afternoon"].granted


def test_with_nothing_held_every_request_that_fits_is_granted():
    requests = [ask(f"r{n}", start=n, end=n + 2) for n in range(4)]
    decisions = decided(2, [], requests)
    assert all(d.granted for d in decisions.values())


def test_a_refused_request_does_not_take_units_from_those_after_it():
    requests = [
        ask("big", Need.SAFETY_OF_PEOPLE, quantity=2),
        ask("small", Need.COMFORT, quantity=1),
    ]
    decisions = decided(2, [(at(0), at(30), 1)], requests, units="chasse-neige")
    assert not decisions["big"].granted and decisions["small"].granted
    assert decisions["big"].explanation == "refusée : 2 demandés, 1 seulement libre sur ce créneau"


def test_units_already_booked_are_named_as_such():
    decisions = decided(1, [(at(0), at(30), 1)], [ask("a")])
    assert (
        decisions["a"].explanation
        == "refusée : l'unique exemplaire est déjà réservé sur ce créneau"
    )
    decisions = decided(2, [(at(0), at(30), 2)], [ask("a")], units="chasse-neige")
    assert (
        decisions["a"].explanation
        == "refusée : les 2 chasse-neige sont déjà réservés sur ce créneau"
    )


def test_units_booked_and_granted_are_both_told():
    requests = [
        ask("first", Need.SAFETY_OF_PEOPLE, km=4.25),
        ask("second", Need.SAFETY_OF_PEOPLE, km=4.25, minute=40),
    ]
    decisions = decided(2, [(at(0), at(30), 1)], requests)
    assert decisions["second"].explanation == (
        "refusée : 1 demandé, aucun libre sur ce créneau : 1 déjà réservé, "
        "1 attribué à un besoin prioritaire (besoin « sécurité des personnes », 4,2 km, "
        "demandée plus tôt)"
    )


def test_units_free_but_too_few_are_told():
    requests = [ask("first", Need.SAFETY_OF_PEOPLE, km=2.0), ask("second", quantity=2)]
    decisions = decided(3, [(at(0), at(30), 1)], requests, units="chasse-neige")
    assert decisions["second"].explanation == (
        "refusée : 2 demandés, 1 seulement libre sur ce créneau : 1 déjà réservé, "
        "1 attribué à un besoin prioritaire (besoin « sécurité des personnes », 2,0 km)"
    )


def test_units_free_but_too_few_beside_grants_alone_are_told():
    requests = [ask("first", Need.SAFETY_OF_PEOPLE, km=2.0), ask("second", quantity=2)]
    decisions = decided(2, [], requests, units="chasse-neige")
    assert decisions["second"].explanation == (
        "refusée : 2 demandés, 1 seulement libre sur ce créneau : "
        "1 attribué à un besoin prioritaire (besoin « sécurité des personnes », 2,0 km)"
    )


def test_of_two_requests_alike_made_at_once_neither_was_made_earlier():
    requests = [ask("b", Need.COMFORT, km=7.0), ask("a", Need.COMFORT, km=7.0)]
    decisions = decided(1, [], requests)
    assert decisions["a"].granted and decisions["b"].position == 2
    assert decisions["b"].explanation == (
        "refusée : l'unique exemplaire est attribué à un besoin prioritaire "
        "(besoin « confort », 7,0 km)"
    )


def test_a_grant_is_named_only_where_it_takes_the_units():
    requests = [
        ask("morning", Need.SAFETY_OF_PEOPLE, start=1, end=3, km=1.0),
        ask("evening", Need.SAFETY_OF_PEOPLE, start=10, end=12, km=2.0),
        ask("day", Need.COMFORT, start=2, end=11),
    ]
    decisions = decided(2, [(at(0), at(24), 1)], requests)
    assert decisions["day"].explanation == (
        "refusée : 1 demandé, aucun libre sur ce créneau : 1 déjà réservé, "
        "1 attribué à un besoin prioritaire (besoin « sécurité des personnes », 1,0 km)"
    )


def test_a_grant_ended_when_the_slot_starts_is_not_named():
    requests = [
        ask("before", Need.SAFETY_OF_PEOPLE, start=1, end=3, km=1.0),
        ask("from-three", Need.SAFETY_OF_PEOPLE, start=3, end=5, km=2.0),
        ask("day", Need.COMFORT, start=3, end=10),
    ]
    decisions = decided(1, [], requests)
    assert decisions["before"].granted and decisions["from-three"].granted
    assert decisions["day"].explanation == (
        "refusée : l'unique exemplaire est attribué à un besoin prioritaire "
        "(besoin « sécurité des personnes », 2,0 km)"
    )


def test_units_are_exemplaires_unless_named():
    decisions = decided(2, [(at(0), at(30), 2)], [ask("a")])
    assert decisions["a"].explanation == (
        "refusée : les 2 exemplaires sont déjà réservés sur ce créneau"
    )


def test_more_than_the_listing_has_is_refused_for_that():
    decisions = decided(2, [], [ask("a", quantity=3)])
    assert decisions["a"].explanation == "refusée : 3 demandés, l'annonce n'en compte que 2"


def test_an_unknown_distance_comes_after_every_known_one():
    requests = [ask("unknown", km=None, minute=0), ask("far", km=150.0, minute=5)]
    decisions = decided(1, [], requests)
    assert decisions["far"].granted and not decisions["unknown"].granted
    assert decisions["unknown"].explanation == (
        "refusée : l'unique exemplaire est attribué à un besoin prioritaire "
        "(besoin « grands axes routiers », 150,0 km)"
    )
    assert decided(2, [], requests)["unknown"].explanation == (
        "accordée : besoin « grands axes routiers », distance inconnue"
    )


def test_no_requests_no_decisions():
    assert allocate(2, [(at(0), at(1), 2)], []) == []


def test_two_requests_with_one_id_are_a_mistake():
    with pytest.raises(ValueError):
        allocate(2, [], [ask("a"), ask("a", minute=1)])


@pytest.mark.parametrize("kw", [{"start": 3, "end": 3}, {"quantity": 0}])
def test_an_empty_request_is_a_mistake(kw):
    with pytest.raises(ValueError):
        ask("a", **kw)


# -- the allocation window --------------------------------------------------------------


def test_requests_wait_until_the_window_opened_by_the_first_closes():
    first = ask("first", minute=30)
    within = ask("within", minute=39)
    after = ask("after", minute=40)
    pending = [within, first, after]
    opened = first.requested_at
    assert collected(pending, opened + ALLOCATION_WINDOW - timedelta(seconds=1)) == []
    assert collected(pending, opened + ALLOCATION_WINDOW) == [within, first]
    assert collected([after], opened + ALLOCATION_WINDOW) == []


def test_the_window_is_configurable():
    first = ask("first", minute=30)
    assert collected([first], first.requested_at + timedelta(minutes=2), timedelta(minutes=2))
    assert collected([], DAWN) == []
