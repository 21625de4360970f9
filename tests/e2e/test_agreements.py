"""Agreements between communes through the gateway: Saint-Étienne and Le Chambon-Feugerolles
draft an agreement for snow-clearing equipment, each records its council decision (with its
PDF), both sign and it is in force; a loan between them is covered and its booking.returned
carries the agreement's reference. Bad input is refused naming the rule, nothing stored. The
same story again in a browser, on the pages, axe-core clean."""

from __future__ import annotations

import uuid

import pytest

from tests.browser import axe_violations, chromium, describe, screenshot, sign_in
from tests.support import assert_problem, day, listen, wait_until

SAINT_ETIENNE, CHAMBON, FIRMINY, ROCHE = "42218", "42044", "42095", "42189"
TABLES = ("agreements", "agreement_parties", "council_decisions")

pytestmark = pytest.mark.e2e


def api(stack, path: str) -> str:
    return f"{stack.url}/api/v1/{path}"


def snow_draft(**changes) -> dict:
    return {
        "title": "Mise à disposition de matériel de déneigement",
        "parties": [SAINT_ETIENNE, CHAMBON],
        "categories": ["deneigement"],
        "starts_on": day(0),
        "ends_on": day(60),
    } | changes


def book_from(stack, lender: str, borrower: str, category: str, first: int) -> dict:
    """A fresh listing of `lender` in `category`, known to bookings, requested by an agent of
    `borrower` for days `first` and `first + 1`: the booking made."""
    published = stack.session("manager", lender).post(
        api(stack, "listings"),
        json={
            "title": f"Matériel {uuid.uuid4().hex[:6]}",
            "category": category,
            "kind": "equipment",
            "pricing_unit": "day",
            "rate_cents": 25000,
        },
        timeout=10,
    )
    assert published.status_code == 201, published.text
    stack.known_to_bookings(published.json())
    asked = stack.session("agent", borrower).post(
        api(stack, "bookings"),
        json={"listing_id": published.json()["id"], "start": day(first), "end": day(first + 2)},
        timeout=10,
    )
    assert asked.status_code == 201, asked.text
    return asked.json()


@pytest.fixture
def drafted(stack):
    """Saint-Étienne's draft, ended after the test: the stack is shared with tests whose
    loans between these communes it must not cover."""
    answer = stack.session("manager", SAINT_ETIENNE).post(
        api(stack, "agreements"), json=snow_draft(), timeout=10
    )
    assert answer.status_code == 201, answer.text
    yield answer.json()
    stack.session("manager", CHAMBON).post(
        api(stack, f"agreements/{answer.json()['id']}/end"), timeout=10
    )


def record_decision(stack, commune: str, number: str, agreement_id: str) -> dict:
    manager = stack.session("manager", commune)
    answer = manager.post(
        api(stack, "council-decisions"),
        json={
            "number": f"{number}-{uuid.uuid4().hex[:4]}",
            "date": day(-3),
            "subject": "Approbation de la convention de mise à disposition de matériel de "
            "déneigement",
            "agreement_ids": [agreement_id],
        },
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    decision = answer.json()
    attached = manager.put(
        api(stack, f"council-decisions/{decision['id']}/pdf"),
        data=b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n",
        headers={"Content-Type": "application/pdf"},
        timeout=10,
    )
    assert attached.status_code == 200, attached.text
    assert attached.json()["has_pdf"] is True
    return decision


def test_two_communes_agree_and_a_loan_between_them_is_covered(stack, drafted):
    returned = listen(stack.vhost.amqp_uri, "bookings.events", "booking.returned")
    in_force_told = listen(stack.vhost.amqp_uri, "bookings.events", "agreement.in_force")
    ours, theirs = stack.session("manager", SAINT_ETIENNE), stack.session("manager", CHAMBON)
    agreement_id, reference = drafted["id"], drafted["reference"]
    assert reference.startswith(f"CONV-{SAINT_ETIENNE}-")
    path = api(stack, f"agreements/{agreement_id}")

    assert theirs.post(f"{path}/propose", timeout=10).json()["status"] == "proposed"
    decisions = {
        SAINT_ETIENNE: record_decision(stack, SAINT_ETIENNE, "2026-118", agreement_id),
        CHAMBON: record_decision(stack, CHAMBON, "D-2026-45", agreement_id),
    }
    signed = ours.post(
        f"{path}/sign",
        json={"decision_id": decisions[SAINT_ETIENNE]["id"], "signatory": "Le maire"},
        timeout=10,
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "signed"
    in_force = theirs.post(
        f"{path}/sign",
        json={"decision_id": decisions[CHAMBON]["id"], "signatory": "Le maire"},
        timeout=10,
    )
    assert in_force.json()["status"] == "in_force", in_force.text
    (told,) = wait_until(in_force_told, timeout=10)
    assert told["payload"]["reference"] == reference
    assert {p["decision_number"] for p in told["payload"]["parties"]} == {
        decisions[SAINT_ETIENNE]["number"],
        decisions[CHAMBON]["number"],
    }

    pdf = ours.get(f"{path}/pdf", timeout=10)
    assert pdf.status_code == 200
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    outsider = stack.session("manager", FIRMINY).get(path, timeout=10)
    assert_problem(outsider, 404)

    # equipment of Le Chambon-Feugerolles, booked by Saint-Étienne from today, is covered
    booking = book_from(stack, CHAMBON, SAINT_ETIENNE, "deneigement", 0)
    assert booking["agreement_reference"] == reference
    loan = api(stack, f"bookings/{booking['id']}")
    assert theirs.post(f"{loan}/approve", timeout=10).status_code == 200
    assert theirs.post(f"{loan}/check-out", json={"condition": "bon état"}).status_code == 200
    back = theirs.post(f"{loan}/return", json={"condition": "bon état", "damages": []})
    assert back.status_code == 200, back.text
    assert back.json()["agreement_reference"] == reference

    (event,) = wait_until(returned, timeout=10)
    assert event["payload"]["booking_id"] == booking["id"]
    assert event["payload"]["agreement_reference"] == reference


def test_bad_input_is_refused_naming_the_rule_and_nothing_is_stored(stack, drafted):
    ours = stack.session("manager", SAINT_ETIENNE)
    before = stack.row_counts("bookings", TABLES)

    same = ours.post(
        api(stack, "agreements"),
        json=snow_draft(parties=[SAINT_ETIENNE, SAINT_ETIENNE]),
        timeout=10,
    )
    assert assert_problem(same, 422)["errors"][0]["type"] == "parties_not_distinct"
    overlapping = stack.session("manager", CHAMBON).post(
        api(stack, "agreements"),
        json=snow_draft(parties=[CHAMBON, SAINT_ETIENNE, FIRMINY], starts_on=day(30)),
        timeout=10,
    )
    refused = assert_problem(overlapping, 422)["errors"][0]
    assert refused["type"] == "overlapping_agreement"
    assert refused["reference"] == drafted["reference"]
    future = ours.post(
        api(stack, "council-decisions"),
        json={"number": "2099-1", "date": day(1), "subject": "Approbation de la convention"},
        timeout=10,
    )
    assert assert_problem(future, 422)["errors"][0]["type"] == "decision_in_the_future"
    agent = stack.session("agent", SAINT_ETIENNE).post(
        api(stack, "agreements"), json=snow_draft(), timeout=10
    )
    assert_problem(agent, 403)

    assert stack.row_counts("bookings", TABLES) == before


@pytest.fixture
def roche_requires_an_agreement(stack):
    """Roche-la-Molière lends only under an agreement, for this test only."""
    roche = stack.session("manager", ROCHE)
    answer = roche.put(api(stack, "agreement-policy"), json={"requires_agreement": True})
    assert answer.json() == {"requires_agreement": True}, answer.text
    yield roche
    roche.put(api(stack, "agreement-policy"), json={"requires_agreement": False}, timeout=10)


def test_a_request_is_held_until_both_managers_sign_a_one_off_agreement(
    stack, roche_requires_an_agreement
):
    roche, firminy = roche_requires_an_agreement, stack.session("manager", FIRMINY)
    held = book_from(stack, ROCHE, FIRMINY, "evenementiel", 9)
    assert held["agreement_held"] is True
    loan = api(stack, f"bookings/{held['id']}")
    assert_problem(roche.post(f"{loan}/approve", timeout=10), 409)

    def mayor_may_sign(session, number: str) -> dict:
        answer = session.post(
            api(stack, "council-decisions"),
            json={
                "number": f"{number}-{uuid.uuid4().hex[:4]}",
                "date": day(-30),
                "subject": "Délégation au maire pour signer les conventions de mise à disposition",
                "authorises_mayor": True,
            },
            timeout=10,
        )
        assert answer.status_code == 201, answer.text
        return answer.json()

    one_off = roche.post(
        f"{loan}/one-off-agreement",
        json={"decision_id": mayor_may_sign(roche, "R")["id"], "signatory": "Le maire"},
        timeout=10,
    )
    assert one_off.status_code == 201, one_off.text
    assert one_off.json()["status"] == "signed"
    signed = firminy.post(
        api(stack, f"agreements/{one_off.json()['id']}/sign"),
        json={"decision_id": mayor_may_sign(firminy, "F")["id"], "signatory": "La maire"},
        timeout=10,
    )
    assert signed.json()["status"] == "in_force", signed.text
    approved = roche.post(f"{loan}/approve", timeout=10)
    assert approved.status_code == 200, approved.text
    assert approved.json()["agreement_reference"] == one_off.json()["reference"]
    assert approved.json()["agreement_held"] is False


# -- the same story on the pages -----------------------------------------------------------

PDF_FILE = {
    "name": "deliberation.pdf",
    "mimeType": "application/pdf",
    "buffer": b"%PDF-1.4\n%%EOF\n",
}


def record_on_the_page(page, number: str, reference: str) -> None:
    page.goto("/deliberations")
    page.get_by_label("Numéro").fill(number)
    page.get_by_label("Date de la séance").fill(day(-2))
    page.get_by_label("Objet").fill("Approbation de la convention de déneigement")
    page.get_by_label(reference, exact=False).check()
    page.get_by_label("Délibération (PDF, 1 Mo au plus, facultatif)").set_input_files(PDF_FILE)
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url("**/deliberations")
    row = page.locator("tbody tr", has_text=number)
    assert reference in row.inner_text() and "PDF" in row.inner_text()


def sign_on_the_page(page, agreement_url: str, signatory: str) -> None:
    page.goto(agreement_url)
    page.get_by_label("Signataire (nom et qualité)").fill(signatory)
    page.get_by_role("button", name="Signer", exact=True).click()
    page.wait_for_url(f"**{agreement_url}")


def test_the_story_on_the_pages(stack):
    suffix = uuid.uuid4().hex[:4]
    with chromium() as browser:
        ours = sign_in(
            browser, stack.url, f"manager.{SAINT_ETIENNE}@mutualis-demo.fr", bypass_csp=True
        )
        ours.get_by_role("link", name="Conventions").first.click()
        ours.wait_for_url("**/conventions")
        assert axe_violations(ours) == [], describe(axe_violations(ours))
        ours.get_by_label("Objet").fill(f"Déneigement — pages {suffix}")
        ours.get_by_label("Communes partenaires (codes INSEE, séparés par des virgules)").fill(
            CHAMBON
        )
        ours.get_by_label("Déneigement et viabilité hivernale").check()
        ours.get_by_label("Prend effet le").fill(day(0))
        ours.get_by_label("Jusqu'au (inclus, facultatif)").fill(day(60))
        ours.get_by_role("button", name="Rédiger la convention").click()
        ours.wait_for_url("**/conventions/*")
        agreement_url = ours.url.removeprefix(stack.url)
        agreement_id = agreement_url.rsplit("/", 1)[1]
        try:
            reference = ours.locator("dl.facts dd").first.inner_text()
            assert reference.startswith(f"CONV-{SAINT_ETIENNE}-")
            assert "Brouillon" in ours.locator("h1").inner_text()
            assert axe_violations(ours) == [], describe(axe_violations(ours))
            ours.get_by_role("button", name="Proposer la convention").click()
            ours.wait_for_url(f"**{agreement_url}")
            assert "Proposée" in ours.locator("h1").inner_text()

            # dated tomorrow: refused on the page, in French, nothing recorded
            ours.goto("/deliberations")
            ours.get_by_label("Numéro").fill(f"futur-{suffix}")
            ours.get_by_label("Date de la séance").fill(day(1))
            ours.get_by_label("Objet").fill("Approbation anticipée")
            ours.get_by_role("button", name="Enregistrer").click()
            alert = ours.get_by_role("alert").inner_text()
            assert "ne peut pas être datée dans le futur" in alert, alert
            assert f"futur-{suffix}" not in ours.locator("main").inner_text()  # not listed
            assert axe_violations(ours) == [], describe(axe_violations(ours))
            record_on_the_page(ours, f"2026-{suffix}", reference)
            assert axe_violations(ours) == [], describe(axe_violations(ours))
            sign_on_the_page(ours, agreement_url, "Le maire de Saint-Étienne")
            assert "Signée en partie" in ours.locator("h1").inner_text()

            theirs = sign_in(
                browser, stack.url, f"manager.{CHAMBON}@mutualis-demo.fr", bypass_csp=True
            )
            record_on_the_page(theirs, f"D-{suffix}", reference)
            sign_on_the_page(theirs, agreement_url, "Le maire du Chambon-Feugerolles")
            assert "En vigueur" in theirs.locator("h1").inner_text()
            parties = theirs.locator("table.data tbody").inner_text()
            assert f"n° 2026-{suffix}" in parties and f"n° D-{suffix}" in parties
            assert axe_violations(theirs) == [], describe(axe_violations(theirs))
            theirs.get_by_label("Scan signé (PDF, 1 Mo au plus)").set_input_files(
                PDF_FILE | {"name": "convention-signee.pdf"}
            )
            theirs.get_by_role("button", name="Joindre").click()
            theirs.wait_for_url(f"**{agreement_url}")
            assert theirs.get_by_role("link", name="Exemplaire signé (PDF)").is_visible()
            screenshot(theirs, "convention-en-vigueur")
            pdf = theirs.request.get(f"{agreement_url}/pdf")
            assert pdf.ok and pdf.body().startswith(b"%PDF-")

            # a loan between them shows the agreement that covers it
            booking = book_from(stack, CHAMBON, SAINT_ETIENNE, "deneigement", 5)
            theirs.goto(f"/reservations/{booking['id']}")
            assert reference in theirs.locator("dl.facts").inner_text()
            assert axe_violations(theirs) == [], describe(axe_violations(theirs))
        finally:
            stack.session("manager", CHAMBON).post(
                api(stack, f"agreements/{agreement_id}/end"), timeout=10
            )
