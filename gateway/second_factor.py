"""Users' second factor in the gateway database: who needs one (operators; finance users of a
commune that requires it; anyone who enrolled), enrolment, and checking a TOTP or recovery
code, each accepted once."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contracts import clock
from contracts.caller import Role
from contracts.errors import Conflict, NotFound
from gateway import totp
from gateway.errors import Unauthenticated
from gateway.models import CommunePolicy, RecoveryCode, User, WebSession
from gateway.users import caller_of
from infra.communes import communes

FACTOR = "totp"
# a code's form sent again within this many seconds by the browser it signed in: one sign-in
REPEAT_SECONDS = 30


class MissingFactor(Unauthenticated):
    """The password is right, and the account signs in with a second factor too (401, the
    problem says which: `missing_factor`)."""

    title = "Second factor required"

    def __init__(self, enrolled: bool, user_id: str = ""):
        detail = (
            "This account signs in with a second factor: send totp_code (or recovery_code)"
            if enrolled
            else "This account must enrol a second factor first: sign in on the web pages"
            " (/connexion), which show how, then send totp_code"
        )
        super().__init__(detail, missing_factor=FACTOR, enrolled=enrolled)
        self.user_id = user_id  # for the pages' next step; not in the problem


@dataclass(frozen=True)
class Codes:
    """What a sign-in brings besides the password: a TOTP code or a recovery code."""

    totp: str = ""
    recovery: str = ""

    @property
    def given(self) -> bool:
        return bool(self.totp or self.recovery)


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows, once: the secret (as a QR code and as text) and the
    recovery codes."""

    secret: str
    uri: str
    qr_image: str
    recovery_codes: list[str]


def _completing(proof: str | None, at: datetime) -> dict:
    """The columns that remember which pending sign-in a code completed, and when."""
    return {} if proof is None else {"last_sign_in_proof": proof, "last_sign_in_at": at}


class SecondFactors:
    def __init__(self, engine: Engine, exempt: frozenset[str] = frozenset()):
        self.engine = engine
        # demo mode only (Settings.exempt_from_second_factor): e-mails let in without one
        self.exempt = exempt

    @classmethod
    def from_config(cls, engine: Engine, config: dict) -> SecondFactors:
        return cls(engine, config["GATEWAY"].exempt_from_second_factor())

    # -- who needs one ----------------------------------------------------------------

    def commune_requires(self, commune: str) -> bool:
        with self.engine.connect() as conn:
            return bool(
                conn.scalar(
                    select(CommunePolicy.finance_second_factor).where(
                        CommunePolicy.commune == commune
                    )
                )
            )

    def required(self, user: User) -> bool:
        """Whether the user may not sign in without a second factor, enrolled or not: the
        operator always; finance when their commune says so (asked only of finance)."""
        if user.email in self.exempt:
            return False
        caller = caller_of(user)
        if caller.has(Role.OPERATOR):
            return True
        return caller.has(Role.FINANCE) and self.commune_requires(user.commune)

    def wanted(self, user: User) -> bool:
        """Whether signing in asks for a code: the user enrolled, or must."""
        return user.totp_enrolled_at is not None or self.required(user)

    # -- enrolment --------------------------------------------------------------------

    def start_enrolment(self, user_id: str, keep_secret: bool = False) -> Enrolment:
        """A new secret (or, `keep_secret`, the one being enrolled, already in the app) and
        new recovery codes, in force once a code of the secret confirms them. An enrolled
        user's are never replaced here."""
        codes = totp.new_recovery_codes()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(User.email, User.totp_secret, User.totp_enrolled_at).where(
                    User.id == user_id
                )
            ).first()
            if row is None:
                raise NotFound("No such user")
            if row.totp_enrolled_at is not None:
                raise Conflict("This account already has a second factor")
            secret = row.totp_secret if keep_secret and row.totp_secret else totp.new_secret()
            conn.execute(update(User).where(User.id == user_id).values(totp_secret=secret))
            conn.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
            conn.execute(
                RecoveryCode.__table__.insert(),
                [
                    {
                        "user_id": user_id,
                        "selector": totp.recovery_selector(totp.recovery_plain(code) or ""),
                        "code_hash": totp.recovery_digest(totp.recovery_plain(code) or ""),
                        "used_at": None,
                    }
                    for code in codes
                ],
            )
        uri = totp.provisioning_uri(secret, row.email)
        return Enrolment(secret, uri, totp.qr_image(uri), codes)

    def confirm_enrolment(
        self, user_id: str, code: str, at: datetime | None = None, proof: str | None = None
    ) -> bool:
        """Whether `code` is a current code of the secret being enrolled: then the second
        factor is in force (and that code is used, completing the pending sign-in `proof`)."""
        at = at or clock.now()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(User.totp_secret, User.totp_enrolled_at).where(User.id == user_id)
            ).first()
            if row is None or row.totp_secret is None or row.totp_enrolled_at is not None:
                return False
            step = totp.accepted_step(row.totp_secret, code, None, at)
            if step is None:
                return False
            done = conn.execute(
                update(User)
                .where(User.id == user_id, User.totp_enrolled_at.is_(None))
                .values(totp_enrolled_at=at, totp_last_step=step, **_completing(proof, at))
            )
        return bool(done.rowcount)

    # -- signing in -------------------------------------------------------------------

    def verify(
        self, user_id: str, codes: Codes, at: datetime | None = None, proof: str | None = None
    ) -> bool:
        """Whether the code is good for an enrolled user, and now used: a TOTP code of a step
        later than the last accepted one, or an unused recovery code. With `proof`, the
        pending sign-in it completes is remembered in the same statement (see
        completed_just_now)."""
        at = at or clock.now()
        if codes.totp:
            return self._verify_totp(user_id, codes.totp, at, proof)
        if codes.recovery:
            return self._verify_recovery(user_id, codes.recovery, at, proof)
        return False

    def _verify_totp(self, user_id: str, code: str, at: datetime, proof: str | None) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(User.totp_secret, User.totp_last_step).where(
                    User.id == user_id, User.totp_enrolled_at.is_not(None)
                )
            ).first()
        if row is None or row.totp_secret is None:
            return False
        step = totp.accepted_step(row.totp_secret, code, row.totp_last_step, at)
        if step is None:
            return False
        # one statement: of two requests with the same code at once, one wins
        with self.engine.begin() as conn:
            used = conn.execute(
                update(User)
                .where(
                    User.id == user_id,
                    or_(User.totp_last_step.is_(None), User.totp_last_step < step),
                )
                .values(totp_last_step=step, **_completing(proof, at))
            )
        return bool(used.rowcount)

    def _verify_recovery(self, user_id: str, code: str, at: datetime, proof: str | None) -> bool:
        plain = totp.recovery_plain(code)
        if plain is None:
            return False
        with self.engine.connect() as conn:
            row = conn.execute(
                select(RecoveryCode.id, RecoveryCode.code_hash)
                .join(User, User.id == RecoveryCode.user_id)
                .where(
                    RecoveryCode.user_id == user_id,
                    RecoveryCode.selector == totp.recovery_selector(plain),
                    RecoveryCode.used_at.is_(None),
                    User.totp_enrolled_at.is_not(None),
                )
            ).first()
        if row is None or not hmac.compare_digest(row.code_hash, totp.recovery_digest(plain)):
            return False
        with self.engine.begin() as conn:
            used = conn.execute(
                update(RecoveryCode)
                .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                .values(used_at=at)
            )
            if used.rowcount and proof is not None:
                conn.execute(update(User).where(User.id == user_id).values(_completing(proof, at)))
        return bool(used.rowcount)

    # -- the same form sent twice -----------------------------------------------------

    def completed_just_now(self, user_id: str, proof: str, at: datetime | None = None) -> bool:
        """Whether a code completed this very pending sign-in less than REPEAT_SECONDS ago:
        its form sent again (a double click) is the same sign-in, not a replayed code. Only
        the browser that gave the password holds the pending sign-in."""
        at = at or clock.now()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(User.last_sign_in_proof, User.last_sign_in_at).where(User.id == user_id)
            ).first()
        return (
            row is not None
            and row.last_sign_in_proof is not None
            and hmac.compare_digest(row.last_sign_in_proof, proof)
            and at - row.last_sign_in_at < timedelta(seconds=REPEAT_SECONDS)
        )

    def recovery_codes_left(self, user_id: str) -> int:
        with self.engine.connect() as conn:
            return len(
                conn.scalars(
                    select(RecoveryCode.id).where(
                        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
                    )
                ).all()
            )

    # -- the operator's commands ------------------------------------------------------

    def reset(self, email: str) -> User:
        """The user lost their phone and their recovery codes: their second factor is gone
        and their web sessions end; their next sign-in enrols again if they must."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
            if user is None:
                raise NotFound(f"no user has the e-mail {email}")
            user.totp_secret = user.totp_enrolled_at = user.totp_last_step = None
            session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
            session.execute(delete(WebSession).where(WebSession.user_id == user.id))
        return user

    def require_for_finance(self, commune: str, required: bool = True) -> int:
        """Sets whether the commune's finance team must use a second factor. When it must,
        the web sessions of its finance users without one end (their next sign-in starts
        enrolment); returns how many users that signed out."""
        if communes().get(commune) is None:
            raise NotFound(f"no commune has INSEE code {commune}")
        now = clock.now()
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(CommunePolicy)
                .where(CommunePolicy.commune == commune)
                .values(finance_second_factor=required, changed_at=now)
            )
            if not changed.rowcount:
                conn.execute(
                    CommunePolicy.__table__.insert().values(
                        commune=commune, finance_second_factor=required, changed_at=now
                    )
                )
            if not required:
                return 0
            unenrolled = conn.scalars(
                select(User.id).where(
                    User.commune == commune,
                    User.roles.like(f"%{Role.FINANCE.value}%"),
                    User.totp_enrolled_at.is_(None),
                )
            ).all()
            conn.execute(delete(WebSession).where(WebSession.user_id.in_(unenrolled)))
        return len(unenrolled)
