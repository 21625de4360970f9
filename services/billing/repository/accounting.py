"""The accountant's export in the billing database: listing categories, imputations, the
month's documents of a commune and the record of each export."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from contracts.listings import ListingSnapshot
from infra.database import upsert_latest
from services.billing.models import (
    AccountingExportRow,
    ChargeRow,
    CreditNoteRow,
    ImputationRow,
    InvoiceLineRow,
    InvoiceRow,
    ListingCategoryRow,
)


def keep_categories(session: Session, snapshots: Sequence[ListingSnapshot], now: datetime) -> None:
    """Each listing's category; listing events may come out of order: a later revision wins."""
    upsert_latest(
        session,
        ListingCategoryRow.__table__,
        [
            {
                "listing_id": s.listing_id,
                "owner_commune": s.owner_commune,
                "category": s.category,
                "revision": s.revision,
                "updated_at": now,
            }
            for s in snapshots
        ],
        key="listing_id",
        rank="revision",
    )


def imputations_of(session: Session, commune: str) -> list[ImputationRow]:
    return list(session.scalars(select(ImputationRow).where(ImputationRow.commune == commune)))


def save_imputations(session: Session, commune: str, rows: Sequence[dict]) -> None:
    """Replaces the commune's imputations of the (category, side) pairs given."""
    for row in rows:
        session.execute(
            delete(ImputationRow).where(
                ImputationRow.commune == commune,
                ImputationRow.category == row["category"],
                ImputationRow.side == row["side"],
            )
        )
    session.add_all(ImputationRow(commune=commune, **row) for row in rows)
    session.flush()


def invoices_issued_between(
    session: Session, commune: str, first: date, last: date
) -> list[InvoiceRow]:
    """The invoices `commune` issued or received, issued from `first` to `last`."""
    return list(
        session.scalars(
            select(InvoiceRow)
            .where(
                or_(InvoiceRow.supplier_commune == commune, InvoiceRow.customer_commune == commune),
                InvoiceRow.issue_date.between(first, last),
            )
            .order_by(InvoiceRow.issue_date, InvoiceRow.number)
        )
    )


def credit_notes_issued_between(
    session: Session, commune: str, first: date, last: date
) -> list[tuple[CreditNoteRow, InvoiceRow]]:
    """The credit notes `commune` issued or received from `first` to `last`, with their
    invoice."""
    stmt = (
        select(CreditNoteRow, InvoiceRow)
        .join(InvoiceRow, InvoiceRow.id == CreditNoteRow.invoice_id)
        .where(
            or_(
                CreditNoteRow.supplier_commune == commune,
                CreditNoteRow.customer_commune == commune,
            ),
            CreditNoteRow.issue_date.between(first, last),
        )
        .order_by(CreditNoteRow.issue_date, CreditNoteRow.number)
    )
    return [(note, invoice) for note, invoice in session.execute(stmt)]


def line_sources(
    session: Session, invoice_ids: Sequence[str]
) -> dict[str, dict[int, tuple[str, int, str | None]]]:
    """Per invoice, per line number: (kind, net cents, its listing's category or None)."""
    found: dict[str, dict[int, tuple[str, int, str | None]]] = defaultdict(dict)
    if not invoice_ids:
        return found
    stmt = (
        select(
            InvoiceLineRow.invoice_id,
            InvoiceLineRow.line_number,
            ChargeRow.kind,
            ChargeRow.amount_cents,
            ListingCategoryRow.category,
        )
        .join(ChargeRow, ChargeRow.id == InvoiceLineRow.charge_id)
        .outerjoin(ListingCategoryRow, ListingCategoryRow.listing_id == ChargeRow.listing_id)
        .where(InvoiceLineRow.invoice_id.in_(invoice_ids))
    )
    for invoice_id, line, kind, cents, category in session.execute(stmt):
        found[invoice_id][line] = (kind, cents, category)
    return found


def add_export(session: Session, columns: dict) -> AccountingExportRow:
    row = AccountingExportRow(**columns)
    session.add(row)
    session.flush()
    return row


def exports_of(session: Session, commune: str, period: str | None = None) -> list:
    """The commune's exports (of one period), latest first."""
    stmt = select(AccountingExportRow).where(AccountingExportRow.commune == commune)
    if period is not None:
        stmt = stmt.where(AccountingExportRow.period == period)
    return list(
        session.scalars(
            stmt.order_by(AccountingExportRow.exported_at.desc(), AccountingExportRow.id)
        )
    )


def get_export(session: Session, export_id: str) -> AccountingExportRow | None:
    return session.get(AccountingExportRow, export_id)
