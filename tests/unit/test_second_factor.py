"""The second factor's pure parts: TOTP codes on a pinned clock, each accepted once; recovery
codes; who needs a factor; the QR code the pages' CSP allows; the pages' proof that the
password was right; what the API's contract says of a missing factor."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine

from gateway import totp
from gateway.pages.second_factor import PendingSignIn, codes_from
from gateway.second_factor import Codes, SecondFactors
from gateway.settings import Settings

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOON = datetime(2026, 3, 10, 11, 0, 5, tzinfo=UTC)  # 5 s into a 30-second step
STEP = timedelta(seconds=30)


def step_of(at: datetime) -> int:
    return int(at.timestamp()) // 30


# -- TOTP codes -------------------------------------------------------------------------


@time_machine.travel(NOON, tick=False)
def test_the_current_code_is_accepted_for_its_step():
    code = totp.code_at(SECRET, datetime.now(UTC))
    assert totp.accepted_step(SECRET, code, None, datetime.now(UTC)) == step_of(NOON)


@time_machine.travel(NOON, tick=False)
def test_a_code_typed_with_spaces_is_the_same_code():
    code = totp.code_at(SECRET, NOON)
    assert totp.accepted_step(SECRET, f" {code[:3]} {code[3:]} ", None, NOON) == step_of(NOON)


def test_the_codes_of_the_neighbouring_steps_are_accepted_not_further():
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, NOON - STEP), None, NOON) == (
        step_of(NOON) - 1
    )
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, NOON + STEP), None, NOON) == (
        step_of(NOON) + 1
    )
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, NOON - 3 * STEP), None, NOON) is None
    assert totp.accepted_step(SECRET, totp.code_at(SECRET, NOON + 3 * STEP), None, NOON) is None


def test_a_code_is_accepted_once():
    code = totp.code_at(SECRET, NOON)
    used = totp.accepted_step(SECRET, code, None, NOON)
    assert used is not None
    assert totp.accepted_step(SECRET, code, used, NOON) is None
    assert totp.accepted_step(SECRET, code, used, NOON + timedelta(seconds=20)) is None


def test_an_older_code_is_refused_after_a_newer_one():
    newer = totp.accepted_step(SECRET, totp.code_at(SECRET, NOON), None, NOON)
    older = totp.code_at(SECRET, NOON - STEP)
    assert totp.accepted_step(SECRET, older, newer, NOON) is None
    # the next step's code still comes in
    later = totp.code_at(SECRET, NOON + STEP)
    assert totp.accepted_step(SECRET, later, newer, NOON + STEP) == newer + 1


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34 5"])
def test_what_is_not_six_ascii_digits_is_refused(code):
    assert totp.accepted_step(SECRET, code, None, NOON) is None


def test_another_secret_s_code_is_refused():
    other = totp.new_secret()
    assert other != totp.new_secret()
    assert len(other) == 32
    code = totp.code_at(other, NOON)
    if code != totp.code_at(SECRET, NOON):  # one chance in a million
        assert totp.accepted_step(SECRET, code, None, NOON) is None


# -- recovery codes ---------------------------------------------------------------------


def test_ten_recovery_codes_each_with_its_own_selector():
    codes = totp.new_recovery_codes()
    assert len(codes) == totp.RECOVERY_CODES == 10
    plains = [totp.recovery_plain(code) for code in codes]
    assert all(plains)
    assert len({totp.recovery_selector(p) for p in plains}) == 10
    assert all(len(code) == 14 and code.count("-") == 2 for code in codes)


def test_a_recovery_code_is_read_whatever_its_case_and_spacing():
    code = totp.new_recovery_codes()[0]
    plain = code.replace("-", "")
    assert totp.recovery_plain(code.upper()) == plain
    assert totp.recovery_plain(" " + code.replace("-", " ") + " ") == plain


@pytest.mark.parametrize("typed", ["", "abcd-efgh", "abcd-efgh-jkm0", "abcd-efgh-jkmn-pq"])
def test_what_cannot_be_a_recovery_code_is_refused(typed):
    assert totp.recovery_plain(typed) is None


def test_one_field_takes_the_app_s_code_or_a_recovery_code():
    assert codes_from(" 123 456 ") == Codes(totp="123456")
    assert codes_from("k7m2-9xq4-p8vd") == Codes(recovery="k7m2-9xq4-p8vd")
    assert not codes_from("  ").given


# -- who needs one ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "commune_requires", "required"),
    [
        ({"operator"}, False, True),
        ({"finance"}, False, False),
        ({"finance", "manager"}, True, True),
        ({"manager", "agent"}, True, False),
    ],
)
def test_the_operator_always_needs_a_second_factor_finance_when_its_commune_says(
    roles, commune_requires, required
):
    class Policy(SecondFactors):  # the commune's policy, not read from a database here
        def commune_requires(self, commune: str) -> bool:
            return commune_requires

    user = SimpleNamespace(
        id="u", email="x@42218.fr", commune="42218", roles=",".join(sorted(roles))
    )
    assert Policy(engine=None).required(user) is required


def test_only_demo_mode_lets_the_demo_operator_in_without_a_second_factor():
    exempt = "operator@mutualis-demo.fr"
    assert Settings(demo_mode=True, second_factor_exempt=exempt).exempt_from_second_factor() == {
        exempt
    }
    assert not Settings(demo_mode=False, second_factor_exempt=exempt).exempt_from_second_factor()


# -- the QR code ------------------------------------------------------------------------


def test_the_qr_code_is_an_svg_image_with_no_style_or_script():
    uri = totp.provisioning_uri(SECRET, "camille@example.fr")
    assert uri.startswith("otpauth://totp/Mutualis:camille%40example.fr?secret=" + SECRET)
    image = totp.qr_image(uri)
    assert image.startswith("data:image/svg+xml")  # the pages' CSP: img-src 'self' data:
    svg = urllib.parse.unquote(image.split(",", 1)[1])
    assert svg.startswith("<svg") and "style" not in svg and "script" not in svg


# -- the pages' proof of the password -------------------------------------------------


def test_the_proof_of_the_password_holds_for_its_browser_and_a_while():
    pending = PendingSignIn("k" * 40, ttl_seconds=600)
    with time_machine.travel(NOON, tick=False):
        proof = pending.issue("u-camille", "browser-cookie")
        assert pending.user_of(proof, "browser-cookie") == "u-camille"
        assert pending.user_of(proof, "another-browser") is None
        assert pending.user_of(proof, "") is None
        assert PendingSignIn("other" * 8, 600).user_of(proof, "browser-cookie") is None
        assert pending.user_of(proof + "x", "browser-cookie") is None
    with time_machine.travel(NOON + timedelta(seconds=601), tick=False):
        assert pending.user_of(proof, "browser-cookie") is None


def test_an_api_token_is_no_proof_of_the_password():
    from contracts.caller import Caller, Role
    from gateway.auth import TokenIssuer

    secret = "k" * 40
    token = TokenIssuer(secret, "mutualis-api", "mutualis-gateway", 900).issue(
        Caller(user_id="u-camille", commune="42218", roles=frozenset({Role.OPERATOR}))
    )
    assert PendingSignIn(secret, 600).user_of(token, "browser-cookie") is None


# -- the contract -----------------------------------------------------------------------


def test_the_token_route_documents_the_missing_factor():
    from gateway.service import openapi_document

    operation = openapi_document()["paths"]["/api/v1/auth/token"]["post"]
    unauthorised = operation["responses"]["401"]["content"]["application/problem+json"]
    extension = unauthorised["schema"]["allOf"][1]["properties"]
    assert extension["missing_factor"] == {"type": "string", "enum": ["totp"]}
    assert operation["responses"]["429"]["headers"]["Retry-After"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = openapi_document()["components"]["schemas"][body.rsplit("/", 1)[1]]
    assert {"totp_code", "recovery_code"} <= set(request["properties"])
