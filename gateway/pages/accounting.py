"""Comptabilité: where the commune imputes its loans in M57, and its month's titres de
recettes and mandats for the accountant, as a recorded CSV export. For the finance team
(managers may read)."""

from __future__ import annotations

from werkzeug.wrappers import Response

from contracts.accounting import OPERATION_LABELS, Side
from contracts.caller import Role
from contracts.errors import ServiceError
from gateway.pages import french
from gateway.pages.entrypoint import Page, Web, go, page
from gateway.pages.finances import this_period
from gateway.routes import as_rpc
from gateway.routes.accounting import export_file
from gateway.rpc import ServiceRpc

READERS = (Role.FINANCE, Role.MANAGER)
FINANCE = (Role.FINANCE,)


class AccountingPages:
    billing = ServiceRpc("billing")

    @page("GET", "/finances/comptabilite", roles=READERS)
    def accounting_page(self, request, web: Web):
        return self._accounting(web, [], 200)

    def _accounting(self, web: Web, problems: list[str], status: int) -> Page:
        caller = as_rpc(web.caller)
        imputations = self.billing.get_imputations(caller)
        return Page(
            "accounting.html",
            {
                "imputations": imputations,
                "accounts": {
                    side.value: [a for a in imputations["accounts"] if a["side"] == side.value]
                    for side in Side
                },
                "exports": self.billing.list_accounting_exports(caller)["items"],
                "period": this_period(),
                "problems": problems,
                "may_act": web.visitor.has(*FINANCE),
            },
            status,
        )

    @page("POST", "/finances/comptabilite/imputations", roles=FINANCE)
    def imputations_submit(self, request, web: Web):
        """Every row of the form: its account (the chapter is the account's) and budget."""
        chart = {
            a["account"]: a for a in self.billing.get_imputations(as_rpc(web.caller))["accounts"]
        }
        items = []
        for key, account in web.form.items():
            if not key.startswith("compte:"):
                continue
            _, category, side = key.split(":", 2)
            budget = (web.form.get(f"budget:{category}:{side}") or "").strip() or "principal"
            chapter = chart.get(account, {}).get("chapter", "")
            items.append(
                {
                    "category": category,
                    "side": side,
                    "chapter": chapter,
                    "account": account.strip(),
                    "budget": budget,
                }
            )
        try:
            self.billing.put_imputations(as_rpc(web.caller), {"items": items})
        except ServiceError as exc:
            if exc.code != "invalid_input":
                raise
            return self._accounting(web, french.explain_refusal(exc), 422)
        return go("/finances/comptabilite", "imputations-enregistrees")

    @page("POST", "/finances/comptabilite/exports", roles=FINANCE)
    def export_submit(self, request, web: Web):
        """Exports the month (recorded), then shows it by a GET a reload only reads."""
        period = (web.form.get("periode") or "").strip()
        try:
            export = self.billing.export_accounts(as_rpc(web.caller), {"period": period})
        except ServiceError as exc:
            if exc.code != "invalid_input":
                raise
            return self._accounting(web, french.explain_refusal(exc), 422)
        return go(f"/finances/comptabilite/exports/{export['id']}")

    @page("GET", "/finances/comptabilite/exports/<export_id>", roles=READERS)
    def export_page(self, request, web: Web, export_id: str):
        export = self.billing.get_accounting_export(as_rpc(web.caller), export_id)
        return Page("accounting_export.html", {"export": export, "operations": OPERATION_LABELS})

    @page("GET", "/finances/comptabilite/exports/<export_id>/fichier", roles=READERS)
    def export_download(self, request, web: Web, export_id: str) -> Response:
        return export_file(self.billing.get_accounting_export(as_rpc(web.caller), export_id))
