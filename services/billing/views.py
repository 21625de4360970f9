"""What billing answers and announces, built from its rows: profiles, charges, invoices,
credit notes, payments, statement lines, settlements and the snapshots events carry."""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from contracts.billing import (
    BillingProfile,
    ChargeSnapshot,
    ChargeStatus,
    ChargeView,
    CreditNoteSnapshot,
    CreditNoteView,
    DisputeRef,
    DisputeSnapshot,
    DisputeView,
    DocumentRef,
    InvoiceLineView,
    InvoiceSnapshot,
    InvoiceSummary,
    InvoiceView,
    NettingInvoice,
    NettingParty,
    NettingSnapshot,
    Obligation,
    ObligationSnapshot,
    PaymentOrder,
    PaymentOrderSnapshot,
    PaymentReversalSnapshot,
    PaymentSnapshot,
    PaymentView,
    SettlementSnapshot,
    SettlementView,
    StatementLineView,
    Totals,
    Transfer,
)
from services.billing import domain, repository
from services.billing.models import (
    BillingProfileRow,
    ChargeRow,
    CreditNoteRow,
    DisputeRow,
    InvoiceRow,
    NettingProposalRow,
    PaymentRow,
    SettlementRow,
    SettlementTransferRow,
    StatementLineRow,
)

View = TypeVar("View", bound=BaseModel)


class _Seen:
    """A row as a view reads it: its attributes, and `more` for what the view names
    otherwise or the row does not have."""

    __slots__ = ("_more", "_row")

    def __init__(self, row: Any, more: dict[str, Any]):
        self._row, self._more = row, more

    def __getattr__(self, name: str) -> Any:
        if name in self._more:
            return self._more[name]
        return getattr(self._row, name)


def _view(model: type[View], row: Any, **more: Any) -> View:
    """`model` of the fields `row` names alike, and of `more`."""
    return model.model_validate(_Seen(row, more) if more else row, from_attributes=True)


def profile_view(row: BillingProfileRow) -> BillingProfile:
    return _view(
        BillingProfile,
        row,
        commune_name=domain.commune_name(row.commune),
        siren=row.siret[:9],
        address=domain.address_of(row),
        vat_number=domain.vat_number_of(row),
        problems=domain.profile_blockers(row, as_buyer=True),
    )


def charge_view(charge: ChargeRow, invoice_id: str | None) -> ChargeView:
    return _view(
        ChargeView,
        charge,
        quantity=domain.plain_quantity(charge.quantity),
        status=ChargeStatus.INVOICED if invoice_id else ChargeStatus.UNINVOICED,
        invoice_id=invoice_id,
    )


def charge_snapshot(charge_id: str, draft: domain.ChargeDraft) -> ChargeSnapshot:
    return ChargeSnapshot(
        charge_id=charge_id,
        kind=draft.kind,
        supplier_commune=draft.supplier,
        customer_commune=draft.customer,
        source_reference=draft.source_reference,
        amount_cents=draft.amount_cents,
        period=draft.period,
    )


# -- invoices ---------------------------------------------------------------------------


def summary_of(invoice: InvoiceRow | domain.NewInvoice, lines: int) -> InvoiceSummary:
    return _view(
        InvoiceSummary, invoice, balance_cents=max(0, domain.balance(invoice)), lines=lines
    )


def snapshot_of(invoice: InvoiceRow | domain.NewInvoice) -> InvoiceSnapshot:
    return _view(
        InvoiceSnapshot,
        invoice,
        invoice_id=invoice.id,
        balance_cents=max(0, domain.balance(invoice)),
    )


def invoice_lines(
    session: Session, invoice: InvoiceRow, notes: list | None = None
) -> list[InvoiceLineView]:
    """The invoice's lines, as its charges state them, with what was credited of each
    (`notes`: its credit notes, when the caller has read them already)."""
    if notes is None:
        notes = repository.credit_notes_of(session, invoice.id)
    credited = domain.credited_per_line(note.lines for note in notes)
    return [
        _view(
            InvoiceLineView,
            charge,
            line=number,
            charge_id=charge.id,
            quantity=domain.plain_quantity(charge.quantity),
            vat_category=invoice.vat_category,
            vat_rate=invoice.vat_rate,
            credited_cents=credited.get(number, 0),
        )
        for number, charge in repository.invoice_lines(session, invoice.id)
    ]


def invoice_view(session: Session, invoice: InvoiceRow) -> InvoiceView:
    remaining = domain.balance(invoice)
    notes = repository.credit_notes_of(session, invoice.id)  # read once: lines and references
    disputes = [_view(DisputeView, d) for d in repository.disputes_of(session, invoice.id)]
    return _view(
        InvoiceView,
        invoice,
        lines=invoice_lines(session, invoice, notes),
        totals=_view(Totals, invoice),
        balance_cents=max(0, remaining),
        overpaid_cents=max(0, -remaining),
        payer_credit_cents=domain.payer_credit(
            repository.overpaid_balances(
                session, invoice.supplier_commune, invoice.customer_commune, but=invoice.id
            )
        ),
        credit_notes=[_view(DocumentRef, note) for note in notes],
        payments=[
            payment_view(p, invoice.number) for p in repository.payments_of(session, invoice.id)
        ],
        payment_order=payment_order_of(invoice),
        disputes=disputes,
        disputed_cents=sum(d.amount_cents for d in disputes if d.status == "open"),
    )


def dispute_snapshot(dispute: DisputeRow, invoice: InvoiceRow) -> DisputeSnapshot:
    return _view(
        DisputeSnapshot,
        dispute,
        dispute_id=dispute.id,
        invoice_number=invoice.number,
        supplier_commune=invoice.supplier_commune,
        customer_commune=invoice.customer_commune,
    )


def dispute_ref(dispute: DisputeRow, invoice: InvoiceRow) -> DisputeRef:
    return _view(
        DisputeRef,
        dispute,
        invoice_number=invoice.number,
        supplier_commune=invoice.supplier_commune,
        customer_commune=invoice.customer_commune,
    )


def credit_note_snapshot(note: CreditNoteRow) -> CreditNoteSnapshot:
    return _view(CreditNoteSnapshot, note, credit_note_id=note.id)


def payment_order_of(invoice: InvoiceRow) -> PaymentOrder | None:
    if invoice.payment_order_number is None:
        return None
    return PaymentOrder(
        number=invoice.payment_order_number,
        date=invoice.payment_order_date,
        recorded_at=invoice.payment_order_recorded_at,
        recorded_by=invoice.payment_order_recorded_by,
    )


def payment_order_snapshot(invoice: InvoiceRow) -> PaymentOrderSnapshot:
    return PaymentOrderSnapshot(
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        supplier_commune=invoice.supplier_commune,
        customer_commune=invoice.customer_commune,
        number=invoice.payment_order_number,
        date=invoice.payment_order_date,
        balance_cents=max(0, domain.balance(invoice)),
    )


def invoice_views(session: Session, invoices: list[InvoiceRow]) -> list[InvoiceSummary]:
    counts = repository.line_counts(session, [r.id for r in invoices])
    return [summary_of(r, counts.get(r.id, 0)) for r in invoices]


def credit_note_view(session: Session, note: CreditNoteRow) -> CreditNoteView:
    invoice = session.get(InvoiceRow, note.invoice_id)
    return _view(
        CreditNoteView,
        note,
        invoice_number=invoice.number,
        invoice_issue_date=invoice.issue_date,
        agreement_reference=invoice.agreement_reference,
        supplier=invoice.supplier,
        customer=invoice.customer,
        totals=_view(Totals, note),
    )


# -- payments ---------------------------------------------------------------------------


def payment_view(payment: PaymentRow, invoice_number: str) -> PaymentView:
    return _view(PaymentView, payment, invoice_number=invoice_number, date=payment.payment_date)


def _moved(model: type[View], payment: PaymentRow, invoice: InvoiceRow, **more: Any) -> View:
    return model(
        payment_id=payment.id,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        supplier_commune=invoice.supplier_commune,
        customer_commune=invoice.customer_commune,
        amount_cents=payment.amount_cents,
        balance_cents=max(0, domain.balance(invoice)),
        **more,
    )


def payment_snapshot(payment: PaymentRow, invoice: InvoiceRow) -> PaymentSnapshot:
    return _moved(PaymentSnapshot, payment, invoice, date=payment.payment_date)


def reversal_snapshot(payment: PaymentRow, invoice: InvoiceRow) -> PaymentReversalSnapshot:
    return _moved(PaymentReversalSnapshot, payment, invoice, reason=payment.reversal_reason or "")


def statement_line_view(session: Session, line: StatementLineRow) -> StatementLineView:
    return _view(
        StatementLineView,
        line,
        payments=[payment_view(p, n) for p, n in repository.payments_of_line(session, line.id)],
    )


# -- nettings ---------------------------------------------------------------------------


def netting_view(
    session: Session,
    proposal: NettingProposalRow,
    commune: str | None,
    today: date,
    created: bool = False,
    listed: bool = False,
) -> SettlementView:
    """A netting as a party sees it (`commune`), or all of it (None: an operator); `listed`:
    without its invoices, which only the netting's own page lists."""
    invoices = [
        NettingInvoice(
            id=r.id,
            number=r.number,
            supplier_commune=r.supplier_commune,
            customer_commune=r.customer_commune,
            due_date=r.due_date,
            open_cents=r.open_cents,
        )
        for r in ([] if listed else repository.proposal_invoices(session, proposal.id, commune))
    ]
    positions, transfers, invoices = domain.seen_by(
        commune, proposal.positions, proposal.transfers, invoices
    )
    return _view(
        SettlementView,
        proposal,
        status=domain.netting_status(proposal.status, proposal.deadline, today),
        created_at=proposal.proposed_at,
        created=created,
        parties=[
            _view(NettingParty, party, commune_name=domain.commune_name(party.commune))
            for party in repository.parties_of(session, proposal.id)
        ],
        positions=positions,
        transfers=transfers,
        invoices=invoices,
        invoices_settled=proposal.invoices,
    )


def netting_snapshot(
    proposal: NettingProposalRow, parties: list[str], declined_by: str | None = None
) -> NettingSnapshot:
    return _view(
        NettingSnapshot,
        proposal,
        settlement_id=proposal.id,
        parties=parties,
        reason=proposal.closing_reason,
        declined_by_commune=declined_by,
    )


def settlement_snapshot(
    settlement: SettlementRow, transfers, parties: list[str]
) -> SettlementSnapshot:
    return _view(
        SettlementSnapshot,
        settlement,
        settlement_id=settlement.id,
        transfers=[_view(Transfer, t) for t in transfers],
        parties=parties,
    )


def obligation_view(transfer: SettlementTransferRow) -> Obligation:
    return _view(
        Obligation,
        transfer,
        payer_name=domain.commune_name(transfer.payer),
        payee_name=domain.commune_name(transfer.payee),
        status="paid" if transfer.paid_on else "open",
    )


def obligation_snapshot(transfer: SettlementTransferRow) -> ObligationSnapshot:
    return _view(ObligationSnapshot, transfer, obligation_id=transfer.id)
