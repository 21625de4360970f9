"""Passwords (argon2) and access tokens (JWT, HS256 pinned, with audience, expiry and the
id of the key that signed them, so that keys rotate without signing everyone out).

A token verified once is remembered until it expires: its signature and claims cannot
change, only time can make it invalid, so a client's next request with it costs a look-up
and an expiry check, not a signature check and a decode (about a twentieth of the
gateway's CPU per booking). Whether its user still stands behind it is checked on every
request all the same (gateway.users.live_users). The memory is bounded: beyond
VERIFIED_TOKENS it forgets the token used least recently (one that comes back is verified
in full again)."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections import OrderedDict
from types import MappingProxyType
from typing import NamedTuple

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from contracts import clock
from contracts.caller import Caller, Role

ALGORITHM = "HS256"
_hasher = PasswordHasher()
# verifying against this when the e-mail is unknown keeps response times alike
_DUMMY_HASH = _hasher.hash("no such user")
# tokens remembered as verified (each a few hundred bytes); beyond, the least recently used
# is forgotten
VERIFIED_TOKENS = 10_000


class InvalidToken(Exception):
    pass


class Verified(NamedTuple):
    """What a token said when it was verified."""

    caller: Caller
    factor: int | None
    expires: int  # its `exp`


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def key_id(secret: str) -> str:
    """A token's `kid`: names its key without revealing it (a prefix of the key's SHA-256)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class TokenIssuer:
    """Signs with the current key; verifies with the key the token names, the current one or,
    during a rotation, the previous one.

    The keys come from the settings, read when the gateway starts, and an issuer's never
    change: a rotation restarts the gateway, with an empty memory of verified tokens (and
    `from_settings` gives other keys another issuer), so a remembered token's key is still
    there."""

    def __init__(
        self,
        secret: str,
        audience: str,
        issuer: str,
        ttl_seconds: int,
        previous_secret: str = "",
    ):
        self.secret = secret
        self.kid = key_id(secret)
        self.keys = MappingProxyType({key_id(s): s for s in (previous_secret, secret) if s})
        self.audience = audience
        self.issuer = issuer
        self.ttl_seconds = ttl_seconds
        # tokens this issuer verified, until they expire, the least recently used first
        self._verified: OrderedDict[str, Verified] = OrderedDict()

    @classmethod
    def from_settings(cls, settings) -> TokenIssuer:
        """The process's issuer for these settings: every route remembers the same tokens."""
        return _issuer(
            settings.token_secret,
            settings.token_audience,
            settings.token_issuer,
            settings.token_ttl_seconds,
            settings.token_previous_secret,
        )

    def issue(self, caller: Caller, factor: int | None = None) -> str:
        """A token for `caller`; `factor` names the second factor the user had then (see
        users.factor_of): the token dies with it."""
        now = int(clock.now().timestamp())
        claims = {
            "sub": caller.user_id,
            "commune": caller.commune,
            "roles": sorted(r.value for r in caller.roles),
            "aud": self.audience,
            "iss": self.issuer,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "factor": factor,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM, headers={"kid": self.kid})

    def verify(self, token: str) -> Caller:
        return self.verify_with_factor(token)[0]

    def verify_with_factor(self, token: str) -> tuple[Caller, int | None]:
        """The token's caller and the second factor its user had when it was issued."""
        known = self._verified.get(token)
        if known is not None:
            caller, factor, expires = known
            if expires > clock.now().timestamp():  # as PyJWT checks `exp`
                self._verified.move_to_end(token)
                return caller, factor
            del self._verified[token]
            raise InvalidToken("Signature has expired")
        verified = self._decode(token)
        if len(self._verified) >= VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        self._verified[token] = verified
        return verified.caller, verified.factor

    def _decode(self, token: str) -> Verified:
        """The token checked in full: key, signature, algorithm, audience, issuer, times."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            secret = self.keys.get(kid)
            if secret is None:
                raise InvalidToken("the token names no key of ours")
            claims = jwt.decode(
                token,
                secret,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
            caller = Caller(
                user_id=claims["sub"],
                commune=claims["commune"],
                roles=frozenset(Role(r) for r in claims["roles"]),
            )
            factor = claims.get("factor")
            if factor is not None and not isinstance(factor, int):
                raise InvalidToken("the token's factor is not a number")
            return Verified(caller, factor, int(claims["exp"]))
        except (jwt.PyJWTError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise InvalidToken(str(exc)) from None


@functools.cache
def _issuer(secret: str, audience: str, issuer: str, ttl: int, previous: str) -> TokenIssuer:
    return TokenIssuer(secret, audience, issuer, ttl, previous)
