"""Reading and writing charges, profiles, invoices, payments and settlements in the billing
database."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import and_, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from contracts.billing import (
    OPEN_STATUSES,
    BillingProfile,
    BillingProfileInput,
    ChargeQuery,
    ChargeRecorded,
    ChargeSnapshot,
    ChargeStatus,
    ChargeView,
    CreditNoteLineView,
    CreditNoteView,
    Direction,
    DocumentRef,
    ImportResult,
    InvoiceIssued,
    InvoiceLineView,
    InvoicePaid,
    InvoiceQuery,
    InvoiceSnapshot,
    InvoiceStatus,
    InvoiceSummary,
    InvoiceView,
    Party,
    PaymentRecorded,
    PaymentSnapshot,
    PaymentView,
    Position,
    SettlementCompleted,
    SettlementSnapshot,
    SettlementView,
    SkippedPair,
    StatementLineView,
    Totals,
    Transfer,
    VatBreakdown,
    VatRegime,
)
from contracts.errors import NotFound
from infra.communes import communes
from infra.database import UnitOfWork, insert_new
from infra.paging import one_page
from services.billing import domain
from services.billing.bank_statements import ParsedStatement
from services.billing.metrics import INVOICED_CENTS, INVOICES_ISSUED, PAID_CENTS
from services.billing.models import (
    BankStatementRow,
    BillingProfileRow,
    ChargeRow,
    CreditNoteRow,
    InvoiceLineRow,
    InvoiceRow,
    NumberSequence,
    PaymentRow,
    SettlementAllocationRow,
    SettlementRow,
    SettlementTransferRow,
    StatementLineRow,
)


def _new_id() -> str:
    return str(uuid.uuid4())


def commune_name(code: str) -> str:
    commune = communes().get(code)
    return commune.name if commune else code


# -- charges ----------------------------------------------------------------------------


def record_charges(
    tx: UnitOfWork, drafts: Sequence[domain.ChargeDraft], event_id: str
) -> list[str]:
    """Stores the charges not stored yet (by source reference) and emits charge.recorded for
    each new one; returns their ids. A source line seen before, even in an event with
    another id, is not charged again."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": _new_id(),
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
        }
        for draft in drafts
    ]
    inserted = set(insert_new(tx.session, ChargeRow.__table__, rows, returning="id"))
    recorded = [
        (row, draft) for row, draft in zip(rows, drafts, strict=True) if row["id"] in inserted
    ]
    tx.emit_all(
        ChargeRecorded,
        [
            ChargeSnapshot(
                charge_id=row["id"],
                kind=draft.kind,
                supplier_commune=draft.supplier,
                customer_commune=draft.customer,
                source_reference=draft.source_reference,
                amount_cents=draft.amount_cents,
                period=draft.period,
            )
            for row, draft in recorded
        ],
    )
    return [row["id"] for row, _ in recorded]


def charges_of(
    session: Session, commune: str, query: ChargeQuery
) -> tuple[list[ChargeView], str | None]:
    invoice_id = (
        select(InvoiceLineRow.invoice_id)
        .where(InvoiceLineRow.charge_id == ChargeRow.id)
        .scalar_subquery()
    )
    stmt = select(ChargeRow, invoice_id.label("invoice_id"))
    if query.direction == Direction.ISSUED:
        stmt = stmt.where(ChargeRow.supplier_commune == commune)
    elif query.direction == Direction.RECEIVED:
        stmt = stmt.where(ChargeRow.customer_commune == commune)
    else:
        stmt = stmt.where(
            or_(ChargeRow.supplier_commune == commune, ChargeRow.customer_commune == commune)
        )
    invoiced = exists().where(InvoiceLineRow.charge_id == ChargeRow.id)
    if query.status == ChargeStatus.UNINVOICED:
        stmt = stmt.where(~invoiced)
    elif query.status == ChargeStatus.INVOICED:
        stmt = stmt.where(invoiced)
    if query.period is not None:
        stmt = stmt.where(ChargeRow.period == query.period)
    rows, next_cursor = one_page(
        session,
        stmt.order_by(ChargeRow.charge_date, ChargeRow.source_reference),
        query.cursor,
        query.limit,
        rows=True,
    )
    views = [
        ChargeView(
            id=row.id,
            kind=row.kind,
            supplier_commune=row.supplier_commune,
            customer_commune=row.customer_commune,
            source_reference=row.source_reference,
            description=row.description,
            quantity=domain.plain_quantity(row.quantity),
            unit=row.unit,
            unit_price_cents=row.unit_price_cents,
            amount_cents=row.amount_cents,
            currency=row.currency,
            charge_date=row.charge_date,
            period=row.period,
            order_reference=row.order_reference,
            status=ChargeStatus.INVOICED if invoice else ChargeStatus.UNINVOICED,
            invoice_id=invoice,
            recorded_at=row.recorded_at,
        )
        for row, invoice in rows
    ]
    return views, next_cursor


# -- billing profiles -------------------------------------------------------------------


def profile_of(session: Session, commune: str) -> BillingProfileRow | None:
    return session.get(BillingProfileRow, commune)


def save_profile(
    session: Session, commune: str, profile: BillingProfileInput, user_id: str | None
) -> BillingProfileRow:
    row = session.get(BillingProfileRow, commune, with_for_update=True)
    if row is None:
        row = BillingProfileRow(commune=commune)
        session.add(row)
    row.legal_name = profile.legal_name or f"Commune de {commune_name(commune)}"
    row.siret = domain.compact_digits(profile.siret)
    row.iban = domain.compact_digits(profile.iban).upper()
    row.bic = profile.bic.strip().upper()
    row.street = profile.address.street
    row.additional_street = profile.address.additional_street
    row.postal_code = profile.address.postal_code
    row.city = profile.address.city
    row.country_code = profile.address.country_code
    row.email = profile.email
    row.service_code = profile.service_code
    row.service_code_required = profile.service_code_required
    row.vat_regime = profile.vat_regime.value
    row.updated_at = datetime.now(UTC)
    row.updated_by = user_id
    session.flush()
    return row


def _vat_number(row: BillingProfileRow) -> str | None:
    # a VAT number only where VAT is charged: EN 16931 forbids one on "not subject" invoices
    if row.vat_regime == VatRegime.STANDARD.value:
        return domain.french_vat_number(row.siret[:9])
    return None


def _address(row: BillingProfileRow) -> dict:
    return {
        "street": row.street,
        "additional_street": row.additional_street,
        "postal_code": row.postal_code,
        "city": row.city,
        "country_code": row.country_code,
    }


def profile_view(row: BillingProfileRow) -> BillingProfile:
    return BillingProfile(
        commune=row.commune,
        commune_name=commune_name(row.commune),
        siren=row.siret[:9],
        siret=row.siret,
        iban=row.iban,
        bic=row.bic,
        address=_address(row),
        legal_name=row.legal_name,
        email=row.email,
        service_code=row.service_code,
        service_code_required=row.service_code_required,
        vat_regime=row.vat_regime,
        vat_number=_vat_number(row),
        updated_at=row.updated_at,
    )


def party_of(
    row: BillingProfileRow, *, as_supplier: bool, engagement_number: str | None = None
) -> Party:
    """A commune as an invoice names it; the supplier's bank details are where to pay."""
    return Party(
        insee_code=row.commune,
        name=commune_name(row.commune),
        legal_name=row.legal_name,
        siren=row.siret[:9],
        siret=row.siret,
        address=_address(row),
        vat_number=_vat_number(row),
        service_code=None if as_supplier else row.service_code,
        engagement_number=None if as_supplier else engagement_number,
        iban=row.iban if as_supplier else None,
        bic=row.bic if as_supplier else None,
        email=row.email,
    )


# -- numbering --------------------------------------------------------------------------


def locked_sequence(session: Session, supplier: str, year: int, series: str) -> NumberSequence:
    """The numbering sequence of a supplier, year and series, locked until the transaction
    ends (FOR UPDATE; SQLite's BEGIN IMMEDIATE already holds the database): concurrent
    issuers wait for each other, and a rollback gives the numbers back, leaving no gap."""
    insert_new(
        session,
        NumberSequence.__table__,
        [{"supplier_commune": supplier, "year": year, "series": series, "last_number": 0}],
    )
    return session.scalars(
        select(NumberSequence)
        .where(
            NumberSequence.supplier_commune == supplier,
            NumberSequence.year == year,
            NumberSequence.series == series,
        )
        .with_for_update()
    ).one()


# -- invoices ---------------------------------------------------------------------------


def suppliers_to_invoice(session: Session, period: str, only: str | None) -> list[str]:
    stmt = (
        select(ChargeRow.supplier_commune)
        .where(
            ChargeRow.period == period,
            ~exists().where(InvoiceLineRow.charge_id == ChargeRow.id),
        )
        .distinct()
        .order_by(ChargeRow.supplier_commune)
    )
    if only is not None:
        stmt = stmt.where(ChargeRow.supplier_commune == only)
    return list(session.scalars(stmt))


def bulk_insert(session: Session, table, rows: list[dict], column_types: dict[str, str]) -> None:
    """Many rows in one statement. PostgreSQL gets them as one JSON document turned back
    into rows on the server: psycopg2 cannot COPY under eventlet, and a many-row VALUES or
    one array per column costs far more to build and adapt. SQLite gets an executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(table.insert(), rows)
        return
    columns = ", ".join(column_types)
    record = ", ".join(f"{name} {kind}" for name, kind in column_types.items())
    session.execute(
        text(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} "
            f"FROM json_to_recordset(CAST(:rows AS json)) AS r({record})"
        ),
        {"rows": json.dumps(rows, default=str)},
    )


class Parties:
    """Billing profiles as invoices name them, read once per billing run."""

    def __init__(self, session: Session):
        self.session = session
        self.profiles: dict[str, BillingProfileRow | None] = {}
        self.dumped: dict[tuple[str, bool], dict] = {}

    def load(self, communes: Iterable[str]) -> None:
        missing = [c for c in communes if c not in self.profiles]
        if missing:
            found = self.session.scalars(
                select(BillingProfileRow).where(BillingProfileRow.commune.in_(missing))
            )
            self.profiles.update(dict.fromkeys(missing))
            self.profiles.update({row.commune: row for row in found})

    def party(self, commune: str, as_supplier: bool, engagement: str | None = None) -> dict:
        key = (commune, as_supplier)
        if key not in self.dumped:
            row = self.profiles[commune]
            self.dumped[key] = party_of(row, as_supplier=as_supplier).model_dump(mode="json")
        return self.dumped[key] | ({"engagement_number": engagement} if engagement else {})


def issue_invoices(
    tx: UnitOfWork, supplier: str, period: str, issue_date: date, parties: Parties
) -> tuple[list[InvoiceSummary], list[SkippedPair]]:
    """Issues one invoice per customer of `supplier` with uninvoiced charges in `period`.
    The numbering sequence is locked first, so a concurrent run of this supplier is done
    before its charges are read, and this one sees only what that one left uninvoiced."""
    session = tx.session
    sequence = locked_sequence(session, supplier, issue_date.year, domain.INVOICE_SERIES)
    charges = session.execute(
        select(
            ChargeRow.id,
            ChargeRow.customer_commune,
            ChargeRow.charge_date,
            ChargeRow.source_reference,
            ChargeRow.kind,
            ChargeRow.amount_cents,
            ChargeRow.order_reference,
        ).where(
            ChargeRow.period == period,
            ChargeRow.supplier_commune == supplier,
            ~exists().where(InvoiceLineRow.charge_id == ChargeRow.id),
        )
    ).all()
    by_customer: dict[str, list] = defaultdict(list)
    for charge in charges:
        by_customer[charge.customer_commune].append(charge)
    parties.load([supplier, *by_customer])
    seller = parties.profiles[supplier]
    now = datetime.now(UTC)
    due_date = domain.due_date_for(issue_date)
    invoices, lines, snapshots, summaries, skipped = [], [], [], [], []
    for customer in sorted(by_customer):
        items = by_customer[customer]
        buyer = parties.profiles[customer]
        if seller is None or buyer is None:
            skipped.append(
                SkippedPair(
                    supplier_commune=supplier,
                    customer_commune=customer,
                    charges=len(items),
                    reason=f"{customer if seller else supplier} has no billing profile yet",
                )
            )
            continue
        items.sort(key=lambda c: domain.line_order(c.charge_date, c.source_reference, c.kind))
        category, rate = domain.vat_of(VatRegime(seller.vat_regime))
        totals = domain.totals_of((c.amount_cents, category, rate) for c in items)
        order_reference = domain.common_order_reference(c.order_reference for c in items)
        sequence.last_number += 1
        invoice_id = _new_id()
        number = domain.document_number(supplier, issue_date.year, sequence.last_number)
        invoices.append(
            {
                "id": invoice_id,
                "number": number,
                "supplier_commune": supplier,
                "customer_commune": customer,
                "period": period,
                "issue_date": issue_date,
                "due_date": due_date,
                "currency": "EUR",
                "supplier": parties.party(supplier, as_supplier=True),
                "customer": parties.party(customer, False, order_reference),
                "buyer_reference": buyer.service_code,
                "order_reference": order_reference,
                "vat_category": category,
                "vat_rate": rate,
                "net_cents": totals.net_cents,
                "vat_cents": totals.vat_cents,
                "total_cents": totals.total_cents,
                "vat_breakdown": [b.model_dump(mode="json") for b in totals.breakdown],
                "credited_cents": 0,
                "paid_cents": 0,
                "settled_cents": 0,
                "status": InvoiceStatus.ISSUED.value,
                "issued_at": now,
                "paid_at": None,
            }
        )
        lines += [
            {"invoice_id": invoice_id, "line_number": n, "charge_id": c.id}
            for n, c in enumerate(items, start=1)
        ]
        summaries.append(
            InvoiceSummary(
                id=invoice_id,
                number=number,
                period=period,
                issue_date=issue_date,
                due_date=due_date,
                supplier_commune=supplier,
                customer_commune=customer,
                total_cents=totals.total_cents,
                balance_cents=totals.total_cents,
                status=InvoiceStatus.ISSUED,
                lines=len(items),
            )
        )
        snapshots.append(
            InvoiceSnapshot(
                invoice_id=invoice_id,
                number=number,
                supplier_commune=supplier,
                customer_commune=customer,
                period=period,
                issue_date=issue_date,
                due_date=due_date,
                total_cents=totals.total_cents,
                balance_cents=totals.total_cents,
                status=InvoiceStatus.ISSUED,
            )
        )
    if invoices:
        session.execute(InvoiceRow.__table__.insert(), invoices)
        bulk_insert(
            session,
            InvoiceLineRow.__table__,
            lines,
            {"invoice_id": "text", "line_number": "integer", "charge_id": "text"},
        )
        tx.emit_all(InvoiceIssued, snapshots)
        issued_cents = sum(i["total_cents"] for i in invoices)
        tx.after_commit(lambda: INVOICED_CENTS.inc(issued_cents))
        tx.after_commit(lambda: INVOICES_ISSUED.inc(len(invoices)))
    return summaries, skipped


def snapshot_of(invoice: InvoiceRow) -> InvoiceSnapshot:
    return InvoiceSnapshot(
        invoice_id=invoice.id,
        number=invoice.number,
        supplier_commune=invoice.supplier_commune,
        customer_commune=invoice.customer_commune,
        period=invoice.period,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        total_cents=invoice.total_cents,
        balance_cents=max(0, balance(invoice)),
        status=invoice.status,
    )


def balance(invoice: InvoiceRow) -> int:
    return domain.balance_of(
        invoice.total_cents, invoice.credited_cents, invoice.paid_cents, invoice.settled_cents
    )


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


def summary_of(invoice: InvoiceRow, lines: int) -> InvoiceSummary:
    return InvoiceSummary(
        id=invoice.id,
        number=invoice.number,
        period=invoice.period,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        supplier_commune=invoice.supplier_commune,
        customer_commune=invoice.customer_commune,
        total_cents=invoice.total_cents,
        balance_cents=max(0, balance(invoice)),
        status=invoice.status,
        lines=lines,
    )


def invoices_of(
    session: Session, commune: str, query: InvoiceQuery
) -> tuple[list[InvoiceSummary], str | None]:
    stmt = select(InvoiceRow)
    if query.direction == Direction.ISSUED:
        stmt = stmt.where(InvoiceRow.supplier_commune == commune)
    elif query.direction == Direction.RECEIVED:
        stmt = stmt.where(InvoiceRow.customer_commune == commune)
    else:
        stmt = stmt.where(
            or_(InvoiceRow.supplier_commune == commune, InvoiceRow.customer_commune == commune)
        )
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
    page, next_cursor = one_page(
        session,
        stmt.order_by(InvoiceRow.issue_date.desc(), InvoiceRow.number.desc()),
        query.cursor,
        query.limit,
    )
    counts = line_counts(session, [r.id for r in page])
    return [summary_of(r, counts.get(r.id, 0)) for r in page], next_cursor


def get_invoice(session: Session, invoice_id: str, for_update: bool = False) -> InvoiceRow:
    stmt = select(InvoiceRow).where(InvoiceRow.id == invoice_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFound("No such invoice")
    return row


def lines_of(session: Session, invoice: InvoiceRow) -> list[InvoiceLineView]:
    """The invoice's lines, as its charges state them."""
    rows = session.execute(
        select(InvoiceLineRow.line_number, ChargeRow)
        .join(ChargeRow, ChargeRow.id == InvoiceLineRow.charge_id)
        .where(InvoiceLineRow.invoice_id == invoice.id)
        .order_by(InvoiceLineRow.line_number)
    ).all()
    return [
        InvoiceLineView(
            line=number,
            charge_id=charge.id,
            kind=charge.kind,
            description=charge.description,
            quantity=domain.plain_quantity(charge.quantity),
            unit=charge.unit,
            unit_price_cents=charge.unit_price_cents,
            amount_cents=charge.amount_cents,
            vat_category=invoice.vat_category,
            vat_rate=invoice.vat_rate,
            source_reference=charge.source_reference,
            order_reference=charge.order_reference,
        )
        for number, charge in rows
    ]


def credit_notes_of(session: Session, invoice_id: str) -> list[CreditNoteRow]:
    return list(
        session.scalars(
            select(CreditNoteRow)
            .where(CreditNoteRow.invoice_id == invoice_id)
            .order_by(CreditNoteRow.number)
        )
    )


def credited_per_line(notes: Iterable[CreditNoteRow]) -> dict[int, int]:
    credited: dict[int, int] = defaultdict(int)
    for note in notes:
        for line in note.lines:
            credited[line["invoice_line"]] += line["amount_cents"]
    return credited


def payment_view(payment: PaymentRow, invoice_number: str) -> PaymentView:
    return PaymentView(
        id=payment.id,
        invoice_id=payment.invoice_id,
        invoice_number=invoice_number,
        amount_cents=payment.amount_cents,
        date=payment.payment_date,
        reference=payment.reference,
        source=payment.source,
        recorded_at=payment.recorded_at,
    )


def invoice_view(session: Session, invoice: InvoiceRow) -> InvoiceView:
    notes = credit_notes_of(session, invoice.id)
    credited = credited_per_line(notes)
    payments = session.scalars(
        select(PaymentRow)
        .where(PaymentRow.invoice_id == invoice.id)
        .order_by(PaymentRow.payment_date, PaymentRow.recorded_at)
    )
    remaining = balance(invoice)
    return InvoiceView(
        id=invoice.id,
        number=invoice.number,
        period=invoice.period,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        supplier=invoice.supplier,
        customer=invoice.customer,
        buyer_reference=invoice.buyer_reference,
        order_reference=invoice.order_reference,
        lines=[
            line.model_copy(update={"credited_cents": credited.get(line.line, 0)})
            for line in lines_of(session, invoice)
        ],
        totals=Totals(
            net_cents=invoice.net_cents,
            vat_cents=invoice.vat_cents,
            total_cents=invoice.total_cents,
            credited_cents=invoice.credited_cents,
            paid_cents=invoice.paid_cents,
            settled_cents=invoice.settled_cents,
        ),
        vat_breakdown=[VatBreakdown.model_validate(b) for b in invoice.vat_breakdown],
        status=invoice.status,
        balance_cents=max(0, remaining),
        overpaid_cents=max(0, -remaining),
        credit_notes=[
            DocumentRef(
                id=n.id, number=n.number, issue_date=n.issue_date, total_cents=n.total_cents
            )
            for n in notes
        ],
        payments=[payment_view(p, invoice.number) for p in payments],
    )


def refresh_status(tx: UnitOfWork, invoice: InvoiceRow) -> None:
    """Recomputes the status after a credit, payment or settlement; announces it paid."""
    was = invoice.status
    invoice.status = domain.status_of(
        invoice.total_cents, invoice.credited_cents, invoice.paid_cents, invoice.settled_cents
    ).value
    if invoice.status == InvoiceStatus.PAID.value and was != InvoiceStatus.PAID.value:
        invoice.paid_at = datetime.now(UTC)
        tx.emit(InvoicePaid, snapshot_of(invoice))


# -- credit notes -----------------------------------------------------------------------


def creditable_lines(session: Session, invoice: InvoiceRow) -> list[domain.CreditableLine]:
    credited = credited_per_line(credit_notes_of(session, invoice.id))
    return [
        domain.CreditableLine(
            line=line.line,
            description=line.description,
            amount_cents=line.amount_cents,
            credited_cents=credited.get(line.line, 0),
            vat_category=line.vat_category,
            vat_rate=line.vat_rate,
        )
        for line in lines_of(session, invoice)
    ]


def issue_credit_note(
    tx: UnitOfWork,
    invoice: InvoiceRow,
    credited: Sequence[tuple[domain.CreditableLine, int]],
    reason: str,
    issue_date: date,
    user_id: str | None,
) -> CreditNoteRow:
    totals = domain.totals_of((cents, line.vat_category, line.vat_rate) for line, cents in credited)
    sequence = locked_sequence(
        tx.session, invoice.supplier_commune, issue_date.year, domain.CREDIT_NOTE_SERIES
    )
    sequence.last_number += 1
    note = CreditNoteRow(
        id=_new_id(),
        number=domain.document_number(
            invoice.supplier_commune,
            issue_date.year,
            sequence.last_number,
            domain.CREDIT_NOTE_SERIES,
        ),
        invoice_id=invoice.id,
        supplier_commune=invoice.supplier_commune,
        customer_commune=invoice.customer_commune,
        issue_date=issue_date,
        reason=reason,
        net_cents=totals.net_cents,
        vat_cents=totals.vat_cents,
        total_cents=totals.total_cents,
        vat_breakdown=[b.model_dump(mode="json") for b in totals.breakdown],
        lines=[
            {
                "line": n,
                "invoice_line": line.line,
                "description": line.description,
                "amount_cents": cents,
                "vat_category": line.vat_category,
                "vat_rate": str(line.vat_rate) if line.vat_rate is not None else None,
            }
            for n, (line, cents) in enumerate(credited, start=1)
        ],
        issued_at=datetime.now(UTC),
        issued_by=user_id,
    )
    tx.session.add(note)
    invoice.credited_cents += totals.total_cents
    refresh_status(tx, invoice)
    return note


def get_credit_note(session: Session, credit_note_id: str) -> CreditNoteRow:
    note = session.get(CreditNoteRow, credit_note_id)
    if note is None:
        raise NotFound("No such credit note")
    return note


def credit_note_view(session: Session, note: CreditNoteRow) -> CreditNoteView:
    invoice = session.get(InvoiceRow, note.invoice_id)
    return CreditNoteView(
        id=note.id,
        number=note.number,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        invoice_issue_date=invoice.issue_date,
        issue_date=note.issue_date,
        reason=note.reason,
        supplier=invoice.supplier,
        customer=invoice.customer,
        lines=[
            CreditNoteLineView(
                line=line["line"],
                invoice_line=line["invoice_line"],
                description=line["description"],
                amount_cents=line["amount_cents"],
                vat_category=line["vat_category"],
                vat_rate=Decimal(line["vat_rate"]) if line["vat_rate"] is not None else None,
            )
            for line in note.lines
        ],
        totals=Totals(
            net_cents=note.net_cents, vat_cents=note.vat_cents, total_cents=note.total_cents
        ),
        vat_breakdown=[VatBreakdown.model_validate(b) for b in note.vat_breakdown],
    )


# -- payments ---------------------------------------------------------------------------


def apply_payment(
    tx: UnitOfWork,
    invoice: InvoiceRow,
    amount_cents: int,
    paid_on: date,
    reference: str,
    source: str,
    user_id: str | None,
    statement_line_id: str | None = None,
) -> PaymentRow:
    """Records a payment on a locked invoice; what exceeds the balance stays as overpaid."""
    payment = PaymentRow(
        id=_new_id(),
        invoice_id=invoice.id,
        amount_cents=amount_cents,
        payment_date=paid_on,
        reference=reference[:140],
        source=source,
        statement_line_id=statement_line_id,
        recorded_at=datetime.now(UTC),
        recorded_by=user_id,
    )
    tx.session.add(payment)
    invoice.paid_cents += amount_cents
    tx.after_commit(lambda: PAID_CENTS.inc(amount_cents))
    tx.emit(
        PaymentRecorded,
        PaymentSnapshot(
            payment_id=payment.id,
            invoice_id=invoice.id,
            invoice_number=invoice.number,
            supplier_commune=invoice.supplier_commune,
            customer_commune=invoice.customer_commune,
            amount_cents=amount_cents,
            date=paid_on,
            balance_cents=max(0, balance(invoice)),
        ),
    )
    refresh_status(tx, invoice)
    return payment


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


def payer_directory(session: Session) -> tuple[dict[str, str], dict[str, str]]:
    """(IBAN -> commune, commune -> name) of every commune with a billing profile."""
    ibans, names = {}, {}
    for commune, account in session.execute(
        select(BillingProfileRow.commune, BillingProfileRow.iban)
    ):
        ibans[account] = commune
        names[commune] = commune_name(commune)
    return ibans, names


def open_invoice(invoice: InvoiceRow) -> domain.OpenInvoice:
    return domain.OpenInvoice(
        id=invoice.id,
        number=invoice.number,
        customer=invoice.customer_commune,
        balance_cents=balance(invoice),
        due_date=invoice.due_date,
    )


def add_statement(session: Session, commune: str, fmt: str, reference: str | None, user_id):
    statement = BankStatementRow(
        id=_new_id(),
        commune=commune,
        format=fmt,
        reference=reference,
        imported_at=datetime.now(UTC),
        imported_by=user_id,
    )
    session.add(statement)
    session.flush()
    return statement


def add_statement_line(session: Session, statement_id: str, commune: str, credit) -> str | None:
    """Stores a received credit unless this commune already has it; returns its id."""
    inserted = insert_new(
        session,
        StatementLineRow.__table__,
        [
            {
                "id": _new_id(),
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


def statement_line_view(session: Session, line: StatementLineRow) -> StatementLineView:
    payments = session.execute(
        select(PaymentRow, InvoiceRow.number)
        .join(InvoiceRow, InvoiceRow.id == PaymentRow.invoice_id)
        .where(PaymentRow.statement_line_id == line.id)
        .order_by(PaymentRow.recorded_at)
    ).all()
    return StatementLineView(
        id=line.id,
        booking_date=line.booking_date,
        amount_cents=line.amount_cents,
        counterparty_name=line.counterparty_name,
        counterparty_iban=line.counterparty_iban,
        remittance=line.remittance,
        bank_reference=line.bank_reference,
        status=line.status,
        payments=[payment_view(p, number) for p, number in payments],
    )


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


def record_statement(
    tx: UnitOfWork, commune: str, parsed: ParsedStatement, user_id: str | None
) -> ImportResult:
    """Stores a statement's credits not seen before and pays with each the invoices it
    matches; the others wait, unmatched, for a finance officer."""
    session = tx.session
    statement = add_statement(session, commune, parsed.format, parsed.reference, user_id)
    ibans, names = payer_directory(session)
    matched, unmatched, duplicates = [], [], 0
    for credit in parsed.credits:
        line_id = add_statement_line(session, statement.id, commune, credit)
        if line_id is None:
            duplicates += 1
            continue
        received = domain.ReceivedCredit(
            credit.amount_cents,
            credit.counterparty_name,
            credit.counterparty_iban,
            credit.remittance,
        )
        # an invoice cancelled or settled takes no payment, even when the remittance names it
        named = [
            invoice
            for invoice in invoices_by_number(
                session, commune, domain.invoice_numbers_in(credit.remittance)
            )
            if invoice.status not in (InvoiceStatus.CANCELLED.value, InvoiceStatus.SETTLED.value)
        ]
        payer = None if named else domain.counterparty_of(received, ibans, names)
        of_payer = open_invoices_between(session, commune, payer) if payer else []
        by_id = {invoice.id: invoice for invoice in (*named, *of_payer)}
        allocations = domain.match_credit(
            received, [open_invoice(i) for i in named], [open_invoice(i) for i in of_payer]
        )
        line = statement_line_for_update(session, line_id, commune)
        for invoice_id, cents in allocations:
            apply_payment(
                tx,
                by_id[invoice_id],
                cents,
                credit.booking_date,
                credit.remittance or credit.bank_reference or "",
                "statement",
                user_id,
                statement_line_id=line_id,
            )
        line.status = "matched" if allocations else "unmatched"
        session.flush()
        (matched if allocations else unmatched).append(statement_line_view(session, line))
    return ImportResult(
        statement_id=statement.id,
        format=parsed.format,
        lines=len(parsed.credits),
        matched=matched,
        unmatched=unmatched,
        duplicates=duplicates,
        ignored=parsed.ignored,
    )


# -- statements of account and aging ----------------------------------------------------


def movements_between(session: Session, commune: str, other: str) -> list[domain.Movement]:
    """Everything that changed what `other` owes `commune`, both ways."""
    pair = or_(
        and_(InvoiceRow.supplier_commune == commune, InvoiceRow.customer_commune == other),
        and_(InvoiceRow.supplier_commune == other, InvoiceRow.customer_commune == commune),
    )
    invoices = {row.id: row for row in session.scalars(select(InvoiceRow).where(pair))}
    moves = []
    for inv in invoices.values():
        sign = 1 if inv.supplier_commune == commune else -1
        kind = "invoice_issued" if sign > 0 else "invoice_received"
        moves.append(
            domain.Movement(
                inv.issue_date, kind, inv.number, f"Facture {inv.number}", sign * inv.total_cents
            )
        )
    if not invoices:
        return moves
    ids = list(invoices)
    for note in session.scalars(select(CreditNoteRow).where(CreditNoteRow.invoice_id.in_(ids))):
        sign = 1 if note.supplier_commune == commune else -1
        moves.append(
            domain.Movement(
                note.issue_date,
                "credit_note_issued" if sign > 0 else "credit_note_received",
                note.number,
                f"Avoir sur {invoices[note.invoice_id].number} : {note.reason}",
                -sign * note.total_cents,
            )
        )
    for pay in session.scalars(select(PaymentRow).where(PaymentRow.invoice_id.in_(ids))):
        inv = invoices[pay.invoice_id]
        sign = 1 if inv.supplier_commune == commune else -1
        moves.append(
            domain.Movement(
                pay.payment_date,
                "payment_received" if sign > 0 else "payment_sent",
                inv.number,
                f"Paiement {pay.reference}".strip(),
                -sign * pay.amount_cents,
            )
        )
    allocations = session.execute(
        select(SettlementAllocationRow, SettlementRow.created_at, SettlementRow.period)
        .join(SettlementRow, SettlementRow.id == SettlementAllocationRow.settlement_id)
        .where(SettlementAllocationRow.invoice_id.in_(ids))
    ).all()
    for allocation, created_at, period in allocations:
        inv = invoices[allocation.invoice_id]
        sign = 1 if inv.supplier_commune == commune else -1
        how = "par virement de compensation" if allocation.transfer_id else "par compensation"
        moves.append(
            domain.Movement(
                domain.paris_date(created_at),
                "settlement",
                inv.number,
                f"Réglée {how} (compensation {period})",
                -sign * allocation.amount_cents,
            )
        )
    return moves


def open_balances(session: Session, commune: str, receivable: bool) -> list[tuple[str, date, int]]:
    """(counterparty, due date, balance) of the open invoices the commune issued or received."""
    mine = InvoiceRow.supplier_commune if receivable else InvoiceRow.customer_commune
    other = InvoiceRow.customer_commune if receivable else InvoiceRow.supplier_commune
    rows = session.execute(
        select(
            other,
            InvoiceRow.due_date,
            InvoiceRow.total_cents
            - InvoiceRow.credited_cents
            - InvoiceRow.paid_cents
            - InvoiceRow.settled_cents,
        ).where(mine == commune, InvoiceRow.status.in_([s.value for s in OPEN_STATUSES]))
    ).all()
    return [(cp, due, int(cents)) for cp, due, cents in rows]


# -- settlements ------------------------------------------------------------------------


def settle_period(tx: UnitOfWork, period: str, user_id: str | None) -> SettlementView | None:
    """Settles every open invoice of the period and records how: positions, transfers and
    the audit trail. None when nothing is open."""
    session = tx.session
    # one statement locks, reads and settles what is open (an open invoice was never part
    # of a settlement, so its open amount is all it has left): a concurrent settlement
    # waits, then finds nothing open; a concurrent payment lands wholly before or after
    invoices = InvoiceRow.__table__.c
    rows = session.execute(
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
    if not rows:
        return None
    # a debtor's oldest invoices first: those are what its transfers carry
    debts = [
        domain.OpenDebt(invoice_id, supplier, customer, int(cents))
        for customer, _, _, invoice_id, supplier, cents in sorted(map(tuple, rows))
    ]
    positions = domain.net_positions((d.supplier, d.customer, d.open_cents) for d in debts)
    transfers = [
        (_new_id(), payer, payee, cents)
        for payer, payee, cents in domain.settling_transfers(positions)
    ]
    allocations = domain.allocate_settlement(debts, transfers)
    sequence = (
        session.scalar(
            select(func.max(SettlementRow.sequence)).where(SettlementRow.period == period)
        )
        or 0
    ) + 1
    carried = sum(cents for _, _, _, cents in transfers)
    settlement = SettlementRow(
        id=_new_id(),
        period=period,
        sequence=sequence,
        positions=[{"commune": c, "net_cents": p} for c, p in positions.items()],
        invoices_settled=len(debts),
        compensated_cents=sum(d.open_cents for d in debts) - carried,
        created_at=datetime.now(UTC),
        created_by=user_id,
    )
    session.add(settlement)
    session.flush()
    bulk_insert(
        session,
        SettlementTransferRow.__table__,
        [
            {
                "id": key,
                "settlement_id": settlement.id,
                "payer": payer,
                "payee": payee,
                "amount_cents": cents,
            }
            for key, payer, payee, cents in transfers
        ],
        {
            "id": "text",
            "settlement_id": "text",
            "payer": "text",
            "payee": "text",
            "amount_cents": "bigint",
        },
    )
    parts: dict[str, int] = defaultdict(int)
    trail = []
    for invoice_id, cents, key in allocations:
        parts[invoice_id] += 1
        trail.append(
            {
                "settlement_id": settlement.id,
                "invoice_id": invoice_id,
                "part": parts[invoice_id],
                "amount_cents": cents,
                "transfer_id": key,
            }
        )
    bulk_insert(
        session,
        SettlementAllocationRow.__table__,
        trail,
        {
            "settlement_id": "text",
            "invoice_id": "text",
            "part": "integer",
            "amount_cents": "bigint",
            "transfer_id": "text",
        },
    )
    view = settlement_view(
        settlement,
        [Transfer(id=k, payer=a, payee=b, amount_cents=c) for k, a, b, c in transfers],
        created=True,
    )
    tx.emit(
        SettlementCompleted,
        SettlementSnapshot(
            settlement_id=settlement.id,
            period=period,
            positions=view.positions,
            transfers=view.transfers,
            invoices_settled=settlement.invoices_settled,
            compensated_cents=settlement.compensated_cents,
        ),
    )
    return view


def settlement_view(
    settlement: SettlementRow, transfers: list[Transfer], created: bool
) -> SettlementView:
    return SettlementView(
        id=settlement.id,
        period=settlement.period,
        sequence=settlement.sequence,
        created_at=settlement.created_at,
        created=created,
        positions=[Position.model_validate(p) for p in settlement.positions],
        transfers=transfers,
        invoices_settled=settlement.invoices_settled,
        compensated_cents=settlement.compensated_cents,
    )


def last_settlement(session: Session, period: str) -> SettlementView | None:
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
    return settlement_view(
        settlement,
        [
            Transfer(id=t.id, payer=t.payer, payee=t.payee, amount_cents=t.amount_cents)
            for t in transfers
        ],
        created=False,
    )
