"""Agreements between communes through the bookings service's entrypoints on a migrated
database, on both backends: drafted, proposed, signed under each council's decision, in
force (events through the outbox), covering a loan whose events carry its reference; bad
input refused with nothing stored; a lender requiring an agreement holds a request until a
one-off agreement is signed by both managers; the PDF reads as a convention."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from nameko.testing.services import worker_factory
from pypdf import PdfReader
from sqlalchemy import func, select

from contracts.bookings import BookingRequest
from contracts.caller import Caller, Role
from contracts.clock import paris_today
from contracts.errors import Conflict, InvalidInput, NotFound
from infra.database import DatabaseAccess, make_engine
from infra.messaging_tables import outbox
from services.bookings import agreements_repository, repository
from services.bookings.models import AgreementRow, CouncilDecisionRow
from services.bookings.service import Ask, Service, decide_requests
from tests.support.schema import migrated
from tests.unit.test_bookings_domain import listing

SAINT_ETIENNE, CHAMBON, FIRMINY = "42218", "42044", "42095"


def manager(commune: str) -> dict:
    return Caller(
        user_id=f"manager-{commune}", commune=commune, roles=frozenset({Role.MANAGER})
    ).model_dump(mode="json")


def agent(commune: str) -> Caller:
    return Caller(user_id=f"agent-{commune}", commune=commune, roles=frozenset({Role.AGENT}))


@pytest.fixture
def bookings(database_url):
    migrated("bookings", database_url)
    db = DatabaseAccess(make_engine(database_url), "bookings", None, "bookings.requests")
    with db.transaction() as tx:
        repository.keep_listing_copies(tx.session, [listing(listing_id="plough")])
    agreements_repository.IN_FORCE.forget()
    yield db, worker_factory(Service, db=db)
    agreements_repository.IN_FORCE.forget()


def events(db: DatabaseAccess, prefix: str) -> list[tuple[str, dict]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.routing_key, outbox.c.body)
            .where(outbox.c.routing_key.startswith(prefix))
            .order_by(outbox.c.id)
        )
        return [(key, json.loads(body)["payload"]) for key, body in rows]


def count(db: DatabaseAccess, model) -> int:
    with db.engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model))


def request(db: DatabaseAccess, commune: str, days_ahead: int = 3) -> dict:
    first = paris_today() + timedelta(days=days_ahead)
    asked = BookingRequest.model_validate(
        {"listing_id": "plough", "start": first.isoformat(), "end": str(first + timedelta(2))}
    )
    (outcome,) = decide_requests(db, [Ask(agent(commune), asked, datetime.now(UTC), None)])
    assert isinstance(outcome, dict), outcome
    return outcome


def snow_agreement(service, **changes) -> dict:
    body = {
        "title": "Mise à disposition de matériel de déneigement",
        "parties": [SAINT_ETIENNE, CHAMBON],
        "categories": ["deneigement"],
        "starts_on": paris_today().isoformat(),
    } | changes
    return service.draft_agreement(manager(SAINT_ETIENNE), body)


def decide(service, commune: str, number: str, agreement_ids=(), **more) -> dict:
    body = {
        "number": number,
        "date": paris_today().isoformat(),
        "subject": "Approbation de la convention de mise à disposition",
        "agreement_ids": list(agreement_ids),
    } | more
    return service.record_decision(manager(commune), body)


def test_drafted_proposed_signed_in_force_and_a_loan_covered(bookings):
    db, service = bookings
    drafted = snow_agreement(service)
    year = paris_today().year
    assert drafted["reference"] == f"CONV-{SAINT_ETIENNE}-{year}-001"
    assert drafted["status"] == "draft"
    assert [p["commune_name"] for p in drafted["parties"]] == [
        "Saint-Étienne",
        "Le Chambon-Feugerolles",
    ]
    agreement_id = drafted["id"]
    with pytest.raises(NotFound):  # not a party: it does not exist for Firminy
        service.agreement(manager(FIRMINY), agreement_id)

    service.propose_agreement(manager(CHAMBON), agreement_id)
    ours = decide(service, SAINT_ETIENNE, "2026-118", [agreement_id])
    theirs = decide(service, CHAMBON, "D-2026-45", [agreement_id])
    with pytest.raises(InvalidInput) as foreign:  # Chambon's decision is not Saint-Étienne's
        service.sign_agreement(
            manager(SAINT_ETIENNE),
            agreement_id,
            {"decision_id": theirs["id"], "signatory": "Le maire"},
        )
    assert foreign.value.errors[0]["type"] == "unknown_decision"
    signed = service.sign_agreement(
        manager(SAINT_ETIENNE),
        agreement_id,
        {"decision_id": ours["id"], "signatory": "Le maire de Saint-Étienne"},
    )
    assert signed["status"] == "signed"
    early = request(db, SAINT_ETIENNE, days_ahead=6)  # made before it is in force
    assert early["agreement_reference"] is None
    with pytest.raises(Conflict):
        service.sign_agreement(
            manager(SAINT_ETIENNE),
            agreement_id,
            {"decision_id": ours["id"], "signatory": "Le maire"},
        )
    in_force = service.sign_agreement(
        manager(CHAMBON),
        agreement_id,
        {"decision_id": theirs["id"], "signatory": "Le maire du Chambon-Feugerolles"},
    )
    assert in_force["status"] == "in_force"
    assert in_force["parties"][1]["decision_number"] == "D-2026-45"
    covered_since = service.get(manager(CHAMBON), early["id"])
    assert covered_since["agreement_reference"] == drafted["reference"]

    told = events(db, "agreement.")
    assert [key for key, _ in told] == [
        "agreement.proposed",
        "agreement.signed",
        "agreement.in_force",
    ]
    last = told[-1][1]
    assert last["reference"] == drafted["reference"]
    assert {p["decision_number"] for p in last["parties"]} == {"2026-118", "D-2026-45"}

    booking = request(db, SAINT_ETIENNE)
    assert booking["agreement_reference"] == drafted["reference"]
    uncovered = request(db, FIRMINY, days_ahead=10)  # Firminy is no party
    assert uncovered["agreement_reference"] is None and not uncovered["agreement_held"]
    service.approve(manager(CHAMBON), booking["id"])
    (approved,) = [p for key, p in events(db, "booking.approved")]
    assert approved["agreement_reference"] == drafted["reference"]

    pdf = base64.b64decode(service.agreement_pdf(manager(CHAMBON), agreement_id))
    text = " ".join(" ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "CONVENTION DE MISE À DISPOSITION" in text
    assert drafted["reference"] in text
    assert "délibération n° D-2026-45" in text
    assert "L. 5211-4-1" in text and "tribunal administratif" in text

    not_pdf = base64.b64encode(b"GIF89a").decode()
    with pytest.raises(InvalidInput):
        service.attach_signed_scan(manager(CHAMBON), agreement_id, not_pdf)
    scan = base64.b64encode(b"%PDF-1.5\nsigned\n%%EOF\n").decode()
    assert service.attach_signed_scan(manager(CHAMBON), agreement_id, scan)["has_signed_scan"]
    assert service.signed_scan(manager(SAINT_ETIENNE), agreement_id) == scan
    with pytest.raises(NotFound):
        service.signed_scan(manager(FIRMINY), agreement_id)

    ended = service.end_agreement(manager(CHAMBON), agreement_id)
    assert ended["status"] == "ended"
    assert events(db, "agreement.ended")
    later = request(db, SAINT_ETIENNE, days_ahead=20)
    assert later["agreement_reference"] is None


def test_an_agreement_drafted_on_new_years_night_is_numbered_in_the_new_year(bookings):
    """00:30 on 1 January in Paris is still 31 December in UTC: the reference counts the
    communes' year."""
    _, service = bookings
    with time_machine.travel(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), tick=False):
        drafted = snow_agreement(service)
    assert drafted["reference"] == f"CONV-{SAINT_ETIENNE}-2027-001"


def test_bad_input_is_refused_naming_the_rule_and_nothing_is_stored(bookings):
    db, service = bookings
    with pytest.raises(InvalidInput) as same:
        snow_agreement(service, parties=[SAINT_ETIENNE, SAINT_ETIENNE])
    assert same.value.errors[0]["type"] == "parties_not_distinct"
    first = snow_agreement(service)
    with pytest.raises(InvalidInput) as overlapping:
        service.draft_agreement(
            manager(CHAMBON),
            {
                "title": "Une autre convention",
                "parties": [CHAMBON, SAINT_ETIENNE, FIRMINY],
                "categories": ["deneigement", "voirie"],
                "starts_on": (paris_today() + timedelta(days=30)).isoformat(),
            },
        )
    assert overlapping.value.errors[0]["type"] == "overlapping_agreement"
    assert overlapping.value.errors[0]["reference"] == first["reference"]
    assert count(db, AgreementRow) == 1

    tomorrow = (paris_today() + timedelta(days=1)).isoformat()
    with pytest.raises(InvalidInput) as future:
        decide(service, SAINT_ETIENNE, "2026-200", date=tomorrow)
    assert future.value.errors[0]["type"] == "decision_in_the_future"
    with pytest.raises(InvalidInput) as foreign:
        decide(service, FIRMINY, "2026-201", [first["id"]])
    assert foreign.value.errors[0]["type"] == "unknown_agreement"
    decided = decide(service, SAINT_ETIENNE, "2026-202")
    with pytest.raises(Conflict):  # a council numbers its decisions once each
        decide(service, SAINT_ETIENNE, "2026-202")
    assert count(db, CouncilDecisionRow) == 1

    not_pdf = base64.b64encode(b"<html>scan</html>").decode()
    with pytest.raises(InvalidInput) as refused:
        service.attach_decision_pdf(manager(SAINT_ETIENNE), decided["id"], not_pdf)
    assert refused.value.errors[0]["type"] == "not_a_pdf"
    pdf = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
    assert service.attach_decision_pdf(manager(SAINT_ETIENNE), decided["id"], pdf)["has_pdf"]
    assert service.decision_pdf(manager(SAINT_ETIENNE), decided["id"]) == pdf
    with pytest.raises(NotFound):
        service.decision_pdf(manager(CHAMBON), decided["id"])


def test_a_lender_requiring_an_agreement_holds_the_request_until_a_one_off_is_signed(bookings):
    db, service = bookings
    service.set_agreement_policy(manager(CHAMBON), {"requires_agreement": True})
    assert service.agreement_policy(manager(CHAMBON)) == {"requires_agreement": True}
    held = request(db, FIRMINY)
    assert held["agreement_held"] is True and held["agreement_reference"] is None
    with pytest.raises(Conflict) as refused:
        service.approve(manager(CHAMBON), held["id"])
    assert refused.value.extra == {"needs": "agreement"}

    mayor = decide(service, CHAMBON, "D-2026-01", authorises_mayor=True)
    theirs = decide(service, FIRMINY, "F-2026-07", authorises_mayor=True)
    one_off = service.propose_one_off(
        manager(CHAMBON), held["id"], {"decision_id": mayor["id"], "signatory": "Le maire"}
    )
    assert one_off["status"] == "signed"
    assert one_off["one_off_booking_id"] == held["id"]
    assert service.get(manager(CHAMBON), held["id"])["agreement_held"] is True
    done = service.sign_agreement(
        manager(FIRMINY), one_off["id"], {"decision_id": theirs["id"], "signatory": "La maire"}
    )
    assert done["status"] == "in_force"
    approved = service.approve(manager(CHAMBON), held["id"])
    assert approved["status"] == "approved"
    assert approved["agreement_reference"] == one_off["reference"]
    assert approved["agreement_held"] is False
    # the one-off covers that request only: the next one is held again
    assert request(db, FIRMINY, days_ahead=12)["agreement_held"] is True
