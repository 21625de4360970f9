"""Conventions and délibérations on the pages: the commune's agreements with others (drafted,
proposed, signed under each council's decision, in force, ended; their PDF and signed scan),
its council decisions with their PDFs, and whether it lends only under an agreement."""

from __future__ import annotations

import base64

from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from contracts.agreements import AgreementStatus, Tariff
from contracts.caller import Role
from contracts.errors import ServiceError
from contracts.listings import CATEGORIES
from gateway.errors import status_of
from gateway.pages import french
from gateway.pages.entrypoint import Page, Web, go, page
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc

READERS = (Role.MANAGER, Role.FINANCE, Role.AGENT)
MANAGERS = (Role.MANAGER,)
AGREEMENT_STATUS = {
    "draft": "Brouillon",
    "proposed": "Proposée",
    "signed": "Signée en partie",
    "in_force": "En vigueur",
    "ended": "Terminée",
}
TARIFFS = {
    Tariff.LISTING_RATES.value: "Tarifs publiés des annonces",
    Tariff.COST_REIMBURSEMENT.value: "Remboursement des frais réels",
}
# action in the URL -> (service RPC, notice)
ACTIONS = {"proposer": ("propose_agreement", None), "terminer": ("end_agreement", None)}


def draft_of(form, commune: str) -> dict:
    """The agreement a manager's form drafts, as the API takes it: their own commune a party,
    the others by INSEE code (separated by commas or spaces)."""
    others = (form.get("partenaires") or "").replace(",", " ").replace(";", " ").split()
    draft = {
        "title": (form.get("titre") or "").strip(),
        "parties": [commune, *others],
        "categories": form.getlist("categories"),
        "covers_staff": form.get("agents") == "oui",
        "tariff": form.get("tarif") or Tariff.LISTING_RATES.value,
        "starts_on": form.get("debut") or None,
    }
    if form.get("fin"):
        draft["ends_on"] = form.get("fin")
    if (form.get("epci") or "").strip():
        draft["epci"] = form.get("epci").strip()
    return draft


def decision_of(form) -> dict:
    return {
        "number": (form.get("numero") or "").strip(),
        "date": form.get("date") or None,
        "subject": (form.get("objet") or "").strip(),
        "agreement_ids": form.getlist("conventions"),
        "approves_tariffs": form.get("tarifs") == "oui",
        "authorises_mayor": form.get("maire") == "oui",
    }


def uploaded_pdf(form, name: str) -> str | None:
    """The PDF a form sent under `name` (base64, as the service takes it), if any."""
    upload = form.get(name)
    if not isinstance(upload, FileStorage) or not upload.filename:
        return None
    return base64.b64encode(upload.read()).decode("ascii")


def _pdf(content_b64: str, name: str) -> Response:
    return Response(
        base64.b64decode(content_b64),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


class AgreementPages:
    bookings = ServiceRpc("bookings")

    # -- conventions ------------------------------------------------------------------

    @page("GET", "/conventions", roles=READERS)
    def agreements_page(self, request, web: Web):
        return self._agreements(web, [], {}, 200)

    def _agreements(self, web: Web, problems: list[str], form: dict, status: int) -> Page:
        caller = as_rpc(web.caller)
        return Page(
            "agreements.html",
            {
                "agreements": self.bookings.list_agreements(caller, {})["items"],
                "policy": self.bookings.agreement_policy(caller),
                "statuses": AGREEMENT_STATUS,
                "tariffs": TARIFFS,
                "categories": CATEGORIES,
                "problems": problems,
                "form": form,
                "chosen": form.getlist("categories") if form else [],
            },
            status,
        )

    @page("POST", "/conventions", roles=MANAGERS)
    def draft_agreement_submit(self, request, web: Web):
        try:
            drafted = self.bookings.draft_agreement(
                as_rpc(web.caller), draft_of(web.form, web.caller.commune)
            )
        except ServiceError as exc:
            if exc.code != "invalid_input":
                raise
            return self._agreements(web, french.explain_refusal(exc), web.form, 422)
        return go(f"/conventions/{drafted['id']}")

    @page("POST", "/conventions/politique", roles=MANAGERS)
    def agreement_policy_submit(self, request, web: Web):
        required = web.form.get("exiger") == "oui"
        self.bookings.set_agreement_policy(as_rpc(web.caller), {"requires_agreement": required})
        return go("/conventions")

    @page("GET", "/conventions/<agreement_id>", roles=READERS)
    def agreement_page(self, request, web: Web, agreement_id: str):
        return self._agreement(web, agreement_id, [], 200)

    def _agreement(self, web: Web, agreement_id: str, problems: list[str], status: int) -> Page:
        caller = as_rpc(web.caller)
        agreement = self.bookings.agreement(caller, agreement_id)
        decisions = self.bookings.decisions(caller)["items"]
        ours = next(p for p in agreement["parties"] if p["commune"] == web.caller.commune)
        usable = [
            d for d in decisions if agreement_id in d["agreement_ids"] or d["authorises_mayor"]
        ]
        state = AgreementStatus(agreement["status"])
        manager = web.visitor.has(Role.MANAGER)
        return Page(
            "agreement.html",
            {
                "agreement": agreement,
                "statuses": AGREEMENT_STATUS,
                "tariffs": TARIFFS,
                "decisions": usable,
                "may_propose": manager and state == AgreementStatus.DRAFT,
                "may_sign": manager
                and state in (AgreementStatus.PROPOSED, AgreementStatus.SIGNED)
                and not ours["signed_on"],
                "may_end": manager and state != AgreementStatus.ENDED,
                "manager": manager,
                "problems": problems,
            },
            status,
        )

    @page("POST", "/conventions/<agreement_id>/<action>", roles=MANAGERS)
    def agreement_action(self, request, web: Web, agreement_id: str, action: str):
        caller = as_rpc(web.caller)
        try:
            if action == "signer":
                signature = {
                    "decision_id": web.form.get("deliberation") or "",
                    "signatory": (web.form.get("signataire") or "").strip(),
                }
                self.bookings.sign_agreement(caller, agreement_id, signature)
            elif action == "scan":
                content = uploaded_pdf(web.form, "fichier")
                if content is None:
                    return self._agreement(web, agreement_id, ["Choisissez un fichier PDF."], 422)
                self.bookings.attach_signed_scan(caller, agreement_id, content)
            elif action in ACTIONS:
                getattr(self.bookings, ACTIONS[action][0])(caller, agreement_id)
            else:
                return go(f"/conventions/{agreement_id}")
        except ServiceError as exc:
            if exc.code not in ("conflict", "invalid_input"):
                raise
            lines = french.explain_refusal(exc)
            return self._agreement(web, agreement_id, lines, status_of(exc))
        return go(f"/conventions/{agreement_id}")

    @page("GET", "/conventions/<agreement_id>/pdf", roles=READERS)
    def agreement_pdf(self, request, web: Web, agreement_id: str):
        document = self.bookings.agreement_pdf(as_rpc(web.caller), agreement_id)
        return _pdf(document, f"convention-{agreement_id}.pdf")

    @page("GET", "/conventions/<agreement_id>/scan", roles=READERS)
    def agreement_scan(self, request, web: Web, agreement_id: str):
        document = self.bookings.signed_scan(as_rpc(web.caller), agreement_id)
        return _pdf(document, f"convention-{agreement_id}-signee.pdf")

    @page("GET", "/reservations/<booking_id>/convention", roles=MANAGERS)
    def one_off_page(self, request, web: Web, booking_id: str):
        return self._one_off(web, booking_id, [], 200)

    def _one_off(self, web: Web, booking_id: str, problems: list[str], status: int) -> Page:
        caller = as_rpc(web.caller)
        booking = self.bookings.get(caller, booking_id)
        decisions = [d for d in self.bookings.decisions(caller)["items"] if d["authorises_mayor"]]
        return Page(
            "one_off_agreement.html",
            {"booking": booking, "decisions": decisions, "problems": problems},
            status,
        )

    @page("POST", "/reservations/<booking_id>/convention", roles=MANAGERS)
    def one_off_submit(self, request, web: Web, booking_id: str):
        signature = {
            "decision_id": web.form.get("deliberation") or "",
            "signatory": (web.form.get("signataire") or "").strip(),
        }
        try:
            made = self.bookings.propose_one_off(as_rpc(web.caller), booking_id, signature)
        except ServiceError as exc:
            if exc.code not in ("conflict", "invalid_input"):
                raise
            return self._one_off(web, booking_id, french.explain_refusal(exc), status_of(exc))
        return go(f"/conventions/{made['id']}")

    # -- délibérations ----------------------------------------------------------------

    @page("GET", "/deliberations", roles=READERS)
    def decisions_page(self, request, web: Web):
        return self._decisions(web, [], {}, 200)

    def _decisions(self, web: Web, problems: list[str], form: dict, status: int) -> Page:
        caller = as_rpc(web.caller)
        agreements = self.bookings.list_agreements(caller, {})["items"]
        return Page(
            "decisions.html",
            {
                "decisions": self.bookings.decisions(caller)["items"],
                "agreements": agreements,
                "references": {a["id"]: a["reference"] for a in agreements},
                "problems": problems,
                "form": form,
            },
            status,
        )

    @page("POST", "/deliberations", roles=MANAGERS)
    def record_decision_submit(self, request, web: Web):
        caller = as_rpc(web.caller)
        try:
            pdf = uploaded_pdf(web.form, "fichier")
            self.bookings.record_decision(caller, decision_of(web.form), pdf)
        except ServiceError as exc:
            if exc.code not in ("conflict", "invalid_input"):
                raise
            return self._decisions(web, french.explain_refusal(exc), web.form, status_of(exc))
        return go("/deliberations")

    @page("GET", "/deliberations/<decision_id>/pdf", roles=READERS)
    def decision_pdf(self, request, web: Web, decision_id: str):
        document = self.bookings.decision_pdf(as_rpc(web.caller), decision_id)
        return _pdf(document, f"deliberation-{decision_id}.pdf")
