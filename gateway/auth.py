"""Passwords (argon2) and access tokens (JWT, HS256 pinned, with audience and expiry)."""

from __future__ import annotations

import time
import uuid

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from contracts.caller import Caller, Role

ALGORITHM = "HS256"
_hasher = PasswordHasher()
# verifying against this when the e-mail is unknown keeps response times alike
_DUMMY_HASH = _hasher.hash("no such user")


class InvalidToken(Exception):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class TokenIssuer:
    def __init__(self, secret: str, audience: str, issuer: str, ttl_seconds: int):
        self.secret = secret
        self.audience = audience
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds

    @classmethod
    def from_settings(cls, settings) -> TokenIssuer:
        return cls(
            settings.token_secret,
            settings.token_audience,
            settings.token_issuer,
            settings.token_ttl_seconds,
        )

    def issue(self, caller: Caller) -> str:
        now = int(time.time())
        claims = {
            "sub": caller.user_id,
            "commune": caller.commune,
            "roles": sorted(r.value for r in caller.roles),
            "aud": self.audience,
            "iss": self.issuer,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Caller:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
            return Caller(
                user_id=claims["sub"],
                commune=claims["commune"],
                roles=frozenset(Role(r) for r in claims["roles"]),
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from None
