"""The second factor's codes, without storage: TOTP codes (RFC 6238, an app on the phone),
single-use recovery codes, and the QR code that gives the secret to the app."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
import segno

ISSUER = "Mutualis"
DIGITS = 6
# a code of the step before or after now is taken too: phones drift, people type slowly
DRIFT_STEPS = 1
RECOVERY_CODES = 10
# recovery codes are read from paper: no 0/o, 1/l/i
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_GROUPS = 3
RECOVERY_GROUP_LENGTH = 4


def new_secret() -> str:
    """A fresh TOTP secret, base32 (160 random bits)."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_image(uri: str) -> str:
    """The QR code of `uri` as a data: URI of an SVG image: an <img> the pages' CSP allows
    (img-src 'self' data:), with no inline style or script."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def accepted_step(secret: str, code: str, last_step: int | None, at: datetime) -> int | None:
    """The time step of `code` when it is the code of now (or of a step either side) and of a
    step later than the last one used: a code is accepted once, and an older one after a
    newer one never. None when refused."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS)
    now = totp.timecode(at)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def code_at(secret: str, at: datetime) -> str:
    """The code an app shows at `at` (the tests, and nothing else, compute codes)."""
    return pyotp.TOTP(secret, digits=DIGITS).at(at)


def new_recovery_codes() -> list[str]:
    """Ten codes such as `k7m2-9xq4-p8vd`, each with its own first group (which names it
    among the user's codes, so that only one hash is checked)."""
    codes: dict[str, str] = {}
    while len(codes) < RECOVERY_CODES:
        groups = [
            "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_GROUP_LENGTH))
            for _ in range(RECOVERY_GROUPS)
        ]
        codes.setdefault(groups[0], "-".join(groups))
    return list(codes.values())


def recovery_plain(code: str) -> str | None:
    """A recovery code as typed (any case, spaces or dashes) in its stored form, or None
    when it cannot be one."""
    plain = "".join(ch for ch in code.lower() if ch not in " -\t")
    if len(plain) != RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH or any(
        ch not in RECOVERY_ALPHABET for ch in plain
    ):
        return None
    return plain


def recovery_digest(plain: str) -> str:
    """What is stored of a recovery code: its SHA-256. A code is ~59 random bits, used once
    and behind the login back-off, so a slow password hash adds nothing but blocked time
    (argon2 ten times at each enrolment held the gateway's hub for 1.5 s)."""
    return hashlib.sha256(plain.encode()).hexdigest()


def recovery_selector(plain: str) -> str:
    """The part of a recovery code stored in clear to find its hash (the first group)."""
    return plain[:RECOVERY_GROUP_LENGTH]
