"""Helpers for the billing integration tests: a migrated billing database, the service's
entrypoints on it, billing profiles and charges."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from nameko.testing.services import worker_factory
from sqlalchemy import select
from stdnum import iban

from contracts.billing import BillingProfileInput, ChargeKind
from infra.communes import communes
from infra.database import DatabaseAccess, make_engine
from services.billing import domain, repository
from services.billing.models import CreditNoteRow, InvoiceRow
from services.billing.service import Service, charge_at_commit
from services.billing.validation import problems
from tests.support.schema import migrated

_RIB_LETTERS = {
    letter: str(value)
    for value, letters in enumerate(
        ["AJ", "BKS", "CLT", "DMU", "ENV", "FOW", "GPX", "HQY", "IRZ"], 1
    )
    for letter in letters
}


def iban_for(insee: str) -> str:
    """A valid French IBAN (Banque de France, with its RIB key) of a commune's account."""
    bank, branch, account = "30001", "00794", f"C{insee}00000"[:11].ljust(11, "0")
    digits = "".join(_RIB_LETTERS.get(c, c) for c in account)
    key = 97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(digits)) % 97)
    bban = f"{bank}{branch}{account}{key:02d}"
    return f"FR{iban.calc_check_digits('FR00' + bban)}{bban}"


def billing_database(url: str) -> DatabaseAccess:
    migrated("billing", url)
    return DatabaseAccess(make_engine(url), producer="billing", correlation_id="test", consumer="t")


def billing_service(db: DatabaseAccess) -> Service:
    """The billing service's entrypoints, called directly, on a real database."""
    return worker_factory(Service, db=db)


def caller(commune: str, *roles: str) -> dict:
    return {"user_id": f"user-{commune}", "commune": commune, "roles": list(roles)}


def declare_profiles(
    db: DatabaseAccess, codes: list[str], declared: dict[str, dict] | None = None
) -> None:
    """A valid billing profile for each commune of `codes`, with what `declared` adds to
    a commune's (its VAT regime, service code...)."""
    declared = declared or {}
    with db.transaction() as tx:
        for code in codes:
            siren = communes().get(code).siren
            profile = BillingProfileInput(
                siret=domain.siret_for(siren),
                iban=iban_for(code),
                bic="BDFEFRPPCCT",
                address={"street": "Hôtel de ville", "postal_code": "42000", "city": "Loire"},
                **declared.get(code, {}),
            )
            columns = domain.profile_columns(code, profile, None, datetime.now(UTC))
            repository.save_profile(tx.session, code, columns)


def add_charges(db: DatabaseAccess, pairs: list[tuple[str, str, int]], charge_date: date) -> None:
    """One charge per (supplier, customer, cents), as if an event had just brought it."""
    with db.transaction() as tx:
        charge_at_commit(
            tx,
            [
                domain.ChargeDraft(
                    kind=ChargeKind.DAMAGE,
                    supplier=supplier,
                    customer=customer,
                    source_reference=f"test:{uuid.uuid4()}",
                    description="Dommage",
                    quantity=Decimal(1),
                    unit="C62",
                    unit_price_cents=cents,
                    amount_cents=cents,
                    charge_date=charge_date,
                    order_reference=None,
                )
                for supplier, customer, cents in pairs
            ],
            str(uuid.uuid4()),
        )


def assert_every_document_valid(db: DatabaseAccess) -> int:
    """Every invoice and credit note in the database, as its UBL, passes the UBL XSD and
    the EN 16931 and French BR-FR rules; returns how many were checked."""
    service = billing_service(db)
    with db.reading() as session:
        invoices = session.execute(select(InvoiceRow.id, InvoiceRow.supplier_commune)).all()
        notes = session.execute(select(CreditNoteRow.id, CreditNoteRow.supplier_commune)).all()
    for invoice_id, supplier in invoices:
        document = service.invoice_ubl(caller(supplier, "finance"), invoice_id).encode()
        assert problems(document) == [], invoice_id
    for note_id, supplier in notes:
        document = service.credit_note_ubl(caller(supplier, "finance"), note_id).encode()
        assert problems(document) == [], note_id
    return len(invoices) + len(notes)
