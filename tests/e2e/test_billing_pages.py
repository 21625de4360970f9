"""The month between three communes told through the finance pages, in a real browser
(headless Chromium): Le Chambon-Feugerolles, Saint-Étienne and Firminy owe each other;
Saint-Étienne contests a damage on its invoice page; Le Chambon previews and proposes a
netting; Firminy declines on its page and nothing changes; Le Chambon proposes again without
Firminy; both accept on their pages; the printable result shows one transfer; the damage is
credited. The invoices are made through the API and events, as the e2e story makes them:
only the money steps are the pages'. Every new page passes axe-core and is photographed
under test-output/screenshots/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page

from tests.browser import axe_violations, chromium, describe, screenshot, sign_in
from tests.e2e.test_billing_flow import approve_timesheet, return_snowplough
from tests.support import Stack, this_period, wait_until

CHAMBON, FIRMINY, SAINT_ETIENNE = "42044", "42095", "42218"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A stack of its own: nettings span every open invoice of the period between the
    communes taking part, so no other test's."""
    with Stack("sqlite", tmp_path_factory.mktemp("billing-pages")).running() as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


def accessible(page: Page, name: str) -> None:
    """No serious or critical axe-core violation on the page as it is; photographed."""
    screenshot(page, name)
    violations = axe_violations(page)
    assert violations == [], f"{name}: {describe(violations)}"


def month_of_invoices(stack: Stack) -> dict[tuple[str, str], dict]:
    """Le Chambon lends Saint-Étienne a snowplough (840.00 + a 150.00 damage); Saint-Étienne
    lends Le Chambon a lawyer (300.00) and Firminy one (100.00); Firminy lends Le Chambon an
    urbanist (200.00). Issued by the operator's billing run, keyed (supplier, customer)."""
    return_snowplough(stack)
    approve_timesheet(stack, SAINT_ETIENNE, CHAMBON, "1", 30000, name="Marc Roux, juriste")
    approve_timesheet(stack, FIRMINY, CHAMBON, "1", 20000)
    approve_timesheet(stack, SAINT_ETIENNE, FIRMINY, "1", 10000, name="Marc Roux, juriste")
    operator = stack.login("operator@mutualis-demo.fr")

    found: dict = {}

    def all_issued() -> bool:
        """Runs again until the four charges, each from its own event, are all invoiced."""
        answer = operator.post(f"{stack.url}/api/v1/billing/runs", json={"period": this_period()})
        assert answer.status_code == 200, answer.text
        for invoice in answer.json()["invoices"]:
            found[(invoice["supplier_commune"], invoice["customer_commune"])] = invoice
        return len(found) == 4

    wait_until(all_issued, timeout=60, interval=0.5)
    return found


def propose(page: Page, *communes: str) -> str:
    """From the netting page: tick the communes, preview, propose; the proposal's address."""
    page.goto("/finances/compensation")
    for name in communes:
        page.get_by_label(name, exact=True).check()
    page.get_by_role("button", name="Prévisualiser la compensation").click()
    page.wait_for_url("**/finances/compensation/apercu")
    page.get_by_role("button", name="Proposer cette compensation").click()
    page.wait_for_url(re.compile(r".*/finances/compensation/[0-9a-f-]{36}(\?.*)?$"))
    return page.url.split("?")[0]


def test_a_month_is_netted_by_consent_and_a_damage_credited_on_the_pages(stack, browser):
    invoices = month_of_invoices(stack)
    snowplough = invoices[(CHAMBON, SAINT_ETIENNE)]
    assert snowplough["total_cents"] == 99000
    # axe is injected as a script: these contexts let it past the pages' CSP
    chambon, saint_etienne, firminy = (
        sign_in(browser, stack.url, f"finance.{c}@mutualis-demo.fr", bypass_csp=True)
        for c in (CHAMBON, SAINT_ETIENNE, FIRMINY)
    )
    api = stack.as_role("finance", CHAMBON)

    # -- Saint-Étienne contests the damage on the invoice it received -----------------------
    saint_etienne.goto(f"/finances/factures/{snowplough['id']}")
    accessible(saint_etienne, "facture-recue-avant-contestation")
    damage = saint_etienne.get_by_label("Ligne", exact=True).locator("option", has_text="Dommage")
    saint_etienne.get_by_label("Ligne", exact=True).select_option(damage.get_attribute("value"))
    saint_etienne.get_by_label("Motif", exact=True).fill("Rétroviseur déjà fêlé au départ")
    saint_etienne.get_by_role("button", name="Contester").click()
    saint_etienne.wait_for_url("**contestation-envoyee**")
    assert "Rétroviseur déjà fêlé au départ" in saint_etienne.content()
    accessible(saint_etienne, "facture-contestee")

    # -- Le Chambon previews: the three communes, the contested invoice left out ------------
    chambon.goto("/finances/compensation")
    accessible(chambon, "compensation-formulaire")
    chambon.get_by_role("button", name="Prévisualiser la compensation").click()
    chambon.wait_for_url("**/finances/compensation/apercu")
    preview = chambon.locator("main").inner_text()
    assert "Rien n'est encore enregistré" in preview
    for name in ("Le Chambon-Feugerolles", "Saint-Étienne", "Firminy"):
        assert name in preview
    accessible(chambon, "compensation-apercu")
    chambon.get_by_role("button", name="Proposer cette compensation").click()
    chambon.wait_for_url(re.compile(r".*/finances/compensation/[0-9a-f-]{36}(\?.*)?$"))
    first = chambon.url.split("?")[0]
    main = chambon.locator("main").inner_text()
    assert "Proposée" in main and snowplough["number"] not in main
    accessible(chambon, "compensation-proposee")

    # -- Firminy declines on its page: nothing changes --------------------------------------
    firminy.goto(first)
    accessible(firminy, "compensation-a-accepter")
    firminy.get_by_label("Motif du refus").fill("Facture à vérifier")
    firminy.get_by_role("button", name="Refuser la compensation").click()
    firminy.wait_for_url("**compensation-refusee**")
    declined = firminy.locator("main").inner_text()
    assert "Refusée" in declined and "Facture à vérifier" in declined
    assert firminy.get_by_role("button", name="Accepter la compensation").count() == 0
    accessible(firminy, "compensation-refusee")
    for pair in invoices.values():
        still = api.get(f"{stack.url}/api/v1/invoices/{pair['id']}")
        if still.status_code == 200:  # the invoices Le Chambon is party to
            assert still.json()["status"] == "issued"
            assert still.json()["balance_cents"] == pair["total_cents"]

    # -- Le Chambon proposes again, without Firminy; both accept on their pages -------------
    second = propose(chambon, "Saint-Étienne")
    assert second != first
    assert invoices[(SAINT_ETIENNE, CHAMBON)]["number"] in chambon.locator("main").inner_text()
    assert invoices[(FIRMINY, CHAMBON)]["number"] not in chambon.locator("main").inner_text()
    chambon.get_by_role("button", name="Accepter la compensation").click()
    chambon.wait_for_url("**compensation-acceptee**")
    saint_etienne.goto(second)
    accessible(saint_etienne, "compensation-a-accepter-saint-etienne")
    saint_etienne.get_by_role("button", name="Accepter la compensation").click()
    saint_etienne.wait_for_url("**compensation-acceptee**")
    assert "Acceptée par tous, en vigueur" in saint_etienne.locator("h1").inner_text()

    # -- the printable result: one transfer, Le Chambon to Saint-Étienne --------------------
    chambon.goto(f"{second}/imprimer")
    transfers = chambon.locator("section", has_text="Votre position").locator("ul.list li")
    assert transfers.count() == 1
    assert re.search(
        r"Le Chambon-Feugerolles verse\s+300,00\s€\s+à Saint-Étienne",
        transfers.inner_text().replace("\u202f", " ").replace("\xa0", " "),
    ), transfers.inner_text()
    accessible(chambon, "compensation-imprimable")

    # -- Le Chambon credits the contested damage on the invoice page ------------------------
    chambon.goto(f"/finances/factures/{snowplough['id']}")
    accessible(chambon, "facture-emise-contestation-et-paiement")
    chambon.get_by_label("Réponse").select_option("credit")
    chambon.locator("input[id^=motif-c-]").fill("Constat de départ incomplet")
    chambon.get_by_role("button", name="Répondre").click()
    chambon.wait_for_url("**contestation-traitee**")
    accessible(chambon, "facture-avoir-sur-contestation")
    credited = api.get(f"{stack.url}/api/v1/invoices/{snowplough['id']}").json()
    assert credited["balance_cents"] == 84000
    assert credited["disputed_cents"] == 0
