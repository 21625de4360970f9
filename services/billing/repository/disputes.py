"""Contested invoice lines: open until the supplier credits them or rejects the claim."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contracts.errors import NotFound
from services.billing.models import DisputeRow, InvoiceRow


def add_dispute(session: Session, columns: dict) -> DisputeRow:
    row = DisputeRow(**columns)
    session.add(row)
    session.flush()
    return row


def disputes_of(session: Session, invoice_id: str) -> list[DisputeRow]:
    return list(
        session.scalars(
            select(DisputeRow)
            .where(DisputeRow.invoice_id == invoice_id)
            .order_by(DisputeRow.opened_at, DisputeRow.id)
        )
    )


def dispute_for_update(session: Session, dispute_id: str, invoice_id: str) -> DisputeRow:
    row = session.scalars(
        select(DisputeRow).where(DisputeRow.id == dispute_id).with_for_update()
    ).one_or_none()
    if row is None or row.invoice_id != invoice_id:
        raise NotFound("No such dispute")
    return row


def open_disputed_cents():
    """Per invoice, what its open disputes contest: a correlated subquery on invoices."""
    return (
        select(func.coalesce(func.sum(DisputeRow.amount_cents), 0))
        .where(DisputeRow.invoice_id == InvoiceRow.id, DisputeRow.status == "open")
        .scalar_subquery()
    )


def undisputed():
    """Invoices with no open dispute: what a netting may take."""
    return (
        ~select(DisputeRow.id)
        .where(DisputeRow.invoice_id == InvoiceRow.id, DisputeRow.status == "open")
        .exists()
    )


def open_disputes_of(session: Session, commune: str) -> list:
    """(dispute, invoice) of the open disputes on invoices the commune issued or received."""
    return list(
        session.execute(
            select(DisputeRow, InvoiceRow)
            .join(InvoiceRow, InvoiceRow.id == DisputeRow.invoice_id)
            .where(
                DisputeRow.status == "open",
                (InvoiceRow.supplier_commune == commune) | (InvoiceRow.customer_commune == commune),
            )
            .order_by(DisputeRow.opened_at)
        ).all()
    )
