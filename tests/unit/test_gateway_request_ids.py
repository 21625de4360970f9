"""The request ids the gateway gives its calls (gateway.rpc): under an Idempotency-Key the
same for every try, and marked as maybe repeated, so that the service looks them up before
acting (infra.exactly_once); otherwise new, and not marked: the service's record is guard
enough for a first delivery, and no lookup is paid."""

from __future__ import annotations

from types import SimpleNamespace

from gateway.rpc import request_id_for


def worker(key: str | None = None, body: str = "{}"):
    headers = {"Idempotency-Key": key} if key else {}
    request = SimpleNamespace(headers=headers, method="POST", full_path="/api/v1/bookings?")
    caller = SimpleNamespace(user_id="user-1")
    return SimpleNamespace(args=(request,), kwargs={"caller": caller, "body": body})


def test_a_call_under_an_idempotency_key_keeps_its_id_and_says_it_may_repeat():
    first, again = (request_id_for(worker("key-1"), "bookings.request") for _ in range(2))

    assert first == again
    assert first[1] is True
    assert request_id_for(worker("key-1", body="other"), "bookings.request")[0] != first[0]


def test_a_call_without_a_key_gets_a_new_id_not_marked():
    one, other = (request_id_for(worker(), "bookings.request") for _ in range(2))

    assert one[0] != other[0]
    assert one[1] is False and other[1] is False
