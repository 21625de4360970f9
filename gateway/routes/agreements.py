"""Agreements between communes (conventions de mise à disposition), the council decisions
that approve them, and a lender's policy of lending only under one: kept by bookings."""

import base64

from werkzeug.wrappers import Response

from contracts.agreements import (
    AgreementDraft,
    AgreementList,
    AgreementPolicy,
    AgreementQuery,
    AgreementView,
    DecisionDraft,
    DecisionList,
    DecisionView,
    Signature,
)
from contracts.caller import Caller, Role
from gateway.http import api
from gateway.routes import as_rpc, query_dict
from gateway.rpc import ServiceRpc

AGREEMENTS = "Agreements"
MANAGERS = (Role.MANAGER,)
PDF = "application/pdf"
PDF_TYPES = (PDF, "application/octet-stream")
PDF_UPLOAD = (
    "Send the PDF as the body (`application/pdf` or `application/octet-stream`), or as the "
    "part `file` of a `multipart/form-data` form; at most 1,000,000 bytes. 422 `not_a_pdf` "
    "when it does not start with `%PDF-`, `pdf_too_large` beyond the limit."
)


def _pdf(content_b64: str, name: str) -> Response:
    return Response(
        base64.b64decode(content_b64),
        mimetype=PDF,
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


class AgreementRoutes:
    bookings = ServiceRpc("bookings")

    @api(
        "POST",
        "/api/v1/agreements",
        body=AgreementDraft,
        response=AgreementView,
        status=201,
        roles=MANAGERS,
        idempotent=True,
        tag=AGREEMENTS,
        summary="Draft an agreement between communes (a convention de mise à disposition)",
        description="By a manager of one of its parties: two or more distinct communes "
        "(`parties`, INSEE codes, and/or every commune of an EPCI by its SIREN, `epci`), "
        "the scope (listing `categories`, `covers_staff`), its term (`starts_on`, `ends_on` "
        "included, none: until ended), the tariff principle, the insurance and liability "
        "clause and how disputes are settled (standard French clauses unless given). Its "
        "reference is `CONV-<INSEE of the drafting commune>-<year>-<n>`. 422 naming the rule: "
        "`parties_not_distinct`, `unknown_epci`, `empty_scope`, `ends_before_start`, or "
        "`overlapping_agreement` when an agreement not ended already binds two of the same "
        "parties for a category (or staff) and days in common. Nothing is stored then.",
    )
    def draft_agreement(self, request, caller: Caller, body: AgreementDraft):
        return self.bookings.draft_agreement(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "GET",
        "/api/v1/agreements",
        query=AgreementQuery,
        response=AgreementList,
        tag=AGREEMENTS,
        summary="The agreements the caller's commune is party to, the latest first",
    )
    def list_agreements(self, request, caller: Caller, query: AgreementQuery):
        return self.bookings.list_agreements(as_rpc(caller), query_dict(query))

    @api(
        "GET",
        "/api/v1/agreements/<agreement_id>",
        response=AgreementView,
        tag=AGREEMENTS,
        summary="An agreement, its parties, their council decisions and signatures",
        description="404 when the caller's commune is not a party.",
    )
    def get_agreement(self, request, caller: Caller, agreement_id: str):
        return self.bookings.agreement(as_rpc(caller), agreement_id)

    @api(
        "POST",
        "/api/v1/agreements/<agreement_id>/propose",
        response=AgreementView,
        roles=MANAGERS,
        idempotent=True,
        tag=AGREEMENTS,
        summary="Propose a draft to the parties, for their councils and signatures",
        description="agreement.proposed. 409 unless it is a draft.",
    )
    def propose_agreement(self, request, caller: Caller, agreement_id: str):
        return self.bookings.propose_agreement(as_rpc(caller), agreement_id)

    @api(
        "POST",
        "/api/v1/agreements/<agreement_id>/sign",
        body=Signature,
        response=AgreementView,
        roles=MANAGERS,
        idempotent=True,
        tag=AGREEMENTS,
        summary="Sign for the caller's commune, under its council's decision",
        description="The decision (`decision_id`, recorded by the caller's commune) must "
        "approve this agreement or authorise the mayor to sign agreements (422 "
        "`unknown_decision`, `decision_does_not_approve`); 409 when the commune has signed, "
        "or the agreement is not proposed. agreement.signed; the last party's signature puts "
        "it in force (agreement.in_force), and the bookings between its parties that it "
        "covers carry its reference from then on.",
    )
    def sign_agreement(self, request, caller: Caller, agreement_id: str, body: Signature):
        return self.bookings.sign_agreement(as_rpc(caller), agreement_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/agreements/<agreement_id>/end",
        response=AgreementView,
        roles=MANAGERS,
        idempotent=True,
        tag=AGREEMENTS,
        summary="End an agreement (or withdraw one not yet in force)",
        description="agreement.ended; the loans it covered keep its reference. 409 when "
        "already ended.",
    )
    def end_agreement(self, request, caller: Caller, agreement_id: str):
        return self.bookings.end_agreement(as_rpc(caller), agreement_id)

    @api(
        "GET",
        "/api/v1/agreements/<agreement_id>/pdf",
        produces=PDF,
        tag=AGREEMENTS,
        summary="The agreement's French text as a PDF, for the councils' files",
    )
    def get_agreement_pdf(self, request, caller: Caller, agreement_id: str):
        document = self.bookings.agreement_pdf(as_rpc(caller), agreement_id)
        return _pdf(document, f"{agreement_id}.pdf")

    @api(
        "PUT",
        "/api/v1/agreements/<agreement_id>/signed-scan",
        consumes=PDF_TYPES,
        response=AgreementView,
        roles=MANAGERS,
        idempotent=True,
        tag=AGREEMENTS,
        summary="Attach the signed agreement, scanned (a PDF)",
        description=PDF_UPLOAD,
    )
    def attach_signed_scan(self, request, caller: Caller, agreement_id: str, body: bytes):
        content = base64.b64encode(body).decode("ascii")
        return self.bookings.attach_signed_scan(as_rpc(caller), agreement_id, content)

    @api(
        "GET",
        "/api/v1/agreements/<agreement_id>/signed-scan",
        produces=PDF,
        tag=AGREEMENTS,
        summary="The signed scan attached to the agreement (404 when none)",
    )
    def get_signed_scan(self, request, caller: Caller, agreement_id: str):
        document = self.bookings.signed_scan(as_rpc(caller), agreement_id)
        return _pdf(document, f"{agreement_id}-signee.pdf")

    @api(
        "POST",
        "/api/v1/council-decisions",
        body=DecisionDraft,
        response=DecisionView,
        status=201,
        roles=MANAGERS,
        idempotent=True,
        tag=AGREEMENTS,
        summary="Record a council decision of the caller's commune (a délibération)",
        description="Its number (once per commune: 409 again), date (422 "
        "`decision_in_the_future` after today in Paris), subject and what it approves: "
        "agreements the commune is party to (422 `unknown_agreement` otherwise), tariffs, "
        "authorising the mayor to sign agreements. Attach its PDF with PUT …/pdf.",
    )
    def record_decision(self, request, caller: Caller, body: DecisionDraft):
        return self.bookings.record_decision(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "GET",
        "/api/v1/council-decisions",
        response=DecisionList,
        tag=AGREEMENTS,
        summary="The caller's commune's council decisions, the latest first",
    )
    def list_decisions(self, request, caller: Caller):
        return self.bookings.decisions(as_rpc(caller))

    @api(
        "PUT",
        "/api/v1/council-decisions/<decision_id>/pdf",
        consumes=PDF_TYPES,
        response=DecisionView,
        roles=MANAGERS,
        idempotent=True,
        tag=AGREEMENTS,
        summary="Attach the decision's PDF",
        description=PDF_UPLOAD,
    )
    def attach_decision_pdf(self, request, caller: Caller, decision_id: str, body: bytes):
        content = base64.b64encode(body).decode("ascii")
        return self.bookings.attach_decision_pdf(as_rpc(caller), decision_id, content)

    @api(
        "GET",
        "/api/v1/council-decisions/<decision_id>/pdf",
        produces=PDF,
        tag=AGREEMENTS,
        summary="The decision's PDF (404 when none is attached)",
    )
    def get_decision_pdf(self, request, caller: Caller, decision_id: str):
        document = self.bookings.decision_pdf(as_rpc(caller), decision_id)
        return _pdf(document, f"deliberation-{decision_id}.pdf")

    @api(
        "GET",
        "/api/v1/agreement-policy",
        response=AgreementPolicy,
        tag=AGREEMENTS,
        summary="Whether the caller's commune lends only under an agreement in force",
    )
    def get_agreement_policy(self, request, caller: Caller):
        return self.bookings.agreement_policy(as_rpc(caller))

    @api(
        "PUT",
        "/api/v1/agreement-policy",
        body=AgreementPolicy,
        response=AgreementPolicy,
        roles=MANAGERS,
        idempotent=True,
        tag=AGREEMENTS,
        summary="Lend only under an agreement in force, or not",
        description="With `requires_agreement`, a request for the commune's listings that "
        "no agreement in force covers is held (`agreement_held`): its approval answers 409 "
        "until a one-off agreement is signed by both managers (POST "
        "/bookings/{booking_id}/one-off-agreement, then the borrower's signature).",
    )
    def set_agreement_policy(self, request, caller: Caller, body: AgreementPolicy):
        return self.bookings.set_agreement_policy(as_rpc(caller), body.model_dump())

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/one-off-agreement",
        body=Signature,
        response=AgreementView,
        status=201,
        roles=MANAGERS,
        idempotent=True,
        tag=AGREEMENTS,
        summary="The lender's manager proposes and signs a one-off agreement for a held request",
        description="Parties the two communes, scope the listing's category, term the "
        "loan's days; signed at once for the lender under `decision_id`. In force once the "
        "borrower's manager signs it (POST /agreements/{agreement_id}/sign); the request may "
        "then be approved. 409 when the request is not held.",
    )
    def propose_one_off(self, request, caller: Caller, booking_id: str, body: Signature):
        return self.bookings.propose_one_off(as_rpc(caller), booking_id, body.model_dump())
