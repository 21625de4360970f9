"""The second factor in the pages: the code asked after the password, enrolment (a QR code,
the secret in text, recovery codes) at sign-in for whoever must and from the account page
for whoever wants to."""

from __future__ import annotations

import hashlib

import jwt

from contracts import clock
from gateway.auth import ALGORITHM
from gateway.errors import TooManyLogins
from gateway.login_attempts import LoginGuard
from gateway.models import User
from gateway.pages.entrypoint import LOGIN_CSRF_COOKIE, Page, Web, page
from gateway.second_factor import Codes, Enrolment, SecondFactors
from infra.database import service_engine

CODE_PATH = "/connexion/code"
ACCOUNT_PATH = "/compte/double-authentification"


class PendingSignIn:
    """Proof, carried by the code's form, that this browser gave the right password a moment
    ago: signed with the token key, for another audience than the API's, bound to the
    browser's login CSRF cookie, short-lived."""

    AUDIENCE = "mutualis-second-factor"

    def __init__(self, secret: str, ttl_seconds: int):
        self.secret = secret
        self.ttl = ttl_seconds

    @classmethod
    def from_settings(cls, settings) -> PendingSignIn:
        return cls(settings.token_secret, settings.second_factor_wait_seconds)

    @staticmethod
    def _browser(csrf_cookie: str) -> str:
        return hashlib.sha256(csrf_cookie.encode()).hexdigest()[:32]

    def issue(self, user_id: str, csrf_cookie: str) -> str:
        claims = {
            "sub": user_id,
            "aud": self.AUDIENCE,
            "exp": int(clock.now().timestamp()) + self.ttl,
            "browser": self._browser(csrf_cookie),
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def user_of(self, token: str, csrf_cookie: str) -> str | None:
        """The user whose password this browser gave, while the proof holds."""
        try:
            claims = jwt.decode(
                token[:1000], self.secret, algorithms=[ALGORITHM], audience=self.AUDIENCE
            )
        except jwt.PyJWTError:
            return None
        if not csrf_cookie or claims.get("browser") != self._browser(csrf_cookie):
            return None
        return claims.get("sub")


def codes_from(typed: str) -> Codes:
    """One field takes either: six digits are the app's code, anything else a recovery
    code."""
    typed = typed.strip()[:40]
    digits = "".join(typed.split())
    return Codes(totp=digits) if digits.isdigit() else Codes(recovery=typed)


def enrolment_page(enrolment: Enrolment, action: str, error: str | None = None, **hidden) -> Page:
    return Page(
        "second_factor_enrol.html",
        {
            "enrolment": enrolment,
            "secret_groups": [
                enrolment.secret[i : i + 4] for i in range(0, len(enrolment.secret), 4)
            ],
            "action": action,
            "hidden": hidden,
            "error": error,
        },
        401 if error else 200,
    )


class SecondFactorPages:
    def _factors(self) -> SecondFactors:
        return SecondFactors.from_config(service_engine(self.config), self.config)

    def _pending(self) -> PendingSignIn:
        return PendingSignIn.from_settings(self.config["GATEWAY"])

    def second_step(self, request, web: Web, user_id: str, enrolled: bool) -> Page:
        """What the login page answers after the right password of an account with a second
        factor: the code's form, or enrolment when the account must have one and has not."""
        hidden = {
            "attente": self._pending().issue(user_id, request.cookies.get(LOGIN_CSRF_COOKIE, "")),
            "suite": web.form.get("suite", ""),
        }
        if enrolled:
            return Page("login_code.html", hidden | {"error": None})
        return enrolment_page(self._factors().start_enrolment(user_id), CODE_PATH, **hidden)

    @page("POST", CODE_PATH, public=True)
    def login_code_submit(self, request, web: Web):
        pending = web.form.get("attente", "")
        user_id = self._pending().user_of(pending, request.cookies.get(LOGIN_CSRF_COOKIE, ""))
        with self.db.reading() as session:
            user = session.get(User, user_id) if user_id else None
        if user is None or user.disabled_at is not None:
            return Page(
                "login.html",
                {
                    "target": web.form.get("suite", ""),
                    "email": "",
                    "error": "Le délai est dépassé : saisissez à nouveau votre mot de passe.",
                },
                401,
            )
        hidden = {"attente": pending, "suite": web.form.get("suite", "")}
        guard = LoginGuard(self.config, request, user.email, "pages")
        try:
            guard.attempt()
        except TooManyLogins as exc:
            wait = exc.retry_after_seconds
            return Page(
                "login_code.html",
                hidden | {"error": f"Trop d'essais manqués : réessayez dans {wait} s."},
                429,
                headers={"Retry-After": str(wait)},
            )
        factors, typed = self._factors(), web.form.get("code", "")
        # the pending sign-in this code completes: the same form sent again at once (a double
        # click) finds it completed and signs the browser in too
        proof = hashlib.sha256(pending.encode()).hexdigest()
        if user.totp_enrolled_at is None:
            done = factors.confirm_enrolment(user.id, codes_from(typed).totp, proof=proof)
        else:
            done = factors.verify(user.id, codes_from(typed), proof=proof)
        if done or factors.completed_just_now(user.id, proof):
            guard.succeeded()
            return web.sign_in(user.id, web.form.get("suite", ""))
        guard.failed()
        if user.totp_enrolled_at is None:
            return enrolment_page(
                factors.start_enrolment(user.id, keep_secret=True),
                CODE_PATH,
                "Ce code ne convient pas : saisissez le code affiché maintenant par "
                "l'application. Les codes de secours ont changé : notez ceux-ci.",
                **hidden,
            )
        return Page(
            "login_code.html",
            hidden | {"error": "Code incorrect ou déjà utilisé."},
            401,
        )

    # -- the account's page -----------------------------------------------------------

    def _account_page(self, web: Web, message: str | None = None) -> Page:
        factors = self._factors()
        with self.db.reading() as session:  # closed before `factors` reads (SQLite: one)
            user = session.get(User, web.visitor.user_id)
        enrolled = user.totp_enrolled_at is not None
        return Page(
            "second_factor.html",
            {
                "enrolled": enrolled,
                "required": factors.required(user),
                "codes_left": factors.recovery_codes_left(user.id) if enrolled else 0,
                "message": message,
            },
        )

    @page("GET", ACCOUNT_PATH)
    def second_factor_page(self, request, web: Web):
        return self._account_page(web)

    @page("POST", ACCOUNT_PATH)
    def second_factor_start(self, request, web: Web):
        """Starts (or starts again) enrolling: a new secret and new recovery codes."""
        return enrolment_page(
            self._factors().start_enrolment(web.visitor.user_id), f"{ACCOUNT_PATH}/confirmation"
        )

    @page("POST", f"{ACCOUNT_PATH}/confirmation")
    def second_factor_confirm(self, request, web: Web):
        factors = self._factors()
        if factors.confirm_enrolment(
            web.visitor.user_id, codes_from(web.form.get("code", "")).totp
        ):
            return self._account_page(
                web,
                "La double authentification est activée : elle sera demandée à chaque connexion.",
            )
        return enrolment_page(
            factors.start_enrolment(web.visitor.user_id, keep_secret=True),
            f"{ACCOUNT_PATH}/confirmation",
            "Ce code ne convient pas : saisissez le code affiché maintenant par "
            "l'application. Les codes de secours ont changé : notez ceux-ci.",
        )
