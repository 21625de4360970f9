"""Users: creating and disabling them (the operator's commands and the demo seed go through
here), signing in, and whether a token's user is still who the token says."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from datetime import UTC
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contracts import clock
from contracts.caller import Caller, Role
from contracts.errors import Conflict, NotFound, validated
from contracts.fields import Text
from contracts.users import UserCreated, UserDisabled, UserUpdated
from gateway.auth import hash_password, password_matches
from gateway.models import User, WebSession
from gateway.settings import Settings
from gateway.user_events import snapshot_of, users_database
from infra.communes import communes
from infra.database import make_engine


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr
    name: Text = Field(min_length=2, max_length=200)
    commune: str
    roles: list[Role] = Field(min_length=1)
    password: str = Field(min_length=12, max_length=200)

    @field_validator("commune")
    @classmethod
    def _known_commune(cls, code: str) -> str:
        if communes().get(code) is None:
            raise ValueError(f"no commune has INSEE code {code}")
        return code


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The enabled user with this e-mail and password, or None (in about the same time either
    way: an unknown e-mail is verified against a dummy hash)."""
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if not email or not password_matches(user.password_hash if user else None, password):
        return None
    return user if user.disabled_at is None else None


def caller_of(user) -> Caller:
    """A user (or a row with its id, commune and roles) as the caller of an RPC."""
    return Caller(
        user_id=user.id,
        commune=user.commune,
        roles=frozenset(Role(r) for r in user.roles.split(",") if r),
    )


def factor_of(user) -> int | None:
    """The user's second factor as a token names it (when it was enrolled, in seconds), None
    without one: a reset or a new enrolment changes it, and the tokens of the old one die."""
    enrolled = user.totp_enrolled_at
    if enrolled is None:
        return None
    return int((enrolled if enrolled.tzinfo else enrolled.replace(tzinfo=UTC)).timestamp())


def gateway_engine() -> Engine:
    return make_engine(Settings().database_url)


def create_user(email: str, name: str, commune: str, roles: list[str], password: str) -> User:
    new = validated(
        NewUser,
        {"email": email, "name": name, "commune": commune, "roles": roles, "password": password},
    )
    with users_database(gateway_engine()).transaction() as tx:
        session = tx.session
        if session.scalars(select(User).where(User.email == new.email.lower())).first():
            raise Conflict(f"{new.email} already exists")
        user = User(
            id=str(uuid.uuid4()),
            email=new.email.lower(),
            name=new.name,
            password_hash=hash_password(new.password),
            commune=new.commune,
            roles=",".join(sorted(r.value for r in new.roles)),
            created_at=clock.now(),
        )
        session.add(user)
        tx.emit(UserCreated, snapshot_of(user))
    return user


class UserChanges(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr | None = None
    name: Text | None = Field(default=None, min_length=2, max_length=200)
    roles: list[Role] | None = Field(default=None, min_length=1)


def update_user(email: str, changes: dict, engine: Engine | None = None) -> User:
    """A user's e-mail, name or roles changed (the operator's command); announced as
    user.updated.
    New roles reach their tokens within `GATEWAY_USER_CHECK_SECONDS` (LiveUsers)."""
    edit = validated(UserChanges, changes)
    with users_database(engine or gateway_engine()).transaction() as tx:
        user = _user_by_email(tx.session, email)
        if edit.email is not None and edit.email.lower() != user.email:
            taken = select(User.id).where(User.email == edit.email.lower())
            if tx.session.scalars(taken).first():
                raise Conflict(f"{edit.email} already exists")
            user.email = edit.email.lower()  # a refused mailbox corrected: mails go there now
        if edit.name is not None:
            user.name = edit.name
        if edit.roles is not None:
            user.roles = ",".join(sorted(r.value for r in edit.roles))
        tx.emit(UserUpdated, snapshot_of(user))
    return user


def _user_by_email(session: Session, email: str) -> User:
    user = session.scalars(
        select(User).where(User.email == email.strip().lower()).with_for_update()
    ).first()
    if user is None:
        raise NotFound(f"no user has the e-mail {email}")
    return user


def disable_user(email: str, engine: Engine | None = None) -> User:
    """The user signs in no more (announced once, as user.disabled): their web sessions end
    now, their tokens are refused within `GATEWAY_USER_CHECK_SECONDS` (each gateway reads the
    user again at most that late)."""
    with users_database(engine or gateway_engine()).transaction() as tx:
        user = _user_by_email(tx.session, email)
        if user.disabled_at is None:
            user.disabled_at = clock.now()
            tx.emit(UserDisabled, snapshot_of(user))
        tx.session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    return user


class LiveUsers:
    """Whether a token's user still exists, is enabled, has the token's commune and roles and
    the second factor it had when the token was issued (not reset or changed since), and
    needs none they lack (their commune came to require it). Read from the gateway database
    at most once per `ttl_seconds` per user and process: a change reaches every token within
    that delay, at the cost of a dictionary look-up on most requests."""

    MAX_USERS = 100_000  # only signed tokens reach here: ids of real users, bounded anyway

    def __init__(
        self,
        engine: Engine,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        must_enrol: Callable[[Any], bool] = lambda user: False,
    ):
        self.engine = engine
        self.ttl = ttl_seconds
        self.clock = clock
        # whether a user without a second factor must have one (SecondFactors.required)
        self.must_enrol = must_enrol
        self._seen: dict[str, tuple[float, Caller | None, int | None]] = {}

    def admits(self, caller: Caller, factor: int | None = None) -> bool:
        """Whether a token of `caller`, issued with the second factor `factor`, is good."""
        _, now, current_factor = self._read(caller.user_id)
        return now == caller and current_factor == factor

    def current(self, user_id: str) -> Caller | None:
        """The user as a caller now; None when unknown, disabled, or made to enrol."""
        return self._read(user_id)[1]

    def _read(self, user_id: str) -> tuple[float, Caller | None, int | None]:
        now = self.clock()
        seen = self._seen.get(user_id)
        if seen is not None and seen[0] > now:
            return seen
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    User.id,
                    User.email,
                    User.commune,
                    User.roles,
                    User.disabled_at,
                    User.totp_enrolled_at,
                ).where(User.id == user_id)
            ).first()
        caller = None if row is None or row.disabled_at is not None else caller_of(row)
        factor = None if row is None else factor_of(row)
        if caller is not None and factor is None and self.must_enrol(row):
            caller = None  # no token until they enrol (signing in asks for it)
        if len(self._seen) >= self.MAX_USERS:
            self._seen.clear()
        self._seen[user_id] = seen = (now + self.ttl, caller, factor)
        return seen


@functools.cache
def live_users(engine: Engine, ttl_seconds: float, exempt: frozenset[str]) -> LiveUsers:
    """One cache per process (every route of the API shares it); `exempt` as
    SecondFactors takes it."""
    from gateway.second_factor import SecondFactors  # it reads users as callers: no cycle

    return LiveUsers(engine, ttl_seconds, must_enrol=SecondFactors(engine, exempt).required)
