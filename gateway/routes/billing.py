"""Billing routes: charges, billing runs, invoices (JSON, UBL, PDF), credit notes, payments and
bank statements, statements of account, aging, netting, and the commune's billing profile."""

import base64

from werkzeug.wrappers import Response

from contracts.billing import (
    PROFILE_INCOMPLETE,
    AgingQuery,
    AgingReport,
    BillingProfile,
    BillingProfileInput,
    BillingRunPreview,
    BillingRunRequest,
    BillingRunResult,
    ChargePage,
    ChargeQuery,
    CreditNoteRequest,
    CreditNoteView,
    DisputeRequest,
    DisputeResolution,
    ImportResult,
    InvoicePage,
    InvoiceQuery,
    InvoiceView,
    LineMatch,
    Obligation,
    ObligationPage,
    PaymentOrderRequest,
    PaymentRequest,
    PaymentReversal,
    ReportFormat,
    SettlementDecision,
    SettlementPage,
    SettlementPreview,
    SettlementRequest,
    SettlementView,
    StatementLineView,
    StatementOfAccount,
    StatementQuery,
    TransferPayment,
    UnmatchedPage,
    profile_blocked,
)
from contracts.caller import Caller, Role
from contracts.errors import InvalidInput
from gateway.http import api, json_response
from gateway.routes import as_rpc, query_dict
from gateway.rpc import ServiceRpc

BILLING = "Billing"
OCTETS = "application/octet-stream"
READERS = (Role.FINANCE, Role.MANAGER)
FINANCE = (Role.FINANCE,)
# the statement's own media types, and any bytes (the service reads CAMT.053 or CSV from them)
STATEMENT_TYPES = ("text/csv", "application/xml", "text/xml", "text/plain", OCTETS)


def _wants_csv(request, fmt: ReportFormat) -> bool:
    return fmt == ReportFormat.CSV or request.accept_mimetypes.best == "text/csv"


def _csv(text: str, name: str) -> Response:
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def _document(content: str | bytes, mimetype: str, name: str) -> Response:
    return Response(
        content, mimetype=mimetype, headers={"Content-Disposition": f'inline; filename="{name}"'}
    )


class BillingRoutes:
    billing = ServiceRpc("billing")

    # -- charges and profile ----------------------------------------------------------

    @api(
        "GET",
        "/api/v1/charges",
        query=ChargeQuery,
        response=ChargePage,
        roles=READERS,
        tag=BILLING,
        summary="Charges recorded from returned bookings, late cancellations and timesheets",
        description="`direction=issued`: what the caller's commune charges others; "
        "`received`: what others charge it.",
    )
    def list_charges(self, request, caller: Caller, query: ChargeQuery):
        return self.billing.list_charges(as_rpc(caller), query_dict(query))

    @api(
        "GET",
        "/api/v1/billing/profile",
        response=BillingProfile,
        roles=READERS,
        tag=BILLING,
        summary="The caller's commune's billing profile (SIRET, bank account, VAT, Chorus Pro)",
    )
    def get_billing_profile(self, request, caller: Caller):
        return self.billing.get_profile(as_rpc(caller))

    @api(
        "PUT",
        "/api/v1/billing/profile",
        body=BillingProfileInput,
        response=BillingProfile,
        roles=FINANCE,
        tag=BILLING,
        summary="Declare the caller's commune's billing profile",
        description="The SIRET must be Luhn-valid and start with the commune's SIREN; IBAN and "
        "BIC are checked. Default VAT regime: not subject (category O, CGI art. 256 B).",
    )
    def put_billing_profile(self, request, caller: Caller, body: BillingProfileInput):
        return self.billing.put_profile(as_rpc(caller), body.model_dump(mode="json"))

    # -- invoices ---------------------------------------------------------------------

    @api(
        "POST",
        "/api/v1/billing/runs",
        body=BillingRunRequest,
        response=BillingRunResult,
        roles=(Role.FINANCE, Role.OPERATOR),
        idempotent=True,
        tag=BILLING,
        summary="Issue the invoices of a period: one per (supplier, customer) pair",
        description="A finance team issues its own commune's invoices, an operator every "
        "commune's. Charges already invoiced are never invoiced again: a second run issues "
        "only what arrived since. A pair's charges under different engagement numbers go on "
        "separate invoices (unless the buyer's profile opts out), and damages, outside the "
        "scope of VAT, apart from taxed lines. A pair where a billing profile cannot produce "
        "a valid invoice (a SIRET that is not the commune's, a required service code "
        "missing) is not invoiced: the answer is then 422, its errors of type "
        "billing_profile_incomplete naming the fields to fix and its `issued` member holding "
        "this result for the other pairs, which were invoiced.",
    )
    def run_billing(self, request, caller: Caller, body: BillingRunRequest):
        result = self.billing.run_billing(as_rpc(caller), body.model_dump(mode="json"))
        blocked = profile_blocked(result)
        if blocked:  # the other pairs were invoiced: the problem carries the run's result
            held = sum(1 for s in result["skipped"] if s.get("code") == PROFILE_INCOMPLETE)
            raise InvalidInput(
                f"{held} pair(s) not invoiced: a billing profile cannot produce a valid "
                f"invoice; {len(result['invoices'])} invoice(s) issued for the others",
                blocked,
                issued=result,
            )
        return result

    @api(
        "POST",
        "/api/v1/billing/runs/preview",
        body=BillingRunRequest,
        response=BillingRunPreview,
        roles=(Role.FINANCE, Role.OPERATOR),
        tag=BILLING,
        summary="What a billing run would issue now, per customer with totals (nothing stored)",
        description="The same scope as `POST /api/v1/billing/runs`; the pages show it and ask "
        "to confirm before issuing.",
    )
    def preview_billing_run(self, request, caller: Caller, body: BillingRunRequest):
        return self.billing.preview_billing_run(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "GET",
        "/api/v1/invoices",
        query=InvoiceQuery,
        response=InvoicePage,
        roles=READERS,
        tag=BILLING,
        summary="Invoices the caller's commune issued or received",
    )
    def list_invoices(self, request, caller: Caller, query: InvoiceQuery):
        return self.billing.list_invoices(as_rpc(caller), query_dict(query))

    @api(
        "GET",
        "/api/v1/invoices/<invoice_id>",
        response=InvoiceView,
        roles=READERS,
        tag=BILLING,
        summary="One invoice (only the two communes concerned), with its balance",
    )
    def get_invoice(self, request, caller: Caller, invoice_id: str):
        return self.billing.get_invoice(as_rpc(caller), invoice_id)

    @api(
        "GET",
        "/api/v1/invoices/<invoice_id>/ubl",
        roles=READERS,
        produces="application/xml",
        tag=BILLING,
        summary="The invoice as UBL 2.1 (EN 16931, Chorus Pro identifiers)",
    )
    def get_invoice_ubl(self, request, caller: Caller, invoice_id: str):
        xml = self.billing.invoice_ubl(as_rpc(caller), invoice_id)
        return _document(xml.encode("utf-8"), "application/xml", f"{invoice_id}.xml")

    @api(
        "GET",
        "/api/v1/invoices/<invoice_id>/pdf",
        roles=READERS,
        produces="application/pdf",
        tag=BILLING,
        summary="The invoice as a printable PDF",
    )
    def get_invoice_pdf(self, request, caller: Caller, invoice_id: str):
        document = base64.b64decode(self.billing.invoice_pdf(as_rpc(caller), invoice_id))
        return _document(document, "application/pdf", f"{invoice_id}.pdf")

    @api(
        "POST",
        "/api/v1/invoices/<invoice_id>/credit-notes",
        body=CreditNoteRequest,
        response=CreditNoteView,
        status=201,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Correct an invoice with a credit note (the invoice itself never changes)",
        description="Lines are net amounts credited on invoice lines; none: the whole invoice, "
        "while nothing of it is paid. A credit note never exceeds what is still owed.",
    )
    def issue_credit_note(self, request, caller: Caller, invoice_id: str, body: CreditNoteRequest):
        return self.billing.issue_credit_note(
            as_rpc(caller), invoice_id, body.model_dump(mode="json")
        )

    @api(
        "GET",
        "/api/v1/credit-notes/<credit_note_id>",
        response=CreditNoteView,
        roles=READERS,
        tag=BILLING,
        summary="One credit note (only the two communes concerned)",
    )
    def get_credit_note(self, request, caller: Caller, credit_note_id: str):
        return self.billing.get_credit_note(as_rpc(caller), credit_note_id)

    @api(
        "GET",
        "/api/v1/credit-notes/<credit_note_id>/ubl",
        roles=READERS,
        produces="application/xml",
        tag=BILLING,
        summary="The credit note as a UBL 2.1 CreditNote",
    )
    def get_credit_note_ubl(self, request, caller: Caller, credit_note_id: str):
        xml = self.billing.credit_note_ubl(as_rpc(caller), credit_note_id)
        return _document(xml.encode("utf-8"), "application/xml", f"{credit_note_id}.xml")

    @api(
        "GET",
        "/api/v1/credit-notes/<credit_note_id>/pdf",
        roles=READERS,
        produces="application/pdf",
        tag=BILLING,
        summary="The credit note as a printable PDF",
    )
    def get_credit_note_pdf(self, request, caller: Caller, credit_note_id: str):
        document = base64.b64decode(self.billing.credit_note_pdf(as_rpc(caller), credit_note_id))
        return _document(document, "application/pdf", f"{credit_note_id}.pdf")

    # -- disputes ---------------------------------------------------------------------

    @api(
        "POST",
        "/api/v1/invoices/<invoice_id>/disputes",
        body=DisputeRequest,
        response=InvoiceView,
        status=201,
        roles=READERS,
        idempotent=True,
        tag=BILLING,
        summary="Contest a line of an invoice the caller's commune received",
        description="By the customer's finance team (for a damage, its manager too). The "
        "contested amount is shown apart in aging (`disputed_cents`) and the invoice is left "
        "out of nettings (a netting proposed on it is void) until the supplier answers. A "
        "line contested already: 409; more than the line carries: 422.",
    )
    def open_dispute(self, request, caller: Caller, invoice_id: str, body: DisputeRequest):
        return self.billing.open_dispute(as_rpc(caller), invoice_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/invoices/<invoice_id>/disputes/<dispute_id>/resolve",
        body=DisputeResolution,
        response=InvoiceView,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Answer a contested line: a credit note, or a reasoned rejection",
        description="By the supplier's finance team. `credit` issues a credit note on the "
        "line (default: the contested amount; never more than the line and the balance); "
        "`reject` keeps the invoice as is, with the reason. Answered already: 409.",
    )
    def resolve_dispute(
        self, request, caller: Caller, invoice_id: str, dispute_id: str, body: DisputeResolution
    ):
        return self.billing.resolve_dispute(
            as_rpc(caller), invoice_id, dispute_id, body.model_dump()
        )

    # -- payments ---------------------------------------------------------------------

    @api(
        "POST",
        "/api/v1/payments",
        body=PaymentRequest,
        response=InvoiceView,
        status=201,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Record a payment received on an invoice the caller's commune issued",
        description="Answers the invoice with its new status and balance. Refused (422, "
        "`over_balance`, the balance in `balance_cents`) when it exceeds the balance, unless "
        "`overpayment: true`: the excess is then the payer's credit. Refused (422) when dated "
        "after today (Europe/Paris, `future_date`) or before the invoice's issue "
        "(`before_issue_date`). The same amount, date and reference as a payment already on "
        "the invoice: 409 unless `confirm_duplicate: true`.",
    )
    def record_payment(self, request, caller: Caller, body: PaymentRequest):
        return self.billing.record_payment(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "POST",
        "/api/v1/payments/import",
        consumes=STATEMENT_TYPES,
        consumes_documented=(OCTETS,),
        response=ImportResult,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Import a bank statement (CAMT.053 XML or CSV) and match its credits",
        description="Send the file as the body (`application/xml` for CAMT.053, `text/csv` with "
        "the columns date, amount, counterparty, iban, remittance, bank_reference; or either "
        "as `application/octet-stream`), or as the part `file` of a `multipart/form-data` "
        "form. Credits "
        "are matched by the invoice number in the remittance, else by exact amount and "
        "paying commune; the others are listed unmatched. A credit already imported is "
        "counted as a duplicate and recorded nothing.",
    )
    def import_statement(self, request, caller: Caller, body: bytes):
        content = base64.b64encode(body).decode("ascii")
        return self.billing.import_statement(as_rpc(caller), content)

    @api(
        "GET",
        "/api/v1/payments/unmatched",
        response=UnmatchedPage,
        roles=FINANCE,
        tag=BILLING,
        summary="Statement credits no invoice was found for, to match by hand",
    )
    def unmatched_payments(self, request, caller: Caller):
        return self.billing.unmatched_payments(as_rpc(caller))

    @api(
        "POST",
        "/api/v1/payments/unmatched/<line_id>/match",
        body=LineMatch,
        response=StatementLineView,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Say which invoice an unmatched statement credit pays",
    )
    def match_payment(self, request, caller: Caller, line_id: str, body: LineMatch):
        return self.billing.match_statement_line(as_rpc(caller), line_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/invoices/<invoice_id>/use-credit",
        response=InvoiceView,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Pay an invoice with what its customer overpaid on its other invoices",
        description="By the supplier's finance team: the customer's credit (its "
        "`payer_credit_cents`) pays this invoice, oldest overpayment first, up to its "
        "balance; a payment here (source `credit`), the same amount taken back there. No "
        "credit, or nothing owed: 409.",
    )
    def use_payer_credit(self, request, caller: Caller, invoice_id: str):
        return self.billing.use_payer_credit(as_rpc(caller), invoice_id)

    @api(
        "POST",
        "/api/v1/payments/<payment_id>/reverse",
        body=PaymentReversal,
        response=InvoiceView,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Reverse a payment recorded by mistake (it is kept, marked reversed)",
        description="The receiving commune's finance team only; answers the invoice, which "
        "owes the amount again. A payment read on a bank statement is undone by unmatching "
        "its line (409). Reversed already: 409.",
    )
    def reverse_payment(self, request, caller: Caller, payment_id: str, body: PaymentReversal):
        return self.billing.reverse_payment(as_rpc(caller), payment_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/payments/lines/<line_id>/unmatch",
        body=PaymentReversal,
        response=StatementLineView,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Unmatch a bank statement credit matched to the wrong invoice",
        description="Its payments are reversed with the reason (kept, never deleted) and the "
        "line is listed unmatched again. Not matched: 409.",
    )
    def unmatch_payment(self, request, caller: Caller, line_id: str, body: PaymentReversal):
        return self.billing.unmatch_statement_line(as_rpc(caller), line_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/invoices/<invoice_id>/payment-order",
        body=PaymentOrderRequest,
        response=InvoiceView,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Record that the caller's commune issued its payment order (mandat)",
        description="By the finance team of the invoice's customer; the supplier sees the "
        "number and date on the invoice. Again: the new order replaces the first. A paid or "
        "settled invoice: 409.",
    )
    def record_payment_order(
        self, request, caller: Caller, invoice_id: str, body: PaymentOrderRequest
    ):
        return self.billing.record_payment_order(
            as_rpc(caller), invoice_id, body.model_dump(mode="json")
        )

    # -- reports ----------------------------------------------------------------------

    @api(
        "GET",
        "/api/v1/statements",
        query=StatementQuery,
        response=StatementOfAccount,
        roles=READERS,
        tag=BILLING,
        summary="Statement of account with a counterparty commune (JSON, or CSV)",
        also_produces=("text/csv",),
        description="Debits raise what the counterparty owes the caller, credits lower it. "
        "`format=csv` (or `Accept: text/csv`) answers CSV.",
    )
    def statement_of_account(self, request, caller: Caller, query: StatementQuery):
        as_csv = _wants_csv(request, query.format)
        params = query_dict(query) | {"format": ReportFormat.CSV if as_csv else ReportFormat.JSON}
        result = self.billing.statement(as_rpc(caller), params)
        return _csv(result, f"releve-{query.counterparty}") if as_csv else result

    @api(
        "GET",
        "/api/v1/reports/aging",
        query=AgingQuery,
        response=AgingReport,
        roles=READERS,
        tag=BILLING,
        summary="Outstanding amounts per counterparty by days past due (JSON, or CSV)",
        also_produces=("text/csv",),
        description="Buckets: not yet due, 0–30, 31–60, 61–90 and over 90 days past due.",
    )
    def aging_report(self, request, caller: Caller, query: AgingQuery):
        as_csv = _wants_csv(request, query.format)
        params = query_dict(query) | {"format": ReportFormat.CSV if as_csv else ReportFormat.JSON}
        result = self.billing.aging_report(as_rpc(caller), params)
        return _csv(result, "balance-agee") if as_csv else result

    # -- netting by consent -----------------------------------------------------------

    @api(
        "POST",
        "/api/v1/settlements/preview",
        body=SettlementRequest,
        response=SettlementPreview,
        roles=(Role.FINANCE, Role.OPERATOR),
        tag=BILLING,
        summary="What a netting would be: positions, transfers, invoices (nothing stored)",
        description="The same scope as `POST /api/v1/settlements`. Nothing open between "
        "the communes taking part: 409.",
    )
    def preview_settlement(self, request, caller: Caller, body: SettlementRequest):
        return self.billing.preview_settlement(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "POST",
        "/api/v1/settlements",
        body=SettlementRequest,
        response=SettlementView,
        status=201,
        roles=(Role.FINANCE, Role.OPERATOR),
        idempotent=True,
        tag=BILLING,
        summary="Propose a netting of the open invoices between the communes taking part",
        description="A proposal, not a settlement: it takes effect only once the finance "
        "team of every commune it names has accepted it, before `deadline` (default: in 7 "
        "days). Scope: a `period` or the invoices issued `up_to` a day; `communes` taking "
        "part (a finance team's own among them; default: it and its counterparties, an "
        "operator: all). Only open invoices with both parties taking part are in it: net "
        "positions and at most n − 1 transfers. Nothing open: 409.",
    )
    def settle(self, request, caller: Caller, body: SettlementRequest):
        result = self.billing.settle(as_rpc(caller), body.model_dump(mode="json"))
        return json_response(result, 201)

    @api(
        "GET",
        "/api/v1/settlements",
        response=SettlementPage,
        roles=(Role.FINANCE, Role.MANAGER, Role.OPERATOR),
        tag=BILLING,
        summary="The nettings the caller's commune is party to, latest first",
        description="The latest 100, without their invoices (`invoices: []`): get one "
        "netting for its invoices.",
    )
    def list_settlements(self, request, caller: Caller):
        return self.billing.list_settlements(as_rpc(caller))

    @api(
        "GET",
        "/api/v1/settlements/<settlement_id>",
        response=SettlementView,
        roles=(Role.FINANCE, Role.MANAGER, Role.OPERATOR),
        tag=BILLING,
        summary="One netting, as the caller's commune sees it (its invoices, position, "
        "transfers); 404 to a commune not party to it",
    )
    def get_settlement(self, request, caller: Caller, settlement_id: str):
        return self.billing.get_settlement(as_rpc(caller), settlement_id)

    @api(
        "POST",
        "/api/v1/settlements/<settlement_id>/accept",
        response=SettlementView,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Accept a netting for the caller's commune",
        description="The last acceptance makes it take effect: its invoices are settled and "
        "its transfers become obligations (`GET /api/v1/obligations`). Decided already, "
        "declined, expired, or void because an invoice was paid, credited or disputed since "
        "it was proposed: 409.",
    )
    def accept_settlement(self, request, caller: Caller, settlement_id: str):
        return self.billing.accept_settlement(as_rpc(caller), settlement_id)

    @api(
        "POST",
        "/api/v1/settlements/<settlement_id>/decline",
        body=SettlementDecision,
        response=SettlementView,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Decline a netting for the caller's commune: it ends, nothing changes",
    )
    def decline_settlement(
        self, request, caller: Caller, settlement_id: str, body: SettlementDecision
    ):
        return self.billing.decline_settlement(as_rpc(caller), settlement_id, body.model_dump())

    @api(
        "GET",
        "/api/v1/obligations",
        response=ObligationPage,
        roles=READERS,
        tag=BILLING,
        summary="The transfers effective nettings left the caller's commune to pay or receive",
    )
    def list_obligations(self, request, caller: Caller):
        return self.billing.list_obligations(as_rpc(caller))

    @api(
        "POST",
        "/api/v1/obligations/<transfer_id>/paid",
        body=TransferPayment,
        response=Obligation,
        roles=FINANCE,
        idempotent=True,
        tag=BILLING,
        summary="Record that a netting's transfer arrived (the payee's finance team)",
        description="A bank statement import records it by itself when a credit of exactly "
        "its amount comes from its payer. Paid already: 409.",
    )
    def record_transfer_paid(
        self, request, caller: Caller, transfer_id: str, body: TransferPayment
    ):
        return self.billing.record_transfer_paid(
            as_rpc(caller), transfer_id, body.model_dump(mode="json")
        )
