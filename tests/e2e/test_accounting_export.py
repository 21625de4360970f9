"""The accountant's export end to end, through the gateway and the services as processes:
Saint-Étienne lends Le Chambon-Feugerolles a snowplough and an expert's day under their
agreement; each finance team sets an imputation (a wrong one is refused, 422 naming the rule);
after the month's billing run, Saint-Étienne's export lists the invoices as titres on its
configured accounts and Le Chambon's as mandats on its own, the agreement reference on the
expert's; exporting again gives the same file and says so; the page shows it and serves the
file; in a real browser, the pages pass axe-core and the team imputes and exports on them."""

from __future__ import annotations

import re

import pytest

from services.billing.validation import problems
from tests.browser import chromium, sign_in
from tests.e2e.test_billing_flow import approve_timesheet
from tests.e2e.test_billing_pages import accessible
from tests.support import Stack, day, this_period, wait_until

pytestmark = pytest.mark.e2e

SAINT_ETIENNE, CHAMBON = "42218", "42044"
AGREEMENT = "CONV-2026-SE-LCF-01"
SNOWPLOUGH = {
    "title": "Chasse-neige Unimog, lame 3 m",
    "category": "deneigement",
    "kind": "vehicle",
    "pricing_unit": "day",
    "rate_cents": 42000,
    "quantity": 1,
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A stack of its own: a billing run invoices every commune's charges of the month."""
    with Stack("postgresql", tmp_path_factory.mktemp("accounting")).running() as running:
        yield running


def lend_snowplough(stack: Stack) -> None:
    """Saint-Étienne publishes its snowplough; Le Chambon books it; it goes and comes back."""
    lender = stack.as_role("manager", SAINT_ETIENNE)
    borrower = stack.as_role("agent", CHAMBON)
    listing = lender.post(f"{stack.url}/api/v1/listings", json=SNOWPLOUGH)
    assert listing.status_code == 201, listing.text
    request = {
        "listing_id": listing.json()["id"],
        "start": day(0),
        "end": day(1),
        "purpose": "Déneigement des côtes",
    }

    def booked():
        answer = borrower.post(f"{stack.url}/api/v1/bookings", json=request)
        return answer.json() if answer.status_code == 201 else None

    booking = wait_until(booked, timeout=10)
    path = f"{stack.url}/api/v1/bookings/{booking['id']}"
    assert lender.post(f"{path}/approve").json()["status"] == "approved"
    assert lender.post(f"{path}/check-out", json={"condition": "Bon état"}).status_code == 200
    back = lender.post(f"{path}/return", json={"condition": "Bon état", "damages": []})
    assert back.json()["status"] == "returned", back.text


def test_the_invoice_is_a_titre_for_the_lender_and_a_mandat_for_the_borrower(stack):
    api = f"{stack.url}/api/v1"
    period = this_period()
    finance = {c: stack.as_role("finance", c) for c in (SAINT_ETIENNE, CHAMBON)}

    # imputations: one outside the M57 chart is refused and changes nothing
    before = finance[SAINT_ETIENNE].get(f"{api}/accounting/imputations").json()
    wrong = {"category": "deneigement", "side": "titre", "chapter": "70", "account": "7084"}
    refused = finance[SAINT_ETIENNE].put(f"{api}/accounting/imputations", json={"items": [wrong]})
    assert refused.status_code == 422, refused.text
    assert [(e["type"], e["field"]) for e in refused.json()["errors"]] == [
        ("not_an_m57_account", "items.0.account")
    ]
    assert finance[SAINT_ETIENNE].get(f"{api}/accounting/imputations").json() == before
    titre = {"category": "deneigement", "side": "titre", "chapter": "70", "account": "70688"}
    titre["budget"] = "Budget annexe viabilité hivernale"
    set_up = finance[SAINT_ETIENNE].put(f"{api}/accounting/imputations", json={"items": [titre]})
    assert set_up.status_code == 200, set_up.text
    mandat = {"category": "personnel", "side": "mandat", "chapter": "011", "account": "62878"}
    assert (
        finance[CHAMBON].put(f"{api}/accounting/imputations", json={"items": [mandat]}).status_code
        == 200
    )
    reader = stack.as_role("agent", CHAMBON)
    assert reader.put(f"{api}/accounting/imputations", json={"items": [mandat]}).status_code == 403

    lend_snowplough(stack)
    approve_timesheet(stack, SAINT_ETIENNE, CHAMBON, "1", 45000, agreement_reference=AGREEMENT)

    def charged():
        answer = finance[CHAMBON].get(
            f"{api}/charges", params={"status": "uninvoiced", "direction": "received"}
        )
        return len(answer.json()["items"]) == 2

    wait_until(charged, timeout=15)
    operator = stack.login("operator@mutualis-demo.fr")
    run = operator.post(f"{api}/billing/runs", json={"period": period})
    assert run.status_code == 200, run.text
    numbers = {i["total_cents"]: i["number"] for i in run.json()["invoices"]}
    assert set(numbers) == {42000, 45000}  # the agreement's day has its invoice
    expert = next(i for i in run.json()["invoices"] if i["total_cents"] == 45000)
    ubl = finance[CHAMBON].get(f"{api}/invoices/{expert['id']}/ubl")
    assert problems(ubl.content) == []  # UBL XSD, EN 16931 and BR-FR, with BT-12
    assert f"<cbc:ID>{AGREEMENT}</cbc:ID>" in ubl.text.replace("\n", "")
    assert "ContractDocumentReference" in ubl.text

    lender = finance[SAINT_ETIENNE].post(f"{api}/accounting/exports", json={"period": period})
    assert lender.status_code == 201, lender.text
    titres = {
        r["document_number"]: (r["operation"], r["budget"], r["chapter"], r["account"])
        for r in lender.json()["items"]
    }
    assert titres == {
        numbers[42000]: ("titre", "Budget annexe viabilité hivernale", "70", "70688"),
        numbers[45000]: ("titre", "principal", "70", "70848"),
    }
    borrower = finance[CHAMBON].post(f"{api}/accounting/exports", json={"period": period})
    assert borrower.status_code == 201, borrower.text
    mandats = {
        r["document_number"]: (r["operation"], r["chapter"], r["account"], r["agreement_reference"])
        for r in borrower.json()["items"]
    }
    assert mandats == {
        numbers[42000]: ("mandat", "011", "6135", None),
        numbers[45000]: ("mandat", "011", "62878", AGREEMENT),
    }
    assert borrower.json()["mandats_cents"] == lender.json()["titres_cents"] == 87000

    again = finance[SAINT_ETIENNE].post(f"{api}/accounting/exports", json={"period": period})
    assert again.json()["checksum"] == lender.json()["checksum"]
    assert again.json()["same_as_previous"] is True
    assert [p["id"] for p in again.json()["previous"]] == [lender.json()["id"]]
    listed = finance[SAINT_ETIENNE].get(f"{api}/accounting/exports").json()["items"]
    assert [e["id"] for e in listed] == [again.json()["id"], lender.json()["id"]]
    other = finance[CHAMBON].get(f"{api}/accounting/exports/{lender.json()['id']}")
    assert other.status_code == 404  # another commune's export does not exist for it

    file = finance[SAINT_ETIENNE].get(f"{api}/accounting/exports/{again.json()['id']}/csv")
    assert file.status_code == 200 and file.headers["Content-Type"].startswith("text/csv")
    assert again.json()["checksum"][:12] in file.headers["Content-Disposition"]
    header, *rows = file.content.decode("utf-8").splitlines()
    assert header.startswith("sens;operation;budget;chapitre;compte;numero_piece")
    assert len(rows) == 2 and all(r.startswith("titre;titre;") for r in rows)

    # the finance page: the imputations, the exports, and an export saying it was done before
    web = stack.web_session(f"finance.{SAINT_ETIENNE}@mutualis-demo.fr")
    page = web.get(f"{stack.url}/finances/comptabilite")
    assert (
        page.status_code == 200 and "70688" in page.text and again.json()["filename"] in page.text
    )
    shown = web.get(f"{stack.url}/finances/comptabilite/exports/{again.json()['id']}")
    assert shown.status_code == 200
    assert "déjà été exporté" in shown.text and "le fichier est identique" in shown.text
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    made = web.post(
        f"{stack.url}/finances/comptabilite/exports",
        data={"csrf": csrf, "periode": period},
        allow_redirects=False,
    )
    assert made.status_code == 303 and "/finances/comptabilite/exports/" in made.headers["Location"]
    downloaded = web.get(f"{stack.url}{made.headers['Location']}/fichier")
    assert downloaded.content == file.content


def test_the_finance_team_imputes_and_exports_on_the_page(stack):
    """In a real browser, after the test above: Saint-Étienne's finance team sends its halls'
    receipts to an annex budget, exports the month again and reads that it was exported
    before and what changed (nothing: no hall was lent)."""
    with chromium() as browser:
        imputes_and_exports_on_the_page(stack, browser)


def imputes_and_exports_on_the_page(stack: Stack, browser) -> None:
    page = sign_in(browser, stack.url, f"finance.{SAINT_ETIENNE}@mutualis-demo.fr", bypass_csp=True)
    page.goto("/finances/comptabilite")
    accessible(page, "comptabilite")
    page.get_by_label("Budget, Salles et espaces, titre").fill("Budget annexe des salles")
    page.get_by_label("Compte, Salles et espaces, titre").select_option("7083")
    page.get_by_role("button", name="Enregistrer les imputations").click()
    page.wait_for_url("**imputations-enregistrees**")
    imputations = stack.as_role("finance", SAINT_ETIENNE).get(
        f"{stack.url}/api/v1/accounting/imputations"
    )
    halls = next(
        i for i in imputations.json()["items"] if (i["category"], i["side"]) == ("salles", "titre")
    )
    assert (halls["chapter"], halls["account"], halls["budget"]) == (
        "70",
        "7083",
        "Budget annexe des salles",
    )
    page.get_by_role("button", name="Exporter le mois").click()
    page.wait_for_url(re.compile(r".*/finances/comptabilite/exports/[0-9a-f-]{36}$"))
    shown = page.locator("main").inner_text()
    assert "déjà été exporté" in shown and "le fichier est identique" in shown
    accessible(page, "comptabilite-export")
