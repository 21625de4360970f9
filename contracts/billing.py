"""Billing: charges, invoices, credit notes, payments, settlements. RPC schemas of the billing
service and its events."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.events import Event, Payload, register
from contracts.fields import INSEE, Day, Input, Text

PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"
CURRENCY = "EUR"
MAX_CENTS = 100_000_000_000  # a billion euros: anything larger is a typo
# UN/ECE recommendation 20 codes of invoice lines, named in French, singular and plural
UNIT_NAMES = {"DAY": ("jour", "jours"), "HUR": ("heure", "heures"), "C62": ("unité", "unités")}


def unit_name(code: str, quantity: Decimal | int | float | str) -> str:
    """'jour', 'jours' (French takes the singular below 2: '0,5 jour', '1,5 jour'); the PDF
    and the pages name a line's unit alike."""
    singular, plural = UNIT_NAMES.get(code, (code, code))
    return singular if Decimal(str(quantity)) < 2 else plural


MAX_LINES = 100_000  # of an invoice: a month's charges between two communes are far fewer

Period = Annotated[str, Field(pattern=PERIOD, description="a month, YYYY-MM")]
Cents = Annotated[int, Field(gt=0, le=MAX_CENTS)]


class ChargeKind(StrEnum):
    RENTAL = "rental"
    OPERATOR = "operator"
    DAMAGE = "damage"
    LATE_FEE = "late_fee"  # each started day after a loan's end, at the listing's rate
    CANCELLATION_FEE = "cancellation_fee"
    CONSULTING = "consulting"


class ChargeStatus(StrEnum):
    UNINVOICED = "uninvoiced"
    INVOICED = "invoiced"


class InvoiceStatus(StrEnum):
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    CANCELLED = "cancelled"  # wholly credited
    SETTLED = "settled"  # what was open was settled by compensation in a netting


class InvoiceAction(StrEnum):
    CREDIT = "credit"  # a credit note
    PAY = "pay"  # a payment received
    SETTLE = "settle"  # a netting
    REVERSE = "reverse"  # a payment reversed: what it paid is owed again


_ISSUED, _PARTLY, _PAID = InvoiceStatus.ISSUED, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID
_CANCELLED, _SETTLED = InvoiceStatus.CANCELLED, InvoiceStatus.SETTLED

# The invoice state machine: per action, the statuses it applies to and where each may go
# (the amounts decide which). An issued invoice never changes; these move what is left of it.
INVOICE_TRANSITIONS: dict[InvoiceAction, dict[InvoiceStatus, frozenset[InvoiceStatus]]] = {
    InvoiceAction.CREDIT: {
        _ISSUED: frozenset({_ISSUED, _CANCELLED}),
        _PARTLY: frozenset({_PARTLY, _PAID}),
    },
    # a paid invoice still takes a payment: what exceeds it stays as overpaid
    InvoiceAction.PAY: {
        _ISSUED: frozenset({_PARTLY, _PAID}),
        _PARTLY: frozenset({_PARTLY, _PAID}),
        _PAID: frozenset({_PAID}),
    },
    InvoiceAction.SETTLE: {_ISSUED: frozenset({_SETTLED}), _PARTLY: frozenset({_SETTLED})},
    # a reversed payment is owed again: a paid (or settled after a payment) invoice reopens
    InvoiceAction.REVERSE: {
        _PARTLY: frozenset({_ISSUED, _PARTLY}),
        _PAID: frozenset({_ISSUED, _PARTLY, _PAID}),
        _SETTLED: frozenset({_PARTLY, _SETTLED}),
    },
}

# what is still owed: what a credit note or a netting applies to
OPEN_STATUSES = tuple(INVOICE_TRANSITIONS[InvoiceAction.SETTLE])


def invoice_allows(status: str, action: InvoiceAction) -> bool:
    """Whether an invoice in `status` takes `action` (the pages show only those)."""
    return status in INVOICE_TRANSITIONS[action]


class VatRegime(StrEnum):
    NOT_SUBJECT = "not_subject"  # EN 16931 category O, with the exemption reason
    STANDARD = "standard"  # category S at the standard rate


class Direction(StrEnum):
    ISSUED = "issued"
    RECEIVED = "received"


# -- inputs -----------------------------------------------------------------------------


class Address(Input):
    street: str = Field(min_length=2, max_length=200)
    additional_street: str | None = Field(default=None, max_length=200)
    postal_code: str = Field(pattern=r"^\d{5}$")
    city: str = Field(min_length=1, max_length=100)
    country_code: Literal["FR"] = "FR"


class BillingProfileInput(Input):
    """What a commune's finance team declares to issue and receive invoices."""

    siret: str = Field(description="14 digits: the commune's SIREN and an establishment NIC")
    iban: str = Field(max_length=42)
    bic: str = Field(max_length=11)
    address: Address
    legal_name: Text | None = Field(
        default=None, max_length=200, description="default: Commune de <name>"
    )
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    service_code: str | None = Field(
        default=None,
        max_length=100,
        description="Chorus Pro service code, put on invoices it receives (BT-10)",
    )
    service_code_required: bool = Field(
        default=False, description="suppliers must quote the service code (Chorus Pro)"
    )
    one_invoice_per_reference: bool = Field(
        default=True,
        description="charges under different engagement numbers go on separate invoices "
        "(false: one invoice whatever the references, for a buyer that requires none)",
    )
    vat_regime: VatRegime = VatRegime.NOT_SUBJECT


class ChargeQuery(Input):
    status: ChargeStatus | None = None
    direction: Direction | None = None
    period: Period | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=100)


class BillingRunRequest(Input):
    period: Period


class InvoiceQuery(Input):
    direction: Direction | None = None
    status: InvoiceStatus | None = None
    period: Period | None = None
    counterparty: str | None = Field(default=None, pattern=INSEE)
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=100)


class CreditLine(Input):
    line: int = Field(ge=1, le=MAX_LINES, description="number of the invoice line credited")
    amount_cents: Cents = Field(description="net amount credited on that line")


class CreditNoteRequest(Input):
    reason: Text = Field(min_length=3, max_length=500)
    lines: list[CreditLine] = Field(
        default_factory=list,
        max_length=500,
        description="none: the whole invoice, while nothing of it is paid or credited",
    )


class PaymentRequest(Input):
    invoice_id: str = Field(min_length=1, max_length=36)
    amount_cents: Cents
    date: Day = Field(description="not in the future (Europe/Paris), not before the invoice")
    reference: str = Field(default="", max_length=140)
    overpayment: bool = Field(
        default=False,
        description="more than the balance was received, knowingly: the excess is the "
        "payer's credit; without it, more than the balance is refused (422)",
    )
    confirm_duplicate: bool = Field(
        default=False,
        description="record it although a payment of the same amount, date and reference is "
        "on the invoice; without it, such a payment is refused (409)",
    )


class LineMatch(Input):
    invoice_id: str = Field(min_length=1, max_length=36)
    overpayment: bool = Field(
        default=False, description="the credit exceeds the balance, knowingly (see payments)"
    )


class DisputeRequest(Input):
    line: int = Field(ge=1, le=MAX_LINES, description="the invoice line contested")
    reason: Text = Field(min_length=3, max_length=1000)
    amount_cents: Cents | None = Field(
        default=None, description="the net amount contested; default: what the line carries"
    )


class DisputeResolution(Input):
    outcome: Literal["credit", "reject"]
    reason: Text = Field(min_length=3, max_length=1000)
    amount_cents: Cents | None = Field(
        default=None, description="credit: the net amount credited (default: as contested)"
    )


class PaymentReversal(Input):
    reason: Text = Field(min_length=3, max_length=500)


class PaymentOrderRequest(Input):
    """The customer's payment order (mandat de paiement) of an invoice it received."""

    number: Text = Field(min_length=1, max_length=50)
    date: Day = Field(description="not in the future (Europe/Paris), not before the invoice")


class ReportFormat(StrEnum):
    """How a report answers: JSON, or CSV (what `Accept: text/csv` asks for too)."""

    JSON = "json"
    CSV = "csv"


class StatementQuery(Input):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)

    counterparty: str = Field(pattern=INSEE)
    from_: Day | None = Field(default=None, alias="from")
    to: Day | None = None
    format: ReportFormat = ReportFormat.JSON


class AgingQuery(Input):
    as_of: Day | None = Field(default=None, description="default: today (Europe/Paris)")
    direction: Literal["receivable", "payable"] = Field(
        default="receivable", description="what others owe the caller, or what it owes"
    )
    format: ReportFormat = ReportFormat.JSON


class SettlementRequest(Input):
    """A netting to propose: the open, undisputed invoices of a period (or issued up to a
    day) between the communes taking part."""

    period: Period | None = Field(default=None, description="the invoices of this month")
    up_to: Day | None = Field(default=None, description="or: the invoices issued up to this day")
    communes: list[Annotated[str, Field(pattern=INSEE)]] | None = Field(
        default=None,
        max_length=5000,
        description="the communes taking part (the proposer's own among them); default: "
        "the proposer and every commune it has open invoices with (an operator: all)",
    )
    deadline: Day | None = Field(
        default=None, description="last day to accept (Europe/Paris); default: in 7 days"
    )

    @model_validator(mode="after")
    def _one_scope(self) -> SettlementRequest:
        if (self.period is None) == (self.up_to is None):
            raise ValueError("give either a period or up_to")
        return self


class SettlementDecision(Input):
    reason: Text | None = Field(default=None, max_length=500, description="why, when declining")


class TransferPayment(Input):
    date: Day = Field(description="when the transfer arrived: not in the future (Europe/Paris)")
    reference: str = Field(default="", max_length=140)


# -- views ------------------------------------------------------------------------------


class PostalAddress(BaseModel):
    street: str
    additional_street: str | None = None
    postal_code: str
    city: str
    country_code: str = "FR"


class BillingProfile(BaseModel):
    commune: str
    commune_name: str
    siren: str
    siret: str
    iban: str
    bic: str
    address: PostalAddress
    legal_name: str
    email: str | None = None
    service_code: str | None = None
    service_code_required: bool = False
    one_invoice_per_reference: bool = True
    vat_regime: VatRegime
    vat_number: str | None = None
    # what keeps it from producing a valid document (billing_profile_incomplete): the
    # invoices it would be on wait until it is fixed
    problems: list[dict] = []
    updated_at: datetime


class Party(BaseModel):
    """A commune as an invoice names it, frozen at issue."""

    insee_code: str
    name: str
    legal_name: str
    siren: str
    siret: str
    address: PostalAddress
    vat_number: str | None = None
    service_code: str | None = None
    engagement_number: str | None = None
    iban: str | None = None
    bic: str | None = None
    email: str | None = None


class ChargeView(BaseModel):
    id: str
    kind: ChargeKind
    supplier_commune: str
    customer_commune: str
    source_reference: str
    description: str
    quantity: Decimal
    unit: str
    unit_price_cents: int
    amount_cents: int
    currency: str = CURRENCY
    charge_date: date
    period: str
    order_reference: str | None
    agreement_reference: str | None = Field(
        default=None, description="the agreement between the two communes that covers it"
    )
    service_start: date | None = Field(
        default=None, description="first day of the service charged (hand-over), Paris"
    )
    service_end: date | None = Field(
        default=None, description="last day of the service charged (return), Paris, included"
    )
    status: ChargeStatus
    invoice_id: str | None = None
    recorded_at: datetime


class ChargePage(BaseModel):
    items: list[ChargeView]
    next_cursor: str | None


class VatBreakdown(BaseModel):
    category: str  # UNCL5305: O not subject, S standard
    rate: Decimal | None
    taxable_cents: int
    tax_cents: int
    exemption_reason: str | None = None
    exemption_reason_code: str | None = None


class Totals(BaseModel):
    net_cents: int
    vat_cents: int
    total_cents: int
    credited_cents: int = 0
    paid_cents: int = 0
    settled_cents: int = 0


class InvoiceLineView(BaseModel):
    line: int
    charge_id: str | None
    kind: str
    description: str
    quantity: Decimal
    unit: str  # UN/ECE rec. 20: DAY, HUR, C62
    unit_price_cents: int
    amount_cents: int
    vat_category: str
    vat_rate: Decimal | None
    source_reference: str
    order_reference: str | None = None
    credited_cents: int = 0
    # the period of the service the line charges (UBL BG-26), both days included
    service_start: date | None = None
    service_end: date | None = None


class DocumentRef(BaseModel):
    id: str
    number: str
    issue_date: date
    total_cents: int


class PaymentView(BaseModel):
    id: str
    invoice_id: str
    invoice_number: str
    amount_cents: int
    date: date
    reference: str
    source: str  # manual, statement
    statement_line_id: str | None = None
    recorded_at: datetime
    recorded_by: str | None = None
    overpayment: bool = False
    reversed_at: datetime | None = Field(
        default=None, description="set: the payment was reversed and counts no more"
    )
    reversed_by: str | None = None
    reversal_reason: str | None = None


class PaymentOrder(BaseModel):
    """The customer's payment order (mandat), as its finance team recorded it."""

    number: str
    date: date
    recorded_at: datetime
    recorded_by: str | None = None


class DisputeView(BaseModel):
    id: str
    invoice_id: str
    line: int
    amount_cents: int
    reason: str
    status: Literal["open", "credited", "rejected"]
    opened_at: datetime
    opened_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    credit_note_id: str | None = None


class InvoiceView(BaseModel):
    id: str
    number: str
    period: str
    issue_date: date
    due_date: date
    currency: str = CURRENCY
    supplier: Party
    customer: Party
    buyer_reference: str | None
    order_reference: str | None
    agreement_reference: str | None = Field(
        default=None,
        description="the agreement between the two communes its lines are under (BT-12)",
    )
    lines: list[InvoiceLineView]
    totals: Totals
    vat_breakdown: list[VatBreakdown]
    status: InvoiceStatus
    balance_cents: int
    overpaid_cents: int = 0
    payer_credit_cents: int = Field(
        default=0,
        description="what the customer overpaid on its other invoices from this supplier: "
        "its credit, to offer on this one",
    )
    credit_notes: list[DocumentRef] = []
    payments: list[PaymentView] = []
    payment_order: PaymentOrder | None = None
    disputes: list[DisputeView] = []
    disputed_cents: int = Field(default=0, description="contested on open disputes (net)")


class InvoiceSummary(BaseModel):
    id: str
    number: str
    period: str
    issue_date: date
    due_date: date
    supplier_commune: str
    customer_commune: str
    total_cents: int
    balance_cents: int
    status: InvoiceStatus
    lines: int


class InvoicePage(BaseModel):
    items: list[InvoiceSummary]
    next_cursor: str | None


class SkippedPair(BaseModel):
    supplier_commune: str
    customer_commune: str
    charges: int
    reason: str
    # billing_profile_incomplete: a profile cannot produce a valid document (errors: which
    # commune's field to fix); absent: a commune has no profile yet
    code: str | None = None
    errors: list[dict] = []


class BillingRunResult(BaseModel):
    period: str
    issue_date: date
    invoices: list[InvoiceSummary]
    skipped: list[SkippedPair] = []


PROFILE_INCOMPLETE = "billing_profile_incomplete"


def profile_blocked(run: dict) -> list[dict]:
    """The errors of a billing run's pairs held by a profile that cannot produce a valid
    invoice (a run's JSON result), one per field to fix: what makes its answer a 422."""
    found = {}
    for pair in run.get("skipped", []):
        if pair.get("code") == PROFILE_INCOMPLETE:
            found.update({error["field"]: error for error in pair.get("errors", [])})
    return list(found.values())


class InvoicePreview(BaseModel):
    """An invoice a billing run would issue (its number is given only when issued)."""

    supplier_commune: str
    customer_commune: str
    customer_name: str
    lines: int
    net_cents: int
    vat_cents: int
    total_cents: int


class BillingRunPreview(BaseModel):
    """What `POST /api/v1/billing/runs` would issue now: nothing is stored."""

    period: str
    issue_date: date
    invoices: list[InvoicePreview]
    skipped: list[SkippedPair] = []
    total_cents: int


class CreditNoteLineView(BaseModel):
    line: int
    invoice_line: int
    description: str
    amount_cents: int
    vat_category: str
    vat_rate: Decimal | None
    # the credited line's supply (absent from credit notes issued before they were kept)
    kind: str | None = None
    quantity: Decimal = Decimal(1)
    unit: str = "C62"
    service_start: date | None = None
    service_end: date | None = None


class CreditNoteView(BaseModel):
    id: str
    number: str
    invoice_id: str
    invoice_number: str
    invoice_issue_date: date
    issue_date: date
    reason: str
    currency: str = CURRENCY
    # the credited invoice's agreement (BT-12)
    agreement_reference: str | None = None
    supplier: Party
    customer: Party
    lines: list[CreditNoteLineView]
    totals: Totals
    vat_breakdown: list[VatBreakdown]


class StatementLineView(BaseModel):
    id: str
    booking_date: date
    amount_cents: int
    counterparty_name: str
    counterparty_iban: str | None
    remittance: str
    bank_reference: str | None
    status: Literal["matched", "unmatched"]
    payments: list[PaymentView] = []


class ImportResult(BaseModel):
    statement_id: str | None
    format: str
    lines: int
    matched: list[StatementLineView]
    unmatched: list[StatementLineView]
    duplicates: int
    ignored: int = Field(description="debits and zero lines: not payments received")


class UnmatchedPage(BaseModel):
    items: list[StatementLineView]


class StatementEntry(BaseModel):
    date: date
    kind: str
    reference: str
    description: str
    debit_cents: int  # raises what the counterparty owes the caller
    credit_cents: int  # lowers it
    balance_cents: int


class StatementOfAccount(BaseModel):
    # answered as `from`: the alias names it in the OpenAPI document too
    model_config = ConfigDict(populate_by_name=True)

    commune: str
    counterparty: str
    counterparty_name: str
    from_: date | None = Field(alias="from")
    to: date | None
    opening_balance_cents: int
    entries: list[StatementEntry]
    closing_balance_cents: int
    counterparty_credit_cents: int = Field(
        default=0, description="overpaid by the counterparty on the caller's invoices: its credit"
    )
    own_credit_cents: int = Field(
        default=0, description="overpaid by the caller on the counterparty's invoices"
    )


class AgingRow(BaseModel):
    counterparty: str
    counterparty_name: str
    disputed_cents: int = Field(
        default=0, description="contested, shown apart: not in the buckets, in the total"
    )
    not_due_cents: int
    days_0_30_cents: int
    days_31_60_cents: int
    days_61_90_cents: int
    days_over_90_cents: int
    total_cents: int


class AgingReport(BaseModel):
    commune: str
    as_of: date
    direction: str
    rows: list[AgingRow]
    totals: AgingRow


class Position(BaseModel):
    commune: str
    net_cents: int  # > 0: receives; < 0: pays


class Transfer(BaseModel):
    id: str | None = None
    payer: str
    payee: str
    amount_cents: int


class NettingStatus(StrEnum):
    PROPOSED = "proposed"  # waiting for every party's decision
    EFFECTIVE = "effective"  # every party accepted: invoices settled, transfers owed
    DECLINED = "declined"  # a party declined: nothing changed
    EXPIRED = "expired"  # the deadline passed first: nothing changed
    VOID = "void"  # one of its invoices changed (paid, credited, disputed): re-propose


class Decision(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class NettingParty(BaseModel):
    commune: str
    commune_name: str
    decision: Decision
    decided_at: datetime | None = None
    decided_by: str | None = None
    reason: str | None = None


class NettingInvoice(BaseModel):
    id: str
    number: str
    supplier_commune: str
    customer_commune: str
    due_date: date
    open_cents: int = Field(description="what it owed when proposed: what the netting settles")


class SettlementView(BaseModel):
    """A netting proposal as one party sees it: its own invoices, position and transfers
    (an operator sees them all)."""

    id: str
    period: str | None
    up_to: date | None = None
    status: NettingStatus
    deadline: date
    created_at: datetime
    created: bool = Field(default=False, description="true: proposed by this request")
    proposed_by_commune: str
    parties: list[NettingParty]
    positions: list[Position]
    transfers: list[Transfer]
    invoices: list[NettingInvoice]
    invoices_settled: int = Field(description="invoices of the whole netting")
    compensated_cents: int
    closing_reason: str | None = None
    settlement_id: str | None = Field(default=None, description="once effective")


class NettingPartyName(BaseModel):
    commune: str
    commune_name: str


class SettlementPreview(BaseModel):
    """What a proposal would be, before anyone is asked: nothing is stored."""

    period: str | None
    up_to: date | None = None
    deadline: date
    parties: list[NettingPartyName]
    positions: list[Position]
    transfers: list[Transfer]
    invoices_settled: int
    compensated_cents: int


class SettlementPage(BaseModel):
    items: list[SettlementView]


class Obligation(BaseModel):
    """A transfer a netting left to pay, tracked until the payee has the money."""

    id: str
    settlement_id: str
    payer: str
    payer_name: str
    payee: str
    payee_name: str
    amount_cents: int
    due_date: date | None
    status: Literal["open", "paid"]
    paid_on: date | None = None
    paid_reference: str | None = None


class ObligationPage(BaseModel):
    items: list[Obligation]


class DisputeRef(BaseModel):
    id: str
    invoice_id: str
    invoice_number: str
    supplier_commune: str
    customer_commune: str
    line: int
    amount_cents: int
    reason: str


class MoneyToWatch(BaseModel):
    """What a commune's finance team must act on or wait for: the dashboard's money part."""

    nettings_to_decide: list[SettlementView]
    transfers_to_pay: list[Obligation]
    transfers_to_receive: list[Obligation]
    disputes_to_answer: list[DisputeRef]
    disputes_raised: list[DisputeRef]


# -- events -----------------------------------------------------------------------------


class ChargeSnapshot(Payload):
    charge_id: str
    kind: ChargeKind
    supplier_commune: str
    customer_commune: str
    source_reference: str
    amount_cents: int
    currency: str = CURRENCY
    period: str


class InvoiceSnapshot(Payload):
    invoice_id: str
    number: str
    supplier_commune: str
    customer_commune: str
    period: str
    issue_date: date
    due_date: date
    total_cents: int
    balance_cents: int
    currency: str = CURRENCY
    status: InvoiceStatus


class _PaymentMoved(Payload):
    """A payment of an invoice, and what the invoice owes once it moved."""

    payment_id: str
    invoice_id: str
    invoice_number: str
    supplier_commune: str
    customer_commune: str
    amount_cents: int
    balance_cents: int
    currency: str = CURRENCY


class PaymentSnapshot(_PaymentMoved):
    date: date


class PaymentReversalSnapshot(_PaymentMoved):
    reason: str


class PaymentOrderSnapshot(Payload):
    invoice_id: str
    invoice_number: str
    supplier_commune: str
    customer_commune: str
    number: str
    date: date
    balance_cents: int


class SettlementSnapshot(Payload):
    settlement_id: str
    period: str
    positions: list[Position]
    transfers: list[Transfer]
    invoices_settled: int
    compensated_cents: int
    # the proposal every party accepted (its page), and those parties: a commune whose
    # position nets to zero is in no position but was a party all the same
    proposal_id: str | None = None
    parties: list[str] = []


class DisputeSnapshot(Payload):
    dispute_id: str
    invoice_id: str
    invoice_number: str
    supplier_commune: str
    customer_commune: str
    line: int
    amount_cents: int
    reason: str
    status: str
    resolution: str | None = None
    credit_note_id: str | None = None


class CreditNoteSnapshot(Payload):
    credit_note_id: str
    number: str
    invoice_id: str
    supplier_commune: str
    customer_commune: str
    total_cents: int
    reason: str
    currency: str = CURRENCY


class NettingSnapshot(Payload):
    settlement_id: str
    period: str | None
    up_to: date | None
    status: NettingStatus
    deadline: date
    parties: list[str]
    reason: str | None = None
    # who proposed it (its finance team is not asked: it proposed), and who declined it
    proposed_by: str | None = None
    proposed_by_commune: str | None = None
    declined_by_commune: str | None = None
    compensated_cents: int | None = None


class ObligationSnapshot(Payload):
    obligation_id: str
    settlement_id: str
    payer: str
    payee: str
    amount_cents: int
    paid_on: date
    currency: str = CURRENCY


@register
class InvoiceDisputed(Event):
    """The customer contests a line: the supplier answers by a credit note or a rejection."""

    TYPE = "invoice.disputed"
    payload: DisputeSnapshot


@register
class InvoiceDisputeResolved(Event):
    TYPE = "invoice.dispute_resolved"
    payload: DisputeSnapshot


@register
class CreditNoteIssued(Event):
    TYPE = "credit_note.issued"
    payload: CreditNoteSnapshot


@register
class SettlementProposed(Event):
    """Each party's finance team is asked to accept or decline before the deadline."""

    TYPE = "settlement.proposed"
    payload: NettingSnapshot


@register
class SettlementDeclined(Event):
    TYPE = "settlement.declined"
    payload: NettingSnapshot


@register
class SettlementVoided(Event):
    """An invoice of the proposal changed (paid, credited, disputed): nothing is settled."""

    TYPE = "settlement.voided"
    payload: NettingSnapshot


@register
class TransferPaid(Event):
    TYPE = "settlement.transfer_paid"
    payload: ObligationSnapshot


@register
class ChargeRecorded(Event):
    TYPE = "charge.recorded"
    payload: ChargeSnapshot


@register
class InvoiceIssued(Event):
    TYPE = "invoice.issued"
    payload: InvoiceSnapshot


@register
class PaymentRecorded(Event):
    TYPE = "payment.recorded"
    payload: PaymentSnapshot


@register
class PaymentReversed(Event):
    TYPE = "payment.reversed"
    payload: PaymentReversalSnapshot


@register
class PaymentOrdered(Event):
    """The customer says its payment order is issued: the supplier may expect the money."""

    TYPE = "invoice.payment_ordered"
    payload: PaymentOrderSnapshot


@register
class InvoicePaid(Event):
    TYPE = "invoice.paid"
    payload: InvoiceSnapshot


@register
class SettlementCompleted(Event):
    TYPE = "settlement.completed"
    payload: SettlementSnapshot
