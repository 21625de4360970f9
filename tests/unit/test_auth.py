"""Passwords and access tokens: what verifies, and every forged or stale token refused."""

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import jwt
import pytest
import time_machine
from jwt.utils import base64url_encode

import gateway.auth
from contracts.caller import Caller, Role
from gateway.auth import InvalidToken, TokenIssuer, hash_password, key_id, password_matches
from gateway.settings import DEMO_SECRET, Settings, UnsafeDeployment

SECRET = "unit-test-secret-" + "s" * 64  # long enough for HS512 too
AUDIENCE = "mutualis-api"
ISSUER = "mutualis-gateway"
# forged tokens name our key, so that each test is refused for what it forges
KID = {"kid": key_id(SECRET)}

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


def test_a_token_names_the_second_factor_it_was_issued_with(issuer):
    assert issuer.verify_with_factor(issuer.issue(ALICE)) == (ALICE, None)
    assert issuer.verify_with_factor(issuer.issue(ALICE, 1772442000)) == (ALICE, 1772442000)


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


def test_a_token_verified_once_is_refused_once_it_expires(issuer, monkeypatch):
    token = issuer.issue(ALICE)
    assert issuer.verify(token) == ALICE
    monkeypatch.setattr(jwt, "decode", lambda *_, **__: pytest.fail("decoded again"))
    assert issuer.verify(token) == ALICE  # remembered: no second decode
    expires = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
    later = expires["payload"]["exp"]
    at_expiry = time_machine.travel(datetime.fromtimestamp(later, UTC), tick=False)
    with at_expiry, pytest.raises(InvalidToken):
        issuer.verify(token)


class Decodes:
    """jwt.decode as it is, counting its calls: a token verified in full, not from memory."""

    def __init__(self, monkeypatch):
        self.count, decode = 0, jwt.decode

        def counted(*args, **kwargs):
            self.count += 1
            return decode(*args, **kwargs)

        monkeypatch.setattr(jwt, "decode", counted)

    def of(self, verify) -> int:
        before = self.count
        verify()
        return self.count - before


def test_a_full_memory_forgets_the_token_used_least_recently(issuer, monkeypatch):
    monkeypatch.setattr(gateway.auth, "VERIFIED_TOKENS", 3)
    first, second, third, fourth = (issuer.issue(ALICE) for _ in range(4))
    for token in (first, second, third, first, fourth):  # `first` used again before `fourth`
        assert issuer.verify(token) == ALICE

    decodes = Decodes(monkeypatch)
    assert [decodes.of(lambda t=t: issuer.verify(t)) for t in (first, third, fourth)] == [0, 0, 0]
    assert decodes.of(lambda: issuer.verify(second)) == 1  # forgotten, verified in full again
    assert decodes.of(lambda: issuer.verify(first)) == 1  # the least recent when `second` came


def test_an_expired_token_is_refused_from_memory_and_forgotten(issuer, monkeypatch):
    token = issuer.issue(ALICE)
    issuer.verify(token)
    decodes = Decodes(monkeypatch)
    expires = jwt.api_jwt.decode_complete(token, options={"verify_signature": False})
    with time_machine.travel(datetime.fromtimestamp(expires["payload"]["exp"] + 1, UTC)):
        with pytest.raises(InvalidToken, match="expired"):
            issuer.verify(token)
        assert decodes.count == 0  # refused from memory
        with pytest.raises(InvalidToken, match="expired"):
            issuer.verify(token)
        assert decodes.count == 1  # forgotten: checked in full, and refused by PyJWT


def test_every_route_verifies_with_one_issuer():
    """One memory of verified tokens per process, not one per route."""
    settings = Settings(token_secret=SECRET)
    assert TokenIssuer.from_settings(settings) is TokenIssuer.from_settings(settings)


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
    token = jwt.encode(claims(), SECRET, algorithm="HS512", headers=KID)
    with pytest.raises(InvalidToken):
        issuer.verify(token)


def test_an_rs256_labelled_token_signed_with_the_secret_is_refused(issuer):
    # algorithm confusion: header says RS256, signature is an HMAC with the shared secret
    header = base64url_encode(json.dumps({"alg": "RS256", "typ": "JWT"} | KID).encode())
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
    token = jwt.encode(claims(**{missing: None}), SECRET, algorithm="HS256", headers=KID)
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
    token = jwt.encode(claims(), SECRET, algorithm="HS256", headers=KID)
    assert issuer.verify(token) == ALICE


def test_a_token_without_our_key_id_is_refused(issuer):
    for header in ({}, {"kid": "another"}):
        with pytest.raises(InvalidToken):
            issuer.verify(jwt.encode(claims(), SECRET, algorithm="HS256", headers=header))


# -- key rotation -----------------------------------------------------------------------

NEW_SECRET = "rotated-secret-" + "n" * 40


def test_during_a_rotation_tokens_of_the_previous_key_still_verify(issuer):
    old_token = issuer.issue(ALICE)
    rotated = TokenIssuer(NEW_SECRET, AUDIENCE, ISSUER, 900, previous_secret=SECRET)
    assert rotated.verify(old_token) == ALICE
    new_token = rotated.issue(ALICE)
    assert jwt.get_unverified_header(new_token)["kid"] == key_id(NEW_SECRET)
    assert rotated.verify(new_token) == ALICE


def test_after_a_rotation_tokens_of_the_retired_key_are_refused(issuer):
    old_token = issuer.issue(ALICE)
    with pytest.raises(InvalidToken):
        TokenIssuer(NEW_SECRET, AUDIENCE, ISSUER, 900).verify(old_token)


def test_an_issuers_keys_never_change_so_its_remembered_tokens_keep_theirs(issuer):
    """Another key means another issuer, with a memory of its own."""
    with pytest.raises(TypeError):
        issuer.keys[key_id(NEW_SECRET)] = NEW_SECRET
    with pytest.raises(TypeError):
        del issuer.keys[key_id(SECRET)]
    old_token = issuer.issue(ALICE)
    assert issuer.verify(old_token) == ALICE
    rotated = Settings(_env_file=None, token_secret=NEW_SECRET)
    with pytest.raises(InvalidToken, match="no key of ours"):
        TokenIssuer.from_settings(rotated).verify(old_token)


# -- closed by default ------------------------------------------------------------------


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    "values",
    [
        {},  # the default key is the demo key
        {"token_secret": DEMO_SECRET},
        {"token_secret": "short-but-not-demo"},
        {"token_secret": "CHANGE-ME-to-at-least-32-random-bytes-please"},
        {"token_secret": NEW_SECRET, "token_previous_secret": DEMO_SECRET},
        {"token_secret": NEW_SECRET, "token_previous_secret": "short"},
    ],
    ids=["default", "demo", "short", "placeholder", "previous-demo", "previous-short"],
)
def test_outside_demo_mode_the_gateway_refuses_a_known_or_short_key(monkeypatch, values):
    monkeypatch.delenv("GATEWAY_DEMO_MODE", raising=False)
    monkeypatch.delenv("GATEWAY_TOKEN_SECRET", raising=False)
    with pytest.raises(UnsafeDeployment):
        settings(**values).nameko_config()


def test_a_random_key_of_32_bytes_serves_on_any_address(monkeypatch):
    monkeypatch.delenv("GATEWAY_DEMO_MODE", raising=False)
    config = settings(token_secret=NEW_SECRET, http_host="0.0.0.0").nameko_config()
    assert config["WEB_SERVER_ADDRESS"].startswith("0.0.0.0:")


def test_the_metrics_have_a_port_of_their_own_beside_the_public_one(monkeypatch):
    monkeypatch.delenv("GATEWAY_DEMO_MODE", raising=False)
    values = {"token_secret": NEW_SECRET, "http_host": "0.0.0.0", "http_port": 8000}
    config = settings(**values, metrics_port=9200).nameko_config()
    assert config["WEB_SERVER_ADDRESS"] == "0.0.0.0:8000"
    assert config["METRICS_SERVER_ADDRESS"] == "0.0.0.0:9200"
    with pytest.raises(ValueError, match="GATEWAY_METRICS_PORT"):
        settings(**values, metrics_port=8000)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_demo_mode_signs_with_the_demo_key_on_loopback(host):
    assert settings(demo_mode=True, http_host=host).nameko_config()["GATEWAY"].demo_mode


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "gateway.example"])
def test_demo_mode_refuses_to_serve_beyond_loopback(host):
    with pytest.raises(UnsafeDeployment, match="loopback"):
        settings(demo_mode=True, http_host=host).nameko_config()
