"""New dates tell the other side: a loan the lender moved, whoever asked for it, with the
approval's invitation updated (same UID, later SEQUENCE, METHOD:REQUEST, the new start); a
request its borrower edited, the lender's managers, with no invitation (there was none)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import icalendar

from contracts.bookings import ProposedDates, RescheduledBooking
from services.notifications.domain import notices
from services.notifications.mails import compose, message
from tests.unit.test_notifications_rules import AT, CHAMBON, FIRMINY, PEOPLE, booking

URL = "https://mutualis.example"
MOVED_AT = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def moved(status: str, by: str, **extra) -> RescheduledBooking:
    before = booking(status)
    new_dates = {
        "start": datetime(2026, 12, 13, 23, 0, tzinfo=UTC),
        "end": datetime(2026, 12, 15, 23, 0, tzinfo=UTC),
    }
    return RescheduledBooking(
        **before.model_dump() | new_dates | extra,
        previous_start=before.start,
        previous_end=before.end,
        rescheduling_id="move-1",
        moved_by_commune=by,
    )


def calendar(letter) -> icalendar.Calendar:
    sent = message_from_bytes(
        bytes(message(letter, "Mutualis <m@example.fr>", "a@example.fr", "m-1")),
        policy=policy.default,
    )
    (attachment,) = list(sent.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "REQUEST"
    return icalendar.Calendar.from_ical(attachment.get_content())


def test_a_loan_moved_by_the_lender_tells_the_requester_with_the_invitation_updated():
    (approved,) = notices("booking.approved", booking("approved"), PEOPLE, AT)
    first = calendar(compose(approved.kind, approved.context, "Agent", URL)).walk("VEVENT")[0]

    (notice,) = notices(
        "booking.rescheduled",
        moved("approved", CHAMBON, reason="lame en révision"),
        PEOPLE,
        MOVED_AT,
    )
    assert (notice.recipient.user_id, notice.cause) == (
        "borrower-agent",
        "booking.rescheduled:move-1",
    )
    letter = compose(notice.kind, notice.context, "Agent", URL)
    assert letter.subject == "Réservation déplacée : Chasse-neige Unimog U400"
    assert (
        "La commune du Chambon-Feugerolles déplace votre réservation de « Chasse-neige Unimog "
        "U400 » (quantité : 1) : elle a lieu désormais du lundi 14 décembre 2026 à 0 h 00 au "
        "mercredi 16 décembre 2026 à 0 h 00, et non plus du lundi 7 décembre 2026 à 8 h 00 au "
        "mercredi 9 décembre 2026 à 18 h 00."
    ) in letter.text
    assert "Motif : lame en révision" in letter.text
    assert f"{URL}/reservations/b-1" in letter.text
    updated = calendar(letter)
    assert str(updated["method"]) == "REQUEST"
    (event,) = updated.walk("VEVENT")
    assert str(event["uid"]) == str(first["uid"]) == "booking-b-1@mutualis"
    assert event["sequence"] > first["sequence"]
    assert event.decoded("dtstart") == datetime(2026, 12, 13, 23, 0, tzinfo=UTC)
    assert str(event["status"]) == "CONFIRMED"


def test_a_loan_moved_in_the_second_it_was_approved_still_updates_the_invitation():
    """Calendars keep the invitation with the higher SEQUENCE: a move made in the very second
    of the approval (an API client does both at once) must still replace it."""
    (approved,) = notices("booking.approved", booking("approved"), PEOPLE, AT)
    (moved_now,) = notices("booking.rescheduled", moved("approved", CHAMBON), PEOPLE, AT)
    first = calendar(compose(approved.kind, approved.context, "Agent", URL)).walk("VEVENT")[0]
    event = calendar(compose(moved_now.kind, moved_now.context, "Agent", URL)).walk("VEVENT")[0]
    assert event["sequence"] > first["sequence"]


def test_a_request_its_borrower_edited_tells_the_lenders_managers_without_invitation():
    told = notices("booking.rescheduled", moved("requested", FIRMINY), PEOPLE, MOVED_AT)
    assert {n.recipient.user_id for n in told} == {"lender-manager", "lender-manager-2"}
    letter = compose(told[0].kind, told[0].context, "Manager", URL)
    assert letter.subject == "Demande de réservation modifiée : Chasse-neige Unimog U400"
    assert "La commune de Firminy change les dates de sa demande" in letter.text
    assert "attend toujours la décision d'un responsable de la commune du Chambon" in letter.text
    assert letter.invitations == ()


def test_each_move_is_its_own_cause():
    first = notices("booking.rescheduled", moved("approved", CHAMBON), PEOPLE, MOVED_AT)
    again = moved("approved", CHAMBON).model_copy(update={"rescheduling_id": "move-2"})
    second = notices("booking.rescheduled", again, PEOPLE, MOVED_AT)
    assert first[0].cause != second[0].cause


def sequence_of(notice) -> int:
    letter = compose(notice.kind, notice.context, "Agent", URL)
    return calendar(letter).walk("VEVENT")[0]["sequence"]


def test_the_sequence_is_the_dates_revision_the_event_carries():
    """Two moves in one second still follow each other: the SEQUENCE is the booking's
    revision of its dates (approval 0, each move one more); an event without it (written
    before) falls back to the move's instant."""
    (approved,) = notices(
        "booking.approved", booking("approved").model_copy(update={"dates_revision": 0}), PEOPLE, AT
    )
    firsts = [
        notices("booking.rescheduled", moved("approved", CHAMBON, dates_revision=n), PEOPLE, AT)
        for n in (1, 2)
    ]
    assert [sequence_of(approved), *(sequence_of(n) for (n,) in firsts)] == [0, 1, 2]
    (old,) = notices("booking.rescheduled", moved("approved", CHAMBON), PEOPLE, MOVED_AT)
    assert sequence_of(old) == int(MOVED_AT.timestamp())


def test_dates_accepted_by_the_borrower_tell_both_sides():
    accepted = moved("approved", CHAMBON, dates_revision=1).model_copy(
        update={"accepted_by_commune": FIRMINY}
    )
    told = notices("booking.rescheduled", accepted, PEOPLE, MOVED_AT)
    assert {n.recipient.user_id for n in told} == {
        "borrower-agent",
        "lender-manager",
        "lender-manager-2",
    }
    letter = compose(told[0].kind, told[0].context, "Agent", URL)
    assert "La commune de Firminy accepte les nouvelles dates proposées par la commune du" in (
        letter.text
    )


def proposed(**extra) -> ProposedDates:
    return ProposedDates(
        **booking("approved").model_dump() | extra,
        proposal_id="p-1",
        proposed_start=datetime(2026, 12, 13, 23, 0, tzinfo=UTC),
        proposed_end=datetime(2026, 12, 16, 23, 0, tzinfo=UTC),
        proposed_quote=booking("approved").quote.model_copy(update={"amount_cents": 252000}),
        proposed_by_commune=CHAMBON,
    )


def test_dearer_dates_proposed_ask_the_borrowers_managers_a_refusal_tells_the_lenders():
    asked = notices("booking.dates_proposed", proposed(reason="lame en révision"), PEOPLE, AT)
    assert {n.recipient.user_id for n in asked} == {
        p.user_id for p in PEOPLE if p.commune == FIRMINY and "manager" in p.roles
    }
    assert asked and asked[0].cause == "booking.dates_proposed:p-1"
    letter = compose(asked[0].kind, asked[0].context, "Manager", URL)
    assert letter.subject.startswith("Nouvelles dates à accepter : Chasse-neige Unimog U400")
    assert "2\u202f520,00 € au lieu de 1\u202f260,00 €" in letter.text
    assert "Motif : lame en révision" in letter.text
    assert f"{URL}/reservations/b-1" in letter.text and letter.invitations == ()
    declined = notices("booking.dates_declined", proposed(answer="budget épuisé"), PEOPLE, AT)
    assert {n.recipient.user_id for n in declined} == {"lender-manager", "lender-manager-2"}
    letter = compose(declined[0].kind, declined[0].context, "Manager", URL)
    assert "Motif : budget épuisé" in letter.text
