"""Invoices in the billing database: issued in bulk by a billing run, then read, paid,
credited and settled one by one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import Row, func, or_, select
from sqlalchemy.orm import Session

from contracts.billing import OPEN_STATUSES, InvoiceQuery, InvoiceStatus
from contracts.errors import NotFound
from infra.paging import one_page
from services.billing import domain
from services.billing.models import ChargeRow, InvoiceLineRow, InvoiceRow, NumberSequence
from services.billing.repository.bulk import bulk_insert
from services.billing.repository.charges import of_commune


def add_invoices(
    session: Session,
    sequence: NumberSequence,
    invoices: Sequence[domain.NewInvoice],
    lines: dict[str, list[str]],
) -> None:
    """Writes a billing run's invoices, their lines (the charges each lists, in order) and
    the numbers they took of the locked `sequence`."""
    if not invoices:
        return
    session.execute(InvoiceRow.__table__.insert(), [vars(invoice) for invoice in invoices])
    bulk_insert(
        session,
        InvoiceLineRow.__table__,
        [
            {"invoice_id": invoice.id, "line_number": n, "charge_id": charge_id}
            for invoice in invoices
            for n, charge_id in enumerate(lines[invoice.id], start=1)
        ],
        {"invoice_id": "text", "line_number": "integer", "charge_id": "text"},
    )
    sequence.last_number += len(invoices)


def line_counts(session: Session, invoice_ids: list[str]) -> dict[str, int]:
    if not invoice_ids:
        return {}
    return dict(
        session.execute(
            select(InvoiceLineRow.invoice_id, func.count())
            .where(InvoiceLineRow.invoice_id.in_(invoice_ids))
            .group_by(InvoiceLineRow.invoice_id)
        ).all()
    )


def invoices_of(
    session: Session, commune: str, query: InvoiceQuery
) -> tuple[list[InvoiceRow], str | None]:
    stmt = select(InvoiceRow)
    stmt = stmt.where(of_commune(InvoiceRow, commune, query.direction))
    if query.counterparty is not None:
        stmt = stmt.where(
            or_(
                InvoiceRow.supplier_commune == query.counterparty,
                InvoiceRow.customer_commune == query.counterparty,
            )
        )
    if query.status is not None:
        stmt = stmt.where(InvoiceRow.status == query.status.value)
    if query.period is not None:
        stmt = stmt.where(InvoiceRow.period == query.period)
    return one_page(
        session,
        stmt.order_by(InvoiceRow.issue_date.desc(), InvoiceRow.number.desc()),
        query.cursor,
        query.limit,
    )


def invoices_of_period(session: Session, period: str) -> list[InvoiceRow]:
    """Every invoice of a billing period, by number: what an operator checks."""
    stmt = select(InvoiceRow).where(InvoiceRow.period == period).order_by(InvoiceRow.number)
    return list(session.scalars(stmt))


def get_invoice(session: Session, invoice_id: str, for_update: bool = False) -> InvoiceRow:
    stmt = select(InvoiceRow).where(InvoiceRow.id == invoice_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFound("No such invoice")
    return row


def invoice_lines(session: Session, invoice_id: str) -> list[Row]:
    """(line number, charge) of the invoice's lines, in order: the charges state them."""
    return list(
        session.execute(
            select(InvoiceLineRow.line_number, ChargeRow)
            .join(ChargeRow, ChargeRow.id == InvoiceLineRow.charge_id)
            .where(InvoiceLineRow.invoice_id == invoice_id)
            .order_by(InvoiceLineRow.line_number)
        ).all()
    )


def set_status(invoice: InvoiceRow, status: InvoiceStatus, paid_at: datetime | None) -> None:
    invoice.status = status.value
    if paid_at is not None:
        invoice.paid_at = paid_at


def invoices_by_number(session: Session, supplier: str, numbers: Sequence[str]) -> list[InvoiceRow]:
    """The supplier's invoices among `numbers`, locked, in the order the numbers come."""
    if not numbers:
        return []
    found = {
        row.number: row
        for row in session.scalars(
            select(InvoiceRow)
            .where(InvoiceRow.supplier_commune == supplier, InvoiceRow.number.in_(numbers))
            .order_by(InvoiceRow.id)
            .with_for_update()
        )
    }
    return [found[n] for n in numbers if n in found]


def open_invoices_between(session: Session, supplier: str, customer: str) -> list[InvoiceRow]:
    return list(
        session.scalars(
            select(InvoiceRow)
            .where(
                InvoiceRow.supplier_commune == supplier,
                InvoiceRow.customer_commune == customer,
                InvoiceRow.status.in_([s.value for s in OPEN_STATUSES]),
            )
            .order_by(InvoiceRow.id)
            .with_for_update()
        )
    )


def overpaid_balances(
    session: Session, supplier: str, customer: str, but: str | None = None
) -> list[int]:
    """Balances of the customer's invoices from the supplier that it overpaid (but one)."""
    balance = (
        InvoiceRow.total_cents
        - InvoiceRow.credited_cents
        - InvoiceRow.paid_cents
        - InvoiceRow.settled_cents
    )
    stmt = select(balance).where(
        InvoiceRow.supplier_commune == supplier,
        InvoiceRow.customer_commune == customer,
        balance < 0,
    )
    if but is not None:
        stmt = stmt.where(InvoiceRow.id != but)
    return [int(cents) for cents in session.scalars(stmt)]


def set_payment_order(
    invoice: InvoiceRow, number: str, day: date, user_id: str | None, now: datetime
) -> None:
    invoice.payment_order_number = number
    invoice.payment_order_date = day
    invoice.payment_order_recorded_at = now
    invoice.payment_order_recorded_by = user_id


def pair_invoices_for_update(session: Session, invoice_id: str) -> tuple[InvoiceRow, list]:
    """The invoice and its customer's other invoices from its supplier that it overpaid,
    all locked in id order (as every writer locks invoices); the overpaid ones oldest first."""
    target = get_invoice(session, invoice_id)
    balance = (
        InvoiceRow.total_cents
        - InvoiceRow.credited_cents
        - InvoiceRow.paid_cents
        - InvoiceRow.settled_cents
    )
    overpaid_ids = session.scalars(
        select(InvoiceRow.id).where(
            InvoiceRow.supplier_commune == target.supplier_commune,
            InvoiceRow.customer_commune == target.customer_commune,
            InvoiceRow.id != target.id,
            balance < 0,
        )
    ).all()
    locked = {
        row.id: row
        for row in session.scalars(
            select(InvoiceRow)
            .where(InvoiceRow.id.in_([target.id, *overpaid_ids]))
            .order_by(InvoiceRow.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    others = sorted(
        (locked[i] for i in overpaid_ids if domain.balance(locked[i]) < 0),
        key=lambda r: (r.issue_date, r.number),
    )
    return locked[target.id], others
