"""Paging the listings search through the gateway: keyset cursors that a listing published
between two pages does not disturb, for each sort; cursors edited or taken to another search
refused (the pages open an old page link at the first page); free soonest first."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta

import pytest

from contracts.clock import PARIS, paris_today
from tests.support import assert_problem

MOWER = {
    "description": "Tondeuse autoportée, bac de 300 l.",
    "category": "espaces-verts",
    "kind": "equipment",
    "pricing_unit": "day",
    "rate_cents": 4000,
}
PUBLISHERS = ["42044", "42095", "42218", "42207", "42218"]


def publish(stack, commune: str, tag: str, rate: int) -> str:
    answer = stack.as_role("manager", commune).post(
        f"{stack.url}/api/v1/listings",
        json=MOWER | {"title": f"Tondeuse {tag}", "rate_cents": rate},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def pages(stack, asked: dict, between=None) -> list[dict]:
    """Every page of a search, two listings at a time, `between` called after each page."""
    agent = stack.as_role("agent", "42218")
    found, cursor = [], None
    while True:
        params = asked | {"limit": 2} | ({"cursor": cursor} if cursor else {})
        answer = agent.get(f"{stack.url}/api/v1/listings", params=params)
        assert answer.status_code == 200, answer.text
        found += answer.json()["items"]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return found
        if between:
            between()


@pytest.mark.parametrize("sort", [None, "distance", "price", "available"])
def test_a_listing_published_between_pages_neither_repeats_nor_shifts_them(stack, sort):
    tag = uuid.uuid4().hex
    for n, commune in enumerate(PUBLISHERS):
        publish(stack, commune, tag, 4000 + 1000 * (n % 2))
    asked = {"q": tag} | ({"near": "42218", "sort": sort} if sort else {})
    before = [item["id"] for item in pages(stack, asked)]
    assert len(before) == len(PUBLISHERS)

    added = []
    paged = pages(stack, asked, between=lambda: added.append(publish(stack, "42218", tag, 1)))
    ids = [item["id"] for item in paged]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if i not in added] == before


def test_a_cursor_edited_or_of_another_search_is_refused(stack):
    tag = uuid.uuid4().hex
    for commune in PUBLISHERS[:3]:
        publish(stack, commune, tag, 4000)
    agent = stack.as_role("agent", "42218")
    search = f"{stack.url}/api/v1/listings"
    asked = {"q": tag, "near": "42218", "sort": "price", "limit": 1}
    cursor = agent.get(search, params=asked).json()["next_cursor"]
    assert cursor
    edited = cursor[:-3] + ("AAA" if cursor[-3:] != "AAA" else "BBB")
    for params in (
        asked | {"cursor": edited},
        asked | {"cursor": cursor, "sort": "distance"},
        asked | {"cursor": cursor, "q": "tondeuse"},
        asked | {"cursor": "o:20"},
    ):
        refused = agent.get(search, params=params)
        assert_problem(refused, 422)
        assert [e["field"] for e in refused.json()["errors"]] == ["cursor"]
    assert agent.get(search, params=asked | {"cursor": cursor}).status_code == 200


def test_an_old_page_link_of_the_catalogue_starts_at_the_first_page_and_says_so(stack):
    """Links made before keyset cursors (?offset=, ?page=, an offset cursor) open the
    first page with a notice; the API still refuses such a cursor."""
    tag = uuid.uuid4().hex
    for commune in PUBLISHERS[:3]:
        publish(stack, commune, tag, 4000)
    pages_session = stack.web_session("agent.42218@mutualis-demo.fr")
    notice = "Ce lien vers une page de résultats n'est plus valable"
    first = pages_session.get(f"{stack.url}/catalogue", params={"q": tag}, timeout=10)
    assert first.status_code == 200 and notice not in first.text
    for old in ({"suite": "o:20", "rang": "21"}, {"offset": "20"}, {"page": "2"}):
        answer = pages_session.get(f"{stack.url}/catalogue", params={"q": tag} | old, timeout=10)
        assert answer.status_code == 200, answer.text
        assert notice in answer.text
        assert "3 résultats" in answer.text and "Résultats 21" not in answer.text
    agent = stack.as_role("agent", "42218")
    strict = agent.get(f"{stack.url}/api/v1/listings", params={"q": tag, "cursor": "o:20"})
    assert_problem(strict, 422)


def test_free_soonest_first_says_when(stack):
    tag = uuid.uuid4().hex
    today = datetime.combine(paris_today(), time(0), tzinfo=PARIS)
    closed_three_days = publish(stack, "42044", tag, 4000)
    free = publish(stack, "42095", tag, 9000)
    blackout = {
        "start": (today - timedelta(days=1)).isoformat(),
        "end": (today + timedelta(days=3)).isoformat(),
        "reason": "Révision",
    }
    answer = stack.as_role("manager", "42044").post(
        f"{stack.url}/api/v1/listings/{closed_three_days}/blackouts", json=blackout
    )
    assert answer.status_code in (200, 201), answer.text

    found = pages(stack, {"q": tag, "near": "42218", "sort": "available"})
    assert [item["id"] for item in found] == [free, closed_three_days]
    moments = [datetime.fromisoformat(item["earliest_available"]) for item in found]
    assert moments == [today, today + timedelta(days=3)]
