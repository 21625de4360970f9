"""Settlements in the billing database: a period's open invoices settled at once, with the
transfers that carry what compensation leaves and the audit trail of who paid what."""

from __future__ import annotations

from sqlalchemy import Row, func, select, update
from sqlalchemy.orm import Session

from contracts.billing import OPEN_STATUSES, InvoiceStatus
from services.billing import domain
from services.billing.models import (
    InvoiceRow,
    SettlementAllocationRow,
    SettlementRow,
    SettlementTransferRow,
)
from services.billing.repository.bulk import bulk_insert


def settle_open_invoices(session: Session, period: str) -> list[Row]:
    """Marks every open invoice of the period settled for what it still owes; returns
    (customer, due date, number, id, supplier, settled cents) of each.

    One statement locks, reads and settles what is open (an open invoice was never part of
    a settlement, so its open amount is all it has left): a concurrent settlement waits,
    then finds nothing open; a concurrent payment lands wholly before or after."""
    invoices = InvoiceRow.__table__.c
    return session.execute(
        update(InvoiceRow.__table__)
        .where(
            invoices.period == period,
            invoices.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .values(
            settled_cents=invoices.total_cents - invoices.credited_cents - invoices.paid_cents,
            status=InvoiceStatus.SETTLED.value,
        )
        .returning(
            invoices.customer_commune,
            invoices.due_date,
            invoices.number,
            invoices.id,
            invoices.supplier_commune,
            invoices.settled_cents,
        )
    ).all()


def next_sequence(session: Session, period: str) -> int:
    """The number of the period's next settlement: 1, then 2 after invoices issued late."""
    last = session.scalar(
        select(func.max(SettlementRow.sequence)).where(SettlementRow.period == period)
    )
    return (last or 0) + 1


def add_settlement(session: Session, settlement: domain.Settlement) -> SettlementRow:
    """Writes a settlement, its transfers and its audit trail."""
    row = SettlementRow(**settlement.columns)
    session.add(row)
    session.flush()
    bulk_insert(
        session,
        SettlementTransferRow.__table__,
        [
            {
                "id": key,
                "settlement_id": row.id,
                "payer": payer,
                "payee": payee,
                "amount_cents": cents,
            }
            for key, payer, payee, cents in settlement.transfers
        ],
        {
            "id": "text",
            "settlement_id": "text",
            "payer": "text",
            "payee": "text",
            "amount_cents": "bigint",
        },
    )
    bulk_insert(
        session,
        SettlementAllocationRow.__table__,
        settlement.trail,
        {
            "settlement_id": "text",
            "invoice_id": "text",
            "part": "integer",
            "amount_cents": "bigint",
            "transfer_id": "text",
        },
    )
    return row


def last_settlement(
    session: Session, period: str
) -> tuple[SettlementRow, list[SettlementTransferRow]] | None:
    """The period's latest settlement and its transfers, largest first."""
    settlement = session.scalars(
        select(SettlementRow)
        .where(SettlementRow.period == period)
        .order_by(SettlementRow.sequence.desc())
        .limit(1)
    ).one_or_none()
    if settlement is None:
        return None
    transfers = session.scalars(
        select(SettlementTransferRow)
        .where(SettlementTransferRow.settlement_id == settlement.id)
        .order_by(SettlementTransferRow.amount_cents.desc(), SettlementTransferRow.payer)
    )
    return settlement, list(transfers)
