"""The approved-booking mail tells the borrower whom to call and where to collect the loan,
from the details booking.approved carries (the listing's, as the bookings service keeps
them); an approval announced before they existed still makes its mail."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.bookings import BookingSnapshot
from contracts.listings import Contact, Photo, PickupDetails
from services.notifications.domain import notices
from services.notifications.mails import compose
from tests.unit.test_notifications_rules import AT, PEOPLE, booking

PICKUP = PickupDetails(
    contact=Contact(
        name="Jean Morel",
        role="responsable du parc",
        phone="04 77 12 34 56",
        email="parc@mairie-chambon.fr",
    ),
    pickup_address="Centre technique municipal, 12 rue de la Forge",
    pickup_instructions="Portail B, sonner à l'atelier (7 h 30 – 16 h)",
    photos=[
        Photo(
            id="p-1",
            url="/api/v1/photos/listings/l-1/ab.jpg",
            thumbnail_url="/api/v1/photos/listings/l-1/ab-vignette.jpg",
            content_type="image/jpeg",
            width=1600,
            height=1200,
            added_at=datetime(2026, 11, 20, tzinfo=UTC),
        )
    ],
)


def approval_mail(snapshot: BookingSnapshot):
    (approved,) = notices("booking.approved", snapshot, PEOPLE, AT)
    return compose(approved.kind, approved.context, "Agent", "https://mutualis.example/")


def test_the_approval_mail_says_whom_to_call_where_and_shows_the_photos():
    letter = approval_mail(booking("approved", pickup=PICKUP))
    text = " ".join(letter.text.split())
    assert (
        "Contact pour le retrait : Jean Morel (responsable du parc), tél. 04 77 12 34 56, "
        "parc@mairie-chambon.fr." in text
    )
    assert "Adresse de retrait : Centre technique municipal, 12 rue de la Forge." in text
    assert "Consignes : Portail B, sonner à l'atelier (7 h 30 – 16 h)" in text
    assert "Photos du matériel : https://mutualis.example/annonces/l-1#photos" in text
    assert "<p style" in letter.html and "tél. 04 77 12 34 56" in letter.html
    assert "https://mutualis.example/annonces/l-1#photos" in letter.html


def test_an_approval_without_details_makes_its_mail_without_them():
    for snapshot in (booking("approved"), booking("approved", pickup=PickupDetails())):
        letter = approval_mail(snapshot)
        assert "Montant prévu" in letter.text
        assert "retrait" not in letter.text.lower() and "Photos" not in letter.text
