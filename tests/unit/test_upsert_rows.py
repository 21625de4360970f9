"""Rows for one multi-row upsert: one per key, the latest."""

from infra.database import latest_per_key


def test_a_multi_row_upsert_keeps_the_latest_row_of_each_key():
    rows = [
        {"id": "a", "revision": 1, "title": "old"},
        {"id": "b", "revision": 5, "title": "b"},
        {"id": "a", "revision": 3, "title": "newest"},
        {"id": "a", "revision": 2, "title": "late but older"},
        {"id": "b", "revision": 5, "title": "b again"},
    ]
    kept = latest_per_key(rows, key="id", rank="revision")
    assert kept == [
        {"id": "a", "revision": 3, "title": "newest"},
        {"id": "b", "revision": 5, "title": "b again"},
    ]
    assert latest_per_key([], key="id", rank="revision") == []
