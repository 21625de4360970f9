"""Payments checked and reversible, on a real database (PostgreSQL and SQLite): more than the
balance, a date out of range or a double entry are refused and change nothing; a payment is
reversed, never deleted, and the invoice owes again; a statement line matched by mistake is
unmatched; the customer's payment order shows on the supplier's invoice; two payments at once
never overpay."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import eventlet
import pytest
from sqlalchemy import func, select

from contracts.clock import paris_today
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from infra.messaging_tables import outbox
from services.billing import domain
from services.billing.models import InvoiceRow, PaymentRow
from tests.integration.billing_support import (
    add_charges,
    assert_every_document_valid,
    billing_database,
    billing_service,
    caller,
    declare_profiles,
)

CHAMBON, ETIENNE, FIRMINY = "42044", "42218", "42095"
OPERATOR = caller(ETIENNE, "operator")
SUPPLIER = caller(CHAMBON, "finance")  # Le Chambon-Feugerolles invoices Saint-Étienne
CUSTOMER = caller(ETIENNE, "finance")


@pytest.fixture
def db(database_url):
    access = billing_database(database_url)
    declare_profiles(access, [CHAMBON, ETIENNE, FIRMINY])
    yield access
    assert_every_document_valid(access)


def issued(db, *cents: int) -> list[dict]:
    """Invoices of Chambon to Saint-Étienne, one per amount (one run each)."""
    service = billing_service(db)
    invoices = []
    for amount in cents:
        add_charges(db, [(CHAMBON, ETIENNE, amount)], paris_today())
        (invoice,) = service.run_billing(OPERATOR, {"period": domain.period_of(paris_today())})[
            "invoices"
        ]
        invoices.append(invoice)
    return invoices


def payment(invoice: dict, cents: int, **more) -> dict:
    return {
        "invoice_id": invoice["id"],
        "amount_cents": cents,
        "date": str(paris_today()),
        "reference": "VIR 1",
    } | more


def ledger(db, invoice_id: str) -> tuple[int, int, str]:
    with db.reading() as session:
        row = session.get(InvoiceRow, invoice_id)
        count = session.scalar(
            select(func.count()).select_from(PaymentRow).where(PaymentRow.invoice_id == row.id)
        )
        return row.paid_cents, count, row.status


def events_of(db, event_type: str) -> list[dict]:
    with db.reading() as session:
        bodies = session.scalars(select(outbox.c.body).where(outbox.c.routing_key == event_type))
        return [json.loads(body)["payload"] for body in bodies]


def test_more_than_the_balance_is_refused_unless_recorded_as_an_overpayment(db):
    service = billing_service(db)
    first, second = issued(db, 3950, 10000)
    with pytest.raises(InvalidInput) as refused:
        service.record_payment(SUPPLIER, payment(first, 500000))
    (error,) = refused.value.errors
    assert (error["field"], error["type"], error["balance_cents"]) == (
        "amount_cents",
        "over_balance",
        3950,
    )
    assert ledger(db, first["id"]) == (0, 0, "issued")

    over = service.record_payment(SUPPLIER, payment(first, 5000, overpayment=True))
    assert (over["status"], over["balance_cents"], over["overpaid_cents"]) == ("paid", 0, 1050)
    assert over["payments"][0]["overpayment"] is True
    # the payer's credit is offered on its next invoice and shown in both statements
    nxt = service.get_invoice(SUPPLIER, second["id"])
    assert (nxt["payer_credit_cents"], nxt["balance_cents"]) == (1050, 10000)
    theirs = service.statement(SUPPLIER, {"counterparty": ETIENNE})
    assert (theirs["counterparty_credit_cents"], theirs["own_credit_cents"]) == (1050, 0)
    mine = service.statement(CUSTOMER, {"counterparty": CHAMBON})
    assert (mine["counterparty_credit_cents"], mine["own_credit_cents"]) == (0, 1050)
    assert mine["closing_balance_cents"] == -(3950 + 10000 - 5000)
    # a paid invoice takes more only as an overpayment too
    with pytest.raises(InvalidInput):
        service.record_payment(SUPPLIER, payment(first, 1, reference="VIR 2"))


def test_a_payment_dated_tomorrow_in_paris_or_before_the_invoice_is_refused(db):
    service = billing_service(db)
    (invoice,) = issued(db, 3950)
    tomorrow = paris_today() + timedelta(days=1)
    before = paris_today() - timedelta(days=1)
    for day, rule in ((tomorrow, "future_date"), (before, "before_issue_date")):
        with pytest.raises(InvalidInput) as refused:
            service.record_payment(SUPPLIER, payment(invoice, 100, date=str(day)))
        assert [(e["field"], e["type"]) for e in refused.value.errors] == [("date", rule)]
    with pytest.raises(InvalidInput):
        service.record_payment(SUPPLIER, payment(invoice, 100, date="1990-01-01"))
    assert ledger(db, invoice["id"]) == (0, 0, "issued")


def test_the_same_payment_twice_is_a_conflict_unless_confirmed(db):
    service = billing_service(db)
    (invoice,) = issued(db, 10000)
    service.record_payment(SUPPLIER, payment(invoice, 3000))
    with pytest.raises(Conflict) as refused:
        service.record_payment(SUPPLIER, payment(invoice, 3000))
    assert refused.value.extra["duplicate_of"]
    assert ledger(db, invoice["id"]) == (3000, 1, "partially_paid")
    # another reference, or confirmed: a second payment
    service.record_payment(SUPPLIER, payment(invoice, 3000, reference="VIR 2"))
    again = service.record_payment(SUPPLIER, payment(invoice, 3000, confirm_duplicate=True))
    assert again["balance_cents"] == 1000
    assert ledger(db, invoice["id"]) == (9000, 3, "partially_paid")


def test_a_reversed_payment_is_kept_and_the_invoice_owes_again(db):
    service = billing_service(db)
    (invoice,) = issued(db, 10000)
    paid = service.record_payment(SUPPLIER, payment(invoice, 10000))
    assert paid["status"] == "paid"
    (recorded,) = paid["payments"]
    reason = {"reason": "saisi sur la mauvaise facture"}
    with pytest.raises(Forbidden):
        service.reverse_payment(CUSTOMER, recorded["id"], reason)
    with pytest.raises(NotFound):
        service.reverse_payment(caller(FIRMINY, "finance"), recorded["id"], reason)
    with pytest.raises(InvalidInput):
        service.reverse_payment(SUPPLIER, recorded["id"], {"reason": ""})
    reopened = service.reverse_payment(SUPPLIER, recorded["id"], reason)
    assert (reopened["status"], reopened["balance_cents"]) == ("issued", 10000)
    (kept,) = reopened["payments"]
    assert kept["reversed_at"] and kept["reversed_by"] == SUPPLIER["user_id"]
    assert kept["reversal_reason"] == reason["reason"]
    with pytest.raises(Conflict):
        service.reverse_payment(SUPPLIER, recorded["id"], reason)
    assert ledger(db, invoice["id"]) == (0, 1, "issued")
    (event,) = events_of(db, "payment.reversed")
    assert (event["payment_id"], event["balance_cents"]) == (recorded["id"], 10000)
    statement = service.statement(SUPPLIER, {"counterparty": ETIENNE})
    kinds = [e["kind"] for e in statement["entries"]]
    assert kinds.count("payment_reversed") == 1
    assert statement["closing_balance_cents"] == 10000
    # the same payment once more is no duplicate of the reversed one
    service.record_payment(SUPPLIER, payment(invoice, 10000))
    assert ledger(db, invoice["id"]) == (10000, 2, "paid")


def test_a_statement_line_matched_by_mistake_is_unmatched_and_matched_again(db):
    service = billing_service(db)
    wrong, right = issued(db, 25000, 25000)
    today = paris_today()
    csv = (
        "date,amount,counterparty,iban,remittance\n"
        f"{today},250.00,COMMUNE DE SAINT ETIENNE,,FACT {wrong['number']}\n"
    ).encode()
    imported = service.import_statement(SUPPLIER, base64.b64encode(csv).decode())
    (line,) = imported["matched"]
    assert ledger(db, wrong["id"])[2] == "paid"
    (paid,) = line["payments"]
    with pytest.raises(Conflict) as refused:  # statement payments are undone by unmatching
        service.reverse_payment(SUPPLIER, paid["id"], {"reason": "erreur"})
    assert refused.value.extra["statement_line_id"] == line["id"]
    with pytest.raises(NotFound):
        service.unmatch_statement_line(CUSTOMER, line["id"], {"reason": "erreur"})

    unmatched = service.unmatch_statement_line(
        SUPPLIER, line["id"], {"reason": "le mandat vise l'autre facture"}
    )
    assert unmatched["status"] == "unmatched"
    assert unmatched["payments"][0]["reversed_at"]
    assert ledger(db, wrong["id"]) == (0, 1, "issued")
    assert [i["id"] for i in service.unmatched_payments(SUPPLIER)["items"]] == [line["id"]]
    with pytest.raises(Conflict):
        service.unmatch_statement_line(SUPPLIER, line["id"], {"reason": "encore"})
    service.match_statement_line(SUPPLIER, line["id"], {"invoice_id": right["id"]})
    assert ledger(db, right["id"]) == (25000, 1, "paid")
    # a hand match beyond the balance needs the overpayment said too
    service.unmatch_statement_line(SUPPLIER, line["id"], {"reason": "encore"})
    service.record_payment(SUPPLIER, payment(right, 20000))
    with pytest.raises(InvalidInput):
        service.match_statement_line(SUPPLIER, line["id"], {"invoice_id": right["id"]})
    service.match_statement_line(
        SUPPLIER, line["id"], {"invoice_id": right["id"], "overpayment": True}
    )
    assert service.get_invoice(SUPPLIER, right["id"])["overpaid_cents"] == 20000


def test_the_customer_records_its_payment_order_and_the_supplier_sees_it(db):
    service = billing_service(db)
    (invoice,) = issued(db, 3950)
    order = {"number": "M-2026-0412", "date": str(paris_today())}
    with pytest.raises(Forbidden):
        service.record_payment_order(SUPPLIER, invoice["id"], order)
    with pytest.raises(Forbidden):
        service.record_payment_order(caller(ETIENNE, "manager"), invoice["id"], order)
    with pytest.raises(NotFound):
        service.record_payment_order(caller(FIRMINY, "finance"), invoice["id"], order)
    with pytest.raises(InvalidInput):
        tomorrow = str(paris_today() + timedelta(days=1))
        service.record_payment_order(CUSTOMER, invoice["id"], order | {"date": tomorrow})
    service.record_payment_order(CUSTOMER, invoice["id"], order)
    seen = service.get_invoice(SUPPLIER, invoice["id"])["payment_order"]
    assert (seen["number"], seen["date"], seen["recorded_by"]) == (
        "M-2026-0412",
        str(paris_today()),
        CUSTOMER["user_id"],
    )
    (event,) = events_of(db, "invoice.payment_ordered")
    assert (event["number"], event["supplier_commune"]) == ("M-2026-0412", CHAMBON)
    service.record_payment(SUPPLIER, payment(invoice, 3950))
    with pytest.raises(Conflict):
        service.record_payment_order(CUSTOMER, invoice["id"], order)


def test_two_payments_at_once_never_overpay(db):
    """Both ask for the whole balance at the same moment: the invoice is locked, so the
    second sees it paid and is refused; a run of simultaneous partial payments never goes
    beyond the total either."""
    service = billing_service(db)
    (invoice,) = issued(db, 10000)

    def attempt(cents: int, reference: str):
        try:
            return service.record_payment(SUPPLIER, payment(invoice, cents, reference=reference))
        except InvalidInput as exc:
            return exc

    results = [r.wait() for r in [eventlet.spawn(attempt, 10000, f"VIR {n}") for n in range(2)]]
    assert sum(isinstance(r, dict) for r in results) == 1
    (refused,) = [r for r in results if isinstance(r, InvalidInput)]
    assert refused.errors[0]["type"] == "over_balance"
    assert ledger(db, invoice["id"]) == (10000, 1, "paid")

    (other,) = issued(db, 10000)
    invoice = other
    results = [r.wait() for r in [eventlet.spawn(attempt, 3000, f"P{n}") for n in range(6)]]
    assert sum(isinstance(r, dict) for r in results) == 3
    paid_cents, count, status = ledger(db, other["id"])
    assert (paid_cents, count, status) == (9000, 3, "partially_paid")


def test_an_overpayment_is_the_payers_credit_used_on_its_next_invoice(db):
    service = billing_service(db)
    (first,) = issued(db, 3950)
    service.record_payment(SUPPLIER, payment(first, 5000, overpayment=True))
    with pytest.raises(Conflict):  # the overpaid invoice owes nothing to pay with it
        service.use_payer_credit(SUPPLIER, first["id"])
    (second,) = issued(db, 10000)
    with pytest.raises(Forbidden):
        service.use_payer_credit(CUSTOMER, second["id"])
    used = service.use_payer_credit(SUPPLIER, second["id"])
    assert (used["balance_cents"], used["payer_credit_cents"]) == (10000 - 1050, 0)
    assert used["payments"][-1]["source"] == "credit"
    back = service.get_invoice(SUPPLIER, first["id"])
    assert (back["status"], back["overpaid_cents"], back["balance_cents"]) == ("paid", 0, 0)
    with pytest.raises(Conflict):  # used once: no credit left
        service.use_payer_credit(SUPPLIER, second["id"])
    with pytest.raises(Conflict):  # a credit used is not reversed by hand
        service.reverse_payment(SUPPLIER, used["payments"][-1]["id"], {"reason": "non"})
    statement = service.statement(CUSTOMER, {"counterparty": CHAMBON})
    assert statement["closing_balance_cents"] == -(3950 + 10000 - 5000)
    assert statement["own_credit_cents"] == 0
