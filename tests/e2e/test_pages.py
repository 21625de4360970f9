"""The web pages in a real browser (headless Chromium): Saint-Étienne's agent finds and books
Le Chambon-Feugerolles' snowplough, its manager approves, hands it over and records the
return with a damage, the invoice is issued and Saint-Étienne's finance officer downloads
its UBL; a Firminy agent sees none of it; every main page passes axe-core and is
photographed under test-output/screenshots/."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
import requests

from contracts.clock import PARIS
from gateway.pages.french import long_date
from services.billing.validation import embedded_cii, factur_x_problems, problems
from services.consultants.domain import is_working_day
from tests.browser import axe_violations, chromium, describe, screenshot, sign_in
from tests.support import Stack, day, paris_today, this_period, wait_until
from tests.support.rendering import assert_drawn

CHAMBON, FIRMINY, SAINT_ETIENNE = "42044", "42095", "42218"
SNOWPLOUGH = "Chasse-neige Unimog U400 avec lame biaise 3 m"
SALTER = "Saleuse tractée 1,5 m³"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One stack of its own, on SQLite only (the pages add nothing backend-specific): the
    billing run issues every uninvoiced charge of the period, so no other test's."""
    with Stack("sqlite", tmp_path_factory.mktemp("pages")).running() as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def story() -> dict:
    """What the story test made, for the tests after it."""
    return {}


def csp_errors(page) -> list[str]:
    errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return errors


def test_a_snowplough_is_booked_lent_returned_and_invoiced(stack, browser, story):
    # -- Saint-Étienne's agent finds the snowplough and books it ---------------------------
    agent = sign_in(browser, stack.url, f"agent.{SAINT_ETIENNE}@mutualis-demo.fr")
    refused_by_csp = csp_errors(agent)
    agent.get_by_role("navigation", name="Navigation principale").get_by_role(
        "link", name="Chercher"
    ).click()
    agent.get_by_label("Que cherchez-vous ?").fill("chasse-neige")
    agent.get_by_role("button", name="Rechercher").click()
    result = agent.locator(".result", has_text=SNOWPLOUGH)
    assert "Le Chambon-Feugerolles" in result.inner_text()
    assert "km" in result.inner_text() and "420,00" in result.inner_text()
    assert agent.locator("svg.map .map-marker").count() >= 1
    result.get_by_role("link", name=SNOWPLOUGH).click()

    agent.get_by_label("Premier jour").fill(day(0))  # handed over today, its first day
    agent.get_by_label("Dernier jour (inclus)").fill(day(1))
    agent.get_by_label("Objet de la demande").fill("Déneigement des côtes de Montreynaud")
    agent.get_by_role("button", name="Voir le devis").click()
    quote = agent.locator("#devis")
    assert "840,00" in quote.inner_text()  # 2 days × 420.00 €
    assert "1 500,00" in quote.inner_text().replace("\u202f", " ")  # the deposit
    agent.get_by_role("button", name="Envoyer la demande").click()
    agent.wait_for_url("**/reservations/*")
    assert "Demandée" in agent.locator("h1").inner_text()
    booking_url = agent.url.split("?")[0]

    # -- Le Chambon's manager approves, hands it over, records the return ------------------
    manager = sign_in(browser, stack.url, f"manager.{CHAMBON}@mutualis-demo.fr")
    waiting = manager.locator("section", has_text="Ce qui vous attend")
    assert "Demandes de réservation à décider (1)" in waiting.inner_text()
    # who asked, by name (the demo's names say the role), and their commune
    assert "demande de Agent — Saint-Étienne (Saint-Étienne)" in waiting.inner_text()
    waiting.get_by_role("link", name=SNOWPLOUGH).click()
    manager.get_by_role("button", name="Accepter la demande").click()
    assert "La réservation est acceptée." in manager.get_by_role("status").first.inner_text()
    manager.get_by_label("État constaté à la remise").fill("Lame neuve, plein fait")
    manager.get_by_role("button", name="Enregistrer la remise").click()
    assert "Remis" in manager.locator("h1").inner_text()
    manager.get_by_label("État constaté au retour").fill("Rétroviseur gauche cassé")
    manager.get_by_label("Description du dommage 1").fill("Rétroviseur gauche")
    manager.get_by_label("Montant 1 (€)").fill("150")
    manager.get_by_role("button", name="Enregistrer le retour").click()
    assert "Rendu" in manager.locator("h1").inner_text()
    assert "Rétroviseur gauche : 150,00" in manager.locator("main").inner_text()
    history = manager.locator("section", has_text="Historique").inner_text()
    for step in ("Demandée", "Acceptée", "Remis", "Rendu"):
        assert step in history

    story["booking_path"] = booking_url.removeprefix(stack.url)

    # -- the billing run; Saint-Étienne's finance officer finds the invoice, gets its UBL --
    charges = f"{stack.url}/api/v1/charges"
    lender_api = stack.as_role("finance", CHAMBON)
    wait_until(
        lambda: (
            len(
                lender_api.get(
                    charges, params={"status": "uninvoiced", "direction": "issued"}
                ).json()["items"]
            )
            == 2
        ),  # the rental and the damage, once billing has the booking.returned event
        timeout=10,
    )
    lender_finance = sign_in(browser, stack.url, f"finance.{CHAMBON}@mutualis-demo.fr")
    lender_finance.goto("/finances")
    lender_finance.get_by_label("Période (mois)").fill(this_period())
    lender_finance.get_by_role("button", name="Voir ce qui serait facturé").click()
    # the run shows what it would issue first; nothing is issued until confirmed
    to_issue = lender_finance.locator("tbody tr", has_text="Saint-Étienne").inner_text()
    assert "990,00" in to_issue
    lender_finance.get_by_role("button", name="Confirmer et émettre 1 facture").click()
    notice = lender_finance.get_by_role("status").first.inner_text()
    assert "La facturation de la période est faite." in notice
    lender_finance.reload()  # a GET: reloading reads the invoices again, issues nothing
    assert lender_finance.locator("tbody tr", has_text="Saint-Étienne").count() == 1

    buyer = sign_in(browser, stack.url, f"finance.{SAINT_ETIENNE}@mutualis-demo.fr")
    refused_by_buyers_csp = csp_errors(buyer)  # filled as the buyer's pages load
    waiting = buyer.locator("section", has_text="Ce qui vous attend").inner_text()
    assert "Factures à payer (1)" in waiting
    buyer.get_by_role("navigation", name="Navigation principale").get_by_role(
        "link", name="Factures"
    ).click()
    row = buyer.locator("tbody tr", has_text="Le Chambon-Feugerolles")
    assert "990,00" in row.inner_text() and "Émise" in row.inner_text()
    number = row.locator("th a").inner_text()
    row.locator("th a").click()
    assert number in buyer.locator("h1").inner_text()
    assert "Rétroviseur gauche" in buyer.locator("main").inner_text()
    story["invoice_path"] = buyer.url.removeprefix(stack.url)
    with buyer.expect_download() as download:
        buyer.get_by_role("link", name="Télécharger le XML UBL").click()
    assert download.value.suggested_filename == f"{number}.xml"
    ubl = Path(download.value.path()).read_text(encoding="utf-8")
    assert "<Invoice" in ubl and f"<cbc:ID>{number}</cbc:ID>" in ubl
    assert "990.00" in ubl
    assert problems(ubl.encode("utf-8")) == []  # UBL XSD, EN 16931 and BR-FR rules
    with buyer.expect_download() as download:
        buyer.get_by_role("link", name="Télécharger le PDF").click()
    printed = Path(download.value.path()).read_bytes()
    assert factur_x_problems(printed) == []  # PDF/A-3 carrying a valid EN 16931 CII
    assert f"<ram:ID>{number}</ram:ID>".encode() in embedded_cii(printed)

    assert refused_by_csp == [] and refused_by_buyers_csp == []


def test_a_firminy_agent_sees_none_of_it(stack, browser, story):
    assert story, "needs the story test first"
    # Saint-Étienne holds the salter on days 20 and 21
    salter = next(
        item
        for item in stack.as_role("agent", FIRMINY)
        .get(f"{stack.url}/api/v1/listings", params={"q": "saleuse"})
        .json()["items"]
        if item["title"] == SALTER
    )
    held = stack.as_role("agent", SAINT_ETIENNE).post(
        f"{stack.url}/api/v1/bookings",
        json={"listing_id": salter["id"], "start": day(20), "end": day(22)},
    )
    assert held.status_code == 201, held.text

    agent = sign_in(browser, stack.url, f"agent.{FIRMINY}@mutualis-demo.fr")
    assert "Firminy" in agent.locator("header").inner_text()
    for path in ("/tableau-de-bord", "/reservations?vue=emprunteur", "/reservations?vue=preteur"):
        agent.goto(path)
        text = agent.locator("main").inner_text()
        assert SNOWPLOUGH not in text and SALTER not in text, path
        assert "Saint-Étienne" not in text, path

    answer = agent.goto(story["booking_path"])
    assert answer.status == 404
    assert "Page introuvable" in agent.locator("h1").inner_text()
    answer = agent.goto(story["invoice_path"])
    assert answer.status == 403  # an agent has no access to invoices at all
    answer = agent.goto(story["invoice_path"] + "/ubl")
    assert answer.status == 403

    finance = sign_in(browser, stack.url, f"finance.{FIRMINY}@mutualis-demo.fr")
    answer = finance.goto(story["invoice_path"])
    assert answer.status == 404  # another commune's invoice does not exist for Firminy
    answer = finance.goto(story["invoice_path"] + "/ubl")
    assert answer.status == 404
    for side in ("recues", "emises"):
        finance.goto(f"/finances?vue={side}")
        assert "Aucune facture" in finance.locator("main").inner_text()

    # the salter is taken on those days: the page says so in words, before and after sending
    agent.goto(f"/annonces/{salter['id']}")
    agent.get_by_label("Premier jour").fill(day(21))
    agent.get_by_label("Dernier jour (inclus)").fill(day(22))
    agent.get_by_role("button", name="Voir le devis").click()
    assert "Ce créneau est déjà réservé" in agent.locator("#devis").inner_text()
    agent.get_by_role("button", name="Envoyer la demande").click()
    refusal = agent.get_by_role("alert").inner_text()
    assert "Ce créneau est déjà réservé du" in refusal, refusal
    assert "Saint-Étienne" not in refusal


MAIN_PAGES = {
    # name: (who, path, what to do before the picture)
    "connexion": (None, "/connexion", None),
    "tableau-de-bord": (f"manager.{CHAMBON}", "/tableau-de-bord", None),
    "catalogue": (f"agent.{SAINT_ETIENNE}", "/catalogue?q=&rayon=30", None),
    "annonce-devis": (f"agent.{SAINT_ETIENNE}", "{snowplough}", "quote"),
    "mes-reservations": (f"agent.{SAINT_ETIENNE}", "/reservations", None),
    "reservation": (f"manager.{CHAMBON}", "{booking_path}", None),
    "publier-annonce": (f"manager.{CHAMBON}", "/annonces/nouvelle", None),
    "experts": (
        f"agent.{SAINT_ETIENNE}",
        "/experts?besoin=urbanisme+r%C3%A9vision+du+PLU+permis+de+construire"
        "&du={d30}&au={d40}&jours=2&tarif_max=600",
        None,
    ),
    "missions": (f"agent.{SAINT_ETIENNE}", "/missions", None),
    "finances": (f"finance.{SAINT_ETIENNE}", "/finances", None),
    "facture": (f"finance.{SAINT_ETIENNE}", "{invoice_path}", None),
    "releves-bancaires": (f"finance.{CHAMBON}", "/finances/rapprochement", None),
    "releve-de-compte": (f"finance.{SAINT_ETIENNE}", f"/finances/releve?commune={CHAMBON}", None),
    "balance-agee": (f"finance.{CHAMBON}", "/finances/balance-agee", None),
    "compensation": (f"finance.{CHAMBON}", "/finances/compensation", "netting"),
}


def test_every_main_page_is_accessible_and_photographed(stack, browser, story):
    assert story, "needs the story test first"
    snowplough = next(
        item
        for item in stack.as_role("agent", SAINT_ETIENNE)
        .get(f"{stack.url}/api/v1/listings", params={"q": "chasse-neige"})
        .json()["items"]
        if item["title"] == SNOWPLOUGH
    )
    values = story | {
        "snowplough": f"/annonces/{snowplough['id']}",
        "d30": day(30),
        "d40": day(40),
    }
    pages: dict[str | None, object] = {}
    found: dict[str, list] = {}
    for name, (who, path, action) in MAIN_PAGES.items():
        if who not in pages:
            # axe is injected as a script: this context lets it past the page's CSP
            if who is None:
                context = browser.new_context(base_url=stack.url, bypass_csp=True)
                pages[who] = context.new_page()
            else:
                pages[who] = sign_in(browser, stack.url, f"{who}@mutualis-demo.fr", bypass_csp=True)
        page = pages[who]
        answer = page.goto(path.format(**values))
        assert answer.status == 200, (name, answer.status)
        if action == "quote":
            page.get_by_label("Premier jour").fill(day(30))
            page.get_by_label("Dernier jour (inclus)").fill(day(32))
            page.get_by_role("button", name="Voir le devis").click()
        elif action == "netting":
            page.get_by_label("Période (mois)").fill(this_period())
            page.get_by_role("button", name="Prévisualiser la compensation").click()
        screenshot(page, name)
        violations = axe_violations(page)
        if violations:
            found[name] = violations
    assert found == {}, describe(found)  # type: ignore[arg-type]

    # on a phone
    phone = sign_in(
        browser,
        stack.url,
        f"agent.{SAINT_ETIENNE}@mutualis-demo.fr",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    for name, path in (
        ("telephone-tableau-de-bord", "/tableau-de-bord"),
        ("telephone-annonce", values["snowplough"]),
    ):
        phone.goto(path)
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 392, name
        screenshot(phone, name)


def test_pages_send_their_security_headers_and_refuse_forged_forms(stack):
    session = requests.Session()
    login = session.get(f"{stack.url}/connexion", timeout=10)
    csp = login.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert login.headers["X-Content-Type-Options"] == "nosniff"
    # no login token: refused, whatever the password
    forged = requests.post(
        f"{stack.url}/connexion",
        data={"email": f"agent.{SAINT_ETIENNE}@mutualis-demo.fr", "password": "mutualis-demo"},
        timeout=10,
        allow_redirects=False,
    )
    assert forged.status_code == 403
    token = login.text.split('name="csrf" value="')[1].split('"')[0]
    signed_in = session.post(
        f"{stack.url}/connexion",
        data={
            "csrf": token,
            "email": f"agent.{SAINT_ETIENNE}@mutualis-demo.fr",
            "password": "mutualis-demo",
        },
        timeout=10,
        allow_redirects=False,
    )
    assert signed_in.status_code == 303
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # GATEWAY_PUBLIC_URL is http here
    # a session cookie without the form's token cannot act
    no_token = session.post(f"{stack.url}/deconnexion", data={}, timeout=10, allow_redirects=False)
    assert no_token.status_code == 403
    from_elsewhere = session.post(
        f"{stack.url}/deconnexion",
        data={"csrf": "x"},
        headers={"Origin": "https://evil.example"},
        timeout=10,
        allow_redirects=False,
    )
    assert from_elsewhere.status_code == 403
    assert session.get(f"{stack.url}/tableau-de-bord", timeout=10).status_code == 200
    # the API still wants its bearer token: the cookie is for the pages only
    assert session.get(f"{stack.url}/api/v1/me", timeout=10).status_code == 401
    css = session.get(f"{stack.url}/static/mutualis.css", timeout=10)
    assert css.headers["Cache-Control"].startswith("public, max-age=")


def test_a_manager_publishes_a_listing_and_closes_it_for_maintenance(stack, browser):
    manager = sign_in(browser, stack.url, f"manager.{CHAMBON}@mutualis-demo.fr")
    manager.goto("/annonces/nouvelle")
    manager.get_by_label("Titre").fill("Nacelle élévatrice 12 m")
    manager.get_by_label("Catégorie").select_option("batiment")
    manager.get_by_label("Type", exact=True).select_option("equipment")
    manager.get_by_label("Tarif (€)").fill("abc")
    manager.get_by_role("button", name="Publier").click()
    assert "Indiquez un montant en euros" in manager.locator("main").inner_text()
    manager.get_by_label("Tarif (€)").fill("180,50")
    manager.get_by_role("button", name="Publier").click()
    assert "L'annonce est publiée." in manager.get_by_role("status").first.inner_text()
    assert "180,50" in manager.locator("main").inner_text()

    manager.get_by_label("Du", exact=True).fill(day(3))
    manager.get_by_label("Au (inclus)").fill(day(4))
    manager.get_by_label("Motif").fill("Contrôle réglementaire")
    manager.get_by_role("button", name="Fermer ces jours").click()
    assert "La fermeture est enregistrée." in manager.get_by_role("status").first.inner_text()
    assert "Contrôle réglementaire" in manager.locator("main").inner_text()
    closed = manager.locator("td.day-closed .sr-only").all_inner_texts()
    assert closed and all("fermé (Contrôle réglementaire)" in text for text in closed)


def test_an_expert_is_found_engaged_and_their_days_approved(stack, browser):
    agent = sign_in(browser, stack.url, f"agent.{SAINT_ETIENNE}@mutualis-demo.fr")
    agent.goto("/experts")
    agent.get_by_label("Votre besoin, en quelques phrases").fill(
        "Réviser notre PLU et instruire des permis de construire"
    )
    agent.get_by_label("Du", exact=True).fill(day(0))
    agent.get_by_label("Au (inclus)").fill(day(10))
    agent.get_by_label("Jours nécessaires").fill("2")
    agent.get_by_role("button", name="Trouver des experts").click()
    best = agent.locator("ol.cards > li").first
    assert "Hélène Duclos" in best.inner_text()
    assert best.locator("svg.bars rect.bar-fill").count() >= 3
    best.locator("summary").click()
    best.get_by_role("button", name="Envoyer la demande").click()
    assert "Votre demande de mission est envoyée" in agent.get_by_role("status").first.inner_text()
    mission = agent.url.split("?")[0].removeprefix(stack.url)

    lender = sign_in(browser, stack.url, f"manager.{FIRMINY}@mutualis-demo.fr", bypass_csp=True)
    lender.goto(mission)
    assert axe_violations(lender) == []  # the consent's tick box and date are labelled
    screenshot(lender, "mission-accord-de-l-agent")
    # accepted once the official's consent is ticked (its date: today, as filled in)
    lender.get_by_label("Hélène Duclos a donné son accord").check()
    lender.get_by_role("button", name="Accepter la mission").click()
    assert f"donné le {paris_today():%d/%m/%Y}" in lender.locator("main").inner_text()
    lender.get_by_label("Date").fill(day(0))
    lender.get_by_label("Jours (entiers ou demi)").fill("1")
    if not is_working_day(paris_today()):  # one day a date; a weekend's is exceptional work
        lender.get_by_label("Travail exceptionnel (week-end ou jour férié)").check()
        lender.get_by_label("Pourquoi ce travail ne pouvait pas attendre").fill("Crue")
    lender.get_by_role("button", name="Déclarer").click()
    assert "À approuver" in lender.locator("main").inner_text()

    agent.goto("/tableau-de-bord")
    waiting = agent.locator("main").inner_text()
    assert "Jours travaillés à approuver (1)" in waiting
    assert "déclaré par Responsable des services techniques — Firminy (Firminy)" in waiting
    agent.goto(mission)
    # rejected with a reason, corrected by the expert's commune, then approved
    agent.get_by_label("Motif du refus").fill("Une demi-journée seulement")
    agent.get_by_role("button", name="Refuser 1 j").click()
    assert "votre motif" in agent.get_by_role("status").first.inner_text()
    assert "Refusé" in agent.locator("tbody").inner_text()
    lender.goto(mission)
    assert "Une demi-journée seulement" in lender.locator("tbody").inner_text()
    lender.get_by_label("Jours corrigés (entiers ou demi)").fill("0,5")
    lender.get_by_role("button", name="Corriger").click()
    assert "de nouveau à approuver" in lender.get_by_role("status").first.inner_text()
    agent.goto(mission)
    agent.get_by_role("button", name="Approuver 0,5 j").click()
    assert "ils seront facturés" in agent.get_by_role("status").first.inner_text()
    assert "Approuvé" in agent.locator("tbody").inner_text()


MENUS = {
    # who: the main menu's entries, and a word of the page each one opens
    f"agent.{SAINT_ETIENNE}": {
        "Tableau de bord": "Ce qui vous attend",
        "Chercher": "Que cherchez-vous ?",
        "Mes demandes": "Réservations",
        "Experts": "Votre besoin",
    },
    f"manager.{CHAMBON}": {
        "Tableau de bord": "Ce qui vous attend",
        "Mes annonces": SNOWPLOUGH,
        "Publier une annonce": "Titre",
        "Demandes à décider": "Réservations",
        "Missions": "Missions",
        "Conventions": "Conventions avec d'autres communes",
        "Activité": "Ce que nous avons prêté",
    },
    f"finance.{CHAMBON}": {
        "Tableau de bord": "Ce qui vous attend",
        "Factures": "Factures reçues",
        "Paiements": "relevé",
        "Relevés": "Relevé de compte",
        "Compensation": "Compensation",
        "Activité": "Acheter ou emprunter",
    },
    "operator": {
        "Tableau de bord": "Tableau de bord",
        "Files d'attente": "evt-bookings--billing.charges",
        "Épisodes": "épisode",
    },
}


@pytest.mark.parametrize("who", list(MENUS))
def test_each_role_finds_its_work_in_the_menu(stack, browser, who):
    page = sign_in(browser, stack.url, f"{who}@mutualis-demo.fr", bypass_csp=True)
    menu = page.get_by_role("navigation", name="Navigation principale")
    assert menu.get_by_role("link").all_inner_texts() == list(MENUS[who])
    found = {}
    for label, word in MENUS[who].items():
        menu.get_by_role("link", name=label, exact=True).click()
        page.wait_for_load_state()
        assert word.lower() in page.locator("main").inner_text().lower(), (label, page.url)
        current = menu.locator("[aria-current=page]").all_inner_texts()
        assert current == [label], (label, page.url, current)
        violations = axe_violations(page)
        if violations:
            found[label] = violations
    screenshot(page, f"menu-{who.split('.')[0]}")
    assert found == {}, describe(found)  # type: ignore[arg-type]


def test_a_lost_address_and_a_form_opened_again_answer_in_french(stack, browser):
    # not signed in: the French page, a way to sign in
    lost = requests.get(f"{stack.url}/nulle-part", timeout=10)
    assert lost.status_code == 404 and lost.headers["Content-Type"].startswith("text/html")
    assert "Page introuvable" in lost.text and 'lang="fr"' in lost.text
    assert "Not Found" not in lost.text and "Se connecter" in lost.text
    # a form sent where none is taken
    posted = requests.post(f"{stack.url}/catalogue", data={}, timeout=10)
    assert posted.status_code == 405 and "ne reçoit pas de formulaire" in posted.text
    assert "Method Not Allowed" not in posted.text

    finance = sign_in(browser, stack.url, f"finance.{CHAMBON}@mutualis-demo.fr", bypass_csp=True)
    answer = finance.goto("/annonces/a/b/c")
    assert answer.status == 404
    assert finance.locator("h1").inner_text() == "Page introuvable"
    menu = finance.get_by_role("navigation", name="Navigation principale")
    assert "Factures" in menu.inner_text()  # the signed-in menu, to go on from there
    assert axe_violations(finance) == []
    screenshot(finance, "erreur-404")

    # the billing run's result, reloaded by GET (a bookmark, the address bar): not replayed
    answer = finance.goto("/finances/facturation")
    assert answer.status == 405 and answer.headers["allow"] == "POST"
    text = finance.locator("main").inner_text()
    assert "formulaire déjà envoyé" in text and "n'est pas envoyé de nouveau" in text
    back = finance.get_by_role("link", name="Revenir à la page du formulaire")
    assert back.get_attribute("href") == "/finances"
    back.click()
    finance.wait_for_url("**/finances")
    assert "Facturer une période" in finance.locator("main").inner_text()
    # a booking's action opened by GET leads back to the booking
    answer = finance.goto("/reservations/inconnue/approuver")
    assert answer.status == 405
    assert back.get_attribute("href") == "/reservations/inconnue"
    assert axe_violations(finance) == []
    screenshot(finance, "erreur-405")


def test_the_catalogue_counts_pages_and_sorts_its_results(stack, browser):
    tag = "tractopelle" + uuid.uuid4().hex[:8]
    manager = stack.as_role("manager", FIRMINY)
    for n in range(22):
        answer = manager.post(
            f"{stack.url}/api/v1/listings",
            json={
                "title": f"Mini-pelle {tag} n° {n + 1}",
                "category": "voirie",
                "kind": "equipment",
                "pricing_unit": "day",
                "rate_cents": 10_000 + 500 * ((n * 7) % 22),  # every rate once, shuffled
                "quantity": 1,
            },
        )
        assert answer.status_code == 201, answer.text
    answer = stack.as_role("manager", SAINT_ETIENNE).post(
        f"{stack.url}/api/v1/listings",
        json={
            "title": f"Mini-pelle {tag} de Saint-Étienne",
            "category": "voirie",
            "kind": "equipment",
            "pricing_unit": "day",
            "rate_cents": 90_000,
            "quantity": 1,
        },
    )
    assert answer.status_code == 201, answer.text
    own_id = answer.json()["id"]

    agent = sign_in(browser, stack.url, f"agent.{SAINT_ETIENNE}@mutualis-demo.fr", bypass_csp=True)
    agent.goto("/catalogue")
    agent.get_by_label("Que cherchez-vous ?").fill(tag)
    agent.get_by_role("button", name="Rechercher").click()
    results = agent.locator("section.results")
    assert agent.locator("#resultats-titre").inner_text() == "23 résultats"
    assert "Résultats 1 à 20, les plus proches d'abord" in results.inner_text()
    titles = results.locator("li.result h3").all_inner_texts()
    assert len(titles) == 20 and titles[0].endswith("de Saint-Étienne")  # 0 km away
    assert axe_violations(agent) == []
    screenshot(agent, "catalogue-pages")
    # the map shows every result's commune, not the page's: a link per disc, by keyboard
    firminy = agent.locator("svg.map a.map-marker", has_text="Firminy")
    assert firminy.get_attribute("aria-label") == "Firminy : 22 résultats, à 9,3 km"
    by_commune = agent.locator("section.map-card ul.list").inner_text()
    assert "Firminy : 22 résultats" in by_commune and "Saint-Étienne : 1 résultat" in by_commune
    firminy.focus()
    agent.keyboard.press("Enter")
    agent.wait_for_url("**commune=42095**")
    assert agent.locator("#resultats-titre").inner_text() == "22 résultats"
    agent.get_by_role("link", name="Voir toutes les communes").click()
    assert agent.locator("#resultats-titre").inner_text() == "23 résultats"

    agent.get_by_role("link", name="Résultats suivants").click()
    assert "Résultats 21 à 23" in results.inner_text()
    rest = results.locator("li.result h3").all_inner_texts()
    assert len(rest) == 3 and not set(rest) & set(titles)
    assert agent.get_by_role("link", name="Résultats suivants").count() == 0
    agent.get_by_role("link", name="Premiers résultats").click()
    assert "Résultats 1 à 20" in results.inner_text()

    agent.get_by_label("Trier par").select_option("prix")
    agent.get_by_role("button", name="Rechercher").click()
    assert "les moins chers d'abord, ceux de Saint-Étienne en tête" in results.inner_text()
    prices = [
        int(p.split(",")[0].replace("\u202f", "").replace(" ", ""))
        for p in results.locator("li.result .price strong").all_inner_texts()
    ]
    assert prices[0] == 900  # Saint-Étienne's own first, whatever its price
    assert prices[1:] == sorted(prices[1:]) and prices[1] == 100
    screenshot(agent, "catalogue-tri-prix")

    # free soonest first: Saint-Étienne's, closed until three days from now, comes last
    today = datetime.combine(paris_today(), time(0), tzinfo=PARIS)
    closed = stack.as_role("manager", SAINT_ETIENNE).post(
        f"{stack.url}/api/v1/listings/{own_id}/blackouts",
        json={
            "start": (today - timedelta(days=1)).isoformat(),
            "end": (today + timedelta(days=3)).isoformat(),
        },
    )
    assert closed.status_code in (200, 201), closed.text
    agent.get_by_label("Trier par").select_option("disponibilite")
    agent.get_by_role("button", name="Rechercher").click()
    assert "les plus tôt disponibles d'abord" in results.inner_text()
    assert results.locator("li.result .free-from").all_inner_texts() == (
        ["Libre dès aujourd'hui"] * 20
    )
    assert axe_violations(agent) == []
    screenshot(agent, "catalogue-tri-disponibilite")
    agent.get_by_role("link", name="Résultats suivants").click()
    last = results.locator("li.result").last
    assert last.locator("h3").inner_text().endswith("de Saint-Étienne")
    three_days = long_date((today + timedelta(days=3)).date())
    assert last.locator(".free-from").inner_text() == f"Libre dès le {three_days}"


def test_experts_below_the_relevance_floor_are_left_out_and_said_so(stack, browser):
    # the lawyer's profile shares one word with this need ("mairie"): 18 % of it
    need = "Sauvegardes de la mairie"
    # (Firminy's agent: the lawyer works for Saint-Étienne, another commune to Firminy)
    agent = sign_in(browser, stack.url, f"agent.{FIRMINY}@mutualis-demo.fr", bypass_csp=True)
    agent.goto("/experts")
    agent.get_by_label("Votre besoin, en quelques phrases").fill(need)
    agent.get_by_role("button", name="Trouver des experts").click()
    assert agent.locator("#classement-titre").inner_text() == "1 expert classé"
    best = agent.locator("ol.cards > li").first.inner_text()
    assert "Nicolas Vial" in best
    assert "Karim Benaïssa" not in agent.locator("main").inner_text()
    assert agent.locator("#ecartes").inner_text() == (
        "1 expert écarté : son profil répond à moins de 30 % du besoin "
        "(compétences et mots de la description)."
    )
    # the words found are the need's, as written (accents and all), never stems
    assert "mots trouvés : Sauvegardes, mairie" in best
    assert axe_violations(agent) == []
    screenshot(agent, "experts-ecartes")


def test_lists_and_statements_print_without_the_menus_and_forms(stack, browser):
    finance = sign_in(browser, stack.url, f"finance.{CHAMBON}@mutualis-demo.fr")
    for name, path in (
        ("impression-factures", "/finances?vue=emises"),
        ("impression-releve", f"/finances/releve?commune={SAINT_ETIENNE}"),
        ("impression-catalogue", "/catalogue?q=&rayon=30"),
    ):
        finance.goto(path)
        finance.emulate_media(media="print")
        assert finance.locator("h1").is_visible(), name
        for hidden in ("header.top", "footer.foot", "main form"):
            shown = [e.is_visible() for e in finance.locator(hidden).all()]
            assert not any(shown), (name, hidden)
        screenshot(finance, name)
        finance.emulate_media(media="screen")
        assert finance.locator("header.top").is_visible()


def test_the_activity_report_with_its_csv_and_pdf(stack, browser, story):
    assert story, "needs the story test first: Le Chambon lent its snowplough, 2 days, 840 €"
    import csv
    import io

    from pypdf import PdfReader

    finance = sign_in(browser, stack.url, f"finance.{CHAMBON}@mutualis-demo.fr", bypass_csp=True)
    finance.goto(f"/rapports/activite?du={day(0)}&au={day(1)}")
    assert finance.locator("h1").inner_text().startswith("Activité du Chambon-Feugerolles")
    lent = finance.locator("#tableau-prete")
    row = lent.locator("tbody tr", has_text="Saint-Étienne").inner_text()
    assert row.split("\t")[1:] == ["1", "2", "840,00\u00a0€"], row
    assert finance.locator("svg.chart rect.chart-bar").count() >= 1
    use = finance.locator("#utilisation").inner_text()
    assert SNOWPLOUGH in use and "100 %" in use  # lent both days of the period
    assert axe_violations(finance) == []
    screenshot(finance, "rapport-activite")

    with finance.expect_download() as download:
        finance.get_by_role("link", name="Télécharger le CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert ["prete", "Saint-Étienne", SAINT_ETIENNE, "1", "2", "840.00"] in rows
    assert ["total_prete", "", "", "1", "2", "840.00"] in rows
    with finance.expect_download() as download:
        finance.get_by_role("link", name="Télécharger le PDF").click()
    assert download.value.suggested_filename.endswith(".pdf")
    pdf = PdfReader(download.value.path())
    words = " ".join(page.extract_text() for page in pdf.pages).replace("\u202f", " ")
    assert "Prêté : 1 prêt · 2 jours · total 840,00" in words.replace("\xa0", " "), words
    # rendered with pdftoppm: the totals are drawn where poppler places them
    assert_drawn(
        Path(download.value.path()).read_bytes(), "Prêté : 1 prêt · 2 jours · total 840,00 €"
    )

    # Saint-Étienne borrowed it: buy or borrow with a price entered (under the threshold of
    # 10 days by default: the page says so; with a threshold of 1, a verdict)
    buyer = sign_in(browser, stack.url, f"manager.{SAINT_ETIENNE}@mutualis-demo.fr")
    buyer.goto(f"/rapports/activite?du={day(0)}&au={day(1)}&seuil=1")
    buyer.get_by_label("Prix d'achat, Déneigement").fill("150000")
    buyer.get_by_label("Entretien annuel, Déneigement").fill("5000")
    buyer.get_by_role("button", name="Calculer").click()
    verdict = buyer.locator("#acheter-ou-emprunter tbody tr").inner_text()
    # 840 € for 2 days is 153,300 € a year; owning: 150,000 / 8 + 5,000 = 23,750 €
    assert "153\u202f300,00" in verdict and "23\u202f750,00" in verdict and "Acheter" in verdict
    screenshot(buyer, "rapport-acheter-ou-emprunter")
