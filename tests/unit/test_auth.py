"""Passwords and access tokens: what verifies, and every forged or stale token refused."""

import hashlib
import hmac
import json
import time

import jwt
import pytest
from jwt.utils import base64url_encode

from contracts.caller import Caller, Role
from gateway.auth import InvalidToken, TokenIssuer, hash_password, password_matches

SECRET = "unit-test-secret-" + "s" * 64  # long enough for HS512 too
AUDIENCE = "mutualis-api"
ISSUER = "mutualis-gateway"

ALICE = Caller(user_id="u-alice", commune="42218", roles=frozenset({Role.MANAGER, Role.AGENT}))


@pytest.fixture(scope="module")
def alice_hash() -> str:
    return hash_password("correct horse battery staple")


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(SECRET, AUDIENCE, ISSUER, ttl_seconds=900)


def claims(**changes) -> dict:
    now = int(time.time())
    base = {
        "sub": ALICE.user_id,
        "commune": ALICE.commune,
        "roles": ["agent", "manager"],
        "aud": AUDIENCE,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 900,
    }
    return {k: v for k, v in (base | changes).items() if v is not None}


# -- passwords --------------------------------------------------------------------------


def test_the_right_password_matches(alice_hash):
    assert alice_hash != "correct horse battery staple"
    assert password_matches(alice_hash, "correct horse battery staple")


def test_a_wrong_password_does_not_match(alice_hash):
    assert not password_matches(alice_hash, "Correct horse battery staple")


def test_no_hash_never_matches():
    # the unknown-user path verifies against a dummy hash of "no such user"
    assert not password_matches(None, "no such user")


def test_a_corrupt_hash_does_not_match():
    assert not password_matches("not-an-argon2-hash", "anything")


# -- tokens -----------------------------------------------------------------------------


def test_issue_then_verify_gives_the_same_caller(issuer):
    assert issuer.verify(issuer.issue(ALICE)) == ALICE


def test_a_token_carries_audience_issuer_and_expiry(issuer):
    payload = jwt.decode(issuer.issue(ALICE), SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert payload["iss"] == ISSUER
    assert payload["exp"] - payload["iat"] == 900
    assert payload["roles"] == ["agent", "manager"]


def test_two_tokens_for_the_same_caller_differ(issuer):
    assert issuer.issue(ALICE) != issuer.issue(ALICE)


def test_an_expired_token_is_refused():
    stale = TokenIssuer(SECRET, AUDIENCE, ISSUER, ttl_seconds=-1)
    with pytest.raises(InvalidToken):
        stale.verify(stale.issue(ALICE))


@pytest.mark.parametrize(
    "other",
    [
        TokenIssuer(SECRET, "another-api", ISSUER, 900),
        TokenIssuer(SECRET, AUDIENCE, "someone-else", 900),
        TokenIssuer("another-secret-that-is-long-enough-for-hs256", AUDIENCE, ISSUER, 900),
    ],
    ids=["audience", "issuer", "secret"],
)
def test_a_token_from_another_issuer_is_refused(issuer, other):
    with pytest.raises(InvalidToken):
        issuer.verify(other.issue(ALICE))


def test_an_unsigned_alg_none_token_is_refused(issuer):
    token = jwt.encode(claims(), None, algorithm="none")
    with pytest.raises(InvalidToken):
        issuer.verify(token)


def test_an_hs512_token_with_the_right_secret_is_refused(issuer):
    token = jwt.encode(claims(), SECRET, algorithm="HS512")
    with pytest.raises(InvalidToken):
        issuer.verify(token)


def test_an_rs256_labelled_token_signed_with_the_secret_is_refused(issuer):
    # algorithm confusion: header says RS256, signature is an HMAC with the shared secret
    header = base64url_encode(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    body = base64url_encode(json.dumps(claims()).encode())
    signing_input = header + b"." + body
    signature = base64url_encode(hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest())
    with pytest.raises(InvalidToken):
        issuer.verify((signing_input + b"." + signature).decode())


def test_a_tampered_payload_is_refused(issuer):
    header, _, signature = issuer.issue(ALICE).split(".")
    forged = base64url_encode(json.dumps(claims(commune="42044")).encode()).decode()
    with pytest.raises(InvalidToken):
        issuer.verify(f"{header}.{forged}.{signature}")


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "aud", "iss", "commune", "roles"])
def test_a_token_missing_a_claim_is_refused(issuer, missing):
    token = jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        issuer.verify(token)


def test_a_token_with_an_unknown_role_is_refused(issuer):
    token = jwt.encode(claims(roles=["manager", "mayor"]), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        issuer.verify(token)


@pytest.mark.parametrize("garbage", ["", "not.a.token", "a.b", "Bearer x"])
def test_garbage_is_refused(issuer, garbage):
    with pytest.raises(InvalidToken):
        issuer.verify(garbage)


def test_a_token_signed_by_this_secret_with_hs256_is_accepted(issuer):
    # the forged-token tests above differ from this one only in what they forge
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert issuer.verify(token) == ALICE
