"""Payments in the billing database, and the bank statements whose credits they come from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from contracts.errors import NotFound
from infra.database import insert_new
from services.billing import domain
from services.billing.bank_statements import StatementCredit
from services.billing.models import (
    BankStatementRow,
    InvoiceRow,
    PaymentRow,
    StatementLineRow,
)


def add_payment(
    session: Session, invoice: InvoiceRow, entry: domain.PaymentEntry, now: datetime
) -> PaymentRow:
    """Stores a payment of the locked `invoice`, which then owes that much less."""
    payment = PaymentRow(
        id=domain.new_id(),
        invoice_id=invoice.id,
        amount_cents=entry.amount_cents,
        payment_date=entry.paid_on,
        reference=entry.reference[:140],
        source=entry.source,
        statement_line_id=entry.statement_line_id,
        recorded_at=now,
        recorded_by=entry.user_id,
        overpayment=entry.amount_cents > max(0, domain.balance(invoice)),
    )
    session.add(payment)
    invoice.paid_cents += entry.amount_cents
    return payment


def payment_for_update(session: Session, payment_id: str) -> PaymentRow:
    payment = session.scalars(
        select(PaymentRow).where(PaymentRow.id == payment_id).with_for_update()
    ).one_or_none()
    if payment is None:
        raise NotFound("No such payment")
    return payment


def reverse_payment(
    session: Session,
    payment: PaymentRow,
    invoice: InvoiceRow,
    reason: str,
    user_id: str | None,
    now: datetime,
) -> None:
    """Marks the payment reversed (it stays, with why, who and when); the locked invoice
    owes its amount again."""
    payment.reversed_at = now
    payment.reversed_by = user_id
    payment.reversal_reason = reason
    invoice.paid_cents -= payment.amount_cents
    session.flush()


def payments_of(session: Session, invoice_id: str) -> list[PaymentRow]:
    return list(
        session.scalars(
            select(PaymentRow)
            .where(PaymentRow.invoice_id == invoice_id)
            .order_by(PaymentRow.payment_date, PaymentRow.recorded_at)
        )
    )


def payments_of_line(session: Session, line_id: str) -> list[Row]:
    """(payment, invoice number) of what a statement line paid, reversed ones included."""
    return list(
        session.execute(
            select(PaymentRow, InvoiceRow.number)
            .join(InvoiceRow, InvoiceRow.id == PaymentRow.invoice_id)
            .where(PaymentRow.statement_line_id == line_id)
            .order_by(PaymentRow.recorded_at)
        ).all()
    )


def standing_payments_of_line(session: Session, line_id: str) -> list[PaymentRow]:
    """The payments a statement line made that are not reversed, locked, invoices locked
    in id order first (as every writer locks them)."""
    invoice_ids = session.scalars(
        select(PaymentRow.invoice_id).where(
            PaymentRow.statement_line_id == line_id, PaymentRow.reversed_at.is_(None)
        )
    ).all()
    session.scalars(
        select(InvoiceRow.id)
        .where(InvoiceRow.id.in_(sorted(set(invoice_ids))))
        .order_by(InvoiceRow.id)
        .with_for_update()
    ).all()
    return list(
        session.scalars(
            select(PaymentRow)
            .where(PaymentRow.statement_line_id == line_id, PaymentRow.reversed_at.is_(None))
            .order_by(PaymentRow.recorded_at)
            .with_for_update()
        )
    )


# -- bank statements --------------------------------------------------------------------


def add_statement(
    session: Session,
    commune: str,
    fmt: str,
    reference: str | None,
    user_id: str | None,
    now: datetime,
) -> BankStatementRow:
    statement = BankStatementRow(
        id=domain.new_id(),
        commune=commune,
        format=fmt,
        reference=reference,
        imported_at=now,
        imported_by=user_id,
    )
    session.add(statement)
    session.flush()
    return statement


def add_statement_line(
    session: Session, statement_id: str, commune: str, credit: StatementCredit
) -> str | None:
    """Stores a received credit unless this commune already has it; returns its id."""
    inserted = insert_new(
        session,
        StatementLineRow.__table__,
        [
            {
                "id": domain.new_id(),
                "statement_id": statement_id,
                "commune": commune,
                "fingerprint": credit.fingerprint,
                "booking_date": credit.booking_date,
                "amount_cents": credit.amount_cents,
                "counterparty_name": credit.counterparty_name[:200],
                "counterparty_iban": credit.counterparty_iban,
                "remittance": credit.remittance,
                "bank_reference": credit.bank_reference,
                "status": "unmatched",
            }
        ],
        returning="id",
    )
    return inserted[0] if inserted else None


def unmatched_lines(session: Session, commune: str) -> list[StatementLineRow]:
    return list(
        session.scalars(
            select(StatementLineRow)
            .where(StatementLineRow.commune == commune, StatementLineRow.status == "unmatched")
            .order_by(StatementLineRow.booking_date, StatementLineRow.id)
        )
    )


def statement_line_for_update(session: Session, line_id: str, commune: str) -> StatementLineRow:
    line = session.scalars(
        select(StatementLineRow).where(StatementLineRow.id == line_id).with_for_update()
    ).one_or_none()
    if line is None or line.commune != commune:
        raise NotFound("No such statement line")
    return line


def set_line_status(session: Session, line: StatementLineRow, status: str) -> None:
    line.status = status
    session.flush()
