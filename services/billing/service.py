"""The billing nameko service: its entrypoints, and the one place billing emits events and
counts its business metrics, once domain.py decided and repository/ wrote. Views of the rows
are in views.py, documents in ubl.py and pdf.py, bank statements in bank_statements.py."""

from __future__ import annotations

import base64
import gc
import logging
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import date, timedelta

from contracts import clock
from contracts.accounting import (
    CATEGORY_LABELS,
    AccountingExport,
    ExportPage,
    ExportRecord,
    ExportRequest,
    ExportRow,
    Imputation,
    Imputations,
    ImputationsInput,
    Side,
)
from contracts.billing import (
    AgingQuery,
    AgingReport,
    AgingRow,
    BillingProfileInput,
    BillingRunPreview,
    BillingRunRequest,
    BillingRunResult,
    ChargePage,
    ChargeQuery,
    ChargeRecorded,
    CreditNoteIssued,
    CreditNoteRequest,
    DisputeRequest,
    DisputeResolution,
    ImportResult,
    InvoiceAction,
    InvoiceDisputed,
    InvoiceDisputeResolved,
    InvoiceIssued,
    InvoicePage,
    InvoicePaid,
    InvoicePreview,
    InvoiceQuery,
    InvoiceSummary,
    LineMatch,
    MoneyToWatch,
    NettingPartyName,
    ObligationPage,
    PaymentOrdered,
    PaymentOrderRequest,
    PaymentRecorded,
    PaymentRequest,
    PaymentReversal,
    PaymentReversed,
    SettlementCompleted,
    SettlementDecision,
    SettlementDeclined,
    SettlementPage,
    SettlementPreview,
    SettlementProposed,
    SettlementRequest,
    SettlementVoided,
    SkippedPair,
    StatementEntry,
    StatementOfAccount,
    StatementQuery,
    TransferPaid,
    TransferPayment,
    UnmatchedPage,
)
from contracts.caller import Caller, Role
from contracts.clock import paris_today
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error, validated
from contracts.events import Event
from contracts.topology import BOOKINGS_TO_BILLING, CONSULTANTS_TO_BILLING, LISTINGS_TO_BILLING
from infra.communes import communes
from infra.consumer import consume_event_batches, consume_events
from infra.database import UnitOfWork
from infra.health import OperableService
from infra.rpc import rpc
from services.billing import accounting, domain, pdf, reports, repository, ubl, views
from services.billing.bank_statements import ParsedStatement, UnreadableStatement, parse_statement
from services.billing.metrics import (
    INVOICED_CENTS,
    INVOICES_ISSUED,
    PAID_CENTS,
    REVERSED_CENTS,
    BillingMetrics,
)
from services.billing.models import (
    ChargeRow,
    CreditNoteRow,
    InvoiceRow,
    NettingProposalRow,
    PaymentRow,
)
from services.billing.repository import accounting as accounting_records

log = logging.getLogger(__name__)

READERS = domain.READERS
SUPPLIERS_PER_TRANSACTION = 25


def _caller(caller: dict, *roles: Role) -> Caller:
    who = Caller.model_validate(caller)
    if roles and not who.has(*roles):
        raise Forbidden("This action needs the role " + " or ".join(r.value for r in roles))
    return who


# -- what billing does, and announces -------------------------------------------------------


def charge_at_commit(tx: UnitOfWork, drafts: Sequence[domain.ChargeDraft], event_id: str) -> None:
    """The charges not stored yet (a source line is charged once, whatever the event that
    brings it) and a charge.recorded for each, written at the commit: on PostgreSQL with
    the rest of the commit in one statement, which commits alone in a transaction that does
    nothing else (an event's handler)."""
    rows = repository.charge_rows(drafts, event_id, clock.now())
    snapshots = [
        views.charge_snapshot(row["id"], draft) for row, draft in zip(rows, drafts, strict=True)
    ]
    tx.insert_new_at_commit(ChargeRow.__table__, rows, "id", ChargeRecorded, snapshots)


def issue_invoices(
    tx: UnitOfWork, supplier: str, period: str, issue_date: date, parties: domain.Parties
) -> tuple[list[InvoiceSummary], list[SkippedPair]]:
    """Issues one invoice per customer of `supplier` with uninvoiced charges in `period`.
    The numbering sequence is locked first, so a concurrent run of this supplier is done
    before its charges are read, and this one sees only what that one left uninvoiced."""
    session = tx.session
    sequence = repository.locked_sequence(session, supplier, issue_date.year, domain.INVOICE_SERIES)
    charges = repository.uninvoiced_charges(session, supplier, period)
    missing = parties.missing([supplier, *(c.customer_commune for c in charges)])
    if missing:
        parties.add(repository.profiles_of(session, missing))
    run = domain.invoices_for(
        supplier, period, issue_date, charges, parties, sequence.last_number, clock.now()
    )
    repository.add_invoices(session, sequence, run.invoices, run.lines)
    if run.invoices:
        tx.emit_all(InvoiceIssued, [views.snapshot_of(i) for i in run.invoices])
        open_disputes_stated_at_source(tx, run, {c.id: c for c in charges})
        issued_cents = sum(i.total_cents for i in run.invoices)
        tx.after_commit(lambda: INVOICED_CENTS.inc(issued_cents))
        tx.after_commit(lambda: INVOICES_ISSUED.inc(len(run.invoices)))
    summaries = [views.summary_of(i, len(run.lines[i.id])) for i in run.invoices]
    return summaries, run.skipped


def open_disputes_stated_at_source(
    tx: UnitOfWork, run: domain.InvoiceRun, charges: dict[str, domain.UninvoicedCharge]
) -> None:
    """A charge the customer contested at its source (a damage at the return) is disputed
    on the line that invoices it, for all of it, as soon as it is issued: shown apart in
    aging and kept out of nettings until the supplier answers."""
    for invoice in run.invoices:
        for n, charge_id in enumerate(run.lines[invoice.id], start=1):
            charge = charges[charge_id]
            if not charge.contest:
                continue
            dispute = repository.add_dispute(
                tx.session,
                {
                    "id": domain.new_id(),
                    "invoice_id": invoice.id,
                    "line": n,
                    "amount_cents": charge.amount_cents,
                    "reason": charge.contest,
                    "status": "open",
                    "opened_at": invoice.issued_at,
                    "opened_by": None,  # stated in the return report, not on the invoice
                },
            )
            tx.emit(InvoiceDisputed, views.dispute_snapshot(dispute, invoice))


def previewed_invoices(
    session, supplier: str, period: str, issue_date: date, parties: domain.Parties
) -> tuple[list[InvoicePreview], list[SkippedPair]]:
    """What issue_invoices would issue for `supplier` now, read without locking anything."""
    charges = repository.uninvoiced_charges(session, supplier, period)
    missing = parties.missing([supplier, *(c.customer_commune for c in charges)])
    if missing:
        parties.add(repository.profiles_of(session, missing))
    run = domain.invoices_for(supplier, period, issue_date, charges, parties, 0, clock.now())
    previews = [
        InvoicePreview(
            supplier_commune=i.supplier_commune,
            customer_commune=i.customer_commune,
            customer_name=domain.commune_name(i.customer_commune),
            lines=len(run.lines[i.id]),
            net_cents=i.net_cents,
            vat_cents=i.vat_cents,
            total_cents=i.total_cents,
        )
        for i in run.invoices
    ]
    return previews, run.skipped


def credit(
    tx: UnitOfWork, invoice: InvoiceRow, lines: list[tuple[int, int]], reason: str, who: Caller
) -> CreditNoteRow:
    """Issues a credit note on a locked invoice: never beyond what its lines still carry nor
    what it still owes; announced (credit_note.issued)."""
    domain.ensure_allows(invoice.status, InvoiceAction.CREDIT)
    chosen = domain.credit_note_lines(
        lines,
        domain.creditable(views.invoice_lines(tx.session, invoice)),
        balance_cents=domain.balance(invoice),
        fully_open=domain.untouched(invoice),
    )
    issue_date = paris_today()
    number = repository.next_number(
        tx.session, invoice.supplier_commune, issue_date.year, domain.CREDIT_NOTE_SERIES
    )
    columns = domain.credit_note_columns(
        invoice, chosen, reason, issue_date, number, who.user_id, clock.now()
    )
    note = repository.add_credit_note(tx.session, invoice, columns)
    _moved(tx, invoice, InvoiceAction.CREDIT)
    tx.session.flush()
    tx.emit(CreditNoteIssued, views.credit_note_snapshot(note))
    return note


def _moved(tx: UnitOfWork, invoice: InvoiceRow, action: InvoiceAction) -> None:
    """Gives the invoice the status `action` left it in; announces it when it is now paid.
    A netting proposed on it is void: it no longer owes what the proposal settles."""
    void_nettings_of(tx, [invoice.id], f"invoice {invoice.number} changed ({action.value})")
    change = domain.status_change(invoice, action)
    repository.set_status(invoice, change.status, clock.now() if change.paid else None)
    if change.paid:
        tx.emit(InvoicePaid, views.snapshot_of(invoice))


def pay(tx: UnitOfWork, invoice: InvoiceRow, entry: domain.PaymentEntry) -> None:
    """Records a payment on a locked invoice; what exceeds the balance stays as overpaid."""
    payment = repository.add_payment(tx.session, invoice, entry, clock.now())
    if entry.source != "credit":  # a credit used moves money already counted
        tx.after_commit(lambda: PAID_CENTS.inc(entry.amount_cents))
    tx.emit(PaymentRecorded, views.payment_snapshot(payment, invoice))
    _moved(tx, invoice, InvoiceAction.PAY)


def reverse(
    tx: UnitOfWork, payment: PaymentRow, invoice: InvoiceRow, reason: str, user_id: str | None
) -> None:
    """Reverses a payment of a locked invoice, which owes its amount again; announces it."""
    domain.ensure_not_reversed(payment)
    domain.ensure_allows(invoice.status, InvoiceAction.REVERSE)
    repository.reverse_payment(tx.session, payment, invoice, reason, user_id, clock.now())
    amount = payment.amount_cents
    tx.after_commit(lambda: REVERSED_CENTS.inc(amount))
    _moved(tx, invoice, InvoiceAction.REVERSE)
    tx.emit(PaymentReversed, views.reversal_snapshot(payment, invoice))


def record_statement(
    tx: UnitOfWork, commune: str, parsed: ParsedStatement, user_id: str | None
) -> ImportResult:
    """Stores a statement's credits not seen before and pays with each the invoices it
    matches; the others wait, unmatched, for a finance officer."""
    session = tx.session
    statement = repository.add_statement(
        session, commune, parsed.format, parsed.reference, user_id, clock.now()
    )
    ibans, names = domain.payers(repository.accounts(session))
    matched, unmatched, duplicates = [], [], 0
    for credit in parsed.credits:
        line_id = repository.add_statement_line(session, statement.id, commune, credit)
        if line_id is None:
            duplicates += 1
            continue
        received = domain.ReceivedCredit(
            credit.amount_cents,
            credit.counterparty_name,
            credit.counterparty_iban,
            credit.remittance,
        )
        # an invoice that takes no payment does not, even when the remittance names it
        named = [
            invoice
            for invoice in repository.invoices_by_number(
                session, commune, domain.invoice_numbers_in(credit.remittance)
            )
            if domain.takes_payment(invoice.status)
        ]
        payer = None if named else domain.counterparty_of(received, ibans, names)
        of_payer = repository.open_invoices_between(session, commune, payer) if payer else []
        by_id = {invoice.id: invoice for invoice in (*named, *of_payer)}
        allocations = domain.match_credit(
            received,
            [domain.open_invoice(i) for i in named],
            [domain.open_invoice(i) for i in of_payer],
        )
        line = repository.statement_line_for_update(session, line_id, commune)
        for invoice_id, cents in allocations:
            pay(tx, by_id[invoice_id], domain.statement_payment(credit, cents, user_id, line_id))
        found = bool(allocations) or (
            payer is not None and transfer_received(tx, commune, payer, credit, user_id, line_id)
        )
        repository.set_line_status(session, line, "matched" if found else "unmatched")
        (matched if found else unmatched).append(views.statement_line_view(session, line))
    return ImportResult(
        statement_id=statement.id,
        format=parsed.format,
        lines=len(parsed.credits),
        matched=matched,
        unmatched=unmatched,
        duplicates=duplicates,
        ignored=parsed.ignored,
    )


def transfer_received(
    tx: UnitOfWork, payee: str, payer: str, credit, user_id: str | None, line_id: str
) -> bool:
    """A credit no invoice takes may be a netting's transfer: of exactly its amount, from its
    payer. Recorded paid, announced; False when none fits."""
    transfer = repository.open_obligation(tx.session, payee, payer, credit.amount_cents)
    if transfer is None:
        return False
    reference = credit.remittance or credit.bank_reference or ""
    repository.mark_paid(transfer, credit.booking_date, reference, user_id, line_id)
    tx.emit(TransferPaid, views.obligation_snapshot(transfer))
    return True


def void_nettings_of(tx: UnitOfWork, invoice_ids: list[str], why: str) -> None:
    """A netting proposed on invoices that changed no longer says what they owe: void, to
    re-propose. Called with the invoices locked, before the proposals (the order every
    writer takes)."""
    for proposal in repository.pending_with(tx.session, invoice_ids):
        repository.close(proposal, "void", clock.now(), why)
        parties = [p.commune for p in repository.parties_of(tx.session, proposal.id)]
        tx.emit(SettlementVoided, views.netting_snapshot(proposal, parties))


@contextmanager
def collector_paused():
    """The last acceptance of a large netting reads and builds hundreds of thousands of
    objects, none in a cycle, that live until it ends: the garbage collector would run
    hundreds of times over them for nothing (~70 ms of CPU at 50,000 invoices, the startup
    heap frozen). It resumes after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def take_effect(
    tx: UnitOfWork, proposal: NettingProposalRow, proposed: dict[str, int], locked: list
) -> None:
    """Every party accepted: the invoices are settled for what they owed, the transfers
    become obligations due in 30 days, the audit trail says which invoice each covers;
    other proposals on these invoices are void."""
    session = tx.session
    period = proposal.period or domain.period_of(proposal.up_to)
    repository.settle_proposal_invoices(session, proposal.id, proposed, locked)
    settled = [
        (r.customer_commune, r.due_date, r.number, r.id, r.supplier_commune, proposed[r.id])
        for r in locked
    ]
    settlement = domain.settlement_of(
        settled,
        period,
        repository.next_sequence(session, period),
        proposal.proposed_by,
        clock.now(),
    )
    row = repository.add_settlement(
        session, settlement, domain.transfer_due(paris_today()), proposal.id
    )
    proposal.settlement_id = row.id
    repository.close(proposal, "effective", clock.now(), None)
    for other in repository.pending_sharing_invoices_with(session, proposal.id):
        repository.close(other, "void", clock.now(), "invoices settled by another netting")
        parties = [p.commune for p in repository.parties_of(session, other.id)]
        tx.emit(SettlementVoided, views.netting_snapshot(other, parties))
    parties = [p.commune for p in repository.parties_of(session, proposal.id)]
    tx.emit(SettlementCompleted, views.settlement_snapshot(row, settlement.transfers, parties))


class Service(OperableService):
    name = "billing"

    business_metrics = BillingMetrics()

    # -- charges, from events ---------------------------------------------------------

    @consume_events(BOOKINGS_TO_BILLING)
    def charge_booking(self, event: Event) -> None:
        """A returned booking is charged its rental, operator and damages; a cancelled one
        its late-cancellation fee. Each source line once, whatever the deliveries."""
        if event.type == "booking.returned":
            drafts = domain.charges_for_return(event.payload, event.occurred_at)
        else:
            drafts = domain.charges_for_cancellation(event.payload, event.occurred_at)
        # charges are keyed by their source line: a duplicate is found at the commit
        with self.db.handling_keyed(event) as tx:
            charge_at_commit(tx, drafts, str(event.event_id))

    @consume_events(CONSULTANTS_TO_BILLING)
    def charge_timesheet(self, event: Event) -> None:
        """Approved days are charged as a returned loan is: keyed by their source line."""
        drafts = domain.charges_for_timesheet(event.payload, event.occurred_at)
        with self.db.handling_keyed(event) as tx:
            charge_at_commit(tx, drafts, str(event.event_id))

    @consume_event_batches(LISTINGS_TO_BILLING)
    def keep_listing_categories(self, events: list[Event]) -> None:
        """Each listing's category, for the accountant's export to impute its loans."""
        with self.db.handling_all(events) as (tx, fresh):
            snapshots = [event.payload for event in fresh]
            accounting_records.keep_categories(tx.session, snapshots, clock.now())

    @rpc
    def list_charges(self, caller: dict, query: dict) -> dict:
        who = _caller(caller, *READERS)
        q = validated(ChargeQuery, query)
        with self.db.reading() as session:
            rows, cursor = repository.charges_of(session, who.commune, q)
            items = [views.charge_view(charge, invoice_id) for charge, invoice_id in rows]
        return ChargePage(items=items, next_cursor=cursor).model_dump(mode="json")

    # -- billing profiles -------------------------------------------------------------

    @rpc
    def get_profile(self, caller: dict) -> dict:
        who = _caller(caller, *READERS)
        with self.db.reading() as session:
            row = repository.profile_of(session, who.commune)
            if row is None:
                raise NotFound("This commune has no billing profile yet: PUT one")
            return views.profile_view(row).model_dump(mode="json")

    @rpc
    def put_profile(self, caller: dict, body: dict) -> dict:
        who = _caller(caller, Role.FINANCE)
        profile = validated(BillingProfileInput, body)
        commune = communes().get(who.commune)
        if commune is None:
            raise NotFound(f"No commune has INSEE code {who.commune}")
        errors = domain.profile_errors(profile, commune.siren)
        if errors:
            raise InvalidInput("The billing profile has invalid fields", errors)
        columns = domain.profile_columns(who.commune, profile, who.user_id, clock.now())
        with self.db.transaction() as tx:
            row = repository.save_profile(tx.session, who.commune, columns)
            return views.profile_view(row).model_dump(mode="json")

    # -- invoices ---------------------------------------------------------------------

    @rpc
    def run_billing(self, caller: dict, body: dict) -> dict:
        """Issues the invoices of a period: one per (supplier, customer) pair with uninvoiced
        charges. A finance team issues its commune's; an operator, every commune's."""
        who = _caller(caller, Role.FINANCE, Role.OPERATOR)
        period = validated(BillingRunRequest, body).period
        issue_date = paris_today()
        domain.ensure_started(period, issue_date)
        only = None if who.has(Role.OPERATOR) else who.commune
        with self.db.reading() as session:
            suppliers = repository.suppliers_to_invoice(session, period, only)
        issued, skipped = [], []
        # a few suppliers per transaction: their numbers stay locked only that long, and
        # each run locks them in the same order, so concurrent runs never deadlock
        for first in range(0, len(suppliers), SUPPLIERS_PER_TRANSACTION):
            with self.db.transaction() as tx:
                parties = domain.Parties()
                for supplier in suppliers[first : first + SUPPLIERS_PER_TRANSACTION]:
                    invoices, left = issue_invoices(tx, supplier, period, issue_date, parties)
                    issued += invoices
                    skipped += left
        return BillingRunResult(
            period=period, issue_date=issue_date, invoices=issued, skipped=skipped
        ).model_dump(mode="json")

    @rpc
    def preview_billing_run(self, caller: dict, body: dict) -> dict:
        """What run_billing would issue now, per customer with totals; nothing is stored."""
        who = _caller(caller, Role.FINANCE, Role.OPERATOR)
        period = validated(BillingRunRequest, body).period
        issue_date = paris_today()
        domain.ensure_started(period, issue_date)
        only = None if who.has(Role.OPERATOR) else who.commune
        invoices, skipped = [], []
        with self.db.reading() as session:
            parties = domain.Parties()
            for supplier in repository.suppliers_to_invoice(session, period, only):
                found, left = previewed_invoices(session, supplier, period, issue_date, parties)
                invoices += found
                skipped += left
        return BillingRunPreview(
            period=period,
            issue_date=issue_date,
            invoices=invoices,
            skipped=skipped,
            total_cents=sum(i.total_cents for i in invoices),
        ).model_dump(mode="json")

    @rpc
    def list_invoices(self, caller: dict, query: dict) -> dict:
        who = _caller(caller, *READERS)
        q = validated(InvoiceQuery, query)
        with self.db.reading() as session:
            rows, cursor = repository.invoices_of(session, who.commune, q)
            items = views.invoice_views(session, rows)
        return InvoicePage(items=items, next_cursor=cursor).model_dump(mode="json")

    def _invoice(self, caller: dict, invoice_id: str):
        who = _caller(caller)
        with self.db.reading() as session:
            row = repository.get_invoice(session, invoice_id)
            domain.ensure_party(who, row.supplier_commune, row.customer_commune)
            return views.invoice_view(session, row)

    @rpc
    def get_invoice(self, caller: dict, invoice_id: str) -> dict:
        return self._invoice(caller, invoice_id).model_dump(mode="json")

    @rpc
    def invoice_ubl(self, caller: dict, invoice_id: str) -> str:
        return ubl.invoice_xml(self._invoice(caller, invoice_id)).decode("utf-8")

    @rpc
    def invoice_pdf(self, caller: dict, invoice_id: str) -> str:
        """The PDF, base64-encoded: RPC bodies are JSON."""
        document = pdf.invoice_pdf(self._invoice(caller, invoice_id))
        return base64.b64encode(document).decode("ascii")

    # -- credit notes -----------------------------------------------------------------

    @rpc
    def issue_credit_note(self, caller: dict, invoice_id: str, body: dict) -> dict:
        """Corrects an issued invoice, which itself never changes: the credit note lowers
        what is owed. Only the issuing commune's finance team may."""
        who = _caller(caller)
        asked = validated(CreditNoteRequest, body)
        with self.db.transaction() as tx:
            invoice = repository.get_invoice(tx.session, invoice_id, for_update=True)
            domain.ensure_party(who, invoice.supplier_commune, invoice.customer_commune)
            domain.ensure_may_credit(who, invoice.supplier_commune)
            note = credit(
                tx, invoice, [(x.line, x.amount_cents) for x in asked.lines], asked.reason, who
            )
            return views.credit_note_view(tx.session, note).model_dump(mode="json")

    def _credit_note(self, caller: dict, credit_note_id: str):
        who = _caller(caller)
        with self.db.reading() as session:
            note = repository.get_credit_note(session, credit_note_id)
            domain.ensure_party(who, note.supplier_commune, note.customer_commune, "credit note")
            return views.credit_note_view(session, note)

    @rpc
    def get_credit_note(self, caller: dict, credit_note_id: str) -> dict:
        return self._credit_note(caller, credit_note_id).model_dump(mode="json")

    @rpc
    def credit_note_ubl(self, caller: dict, credit_note_id: str) -> str:
        return ubl.credit_note_xml(self._credit_note(caller, credit_note_id)).decode("utf-8")

    @rpc
    def credit_note_pdf(self, caller: dict, credit_note_id: str) -> str:
        document = pdf.credit_note_pdf(self._credit_note(caller, credit_note_id))
        return base64.b64encode(document).decode("ascii")

    # -- disputes ---------------------------------------------------------------------

    @rpc
    def open_dispute(self, caller: dict, invoice_id: str, body: dict) -> dict:
        """The customer contests a line: its amount is shown apart and the invoice leaves
        any netting proposed on it, until the supplier answers."""
        who = _caller(caller)
        asked = validated(DisputeRequest, body)
        with self.db.transaction() as tx:
            invoice = repository.get_invoice(tx.session, invoice_id, for_update=True)
            domain.ensure_party(who, invoice.supplier_commune, invoice.customer_commune)
            lines = views.invoice_lines(tx.session, invoice)
            kind = next((x.kind for x in lines if x.line == asked.line), "")
            domain.ensure_may_dispute(who, invoice.customer_commune, kind)
            domain.ensure_open(invoice.status)
            amount = domain.disputed_line(domain.creditable(lines), asked.line, asked.amount_cents)
            domain.ensure_no_open_dispute_on(
                asked.line,
                (
                    d.line
                    for d in repository.disputes_of(tx.session, invoice.id)
                    if d.status == "open"
                ),
            )
            dispute = repository.add_dispute(
                tx.session,
                {
                    "id": domain.new_id(),
                    "invoice_id": invoice.id,
                    "line": asked.line,
                    "amount_cents": amount,
                    "reason": asked.reason,
                    "status": "open",
                    "opened_at": clock.now(),
                    "opened_by": who.user_id,
                },
            )
            void_nettings_of(tx, [invoice.id], f"invoice {invoice.number} contested")
            tx.emit(InvoiceDisputed, views.dispute_snapshot(dispute, invoice))
            return views.invoice_view(tx.session, invoice).model_dump(mode="json")

    @rpc
    def resolve_dispute(self, caller: dict, invoice_id: str, dispute_id: str, body: dict) -> dict:
        """The supplier answers a contested line: a credit note (partial or total) or a
        reasoned rejection."""
        who = _caller(caller)
        asked = validated(DisputeResolution, body)
        with self.db.transaction() as tx:
            invoice = repository.get_invoice(tx.session, invoice_id, for_update=True)
            domain.ensure_party(who, invoice.supplier_commune, invoice.customer_commune)
            domain.ensure_may_credit(who, invoice.supplier_commune)
            dispute = repository.dispute_for_update(tx.session, dispute_id, invoice.id)
            domain.ensure_dispute_open(dispute.status)
            if asked.outcome == "credit":
                amount = asked.amount_cents or dispute.amount_cents
                note = credit(tx, invoice, [(dispute.line, amount)], asked.reason, who)
                dispute.credit_note_id = note.id
            dispute.status = "credited" if asked.outcome == "credit" else "rejected"
            dispute.resolution = asked.reason
            dispute.resolved_at = clock.now()
            dispute.resolved_by = who.user_id
            tx.session.flush()
            tx.emit(InvoiceDisputeResolved, views.dispute_snapshot(dispute, invoice))
            return views.invoice_view(tx.session, invoice).model_dump(mode="json")

    # -- payments ---------------------------------------------------------------------

    @rpc
    def record_payment(self, caller: dict, body: dict) -> dict:
        """A payment received, recorded by hand by the finance team of the invoice's issuer.
        The invoice is locked first: two payments at once are checked one after the other,
        so together they never exceed the balance unless recorded as an overpayment."""
        who = _caller(caller, Role.FINANCE)
        asked = validated(PaymentRequest, body)
        with self.db.transaction() as tx:
            invoice = repository.get_invoice(tx.session, asked.invoice_id, for_update=True)
            domain.ensure_party(who, invoice.supplier_commune, invoice.customer_commune)
            domain.ensure_receives(who, invoice.supplier_commune)
            domain.ensure_allows(invoice.status, InvoiceAction.PAY)
            domain.ensure_dated_within(asked.date, invoice.issue_date, paris_today())
            domain.ensure_within_balance(asked.amount_cents, invoice, asked.overpayment)
            entry = domain.PaymentEntry(
                asked.amount_cents, asked.date, asked.reference, "manual", who.user_id
            )
            domain.ensure_not_recorded(
                entry, repository.payments_of(tx.session, invoice.id), asked.confirm_duplicate
            )
            pay(tx, invoice, entry)
            tx.session.flush()
            return views.invoice_view(tx.session, invoice).model_dump(mode="json")

    @rpc
    def use_payer_credit(self, caller: dict, invoice_id: str) -> dict:
        """What the customer overpaid on its other invoices from this supplier pays this
        one, oldest overpayment first: a payment here, the same amount taken back there."""
        who = _caller(caller, Role.FINANCE)
        with self.db.transaction() as tx:
            invoice, overpaid = repository.pair_invoices_for_update(tx.session, invoice_id)
            domain.ensure_party(who, invoice.supplier_commune, invoice.customer_commune)
            domain.ensure_receives(who, invoice.supplier_commune)
            domain.ensure_allows(invoice.status, InvoiceAction.PAY)
            by_id = {row.id: row for row in overpaid}
            uses = domain.credit_uses(
                max(0, domain.balance(invoice)), [(r.id, -domain.balance(r)) for r in overpaid]
            )
            domain.ensure_credit_to_use(uses)
            today = paris_today()
            for source_id, cents in uses:
                source = by_id[source_id]
                pay(
                    tx,
                    source,
                    domain.PaymentEntry(
                        -cents, today, f"Crédit utilisé sur {invoice.number}", "credit", who.user_id
                    ),
                )
                pay(
                    tx,
                    invoice,
                    domain.PaymentEntry(
                        cents, today, f"Trop-perçu de {source.number}", "credit", who.user_id
                    ),
                )
            tx.session.flush()
            return views.invoice_view(tx.session, invoice).model_dump(mode="json")

    @rpc
    def reverse_payment(self, caller: dict, payment_id: str, body: dict) -> dict:
        """Undoes a payment recorded by mistake: it stays, marked reversed with why, by whom
        and when, and the invoice owes its amount again."""
        who = _caller(caller, Role.FINANCE)
        reason = validated(PaymentReversal, body).reason
        with self.db.transaction() as tx:
            invoice_id = repository.payment_for_update(tx.session, payment_id).invoice_id
            invoice = repository.get_invoice(tx.session, invoice_id, for_update=True)
            payment = repository.payment_for_update(tx.session, payment_id)
            try:
                domain.ensure_party(who, invoice.supplier_commune, invoice.customer_commune)
            except NotFound:
                raise NotFound("No such payment") from None
            domain.ensure_receives(who, invoice.supplier_commune)
            domain.ensure_reversed_by_hand(payment.source, payment.statement_line_id)
            reverse(tx, payment, invoice, reason, who.user_id)
            return views.invoice_view(tx.session, invoice).model_dump(mode="json")

    @rpc
    def record_payment_order(self, caller: dict, invoice_id: str, body: dict) -> dict:
        """The paying commune says its payment order (mandat) is issued: the supplier sees
        its number and date on the invoice."""
        who = _caller(caller, Role.FINANCE)
        order = validated(PaymentOrderRequest, body)
        with self.db.transaction() as tx:
            invoice = repository.get_invoice(tx.session, invoice_id, for_update=True)
            domain.ensure_party(who, invoice.supplier_commune, invoice.customer_commune)
            domain.ensure_pays(who, invoice.customer_commune)
            domain.ensure_open(invoice.status)
            domain.ensure_dated_within(
                order.date, invoice.issue_date, paris_today(), what="A payment order"
            )
            repository.set_payment_order(
                invoice, order.number, order.date, who.user_id, clock.now()
            )
            tx.emit(PaymentOrdered, views.payment_order_snapshot(invoice))
            tx.session.flush()
            return views.invoice_view(tx.session, invoice).model_dump(mode="json")

    @rpc
    def import_statement(self, caller: dict, content_base64: str) -> dict:
        """A bank statement of the caller's account (CAMT.053 or CSV): each credit not seen
        before is matched to the invoices it pays, or listed for manual matching."""
        who = _caller(caller, Role.FINANCE)
        try:
            parsed = parse_statement(base64.b64decode(content_base64))
        except UnreadableStatement as exc:
            raise InvalidInput(
                f"The statement cannot be read: {exc}",
                [field_error(exc.field, str(exc), "unreadable_statement")],
            ) from None
        with self.db.transaction() as tx:
            profile = repository.profile_of(tx.session, who.commune)
            domain.ensure_own_account(parsed.account_iban, profile)
            result = record_statement(tx, who.commune, parsed, who.user_id)
            return result.model_dump(mode="json")

    @rpc
    def unmatched_payments(self, caller: dict) -> dict:
        who = _caller(caller, Role.FINANCE)
        with self.db.reading() as session:
            lines = repository.unmatched_lines(session, who.commune)
            items = [views.statement_line_view(session, line) for line in lines]
        return UnmatchedPage(items=items).model_dump(mode="json")

    @rpc
    def match_statement_line(self, caller: dict, line_id: str, body: dict) -> dict:
        """The finance team says which invoice an unmatched credit pays."""
        who = _caller(caller, Role.FINANCE)
        asked = validated(LineMatch, body)
        with self.db.transaction() as tx:
            line = repository.statement_line_for_update(tx.session, line_id, who.commune)
            domain.ensure_unmatched(line.status)
            invoice = repository.get_invoice(tx.session, asked.invoice_id, for_update=True)
            if invoice.supplier_commune != who.commune:
                raise NotFound("No such invoice")
            domain.ensure_allows(invoice.status, InvoiceAction.PAY)
            domain.ensure_within_balance(line.amount_cents, invoice, asked.overpayment)
            pay(
                tx, invoice, domain.statement_payment(line, line.amount_cents, who.user_id, line.id)
            )
            repository.set_line_status(tx.session, line, "matched")
            return views.statement_line_view(tx.session, line).model_dump(mode="json")

    @rpc
    def unmatch_statement_line(self, caller: dict, line_id: str, body: dict) -> dict:
        """A credit matched to the wrong invoice: its payments are reversed (kept, with the
        reason) and the line waits again, unmatched, for the right invoice."""
        who = _caller(caller, Role.FINANCE)
        reason = validated(PaymentReversal, body).reason
        with self.db.transaction() as tx:
            line = repository.statement_line_for_update(tx.session, line_id, who.commune)
            domain.ensure_matched(line.status)
            for payment in repository.standing_payments_of_line(tx.session, line.id):
                invoice = repository.get_invoice(tx.session, payment.invoice_id, for_update=True)
                reverse(tx, payment, invoice, reason, who.user_id)
            for transfer in repository.obligations_of_line(tx.session, line.id):
                repository.mark_paid(transfer, None, None, None)  # owed again
            repository.set_line_status(tx.session, line, "unmatched")
            return views.statement_line_view(tx.session, line).model_dump(mode="json")

    # -- statements and aging ---------------------------------------------------------

    @rpc
    def statement(self, caller: dict, query: dict) -> dict | str:
        """The statement of account between the caller's commune and a counterparty: JSON,
        or CSV text."""
        who = _caller(caller, *READERS)
        q = validated(StatementQuery, query)
        domain.ensure_statement_query(who.commune, q)
        with self.db.reading() as session:
            movements = repository.movements_between(session, who.commune, q.counterparty)
            theirs, mine = repository.overpaid_between(session, who.commune, q.counterparty)
        opening, lines, closing = domain.statement_of(movements, q.from_, q.to)
        result = StatementOfAccount(
            commune=who.commune,
            counterparty=q.counterparty,
            counterparty_name=domain.commune_name(q.counterparty),
            from_=q.from_,
            to=q.to,
            opening_balance_cents=opening,
            entries=[
                StatementEntry(
                    date=line.movement.date,
                    kind=line.movement.kind,
                    reference=line.movement.reference,
                    description=line.movement.description,
                    debit_cents=max(line.movement.amount_cents, 0),
                    credit_cents=max(-line.movement.amount_cents, 0),
                    balance_cents=line.balance_cents,
                )
                for line in lines
            ],
            closing_balance_cents=closing,
            counterparty_credit_cents=theirs,
            own_credit_cents=mine,
        )
        if q.format == "csv":
            return reports.statement_csv(result)
        return result.model_dump(mode="json", by_alias=True)

    @rpc
    def aging_report(self, caller: dict, query: dict) -> dict | str:
        who = _caller(caller, *READERS)
        q = validated(AgingQuery, query)
        as_of = q.as_of or paris_today()
        with self.db.reading() as session:
            balances, contested = repository.open_balances(
                session, who.commune, receivable=q.direction == "receivable"
            )
        buckets = domain.aging(balances, as_of)
        for counterparty in contested:  # contested only: a row of its own
            buckets.setdefault(counterparty, dict.fromkeys(domain.AGING_BUCKETS, 0))
        rows = [
            AgingRow(
                counterparty=counterparty,
                counterparty_name=domain.commune_name(counterparty),
                **{f"{bucket}_cents": cents for bucket, cents in row.items()},
                disputed_cents=contested.get(counterparty, 0),
                total_cents=sum(row.values()) + contested.get(counterparty, 0),
            )
            for counterparty, row in sorted(buckets.items())
        ]
        totals = AgingRow(
            counterparty="*",
            counterparty_name="Total",
            **{
                f"{bucket}_cents": sum(r[bucket] for r in buckets.values())
                for bucket in domain.AGING_BUCKETS
            },
            disputed_cents=sum(contested.values()),
            total_cents=sum(sum(r.values()) for r in buckets.values()) + sum(contested.values()),
        )
        report = AgingReport(
            commune=who.commune, as_of=as_of, direction=q.direction, rows=rows, totals=totals
        )
        if q.format == "csv":
            return reports.aging_csv(report)
        return report.model_dump(mode="json")

    # -- netting by consent -----------------------------------------------------------

    def _scope(self, session, who: Caller, asked: SettlementRequest):
        """The open invoices a proposal would settle, between the communes taking part."""
        today = paris_today()
        if asked.period is not None:
            domain.ensure_started(asked.period, today)
        else:
            domain.ensure_dated_within(asked.up_to, asked.up_to, today, "up_to", "A netting")
        around = (
            repository.counterparties(session, who.commune, asked.period, asked.up_to)
            if who.has(Role.FINANCE) and not asked.communes
            else []
        )
        taking_part = domain.netting_participants(who, asked.communes, around)
        debts = repository.open_debts(session, asked.period, asked.up_to, taking_part)
        domain.ensure_something_to_net(debts)
        deadline = domain.netting_deadline(asked.deadline, today)
        scope = {"period": asked.period, "up_to": asked.up_to}
        return domain.netting_proposal(debts, scope, deadline, who, clock.now())

    @rpc
    def preview_settlement(self, caller: dict, body: dict) -> dict:
        """What a proposal would be, stored nowhere: positions, transfers, invoices."""
        who = _caller(caller, Role.FINANCE, Role.OPERATOR)
        asked = validated(SettlementRequest, body)
        with self.db.reading() as session:
            proposal = self._scope(session, who, asked)
        columns = proposal.columns
        return SettlementPreview(
            period=columns["period"],
            up_to=columns["up_to"],
            deadline=columns["deadline"],
            parties=[
                NettingPartyName(commune=c, commune_name=domain.commune_name(c))
                for c in proposal.parties
            ],
            positions=columns["positions"],
            transfers=columns["transfers"],
            invoices_settled=columns["invoices"],
            compensated_cents=columns["compensated_cents"],
        ).model_dump(mode="json")

    @rpc
    def settle(self, caller: dict, body: dict) -> dict:
        """Proposes a netting to the communes whose invoices it settles: nothing changes
        until every one of them accepted it."""
        who = _caller(caller, Role.FINANCE, Role.OPERATOR)
        asked = validated(SettlementRequest, body)
        with self.db.transaction() as tx:
            proposal = self._scope(tx.session, who, asked)
            row = repository.add_proposal(tx.session, proposal)
            tx.emit(SettlementProposed, views.netting_snapshot(row, proposal.parties))
            seen = None if who.has(Role.OPERATOR) else who.commune
            view = views.netting_view(tx.session, row, seen, paris_today(), created=True)
            return view.model_dump(mode="json")

    @rpc
    def list_settlements(self, caller: dict) -> dict:
        who = _caller(caller, *READERS, Role.OPERATOR)
        seen = None if who.has(Role.OPERATOR) else who.commune
        today = paris_today()
        with self.db.reading() as session:
            items = [
                views.netting_view(session, row, seen, today, listed=True)
                for row in repository.proposals_of(session, seen)
            ]
        return SettlementPage(items=items).model_dump(mode="json")

    @rpc
    def get_settlement(self, caller: dict, settlement_id: str) -> dict:
        who = _caller(caller)
        with self.db.reading() as session:
            row = repository.get_proposal(session, settlement_id)
            parties = [p.commune for p in repository.parties_of(session, row.id)]
            domain.ensure_sees_netting(who, parties)
            seen = None if who.has(Role.OPERATOR) else who.commune
            return views.netting_view(session, row, seen, paris_today()).model_dump(mode="json")

    @rpc
    def accept_settlement(self, caller: dict, settlement_id: str) -> dict:
        """A party's finance team accepts. The invoices are locked first and checked: one
        paid, credited or disputed since voids the proposal. The last acceptance makes it
        take effect."""
        who = _caller(caller)
        today = paris_today()
        voided = None
        with collector_paused(), self.db.transaction() as tx:
            session = tx.session
            repository.get_proposal(session, settlement_id)  # 404 before any lock
            proposed, locked = repository.lock_proposal_invoices(session, settlement_id)
            proposal = repository.get_proposal(session, settlement_id, for_update=True)
            parties = {p.commune: p for p in repository.parties_of(session, proposal.id)}
            party = parties.get(who.commune)
            domain.ensure_sees_netting(who, parties)
            domain.ensure_decides(who, party.decision if party else None)
            domain.ensure_waiting(domain.netting_status(proposal.status, proposal.deadline, today))
            changed = domain.changed_since_proposed(proposed, locked)
            if changed:
                voided = "changed since proposed: " + ", ".join(changed)
                repository.close(proposal, "void", clock.now(), voided)
                tx.emit(SettlementVoided, views.netting_snapshot(proposal, sorted(parties)))
            else:
                repository.decide(party, "accepted", who.user_id, clock.now())
                if domain.outcome(p.decision for p in parties.values()) == "effective":
                    take_effect(tx, proposal, proposed, locked)
                session.flush()
                view = views.netting_view(session, proposal, who.commune, today)
        if voided:
            raise Conflict(f"This netting is void: invoices {voided}", current_status="void")
        return view.model_dump(mode="json")

    @rpc
    def decline_settlement(self, caller: dict, settlement_id: str, body: dict) -> dict:
        """A party's finance team declines: the proposal ends and nothing changes."""
        who = _caller(caller)
        reason = validated(SettlementDecision, body).reason
        today = paris_today()
        with self.db.transaction() as tx:
            proposal = repository.get_proposal(tx.session, settlement_id, for_update=True)
            parties = {p.commune: p for p in repository.parties_of(tx.session, proposal.id)}
            party = parties.get(who.commune)
            domain.ensure_sees_netting(who, parties)
            domain.ensure_decides(who, party.decision if party else None)
            domain.ensure_waiting(domain.netting_status(proposal.status, proposal.deadline, today))
            repository.decide(party, "declined", who.user_id, clock.now(), reason)
            repository.close(proposal, "declined", clock.now(), reason)
            tx.emit(
                SettlementDeclined,
                views.netting_snapshot(proposal, sorted(parties), declined_by=who.commune),
            )
            tx.session.flush()
            view = views.netting_view(tx.session, proposal, who.commune, today)
            return view.model_dump(mode="json")

    @rpc
    def money_to_watch(self, caller: dict) -> dict:
        """The dashboard's money: nettings awaiting this commune's decision, transfers it
        must pay or receive, disputes it must answer or waits an answer for."""
        who = _caller(caller, *READERS)
        today = paris_today()
        with self.db.reading() as session:
            nettings = [
                views.netting_view(session, row, who.commune, today, listed=True)
                for row in repository.awaiting_decision_of(session, who.commune)
                if domain.netting_status(row.status, row.deadline, today) == "proposed"
            ]
            transfers = [
                views.obligation_view(t)
                for t, _ in repository.obligations_of(session, who.commune)
                if t.paid_on is None
            ]
            disputes = [
                (views.dispute_ref(d, i), i.supplier_commune == who.commune)
                for d, i in repository.open_disputes_of(session, who.commune)
            ]
        return MoneyToWatch(
            nettings_to_decide=nettings,
            transfers_to_pay=[t for t in transfers if t.payer == who.commune],
            transfers_to_receive=[t for t in transfers if t.payee == who.commune],
            disputes_to_answer=[d for d, ours in disputes if ours],
            disputes_raised=[d for d, ours in disputes if not ours],
        ).model_dump(mode="json")

    # -- what nettings leave to pay -----------------------------------------------------

    @rpc
    def list_obligations(self, caller: dict) -> dict:
        who = _caller(caller, *READERS)
        with self.db.reading() as session:
            items = [
                views.obligation_view(t) for t, _ in repository.obligations_of(session, who.commune)
            ]
        return ObligationPage(items=items).model_dump(mode="json")

    @rpc
    def record_transfer_paid(self, caller: dict, transfer_id: str, body: dict) -> dict:
        """The payee's finance team says a netting's transfer arrived."""
        who = _caller(caller, Role.FINANCE)
        asked = validated(TransferPayment, body)
        with self.db.transaction() as tx:
            transfer = repository.obligation_for_update(tx.session, transfer_id)
            if who.commune not in (transfer.payer, transfer.payee):
                raise NotFound("No such transfer")
            domain.ensure_receives(who, transfer.payee)
            domain.ensure_transfer_open(transfer.paid_on)
            domain.ensure_dated_within(
                asked.date,
                transfer.due_date - timedelta(days=domain.TRANSFER_TERMS_DAYS),
                paris_today(),
            )
            repository.mark_paid(transfer, asked.date, asked.reference, who.user_id)
            tx.emit(TransferPaid, views.obligation_snapshot(transfer))
            return views.obligation_view(transfer).model_dump(mode="json")

    # -- the accountant's export (titres de recettes, mandats) ----------------------------

    @rpc
    def get_imputations(self, caller: dict) -> dict:
        who = _caller(caller, *READERS)
        with self.db.reading() as session:
            return imputations_view(session, who.commune).model_dump(mode="json")

    @rpc
    def put_imputations(self, caller: dict, body: dict) -> dict:
        """The finance team sets where some categories are imputed; each must be an account
        of the M57 chart shipped, under its chapter and on its side, or nothing is stored."""
        who = _caller(caller, Role.FINANCE)
        asked = validated(ImputationsInput, body)
        accounting.ensure_imputations(asked.items)
        rows = [
            item.model_dump(mode="json") | {"updated_at": clock.now(), "updated_by": who.user_id}
            for item in asked.items
        ]
        with self.db.transaction() as tx:
            accounting_records.save_imputations(tx.session, who.commune, rows)
            return imputations_view(tx.session, who.commune).model_dump(mode="json")

    @rpc
    def export_accounts(self, caller: dict, body: dict) -> dict:
        """The month's titres and mandats of the caller's commune, recorded: the same month
        exported again gives the same file when nothing changed, and says it was exported
        before (when, and what changed since)."""
        who = _caller(caller, Role.FINANCE)
        period = validated(ExportRequest, body).period
        domain.ensure_started(period, paris_today())
        with self.db.transaction() as tx:
            rows = export_rows(tx.session, who.commune, period)
            previous = accounting_records.exports_of(tx.session, who.commune, period)
            content = accounting.csv_of(rows)
            checksum = accounting.checksum_of(content)
            record = accounting_records.add_export(
                tx.session,
                {
                    "id": domain.new_id(),
                    "commune": who.commune,
                    "period": period,
                    "checksum": checksum,
                    "filename": accounting.filename_of(who.commune, period, checksum),
                    "content": content.decode("utf-8"),
                    "rows": [row.model_dump(mode="json") for row in rows],
                    "exported_at": clock.now(),
                    "exported_by": who.user_id,
                },
            )
            return export_view(record, previous).model_dump(mode="json")

    @rpc
    def list_accounting_exports(self, caller: dict) -> dict:
        who = _caller(caller, *READERS)
        with self.db.reading() as session:
            items = [export_record(r) for r in accounting_records.exports_of(session, who.commune)]
        return ExportPage(items=items).model_dump(mode="json")

    @rpc
    def get_accounting_export(self, caller: dict, export_id: str) -> dict:
        """One export as it was recorded, compared with the ones of its period before it."""
        who = _caller(caller, *READERS)
        with self.db.reading() as session:
            record = accounting_records.get_export(session, export_id)
            if record is None or record.commune != who.commune:
                raise NotFound("No such export")
            before = [
                r
                for r in accounting_records.exports_of(session, who.commune, record.period)
                if r.exported_at < record.exported_at
            ]
            view = export_view(record, before).model_dump(mode="json")
        return view | {"content": record.content}


def configured_imputations(session, commune: str) -> dict[tuple[str, Side], accounting.Imputed]:
    return {
        (row.category, Side(row.side)): accounting.Imputed(row.chapter, row.account, row.budget)
        for row in accounting_records.imputations_of(session, commune)
    }


def imputations_view(session, commune: str) -> Imputations:
    """Every category's imputation for each side, the commune's or the default."""
    configured = configured_imputations(session, commune)
    chart = accounting.chart()
    return Imputations(
        items=[
            Imputation(
                category=category,
                category_label=CATEGORY_LABELS[category],
                side=side,
                chapter=imputed.chapter,
                account=imputed.account,
                account_label=chart[imputed.account].label if imputed.account in chart else "",
                budget=imputed.budget,
                configured=(category, side) in configured,
            )
            for (category, side), imputed in accounting.imputations_of(configured).items()
        ],
        accounts=list(chart.values()),
    )


def export_rows(session, commune: str, period: str) -> list[ExportRow]:
    """The rows of `commune`'s invoices and credit notes issued in `period`, imputed as its
    finance team configured (or by default)."""
    first, last = ubl.month_span(period)
    invoices = accounting_records.invoices_issued_between(session, commune, first, last)
    notes = accounting_records.credit_notes_issued_between(session, commune, first, last)
    sources = accounting_records.line_sources(
        session, sorted({i.id for i in invoices} | {invoice.id for _, invoice in notes})
    )
    documents = [accounting.invoice_document(i, commune, sources[i.id]) for i in invoices]
    documents += [
        accounting.credit_note_document(note, invoice, commune, sources[invoice.id])
        for note, invoice in notes
    ]
    configured = configured_imputations(session, commune)
    return accounting.rows_of(documents, accounting.imputations_of(configured))


def export_record(row) -> ExportRecord:
    return ExportRecord(
        id=row.id,
        commune=row.commune,
        period=row.period,
        checksum=row.checksum,
        filename=row.filename,
        rows=len(row.rows),
        exported_at=row.exported_at,
        exported_by=row.exported_by,
    )


def export_view(row, previous: list) -> AccountingExport:
    """An export with the ones of its period before it (latest first) and what changed
    since the latest of them."""
    items = [ExportRow.model_validate(r) for r in row.rows]
    latest = previous[0] if previous else None
    return AccountingExport(
        **export_record(row).model_dump(),
        items=items,
        titres_cents=accounting.signed_total(items, Side.TITRE),
        mandats_cents=accounting.signed_total(items, Side.MANDAT),
        previous=[export_record(r) for r in previous],
        same_as_previous=None if latest is None else latest.checksum == row.checksum,
        changes=accounting.changes_since(
            [ExportRow.model_validate(r) for r in latest.rows] if latest else items, items
        ),
    )
