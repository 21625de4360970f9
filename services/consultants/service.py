"""The consultants nameko service: entrypoints that load, ask the domain (domain/), store
(repository.py) and emit the events; the service-layer steps the seeders share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from contracts import clock
from contracts.caller import Caller
from contracts.clock import paris_today
from contracts.consultants import (
    EVENT_OF_STATUS,
    Acceptance,
    AvailabilityChange,
    AvailabilityPeriod,
    ConsultantChanges,
    ConsultantDraft,
    ConsultantPublished,
    ConsultantStatus,
    ConsultantTerms,
    ConsultantUpdated,
    ConsultantWithdrawn,
    EngagementAction,
    EngagementQuery,
    EngagementRequest,
    EngagementStatus,
    EngagementTimesheetApproved,
    EngagementTimesheetRecorded,
    EngagementTimesheetRejected,
    Match,
    MatchPage,
    MatchQuery,
    SkillList,
    SkillView,
    TimesheetCorrection,
    TimesheetEntry,
    TimesheetStatus,
)
from contracts.errors import (
    NotFound,
    unknown_commune,
    validated,
)
from contracts.events import Event
from contracts.fields import Reason, RequiredReason, is_uuid
from contracts.topology import BOOKINGS_TO_CONSULTANTS
from infra.communes import communes
from infra.consumer import consume_events
from infra.database import UnitOfWork
from infra.health import OperableService
from infra.rpc import rpc
from infra.timers import periodic
from services.consultants import domain, repository
from services.consultants.dependencies import MatchingIndex
from services.consultants.domain import Commitment, Period, as_days, half_days
from services.consultants.domain.agreements import check_consent
from services.consultants.models import ConsultantRow, EngagementRow, TimesheetRow
from services.consultants.settings import Settings


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
        terms = domain.terms_of_draft(asked)
        with self.db.transaction() as tx:
            row = publish_consultant(tx, who, terms, asked.availability)
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
        edit = domain.with_skill_ids(validated(ConsultantChanges, changes))
        with self.db.transaction() as tx:
            row = self._for_change(tx.session, who, consultant_id)
            terms = domain.amended(repository.terms_of(row), edit)
            _ensure_commitments_fit(
                tx.session, row, terms.max_days_per_month, previous_max=row.max_days_per_month
            )
            repository.change_terms(row, terms)
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
            if not domain.is_withdrawn(row.status):
                repository.withdraw(row)
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
            _ensure_commitments_fit(tx.session, row, row.max_days_per_month)
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
        need = domain.need_for(asked, skills, (origin.latitude, origin.longitude), who.commune)
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
        domain.ensure_may_request(who)
        today = paris_today()
        with self.db.transaction() as tx:
            consultant = _seen(tx.session, who, asked.consultant_id)
            if consultant is None:
                raise domain.unknown_consultant()
            calendar = repository.calendar_of(tx.session, consultant)
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
            held = repository.commitments_of(tx.session, [consultant.id])[consultant.id]
            domain.ensure_days_free(
                calendar,
                consultant.max_days_per_month,
                held,
                Period(asked.start, asked.end),
                asked.days,
            )
            row = request_days(tx, consultant, who, asked)
            (view,) = repository.engagement_views(tx.session, [row])
        return view.model_dump(mode="json")

    @rpc
    def accept(self, caller: dict, engagement_id: str, body: dict | None = None) -> dict:
        """The consultant's commune commits the days, its manager recording the official's
        consent (422 without it): refused (409) if they would take the consultant beyond
        their availability or monthly maximum, whatever else was accepted meanwhile (the
        consultant's row is locked while deciding)."""
        who = Caller.model_validate(caller)
        consent = validated(Acceptance, body or {}).consent
        check_consent(consent, paris_today())
        with self.db.transaction() as tx:
            consultant, row = self._locked(tx.session, who, engagement_id, "accept")
            others = repository.commitments_of(tx.session, [consultant.id], exclude=row.id)
            target = domain.check_accept(
                EngagementStatus(row.status),
                published=consultant.status == ConsultantStatus.PUBLISHED.value,
                calendar=repository.calendar_of(tx.session, consultant),
                max_days_per_month=consultant.max_days_per_month,
                held=others[consultant.id],
                engagement=Commitment(row.id, row.start, row.end, row.half_days),
                today=paris_today(),
            )
            repository.record_consent(row, consent, who)
            move_engagement(tx, row, target, who)
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
            sheets = repository.timesheets_of(tx.session, [row.id])[row.id]
            target = domain.check_transition(
                action,
                current,
                start=row.start,
                today=paris_today(),
                timesheets=[TimesheetStatus(s.status) for s in sheets],
            )
            move_engagement(tx, row, target, who, note)
            if domain.moves_held_days(current, target):
                repository.bump(consultant)
            (view,) = repository.engagement_views(tx.session, [row])
        return view.model_dump(mode="json")

    # -- timesheets -------------------------------------------------------------------

    @rpc
    def record_timesheet(self, caller: dict, engagement_id: str, entry: dict) -> dict:
        """The consultant's commune records days worked: at most one day a date for the
        person across all their engagements (the consultant's row is locked while
        deciding, so two engagements recording the same date are decided in turn)."""
        who = Caller.model_validate(caller)
        asked = validated(TimesheetEntry, entry)
        with self.db.transaction() as tx:
            consultant, row = self._locked(tx.session, who, engagement_id, "record_timesheet")
            _check_days_worked(tx.session, consultant, row, asked.date, asked)
            sheet = repository.add_timesheet(
                tx.session,
                row.id,
                asked.date,
                half_days(asked.days),
                asked.note,
                who,
                asked.exceptional_reason,
            )
            tx.emit(EngagementTimesheetRecorded, repository.timesheet_recording(row, sheet))
            (view,) = repository.engagement_views(tx.session, [row])
        return view.model_dump(mode="json")

    @rpc
    def approve_timesheet(self, caller: dict, engagement_id: str, timesheet_id: str) -> dict:
        """The requesting commune approves days worked: what billing charges."""

        def approve(tx: UnitOfWork, row: EngagementRow, sheet: TimesheetRow, who: Caller):
            repository.approve_timesheet(sheet, who)
            approval = repository.timesheet_approval(tx.session, row, sheet)
            tx.emit(EngagementTimesheetApproved, approval)

        action = EngagementAction.APPROVE_TIMESHEET
        return self._decide_timesheet(caller, engagement_id, timesheet_id, action, approve)

    @rpc
    def reject_timesheet(
        self, caller: dict, engagement_id: str, timesheet_id: str, body: dict
    ) -> dict:
        """The requesting commune rejects days worked, saying why: nothing is charged, the
        consultant's commune corrects them."""
        reason = validated(RequiredReason, body).reason

        def reject(tx: UnitOfWork, row: EngagementRow, sheet: TimesheetRow, who: Caller):
            repository.reject_timesheet(sheet, who, reason)
            tx.emit(EngagementTimesheetRejected, repository.timesheet_rejection(row, sheet))

        action = EngagementAction.REJECT_TIMESHEET
        return self._decide_timesheet(caller, engagement_id, timesheet_id, action, reject)

    def _decide_timesheet(
        self, caller: dict, engagement_id: str, timesheet_id: str, action, decide
    ) -> dict:
        """The borrower's decision on days worked, if the timesheet's state machine allows
        it: `decide` changes the timesheet and emits its event."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            _, row = self._locked(tx.session, who, engagement_id, action)
            sheet = repository.timesheet_for_update(tx.session, row.id, timesheet_id)
            domain.next_timesheet_status(TimesheetStatus(sheet.status), action)
            decide(tx, row, sheet, who)
            tx.session.flush()
            (view,) = repository.engagement_views(tx.session, [row])
        return view.model_dump(mode="json")

    @rpc
    def correct_timesheet(
        self, caller: dict, engagement_id: str, timesheet_id: str, correction: dict
    ) -> dict:
        """The consultant's commune amends rejected days (days, note, exceptional work's
        reason; the date stays): they are to approve again, under the same rules as
        days recorded."""
        who = Caller.model_validate(caller)
        asked = validated(TimesheetCorrection, correction)
        action = EngagementAction.CORRECT_TIMESHEET
        with self.db.transaction() as tx:
            consultant, row = self._locked(tx.session, who, engagement_id, action)
            sheet = repository.timesheet_for_update(tx.session, row.id, timesheet_id)
            domain.next_timesheet_status(TimesheetStatus(sheet.status), action)
            _check_days_worked(tx.session, consultant, row, sheet.work_date, asked, sheet)
            repository.correct_timesheet(sheet, who, half_days(asked.days), asked)
            tx.session.flush()
            recording = repository.timesheet_recording(row, sheet, corrected=True)
            tx.emit(EngagementTimesheetRecorded, recording)
            (view,) = repository.engagement_views(tx.session, [row])
        return view.model_dump(mode="json")

    # -- time -------------------------------------------------------------------------

    @periodic("expiry_interval_seconds", default=60.0)
    def expire_undecided(self) -> None:
        """Requests the consultant's commune left undecided for `engagement_expiry_days`
        expire, with their event. Each is moved under its row lock and only from
        `requested`, so restarts and replicas expire it once."""
        settings = self.config.get("SERVICE_SETTINGS") or Settings()
        delay = timedelta(days=settings.engagement_expiry_days)
        with self.db.transaction() as tx:
            for row in repository.due_to_expire(tx.session, clock.now() - delay):
                target = domain.next_status(EngagementStatus(row.status), EngagementAction.EXPIRE)
                move_engagement(tx, row, target, None, f"not decided within {delay.days} days")

    # -- agreements between communes ---------------------------------------------------

    @consume_events(BOOKINGS_TO_CONSULTANTS)
    def keep_agreements(self, event: Event) -> None:
        """The copy of an agreement (owned by bookings) that says whether it covers an
        engagement's staff: each event once, a late older one changing nothing."""
        with self.db.handling(event) as tx:
            repository.apply_agreement(tx.session, event.payload, event.occurred_at)

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
        """A consultant the caller may see; else 404."""
        row = _seen(session, who, consultant_id, for_update)
        if row is None:
            raise domain.no_such_consultant(consultant_id)
        return row

    def _for_change(self, session, who: Caller, consultant_id: str):
        row = self._visible(session, who, consultant_id, for_update=True)
        domain.ensure_changeable(who, row.home_commune, row.status)
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


def _check_days_worked(
    session,
    consultant: ConsultantRow,
    row: EngagementRow,
    work_date,
    asked: TimesheetCorrection,
    corrected: TimesheetRow | None = None,
) -> None:
    """The rules of days worked (domain.check_timesheet), against what is stored: the
    engagement's other timesheets, and the person's other days on that date."""
    others = [
        t
        for t in repository.timesheets_of(session, [row.id])[row.id]
        if corrected is None or t.id != corrected.id
    ]
    domain.check_timesheet(
        status=EngagementStatus(row.status),
        start=row.start,
        end=row.end,
        days_total=as_days(row.half_days),
        days_recorded=as_days(sum(t.half_days for t in others)),
        work_date=work_date,
        days=asked.days,
        today=paris_today(),
        recorded_that_day=as_days(
            repository.half_days_on(
                session, consultant.id, work_date, corrected.id if corrected else None
            )
        ),
        exceptional_reason=asked.exceptional_reason,
        subdivision=domain.holiday_subdivision(consultant.home_commune),
        action=(
            EngagementAction.CORRECT_TIMESHEET if corrected else EngagementAction.RECORD_TIMESHEET
        ),
    )


def _seen(session, who: Caller, consultant_id: str, for_update: bool = False):
    """The consultant if the caller may see it (see domain.visible), else None."""
    row = (
        repository.consultant(session, consultant_id, for_update)
        if is_uuid(consultant_id)
        else None
    )
    if row is None or not domain.visible(row.status, row.home_commune, who.commune):
        return None
    return row


def _ensure_commitments_fit(
    session, row, max_days_per_month: int, previous_max: int | None = None
) -> None:
    held = repository.commitments_of(session, [row.id])[row.id]
    calendar = repository.calendar_of(session, row)
    domain.ensure_commitments_fit(
        calendar, max_days_per_month, held, paris_today(), previous_max=previous_max
    )


# -- the service layer's steps that emit, shared with the seeders (demo, bench) -------------


def publish_consultant(
    tx: UnitOfWork, who: Caller, terms: ConsultantTerms, periods: Sequence[AvailabilityPeriod]
) -> ConsultantRow:
    """A new published consultant of the caller's commune, and its consultant.published
    event."""
    row = repository.publish(tx, who.commune, who.user_id, terms, periods)
    tx.emit(ConsultantPublished, repository.snapshot_of(row))
    return row


def request_days(
    tx: UnitOfWork, consultant: ConsultantRow, caller: Caller, request: EngagementRequest
) -> EngagementRow:
    """A new requested engagement, and its engagement.requested event."""
    row = repository.add_engagement(tx.session, consultant, caller, request)
    _emit_status(tx, row, request.mission)
    return row


def move_engagement(
    tx: UnitOfWork,
    row: EngagementRow,
    status: EngagementStatus,
    caller: Caller | None,
    note: str = "",
) -> None:
    """The engagement moves to `status` (as the domain decided), with its event."""
    repository.record_transition(tx.session, row, status, caller, note)
    _emit_status(tx, row, note)


def _emit_status(tx: UnitOfWork, row: EngagementRow, note: str) -> None:
    snapshot = repository.engagement_snapshot(tx.session, row, reason=note)
    tx.emit(EVENT_OF_STATUS[EngagementStatus(row.status)], snapshot)
