"""The gateway's stored defences on each database: live users behind tokens, disabled users,
sign-out everywhere, the back-off of failed logins, idempotency keys left in progress."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from contracts.caller import Caller, Role
from contracts.errors import Conflict
from gateway.errors import TooManyLogins
from gateway.http import IdempotencyStore
from gateway.login_attempts import LoginAttempts, keys_of
from gateway.models import IdempotencyRecord, User, WebSession
from gateway.pages.sessions import SessionStore
from gateway.users import LiveUsers, disable_user
from infra.database import make_engine
from tests.support.schema import migrated


@pytest.fixture
def engine(database_url):
    migrated("gateway", database_url)
    return make_engine(database_url)


def add_user(engine, email: str, commune: str = "42218", roles: str = "agent") -> Caller:
    user_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            User.__table__.insert().values(
                id=user_id,
                email=email,
                name="Camille Martin",
                password_hash="x",
                commune=commune,
                roles=roles,
                created_at=datetime.now(UTC),
            )
        )
    return Caller(
        user_id=user_id, commune=commune, roles=frozenset(Role(r) for r in roles.split(","))
    )


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- tokens belong to live users ---------------------------------------------------------


def test_a_token_of_an_unknown_user_is_refused(engine):
    live = LiveUsers(engine, 60)
    assert not live.admits(Caller(user_id="nobody", commune="42218", roles=frozenset()))


def test_a_changed_or_disabled_user_is_refused_within_the_delay(engine):
    clock = Clock()
    live = LiveUsers(engine, 60, clock)
    alice = add_user(engine, "alice@example.fr", roles="agent,manager")
    assert live.admits(alice)
    with engine.begin() as conn:
        conn.execute(User.__table__.update().values(roles="agent"))
    clock.now += 59
    assert live.admits(alice)  # the cached state, for at most the delay
    clock.now += 2
    assert not live.admits(alice)
    assert live.admits(alice.model_copy(update={"roles": frozenset({Role.AGENT})}))

    with engine.begin() as conn:
        conn.execute(User.__table__.update().values(commune="42044"))
    clock.now += 61
    assert live.current(alice.user_id).commune == "42044"

    disable_user("ALICE@example.fr", engine)
    clock.now += 61
    assert live.current(alice.user_id) is None


def test_a_token_lives_as_long_as_the_second_factor_it_was_issued_with(engine):
    clock = Clock()
    live = LiveUsers(engine, 60, clock)
    alice = add_user(engine, "alice@example.fr", roles="finance")
    enrolled_at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(User.__table__.update().values(totp_enrolled_at=enrolled_at))
    factor = int(enrolled_at.timestamp())
    assert live.admits(alice, factor)
    assert not live.admits(alice, None)  # a token from before the enrolment

    with engine.begin() as conn:  # reset: the phone was lost
        conn.execute(User.__table__.update().values(totp_enrolled_at=None))
    clock.now += 61
    assert not live.admits(alice, factor)


def test_a_user_made_to_enrol_has_their_tokens_refused_until_they_do(engine):
    clock = Clock()
    must = {"alice@example.fr"}
    live = LiveUsers(engine, 60, clock, must_enrol=lambda user: user.email in must)
    alice = add_user(engine, "alice@example.fr", roles="finance")
    bob = add_user(engine, "bob@example.fr", roles="finance")
    assert not live.admits(alice)
    assert live.admits(bob)
    must.clear()
    clock.now += 61
    assert live.admits(alice)


def test_disabling_a_user_ends_their_web_sessions_and_refuses_them_at_once(engine):
    alice = add_user(engine, "alice@example.fr")
    sessions = SessionStore(engine, 3600)
    token = sessions.open(alice.user_id)
    assert sessions.visitor(token) is not None
    disable_user("alice@example.fr", engine)
    assert sessions.visitor(token) is None
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(WebSession)).scalar() == 0


def test_signing_out_ends_every_session_of_the_user_and_no_one_elses(engine):
    alice = add_user(engine, "alice@example.fr")
    bob = add_user(engine, "bob@example.fr")
    sessions = SessionStore(engine, 3600)
    laptop, phone, bobs = (sessions.open(u.user_id) for u in (alice, alice, bob))
    sessions.close_everywhere(phone)
    assert sessions.visitor(laptop) is None
    assert sessions.visitor(phone) is None
    assert sessions.visitor(bobs) is not None


# -- failed logins back off --------------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def attempts(engine) -> LoginAttempts:
    return LoginAttempts(
        engine, free_failures=5, backoff_seconds=1, max_backoff_seconds=900, memory_seconds=3600
    )


def fail(guard: LoginAttempts, keys, now: datetime) -> None:
    """A wrong password: the attempt is counted, then found to fail."""
    guard.failed(guard.attempt(keys, "api", now), "api", now)


def refusal(guard: LoginAttempts, keys, now: datetime) -> int | None:
    """The Retry-After of an attempt made now, or None when it may go on (then it counts)."""
    try:
        guard.attempt(keys, "api", now)
    except TooManyLogins as exc:
        return exc.retry_after_seconds
    return None


def test_five_failures_are_free_then_each_doubles_the_wait(engine):
    guard = attempts(engine)
    keys = keys_of("alice@example.fr", "192.0.2.7")
    now = T0
    for _ in range(5):
        fail(guard, keys, now)
    waits = []
    for _ in range(4):
        fail(guard, keys, now)
        waits.append(refusal(guard, keys, now))
        now += timedelta(seconds=waits[-1])
    assert waits == [1, 2, 4, 8]
    assert refusal(guard, keys, now) is None


def test_an_attempt_counts_before_its_password_is_checked(engine):
    guard = attempts(engine)
    keys = keys_of("alice@example.fr", "192.0.2.7")
    for _ in range(5):
        fail(guard, keys, T0)
    guard.attempt(keys, "api", T0)  # a sixth guess, its password still being checked
    assert refusal(guard, keys, T0) == 1  # a seventh at the same moment waits


def test_the_wait_runs_from_the_failure_not_from_the_attempt(engine):
    guard = attempts(engine)
    keys = keys_of("alice@example.fr", "192.0.2.7")
    for _ in range(5):
        fail(guard, keys, T0)
    counts = guard.attempt(keys, "api", T0)  # the sixth, its password checked for 3 s
    guard.failed(counts, "api", T0 + timedelta(seconds=3))
    assert refusal(guard, keys, T0 + timedelta(seconds=3.5)) == 1


def test_guesses_at_the_same_time_each_count(engine):
    guard = attempts(engine)
    keys = keys_of("alice@example.fr", "192.0.2.7")
    for _ in range(5):
        fail(guard, keys, T0)
    with ThreadPoolExecutor(8) as pool:
        refusals = list(pool.map(lambda _: refusal(guard, keys, T0), range(8)))
    assert refusals.count(None) == 1  # the sixth goes on, the others wait for it
    assert refusals.count(1) == 7


def test_the_count_survives_a_restart_and_is_shared_by_replicas(engine, database_url):
    keys = keys_of("alice@example.fr", "192.0.2.7")
    for _ in range(6):
        fail(attempts(engine), keys, T0)  # a new guard each time: another replica
    assert refusal(attempts(make_engine(database_url)), keys, T0) == 1


def test_an_account_backs_off_from_any_address_and_an_address_for_any_account(engine):
    guard = attempts(engine)
    for n in range(6):
        fail(guard, keys_of("alice@example.fr", f"192.0.2.{n}"), T0)
    assert refusal(guard, keys_of("alice@example.fr", "198.51.100.1"), T0) == 1
    for n in range(6):
        fail(guard, keys_of(f"user{n}@example.fr", "203.0.113.9"), T0)
    assert refusal(guard, keys_of("bob@example.fr", "203.0.113.9"), T0) == 1
    assert refusal(guard, keys_of("bob@example.fr", "198.51.100.1"), T0) is None


def test_a_success_clears_the_account_and_takes_back_its_own_attempt(engine):
    guard = attempts(engine)
    keys = keys_of("alice@example.fr", "192.0.2.7")
    for _ in range(5):
        fail(guard, keys, T0)
    guard.attempt(keys, "api", T0)
    guard.succeeded(keys, "api")  # the address keeps its 5 failures, not 6
    fail(guard, keys, T0)  # the address's sixth
    assert refusal(guard, keys_of("alice@example.fr", "198.51.100.1"), T0) is None
    assert refusal(guard, keys_of("bob@example.fr", "192.0.2.7"), T0) == 1


def test_a_refused_attempt_counts_for_no_key(engine):
    guard = attempts(engine)
    for n in range(6):
        fail(guard, keys_of(f"user{n}@example.fr", "203.0.113.9"), T0)
    for _ in range(10):  # bob, refused for the address's sake, loses nothing
        assert refusal(guard, keys_of("bob@example.fr", "203.0.113.9"), T0) == 1
    for _ in range(5):
        fail(guard, keys_of("bob@example.fr", "198.51.100.1"), T0)
    assert refusal(guard, keys_of("bob@example.fr", "198.51.100.2"), T0) is None


def test_failures_are_forgotten_after_an_hour_without_one(engine):
    guard = attempts(engine)
    keys = keys_of("alice@example.fr", "192.0.2.7")
    for _ in range(6):
        fail(guard, keys, T0)
    later = T0 + timedelta(hours=1, seconds=1)
    fail(guard, keys, later)
    assert refusal(guard, keys, later) is None


# -- idempotency keys left in progress ---------------------------------------------------


def left_in_progress(engine, minutes_ago: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            IdempotencyRecord.__table__.insert().values(
                user_id="u-1",
                key="k-1",
                fingerprint="f",
                status=None,
                body=None,
                created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
            )
        )


def created() -> Response:
    return Response('{"id": 1}', status=201, mimetype="application/json")


def test_a_key_still_in_progress_answers_409(engine):
    left_in_progress(engine, minutes_ago=4)
    with pytest.raises(Conflict):
        IdempotencyStore(engine, in_progress_seconds=300).run("u-1", "k-1", "f", created)


def test_a_key_left_in_progress_by_a_crash_is_taken_over_after_the_delay(engine):
    left_in_progress(engine, minutes_ago=6)
    store = IdempotencyStore(engine, in_progress_seconds=300)
    assert store.run("u-1", "k-1", "f", created).status_code == 201
    replayed = store.run("u-1", "k-1", "f", created)
    assert replayed.status_code == 201
    assert replayed.headers["Idempotent-Replayed"] == "true"
