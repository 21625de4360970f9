"""Disputes on a real database (PostgreSQL and SQLite): the customer contests a line, its
amount is shown apart in aging and the invoice leaves nettings; the supplier credits it
(a credit note that keeps the line's quantity and unit, announced) or rejects it with its
reasons; nothing beyond what the line still carries."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from contracts.billing import ChargeKind
from contracts.bookings import BookingReturned, Damage
from contracts.clock import paris_today
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from infra.messaging_tables import outbox
from services.billing import domain
from services.billing.service import charge_at_commit
from tests.integration.billing_support import (
    assert_every_document_valid,
    billing_database,
    billing_service,
    caller,
    declare_profiles,
)
from tests.support.billing import returned

CHAMBON, ETIENNE, FIRMINY = "42044", "42218", "42095"
OPERATOR = caller(ETIENNE, "operator")
SUPPLIER, CUSTOMER = caller(CHAMBON, "finance"), caller(ETIENNE, "finance")


@pytest.fixture
def db(database_url):
    access = billing_database(database_url)
    declare_profiles(access, [CHAMBON, ETIENNE, FIRMINY])
    yield access
    assert_every_document_valid(access)


def snowplough_invoice(db) -> dict:
    """Chambon lends Saint-Étienne its snowplough 2 days (840.00) and charges a mirror."""
    today = paris_today()
    drafts = [
        domain.ChargeDraft(
            kind=kind,
            supplier=CHAMBON,
            customer=ETIENNE,
            source_reference=f"test:{uuid.uuid4()}",
            description=text,
            quantity=Decimal(quantity),
            unit=unit,
            unit_price_cents=price,
            amount_cents=int(Decimal(quantity) * price),
            charge_date=today,
            order_reference=None,
        )
        for kind, text, quantity, unit, price in (
            (ChargeKind.RENTAL, "Chasse-neige", "2", "DAY", 42000),
            (ChargeKind.DAMAGE, "Rétroviseur gauche", "1", "C62", 15000),
        )
    ]
    with db.transaction() as tx:
        charge_at_commit(tx, drafts, str(uuid.uuid4()))
    run = billing_service(db).run_billing(OPERATOR, {"period": domain.period_of(today)})
    (invoice,) = run["invoices"]
    lines = billing_service(db).get_invoice(SUPPLIER, invoice["id"])["lines"]
    return invoice | {"line_of": {line["kind"]: line["line"] for line in lines}}


def events(db, event_type: str) -> list[dict]:
    with db.reading() as session:
        bodies = session.scalars(select(outbox.c.body).where(outbox.c.routing_key == event_type))
        return [json.loads(body)["payload"] for body in bodies]


def test_a_contested_damage_is_shown_apart_kept_out_of_nettings_and_credited(db):
    service = billing_service(db)
    invoice = snowplough_invoice(db)
    damage, rental = invoice["line_of"]["damage"], invoice["line_of"]["rental"]
    contest = {"line": damage, "reason": "Le rétroviseur était déjà fêlé au départ"}
    with pytest.raises(Forbidden):
        service.open_dispute(SUPPLIER, invoice["id"], contest)
    with pytest.raises(NotFound):
        service.open_dispute(caller(FIRMINY, "finance"), invoice["id"], contest)
    with pytest.raises(Forbidden):  # a manager contests a damage only
        service.open_dispute(caller(ETIENNE, "manager"), invoice["id"], contest | {"line": rental})
    with pytest.raises(InvalidInput):
        service.open_dispute(CUSTOMER, invoice["id"], contest | {"amount_cents": 15001})
    with pytest.raises(InvalidInput):
        service.open_dispute(CUSTOMER, invoice["id"], contest | {"line": 9})
    proposal = service.settle(OPERATOR, {"period": invoice["period"]})

    contested = service.open_dispute(caller(ETIENNE, "manager"), invoice["id"], contest)
    (dispute,) = contested["disputes"]
    assert (dispute["status"], dispute["amount_cents"], contested["disputed_cents"]) == (
        "open",
        15000,
        15000,
    )
    with pytest.raises(Conflict):
        service.open_dispute(CUSTOMER, invoice["id"], contest)
    assert service.get_settlement(OPERATOR, proposal["id"])["status"] == "void"
    with pytest.raises(Conflict):  # the only open invoice is contested: nothing to net
        service.settle(OPERATOR, {"period": invoice["period"]})
    (row,) = service.aging_report(CUSTOMER, {"direction": "payable"})["rows"]
    assert (row["disputed_cents"], row["total_cents"]) == (15000, 99000)
    assert sum(row[f"{b}_cents"] for b in domain.AGING_BUCKETS) == 84000
    (event,) = events(db, "invoice.disputed")
    assert (event["line"], event["amount_cents"]) == (damage, 15000)

    with pytest.raises(Forbidden):
        service.resolve_dispute(
            CUSTOMER, invoice["id"], dispute["id"], {"outcome": "credit", "reason": "oui"}
        )
    resolved = service.resolve_dispute(
        SUPPLIER, invoice["id"], dispute["id"], {"outcome": "credit", "reason": "Accordé"}
    )
    assert resolved["disputed_cents"] == 0 and resolved["balance_cents"] == 84000
    (done,) = resolved["disputes"]
    assert done["status"] == "credited" and done["credit_note_id"]
    note = service.get_credit_note(SUPPLIER, done["credit_note_id"])
    (line,) = note["lines"]
    assert (line["invoice_line"], line["quantity"], line["unit"], line["amount_cents"]) == (
        damage,
        "1",
        "C62",
        15000,
    )
    (issued,) = events(db, "credit_note.issued")
    assert (issued["credit_note_id"], issued["total_cents"]) == (note["id"], 15000)
    (answered,) = events(db, "invoice.dispute_resolved")
    assert answered["status"] == "credited"
    with pytest.raises(Conflict):
        service.resolve_dispute(
            SUPPLIER, invoice["id"], dispute["id"], {"outcome": "reject", "reason": "non"}
        )
    # nothing beyond what the line still carries: it was credited whole
    with pytest.raises(InvalidInput):
        service.issue_credit_note(
            SUPPLIER,
            invoice["id"],
            {"reason": "encore", "lines": [{"line": damage, "amount_cents": 1}]},
        )


def test_a_rejected_claim_keeps_the_invoice_and_a_partial_credit_keeps_the_unit(db):
    service = billing_service(db)
    invoice = snowplough_invoice(db)
    rental = invoice["line_of"]["rental"]
    opened = service.open_dispute(
        CUSTOMER,
        invoice["id"],
        {"line": rental, "reason": "Rendu un jour plus tôt", "amount_cents": 42000},
    )
    (dispute,) = opened["disputes"]
    rejected = service.resolve_dispute(
        SUPPLIER,
        invoice["id"],
        dispute["id"],
        {"outcome": "reject", "reason": "Le bon de retour est daté du second jour"},
    )
    assert rejected["disputes"][0]["status"] == "rejected"
    assert (rejected["balance_cents"], rejected["disputed_cents"]) == (99000, 0)
    assert service.settle(OPERATOR, {"period": invoice["period"]})["invoices_settled"] == 1
    # half a day credited on a 2-day line: the line keeps its 2 days, at a lower unit price
    again = service.open_dispute(
        CUSTOMER, invoice["id"], {"line": rental, "reason": "Une demi-journée de panne"}
    )
    dispute = again["disputes"][-1]
    resolved = service.resolve_dispute(
        SUPPLIER,
        invoice["id"],
        dispute["id"],
        {"outcome": "credit", "reason": "Demi-journée", "amount_cents": 21000},
    )
    note = service.get_credit_note(SUPPLIER, resolved["disputes"][-1]["credit_note_id"])
    assert [(x["quantity"], x["unit"], x["amount_cents"]) for x in note["lines"]] == [
        ("2", "DAY", 21000)
    ]


def test_both_sides_see_what_to_watch_open_disputes_nettings_and_transfers(db):
    service = billing_service(db)
    invoice = snowplough_invoice(db)
    damage = invoice["line_of"]["damage"]
    service.open_dispute(CUSTOMER, invoice["id"], {"line": damage, "reason": "déjà fêlé"})
    supplier_side = service.money_to_watch(SUPPLIER)
    customer_side = service.money_to_watch(CUSTOMER)
    assert [d["line"] for d in supplier_side["disputes_to_answer"]] == [damage]
    assert [d["line"] for d in customer_side["disputes_raised"]] == [damage]
    assert supplier_side["disputes_raised"] == customer_side["disputes_to_answer"] == []
    assert service.money_to_watch(caller(FIRMINY, "finance"))["disputes_raised"] == []


def test_a_damage_contested_at_the_return_is_disputed_as_soon_as_it_is_invoiced(db):
    """The borrower's manager contested the mirror at the return: booking.returned carries
    the reserve, and the invoice opens a dispute on the damage's line from its issue."""
    service = billing_service(db)
    returned = returned_with_damages(
        Damage(description="Rétroviseur gauche", amount_cents=15000, contest="Déjà fêlé au départ"),
        Damage(description="Pneu crevé", amount_cents=8000),
    )
    service.charge_booking(returned)
    # the same return announced again (a new event id): its charges, and the reserve, once
    service.charge_booking(BookingReturned.new(returned.payload, producer="bookings"))
    (invoice,) = service.run_billing(OPERATOR, {"period": domain.period_of(paris_today())})[
        "invoices"
    ]
    issued = service.get_invoice(CUSTOMER, invoice["id"])
    (dispute,) = issued["disputes"]
    (mirror,) = [line for line in issued["lines"] if "Rétroviseur" in line["description"]]
    assert (dispute["line"], dispute["amount_cents"], dispute["reason"], dispute["status"]) == (
        mirror["line"],
        15000,
        "Déjà fêlé au départ",
        "open",
    )
    assert issued["disputed_cents"] == 15000
    (row,) = service.aging_report(CUSTOMER, {"direction": "payable"})["rows"]
    assert (row["disputed_cents"], row["total_cents"]) == (15000, 107000)
    assert sum(row[f"{b}_cents"] for b in domain.AGING_BUCKETS) == 92000
    with pytest.raises(Conflict):  # its only invoice is contested: nothing to net
        service.settle(OPERATOR, {"period": invoice["period"]})
    (event,) = events(db, "invoice.disputed")
    assert (event["invoice_id"], event["line"], event["amount_cents"]) == (
        invoice["id"],
        mirror["line"],
        15000,
    )
    # the supplier answers it as any dispute: credited, the netting may go ahead
    resolved = service.resolve_dispute(
        SUPPLIER, invoice["id"], dispute["id"], {"outcome": "credit", "reason": "Accordé"}
    )
    assert (resolved["disputed_cents"], resolved["balance_cents"]) == (0, 92000)


def test_an_uncontested_damage_opens_no_dispute(db):
    service = billing_service(db)
    service.charge_booking(
        returned_with_damages(Damage(description="Pneu crevé", amount_cents=8000))
    )
    (invoice,) = service.run_billing(OPERATOR, {"period": domain.period_of(paris_today())})[
        "invoices"
    ]
    issued = service.get_invoice(CUSTOMER, invoice["id"])
    assert (issued["disputes"], issued["disputed_cents"]) == ([], 0)
    assert events(db, "invoice.disputed") == []


def returned_with_damages(*damages: Damage) -> BookingReturned:
    """Le Chambon's snowplough returned by Saint-Étienne with these damages."""
    snapshot = returned().payload.model_copy(update={"damages": list(damages)})
    return BookingReturned.new(snapshot, producer="bookings", correlation_id="test")
