"""Tables of the billing database."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from infra.types import UtcDateTime

metadata = MetaData()

Id = String(36)
Commune = String(5)


class Base(DeclarativeBase):
    metadata = metadata


class ChargeRow(Base):
    """One billable source line (a rental, a damage, a fee, a timesheet). Never changes;
    the unique source reference is what makes each source line charged once."""

    __tablename__ = "charges"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    supplier_commune: Mapped[str] = mapped_column(Commune)
    customer_commune: Mapped[str] = mapped_column(Commune, index=True)
    source_reference: Mapped[str] = mapped_column(String(120), unique=True)
    source_event_id: Mapped[str] = mapped_column(Id)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    unit: Mapped[str] = mapped_column(String(3))
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    charge_date: Mapped[date] = mapped_column(Date)
    period: Mapped[str] = mapped_column(String(7))
    order_reference: Mapped[str | None] = mapped_column(String(50))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # the service charged, in Paris days (both included): a loan's hand-over to its return
    service_start: Mapped[date | None] = mapped_column(Date)
    service_end: Mapped[date | None] = mapped_column(Date)
    # the customer's reserve stated at the source (a damage contested at the return): the
    # invoice that lists it opens a dispute on its line
    contest: Mapped[str | None] = mapped_column(Text)
    # the agreement between the two communes that covers it (BT-12 of its invoice)
    agreement_reference: Mapped[str | None] = mapped_column(String(50))
    # the listing lent (none for an expert's days): its category chooses the imputation
    listing_id: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (Index("ix_charges_period_supplier", "period", "supplier_commune"),)


class BillingProfileRow(Base):
    """What a commune declared to issue and receive invoices; copied onto each invoice."""

    __tablename__ = "billing_profiles"

    commune: Mapped[str] = mapped_column(Commune, primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(200))
    siret: Mapped[str] = mapped_column(String(14))
    iban: Mapped[str] = mapped_column(String(34))
    bic: Mapped[str] = mapped_column(String(11))
    street: Mapped[str] = mapped_column(String(200))
    additional_street: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(5))
    city: Mapped[str] = mapped_column(String(100))
    country_code: Mapped[str] = mapped_column(String(2))
    email: Mapped[str | None] = mapped_column(String(200))
    service_code: Mapped[str | None] = mapped_column(String(100))
    service_code_required: Mapped[bool] = mapped_column(Boolean)
    # false: one invoice per pair whatever the engagement numbers (a buyer requiring none)
    one_invoice_per_reference: Mapped[bool] = mapped_column(Boolean, default=True)
    vat_regime: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(36))


class NumberSequence(Base):
    """The last number given per supplier, year and series; its row is locked while a
    number is taken, so numbers are gapless and never given twice."""

    __tablename__ = "number_sequences"

    supplier_commune: Mapped[str] = mapped_column(Commune, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    series: Mapped[str] = mapped_column(String(16), primary_key=True)  # invoice, credit_note
    last_number: Mapped[int] = mapped_column(Integer)


class InvoiceRow(Base):
    """An issued invoice. The document columns never change after issue; only what is
    settled of it (credited, paid, settled) and its status move."""

    __tablename__ = "invoices"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    supplier_commune: Mapped[str] = mapped_column(Commune)
    customer_commune: Mapped[str] = mapped_column(Commune)
    period: Mapped[str] = mapped_column(String(7))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    supplier: Mapped[dict] = mapped_column(JSON)
    customer: Mapped[dict] = mapped_column(JSON)
    buyer_reference: Mapped[str | None] = mapped_column(String(100))
    order_reference: Mapped[str | None] = mapped_column(String(50))
    # the agreement its lines are under (BT-12): at most one per invoice
    agreement_reference: Mapped[str | None] = mapped_column(String(50))
    vat_category: Mapped[str] = mapped_column(String(2))  # of every line: the supplier's regime
    vat_rate: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    net_cents: Mapped[int] = mapped_column(BigInteger)
    vat_cents: Mapped[int] = mapped_column(BigInteger)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    vat_breakdown: Mapped[list] = mapped_column(JSON)
    credited_cents: Mapped[int] = mapped_column(BigInteger)
    paid_cents: Mapped[int] = mapped_column(BigInteger)
    settled_cents: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # the customer's payment order (mandat de paiement), recorded by its finance team
    payment_order_number: Mapped[str | None] = mapped_column(String(50))
    payment_order_date: Mapped[date | None] = mapped_column(Date)
    payment_order_recorded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    payment_order_recorded_by: Mapped[str | None] = mapped_column(String(36))

    # no index on status, and (PostgreSQL, in the migration) half-empty pages: paying or
    # settling an invoice writes its new version on the same page and no index entry (HOT)
    __table_args__ = (
        Index("ix_invoices_supplier_period", "supplier_commune", "period"),
        Index("ix_invoices_customer_period", "customer_commune", "period"),
        Index("ix_invoices_period", "period"),
    )


class InvoiceLineRow(Base):
    """One line per charge, in the invoice's order. The charge (never changed) carries what
    the line says; its unique id here is what makes a charge invoiced once."""

    __tablename__ = "invoice_lines"

    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    line_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    charge_id: Mapped[str] = mapped_column(ForeignKey("charges.id"), unique=True)


class CreditNoteRow(Base):
    """A correction of an issued invoice: it lowers what is owed, the invoice stays as is."""

    __tablename__ = "credit_notes"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    supplier_commune: Mapped[str] = mapped_column(Commune)
    customer_commune: Mapped[str] = mapped_column(Commune)
    issue_date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    net_cents: Mapped[int] = mapped_column(BigInteger)
    vat_cents: Mapped[int] = mapped_column(BigInteger)
    total_cents: Mapped[int] = mapped_column(BigInteger)
    vat_breakdown: Mapped[list] = mapped_column(JSON)
    lines: Mapped[list] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    issued_by: Mapped[str | None] = mapped_column(String(36))


class BankStatementRow(Base):
    __tablename__ = "bank_statements"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    commune: Mapped[str] = mapped_column(Commune)
    format: Mapped[str] = mapped_column(String(10))
    reference: Mapped[str | None] = mapped_column(String(100))
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    imported_by: Mapped[str | None] = mapped_column(String(36))


class StatementLineRow(Base):
    """A credit on the commune's bank account; its fingerprint is unique per commune, so a
    statement imported twice records nothing twice."""

    __tablename__ = "statement_lines"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    statement_id: Mapped[str] = mapped_column(ForeignKey("bank_statements.id"))
    commune: Mapped[str] = mapped_column(Commune)
    fingerprint: Mapped[str] = mapped_column(String(64))
    booking_date: Mapped[date] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    counterparty_name: Mapped[str] = mapped_column(String(200))
    counterparty_iban: Mapped[str | None] = mapped_column(String(34))
    remittance: Mapped[str] = mapped_column(Text)
    bank_reference: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10))  # matched, unmatched

    __table_args__ = (
        UniqueConstraint("commune", "fingerprint"),
        Index("ix_statement_lines_commune_status", "commune", "status"),
    )


class PaymentRow(Base):
    """Money received on an invoice. Never deleted: a payment recorded by mistake is
    reversed (why, by whom, when), which gives the invoice its balance back."""

    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    payment_date: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(140))
    source: Mapped[str] = mapped_column(String(10))  # manual, statement
    statement_line_id: Mapped[str | None] = mapped_column(
        ForeignKey("statement_lines.id"), index=True
    )
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    recorded_by: Mapped[str | None] = mapped_column(String(36))
    # recorded knowing it exceeds the balance: the excess is the payer's credit
    overpayment: Mapped[bool] = mapped_column(Boolean, default=False)
    reversed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reversed_by: Mapped[str | None] = mapped_column(String(36))
    reversal_reason: Mapped[str | None] = mapped_column(Text)


class SettlementRow(Base):
    """One multilateral netting of the open invoices of a period."""

    __tablename__ = "settlements"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    period: Mapped[str] = mapped_column(String(7))
    sequence: Mapped[int] = mapped_column(Integer)
    positions: Mapped[list] = mapped_column(JSON)
    invoices_settled: Mapped[int] = mapped_column(Integer)
    compensated_cents: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str | None] = mapped_column(String(36))
    proposal_id: Mapped[str | None] = mapped_column(Id)  # the proposal every party accepted

    __table_args__ = (UniqueConstraint("period", "sequence"),)


class SettlementTransferRow(Base):
    """What a netting leaves to pay: an obligation of the payer to the payee, tracked until
    the payee records it paid or its bank statement shows it."""

    __tablename__ = "settlement_transfers"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    settlement_id: Mapped[str] = mapped_column(ForeignKey("settlements.id"), index=True)
    payer: Mapped[str] = mapped_column(Commune)
    payee: Mapped[str] = mapped_column(Commune)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date | None] = mapped_column(Date)
    paid_on: Mapped[date | None] = mapped_column(Date)
    paid_reference: Mapped[str | None] = mapped_column(String(140))
    paid_recorded_by: Mapped[str | None] = mapped_column(String(36))
    statement_line_id: Mapped[str | None] = mapped_column(String(36))


class NettingProposalRow(Base):
    """A netting proposed to the communes whose invoices it settles: it takes effect only
    once every one of them accepted it, before its deadline."""

    __tablename__ = "netting_proposals"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    period: Mapped[str | None] = mapped_column(String(7))
    up_to: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))  # proposed, effective, declined, expired, void
    deadline: Mapped[date] = mapped_column(Date)
    positions: Mapped[list] = mapped_column(JSON)
    transfers: Mapped[list] = mapped_column(JSON)
    invoices: Mapped[int] = mapped_column(Integer)
    compensated_cents: Mapped[int] = mapped_column(BigInteger)
    proposed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    proposed_by: Mapped[str | None] = mapped_column(String(36))
    proposed_by_commune: Mapped[str] = mapped_column(Commune)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closing_reason: Mapped[str | None] = mapped_column(Text)
    settlement_id: Mapped[str | None] = mapped_column(Id)


class NettingPartyRow(Base):
    __tablename__ = "netting_parties"

    proposal_id: Mapped[str] = mapped_column(ForeignKey("netting_proposals.id"), primary_key=True)
    commune: Mapped[str] = mapped_column(Commune, primary_key=True, index=True)
    decision: Mapped[str] = mapped_column(String(10))  # pending, accepted, declined
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(Text)


class NettingInvoiceRow(Base):
    """An invoice a proposal settles, and what it owed then: any change voids the proposal."""

    __tablename__ = "netting_invoices"

    proposal_id: Mapped[str] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[str] = mapped_column(Id, primary_key=True, index=True)
    open_cents: Mapped[int] = mapped_column(BigInteger)


class SettlementAllocationRow(Base):
    """The audit trail: which invoice, which amount, carried by which transfer (none: the
    amount was compensated by what its customer is owed). Written once, by the settlement
    that creates the rows it names, in the same transaction: no foreign keys, whose checks
    would cost a netting of 50,000 invoices more than everything else."""

    __tablename__ = "settlement_allocations"

    invoice_id: Mapped[str] = mapped_column(Id, primary_key=True)
    settlement_id: Mapped[str] = mapped_column(Id, primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)  # an invoice split over transfers
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    transfer_id: Mapped[str | None] = mapped_column(Id)


class DisputeRow(Base):
    """A line the customer contests: open until the supplier credits it or rejects the
    claim with its reasons. While open, its amount is shown apart and the invoice is kept
    out of nettings."""

    __tablename__ = "invoice_disputes"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))  # open, credited, rejected
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    opened_by: Mapped[str | None] = mapped_column(String(36))
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(36))
    resolution: Mapped[str | None] = mapped_column(Text)
    credit_note_id: Mapped[str | None] = mapped_column(Id)


class ListingCategoryRow(Base):
    """The category of each listing, kept from listing events: it chooses how a loan's lines
    are imputed in the accountant's export."""

    __tablename__ = "listing_categories"

    listing_id: Mapped[str] = mapped_column(Id, primary_key=True)
    owner_commune: Mapped[str] = mapped_column(Commune)
    category: Mapped[str] = mapped_column(String(40))
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ImputationRow(Base):
    """Where a commune's finance team imputes a category's receipts (titre) or expenses
    (mandat) in its M57 accounts, and in which budget; none stored: the default."""

    __tablename__ = "imputations"

    commune: Mapped[str] = mapped_column(Commune, primary_key=True)
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    side: Mapped[str] = mapped_column(String(6), primary_key=True)  # titre, mandat
    chapter: Mapped[str] = mapped_column(String(3))
    account: Mapped[str] = mapped_column(String(8))
    budget: Mapped[str] = mapped_column(String(60))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str | None] = mapped_column(String(36))


class AccountingExportRow(Base):
    """Each export of a period made by a commune: the file as given (its checksum names it)
    and its rows, so that the next export of the period says what was given before."""

    __tablename__ = "accounting_exports"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    commune: Mapped[str] = mapped_column(Commune)
    period: Mapped[str] = mapped_column(String(7))
    checksum: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(120))
    content: Mapped[str] = mapped_column(Text)
    rows: Mapped[list] = mapped_column(JSON)
    exported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    exported_by: Mapped[str | None] = mapped_column(String(36))

    __table_args__ = (Index("ix_accounting_exports_commune_period", "commune", "period"),)
