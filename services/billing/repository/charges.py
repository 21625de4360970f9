"""Charges in the billing database: stored once per source line, read by page and by run."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Row, exists, select
from sqlalchemy.orm import Session

from contracts.billing import ChargeQuery, ChargeStatus, Direction
from infra.paging import as_party, one_page
from services.billing import domain
from services.billing.models import ChargeRow, InvoiceLineRow

# a commune issues as the supplier (the lender) and receives as the customer (the borrower)
_SIDES = {Direction.ISSUED: "lender", Direction.RECEIVED: "borrower"}
_INVOICED = exists().where(InvoiceLineRow.charge_id == ChargeRow.id)


def of_commune(row: type, commune: str, direction: Direction | None) -> ColumnElement:
    """Rows (charges or invoices) that `commune` issued, received, or either (None)."""
    return as_party(commune, _SIDES.get(direction), row.customer_commune, row.supplier_commune)


def charge_rows(drafts: Sequence[domain.ChargeDraft], event_id: str, now: datetime) -> list[dict]:
    """The charges rows of `drafts`, each with a new id, in their order."""
    return [
        {
            "id": domain.new_id(),
            "kind": draft.kind.value,
            "supplier_commune": draft.supplier,
            "customer_commune": draft.customer,
            "source_reference": draft.source_reference,
            "source_event_id": event_id,
            "description": draft.description,
            "quantity": draft.quantity,
            "unit": draft.unit,
            "unit_price_cents": draft.unit_price_cents,
            "amount_cents": draft.amount_cents,
            "currency": "EUR",
            "charge_date": draft.charge_date,
            "period": draft.period,
            "order_reference": draft.order_reference,
            "recorded_at": now,
            "service_start": draft.service_start,
            "service_end": draft.service_end,
            "contest": draft.contest,
            "agreement_reference": draft.agreement_reference,
            "listing_id": draft.listing_id,
        }
        for draft in drafts
    ]


def charges_of(session: Session, commune: str, query: ChargeQuery) -> tuple[list[Row], str | None]:
    """A page of (charge, id of the invoice that lists it or None) of a commune."""
    invoice_id = (
        select(InvoiceLineRow.invoice_id)
        .where(InvoiceLineRow.charge_id == ChargeRow.id)
        .scalar_subquery()
    )
    stmt = select(ChargeRow, invoice_id.label("invoice_id"))
    stmt = stmt.where(of_commune(ChargeRow, commune, query.direction))
    if query.status == ChargeStatus.UNINVOICED:
        stmt = stmt.where(~_INVOICED)
    elif query.status == ChargeStatus.INVOICED:
        stmt = stmt.where(_INVOICED)
    if query.period is not None:
        stmt = stmt.where(ChargeRow.period == query.period)
    return one_page(
        session,
        stmt.order_by(ChargeRow.charge_date, ChargeRow.source_reference),
        query.cursor,
        query.limit,
        rows=True,
    )


def suppliers_to_invoice(session: Session, period: str, only: str | None) -> list[str]:
    stmt = (
        select(ChargeRow.supplier_commune)
        .where(ChargeRow.period == period, ~_INVOICED)
        .distinct()
        .order_by(ChargeRow.supplier_commune)
    )
    if only is not None:
        stmt = stmt.where(ChargeRow.supplier_commune == only)
    return list(session.scalars(stmt))


def uninvoiced_charges(session: Session, supplier: str, period: str) -> list[Row]:
    """What a billing run of `supplier` reads of its charges not invoiced yet."""
    return list(
        session.execute(
            select(
                ChargeRow.id,
                ChargeRow.customer_commune,
                ChargeRow.charge_date,
                ChargeRow.source_reference,
                ChargeRow.kind,
                ChargeRow.amount_cents,
                ChargeRow.order_reference,
                ChargeRow.contest,
                ChargeRow.agreement_reference,
            ).where(
                ChargeRow.period == period,
                ChargeRow.supplier_commune == supplier,
                ~_INVOICED,
            )
        ).all()
    )
