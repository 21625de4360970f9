"""Tables of the gateway database: users and their second factor, web sessions, idempotency
keys, failed logins and the communes' sign-in rules, nothing of the domain."""

from datetime import datetime

from sqlalchemy import Boolean, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from infra.types import UtcDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    commune: Mapped[str] = mapped_column(String(5), index=True)
    roles: Mapped[str] = mapped_column(String(100))  # comma-separated
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # a disabled user signs in no more; their tokens are refused within a minute
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # the TOTP secret (base32, in clear: the codes are an HMAC of it, see docs/security.md);
    # set while enrolling, in force once enrolled_at is set
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # the time step of the last code accepted: that code, and any older one, is refused
    totp_last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # the digest of the pending sign-in (password given, code asked) a code last completed,
    # and when: the same form sent again at once (a double click) signs the browser in again
    last_sign_in_proof: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class IdempotencyRecord(Base):
    """The first response to (user, key); replayed for a repeat of the same request."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_user_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(36))
    key: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)  # None while the first is in flight
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WebSession(Base):
    """A browser signed in to the web pages. The cookie holds a random token; only its SHA-256
    is stored, so the table's content cannot be replayed as cookies."""

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie token
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class LoginFailures(Base):
    """Failed logins of one account or one client address: after the free ones, each makes
    the next attempt wait longer. In the database, so that a restart forgets nothing and
    every gateway replica sees the same count."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # account:… or address:…
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class RecoveryCode(Base):
    """A single-use code that stands for a TOTP code (the phone is lost): argon2-hashed like
    a password; its first group (the selector) is in clear so one hash is checked, not ten."""

    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "selector", name="uq_recovery_user_selector"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    selector: Mapped[str] = mapped_column(String(8))
    code_hash: Mapped[str] = mapped_column(String(200))
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class CommunePolicy(Base):
    """A commune's rules for signing in: whether its finance team must use a second factor
    (the operator sets it: `mutualis users require-totp --commune INSEE`)."""

    __tablename__ = "commune_policies"

    commune: Mapped[str] = mapped_column(String(5), primary_key=True)
    finance_second_factor: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
