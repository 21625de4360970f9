"""The details that make a loan happen, in a real browser against every service as a
process: a manager publishes a listing with its contact and pick-up address through the
form, uploads a photo on the listing's page and sees it; the borrower's booking page, once
approved, shows whom to call, where, and the photo; booking.approved carries them to the
notifications service for its mail. axe-core finds no serious or critical violation."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select

from services.notifications.models import MailRow
from tests.browser import axe_violations, chromium, describe, screenshot, sign_in
from tests.support import day, wait_until

pytestmark = pytest.mark.e2e

LENDER = "42044"
BORROWER = "42218"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (210, 120, 20)).save(out, "JPEG")
    return out.getvalue()


def test_a_manager_publishes_details_and_a_photo_the_borrower_sees_them(stack):
    with chromium() as browser:
        manager = sign_in(browser, stack.url, f"manager.{LENDER}@mutualis-demo.fr", bypass_csp=True)
        manager.goto("/annonces/nouvelle")
        manager.get_by_label("Titre").fill("Remorque plateau 750 kg")
        manager.get_by_label("Catégorie").select_option("voirie")
        manager.get_by_label("Tarif (€)").fill("35")
        manager.get_by_label("Nom du contact").fill("Sophie Garnier")
        manager.get_by_label("Fonction").fill("cheffe d'atelier")
        manager.get_by_label("Téléphone").fill("12 34")
        manager.get_by_label("Adresse de retrait").fill("Atelier municipal, 3 rue Jean Jaurès")
        manager.get_by_label("Consignes de retrait").fill("Quai de chargement, côté parking")
        manager.get_by_role("button", name="Publier").click()
        # a number that is none is refused in French, beside its field, the rest kept
        assert "Ce numéro de téléphone n'est pas valide." in manager.content()
        assert manager.get_by_label("Adresse de retrait").input_value().startswith("Atelier")
        manager.get_by_label("Téléphone").fill("04 77 40 12 34")
        manager.get_by_role("button", name="Publier").click()
        manager.wait_for_url("**/annonces/*?ok=annonce-publiee")
        listing_id = manager.url.split("/annonces/")[1].split("?")[0]
        retrait = manager.get_by_role("region", name="L'annonce")
        assert "Sophie Garnier, cheffe d'atelier" in retrait.inner_text()
        assert "04 77 40 12 34" in retrait.inner_text()

        manager.get_by_label("Ajouter une photo").set_input_files(
            {"name": "remorque.jpg", "mimeType": "image/jpeg", "buffer": jpeg()}
        )
        manager.get_by_role("button", name="Envoyer la photo").click()
        manager.wait_for_url(f"**/annonces/{listing_id}?ok=photo-ajoutee#photos")
        photos = manager.get_by_role("region", name="Photos")
        thumbnail = photos.get_by_role("img", name="Remorque plateau 750 kg, photo 1 sur 1")
        assert thumbnail.evaluate("img => img.complete && img.naturalWidth") == 480
        violations = axe_violations(manager)
        assert violations == [], describe(violations)
        screenshot(manager, "annonce-photos-gestionnaire")

        # a file that is no image: a French page, nothing added
        manager.get_by_label("Ajouter une photo").set_input_files(
            {"name": "devis.jpg", "mimeType": "image/jpeg", "buffer": b"%PDF-1.4 pas une photo"}
        )
        manager.get_by_role("button", name="Envoyer la photo").click()
        assert "n'est pas une photo utilisable" in manager.content()
        manager.goto(f"/annonces/{listing_id}")
        assert manager.get_by_role("region", name="Photos").get_by_role("img").count() == 1

        # the borrower asks, the lender approves: the booking page says where and whom
        listing = stack.session("manager", LENDER).get(
            f"{stack.url}/api/v1/listings/{listing_id}", timeout=10
        )
        stack.known_to_bookings(listing.json())
        asked = stack.session("agent", BORROWER).post(
            f"{stack.url}/api/v1/bookings",
            json={"listing_id": listing_id, "start": day(12), "end": day(13)},
            timeout=10,
        )
        assert asked.status_code == 201, asked.text
        booking_id = asked.json()["id"]
        approved = stack.session("manager", LENDER).post(
            f"{stack.url}/api/v1/bookings/{booking_id}/approve", timeout=10
        )
        assert approved.status_code == 200, approved.text

        borrower = sign_in(
            browser, stack.url, f"agent.{BORROWER}@mutualis-demo.fr", bypass_csp=True
        )
        borrower.goto(f"/reservations/{booking_id}")
        detail = borrower.get_by_role("region", name="Détail")
        assert "Sophie Garnier, cheffe d'atelier" in detail.inner_text()
        assert "Atelier municipal, 3 rue Jean Jaurès" in detail.inner_text()
        assert "Quai de chargement, côté parking" in detail.inner_text()
        assert detail.get_by_role("link", name="04 77 40 12 34").get_attribute("href") == (
            "tel:+33477401234"
        )
        assert detail.get_by_role("img").count() == 1
        violations = axe_violations(borrower)
        assert violations == [], describe(violations)
        screenshot(borrower, "reservation-retrait-emprunteur")

        # booking.approved brought them to the notifications service, for the borrower's mail
        def approval_mail():
            with stack.database("notifications").connect() as conn:
                contexts = conn.scalars(
                    select(MailRow.context).where(MailRow.kind == "booking_approved")
                ).all()
            return [c for c in contexts if c["booking_id"] == booking_id]

        (context, *_) = wait_until(approval_mail, timeout=30)
        assert context["pickup"]["contact"]["phone"] == "+33477401234"
        assert context["pickup"]["pickup_address"] == "Atelier municipal, 3 rue Jean Jaurès"
        assert len(context["pickup"]["photos"]) == 1

        # the manager removes the photo from the page (confirming): it is gone, bytes too
        manager.on("dialog", lambda dialog: dialog.accept())
        manager.goto(f"/annonces/{listing_id}")
        manager.get_by_role("button", name="Retirer la photo 1").click()
        manager.wait_for_url(f"**/annonces/{listing_id}?ok=photo-retiree#photos")
        assert manager.get_by_role("region", name="Photos").get_by_role("img").count() == 0
        stored = stack.workdir / "storage" / "listings" / listing_id
        assert not [p for p in stored.rglob("*") if p.is_file()]
