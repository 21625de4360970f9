"""Creating users: the operator's command and the demo seed go through here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.caller import Caller, Role
from contracts.errors import Conflict, validated
from gateway.auth import hash_password, password_matches
from gateway.models import User
from gateway.settings import Settings
from infra.communes import communes
from infra.database import make_engine


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: EmailStr
    name: str = Field(min_length=2, max_length=200)
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
    """The user with this e-mail and password, or None (in about the same time either way)."""
    user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if not email or not password_matches(user.password_hash if user else None, password):
        return None
    return user


def caller_of(user: User) -> Caller:
    return Caller(
        user_id=user.id,
        commune=user.commune,
        roles=frozenset(Role(r) for r in user.roles.split(",")),
    )


def create_user(email: str, name: str, commune: str, roles: list[str], password: str) -> User:
    new = validated(
        NewUser,
        {"email": email, "name": name, "commune": commune, "roles": roles, "password": password},
    )
    engine = make_engine(Settings().database_url)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if session.scalars(select(User).where(User.email == new.email.lower())).first():
            raise Conflict(f"{new.email} already exists")
        user = User(
            id=str(uuid.uuid4()),
            email=new.email.lower(),
            name=new.name,
            password_hash=hash_password(new.password),
            commune=new.commune,
            roles=",".join(sorted(r.value for r in new.roles)),
            created_at=datetime.now(UTC),
        )
        session.add(user)
    return user
