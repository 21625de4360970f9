"""Issue 21 from outside, through the whole stack: keys, live users, slow guessing, login
redirects, headers, unrouted requests and strict bodies."""

from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import jwt
import pytest
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import text

from gateway.auth import key_id
from gateway.settings import DEMO_SECRET
from gateway.users import disable_user
from tests.e2e.test_gateway_contract import metric
from tests.e2e.test_listings_flow import SNOWPLOUGH
from tests.support.stack import QUICK_HASHER

PASSWORD = "correct horse battery staple"
CHAMBON = "42044"
PROBLEM_JSON = "application/problem+json"


class FromAddress(HTTPAdapter):
    """Connects from another loopback address: each test is a client of its own, so that
    the failed logins of one never slow another down."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


def client() -> requests.Session:
    session = requests.Session()
    address = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
    session.mount("http://", FromAddress(address))
    return session


def new_user(stack, roles: str = "manager", commune: str = CHAMBON) -> str:
    """A user (of Le Chambon-Feugerolles unless told) of this test alone (so its failures
    are its own), its password hashed at the demo accounts' test cost (QUICK_HASHER)."""
    email = f"secu-{uuid.uuid4().hex[:10]}@mutualis-demo.fr"
    with stack.database("gateway").begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, name, password_hash, commune, roles, created_at)"
                " VALUES (:id, :email, 'Camille Test', :hash, :commune, :roles, :now)"
            ),
            {
                "id": str(uuid.uuid4()),
                "email": email,
                "hash": QUICK_HASHER.hash(PASSWORD),
                "commune": commune,
                "roles": roles,
                "now": datetime.now(UTC),
            },
        )
    return email


def token_for(stack, session: requests.Session, email: str, password: str = PASSWORD):
    return session.post(
        f"{stack.url}/api/v1/auth/token", json={"email": email, "password": password}, timeout=10
    )


def bearer(answer) -> dict:
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def assert_problem(answer, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == PROBLEM_JSON
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    body = answer.json()
    assert body["status"] == status
    return body


def page_login(stack, session, email: str, password: str = PASSWORD, suite: str = ""):
    form = session.get(f"{stack.url}/connexion", timeout=10)
    csrf = form.text.split('name="csrf" value="')[1].split('"')[0]
    return session.post(
        f"{stack.url}/connexion",
        data={"csrf": csrf, "email": email, "password": password, "suite": suite},
        timeout=10,
        allow_redirects=False,
    )


# -- keys and live users ----------------------------------------------------------------


def forged(secret: str, sub: str, **header) -> dict:
    now = int(time.time())
    claims = {
        "sub": sub,
        "commune": CHAMBON,
        "roles": ["finance", "manager", "operator"],
        "aud": "mutualis-api",
        "iss": "mutualis-gateway",
        "iat": now,
        "exp": now + 100 * 365 * 86400,
    }
    return {"Authorization": "Bearer " + jwt.encode(claims, secret, "HS256", headers=header)}


def test_a_token_for_no_user_is_refused_even_signed_with_the_key(stack):
    # the stack runs in demo mode: the demo key signs, yet a made-up user gets nothing
    for header in ({}, {"kid": key_id(DEMO_SECRET)}):
        answer = requests.get(
            f"{stack.url}/api/v1/listings", headers=forged(DEMO_SECRET, "nobody", **header)
        )
        assert_problem(answer, 401)


def test_a_token_whose_roles_were_raised_is_refused(stack):
    email = new_user(stack, roles="agent")
    with stack.database("gateway").connect() as conn:
        user_id = conn.execute(text("SELECT id FROM users WHERE email = :e"), {"e": email}).scalar()
    answer = requests.get(
        f"{stack.url}/api/v1/me", headers=forged(DEMO_SECRET, user_id, kid=key_id(DEMO_SECRET))
    )
    assert_problem(answer, 401)


def test_a_disabled_user_can_neither_use_a_token_nor_sign_in(stack):
    session = client()
    email = new_user(stack)
    issued = token_for(stack, session, email)
    assert issued.status_code == 200
    assert jwt.get_unverified_header(issued.json()["access_token"])["kid"]
    assert page_login(stack, session, email).status_code == 303
    assert session.get(f"{stack.url}/tableau-de-bord", timeout=10).status_code == 200

    disable_user(email, stack.database("gateway"))
    assert_problem(session.get(f"{stack.url}/api/v1/me", headers=bearer(issued)), 401)
    assert session.get(f"{stack.url}/tableau-de-bord", allow_redirects=False).status_code == 303
    assert_problem(token_for(stack, session, email), 401)


def test_signing_out_ends_every_session_of_the_user(stack):
    email = new_user(stack)
    laptop, phone = client(), client()
    for browser in (laptop, phone):
        assert page_login(stack, browser, email).status_code == 303
    dashboard = phone.get(f"{stack.url}/tableau-de-bord", timeout=10)
    csrf = dashboard.text.split('name="csrf" value="')[1].split('"')[0]
    phone.post(f"{stack.url}/deconnexion", data={"csrf": csrf}, allow_redirects=False)
    for browser in (laptop, phone):
        gone = browser.get(f"{stack.url}/tableau-de-bord", allow_redirects=False)
        assert gone.status_code == 303
        assert gone.headers["Location"].startswith("/connexion")


# -- guessing is slow -------------------------------------------------------------------


def test_after_five_wrong_passwords_even_the_right_one_waits(stack):
    session, email = client(), new_user(stack)
    for _ in range(6):
        assert_problem(token_for(stack, session, email, "wrong password"), 401)
    refused = token_for(stack, session, email)
    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 2
    # from another address too: the account itself waits
    assert_problem(token_for(stack, client(), email), 429)
    time.sleep(int(refused.headers["Retry-After"]) + 0.2)
    assert token_for(stack, session, email).status_code == 200


def test_wrong_passwords_sent_at_once_each_count(stack):
    email = new_user(stack)
    guessers = [client() for _ in range(12)]  # each from its own address: the account counts
    with ThreadPoolExecutor(len(guessers)) as pool:
        answers = list(
            pool.map(lambda s: token_for(stack, s, email, "wrong").status_code, guessers)
        )
    # 5 free failures, a sixth that makes the next wait 1 s (a seventh if a second passed)
    assert answers.count(401) in (6, 7), answers
    assert answers.count(429) == len(guessers) - answers.count(401)


def test_one_address_guessing_many_accounts_waits(stack):
    session = client()
    for _ in range(6):
        wrong = token_for(stack, session, f"nobody-{uuid.uuid4().hex}@example.fr", "guess")
        assert_problem(wrong, 401)
    assert_problem(token_for(stack, session, new_user(stack)), 429)


def test_the_login_page_backs_off_too(stack):
    session, email = client(), new_user(stack)
    for _ in range(6):
        assert page_login(stack, session, email, "wrong password").status_code == 401
    refused = page_login(stack, session, email)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"]
    assert "réessayez dans" in refused.text


def test_failed_logins_are_counted(stack):
    token_for(stack, client(), f"nobody-{uuid.uuid4().hex}@example.fr", "guess")
    metrics = requests.get(stack.metrics_url("gateway"), timeout=10).text
    assert 'mutualis_login_attempts_total{outcome="failure",via="api"}' in metrics


# -- where a login goes -----------------------------------------------------------------


@pytest.mark.parametrize(
    "suite", ["/\t/evil.example/phish", "//evil.example", "/\\evil.example", "/\r\nX-Evil: 1"]
)
def test_a_login_never_sends_the_browser_to_another_site(stack, suite):
    answer = page_login(stack, client(), new_user(stack), suite=suite)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/tableau-de-bord"


# -- headers and unrouted requests ------------------------------------------------------


def test_api_answers_say_nosniff_and_the_docs_may_not_be_framed(stack):
    assert requests.get(f"{stack.url}/api/openapi.json").headers["X-Content-Type-Options"] == (
        "nosniff"
    )
    docs = requests.get(f"{stack.url}/api/docs")
    assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]
    assert "script-src 'self'" in docs.headers["Content-Security-Policy"]
    assert requests.get(f"{stack.url}/api/docs/swagger-ui-bundle.js").status_code == 200


def test_an_oversized_header_answers_a_problem_431(stack):
    answer = requests.get(f"{stack.url}/api/v1/listings", headers={"X-Big": "a" * 9000})
    assert_problem(answer, 431)


def test_an_over_long_request_line_answers_a_problem_414(stack):
    answer = requests.get(f"{stack.url}/api/v1/listings", params={"q": "a" * 9000})
    assert_problem(answer, 414)


def unrouted_answers(stack, method: str, status: int) -> float:
    metrics = requests.get(stack.metrics_url("gateway"), timeout=10).text
    labels = {"service": "gateway", "route": "unrouted", "method": method, "status": str(status)}
    return metric(metrics, "mutualis_http_requests_total", **labels)


def test_unknown_api_paths_and_methods_answer_problems_and_are_counted(stack):
    before = unrouted_answers(stack, "GET", 404), unrouted_answers(stack, "DELETE", 405)

    assert_problem(requests.get(f"{stack.url}/api/v1/no-such-thing"), 404)
    wrong_method = requests.delete(f"{stack.url}/api/v1/auth/token")
    assert_problem(wrong_method, 405)
    assert "POST" in wrong_method.headers["Allow"]

    assert unrouted_answers(stack, "GET", 404) >= before[0] + 1
    assert unrouted_answers(stack, "DELETE", 405) >= before[1] + 1


def test_the_public_port_serves_no_metrics_and_the_metrics_port_does(stack):
    """The ingress sends every path to the public port: /metrics there is an unknown path;
    Prometheus reads the metrics port, which no ingress routes."""
    before = unrouted_answers(stack, "GET", 404)
    for path in ("/metrics", "/metrics/", "/metrics?name[]=mutualis_http_requests_total"):
        answer = requests.get(f"{stack.url}{path}", timeout=10)
        assert assert_problem(answer, 404)["detail"] == "No API route has this path"
        assert "mutualis_" not in answer.text
    metrics = requests.get(stack.metrics_url("gateway"), timeout=10)
    assert metrics.status_code == 200
    assert metrics.headers["Content-Type"].startswith("text/plain")
    assert unrouted_answers(stack, "GET", 404) >= before + 3  # the tries, counted there
    # the probes stay on the public port: they say up or ready, and which dependency is not
    assert requests.get(f"{stack.url}/health/live", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{stack.url}/health/ready", timeout=10).status_code == 200


def test_unknown_pages_answer_the_french_error_page(stack):
    answer = requests.get(f"{stack.url}/nulle-part")
    assert answer.status_code == 404
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "Page introuvable" in answer.text
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


# -- strict bodies ----------------------------------------------------------------------


def test_a_utf16_body_is_refused(stack):
    body = '{"email": "agent.42218@mutualis-demo.fr", "password": "mutualis-demo"}'
    answer = client().post(
        f"{stack.url}/api/v1/auth/token",
        data=body.encode("utf-16"),
        headers={"Content-Type": "application/json"},
    )
    assert "UTF-8" in assert_problem(answer, 400)["detail"]


def test_true_is_not_a_quantity(stack):
    session = client()
    headers = bearer(token_for(stack, session, new_user(stack)))
    answer = session.post(
        f"{stack.url}/api/v1/listings", json=SNOWPLOUGH | {"quantity": True}, headers=headers
    )
    problem = assert_problem(answer, 422)
    assert [e["field"] for e in problem["errors"]] == ["quantity"]
