"""The billing nameko service: entrypoints only; rules live in domain.py, documents in ubl.py
and pdf.py, bank statements in bank_statements.py."""

from __future__ import annotations

import base64
import logging

from contracts.billing import (
    OPEN_STATUSES,
    AgingQuery,
    AgingReport,
    AgingRow,
    BillingProfileInput,
    BillingRunRequest,
    BillingRunResult,
    ChargePage,
    ChargeQuery,
    CreditNoteRequest,
    InvoicePage,
    InvoiceQuery,
    InvoiceStatus,
    LineMatch,
    PaymentRequest,
    SettlementRequest,
    StatementEntry,
    StatementOfAccount,
    StatementQuery,
    UnmatchedPage,
)
from contracts.caller import Caller, Role
from contracts.clock import paris_today
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error, validated
from contracts.events import Event
from contracts.topology import BOOKINGS_TO_BILLING, CONSULTANTS_TO_BILLING
from infra.communes import communes
from infra.consumer import consume_events
from infra.health import OperableService
from infra.rpc import rpc
from services.billing import domain, pdf, reports, repository, ubl
from services.billing.bank_statements import UnreadableStatement, parse_statement
from services.billing.metrics import BillingMetrics

log = logging.getLogger(__name__)

READERS = domain.READERS
SUPPLIERS_PER_TRANSACTION = 25


def _caller(caller: dict, *roles: Role) -> Caller:
    who = Caller.model_validate(caller)
    if roles and not who.has(*roles):
        raise Forbidden("This action needs the role " + " or ".join(r.value for r in roles))
    return who


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
        with self.db.handling(event) as tx:
            repository.record_charges(tx, drafts, str(event.event_id))

    @consume_events(CONSULTANTS_TO_BILLING)
    def charge_timesheet(self, event: Event) -> None:
        drafts = domain.charges_for_timesheet(event.payload, event.occurred_at)
        with self.db.handling(event) as tx:
            repository.record_charges(tx, drafts, str(event.event_id))

    @rpc
    def list_charges(self, caller: dict, query: dict) -> dict:
        who = _caller(caller, *READERS)
        q = validated(ChargeQuery, query)
        with self.db.reading() as session:
            items, cursor = repository.charges_of(session, who.commune, q)
        return ChargePage(items=items, next_cursor=cursor).model_dump(mode="json")

    # -- billing profiles -------------------------------------------------------------

    @rpc
    def get_profile(self, caller: dict) -> dict:
        who = _caller(caller, *READERS)
        with self.db.reading() as session:
            row = repository.profile_of(session, who.commune)
            if row is None:
                raise NotFound("This commune has no billing profile yet: PUT one")
            return repository.profile_view(row).model_dump(mode="json")

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
        with self.db.transaction() as tx:
            row = repository.save_profile(tx.session, who.commune, profile, who.user_id)
            return repository.profile_view(row).model_dump(mode="json")

    # -- invoices ---------------------------------------------------------------------

    @rpc
    def run_billing(self, caller: dict, body: dict) -> dict:
        """Issues the invoices of a period: one per (supplier, customer) pair with uninvoiced
        charges. A finance team issues its commune's; an operator, every commune's."""
        who = _caller(caller, Role.FINANCE, Role.OPERATOR)
        period = validated(BillingRunRequest, body).period
        issue_date = paris_today()
        if period > domain.period_of(issue_date):
            raise InvalidInput(
                "This period has not started",
                [field_error("period", "a period up to the current month", "future_period")],
            )
        only = None if who.has(Role.OPERATOR) else who.commune
        with self.db.reading() as session:
            suppliers = repository.suppliers_to_invoice(session, period, only)
        issued, skipped = [], []
        # a few suppliers per transaction: their numbers stay locked only that long, and
        # each run locks them in the same order, so concurrent runs never deadlock
        for first in range(0, len(suppliers), SUPPLIERS_PER_TRANSACTION):
            with self.db.transaction() as tx:
                parties = repository.Parties(tx.session)
                for supplier in suppliers[first : first + SUPPLIERS_PER_TRANSACTION]:
                    invoices, left = repository.issue_invoices(
                        tx, supplier, period, issue_date, parties
                    )
                    issued += invoices
                    skipped += left
        return BillingRunResult(
            period=period, issue_date=issue_date, invoices=issued, skipped=skipped
        ).model_dump(mode="json")

    @rpc
    def list_invoices(self, caller: dict, query: dict) -> dict:
        who = _caller(caller, *READERS)
        q = validated(InvoiceQuery, query)
        with self.db.reading() as session:
            items, cursor = repository.invoices_of(session, who.commune, q)
        return InvoicePage(items=items, next_cursor=cursor).model_dump(mode="json")

    def _invoice(self, caller: dict, invoice_id: str):
        who = _caller(caller)
        with self.db.reading() as session:
            row = repository.get_invoice(session, invoice_id)
            domain.ensure_party(who, row.supplier_commune, row.customer_commune)
            return repository.invoice_view(session, row)

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
            if who.commune != invoice.supplier_commune or not who.has(Role.FINANCE):
                raise Forbidden("Only the issuing commune's finance team credits an invoice")
            if invoice.status not in {s.value for s in OPEN_STATUSES}:
                raise Conflict(
                    f"A {invoice.status} invoice has nothing left to credit",
                    current_status=invoice.status,
                )
            lines = repository.creditable_lines(tx.session, invoice)
            chosen = domain.credit_note_lines(
                [(line.line, line.amount_cents) for line in asked.lines],
                lines,
                balance_cents=repository.balance(invoice),
                fully_open=invoice.status == InvoiceStatus.ISSUED.value
                and invoice.credited_cents == 0,
            )
            note = repository.issue_credit_note(
                tx, invoice, chosen, asked.reason, paris_today(), who.user_id
            )
            tx.session.flush()
            return repository.credit_note_view(tx.session, note).model_dump(mode="json")

    def _credit_note(self, caller: dict, credit_note_id: str):
        who = _caller(caller)
        with self.db.reading() as session:
            note = repository.get_credit_note(session, credit_note_id)
            domain.ensure_party(who, note.supplier_commune, note.customer_commune, "credit note")
            return repository.credit_note_view(session, note)

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

    # -- payments ---------------------------------------------------------------------

    @rpc
    def record_payment(self, caller: dict, body: dict) -> dict:
        """A payment received, recorded by hand by the finance team of the invoice's issuer."""
        who = _caller(caller, Role.FINANCE)
        asked = validated(PaymentRequest, body)
        with self.db.transaction() as tx:
            invoice = repository.get_invoice(tx.session, asked.invoice_id, for_update=True)
            domain.ensure_party(who, invoice.supplier_commune, invoice.customer_commune)
            if who.commune != invoice.supplier_commune:
                raise Forbidden("Payments are recorded by the commune that receives them")
            if invoice.status in (InvoiceStatus.CANCELLED.value, InvoiceStatus.SETTLED.value):
                raise Conflict(
                    f"A {invoice.status} invoice takes no payment", current_status=invoice.status
                )
            repository.apply_payment(
                tx, invoice, asked.amount_cents, asked.date, asked.reference, "manual", who.user_id
            )
            tx.session.flush()
            return repository.invoice_view(tx.session, invoice).model_dump(mode="json")

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
            if parsed.account_iban and profile is not None and parsed.account_iban != profile.iban:
                raise InvalidInput(
                    "This statement is of another account than the commune's",
                    [field_error("body", f"account {parsed.account_iban}", "foreign_account")],
                )
            result = repository.record_statement(tx, who.commune, parsed, who.user_id)
            return result.model_dump(mode="json")

    @rpc
    def unmatched_payments(self, caller: dict) -> dict:
        who = _caller(caller, Role.FINANCE)
        with self.db.reading() as session:
            lines = repository.unmatched_lines(session, who.commune)
            items = [repository.statement_line_view(session, line) for line in lines]
        return UnmatchedPage(items=items).model_dump(mode="json")

    @rpc
    def match_statement_line(self, caller: dict, line_id: str, body: dict) -> dict:
        """The finance team says which invoice an unmatched credit pays."""
        who = _caller(caller, Role.FINANCE)
        invoice_id = validated(LineMatch, body).invoice_id
        with self.db.transaction() as tx:
            line = repository.statement_line_for_update(tx.session, line_id, who.commune)
            if line.status != "unmatched":
                raise Conflict("This statement line is already matched")
            invoice = repository.get_invoice(tx.session, invoice_id, for_update=True)
            if invoice.supplier_commune != who.commune:
                raise NotFound("No such invoice")
            if invoice.status in (InvoiceStatus.CANCELLED.value, InvoiceStatus.SETTLED.value):
                raise Conflict(
                    f"A {invoice.status} invoice takes no payment", current_status=invoice.status
                )
            repository.apply_payment(
                tx,
                invoice,
                line.amount_cents,
                line.booking_date,
                line.remittance or line.bank_reference or "",
                "statement",
                who.user_id,
                statement_line_id=line.id,
            )
            line.status = "matched"
            tx.session.flush()
            return repository.statement_line_view(tx.session, line).model_dump(mode="json")

    # -- statements and aging ---------------------------------------------------------

    @rpc
    def statement(self, caller: dict, query: dict) -> dict | str:
        """The statement of account between the caller's commune and a counterparty: JSON,
        or CSV text."""
        who = _caller(caller, *READERS)
        q = validated(StatementQuery, query)
        if q.counterparty == who.commune:
            raise InvalidInput(
                "A commune has no account with itself",
                [field_error("counterparty", "another commune", "self")],
            )
        if q.from_ and q.to and q.to < q.from_:
            raise InvalidInput(
                "The period is reversed", [field_error("to", "must not be before from")]
            )
        with self.db.reading() as session:
            movements = repository.movements_between(session, who.commune, q.counterparty)
        opening, lines, closing = domain.statement_of(movements, q.from_, q.to)
        result = StatementOfAccount(
            commune=who.commune,
            counterparty=q.counterparty,
            counterparty_name=repository.commune_name(q.counterparty),
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
            balances = repository.open_balances(
                session, who.commune, receivable=q.direction == "receivable"
            )
        buckets = domain.aging(balances, as_of)
        rows = [
            AgingRow(
                counterparty=counterparty,
                counterparty_name=repository.commune_name(counterparty),
                **{f"{bucket}_cents": cents for bucket, cents in row.items()},
                total_cents=sum(row.values()),
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
            total_cents=sum(sum(r.values()) for r in buckets.values()),
        )
        report = AgingReport(
            commune=who.commune, as_of=as_of, direction=q.direction, rows=rows, totals=totals
        )
        if q.format == "csv":
            return reports.aging_csv(report)
        return report.model_dump(mode="json")

    # -- netting ----------------------------------------------------------------------

    @rpc
    def settle(self, caller: dict, body: dict) -> dict:
        """Nets the open invoices of a period among all communes: net positions, at most
        n - 1 transfers, every open invoice settled. Nothing open: the last settlement."""
        who = _caller(caller, Role.FINANCE, Role.OPERATOR)
        period = validated(SettlementRequest, body).period
        if period > domain.period_of(paris_today()):
            raise InvalidInput(
                "This period has not started",
                [field_error("period", "a period up to the current month", "future_period")],
            )
        with self.db.transaction() as tx:
            settled = repository.settle_period(tx, period, who.user_id)
            if settled is not None:
                return settled.model_dump(mode="json")
            last = repository.last_settlement(tx.session, period)
        if last is None:
            raise Conflict(f"No invoice of {period} is open: there is nothing to settle")
        return last.model_dump(mode="json")
