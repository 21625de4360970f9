"""Failed logins slow the guesser down: per account and per client address, a few are free,
then each failure makes the next attempt wait twice as long (429 with Retry-After). The
counts live in the gateway database: a restart forgets nothing, every replica sees them."""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
from collections.abc import Iterable
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from contracts import clock
from gateway.errors import TooManyLogins
from gateway.models import LoginFailures, User
from gateway.second_factor import Codes, MissingFactor, SecondFactors
from gateway.users import authenticate
from infra.database import service_engine

log = logging.getLogger(__name__)

LOGIN_ATTEMPTS = Counter(
    "mutualis_login_attempts_total",
    "Logins by outcome (success, failure, throttled), on the API or the pages",
    ["via", "outcome"],
)


@functools.cache
def proxy_networks(trusted: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The networks of `GATEWAY_TRUSTED_PROXIES`, parsed once (the settings check them at
    start-up: a mistyped network is refused then, not at every login)."""
    return tuple(ipaddress.ip_network(n.strip()) for n in trusted.split(",") if n.strip())


def client_address(remote_addr: str | None, forwarded_for: str, trusted: str) -> str:
    """The address of whoever connects: the peer's, or when the peer is one of our proxies
    (`trusted`, comma-separated networks), the last address it was given that is not one of
    ours in X-Forwarded-For (entries before it are the client's word, not to be believed)."""
    networks = proxy_networks(trusted)

    def ours(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    address = remote_addr or "unknown"
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    while ours(address) and hops:
        address = hops.pop()
    return address


def keys_of(email: str, address: str) -> tuple[str, str]:
    return f"account:{email.strip().lower()[:254]}", f"address:{address[:64]}"


class LoginAttempts:
    def __init__(
        self,
        engine: Engine,
        free_failures: int,
        backoff_seconds: float,
        max_backoff_seconds: float,
        memory_seconds: float,
    ):
        self.engine = engine
        self.free = free_failures
        self.backoff = backoff_seconds
        self.max_backoff = max_backoff_seconds
        self.memory = timedelta(seconds=memory_seconds)

    @classmethod
    def from_settings(cls, engine: Engine, settings) -> LoginAttempts:
        return cls(
            engine,
            settings.login_free_failures,
            settings.login_backoff_seconds,
            settings.login_backoff_max_seconds,
            settings.login_failure_memory_seconds,
        )

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after the n-th failure in a row: none for the free ones, then 1, 2,
        4, … times the base delay, up to the maximum."""
        if failures <= self.free:
            return 0.0
        return min(self.max_backoff, self.backoff * 2 ** min(failures - self.free - 1, 40))

    def attempt(self, keys: Iterable[str], via: str, now: datetime | None = None) -> dict[str, int]:
        """Counts an attempt as a failure of each key before the password is even looked at
        (two guesses at once both count: neither can pass while the other is checked), or
        raises TooManyLogins, counting nothing, while any key must wait (the right password
        waits as well). Returns each key's count; `succeeded` takes the attempt back."""
        now = now or clock.now()
        claimed: dict[str, int] = {}
        try:
            for key in keys:
                claimed[key] = self._claim(key, now)
        except TooManyLogins:
            for key in claimed:
                self._release(key)
            LOGIN_ATTEMPTS.labels(via, "throttled").inc()
            raise
        return claimed

    def failed(self, counts: dict[str, int], via: str, now: datetime | None = None) -> None:
        """The attempt failed (it was counted when it began): a key past its free failures
        waits from now, the end of the attempt (the password's check may take a while)."""
        now = now or clock.now()
        LOGIN_ATTEMPTS.labels(via, "failure").inc()
        for key, failures in counts.items():
            delay = self.delay_after(failures)
            if delay:
                log.warning(
                    "failed logins: %s waits %.0f s after %d failures", key, delay, failures
                )
                with self.engine.begin() as conn:
                    conn.execute(
                        update(LoginFailures)
                        .where(LoginFailures.key == key)
                        .values(blocked_until=now + timedelta(seconds=delay))
                    )

    def succeeded(self, keys: tuple[str, str], via: str) -> None:
        """The account's count starts again; the address's loses this attempt only (a guesser
        could reset it with an account of their own)."""
        LOGIN_ATTEMPTS.labels(via, "success").inc()
        account, address = keys
        with self.engine.begin() as conn:
            conn.execute(delete(LoginFailures).where(LoginFailures.key == account))
        self._release(address)

    def _claim(self, key: str, now: datetime) -> int:
        """One more failure for the key unless it must wait, and from the count, how long the
        next attempt waits — in one transaction holding the row, so that replicas and
        concurrent requests count one after the other. A count without a failure for
        `memory` starts again."""
        row = LoginFailures.key == key
        free = or_(LoginFailures.blocked_until.is_(None), LoginFailures.blocked_until <= now)
        bump = (
            update(LoginFailures)
            .where(row, free)
            .values(
                failures=case(
                    (LoginFailures.last_failed_at < now - self.memory, 1),
                    else_=LoginFailures.failures + 1,
                ),
                last_failed_at=now,
            )
            .returning(LoginFailures.failures)
        )
        with self.engine.begin() as conn:
            failures = conn.execute(bump).scalar()
            if failures is not None:
                # past the free ones, no other attempt goes on while this one is checked
                delay = self.delay_after(failures)
                if delay:
                    until = now + timedelta(seconds=delay)
                    conn.execute(update(LoginFailures).where(row).values(blocked_until=until))
                return failures
            stored = conn.execute(select(LoginFailures.blocked_until).where(row)).first()
        if stored is not None and stored.blocked_until is not None:
            raise TooManyLogins(max(1, math.ceil((stored.blocked_until - now).total_seconds())))
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    LoginFailures.__table__.insert().values(
                        key=key, failures=1, last_failed_at=now, blocked_until=None
                    )
                )
        except IntegrityError:  # another attempt counted the first failure at the same time
            return self._claim(key, now)
        return 1

    def _release(self, key: str) -> None:
        """Takes back an attempt counted by `_claim` that was no failure (it succeeded, or
        another key made it wait): the key was not waiting when it was counted."""
        with self.engine.begin() as conn:
            conn.execute(
                update(LoginFailures)
                .where(LoginFailures.key == key, LoginFailures.failures > 0)
                .values(failures=LoginFailures.failures - 1, blocked_until=None)
            )


class LoginGuard:
    """The back-off of one sign-in: the account's count and the client address's."""

    def __init__(self, config: dict, request, email: str, via: str):
        settings = config["GATEWAY"]
        self.attempts = LoginAttempts.from_settings(service_engine(config), settings)
        address = client_address(
            request.remote_addr,
            request.headers.get("X-Forwarded-For", ""),
            settings.trusted_proxies,
        )
        self.keys = keys_of(email, address)
        self.via = via
        self.counts: dict[str, int] = {}  # each key's count, from the attempt

    def attempt(self) -> None:
        self.counts = self.attempts.attempt(self.keys, self.via)

    def failed(self) -> None:
        self.attempts.failed(self.counts, self.via)

    def succeeded(self) -> None:
        self.attempts.succeeded(self.keys, self.via)


def authenticate_slowly(
    db, config: dict, request, email: str, password: str, via: str, codes: Codes = Codes()
):
    """`authenticate`, refused with TooManyLogins while the account or the client address
    must wait; then the second factor when the user has one or must: MissingFactor without a
    code, None for a wrong or used code (a failure, like a wrong password: guessing codes
    backs off too). Counts the failure or clears the account's count. `via` is api or
    pages."""
    guard = LoginGuard(config, request, email, via)
    guard.attempt()
    with db.reading() as session:
        user: User | None = authenticate(session, email, password)
    if user is not None:
        factors = SecondFactors.from_config(service_engine(config), config)
        if factors.wanted(user):
            if user.totp_enrolled_at is None:
                raise MissingFactor(enrolled=False, user_id=user.id)
            if not codes.given:
                raise MissingFactor(enrolled=True, user_id=user.id)
            if not factors.verify(user.id, codes):
                user = None
    if user is None:
        guard.failed()
    else:
        guard.succeeded()
    return user
