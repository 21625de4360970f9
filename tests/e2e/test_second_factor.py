"""The second factor through the whole stack: the operator must enrol before anything else,
enrolment on the pages, each code accepted once, recovery codes, a commune that requires it
of its finance team, and guessing codes backs off like guessing passwords."""

from __future__ import annotations

import html
import re
import time

import pyotp

from tests.e2e.test_security import (
    PASSWORD,
    assert_problem,
    bearer,
    client,
    new_user,
    page_login,
    token_for,
)

MONTBRISON = "42147"  # no demo user, no other test: its rule touches nobody else


def field(page: str, name: str) -> str:
    return html.unescape(page.split(f'name="{name}" value="')[1].split('"')[0])


def shown_secret(page: str) -> str:
    return re.search(r'<code class="secret" id="cle">([A-Z2-7 ]+)</code>', page)[1].replace(" ", "")


def shown_recovery_codes(page: str) -> list[str]:
    return re.findall(r"<li><code>([a-z2-9-]{14})</code></li>", page)


def code_after(secret: str, used: str | None = None) -> str:
    """The app's code now, or when the code of now is `used`, the next step's (still within
    the drift the gateway allows)."""
    totp = pyotp.TOTP(secret)
    now = time.time()
    return totp.at(now) if totp.at(now) != used else totp.at(now + 30)


def token_with(stack, session, email: str, **codes):
    return session.post(
        f"{stack.url}/api/v1/auth/token",
        json={"email": email, "password": PASSWORD, **codes},
        timeout=10,
    )


def send_code(stack, session, page: str, code: str, csrf: str = ""):
    return session.post(
        f"{stack.url}/connexion/code",
        data={
            "csrf": csrf or field(page, "csrf"),
            "attente": field(page, "attente"),
            "suite": field(page, "suite"),
            "code": code,
        },
        timeout=10,
        allow_redirects=False,
    )


def signed_in(stack, session) -> bool:
    answer = session.get(f"{stack.url}/tableau-de-bord", allow_redirects=False, timeout=10)
    return answer.status_code == 200


def enrol_at_sign_in(stack, session, email: str) -> tuple[str, list[str], str]:
    """Signs in on the pages an account that must enrol: its secret, its recovery codes and
    the code that confirmed."""
    enrolment = page_login(stack, session, email)
    assert enrolment.status_code == 200, enrolment.text
    assert 'src="data:image/svg+xml' in enrolment.text  # the QR code, an <img> the CSP allows
    secret, recovery = shown_secret(enrolment.text), shown_recovery_codes(enrolment.text)
    assert len(recovery) == 10
    assert not signed_in(stack, session)  # nothing else before enrolment
    code = code_after(secret)
    confirmed = send_code(stack, session, enrolment.text, code)
    assert confirmed.status_code == 303, confirmed.text
    assert signed_in(stack, session)
    return secret, recovery, code


def test_the_operator_enrols_then_signs_in_with_each_code_once(stack):
    session, email = client(), new_user(stack, roles="operator")
    missing = assert_problem(token_for(stack, session, email), 401)
    assert missing["missing_factor"] == "totp" and missing["enrolled"] is False

    secret, recovery, used = enrol_at_sign_in(stack, session, email)

    assert assert_problem(token_for(stack, session, email), 401)["enrolled"] is True
    assert_problem(token_with(stack, session, email, totp_code=used), 401)  # replayed
    fresh = code_after(secret, used)
    issued = token_with(stack, session, email, totp_code=fresh)
    assert issued.status_code == 200, issued.text
    assert session.get(f"{stack.url}/api/v1/me", headers=bearer(issued)).status_code == 200
    assert_problem(token_with(stack, session, email, totp_code=fresh), 401)  # replayed

    assert token_with(stack, session, email, recovery_code=recovery[0]).status_code == 200
    assert_problem(token_with(stack, session, email, recovery_code=recovery[0]), 401)


def test_a_reset_of_the_second_factor_ends_the_tokens_it_gave(stack):
    session, email = client(), new_user(stack, roles="operator")
    _, recovery, _ = enrol_at_sign_in(stack, session, email)
    issued = token_with(stack, session, email, recovery_code=recovery[0])
    assert issued.status_code == 200, issued.text

    stack.mutualis("users", "reset-totp", email)

    assert_problem(session.get(f"{stack.url}/api/v1/me", headers=bearer(issued)), 401)


def test_the_login_page_asks_for_the_code_after_the_password(stack):
    session, email = client(), new_user(stack, roles="operator")
    secret, recovery, used = enrol_at_sign_in(stack, session, email)
    browser = client()
    asked = page_login(stack, browser, email, suite="/finances")
    assert asked.status_code == 200
    assert 'action="/connexion/code"' in asked.text
    assert not signed_in(stack, browser)
    wrong = send_code(stack, browser, asked.text, used)  # already used
    assert wrong.status_code == 401
    assert "Code incorrect ou déjà utilisé" in wrong.text
    by_recovery = send_code(stack, browser, asked.text, recovery[1].upper())
    assert by_recovery.status_code == 303
    assert by_recovery.headers["Location"] == "/finances"
    # the proof of the password belongs to the browser that gave it
    thief = client()
    own_form = thief.get(f"{stack.url}/connexion", timeout=10).text
    stolen = send_code(
        stack, thief, asked.text, code_after(secret, used), csrf=field(own_form, "csrf")
    )
    assert stolen.status_code == 401
    assert "saisissez à nouveau votre mot de passe" in stolen.text
    assert not signed_in(stack, thief)


def test_a_double_click_on_the_code_signs_in_rather_than_refusing_the_code(stack):
    session, email = client(), new_user(stack, roles="operator")
    secret, _, used = enrol_at_sign_in(stack, session, email)
    browser = client()
    asked = page_login(stack, browser, email, suite="/finances")
    twin = client()  # the second click: the same form, before the first answer's cookie
    twin.cookies.update(browser.cookies)
    code = code_after(secret, used)

    first = send_code(stack, browser, asked.text, code)
    second = send_code(stack, twin, asked.text, code)

    for answer in (first, second):
        assert answer.status_code == 303, answer.text
        assert answer.headers["Location"] == "/finances"
    assert signed_in(stack, browser) and signed_in(stack, twin)


def test_a_finance_user_may_enrol_from_the_account_page(stack):
    session, email = client(), new_user(stack, roles="finance")
    assert page_login(stack, session, email).status_code == 303
    account = session.get(f"{stack.url}/compte/double-authentification", timeout=10)
    assert "désactivée" in account.text
    started = session.post(
        f"{stack.url}/compte/double-authentification",
        data={"csrf": field(account.text, "csrf")},
        timeout=10,
    )
    assert started.status_code == 200
    secret = shown_secret(started.text)
    code = code_after(secret)
    done = session.post(
        f"{stack.url}/compte/double-authentification/confirmation",
        data={"csrf": field(started.text, "csrf"), "code": code},
        timeout=10,
    )
    assert done.status_code == 200
    assert "est activée" in done.text
    assert "Codes de secours encore utilisables : 10" in done.text
    assert assert_problem(token_for(stack, session, email), 401)["missing_factor"] == "totp"
    assert token_with(stack, session, email, totp_code=code_after(secret, code)).status_code == 200


def test_a_commune_can_require_it_of_its_finance_team(stack):
    session = client()
    finance, manager = (
        new_user(stack, roles="finance", commune=MONTBRISON),
        new_user(stack, roles="manager", commune=MONTBRISON),
    )
    issued = token_for(stack, session, finance)
    assert issued.status_code == 200
    required = stack.mutualis("users", "require-totp", "--commune", MONTBRISON, check=False)
    assert required.returncode == 0, required.stderr[-1500:]
    try:
        # the token from before the rule is refused: the user must enrol first
        assert_problem(session.get(f"{stack.url}/api/v1/me", headers=bearer(issued)), 401)
        missing = assert_problem(token_for(stack, session, finance), 401)
        assert missing["missing_factor"] == "totp" and missing["enrolled"] is False
        assert token_for(stack, session, manager).status_code == 200
        enrolment = page_login(stack, session, finance)
        assert enrolment.status_code == 200
        assert shown_secret(enrolment.text)
    finally:
        stack.mutualis("users", "require-totp", "--commune", MONTBRISON, "--lift")
    assert token_for(stack, session, finance).status_code == 200


def test_guessing_codes_backs_off_like_guessing_passwords(stack):
    session, email = client(), new_user(stack, roles="operator")
    secret, _, used = enrol_at_sign_in(stack, session, email)
    guesser = client()
    for guess in ("000000", "111111", "222222", "333333", "444444", "555555"):
        assert_problem(token_with(stack, guesser, email, totp_code=guess), 401)
    refused = token_with(stack, guesser, email, totp_code=code_after(secret, used))
    assert_problem(refused, 429)
    assert refused.headers["Retry-After"]
