"""Issue 19's "done when", end to end: Saint-Étienne and Le Chambon-Feugerolles draft an
agreement for snow-clearing equipment, each records its council decision, both sign and it is
in force; Saint-Étienne borrows Le Chambon's snowplough under it (requested, approved, handed
over, returned, all today in Paris); the month's billing run invoices it with the agreement's
reference as BT-12 in the UBL and in the Factur-X PDF, both still valid (UBL XSD, EN 16931,
BR-FR; the CII's EN 16931 and French CTC rules); the month's export of each commune lists
the invoice on the accounts each configured: a titre for the lender, a mandat for the
borrower. Then in a real browser each finance team sees its row, the agreement reads "en
vigueur" and the booking names it, axe-core clean, photographed.

Through the gateway only, every service as a process, on PostgreSQL; a stack of its own, as
the billing run invoices every commune's charges of the month."""

from __future__ import annotations

import io

import pytest
from lxml import etree
from pypdf import PdfReader

from services.billing.validation import embedded_cii, factur_x_problems, problems
from tests.browser import chromium, sign_in
from tests.e2e.test_accounting_export import SNOWPLOUGH
from tests.e2e.test_agreements import record_decision, snow_draft
from tests.e2e.test_billing_pages import accessible
from tests.support import COMPONENTS, Stack, day, this_period, wait_until

pytestmark = pytest.mark.e2e

SAINT_ETIENNE, CHAMBON = "42218", "42044"  # the borrower and the lender
# each commune's own imputation of snow-clearing, not the defaults (70/7083 and 011/6135),
# so that the export shows it used what was configured
LENDERS_TITRE = {
    "category": "deneigement",
    "side": "titre",
    "chapter": "70",
    "account": "70688",
    "budget": "Budget annexe viabilité hivernale",
}
BORROWERS_MANDAT = {"category": "deneigement", "side": "mandat", "chapter": "011", "account": "611"}
UBL = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
CII = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A stack of its own, on PostgreSQL, with few workers: the machine is shared."""
    few = {f"{c.upper()}_MAX_WORKERS": "4" for c in COMPONENTS}
    workdir = tmp_path_factory.mktemp("paperwork")
    with Stack("postgresql", workdir, settings=few).running() as running:
        yield running


@pytest.fixture(scope="module")
def story() -> dict:
    """What the API story made, for the browser's look at it."""
    return {}


def api(stack: Stack, path: str) -> str:
    return f"{stack.url}/api/v1/{path}"


def impute(stack: Stack, commune: str, imputation: dict) -> None:
    """A commune's finance team sets one imputation; reading them back shows it configured."""
    finance = stack.session("finance", commune)
    answer = finance.put(api(stack, "accounting/imputations"), json={"items": [imputation]})
    assert answer.status_code == 200, answer.text
    kept = finance.get(api(stack, "accounting/imputations")).json()["items"]
    (mine,) = [
        i
        for i in kept
        if (i["category"], i["side"]) == (imputation["category"], imputation["side"])
    ]
    assert (mine["chapter"], mine["account"], mine["configured"]) == (
        imputation["chapter"],
        imputation["account"],
        True,
    )


def agree(stack: Stack) -> dict:
    """Saint-Étienne drafts, Le Chambon proposes, each records its council decision and
    signs: the agreement is in force."""
    ours, theirs = stack.session("manager", SAINT_ETIENNE), stack.session("manager", CHAMBON)
    drafted = ours.post(api(stack, "agreements"), json=snow_draft(), timeout=10)
    assert drafted.status_code == 201, drafted.text
    path = api(stack, f"agreements/{drafted.json()['id']}")
    assert theirs.post(f"{path}/propose", timeout=10).json()["status"] == "proposed"
    for commune, session, number in (
        (SAINT_ETIENNE, ours, "2026-118"),
        (CHAMBON, theirs, "D-2026-45"),
    ):
        decision = record_decision(stack, commune, number, drafted.json()["id"])
        signed = session.post(
            f"{path}/sign",
            json={"decision_id": decision["id"], "signatory": "Le maire"},
            timeout=10,
        )
        assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "in_force", signed.text
    return signed.json()


def borrow_snowplough(stack: Stack, reference: str) -> dict:
    """Le Chambon publishes its snowplough; an agent of Saint-Étienne books it for today;
    it is approved, handed over and returned, covered by the agreement all along."""
    lender = stack.session("manager", CHAMBON)
    published = lender.post(api(stack, "listings"), json=SNOWPLOUGH, timeout=10)
    assert published.status_code == 201, published.text
    stack.known_to_bookings(published.json())
    requested = stack.session("agent", SAINT_ETIENNE).post(
        api(stack, "bookings"),
        json={
            "listing_id": published.json()["id"],
            "start": day(0),
            "end": day(1),
            "purpose": "Déneigement des côtes de Montreynaud",
        },
        timeout=10,
    )
    assert requested.status_code == 201, requested.text
    assert requested.json()["status"] == "requested"
    assert requested.json()["agreement_reference"] == reference
    loan = api(stack, f"bookings/{requested.json()['id']}")
    approved = lender.post(f"{loan}/approve", timeout=10)
    assert approved.json()["status"] == "approved", approved.text
    handed = lender.post(f"{loan}/check-out", json={"condition": "Bon état"}, timeout=10)
    assert handed.json()["status"] == "checked_out", handed.text
    back = lender.post(f"{loan}/return", json={"condition": "Bon état", "damages": []}, timeout=10)
    assert back.json()["status"] == "returned", back.text
    assert back.json()["agreement_reference"] == reference
    return back.json()


def contract_in_ubl(document: bytes) -> list[str]:
    """BT-12 of a UBL invoice: its ContractDocumentReference IDs."""
    root = etree.fromstring(document)
    return root.xpath("cac:ContractDocumentReference/cbc:ID/text()", namespaces=UBL)


def contract_in_cii(xml: bytes) -> list[str]:
    """BT-12 of a CII invoice: its ContractReferencedDocument's IssuerAssignedID."""
    root = etree.fromstring(xml)
    return root.xpath(
        "//ram:ContractReferencedDocument/ram:IssuerAssignedID/text()", namespaces=CII
    )


def test_an_agreed_loan_is_invoiced_with_bt12_and_exported_on_both_sides(stack, story):
    period = this_period()
    impute(stack, CHAMBON, LENDERS_TITRE)
    impute(stack, SAINT_ETIENNE, BORROWERS_MANDAT)

    agreement = agree(stack)
    reference = agreement["reference"]
    booking = borrow_snowplough(stack, reference)

    # the month's billing run invoices the loan, from Le Chambon to Saint-Étienne
    borrower_finance = stack.session("finance", SAINT_ETIENNE)

    def charged() -> list | None:
        answer = borrower_finance.get(
            api(stack, "charges"), params={"status": "uninvoiced", "direction": "received"}
        )
        return answer.json()["items"] or None

    (charge,) = wait_until(charged, timeout=15)
    assert charge["agreement_reference"] == reference
    run = stack.user("operator@mutualis-demo.fr").post(
        api(stack, "billing/runs"), json={"period": period}, timeout=60
    )
    assert run.status_code == 200, run.text
    (issued,) = run.json()["invoices"]
    assert (issued["supplier_commune"], issued["customer_commune"]) == (CHAMBON, SAINT_ETIENNE)
    invoice = borrower_finance.get(api(stack, f"invoices/{issued['id']}")).json()
    assert invoice["agreement_reference"] == reference
    assert invoice["lines"][0]["source_reference"] == f"booking:{booking['id']}:rental"

    # BT-12 in the UBL, which still passes the UBL XSD, EN 16931 and the French rules
    ubl = borrower_finance.get(api(stack, f"invoices/{issued['id']}/ubl"))
    assert ubl.status_code == 200, ubl.text
    assert contract_in_ubl(ubl.content) == [reference]
    assert problems(ubl.content) == []
    # and in the Factur-X PDF: its embedded CII, valid, and the printed page
    printed = borrower_finance.get(api(stack, f"invoices/{issued['id']}/pdf"))
    assert printed.headers["Content-Type"] == "application/pdf"
    assert contract_in_cii(embedded_cii(printed.content)) == [reference]
    assert factur_x_problems(printed.content) == []
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(printed.content)).pages)
    assert "Convention n°" in text and reference in text

    # each commune's export of the month: a titre for the lender, a mandat for the borrower,
    # each on the account that commune configured
    exports = {}
    for commune in (CHAMBON, SAINT_ETIENNE):
        made = stack.session("finance", commune).post(
            api(stack, "accounting/exports"), json={"period": period}, timeout=30
        )
        assert made.status_code == 201, made.text
        exports[commune] = made.json()
    rows = {
        commune: [
            (
                r["document_number"],
                r["operation"],
                r["budget"],
                r["chapter"],
                r["account"],
                r["agreement_reference"],
            )
            for r in export["items"]
        ]
        for commune, export in exports.items()
    }
    assert rows == {
        CHAMBON: [(issued["number"], "titre", LENDERS_TITRE["budget"], "70", "70688", reference)],
        SAINT_ETIENNE: [(issued["number"], "mandat", "principal", "011", "611", reference)],
    }
    assert exports[CHAMBON]["titres_cents"] == exports[SAINT_ETIENNE]["mandats_cents"]
    assert exports[CHAMBON]["titres_cents"] == issued["total_cents"] == 42000
    assert exports[CHAMBON]["mandats_cents"] == exports[SAINT_ETIENNE]["titres_cents"] == 0
    story.update(
        agreement=agreement,
        booking=booking,
        number=issued["number"],
        exports={c: e["id"] for c, e in exports.items()},
    )


def test_each_commune_sees_its_side_on_the_pages(stack, story):
    """In a real browser: each finance team opens its accounting page, follows the month's
    export and finds the invoice as its titre or its mandat; Saint-Étienne's manager reads
    the agreement in force, its agent the booking it covers. axe-core clean, photographed."""
    if not story:
        pytest.skip("the API story did not run")
    reference, number = story["agreement"]["reference"], story["number"]
    sides = {
        CHAMBON: ("Titre de recettes", "70688", "titre"),
        SAINT_ETIENNE: ("Mandat", "611", "mandat"),
    }
    with chromium() as browser:
        for commune, (operation, account, side) in sides.items():
            page = sign_in(
                browser, stack.url, f"finance.{commune}@mutualis-demo.fr", bypass_csp=True
            )
            page.goto("/finances/comptabilite")
            accessible(page, f"histoire-comptabilite-{side}")
            export = f"/finances/comptabilite/exports/{story['exports'][commune]}"
            page.locator(f"a[href='{export}']").click()
            page.wait_for_url(f"**{export}")
            row = page.locator("tbody tr", has_text=number).inner_text()
            assert operation in row and account in row and reference in row, row
            accessible(page, f"histoire-export-{side}")

        manager = sign_in(
            browser, stack.url, f"manager.{SAINT_ETIENNE}@mutualis-demo.fr", bypass_csp=True
        )
        manager.goto(f"/conventions/{story['agreement']['id']}")
        assert "en vigueur" in manager.locator("h1").inner_text().lower()
        accessible(manager, "histoire-convention-en-vigueur")

        agent = sign_in(
            browser, stack.url, f"agent.{SAINT_ETIENNE}@mutualis-demo.fr", bypass_csp=True
        )
        agent.goto(f"/reservations/{story['booking']['id']}")
        assert reference in agent.locator("dl.facts").inner_text()
        accessible(agent, "histoire-reservation-sous-convention")
