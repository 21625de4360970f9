"""The consultants nameko service: entrypoints only; rules live in domain.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.caller import Caller, Role
from contracts.clock import paris_today
from contracts.consultants import (
    AvailabilityChange,
    ConsultantChanges,
    ConsultantDraft,
    ConsultantStatus,
    ConsultantTerms,
    ConsultantUpdated,
    ConsultantWithdrawn,
    EngagementQuery,
    EngagementRequest,
    EngagementStatus,
    EngagementTimesheetApproved,
    Match,
    MatchPage,
    MatchQuery,
    SkillList,
    SkillView,
    TimesheetApproval,
    TimesheetEntry,
    TimesheetStatus,
)
from contracts.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    unknown_commune,
    validated,
)
from contracts.fields import Reason, RequiredReason, is_uuid
from infra.communes import communes
from infra.health import OperableService
from infra.rpc import rpc
from services.consultants import domain, repository
from services.consultants.dependencies import MatchingIndex
from services.consultants.domain import Commitment, Need, Period, as_days, half_days


class Service(OperableService):
    name = "consultants"

    catalogue = MatchingIndex()

    # -- profiles ---------------------------------------------------------------------

    @rpc
    def skills(self) -> dict:
        """The skills vocabulary: what profiles and needs are described with."""
        vocab = domain.vocabulary()
        return SkillList(
            items=[
                SkillView(
                    id=s.id,
                    label=s.label,
                    domain=s.domain,
                    synonyms=list(s.synonyms),
                    related=sorted(vocab.related[s.id]),
                )
                for s in vocab.skills.values()
            ]
        ).model_dump(mode="json")

    @rpc
    def publish(self, caller: dict, draft: dict) -> dict:
        who = Caller.model_validate(caller)
        asked = validated(ConsultantDraft, draft)
        domain.ensure_manager_of(who, who.commune)
        terms = _with_skill_ids(asked)
        with self.db.transaction() as tx:
            row = repository.publish(tx, who.commune, who.user_id, terms, asked.availability)
            periods = repository.periods_of(tx.session, [row.id])[row.id]
        return repository.view_of(row, periods).model_dump(mode="json")

    @rpc
    def get(self, caller: dict, consultant_id: str) -> dict:
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            row = self._visible(session, who, consultant_id)
            periods = repository.periods_of(session, [row.id])[row.id]
        return repository.view_of(row, periods).model_dump(mode="json")

    @rpc
    def update(self, caller: dict, consultant_id: str, changes: dict) -> dict:
        who = Caller.model_validate(caller)
        edit = validated(ConsultantChanges, changes)
        if edit.skills is not None:
            edit.skills = domain.vocabulary().resolve(edit.skills)
        with self.db.transaction() as tx:
            row = self._for_change(tx.session, who, consultant_id)
            terms = domain.amended(repository.terms_of(row), edit)
            if terms.max_days_per_month < row.max_days_per_month:
                self._ensure_commitments_fit(tx.session, row, terms.max_days_per_month)
            for name, value in terms.model_dump(mode="json").items():
                setattr(row, name, value)
            repository.bump(row)
            tx.emit(ConsultantUpdated, repository.snapshot_of(row))
            periods = repository.periods_of(tx.session, [row.id])[row.id]
        return repository.view_of(row, periods).model_dump(mode="json")

    @rpc
    def withdraw(self, caller: dict, consultant_id: str) -> dict:
        """No new engagements from now on; those already made are kept. Idempotent."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            row = self._visible(tx.session, who, consultant_id, for_update=True)
            domain.ensure_manager_of(who, row.home_commune)
            if row.status != ConsultantStatus.WITHDRAWN.value:
                row.status = ConsultantStatus.WITHDRAWN.value
                repository.bump(row)
                tx.emit(ConsultantWithdrawn, repository.snapshot_of(row))
            periods = repository.periods_of(tx.session, [row.id])[row.id]
        return repository.view_of(row, periods).model_dump(mode="json")

    @rpc
    def set_availability(self, caller: dict, consultant_id: str, change: dict) -> dict:
        """Adds available/unavailable periods (or replaces them all); refused (409) if the
        days already committed would no longer fit."""
        who = Caller.model_validate(caller)
        asked = validated(AvailabilityChange, change)
        with self.db.transaction() as tx:
            row = self._for_change(tx.session, who, consultant_id)
            if asked.replace:
                repository.clear_periods(tx.session, row.id)
            repository.add_periods(tx.session, row.id, asked.periods)
            self._ensure_commitments_fit(tx.session, row, row.max_days_per_month)
            repository.bump(row)
            tx.emit(ConsultantUpdated, repository.snapshot_of(row))
            periods = repository.periods_of(tx.session, [row.id])[row.id]
        return repository.view_of(row, periods).model_dump(mode="json")

    # -- matching ---------------------------------------------------------------------

    @rpc
    def match(self, caller: dict, query: dict) -> dict:
        """Consultants ranked for a need, each with the explanation of its score."""
        who = Caller.model_validate(caller)
        asked = validated(MatchQuery, query)
        skills = domain.vocabulary().resolve(asked.skills) if asked.skills else []
        near = asked.near or who.commune
        origin = communes().get(near)
        if origin is None or origin.latitude is None or origin.longitude is None:
            raise unknown_commune("near", near)
        window = None
        if asked.from_ is not None and asked.to is not None:
            window = Period(asked.from_, asked.to + timedelta(days=1))  # `to` is included
        need = Need(
            text=asked.need or "",
            skills=tuple(skills),
            origin=(origin.latitude, origin.longitude),
            window=window,
            days=asked.days,
            max_day_rate_cents=asked.max_day_rate_cents,
            exclude_commune=who.commune,  # a commune does not engage its own staff
            only_fitting=asked.only_fitting,
            limit=asked.limit,
        )
        with self.db.reading() as session:
            result, views = self.catalogue.match(session, need)
        return MatchPage(
            items=[
                Match(consultant=view, score=r.score, fits=r.fits, explanation=r.explanation)
                for r, view in zip(result.items, views, strict=True)
            ],
            candidates=result.candidates,
            near=near,
            need_terms=result.need_terms,
        ).model_dump(mode="json")

    # -- engagements ------------------------------------------------------------------

    @rpc
    def request_engagement(self, caller: dict, request: dict) -> dict:
        """An agent or manager asks another commune for days of one of its consultants."""
        who = Caller.model_validate(caller)
        asked = validated(EngagementRequest, request)
        if not who.has(Role.AGENT, Role.MANAGER):
            raise Forbidden("Only an agent or a manager may request an engagement")
        today = paris_today()
        with self.db.transaction() as tx:
            consultant = (
                repository.consultant(tx.session, asked.consultant_id)
                if is_uuid(asked.consultant_id)
                else None
            )
            if consultant is None or (
                consultant.status != ConsultantStatus.PUBLISHED.value
                and consultant.home_commune != who.commune
            ):
                raise InvalidInput(
                    "Unknown consultant",
                    [
                        {
                            "field": "consultant_id",
                            "message": "no such consultant",
                            "type": "unknown_consultant",
                        }
                    ],
                )
            calendar = repository.calendar_of(tx.session, consultant.id)
            domain.check_request(
                published=consultant.status == ConsultantStatus.PUBLISHED.value,
                home_commune=consultant.home_commune,
                borrower=who.commune,
                start=asked.start,
                end=asked.end,
                days=asked.days,
                calendar=calendar,
                today=today,
            )
            # requests hold nothing; this only spares asking for days that are not there
            span = Period(asked.start, asked.end)
            held = repository.commitments_of(tx.session, [consultant.id])[consultant.id]
            _, free = domain.free_half_days(
                calendar, consultant.max_days_per_month, domain.entangled(held, span), span
            )
            if free < half_days(asked.days):
                raise _not_enough_days(asked.start, asked.end, free)
            row = repository.add_engagement(
                tx,
                consultant=consultant,
                caller=who,
                start=asked.start,
                end=asked.end,
                half_days=half_days(asked.days),
                mission=asked.mission,
                order_reference=asked.order_reference,
            )
            (view,) = repository.engagement_views(tx.session, [row])
        return view.model_dump(mode="json")

    @rpc
    def accept(self, caller: dict, engagement_id: str) -> dict:
        """The consultant's commune commits the days: refused (409) if they would take the
        consultant beyond their availability or monthly maximum, whatever else was
        accepted meanwhile (the consultant's row is locked while deciding)."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            consultant, row = self._locked(tx.session, who, engagement_id, "accept")
            domain.next_status(EngagementStatus(row.status), "accept")
            if consultant.status != ConsultantStatus.PUBLISHED.value:
                raise Conflict("This consultant is withdrawn")
            if paris_today() >= row.end:
                raise Conflict("The engagement's period is over")
            span = Period(row.start, row.end)
            others = repository.commitments_of(tx.session, [consultant.id], exclude=row.id)
            held = others[consultant.id]
            calendar = repository.calendar_of(tx.session, consultant.id)
            new = Commitment(row.id, row.start, row.end, row.half_days)
            if not domain.commitments_fit(
                calendar, consultant.max_days_per_month, domain.entangled([*held, new], span)
            ):
                _, free = domain.free_half_days(
                    calendar, consultant.max_days_per_month, domain.entangled(held, span), span
                )
                raise _not_enough_days(row.start, row.end, free)
            repository.record_transition(tx, row, EngagementStatus.ACCEPTED, who)
            repository.bump(consultant)
            (view,) = repository.engagement_views(tx.session, [row])
        return view.model_dump(mode="json")

    @rpc
    def reject(self, caller: dict, engagement_id: str, body: dict) -> dict:
        reason = validated(RequiredReason, body).reason
        return self._transition(caller, engagement_id, "reject", reason)

    @rpc
    def cancel(self, caller: dict, engagement_id: str, body: dict) -> dict:
        reason = validated(Reason, body).reason
        return self._transition(caller, engagement_id, "cancel", reason)

    @rpc
    def complete(self, caller: dict, engagement_id: str) -> dict:
        return self._transition(caller, engagement_id, "complete", "")

    def _transition(self, caller: dict, engagement_id: str, action: str, note: str) -> dict:
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            consultant, row = self._locked(tx.session, who, engagement_id, action)
            current = EngagementStatus(row.status)
            target = domain.next_status(current, action)
            if action == "cancel":
                domain.check_cancellable(row.start, paris_today())
            if action == "complete":
                sheets = repository.timesheets_of(tx.session, [row.id])[row.id]
                if any(t.status != TimesheetStatus.APPROVED.value for t in sheets):
                    raise Conflict("Some days worked are not approved yet")
            repository.record_transition(tx, row, target, who, note)
            if current in domain.RESERVING:
                repository.bump(consultant)  # the days it held change
            (view,) = repository.engagement_views(tx.session, [row])
        return view.model_dump(mode="json")

    # -- timesheets -------------------------------------------------------------------

    @rpc
    def record_timesheet(self, caller: dict, engagement_id: str, entry: dict) -> dict:
        """The consultant's commune records days worked."""
        who = Caller.model_validate(caller)
        asked = validated(TimesheetEntry, entry)
        with self.db.transaction() as tx:
            _, row = self._locked(tx.session, who, engagement_id, "record_timesheet")
            sheets = repository.timesheets_of(tx.session, [row.id])[row.id]
            domain.check_timesheet(
                status=EngagementStatus(row.status),
                start=row.start,
                end=row.end,
                days_total=as_days(row.half_days),
                days_recorded=as_days(sum(t.half_days for t in sheets)),
                work_date=asked.date,
                days=asked.days,
                today=paris_today(),
            )
            repository.add_timesheet(
                tx.session, row.id, asked.date, half_days(asked.days), asked.note, who
            )
            (view,) = repository.engagement_views(tx.session, [row])
        return view.model_dump(mode="json")

    @rpc
    def approve_timesheet(self, caller: dict, engagement_id: str, timesheet_id: str) -> dict:
        """The requesting commune approves days worked: what billing charges."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            _, row = self._locked(tx.session, who, engagement_id, "approve_timesheet")
            sheet = repository.timesheet_for_update(tx.session, row.id, timesheet_id)
            if sheet.status != TimesheetStatus.RECORDED.value:
                raise Conflict("These days are already approved")
            sheet.status = TimesheetStatus.APPROVED.value
            sheet.approved_by = who.user_id
            sheet.approved_at = datetime.now(UTC)
            days = as_days(sheet.half_days)
            tx.emit(
                EngagementTimesheetApproved,
                TimesheetApproval(
                    engagement_id=row.id,
                    timesheet_id=sheet.id,
                    consultant_id=row.consultant_id,
                    consultant_name=row.consultant_name,
                    lender_commune=row.lender_commune,
                    borrower_commune=row.borrower_commune,
                    work_date=sheet.work_date,
                    days=days,
                    day_rate_cents=row.day_rate_cents,
                    amount_cents=domain.amount_cents(days, row.day_rate_cents),
                    currency=row.currency,
                    mission=row.mission,
                    order_reference=row.order_reference,
                ),
            )
            tx.session.flush()
            (view,) = repository.engagement_views(tx.session, [row])
        return view.model_dump(mode="json")

    # -- reading ----------------------------------------------------------------------

    @rpc
    def get_engagement(self, caller: dict, engagement_id: str) -> dict:
        who = Caller.model_validate(caller)
        if not is_uuid(engagement_id):
            raise NotFound("No such engagement")
        with self.db.reading() as session:
            row = repository.get_engagement(session, engagement_id)
            domain.ensure_party(who, row.borrower_commune, row.lender_commune)
            (view,) = repository.engagement_views(session, [row])
        return view.model_dump(mode="json")

    @rpc
    def list_engagements(self, caller: dict, query: dict) -> dict:
        who = Caller.model_validate(caller)
        q = validated(EngagementQuery, query)
        with self.db.reading() as session:
            rows, cursor = repository.engagements_of(session, who.commune, q)
            views = repository.engagement_views(session, rows)
        return {"items": [v.model_dump(mode="json") for v in views], "next_cursor": cursor}

    # -- helpers ----------------------------------------------------------------------

    def _visible(self, session, who: Caller, consultant_id: str, for_update: bool = False):
        """A published consultant, or a withdrawn one of the caller's own commune; else 404."""
        row = (
            repository.consultant(session, consultant_id, for_update)
            if is_uuid(consultant_id)
            else None
        )
        if row is None or (
            row.status != ConsultantStatus.PUBLISHED.value and row.home_commune != who.commune
        ):
            raise NotFound(f"No consultant {consultant_id}")
        return row

    def _for_change(self, session, who: Caller, consultant_id: str):
        row = self._visible(session, who, consultant_id, for_update=True)
        domain.ensure_manager_of(who, row.home_commune)
        if row.status == ConsultantStatus.WITHDRAWN.value:
            raise Conflict("This consultant is withdrawn and can no longer change")
        return row

    def _locked(self, session, who: Caller, engagement_id: str, action: str):
        """The engagement and its consultant, both locked, the consultant first (every path
        locks in that order, so two of them never wait on each other)."""
        if not is_uuid(engagement_id):
            raise NotFound("No such engagement")
        found = repository.get_engagement(session, engagement_id)
        domain.ensure_may(who, action, found.borrower_commune, found.lender_commune)
        consultant = repository.consultant(session, found.consultant_id, for_update=True)
        row = repository.get_engagement(session, engagement_id, for_update=True)
        return consultant, row

    def _ensure_commitments_fit(self, session, row, max_days_per_month: int) -> None:
        """The days already committed still fit the consultant's calendar and maximum."""
        held = repository.commitments_of(session, [row.id])[row.id]
        if not held:
            return
        calendar = repository.calendar_of(session, row.id)
        today = paris_today()
        span = Period(today, max(today, *(c.end for c in held)))
        if not domain.commitments_fit(calendar, max_days_per_month, domain.entangled(held, span)):
            raise Conflict(
                "The days already committed to engagements would no longer fit: change "
                "or cancel those engagements first"
            )


def _with_skill_ids(draft: ConsultantDraft) -> ConsultantTerms:
    """The draft's terms with its skills as vocabulary ids (unknown ones refused, 422)."""
    fields = draft.model_dump(exclude={"availability"})
    fields["skills"] = domain.vocabulary().resolve(draft.skills)
    return validated(ConsultantTerms, fields)


def _not_enough_days(start, end, free: int) -> Conflict:
    return Conflict(
        f"The consultant has {as_days(free)} day(s) free between {start.isoformat()} and "
        f"{(end - timedelta(days=1)).isoformat()}: their calendar, monthly maximum and "
        f"engagements already accepted leave no more",
        available_days=str(as_days(free)),
    )
