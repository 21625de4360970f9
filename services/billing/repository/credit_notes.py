"""Credit notes in the billing database: corrections that lower what an invoice still owes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.errors import NotFound
from services.billing.models import CreditNoteRow, InvoiceRow


def add_credit_note(session: Session, invoice: InvoiceRow, columns: dict) -> CreditNoteRow:
    """Stores a credit note of the locked `invoice`, and lowers what it owes by its total."""
    note = CreditNoteRow(**columns)
    session.add(note)
    invoice.credited_cents += note.total_cents
    return note


def credit_notes_of(session: Session, invoice_id: str) -> list[CreditNoteRow]:
    return list(
        session.scalars(
            select(CreditNoteRow)
            .where(CreditNoteRow.invoice_id == invoice_id)
            .order_by(CreditNoteRow.number)
        )
    )


def get_credit_note(session: Session, credit_note_id: str) -> CreditNoteRow:
    note = session.get(CreditNoteRow, credit_note_id)
    if note is None:
        raise NotFound("No such credit note")
    return note
