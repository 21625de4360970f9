"""Server-side sessions of the web pages, in the gateway database. The browser holds a random
token in an HttpOnly cookie; the table holds its SHA-256, the user and the CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from contracts import clock
from contracts.caller import Caller, Role
from gateway.models import User, WebSession
from infra.communes import communes


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_secret(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True)
class Visitor:
    """Who is looking at a page: the signed-in user, read afresh from the users table at
    each request (a changed role applies at once)."""

    user_id: str
    email: str
    name: str
    commune: str
    roles: frozenset[Role]
    csrf_token: str

    @property
    def caller(self) -> Caller:
        return Caller(user_id=self.user_id, commune=self.commune, roles=self.roles)

    @property
    def commune_name(self) -> str:
        found = communes().get(self.commune)
        return found.name if found else self.commune

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


class SessionStore:
    def __init__(self, engine: Engine, ttl_seconds: int):
        self.engine = engine
        self.ttl = timedelta(seconds=ttl_seconds)

    def open(self, user_id: str) -> str:
        """A new session for the user (a fresh token at each sign-in: no fixation); returns
        the cookie's token. Expired sessions are swept on the way."""
        token = secrets.token_urlsafe(32)
        now = clock.now()
        with self.engine.begin() as conn:
            conn.execute(delete(WebSession).where(WebSession.expires_at < now))
            conn.execute(
                WebSession.__table__.insert().values(
                    id=digest(token),
                    user_id=user_id,
                    csrf_token=secrets.token_urlsafe(32),
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
        return token

    def visitor(self, token: str | None) -> Visitor | None:
        if not token or len(token) > 200:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    User.id,
                    User.email,
                    User.name,
                    User.commune,
                    User.roles,
                    WebSession.csrf_token,
                )
                .join(User, User.id == WebSession.user_id)
                .where(
                    WebSession.id == digest(token),
                    WebSession.expires_at > clock.now(),
                    User.disabled_at.is_(None),
                )
            ).first()
        if row is None:
            return None
        return Visitor(
            user_id=row.id,
            email=row.email,
            name=row.name,
            commune=row.commune,
            roles=frozenset(Role(r) for r in row.roles.split(",") if r),
            csrf_token=row.csrf_token,
        )

    def close_everywhere(self, token: str | None) -> None:
        """Signs the session's user out of every browser they are signed in with."""
        if token:
            same_user = select(WebSession.user_id).where(WebSession.id == digest(token))
            with self.engine.begin() as conn:
                conn.execute(delete(WebSession).where(WebSession.user_id.in_(same_user)))
