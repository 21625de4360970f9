"""Billing routes: charges, billing runs, invoices (JSON, UBL, PDF), credit notes, payments and
bank statements, statements of account, aging, netting, and the commune's billing profile."""

import base64

from werkzeug.wrappers import Response

from contracts.billing import (
    AgingQuery,
    AgingReport,
    BillingProfile,
    BillingProfileInput,
    BillingRunRequest,
    BillingRunResult,
    ChargePage,
    ChargeQuery,
    CreditNoteRequest,
    CreditNoteView,
    ImportResult,
    InvoicePage,
    InvoiceQuery,
    InvoiceView,
    LineMatch,
    PaymentRequest,
    SettlementRequest,
    SettlementView,
    StatementLineView,
    StatementOfAccount,
    StatementQuery,
    UnmatchedPage,
)
from contracts.caller import Caller, Role
from gateway.http import api, json_response
from gateway.routes import as_rpc, query_dict
from gateway.rpc import ServiceRpc

BILLING = "Billing"
OCTETS = "application/octet-stream"
READERS = (Role.FINANCE, Role.MANAGER)
FINANCE = (Role.FINANCE,)
# the statement's own media types, and any bytes (the service reads CAMT.053 or CSV from them)
STATEMENT_TYPES = ("text/csv", "application/xml", "text/xml", "text/plain", OCTETS)
# a netting asked again once nothing is open: the last settlement, not a new one
SETTLED_ALREADY = {
    "200": {
        "description": "Nothing was open in the period: the last settlement, `created: false`",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SettlementView"}}
        },
    }
}


def _wants_csv(request, fmt: str) -> bool:
    return fmt == "csv" or request.accept_mimetypes.best == "text/csv"


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
        "only what arrived since.",
    )
    def run_billing(self, request, caller: Caller, body: BillingRunRequest):
        return self.billing.run_billing(as_rpc(caller), body.model_dump(mode="json"))

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
        description="Answers the invoice with its new status and balance; more than the "
        "balance is kept as overpaid.",
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
        params = query_dict(query) | {"format": "csv" if as_csv else "json"}
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
        params = query_dict(query) | {"format": "csv" if as_csv else "json"}
        result = self.billing.aging_report(as_rpc(caller), params)
        return _csv(result, "balance-agee") if as_csv else result

    # -- netting ----------------------------------------------------------------------

    @api(
        "POST",
        "/api/v1/settlements",
        body=SettlementRequest,
        response=SettlementView,
        status=201,
        roles=(Role.FINANCE, Role.OPERATOR),
        idempotent=True,
        tag=BILLING,
        summary="Net the open invoices of a period among all communes",
        description="Answers each commune's net position and the transfers that settle "
        "everything (at most n − 1); every open invoice of the period is settled by "
        "compensation, with the audit trail. Again with nothing open: 200 and the last "
        "settlement, `created: false`.",
        responses=SETTLED_ALREADY,
    )
    def settle(self, request, caller: Caller, body: SettlementRequest):
        result = self.billing.settle(as_rpc(caller), body.model_dump(mode="json"))
        return json_response(result, 201 if result["created"] else 200)
