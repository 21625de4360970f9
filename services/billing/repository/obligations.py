"""The transfers an effective netting leaves to pay: obligations of a payer to a payee,
open until the payee records the money received or its bank statement shows it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Row, and_, or_, select
from sqlalchemy.orm import Session

from contracts.errors import NotFound
from services.billing.models import SettlementRow, SettlementTransferRow

_T = SettlementTransferRow


def obligations_of(session: Session, commune: str) -> list[Row]:
    """(transfer, settled on) of every transfer the commune pays or receives, open first."""
    return list(
        session.execute(
            select(_T, SettlementRow.created_at)
            .join(SettlementRow, SettlementRow.id == _T.settlement_id)
            .where(or_(_T.payer == commune, _T.payee == commune), _T.due_date.is_not(None))
            .order_by(_T.paid_on.is_not(None), _T.due_date, _T.id)
        ).all()
    )


def obligation_for_update(session: Session, transfer_id: str) -> SettlementTransferRow:
    row = session.scalars(select(_T).where(_T.id == transfer_id).with_for_update()).one_or_none()
    if row is None or row.due_date is None:
        raise NotFound("No such transfer")
    return row


def open_obligation(
    session: Session, payee: str, payer: str, amount_cents: int
) -> SettlementTransferRow | None:
    """The oldest open transfer of exactly that amount from `payer` to `payee`, locked."""
    return session.scalars(
        select(_T)
        .where(
            _T.payee == payee,
            _T.payer == payer,
            _T.amount_cents == amount_cents,
            _T.due_date.is_not(None),
            _T.paid_on.is_(None),
        )
        .order_by(_T.due_date, _T.id)
        .limit(1)
        .with_for_update()
    ).one_or_none()


def mark_paid(
    transfer: SettlementTransferRow,
    day: date | None,
    reference: str | None,
    user_id: str | None,
    line_id: str | None = None,
) -> None:
    """Paid on `day` (None: open again, its statement line unmatched)."""
    transfer.paid_on = day
    transfer.paid_reference = reference[:140] if reference is not None else None
    transfer.paid_recorded_by = user_id
    transfer.statement_line_id = line_id


def obligations_of_line(session: Session, line_id: str) -> list[SettlementTransferRow]:
    return list(
        session.scalars(select(_T).where(_T.statement_line_id == line_id).with_for_update())
    )


def obligations_between(session: Session, commune: str, other: str) -> list[Row]:
    """(transfer, settled at) of the transfers between two communes, either way."""
    pair = or_(
        and_(_T.payer == commune, _T.payee == other),
        and_(_T.payer == other, _T.payee == commune),
    )
    return list(
        session.execute(
            select(_T, SettlementRow.created_at)
            .join(SettlementRow, SettlementRow.id == _T.settlement_id)
            .where(pair, _T.due_date.is_not(None))
        ).all()
    )


def open_obligations(session: Session, commune: str, receivable: bool) -> list[tuple]:
    """(counterparty, due date, cents) of the open transfers the commune receives (or pays)."""
    mine, other = (_T.payee, _T.payer) if receivable else (_T.payer, _T.payee)
    rows = session.execute(
        select(other, _T.due_date, _T.amount_cents).where(
            mine == commune, _T.due_date.is_not(None), _T.paid_on.is_(None)
        )
    ).all()
    return [(cp, due, int(cents)) for cp, due, cents in rows]
