"""Consultants routes: profiles, the skills vocabulary, matching, engagements, timesheets."""

from contracts.caller import Caller, Role
from contracts.consultants import (
    Acceptance,
    AvailabilityChange,
    ConsultantChanges,
    ConsultantDraft,
    ConsultantView,
    EngagementPage,
    EngagementQuery,
    EngagementRequest,
    EngagementView,
    MatchPage,
    MatchQuery,
    SkillList,
    TimesheetCorrection,
    TimesheetEntry,
)
from contracts.fields import Reason, RequiredReason
from gateway.http import api
from gateway.routes import as_rpc, query_dict
from gateway.rpc import ServiceRpc

CONSULTANTS = "Consultants"
ENGAGEMENTS = "Engagements"
PARTIES = (Role.AGENT, Role.MANAGER)


class ConsultantRoutes:
    consultants = ServiceRpc("consultants")

    # -- profiles ---------------------------------------------------------------------

    @api(
        "GET",
        "/api/v1/consultants/skills",
        response=SkillList,
        tag=CONSULTANTS,
        summary="The skills vocabulary (French), with synonyms and related skills",
    )
    def consultant_skills(self, request, caller: Caller):
        return self.consultants.skills()

    @api(
        "POST",
        "/api/v1/consultants",
        body=ConsultantDraft,
        response=ConsultantView,
        status=201,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=CONSULTANTS,
        summary="Publish a staff expert of the caller's commune",
        description="Skills are ids, labels or synonyms of the vocabulary; an unknown one "
        "answers 422 with the closest known skills.",
    )
    def publish_consultant(self, request, caller: Caller, body: ConsultantDraft):
        return self.consultants.publish(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "GET",
        "/api/v1/consultants/match",
        query=MatchQuery,
        response=MatchPage,
        tag=CONSULTANTS,
        summary="Consultants ranked for a need, each score explained",
        description="`need` is free French text; `skills` (comma-separated) are required "
        "skills; `near` defaults to the caller's commune; `from`/`to` (to included) and "
        "`days` ask for availability; `max_day_rate_cents` is a ceiling. Who is "
        "unavailable or above the ceiling ranks below those who fit, or is left out with "
        "`only_fitting=true`.",
    )
    def match_consultants(self, request, caller: Caller, query: MatchQuery):
        return self.consultants.match(as_rpc(caller), query_dict(query))

    @api(
        "GET",
        "/api/v1/consultants/<consultant_id>",
        response=ConsultantView,
        tag=CONSULTANTS,
        summary="One consultant",
    )
    def get_consultant(self, request, caller: Caller, consultant_id: str):
        return self.consultants.get(as_rpc(caller), consultant_id)

    @api(
        "PATCH",
        "/api/v1/consultants/<consultant_id>",
        body=ConsultantChanges,
        response=ConsultantView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=CONSULTANTS,
        summary="Edit a consultant (the home commune's manager)",
    )
    def edit_consultant(self, request, caller: Caller, consultant_id: str, body: ConsultantChanges):
        changes = body.model_dump(mode="json", exclude_unset=True)
        return self.consultants.update(as_rpc(caller), consultant_id, changes)

    @api(
        "DELETE",
        "/api/v1/consultants/<consultant_id>",
        response=ConsultantView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=CONSULTANTS,
        summary="Withdraw a consultant: no new engagements, existing ones are kept",
    )
    def withdraw_consultant(self, request, caller: Caller, consultant_id: str):
        return self.consultants.withdraw(as_rpc(caller), consultant_id)

    @api(
        "POST",
        "/api/v1/consultants/<consultant_id>/availability",
        body=AvailabilityChange,
        response=ConsultantView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=CONSULTANTS,
        summary="Add available/unavailable periods (or replace them all)",
        description="409 if the days already committed to engagements would no longer fit.",
    )
    def consultant_availability(
        self, request, caller: Caller, consultant_id: str, body: AvailabilityChange
    ):
        change = body.model_dump(mode="json")
        return self.consultants.set_availability(as_rpc(caller), consultant_id, change)

    # -- engagements ------------------------------------------------------------------

    @api(
        "POST",
        "/api/v1/engagements",
        body=EngagementRequest,
        response=EngagementView,
        status=201,
        roles=PARTIES,
        idempotent=True,
        tag=ENGAGEMENTS,
        summary="Request days of another commune's consultant",
        description="409 when the consultant has not that many days free in the period; "
        "the request holds nothing until the consultant's commune accepts it.",
    )
    def request_engagement(self, request, caller: Caller, body: EngagementRequest):
        return self.consultants.request_engagement(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "GET",
        "/api/v1/engagements",
        query=EngagementQuery,
        response=EngagementPage,
        tag=ENGAGEMENTS,
        summary="The caller's commune's engagements, as borrower or lender",
    )
    def list_engagements(self, request, caller: Caller, query: EngagementQuery):
        return self.consultants.list_engagements(as_rpc(caller), query_dict(query))

    @api(
        "GET",
        "/api/v1/engagements/<engagement_id>",
        response=EngagementView,
        tag=ENGAGEMENTS,
        summary="One engagement with its timesheets and history (the two communes only)",
    )
    def get_engagement(self, request, caller: Caller, engagement_id: str):
        return self.consultants.get_engagement(as_rpc(caller), engagement_id)

    @api(
        "POST",
        "/api/v1/engagements/<engagement_id>/accept",
        response=EngagementView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=ENGAGEMENTS,
        body=Acceptance,
        summary="The consultant's commune commits the days, recording the official's consent",
        description="The lender's manager records when the lent official consented (required: "
        "422 without it, or dated in the future). 409 if the days would take the consultant "
        "beyond their availability or monthly maximum.",
    )
    def accept_engagement(self, request, caller: Caller, engagement_id: str, body: Acceptance):
        return self.consultants.accept(as_rpc(caller), engagement_id, body.model_dump(mode="json"))

    @api(
        "POST",
        "/api/v1/engagements/<engagement_id>/reject",
        body=RequiredReason,
        response=EngagementView,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=ENGAGEMENTS,
        summary="The consultant's commune declines, with a reason",
    )
    def reject_engagement(self, request, caller: Caller, engagement_id: str, body: RequiredReason):
        return self.consultants.reject(as_rpc(caller), engagement_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/engagements/<engagement_id>/cancel",
        body=Reason,
        response=EngagementView,
        roles=PARTIES,
        idempotent=True,
        tag=ENGAGEMENTS,
        summary="Either commune cancels, before the engagement starts",
    )
    def cancel_engagement(self, request, caller: Caller, engagement_id: str, body: Reason):
        return self.consultants.cancel(as_rpc(caller), engagement_id, body.model_dump())

    @api(
        "POST",
        "/api/v1/engagements/<engagement_id>/complete",
        response=EngagementView,
        roles=PARTIES,
        idempotent=True,
        tag=ENGAGEMENTS,
        summary="Close an engagement whose days worked are all approved",
    )
    def complete_engagement(self, request, caller: Caller, engagement_id: str):
        return self.consultants.complete(as_rpc(caller), engagement_id)

    @api(
        "POST",
        "/api/v1/engagements/<engagement_id>/timesheets",
        body=TimesheetEntry,
        response=EngagementView,
        status=201,
        roles=PARTIES,
        idempotent=True,
        tag=ENGAGEMENTS,
        summary="The consultant's commune records days worked (whole or half days)",
        description="422 beyond the engagement's days, outside its period or in the future; "
        "beyond one day for the person on that date across all their engagements "
        "(`one_day_per_date`, with `days_left`); on a weekend or a public holiday of the "
        "consultant's home commune (Alsace-Moselle's included) without `exceptional_work` "
        "and its `exceptional_reason` (`exceptional_work_required`, naming the day).",
    )
    def record_timesheet(self, request, caller: Caller, engagement_id: str, body: TimesheetEntry):
        entry = body.model_dump(mode="json")
        return self.consultants.record_timesheet(as_rpc(caller), engagement_id, entry)

    @api(
        "POST",
        "/api/v1/engagements/<engagement_id>/timesheets/<timesheet_id>/approve",
        response=EngagementView,
        roles=PARTIES,
        idempotent=True,
        tag=ENGAGEMENTS,
        summary="The requesting commune approves days worked: what gets charged",
    )
    def approve_timesheet(self, request, caller: Caller, engagement_id: str, timesheet_id: str):
        return self.consultants.approve_timesheet(as_rpc(caller), engagement_id, timesheet_id)

    @api(
        "POST",
        "/api/v1/engagements/<engagement_id>/timesheets/<timesheet_id>/reject",
        body=RequiredReason,
        response=EngagementView,
        roles=PARTIES,
        idempotent=True,
        tag=ENGAGEMENTS,
        summary="The requesting commune rejects days worked, with a reason",
        description="Nothing is charged; the consultant's commune corrects them "
        "(`engagement.timesheet_rejected`). 409 unless the days are to approve.",
    )
    def reject_timesheet(
        self, request, caller: Caller, engagement_id: str, timesheet_id: str, body: RequiredReason
    ):
        return self.consultants.reject_timesheet(
            as_rpc(caller), engagement_id, timesheet_id, body.model_dump()
        )

    @api(
        "POST",
        "/api/v1/engagements/<engagement_id>/timesheets/<timesheet_id>/correct",
        body=TimesheetCorrection,
        response=EngagementView,
        roles=PARTIES,
        idempotent=True,
        tag=ENGAGEMENTS,
        summary="The consultant's commune corrects rejected days (days, note): to approve again",
        description="The date stays; the rules of days recorded apply. 409 unless rejected.",
    )
    def correct_timesheet(
        self,
        request,
        caller: Caller,
        engagement_id: str,
        timesheet_id: str,
        body: TimesheetCorrection,
    ):
        correction = body.model_dump(mode="json")
        return self.consultants.correct_timesheet(
            as_rpc(caller), engagement_id, timesheet_id, correction
        )
