"""The second factor as stored, on each database: enrolment, each code accepted once (even by
two requests at once), recovery codes single-use, the communes' rule and the operator's
reset."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from contracts.errors import Conflict
from gateway import totp
from gateway.models import User, WebSession
from gateway.pages.sessions import SessionStore
from gateway.second_factor import Codes, Enrolment, SecondFactors
from infra.database import make_engine
from infra.migrations import upgrade
from tests.support.schema import migrated

NOON = datetime(2026, 3, 10, 11, 0, 5, tzinfo=UTC)
STEP = timedelta(seconds=30)


@pytest.fixture
def engine(database_url):
    migrated("gateway", database_url)
    return make_engine(database_url)


def add_user(engine, roles: str = "finance", commune: str = "42218") -> User:
    user = User(
        id=str(uuid.uuid4()),
        email=f"{uuid.uuid4().hex[:8]}@example.fr",
        name="Camille Martin",
        password_hash="x",
        commune=commune,
        roles=roles,
        created_at=datetime.now(UTC),
    )
    with engine.begin() as conn:
        conn.execute(
            User.__table__.insert().values(
                {c.name: getattr(user, c.key) for c in User.__table__.columns}
            )
        )
    return user


def read(engine, user_id: str) -> User:
    with engine.connect() as conn:
        return conn.execute(select(User.__table__).where(User.id == user_id)).one()


def enrolled(engine, user: User) -> tuple[SecondFactors, Enrolment]:
    factors = SecondFactors(engine)
    enrolment = factors.start_enrolment(user.id)
    assert factors.confirm_enrolment(user.id, totp.code_at(enrolment.secret, NOON), NOON)
    return factors, enrolment


def test_enrolment_is_in_force_once_a_code_confirms_it(engine):
    user, factors = add_user(engine), SecondFactors(engine)
    first = factors.start_enrolment(user.id)
    again = factors.start_enrolment(user.id, keep_secret=True)
    assert again.secret == first.secret and again.recovery_codes != first.recovery_codes
    assert read(engine, user.id).totp_enrolled_at is None
    stale = totp.code_at(first.secret, NOON - 10 * STEP)
    assert not factors.confirm_enrolment(user.id, stale, NOON)
    assert factors.confirm_enrolment(user.id, totp.code_at(first.secret, NOON), NOON)
    stored = read(engine, user.id)
    assert stored.totp_enrolled_at is not None and stored.totp_secret == first.secret
    with pytest.raises(Conflict):
        factors.start_enrolment(user.id)  # an enrolled secret is never replaced here
    # the code that confirmed is used
    assert not factors.verify(user.id, Codes(totp=totp.code_at(first.secret, NOON)), NOON)


def test_a_code_is_accepted_once(engine):
    user = add_user(engine)
    factors, enrolment = enrolled(engine, user)
    user_id = user.id
    code = totp.code_at(enrolment.secret, NOON + STEP)
    assert factors.verify(user_id, Codes(totp=code), NOON + STEP)
    assert not factors.verify(user_id, Codes(totp=code), NOON + STEP + timedelta(seconds=10))
    assert factors.verify(
        user_id, Codes(totp=totp.code_at(enrolment.secret, NOON + 2 * STEP)), NOON + 2 * STEP
    )


def test_two_requests_with_the_same_code_at_once_one_gets_in(engine):
    user = add_user(engine)
    factors, enrolment = enrolled(engine, user)
    code = totp.code_at(enrolment.secret, NOON + STEP)
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda _: factors.verify(user.id, Codes(totp=code), NOON + STEP), range(4))
        )
    assert results.count(True) == 1


def test_a_recovery_code_works_once_and_not_for_another_user(engine):
    user, other = add_user(engine), add_user(engine)
    factors, enrolment = enrolled(engine, user)
    enrolled(engine, other)
    code = enrolment.recovery_codes[3]
    assert not factors.verify(other.id, Codes(recovery=code), NOON)
    assert factors.recovery_codes_left(user.id) == 10
    assert factors.verify(user.id, Codes(recovery=code.upper()), NOON)
    assert not factors.verify(user.id, Codes(recovery=code), NOON)
    assert factors.recovery_codes_left(user.id) == 9
    assert factors.verify(user.id, Codes(recovery=enrolment.recovery_codes[4]), NOON)


def test_recovery_codes_of_an_unconfirmed_enrolment_do_nothing(engine):
    user, factors = add_user(engine), SecondFactors(engine)
    enrolment = factors.start_enrolment(user.id)
    assert not factors.verify(user.id, Codes(recovery=enrolment.recovery_codes[0]), NOON)
    assert not factors.verify(user.id, Codes(totp=totp.code_at(enrolment.secret, NOON)), NOON)


def test_a_commune_requires_it_of_its_finance_team_and_signs_out_who_has_none(engine):
    finance, manager, ready = (
        add_user(engine, "finance,manager"),
        add_user(engine, "manager"),
        add_user(engine, "finance"),
    )
    enrolled(engine, ready)
    sessions = SessionStore(engine, 3600)
    for user in (finance, manager, ready):
        sessions.open(user.id)
    factors = SecondFactors(engine)
    assert not factors.required(read(engine, finance.id))
    assert factors.require_for_finance("42218") == 1
    assert factors.required(read(engine, finance.id))
    assert not factors.required(read(engine, manager.id))
    assert not factors.required(add_user(engine, "finance", commune="42044"))
    assert factors.required(add_user(engine, "operator", commune="42044"))
    with engine.connect() as conn:
        signed_in = set(conn.scalars(select(WebSession.user_id)))
    assert signed_in == {manager.id, ready.id}
    factors.require_for_finance("42218", required=False)
    assert not factors.required(read(engine, finance.id))


def test_the_operator_resets_a_lost_second_factor(engine):
    user = add_user(engine, "operator")
    factors, _ = enrolled(engine, user)
    SessionStore(engine, 3600).open(user.id)
    factors.reset(user.email.upper())
    stored = read(engine, user.id)
    assert stored.totp_secret is None and stored.totp_enrolled_at is None
    assert factors.recovery_codes_left(user.id) == 0
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(WebSession)) == 0
    assert factors.wanted(read(engine, user.id))  # an operator enrols again


def test_the_operator_s_commands_refuse_an_unknown_commune_or_user(tmp_path):
    from tests.integration.test_operator_cli import mutualis

    url = f"sqlite:///{tmp_path / 'gateway.sqlite3'}"
    upgrade("gateway", url)
    env = {"GATEWAY_DATABASE_URL": url}
    unknown = mutualis(env, "users", "require-totp", "--commune", "99999")
    assert unknown.returncode != 0 and "99999" in unknown.stderr
    required = mutualis(env, "users", "require-totp", "--commune", "42147")
    assert required.returncode == 0, required.stderr
    assert SecondFactors(make_engine(url)).commune_requires("42147")
    nobody = mutualis(env, "users", "reset-totp", "nobody@example.fr")
    assert nobody.returncode != 0 and "nobody@example.fr" in nobody.stderr


def test_the_sign_in_a_code_completed_may_be_sent_again_at_once_by_its_browser(engine):
    user = add_user(engine)
    factors, enrolment = enrolled(engine, user)
    at = NOON + STEP
    code = Codes(totp=totp.code_at(enrolment.secret, at))
    assert not factors.completed_just_now(user.id, "pending-1", at)

    assert factors.verify(user.id, code, at, proof="pending-1")
    assert not factors.verify(user.id, code, at, proof="pending-1")  # the code is used

    assert factors.completed_just_now(user.id, "pending-1", at + timedelta(seconds=29))
    assert not factors.completed_just_now(user.id, "pending-2", at)  # another sign-in's
    assert not factors.completed_just_now(user.id, "pending-1", at + timedelta(seconds=31))


def test_a_recovery_code_completes_its_sign_in_too(engine):
    user = add_user(engine)
    factors, enrolment = enrolled(engine, user)
    code = Codes(recovery=enrolment.recovery_codes[0])
    assert factors.verify(user.id, code, NOON, proof="pending-1")
    assert factors.completed_just_now(user.id, "pending-1", NOON)
