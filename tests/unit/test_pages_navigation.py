"""The main menu by role, and the French words of a page's failure."""

from __future__ import annotations

import pytest
from nameko.exceptions import RemoteError
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from contracts.caller import Role
from contracts.errors import Forbidden, NotFound
from gateway.pages.entrypoint import UNEXPECTED, PageProblem, failure_of
from gateway.pages.navigation import menu


def labels(roles, path="/", query=None):
    return [item.label for item in menu(roles, path, query)]


def current(roles, path, query=None):
    return [item.label for item in menu(roles, path, query) if item.current]


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.AGENT, ["Tableau de bord", "Chercher", "Mes demandes", "Experts"]),
        (
            Role.MANAGER,
            [
                "Tableau de bord",
                "Mes annonces",
                "Publier une annonce",
                "Demandes à décider",
                "Missions",
                "Conventions",
                "Activité",
            ],
        ),
        (
            Role.FINANCE,
            ["Tableau de bord", "Factures", "Paiements", "Relevés", "Compensation", "Activité"],
        ),
        (Role.OPERATOR, ["Tableau de bord", "Files d'attente", "Épisodes"]),
        (Role.COORDINATOR, ["Tableau de bord", "Épisodes"]),
    ],
)
def test_each_role_sees_what_it_does(role, expected):
    assert labels({role}) == expected


def test_two_roles_get_both_menus_and_a_shared_page_once():
    assert labels({Role.OPERATOR, Role.COORDINATOR}) == [
        "Tableau de bord",
        "Files d'attente",
        "Épisodes",
    ]
    both = labels({Role.MANAGER, Role.AGENT})
    assert both[:4] == ["Tableau de bord", "Chercher", "Mes demandes", "Experts"]
    assert "Mes annonces" in both and len(both) == len(set(both))


def test_the_page_one_is_on_is_the_one_current_entry():
    assert current({Role.AGENT}, "/catalogue", {"q": "lame"}) == ["Chercher"]
    assert current({Role.AGENT}, "/annonces/42") == ["Chercher"]  # a result of the search
    assert current({Role.AGENT}, "/reservations") == ["Mes demandes"]  # the default view
    assert current({Role.AGENT}, "/reservations/b-1") == ["Mes demandes"]
    manager = {Role.MANAGER}
    assert current(manager, "/annonces/nouvelle") == ["Publier une annonce"]
    assert current(manager, "/annonces") == ["Mes annonces"]
    assert current(manager, "/reservations", {"vue": "preteur", "statut": "requested"}) == [
        "Demandes à décider"
    ]
    assert current(manager, "/reservations", {"vue": "preteur"}) == []
    assert current(manager, "/missions/e-1") == ["Missions"]
    assert current(manager, "/deliberations") == ["Conventions"]
    finance = {Role.FINANCE}
    assert current(finance, "/finances/factures/i-1") == ["Factures"]
    assert current(finance, "/finances/balance-agee") == ["Relevés"]
    assert current(finance, "/finances/rapprochement") == ["Paiements"]
    assert current(finance, "/tableau-de-bord") == ["Tableau de bord"]
    assert current(finance, "/nulle-part") == []


def test_a_query_entry_links_with_its_values():
    hrefs = {item.label: item.href for item in menu({Role.MANAGER}, "/")}
    assert hrefs["Demandes à décider"] == "/reservations?vue=preteur&statut=requested"


def test_failures_are_told_in_french_with_their_status():
    assert failure_of(PageProblem(405, "Pas ici.")) == (405, ["Pas ici."])
    assert failure_of(Forbidden("role")) == (403, ["Votre rôle ne donne pas accès à cette page."])
    status, lines = failure_of(NotFound("booking"))
    assert status == 404 and lines and all(line.isprintable() for line in lines)
    assert failure_of(BadRequest()) == (400, ["Le navigateur a envoyé une demande illisible."])
    assert failure_of(RequestEntityTooLarge())[0] == 413
    assert failure_of(ZeroDivisionError()) == (500, [UNEXPECTED])
    assert failure_of(RemoteError("KeyError", "boom")) == (500, [UNEXPECTED])


def test_the_error_page_is_french_with_the_menu_and_the_way_back():
    from gateway.pages.entrypoint import make_templates
    from gateway.pages.sessions import Visitor

    visitor = Visitor("u-1", "a@b.fr", "Agent", "42044", frozenset({Role.AGENT}), "t")
    html = (
        make_templates()
        .get_template("error.html")
        .render(
            visitor=visitor,
            csrf="t",
            notice=None,
            path="/x",
            menu=menu(visitor.roles, "/x"),
            title="Erreur inattendue",
            lines=[UNEXPECTED],
            status=500,
            request_id="r-1",
            back="/finances",
        )
    )
    assert '<html lang="fr">' in html and "<h1>Erreur inattendue</h1>" in html
    assert UNEXPECTED.replace("'", "&#39;") in html
    assert 'href="/catalogue">Chercher</a>' in html
    assert 'href="/finances">Revenir à la page du formulaire</a>' in html
    assert "r-1" in html
