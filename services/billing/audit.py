"""An operator's check of what billing has issued: every invoice and credit note of a
period, as its UBL and its CII are generated today from the stored rows, validated against
the XSDs and the EN 16931 and French schematrons (`validation.py`). For deployments that
upgraded from versions whose documents did not meet them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from services.billing import cii, repository, ubl, views
from services.billing.validation import cii_problems, problems


@dataclass(frozen=True)
class Checked:
    kind: str  # invoice, credit note
    number: str
    problems: list[str]


def _checked(kind: str, number: str, ubl_document: bytes, cii_document: bytes) -> Checked:
    try:
        found = problems(ubl_document) + cii_problems(cii_document)
    except Exception as exc:  # a document that cannot even be read is a failure to report
        found = [f"unreadable: {exc}"]
    return Checked(kind, number, found)


def documents_of_period(session: Session, period: str) -> Iterator[Checked]:
    """Each invoice of `period` and each of its credit notes, checked, by number."""
    for invoice in repository.invoices_of_period(session, period):
        view = views.invoice_view(session, invoice)
        yield _checked("invoice", view.number, ubl.invoice_xml(view), cii.invoice_xml(view))
        for note in repository.credit_notes_of(session, invoice.id):
            note_view = views.credit_note_view(session, note)
            yield _checked(
                "credit note",
                note_view.number,
                ubl.credit_note_xml(note_view),
                cii.credit_note_xml(note_view),
            )
