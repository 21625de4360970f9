"""Netting by consent, on a real database (PostgreSQL and SQLite): a proposal changes nothing
until every party accepted it; a decline or a deadline ends it with nothing changed; an
invoice paid since voids it; each party sees only its part and others nothing; once
effective, the transfers are obligations in aging and statements until a bank statement
pays them. A payment racing the last acceptance leaves the ledger whole."""

from __future__ import annotations

import base64
from datetime import timedelta

import eventlet
import pytest
from sqlalchemy import select

from contracts.clock import paris_today
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.billing import domain
from services.billing.models import (
    InvoiceRow,
    NettingProposalRow,
    SettlementAllocationRow,
    SettlementTransferRow,
)
from tests.integration.billing_support import (
    add_charges,
    assert_every_document_valid,
    billing_database,
    billing_service,
    caller,
    declare_profiles,
    iban_for,
)

CHAMBON, ETIENNE, FIRMINY, CHAMOND = "42044", "42218", "42095", "42207"
OPERATOR = caller(ETIENNE, "operator")
FINANCE = {c: caller(c, "finance") for c in (CHAMBON, ETIENNE, FIRMINY, CHAMOND)}


@pytest.fixture
def db(database_url):
    access = billing_database(database_url)
    declare_profiles(access, [CHAMBON, ETIENNE, FIRMINY, CHAMOND])
    yield access
    assert_every_document_valid(access)


def month_of_debts(db) -> dict[tuple[str, str], dict]:
    """Chambon, Saint-Étienne and Firminy owe each other for a month; invoices by pair."""
    add_charges(
        db,
        [
            (CHAMBON, ETIENNE, 99000),
            (ETIENNE, CHAMBON, 40000),
            (FIRMINY, ETIENNE, 112500),
            (ETIENNE, FIRMINY, 30000),
            (CHAMBON, FIRMINY, 1000),
        ],
        paris_today(),
    )
    run = billing_service(db).run_billing(OPERATOR, {"period": domain.period_of(paris_today())})
    return {(i["supplier_commune"], i["customer_commune"]): i for i in run["invoices"]}


def ledger(db) -> dict[str, tuple[str, int]]:
    """(status, balance) of every invoice, by number: what must not move before consent."""
    with db.reading() as session:
        return {
            row.number: (row.status, domain.balance(row))
            for row in session.scalars(select(InvoiceRow))
        }


def test_a_netting_takes_effect_only_when_every_party_accepted(db):
    service = billing_service(db)
    invoices = month_of_debts(db)
    period = domain.period_of(paris_today())
    before = ledger(db)

    preview = service.preview_settlement(FINANCE[CHAMBON], {"period": period})
    assert {p["commune"] for p in preview["parties"]} == {CHAMBON, ETIENNE, FIRMINY}
    assert ledger(db) == before
    first = service.settle(FINANCE[CHAMBON], {"period": period})
    assert (first["status"], first["created"]) == ("proposed", True)
    assert first["positions"] == [p for p in preview["positions"] if p["commune"] == CHAMBON]
    assert {i["number"] for i in first["invoices"]} == {
        i["number"] for (s, c), i in invoices.items() if CHAMBON in (s, c)
    }
    assert ledger(db) == before
    # a commune party to none of it sees nothing of it, and cannot decide
    for act in (
        lambda who: service.get_settlement(who, first["id"]),
        lambda who: service.accept_settlement(who, first["id"]),
        lambda who: service.decline_settlement(who, first["id"], {}),
    ):
        with pytest.raises(NotFound):
            act(FINANCE[CHAMOND])
    assert service.list_settlements(FINANCE[CHAMOND])["items"] == []
    with pytest.raises(Forbidden):
        service.accept_settlement(caller(ETIENNE, "manager"), first["id"])

    waiting = service.money_to_watch(FINANCE[ETIENNE])["nettings_to_decide"]
    assert [n["id"] for n in waiting] == [first["id"]]
    accepted = service.accept_settlement(FINANCE[ETIENNE], first["id"])
    assert service.money_to_watch(FINANCE[ETIENNE])["nettings_to_decide"] == []
    assert accepted["status"] == "proposed"
    with pytest.raises(Conflict):
        service.accept_settlement(FINANCE[ETIENNE], first["id"])
    declined = service.decline_settlement(FINANCE[FIRMINY], first["id"], {"reason": "À vérifier"})
    assert declined["status"] == "declined"
    assert ledger(db) == before
    with pytest.raises(Conflict):
        service.accept_settlement(FINANCE[CHAMBON], first["id"])

    # re-proposed without Firminy: only the invoices between Chambon and Saint-Étienne
    second = service.settle(FINANCE[CHAMBON], {"period": period, "communes": [CHAMBON, ETIENNE]})
    assert {p["commune"] for p in second["parties"]} == {CHAMBON, ETIENNE}
    assert second["invoices_settled"] == 2
    service.accept_settlement(FINANCE[CHAMBON], second["id"])
    assert ledger(db) == before
    done = service.accept_settlement(FINANCE[ETIENNE], second["id"])
    assert done["status"] == "effective" and done["settlement_id"]
    (transfer,) = done["transfers"]
    assert (transfer["payer"], transfer["payee"], transfer["amount_cents"]) == (
        ETIENNE,
        CHAMBON,
        59000,
    )
    after = ledger(db)
    for pair in ((CHAMBON, ETIENNE), (ETIENNE, CHAMBON)):
        assert after[invoices[pair]["number"]] == ("settled", 0)
    for pair in ((FIRMINY, ETIENNE), (ETIENNE, FIRMINY), (CHAMBON, FIRMINY)):
        assert after[invoices[pair]["number"]] == before[invoices[pair]["number"]]

    # the transfer is an obligation: dashboards, aging, statements, then a bank statement
    (to_pay,) = service.money_to_watch(FINANCE[ETIENNE])["transfers_to_pay"]
    (to_receive,) = service.money_to_watch(FINANCE[CHAMBON])["transfers_to_receive"]
    assert to_pay == to_receive and to_pay["amount_cents"] == 59000
    (owed,) = service.list_obligations(FINANCE[ETIENNE])["items"]
    assert (owed["payer"], owed["status"], owed["amount_cents"]) == (ETIENNE, "open", 59000)
    aging = service.aging_report(FINANCE[ETIENNE], {"direction": "payable"})
    assert {r["counterparty"]: r["total_cents"] for r in aging["rows"]}[CHAMBON] == 59000
    statement = service.statement(FINANCE[CHAMBON], {"counterparty": ETIENNE})
    assert statement["closing_balance_cents"] == 59000
    csv = (
        "date,amount,counterparty,iban,remittance\n"
        f"{paris_today()},590.00,COMMUNE DE SAINT ETIENNE,{iban_for(ETIENNE)},compensation\n"
    ).encode()
    imported = service.import_statement(FINANCE[CHAMBON], base64.b64encode(csv).decode())
    assert len(imported["matched"]) == 1
    (paid,) = service.list_obligations(FINANCE[CHAMBON])["items"]
    assert paid["status"] == "paid"
    statement = service.statement(FINANCE[CHAMBON], {"counterparty": ETIENNE})
    assert statement["closing_balance_cents"] == 0
    assert (
        service.aging_report(FINANCE[ETIENNE], {"direction": "payable"})["rows"][0]["counterparty"]
        == FIRMINY
    )


def test_an_invoice_paid_after_the_proposal_voids_it(db):
    service = billing_service(db)
    invoices = month_of_debts(db)
    period = domain.period_of(paris_today())
    proposal = service.settle(OPERATOR, {"period": period})
    assert {p["commune"] for p in proposal["parties"]} == {CHAMBON, ETIENNE, FIRMINY}
    service.accept_settlement(FINANCE[CHAMBON], proposal["id"])
    invoice = invoices[(CHAMBON, ETIENNE)]
    service.record_payment(
        FINANCE[CHAMBON],
        {"invoice_id": invoice["id"], "amount_cents": 100, "date": str(paris_today())},
    )
    seen = service.get_settlement(FINANCE[ETIENNE], proposal["id"])
    assert seen["status"] == "void" and invoice["number"] in seen["closing_reason"]
    with pytest.raises(Conflict):
        service.accept_settlement(FINANCE[ETIENNE], proposal["id"])
    assert ledger(db)[invoice["number"]] == ("partially_paid", 98900)


def test_a_proposal_past_its_deadline_has_expired_and_changes_nothing(db):
    service = billing_service(db)
    month_of_debts(db)
    before = ledger(db)
    period = domain.period_of(paris_today())
    with pytest.raises(InvalidInput):
        service.settle(FINANCE[CHAMBON], {"period": period, "deadline": "2000-01-01"})
    with pytest.raises(InvalidInput):  # a finance team proposes what it takes part in
        service.settle(FINANCE[CHAMOND], {"period": period, "communes": [CHAMBON, ETIENNE]})
    with pytest.raises(Conflict):  # Saint-Chamond has no invoice: nothing to net
        service.settle(FINANCE[CHAMOND], {"period": period})
    proposal = service.settle(FINANCE[CHAMBON], {"period": period})
    with db.transaction() as tx:
        row = tx.session.get(NettingProposalRow, proposal["id"])
        row.deadline = paris_today() - timedelta(days=1)
    assert service.get_settlement(FINANCE[FIRMINY], proposal["id"])["status"] == "expired"
    for party in (CHAMBON, ETIENNE, FIRMINY):
        with pytest.raises(Conflict):
            service.accept_settlement(FINANCE[party], proposal["id"])
    assert ledger(db) == before


def test_the_audit_trail_names_every_invoice_settled_once_and_every_transfer_exactly(db):
    """Saint-Étienne owes Chambon and Firminy more than they owe it: its transfers carry its
    oldest invoices, the rest of what it owes and every other invoice are compensated. The
    trail written has each invoice's parts 1..n adding up to what it was settled for; an
    invoice no transfer carries has one part, by no transfer; each transfer is carried for
    exactly its amount."""
    service = billing_service(db)
    month_of_debts(db)
    proposal = service.settle(OPERATOR, {"period": domain.period_of(paris_today())})
    for commune in (CHAMBON, ETIENNE, FIRMINY):
        service.accept_settlement(FINANCE[commune], proposal["id"])
    with db.reading() as session:
        invoices = {row.id: row for row in session.scalars(select(InvoiceRow))}
        transfers = {row.id: row for row in session.scalars(select(SettlementTransferRow))}
        trail = session.scalars(
            select(SettlementAllocationRow).order_by(
                SettlementAllocationRow.invoice_id, SettlementAllocationRow.part
            )
        ).all()
    assert {row.settlement_id for row in trail} == {t.settlement_id for t in transfers.values()}
    assert {row.invoice_id for row in trail} == set(invoices)
    for invoice_id, invoice in invoices.items():
        parts = [row for row in trail if row.invoice_id == invoice_id]
        assert [row.part for row in parts] == list(range(1, len(parts) + 1))
        assert sum(row.amount_cents for row in parts) == invoice.settled_cents > 0
        if all(row.transfer_id is None for row in parts):
            assert len(parts) == 1, invoice.number  # compensated wholly, once
    for key, transfer in transfers.items():
        carried = sum(row.amount_cents for row in trail if row.transfer_id == key)
        assert carried == transfer.amount_cents
    assert {t.payer for t in transfers.values()} == {ETIENNE}
    assert len(trail) > len(invoices)  # its transfers split one of its invoices at least


def test_the_last_acceptance_racing_a_payment_leaves_the_ledger_whole(db):
    """Saint-Étienne accepts (the last party) while Chambon records a payment on one of the
    netting's invoices: either the payment lands first and the netting is void, or the
    netting first and the payment is refused. Never both, never half."""
    service = billing_service(db)
    invoices = month_of_debts(db)
    period = domain.period_of(paris_today())
    proposal = service.settle(FINANCE[CHAMBON], {"period": period, "communes": [CHAMBON, ETIENNE]})
    service.accept_settlement(FINANCE[CHAMBON], proposal["id"])
    invoice = invoices[(CHAMBON, ETIENNE)]

    def attempt(call):
        try:
            return call()
        except (Conflict, InvalidInput) as exc:
            return exc

    accepting = eventlet.spawn(
        attempt, lambda: service.accept_settlement(FINANCE[ETIENNE], proposal["id"])
    )
    paying = eventlet.spawn(
        attempt,
        lambda: service.record_payment(
            FINANCE[CHAMBON],
            {"invoice_id": invoice["id"], "amount_cents": 5000, "date": str(paris_today())},
        ),
    )
    accepted, paid = accepting.wait(), paying.wait()
    status = service.get_settlement(FINANCE[CHAMBON], proposal["id"])["status"]
    row_status, balance = ledger(db)[invoice["number"]]
    if isinstance(paid, dict):  # the payment first: the netting is void, nothing settled
        assert isinstance(accepted, Conflict) and status == "void"
        assert (row_status, balance) == ("partially_paid", 94000)
    else:  # the netting first: the invoice is settled and takes no payment
        assert isinstance(paid, Conflict) and status == "effective"
        assert (row_status, balance) == ("settled", 0)
    with db.reading() as session:
        for row in session.scalars(select(InvoiceRow)):
            assert domain.balance(row) >= 0
            assert (
                row.total_cents
                == row.credited_cents + row.paid_cents + row.settled_cents + domain.balance(row)
            )


def test_a_netting_up_to_a_day_takes_the_invoices_issued_by_then_never_a_future_day(db):
    service = billing_service(db)
    month_of_debts(db)
    tomorrow = str(paris_today() + timedelta(days=1))
    with pytest.raises(InvalidInput) as refused:
        service.preview_settlement(FINANCE[CHAMBON], {"up_to": tomorrow})
    assert refused.value.errors[0]["field"] == "up_to"
    with pytest.raises(InvalidInput):  # a period or a day, not both
        service.preview_settlement(
            FINANCE[CHAMBON], {"up_to": str(paris_today()), "period": "2026-01"}
        )
    preview = service.preview_settlement(FINANCE[CHAMBON], {"up_to": str(paris_today())})
    assert preview["invoices_settled"] == 5 and preview["up_to"] == str(paris_today())


def test_the_payee_records_a_transfer_received_by_hand_once(db):
    service = billing_service(db)
    month_of_debts(db)
    body = {"period": domain.period_of(paris_today()), "communes": [CHAMBON, ETIENNE]}
    proposal = service.settle(FINANCE[CHAMBON], body)
    service.accept_settlement(FINANCE[CHAMBON], proposal["id"])
    service.accept_settlement(FINANCE[ETIENNE], proposal["id"])
    (owed,) = service.list_obligations(FINANCE[CHAMBON])["items"]
    received = {"date": str(paris_today()), "reference": "VIR COMP"}
    with pytest.raises(Forbidden):  # the payer does not say it paid: the payee says it received
        service.record_transfer_paid(FINANCE[ETIENNE], owed["id"], received)
    with pytest.raises(NotFound):
        service.record_transfer_paid(FINANCE[FIRMINY], owed["id"], received)
    with pytest.raises(InvalidInput):
        tomorrow = str(paris_today() + timedelta(days=1))
        service.record_transfer_paid(FINANCE[CHAMBON], owed["id"], received | {"date": tomorrow})
    paid = service.record_transfer_paid(FINANCE[CHAMBON], owed["id"], received)
    assert (paid["status"], paid["paid_reference"]) == ("paid", "VIR COMP")
    with pytest.raises(Conflict):
        service.record_transfer_paid(FINANCE[CHAMBON], owed["id"], received)
    assert service.money_to_watch(FINANCE[ETIENNE])["transfers_to_pay"] == []
