"""The accountant's export routes: where a commune imputes its loans in M57, and its month's
titres de recettes and mandats as JSON or as the CSV its accounting software imports."""

from werkzeug.wrappers import Response

from contracts.accounting import (
    AccountingExport,
    ExportPage,
    ExportRequest,
    Imputations,
    ImputationsInput,
)
from contracts.caller import Caller, Role
from gateway.http import api
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc

ACCOUNTING = "Accounting (M57)"
READERS = (Role.FINANCE, Role.MANAGER)
FINANCE = (Role.FINANCE,)


def export_file(export: dict) -> Response:
    """The export's CSV as recorded, under the name its checksum is part of."""
    return Response(
        export["content"].encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{export["filename"]}"'},
    )


class AccountingRoutes:
    billing = ServiceRpc("billing")

    @api(
        "GET",
        "/api/v1/accounting/imputations",
        response=Imputations,
        roles=READERS,
        tag=ACCOUNTING,
        summary="Where each category's titres and mandats are imputed (M57), and the accounts "
        "an imputation may name",
        description="Per listing category (and `personnel`: experts' days; `autre`: a listing "
        "billing never heard of) and side (`titre`: what the commune invoices, `mandat`: what "
        "it is invoiced): the chapter, the account and the budget (principal or an annex). "
        "`configured: false` is the default documented in docs/billing.md.",
    )
    def get_imputations(self, request, caller: Caller):
        return self.billing.get_imputations(as_rpc(caller))

    @api(
        "PUT",
        "/api/v1/accounting/imputations",
        body=ImputationsInput,
        response=Imputations,
        roles=FINANCE,
        tag=ACCOUNTING,
        summary="Set the imputation of some categories and sides",
        description="Each must be an account of the M57 chart Mutualis ships, under its "
        "chapter, of class 7 for a titre and 6 for a mandat: else 422, its errors of type "
        "not_an_m57_account, account_not_in_chapter, account_of_the_other_side, "
        "unknown_category or duplicate_imputation, and nothing is stored.",
    )
    def put_imputations(self, request, caller: Caller, body: ImputationsInput):
        return self.billing.put_imputations(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "POST",
        "/api/v1/accounting/exports",
        body=ExportRequest,
        response=AccountingExport,
        roles=FINANCE,
        status=201,
        idempotent=True,
        tag=ACCOUNTING,
        summary="Export a month's titres de recettes and mandats (recorded)",
        description="The invoices and credit notes the caller's commune issued (titres, "
        "réductions and annulations de titres) and received (mandats, réductions and "
        "annulations de mandats) in the month, one row per document and imputation. The same "
        "month exported again gives the same file (`checksum`, in `filename` too) when "
        "nothing changed; `previous` lists the exports of the month before this one, "
        "`same_as_previous` says whether it is the same file and `changes` the rows added or "
        "removed since (a credit note issued since...).",
    )
    def export_accounts(self, request, caller: Caller, body: ExportRequest):
        return self.billing.export_accounts(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "GET",
        "/api/v1/accounting/exports",
        response=ExportPage,
        roles=READERS,
        tag=ACCOUNTING,
        summary="The caller's commune's exports, latest first: which month, when, which file",
    )
    def list_accounting_exports(self, request, caller: Caller):
        return self.billing.list_accounting_exports(as_rpc(caller))

    @api(
        "GET",
        "/api/v1/accounting/exports/<export_id>",
        response=AccountingExport,
        roles=READERS,
        tag=ACCOUNTING,
        summary="One export as recorded, compared with the exports of its month before it",
    )
    def get_accounting_export(self, request, caller: Caller, export_id: str):
        export = self.billing.get_accounting_export(as_rpc(caller), export_id)
        export.pop("content")
        return export

    @api(
        "GET",
        "/api/v1/accounting/exports/<export_id>/csv",
        roles=READERS,
        produces="text/csv",
        tag=ACCOUNTING,
        summary="The export's CSV file, as given when it was made",
        description="`;`-separated, amounts in euros with a decimal comma, dates DD/MM/YYYY; "
        "columns: sens, operation, budget, chapitre, compte, numero_piece, date_piece, "
        "facture_origine, tiers_insee, tiers_nom, tiers_siret, categorie, montant_ht, "
        "montant_tva, montant_ttc, numero_engagement, reference_convention.",
    )
    def get_accounting_export_csv(self, request, caller: Caller, export_id: str):
        return export_file(self.billing.get_accounting_export(as_rpc(caller), export_id))
