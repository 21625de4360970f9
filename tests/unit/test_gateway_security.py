"""The gateway's own defences, as pure functions: where a login may send the browser."""

import pytest

from gateway.pages.entrypoint import safe_target

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
