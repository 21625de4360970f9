"""Comptabilité: where the commune imputes its loans in M57, and its month's titres de
recettes and mandats for the accountant, as a recorded CSV export. For the finance team
(managers may read)."""

from __future__ import annotations

from werkzeug.wrappers import Response

from contracts.accounting import CATEGORY_LABELS, OPERATION_LABELS, PRINCIPAL, Side
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


SIDES = {"titre": "titres de recettes", "mandat": "mandats"}
RULES = {
    "not_an_m57_account": "le compte {account} n'est pas un compte de la nomenclature M57",
    "account_not_in_chapter": "le compte {account} n'est pas de ce chapitre",
    "account_of_the_other_side": "le compte {account} n'est pas un compte de {side}",
}


def refused_imputations(exc: ServiceError, items: list[dict]) -> list[str]:
    """Why the imputations were refused, in French: which category, which side, which rule;
    what the page cannot name (a rule it does not know) as the service said it."""
    sentences = []
    for error in exc.errors:
        parts = (error.get("field") or "").split(".")
        rule = RULES.get(error.get("type", ""))
        if len(parts) < 2 or not parts[1].isdigit() or rule is None:
            sentences += french.explain_refusal(ServiceError(exc.detail, [error]))
            continue
        item = items[int(parts[1])]
        label = CATEGORY_LABELS.get(item["category"], item["category"])
        side = SIDES.get(item["side"], item["side"])
        sentences.append(f"{label}, {side} : " + rule.format(account=item["account"], side=side))
    return sentences


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
        """The rows of the form whose account or budget changed (the chapter is the
        account's): the others keep their imputation, configured or by default."""
        current = self.billing.get_imputations(as_rpc(web.caller))
        chart = {a["account"]: a for a in current["accounts"]}
        items = []
        for shown in current["items"]:
            key = f"{shown['category']}:{shown['side']}"
            account = (web.form.get(f"compte:{key}") or shown["account"]).strip()
            budget = (web.form.get(f"budget:{key}") or "").strip() or PRINCIPAL
            if (account, budget) == (shown["account"], shown["budget"]):
                continue
            chapter = chart[account]["chapter"] if account in chart else ""
            items.append(
                {
                    "category": shown["category"],
                    "side": shown["side"],
                    "chapter": chapter,
                    "account": account,
                    "budget": budget,
                }
            )
        if items:
            try:
                self.billing.put_imputations(as_rpc(web.caller), {"items": items})
            except ServiceError as exc:
                if exc.code != "invalid_input":
                    raise
                return self._accounting(web, refused_imputations(exc, items), 422)
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
