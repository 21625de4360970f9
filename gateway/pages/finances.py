"""Finances: invoices issued and received with their balance, UBL and PDF, payments, bank
statements and their matches, statements of account, the aging chart, and the netting
drawn as who pays whom. For the finance team (managers may read)."""

from __future__ import annotations

import base64

from werkzeug.wrappers import Response

from contracts.billing import InvoiceAction, InvoiceStatus, invoice_allows, profile_blocked
from contracts.caller import Role
from contracts.clock import paris_today
from contracts.errors import ServiceError
from gateway.errors import status_of
from gateway.pages import french
from gateway.pages.drawing import AGING_BUCKETS, aging_chart, netting_picture
from gateway.pages.entrypoint import Page, Web, commune_name, go, page
from gateway.pages.forms import FormError, cents_from_euros, day
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc

READERS = (Role.FINANCE, Role.MANAGER)
FINANCE = (Role.FINANCE,)
DIRECTIONS = {"recues": "received", "emises": "issued"}
DEMO_COMMUNES = ("42218", "42044", "42095", "42207", "42189")


def this_period() -> str:
    return paris_today().strftime("%Y-%m")


def _download(content: bytes, mimetype: str, name: str) -> Response:
    return Response(
        content,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class FinancePages:
    billing = ServiceRpc("billing")

    @page("GET", "/finances", roles=READERS)
    def invoices_page(self, request, web: Web):
        side = web.arg("vue", "recues")
        if side not in DIRECTIONS:
            side = "recues"
        status = web.arg("statut")
        query = {"direction": DIRECTIONS[side], "limit": 200}
        if status in {s.value for s in InvoiceStatus}:
            query["status"] = status
        items = self.billing.list_invoices(as_rpc(web.caller), query)["items"]
        items.sort(key=lambda i: (i["issue_date"], i["number"]), reverse=True)
        return Page(
            "finances.html",
            {
                "side": side,
                "status": status,
                "items": items,
                "statuses": french.INVOICE_STATUS,
                "period": this_period(),
                "open_total": sum(i["balance_cents"] for i in items),
                "may_act": web.visitor.has(*FINANCE),
            },
        )

    @page("POST", "/finances/facturation/apercu", roles=FINANCE)
    def billing_run_preview(self, request, web: Web):
        """What the run would issue, per customer with totals: nothing is issued yet."""
        period = (web.form.get("periode") or "").strip()
        try:
            preview = self.billing.preview_billing_run(as_rpc(web.caller), {"period": period})
        except ServiceError as exc:
            if exc.code != "invalid_input":
                raise
            return Page(
                "billing_run.html", {"preview": None, "problems": french.explain_refusal(exc)}, 422
            )
        return Page("billing_run.html", {"preview": preview, "problems": []})

    @page("POST", "/finances/facturation", roles=FINANCE)
    def billing_run_submit(self, request, web: Web):
        """Issues, once confirmed; then the issued invoices, by a GET a reload only reads."""
        period = (web.form.get("periode") or "").strip()
        result = self.billing.run_billing(as_rpc(web.caller), {"period": period})
        blocked = french.profile_problems(profile_blocked(result))
        if not blocked:
            return go("/finances?vue=emises", "facturation-faite")
        # the others were invoiced; a profile holds the rest until it is fixed: say so here
        return Page("billing_run.html", {"result": result, "blocked": blocked}, 422)

    @page("GET", "/finances/factures/<invoice_id>", roles=READERS)
    def invoice_page(self, request, web: Web, invoice_id: str):
        return self._invoice(web, invoice_id, [], 200)

    def _invoice(
        self,
        web: Web,
        invoice_id: str,
        problems: list[str],
        status: int,
        entered: dict | None = None,
    ) -> Page:
        """The invoice page; `entered`: what a refused form said, to show it again."""
        invoice = self.billing.get_invoice(as_rpc(web.caller), invoice_id)
        issued = invoice["supplier"]["insee_code"] == web.visitor.commune
        finance = web.visitor.has(*FINANCE)
        return Page(
            "invoice.html",
            {
                "invoice": invoice,
                "issued": issued,
                "problems": problems,
                "entered": entered or {},
                "today": paris_today().isoformat(),
                "may_record": issued
                and finance
                and invoice_allows(invoice["status"], InvoiceAction.PAY),
                "may_reverse": issued and finance,
                "may_order": not issued
                and finance
                and invoice["status"] in ("issued", "partially_paid"),
                "may_dispute": not issued
                and web.visitor.has(*READERS)
                and invoice["status"] in ("issued", "partially_paid"),
                "may_resolve": issued and finance,
            },
            status,
        )

    def _refused(self, web: Web, invoice_id: str, exc: ServiceError, entered: dict) -> Page:
        """A refusal the finance officer can act on, in French, on the invoice page."""
        if exc.code not in ("conflict", "invalid_input", "forbidden"):
            raise exc
        lines = french.explain_refusal(exc)
        entered = entered | {"duplicate": "duplicate_of" in exc.extra}
        return self._invoice(web, invoice_id, lines, status_of(exc), entered)

    @page("GET", "/finances/factures/<invoice_id>/ubl", roles=READERS)
    def invoice_ubl(self, request, web: Web, invoice_id: str):
        xml = self.billing.invoice_ubl(as_rpc(web.caller), invoice_id)
        invoice = self.billing.get_invoice(as_rpc(web.caller), invoice_id)
        return _download(xml.encode("utf-8"), "application/xml", f"{invoice['number']}.xml")

    @page("GET", "/finances/factures/<invoice_id>/pdf", roles=READERS)
    def invoice_pdf(self, request, web: Web, invoice_id: str):
        document = base64.b64decode(self.billing.invoice_pdf(as_rpc(web.caller), invoice_id))
        invoice = self.billing.get_invoice(as_rpc(web.caller), invoice_id)
        return _download(document, "application/pdf", f"{invoice['number']}.pdf")

    @page("POST", "/finances/factures/<invoice_id>/paiement", roles=FINANCE)
    def payment_submit(self, request, web: Web, invoice_id: str):
        entered = {key: web.form.get(key) or "" for key in ("montant", "date", "reference")}
        entered["trop_percu"] = web.form.get("trop_percu") == "oui"
        try:
            body = {
                "invoice_id": invoice_id,
                "amount_cents": cents_from_euros(web.form.get("montant"), "amount_cents"),
                "date": day(web.form.get("date"), "date").isoformat(),
                "reference": (web.form.get("reference") or "").strip()[:140],
                "overpayment": entered["trop_percu"],
                "confirm_duplicate": web.form.get("second_paiement") == "oui",
            }
            self.billing.record_payment(as_rpc(web.caller), body)
        except FormError as exc:
            return self._invoice(web, invoice_id, [exc.message], 422, entered)
        except ServiceError as exc:
            return self._refused(web, invoice_id, exc, entered)
        return go(f"/finances/factures/{invoice_id}", "paiement-enregistre")

    @page("POST", "/finances/factures/<invoice_id>/paiements/<payment_id>/annuler", roles=FINANCE)
    def reversal_submit(self, request, web: Web, invoice_id: str, payment_id: str):
        reason = (web.form.get("motif") or "").strip()
        try:
            self.billing.reverse_payment(as_rpc(web.caller), payment_id, {"reason": reason})
        except ServiceError as exc:
            return self._refused(web, invoice_id, exc, {})
        return go(f"/finances/factures/{invoice_id}", "paiement-annule")

    @page("POST", "/finances/factures/<invoice_id>/credit", roles=FINANCE)
    def credit_use_submit(self, request, web: Web, invoice_id: str):
        try:
            self.billing.use_payer_credit(as_rpc(web.caller), invoice_id)
        except ServiceError as exc:
            return self._refused(web, invoice_id, exc, {})
        return go(f"/finances/factures/{invoice_id}", "credit-utilise")

    @page("POST", "/finances/factures/<invoice_id>/contestations", roles=READERS)
    def dispute_submit(self, request, web: Web, invoice_id: str):
        try:
            body: dict = {
                "line": int(web.form.get("ligne") or 0),
                "reason": (web.form.get("motif") or "").strip(),
            }
            if (web.form.get("montant") or "").strip():
                body["amount_cents"] = cents_from_euros(web.form.get("montant"), "amount_cents")
            self.billing.open_dispute(as_rpc(web.caller), invoice_id, body)
        except FormError as exc:
            return self._invoice(web, invoice_id, [exc.message], 422)
        except ValueError:
            return self._invoice(web, invoice_id, ["Choisissez la ligne contestée."], 422)
        except ServiceError as exc:
            return self._refused(web, invoice_id, exc, {})
        return go(f"/finances/factures/{invoice_id}", "contestation-envoyee")

    @page("POST", "/finances/factures/<invoice_id>/contestations/<dispute_id>", roles=FINANCE)
    def dispute_answer(self, request, web: Web, invoice_id: str, dispute_id: str):
        try:
            body: dict = {
                "outcome": "reject" if web.form.get("issue") == "reject" else "credit",
                "reason": (web.form.get("motif") or "").strip(),
            }
            if body["outcome"] == "credit" and (web.form.get("montant") or "").strip():
                body["amount_cents"] = cents_from_euros(web.form.get("montant"), "amount_cents")
            self.billing.resolve_dispute(as_rpc(web.caller), invoice_id, dispute_id, body)
        except FormError as exc:
            return self._invoice(web, invoice_id, [exc.message], 422)
        except ServiceError as exc:
            return self._refused(web, invoice_id, exc, {})
        return go(f"/finances/factures/{invoice_id}", "contestation-traitee")

    @page("POST", "/finances/factures/<invoice_id>/mandat", roles=FINANCE)
    def payment_order_submit(self, request, web: Web, invoice_id: str):
        entered = {key: web.form.get(key) or "" for key in ("mandat", "date_mandat")}
        try:
            body = {
                "number": entered["mandat"].strip(),
                "date": day(entered["date_mandat"], "date").isoformat(),
            }
            self.billing.record_payment_order(as_rpc(web.caller), invoice_id, body)
        except FormError as exc:
            return self._invoice(web, invoice_id, [exc.message], 422, entered)
        except ServiceError as exc:
            return self._refused(web, invoice_id, exc, entered)
        return go(f"/finances/factures/{invoice_id}", "mandat-enregistre")

    # -- bank statements --------------------------------------------------------------

    @page("GET", "/finances/rapprochement", roles=FINANCE)
    def reconciliation_page(self, request, web: Web):
        return self._reconciliation(web, None, [], 200)

    @page("POST", "/finances/rapprochement", roles=FINANCE)
    def statement_submit(self, request, web: Web):
        upload = web.form.get("releve")
        if upload is None or not getattr(upload, "filename", ""):
            return self._reconciliation(web, None, ["Choisissez le fichier du relevé."], 422)
        content = upload.read()
        if not content.strip():
            return self._reconciliation(web, None, ["Le fichier est vide."], 422)
        try:
            result = self.billing.import_statement(
                as_rpc(web.caller), base64.b64encode(content).decode("ascii")
            )
        except ServiceError as exc:
            if exc.code not in ("conflict", "invalid_input"):
                raise
            lines = [f"Le relevé n'a pas pu être lu : {exc.detail}"]
            return self._reconciliation(web, None, lines, status_of(exc))
        return self._reconciliation(web, result, [], 200)

    @page("POST", "/finances/rapprochement/<line_id>/associer", roles=FINANCE)
    def match_submit(self, request, web: Web, line_id: str):
        invoice_id = (web.form.get("facture") or "").strip()
        if not invoice_id:
            return self._reconciliation(web, None, ["Choisissez la facture payée."], 422)
        try:
            self.billing.match_statement_line(
                as_rpc(web.caller), line_id, {"invoice_id": invoice_id}
            )
        except ServiceError as exc:
            if exc.code not in ("not_found", "conflict", "invalid_input"):
                raise
            lines = french.explain_refusal(exc)
            return self._reconciliation(web, None, lines, status_of(exc))
        return go("/finances/rapprochement", "paiement-associe")

    @page("POST", "/finances/rapprochement/<line_id>/dissocier", roles=FINANCE)
    def unmatch_submit(self, request, web: Web, line_id: str):
        reason = (web.form.get("motif") or "").strip()
        back = (web.form.get("facture") or "").strip()
        try:
            self.billing.unmatch_statement_line(as_rpc(web.caller), line_id, {"reason": reason})
        except ServiceError as exc:
            if back:
                return self._refused(web, back, exc, {})
            if exc.code not in ("not_found", "conflict", "invalid_input"):
                raise
            return self._reconciliation(web, None, french.explain_refusal(exc), status_of(exc))
        return go("/finances/rapprochement", "ligne-dissociee")

    def _reconciliation(self, web: Web, result, problems: list[str], status: int) -> Page:
        caller = as_rpc(web.caller)
        unmatched = self.billing.unmatched_payments(caller)["items"]
        open_invoices = [
            i
            for i in self.billing.list_invoices(caller, {"direction": "issued", "limit": 200})[
                "items"
            ]
            if invoice_allows(i["status"], InvoiceAction.PAY)
        ]
        return Page(
            "reconciliation.html",
            {
                "result": result,
                "unmatched": unmatched,
                "open_invoices": open_invoices,
                "problems": problems,
            },
            status,
        )

    # -- reports ----------------------------------------------------------------------

    @page("GET", "/finances/releve", roles=READERS)
    def statement_page(self, request, web: Web):
        counterparty = web.arg("commune")
        first, last = web.arg("du"), web.arg("au")
        statement, problems = None, []
        choices = [c for c in DEMO_COMMUNES if c != web.visitor.commune]
        if counterparty:
            query = {"counterparty": counterparty, "format": "json"}
            try:
                if first:
                    query["from"] = day(first, "from").isoformat()
                if last:
                    query["to"] = day(last, "to").isoformat()
                statement = self.billing.statement(as_rpc(web.caller), query)
            except FormError as exc:
                problems = [exc.message]
            except ServiceError as exc:
                if exc.code != "invalid_input":
                    raise
                problems = french.explain_refusal(exc)
        return Page(
            "statement.html",
            {
                "statement": statement,
                "counterparty": counterparty,
                "choices": [(c, commune_name(c)) for c in choices],
                "du": first,
                "au": last,
                "problems": problems,
            },
        )

    @page("GET", "/finances/balance-agee", roles=READERS)
    def aging_page(self, request, web: Web):
        direction = web.arg("sens", "receivable")
        if direction not in ("receivable", "payable"):
            direction = "receivable"
        report = self.billing.aging_report(
            as_rpc(web.caller), {"direction": direction, "format": "json"}
        )
        return Page(
            "aging.html",
            {
                "report": report,
                "direction": direction,
                "chart": aging_chart(report["rows"]),
                "buckets": AGING_BUCKETS,
            },
        )

    @page("GET", "/finances/compensation", roles=READERS)
    def netting_page(self, request, web: Web):
        return self._nettings(web, [], 200, [])

    def _nettings(self, web: Web, problems: list[str], status: int, chosen: list[str]) -> Page:
        items = self.billing.list_settlements(as_rpc(web.caller))["items"]
        return Page(
            "netting.html",
            {
                "nettings": items,
                "period": this_period(),
                "problems": problems,
                "chosen": chosen,
                "communes": [(c, commune_name(c)) for c in DEMO_COMMUNES],
            },
            status,
        )

    def _netting_asked(self, web: Web) -> tuple[dict, list[str]]:
        """The netting a form asks for: its period and the communes ticked."""
        chosen = [c for c in web.form.getlist("communes") if c in DEMO_COMMUNES]
        body: dict = {"period": (web.form.get("periode") or "").strip()}
        if chosen:
            body["communes"] = sorted({web.visitor.commune, *chosen})
        return body, chosen

    def _netting_refused(self, web: Web, exc: ServiceError, chosen: list[str]) -> Page:
        if exc.code not in ("conflict", "invalid_input"):
            raise exc
        return self._nettings(web, french.explain_refusal(exc), status_of(exc), chosen)

    @page("POST", "/finances/compensation/apercu", roles=FINANCE)
    def netting_preview(self, request, web: Web):
        body, chosen = self._netting_asked(web)
        try:
            preview = self.billing.preview_settlement(as_rpc(web.caller), body)
        except ServiceError as exc:
            return self._netting_refused(web, exc, chosen)
        return Page(
            "netting_preview.html",
            {"preview": preview, "chosen": chosen, "picture": self._picture(preview)},
        )

    @page("POST", "/finances/compensation", roles=FINANCE)
    def netting_submit(self, request, web: Web):
        body, chosen = self._netting_asked(web)
        try:
            proposed = self.billing.settle(as_rpc(web.caller), body)
        except ServiceError as exc:
            return self._netting_refused(web, exc, chosen)
        return go(f"/finances/compensation/{proposed['id']}", "compensation-proposee")

    @staticmethod
    def _picture(netting: dict):
        """Who pays whom among what the visitor may see: its own position, and each
        counterparty by what it pays or receives from it."""
        positions = {p["commune"]: p["net_cents"] for p in netting["positions"]}
        for t in netting["transfers"]:
            positions.setdefault(t["payer"], 0)
            positions.setdefault(t["payee"], 0)
        for t in netting["transfers"]:
            if t["payer"] not in {p["commune"] for p in netting["positions"]}:
                positions[t["payer"]] -= t["amount_cents"]
            if t["payee"] not in {p["commune"] for p in netting["positions"]}:
                positions[t["payee"]] += t["amount_cents"]
        shown = [{"commune": c, "net_cents": n} for c, n in positions.items()]
        names = {c: commune_name(c) for c in positions}
        return netting_picture(shown, netting["transfers"], names)

    def _netting(self, web: Web, netting_id: str, problems: list[str], status: int, printable):
        netting = self.billing.get_settlement(as_rpc(web.caller), netting_id)
        mine = [p for p in netting["parties"] if p["commune"] == web.visitor.commune]
        return Page(
            "netting_proposal.html",
            {
                "netting": netting,
                "picture": self._picture(netting),
                "problems": problems,
                "printable": printable,
                "may_decide": netting["status"] == "proposed"
                and web.visitor.has(*FINANCE)
                and bool(mine)
                and mine[0]["decision"] == "pending",
            },
            status,
        )

    @page("GET", "/finances/compensation/<netting_id>", roles=READERS)
    def netting_proposal_page(self, request, web: Web, netting_id: str):
        return self._netting(web, netting_id, [], 200, False)

    @page("GET", "/finances/compensation/<netting_id>/imprimer", roles=READERS)
    def netting_printable(self, request, web: Web, netting_id: str):
        return self._netting(web, netting_id, [], 200, True)

    @page("POST", "/finances/compensation/<netting_id>/accepter", roles=FINANCE)
    def netting_accept(self, request, web: Web, netting_id: str):
        try:
            self.billing.accept_settlement(as_rpc(web.caller), netting_id)
        except ServiceError as exc:
            if exc.code != "conflict":
                raise
            return self._netting(web, netting_id, french.explain_refusal(exc), 409, False)
        return go(f"/finances/compensation/{netting_id}", "compensation-acceptee")

    @page("POST", "/finances/compensation/<netting_id>/refuser", roles=FINANCE)
    def netting_decline(self, request, web: Web, netting_id: str):
        reason = (web.form.get("motif") or "").strip() or None
        try:
            self.billing.decline_settlement(as_rpc(web.caller), netting_id, {"reason": reason})
        except ServiceError as exc:
            if exc.code not in ("conflict", "invalid_input"):
                raise
            return self._netting(
                web, netting_id, french.explain_refusal(exc), status_of(exc), False
            )
        return go(f"/finances/compensation/{netting_id}", "compensation-refusee")
