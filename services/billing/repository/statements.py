"""Statements of account and aging: what two communes owe each other, and since when."""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from contracts.billing import OPEN_STATUSES
from services.billing import domain
from services.billing.models import (
    CreditNoteRow,
    InvoiceRow,
    PaymentRow,
    SettlementAllocationRow,
    SettlementRow,
)
from services.billing.repository.disputes import open_disputed_cents
from services.billing.repository.invoices import overpaid_balances
from services.billing.repository.obligations import obligations_between, open_obligations


def movements_between(session: Session, commune: str, other: str) -> list[domain.Movement]:
    """Everything that changed what `other` owes `commune`, both ways."""
    pair = or_(
        and_(InvoiceRow.supplier_commune == commune, InvoiceRow.customer_commune == other),
        and_(InvoiceRow.supplier_commune == other, InvoiceRow.customer_commune == commune),
    )
    invoices = {row.id: row for row in session.scalars(select(InvoiceRow).where(pair))}
    moves = obligation_movements(session, commune, other)
    for inv in invoices.values():
        sign = 1 if inv.supplier_commune == commune else -1
        kind = "invoice_issued" if sign > 0 else "invoice_received"
        moves.append(
            domain.Movement(
                inv.issue_date, kind, inv.number, f"Facture {inv.number}", sign * inv.total_cents
            )
        )
    if not invoices:
        return moves
    ids = list(invoices)
    for note in session.scalars(select(CreditNoteRow).where(CreditNoteRow.invoice_id.in_(ids))):
        sign = 1 if note.supplier_commune == commune else -1
        moves.append(
            domain.Movement(
                note.issue_date,
                "credit_note_issued" if sign > 0 else "credit_note_received",
                note.number,
                f"Avoir sur {invoices[note.invoice_id].number} : {note.reason}",
                -sign * note.total_cents,
            )
        )
    for pay in session.scalars(select(PaymentRow).where(PaymentRow.invoice_id.in_(ids))):
        inv = invoices[pay.invoice_id]
        sign = 1 if inv.supplier_commune == commune else -1
        moves.append(
            domain.Movement(
                pay.payment_date,
                "payment_received" if sign > 0 else "payment_sent",
                inv.number,
                f"Paiement {pay.reference}".strip(),
                -sign * pay.amount_cents,
            )
        )
        if pay.reversed_at is not None:  # the payment stays, its reversal cancels it
            moves.append(
                domain.Movement(
                    domain.paris_date(pay.reversed_at),
                    "payment_reversed",
                    inv.number,
                    f"Annulation du paiement {pay.reference} : {pay.reversal_reason}".strip(),
                    sign * pay.amount_cents,
                )
            )
    allocations = session.execute(
        select(SettlementAllocationRow, SettlementRow.created_at, SettlementRow.period)
        .join(SettlementRow, SettlementRow.id == SettlementAllocationRow.settlement_id)
        .where(SettlementAllocationRow.invoice_id.in_(ids))
    ).all()
    for allocation, created_at, period in allocations:
        inv = invoices[allocation.invoice_id]
        sign = 1 if inv.supplier_commune == commune else -1
        how = "par virement de compensation" if allocation.transfer_id else "par compensation"
        moves.append(
            domain.Movement(
                domain.paris_date(created_at),
                "settlement",
                inv.number,
                f"Réglée {how} (compensation {period})",
                -sign * allocation.amount_cents,
            )
        )
    return moves


def obligation_movements(session: Session, commune: str, other: str) -> list[domain.Movement]:
    """A netting's transfer is owed from the day the netting took effect until it is paid."""
    moves = []
    for transfer, settled_at in obligations_between(session, commune, other):
        sign = 1 if transfer.payee == commune else -1
        reference = f"Virement de compensation {transfer.id[:8]}"
        moves.append(
            domain.Movement(
                domain.paris_date(settled_at),
                "netting_transfer_due",
                reference,
                "Solde de compensation à virer",
                sign * transfer.amount_cents,
            )
        )
        if transfer.paid_on is not None:
            moves.append(
                domain.Movement(
                    transfer.paid_on,
                    "netting_transfer_paid",
                    reference,
                    f"Virement reçu {transfer.paid_reference or ''}".strip(),
                    -sign * transfer.amount_cents,
                )
            )
    return moves


def open_balances(
    session: Session, commune: str, receivable: bool
) -> tuple[list[tuple[str, date, int]], dict[str, int]]:
    """(counterparty, due date, balance) of the open invoices the commune issued or received
    less what is contested, and of the open netting transfers it receives or pays; and what
    open disputes contest, per counterparty, shown apart."""
    mine = InvoiceRow.supplier_commune if receivable else InvoiceRow.customer_commune
    other = InvoiceRow.customer_commune if receivable else InvoiceRow.supplier_commune
    disputed = open_disputed_cents()
    rows = session.execute(
        select(
            other,
            InvoiceRow.due_date,
            InvoiceRow.total_cents
            - InvoiceRow.credited_cents
            - InvoiceRow.paid_cents
            - InvoiceRow.settled_cents,
            disputed,
        ).where(mine == commune, InvoiceRow.status.in_([s.value for s in OPEN_STATUSES]))
    ).all()
    contested: dict[str, int] = {}
    balances = []
    for cp, due, cents, apart in rows:
        apart = min(int(apart), int(cents))
        if apart:
            contested[cp] = contested.get(cp, 0) + apart
        balances.append((cp, due, int(cents) - apart))
    return balances + open_obligations(session, commune, receivable), contested


def overpaid_between(session: Session, commune: str, other: str) -> tuple[int, int]:
    """(what `other` overpaid on `commune`'s invoices, what `commune` overpaid on `other`'s):
    each payer's credit with the other."""
    return (
        domain.payer_credit(overpaid_balances(session, commune, other)),
        domain.payer_credit(overpaid_balances(session, other, commune)),
    )
