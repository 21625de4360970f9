"""The gateway's own defences, as pure functions: where a login may send the browser, how
long a guesser waits, whose address a request comes from, what a JSON body may be."""

from decimal import Decimal

import pytest
from pydantic import Field, ValidationError

from contracts.fields import Input
from gateway.errors import MalformedBody
from gateway.http import json_of
from gateway.login_attempts import LoginAttempts, client_address
from gateway.pages.entrypoint import safe_target
from gateway.settings import Settings

HOME = "/tableau-de-bord"


@pytest.mark.parametrize(
    "target",
    ["/reservations/42", "/annonces?categorie=snow&page=2", "/", "/recherche?q=d%C3%A9neigeuse"],
)
def test_a_login_goes_on_to_a_path_of_this_site(target):
    assert safe_target(target) == target


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/phish",
        "/\t/evil.example/phish",  # ?suite=/%09/evil.example: browsers drop the tab
        "/\n/evil.example",
        "/\r\nSet-Cookie: x=1",
        "/\\evil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        " /reservations",
        "/\x00",
        "/\x7f",
        "/\u2028/evil.example",
        "",
        None,
    ],
)
def test_a_login_never_goes_to_another_site_nor_breaks_the_header(target):
    assert safe_target(target) == HOME


# -- failed logins ----------------------------------------------------------------------


def test_the_wait_doubles_after_the_free_failures_up_to_its_cap():
    guard = LoginAttempts(
        None, free_failures=5, backoff_seconds=1, max_backoff_seconds=900, memory_seconds=3600
    )
    assert [guard.delay_after(n) for n in range(1, 10)] == [0, 0, 0, 0, 0, 1, 2, 4, 8]
    assert guard.delay_after(15) == 512
    assert guard.delay_after(16) == guard.delay_after(10_000) == 900


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "address"),
    [
        ("203.0.113.9", "", "", "203.0.113.9"),
        # a client's own X-Forwarded-For is not believed
        ("203.0.113.9", "198.51.100.1", "", "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "10.0.0.0/8", "203.0.113.9"),
        # behind our ingress: the address it saw, not what the client claimed before it
        ("10.1.2.3", "198.51.100.1, 203.0.113.9", "10.0.0.0/8", "203.0.113.9"),
        ("10.1.2.3", "203.0.113.9, 10.4.5.6", "10.0.0.0/8", "203.0.113.9"),
        ("10.1.2.3", "", "10.0.0.0/8", "10.1.2.3"),
        (None, "", "", "unknown"),
    ],
)
def test_the_client_address_believes_only_our_proxies(peer, forwarded, trusted, address):
    assert client_address(peer, forwarded, trusted) == address


def test_a_mistyped_proxy_network_stops_the_gateway_at_start_up():
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(trusted_proxies="10.0.0.0/8, 10.0.0.1/8")  # host bits set
    assert Settings(trusted_proxies="10.0.0.0/8, 2001:db8::/32").trusted_proxies


# -- JSON bodies ------------------------------------------------------------------------


class Line(Input):
    quantity: int = Field(le=1000)  # every integer a client sends is bounded
    price: Decimal
    urgent: bool = False


class Order(Input):
    lines: list[Line]
    count: float | None = 0
    meta: dict = {}


def refused(data: dict) -> list[tuple]:
    """Where a boolean sent for a number was refused."""
    try:
        Order.model_validate(data)
    except ValidationError as exc:
        return [e["loc"] for e in exc.errors() if e["type"] == "int_type"]
    return []


def test_a_boolean_sent_for_a_number_is_refused_wherever_it_is():
    assert refused({"lines": [{"quantity": True, "price": "1.5"}], "count": False}) == [
        ("lines", 0, "quantity"),
        ("count",),
    ]
    assert refused({"lines": [{"quantity": 1, "price": False}]}) == [("lines", 0, "price")]


def test_booleans_where_booleans_go_are_fine():
    data = {"lines": [{"quantity": 1, "price": 2, "urgent": True}], "meta": {"flag": True}}
    assert refused(data) == []
    assert Order.model_validate(data).lines[0].urgent is True


def test_a_body_must_be_utf8_json():
    assert json_of('{"title": "Déneigeuse"}'.encode()) == {"title": "Déneigeuse"}
    assert json_of(b"  ") == {}
    for encoding in ("utf-16", "utf-16-le", "utf-32", "latin-1"):
        with pytest.raises(MalformedBody, match="UTF-8"):
            json_of('{"title": "Déneigeuse"}'.encode(encoding))
