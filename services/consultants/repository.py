"""Reading and writing consultants, engagements and timesheets in the consultants database."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, object_session

from contracts import clock
from contracts.agreements import AgreementSnapshot, AgreementStatus
from contracts.caller import Caller
from contracts.consultants import (
    AgreementCover,
    AvailabilityPeriod,
    ConsentView,
    ConsultantSnapshot,
    ConsultantStatus,
    ConsultantTerms,
    ConsultantView,
    EngagementQuery,
    EngagementRequest,
    EngagementSnapshot,
    EngagementStatus,
    EngagementTransition,
    EngagementView,
    OfficialConsent,
    RecordedPeriod,
    RecordedTimesheet,
    RejectedTimesheet,
    TimesheetApproval,
    TimesheetCorrection,
    TimesheetStatus,
    TimesheetView,
)
from contracts.errors import NotFound, unknown_commune
from infra.communes import communes
from infra.database import UnitOfWork
from infra.paging import as_party, one_page
from services.consultants.domain import (
    RESERVING,
    Calendar,
    Commitment,
    Profile,
    amount_cents,
    as_days,
    half_days,
    vocabulary,
)
from services.consultants.domain.agreements import StaffAgreement, covering, newer
from services.consultants.models import (
    CATALOGUE_SHARDS,
    AgreementRow,
    AvailabilityRow,
    CatalogueChangeRow,
    ConsultantRow,
    EngagementRow,
    EngagementTransitionRow,
    TimesheetRow,
)

TERM_FIELDS = tuple(ConsultantTerms.model_fields)
CHUNK = 500  # ids per IN (…) list


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


class _RowWith:
    """A row as a view sees it: its columns, plus the values computed or named otherwise,
    for `Model.model_validate(_RowWith(row, ...), from_attributes=True)`."""

    def __init__(self, row: object, **values: object):
        self._row, self._values = row, values

    def __getattr__(self, name: str) -> object:
        values = self.__dict__["_values"]
        return values[name] if name in values else getattr(self.__dict__["_row"], name)


# -- consultants ------------------------------------------------------------------------


def terms_of(row: ConsultantRow) -> ConsultantTerms:
    return ConsultantTerms.model_validate(row, from_attributes=True)


def change_terms(row: ConsultantRow, terms: ConsultantTerms) -> None:
    for name, value in terms.model_dump(mode="json").items():
        setattr(row, name, value)
    bump(row)


def withdraw(row: ConsultantRow) -> None:
    row.status = ConsultantStatus.WITHDRAWN.value
    bump(row)


def periods_of(session: Session, consultant_ids: Sequence[str]) -> dict[str, list[RecordedPeriod]]:
    found: dict[str, list[RecordedPeriod]] = {cid: [] for cid in consultant_ids}
    for chunk in _chunks(list(consultant_ids)):
        rows = session.scalars(
            select(AvailabilityRow)
            .where(AvailabilityRow.consultant_id.in_(chunk))
            .order_by(AvailabilityRow.start, AvailabilityRow.id)
        )
        for p in rows:
            found[p.consultant_id].append(RecordedPeriod.model_validate(p, from_attributes=True))
    return found


def view_of(row: ConsultantRow, periods: list[RecordedPeriod] | None = None) -> ConsultantView:
    commune = communes().get(row.home_commune)
    vocab = vocabulary()
    seen = _RowWith(
        row,
        home_commune_name=commune.name if commune else row.home_commune,
        skill_labels=[vocab.label(s) for s in row.skills],
        availability=periods or [],
    )
    return ConsultantView.model_validate(seen, from_attributes=True)


def snapshot_of(row: ConsultantRow) -> ConsultantSnapshot:
    return ConsultantSnapshot.model_validate(
        _RowWith(row, consultant_id=row.id), from_attributes=True
    )


def publish(
    tx: UnitOfWork,
    home_commune: str,
    created_by: str,
    terms: ConsultantTerms,
    periods: Sequence[AvailabilityPeriod] = (),
) -> ConsultantRow:
    """A new published consultant of `home_commune` (skills already resolved to ids). The
    service emits its consultant.published event; `tx` is the unit of work, of which only
    the session is used here."""
    commune = communes().get(home_commune)
    if commune is None:
        raise unknown_commune("commune", home_commune)
    now = clock.now()
    row = ConsultantRow(
        id=str(uuid.uuid4()),
        home_commune=home_commune,
        latitude=commune.latitude,
        longitude=commune.longitude,
        status=ConsultantStatus.PUBLISHED.value,
        revision=1,
        created_by=created_by,
        created_at=now,
        updated_at=now,
        **terms.model_dump(mode="json", include=set(TERM_FIELDS)),
    )
    tx.session.add(row)
    tx.session.flush()
    add_periods(tx.session, row.id, periods)
    _count_change(tx.session, row.id)
    return row


def add_periods(session: Session, consultant_id: str, periods: Sequence[AvailabilityPeriod]):
    now = clock.now()
    for p in periods:
        session.add(
            AvailabilityRow(
                id=str(uuid.uuid4()),
                consultant_id=consultant_id,
                kind=p.kind.value,
                start=p.start,
                end=p.end,
                note=p.note,
                created_at=now,
            )
        )
    session.flush()


def clear_periods(session: Session, consultant_id: str) -> None:
    for p in session.scalars(
        select(AvailabilityRow).where(AvailabilityRow.consultant_id == consultant_id)
    ):
        session.delete(p)
    session.flush()


def consultant(session: Session, consultant_id: str, for_update: bool = False):
    """The consultant row, or None; `for_update` locks it: decisions that commit its days
    are taken one at a time (PostgreSQL row lock; SQLite holds the database lock from
    BEGIN IMMEDIATE)."""
    query = select(ConsultantRow).where(ConsultantRow.id == consultant_id)
    if for_update:
        # re-read even if this session loaded it already: what the lock protects is fresh
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).one_or_none()


def bump(row: ConsultantRow) -> None:
    """A change matching must see: the index reloads this consultant."""
    row.revision += 1
    row.updated_at = clock.now()
    _count_change(object_session(row), row.id)


def _count_change(session: Session, consultant_id: str) -> None:
    """One more change in the consultant's shard of catalogue_changes (committed with it)."""
    shard = zlib.crc32(consultant_id.encode()) % CATALOGUE_SHARDS
    session.execute(
        update(CatalogueChangeRow)
        .where(CatalogueChangeRow.shard == shard)
        .values(changes=CatalogueChangeRow.changes + 1)
    )


def calendar_of(session: Session, consultant: ConsultantRow) -> Calendar:
    """The consultant's periods, on their home commune's public holidays."""
    return Calendar.of(periods_of(session, [consultant.id])[consultant.id], consultant.home_commune)


def commitments_of(
    session: Session, consultant_ids: Sequence[str], exclude: str | None = None
) -> dict[str, list[Commitment]]:
    """Days held by accepted engagements (all their days) and completed ones (the days
    approved), per consultant."""
    found: dict[str, list[Commitment]] = {cid: [] for cid in consultant_ids}
    for chunk in _chunks(list(consultant_ids)):
        # only these consultants' engagements: a grouped subquery is not narrowed by its join
        approved = (
            select(TimesheetRow.engagement_id, func.sum(TimesheetRow.half_days).label("half_days"))
            .join(EngagementRow, EngagementRow.id == TimesheetRow.engagement_id)
            .where(
                TimesheetRow.status == TimesheetStatus.APPROVED.value,
                EngagementRow.consultant_id.in_(chunk),
            )
            .group_by(TimesheetRow.engagement_id)
            .subquery()
        )
        query = (
            select(
                EngagementRow.id,
                EngagementRow.consultant_id,
                EngagementRow.status,
                EngagementRow.start,
                EngagementRow.end,
                EngagementRow.half_days,
                approved.c.half_days.label("approved"),
            )
            .outerjoin(approved, approved.c.engagement_id == EngagementRow.id)
            .where(
                EngagementRow.consultant_id.in_(chunk),
                EngagementRow.status.in_([s.value for s in RESERVING]),
            )
        )
        if exclude is not None:
            query = query.where(EngagementRow.id != exclude)
        for r in session.execute(query):
            held = r.half_days if r.status == EngagementStatus.ACCEPTED.value else r.approved or 0
            found[r.consultant_id].append(Commitment(r.id, r.start, r.end, int(held)))
    return found


# -- what the matching index loads ------------------------------------------------------


def catalogue_version(session: Session) -> int:
    """Moves with every change matching could see: a new consultant, or any revision bump
    (each counted in catalogue_changes by the transaction that made it)."""
    return int(session.scalar(select(func.coalesce(func.sum(CatalogueChangeRow.changes), 0))))


def revisions(session: Session) -> dict[str, tuple[int, str]]:
    """(revision, status) of every consultant."""
    rows = session.execute(select(ConsultantRow.id, ConsultantRow.revision, ConsultantRow.status))
    return {r.id: (r.revision, r.status) for r in rows}


def profiles(
    session: Session, consultant_ids: Sequence[str]
) -> list[tuple[Profile, ConsultantView, int]]:
    """What matching needs of these consultants (the published ones), with what a match
    answers of each and its revision."""
    loaded = []
    for chunk in _chunks(list(consultant_ids)):
        rows = list(
            session.scalars(
                select(ConsultantRow).where(
                    ConsultantRow.id.in_(chunk),
                    ConsultantRow.status == ConsultantStatus.PUBLISHED.value,
                )
            )
        )
        ids = [r.id for r in rows]
        periods = periods_of(session, ids)
        commitments = commitments_of(session, ids)
        for r in rows:
            loaded.append(
                (
                    Profile(
                        consultant_id=r.id,
                        home_commune=r.home_commune,
                        latitude=r.latitude,
                        longitude=r.longitude,
                        name=r.name,
                        title=r.title,
                        skills=tuple(r.skills),
                        bio=r.bio,
                        day_rate_cents=r.day_rate_cents,
                        max_days_per_month=r.max_days_per_month,
                        calendar=Calendar.of(periods[r.id], r.home_commune),
                        commitments=tuple(commitments[r.id]),
                    ),
                    view_of(r, periods[r.id]),
                    r.revision,
                )
            )
    return loaded


# -- engagements ------------------------------------------------------------------------


def add_engagement(
    session: Session, consultant: ConsultantRow, caller: Caller, request: EngagementRequest
) -> EngagementRow:
    now = clock.now()
    row = EngagementRow(
        id=str(uuid.uuid4()),
        consultant_id=consultant.id,
        consultant_name=consultant.name,
        lender_commune=consultant.home_commune,
        borrower_commune=caller.commune,
        status=EngagementStatus.REQUESTED.value,
        start=request.start,
        end=request.end,
        half_days=half_days(request.days),
        mission=request.mission,
        order_reference=request.order_reference,
        day_rate_cents=consultant.day_rate_cents,
        currency=consultant.currency,
        requested_by=caller.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    record_transition(session, row, EngagementStatus.REQUESTED, caller, request.mission)
    return row


def get_engagement(session: Session, engagement_id: str, for_update: bool = False):
    query = select(EngagementRow).where(EngagementRow.id == engagement_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFound("No such engagement")
    return row


def record_transition(
    session: Session,
    row: EngagementRow,
    status: EngagementStatus,
    caller: Caller | None,
    note: str = "",
) -> None:
    """Moves the engagement to `status` and keeps the history."""
    now = clock.now()
    row.status = status.value
    row.updated_at = now
    session.add(
        EngagementTransitionRow(
            engagement_id=row.id,
            status=status.value,
            at=now,
            by_user=caller.user_id if caller else None,
            by_commune=caller.commune if caller else None,
            note=note,
        )
    )
    session.flush()


def approved_half_days(session: Session, engagement_id: str) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(TimesheetRow.half_days), 0)).where(
            TimesheetRow.engagement_id == engagement_id,
            TimesheetRow.status == TimesheetStatus.APPROVED.value,
        )
    )
    return int(total or 0)


def engagement_snapshot(
    session: Session, row: EngagementRow, reason: str = ""
) -> EngagementSnapshot:
    seen = _RowWith(
        row,
        engagement_id=row.id,
        days=as_days(row.half_days),
        days_approved=as_days(approved_half_days(session, row.id)),
        reason=reason,
    )
    return EngagementSnapshot.model_validate(seen, from_attributes=True)


def timesheets_of(session: Session, engagement_ids: Sequence[str]) -> dict[str, list[TimesheetRow]]:
    found: dict[str, list[TimesheetRow]] = {i: [] for i in engagement_ids}
    for chunk in _chunks(list(engagement_ids)):
        rows = session.scalars(
            select(TimesheetRow)
            .where(TimesheetRow.engagement_id.in_(chunk))
            .order_by(TimesheetRow.work_date, TimesheetRow.recorded_at, TimesheetRow.id)
        )
        for t in rows:
            found[t.engagement_id].append(t)
    return found


def history_of(session: Session, engagement_ids: Sequence[str]):
    found: dict[str, list[EngagementTransition]] = {i: [] for i in engagement_ids}
    for chunk in _chunks(list(engagement_ids)):
        rows = session.scalars(
            select(EngagementTransitionRow)
            .where(EngagementTransitionRow.engagement_id.in_(chunk))
            .order_by(EngagementTransitionRow.id)
        )
        for t in rows:
            found[t.engagement_id].append(
                EngagementTransition.model_validate(t, from_attributes=True)
            )
    return found


def timesheet_view(row: TimesheetRow, day_rate_cents: int) -> TimesheetView:
    days = as_days(row.half_days)
    seen = _RowWith(
        row, date=row.work_date, days=days, amount_cents=amount_cents(days, day_rate_cents)
    )
    return TimesheetView.model_validate(seen, from_attributes=True)


def engagement_views(session: Session, rows: Sequence[EngagementRow]) -> list[EngagementView]:
    ids = [r.id for r in rows]
    sheets = timesheets_of(session, ids)
    history = history_of(session, ids)
    agreements = staff_agreements(session)
    views = []
    for r in rows:
        own = sheets[r.id]
        days = as_days(r.half_days)
        seen = _RowWith(
            r,
            days=days,
            amount_cents=amount_cents(days, r.day_rate_cents),
            days_recorded=as_days(sum(t.half_days for t in own)),
            days_approved=as_days(
                sum(t.half_days for t in own if t.status == TimesheetStatus.APPROVED.value)
            ),
            timesheets=[timesheet_view(t, r.day_rate_cents) for t in own],
            history=history[r.id],
            consent=consent_view(r),
            agreement=agreement_cover(
                covering_agreement(
                    session, r.lender_commune, r.borrower_commune, r.start, r.end, agreements
                )
            ),
        )
        views.append(EngagementView.model_validate(seen, from_attributes=True))
    return views


# -- the official's consent -------------------------------------------------------------


def record_consent(row: EngagementRow, consent: OfficialConsent, caller: Caller) -> None:
    row.consent_given_on = consent.given_on
    row.consent_note = consent.note
    row.consent_recorded_by = caller.user_id
    row.consent_recorded_at = clock.now()


def consent_view(row: EngagementRow) -> ConsentView | None:
    if row.consent_given_on is None:
        return None
    return ConsentView(
        official=row.consultant_name,
        given_on=row.consent_given_on,
        note=row.consent_note or "",
        recorded_by=row.consent_recorded_by or "",
        recorded_at=row.consent_recorded_at,
    )


# -- agreements between communes (a copy of bookings', from agreement.* events) ----------


def apply_agreement(session: Session, snapshot: AgreementSnapshot, occurred_at: datetime) -> bool:
    """The agreement as the event says it is, unless a later event was applied already
    (events may arrive out of order: then only the fact that it was in force is kept).
    Whether it changed anything."""
    row = session.get(AgreementRow, snapshot.agreement_id, with_for_update=True)
    in_force = snapshot.status == AgreementStatus.IN_FORCE
    if row is not None and not newer(row.as_of, occurred_at):
        learnt = in_force and not row.was_in_force
        row.was_in_force = row.was_in_force or in_force
        return learnt
    if row is None:
        row = AgreementRow(agreement_id=snapshot.agreement_id, was_in_force=False)
        session.add(row)
    row.reference = snapshot.reference
    row.title = snapshot.title
    row.status = snapshot.status.value
    row.parties = sorted({p.commune for p in snapshot.parties})
    row.covers_staff = snapshot.covers_staff
    row.starts_on = snapshot.starts_on
    row.ends_on = snapshot.ends_on
    row.was_in_force = bool(row.was_in_force) or in_force
    row.as_of = occurred_at
    session.flush()
    return True


def _staff_agreement(row: AgreementRow) -> StaffAgreement:
    return StaffAgreement(
        agreement_id=row.agreement_id,
        reference=row.reference,
        parties=frozenset(row.parties),
        covers_staff=row.covers_staff,
        status=AgreementStatus(row.status),
        was_in_force=row.was_in_force,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
    )


def staff_agreements(session: Session) -> dict[str, AgreementRow]:
    """The agreements that cover or covered staff (a few per pair of communes)."""
    query = select(AgreementRow).where(
        AgreementRow.covers_staff.is_(True),
        AgreementRow.status.in_((AgreementStatus.IN_FORCE.value, AgreementStatus.ENDED.value)),
    )
    return {r.agreement_id: r for r in session.scalars(query)}


def covering_agreement(
    session: Session,
    lender: str,
    borrower: str,
    start: date,
    end: date,
    known: dict[str, AgreementRow] | None = None,
) -> AgreementRow | None:
    """The agreement covering staff lent by `lender` to `borrower` over [start, end)
    (`known`: staff_agreements already read)."""
    rows = staff_agreements(session) if known is None else known
    last = end - timedelta(days=1)
    found = covering((_staff_agreement(r) for r in rows.values()), lender, borrower, start, last)
    return rows[found.agreement_id] if found else None


def agreement_cover(row: AgreementRow | None) -> AgreementCover | None:
    if row is None:
        return None
    return AgreementCover(
        agreement_id=row.agreement_id,
        reference=row.reference,
        title=row.title,
        parties=list(row.parties),
        starts_on=row.starts_on,
        ends_on=row.ends_on,
    )


def engagements_of(
    session: Session, commune: str, query: EngagementQuery
) -> tuple[list[EngagementRow], str | None]:
    stmt = select(EngagementRow).where(
        as_party(commune, query.as_, EngagementRow.borrower_commune, EngagementRow.lender_commune)
    )
    if query.status is not None:
        stmt = stmt.where(EngagementRow.status == query.status.value)
    if query.consultant_id is not None:
        stmt = stmt.where(EngagementRow.consultant_id == query.consultant_id)
    return one_page(
        session, stmt.order_by(EngagementRow.start, EngagementRow.id), query.cursor, query.limit
    )


def add_timesheet(
    session: Session,
    engagement_id: str,
    work_date,
    half_days: int,
    note: str,
    caller: Caller,
    exceptional_reason: str | None = None,
) -> TimesheetRow:
    row = TimesheetRow(
        id=str(uuid.uuid4()),
        engagement_id=engagement_id,
        work_date=work_date,
        half_days=half_days,
        status=TimesheetStatus.RECORDED.value,
        note=note,
        exceptional_reason=exceptional_reason,
        recorded_by=caller.user_id,
        recorded_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def half_days_on(
    session: Session, consultant_id: str, work_date: date, exclude: str | None = None
) -> int:
    """What the consultant's timesheets of every engagement say of one date, in half days
    (`exclude`: the timesheet being corrected). Read under the consultant's row lock, so
    that two engagements recording the same date are decided one after the other."""
    query = (
        select(func.coalesce(func.sum(TimesheetRow.half_days), 0))
        .join(EngagementRow, EngagementRow.id == TimesheetRow.engagement_id)
        .where(EngagementRow.consultant_id == consultant_id, TimesheetRow.work_date == work_date)
    )
    if exclude is not None:
        query = query.where(TimesheetRow.id != exclude)
    return int(session.scalar(query) or 0)


def timesheet_for_update(session: Session, engagement_id: str, timesheet_id: str) -> TimesheetRow:
    row = session.scalars(
        select(TimesheetRow)
        .where(TimesheetRow.id == timesheet_id, TimesheetRow.engagement_id == engagement_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound("No such timesheet on this engagement")
    return row


def approve_timesheet(sheet: TimesheetRow, caller: Caller) -> None:
    sheet.status = TimesheetStatus.APPROVED.value
    sheet.approved_by = caller.user_id
    sheet.approved_at = clock.now()


def reject_timesheet(sheet: TimesheetRow, caller: Caller, reason: str) -> None:
    sheet.status = TimesheetStatus.REJECTED.value
    sheet.rejection_reason = reason
    sheet.rejected_by = caller.user_id
    sheet.rejected_at = clock.now()


def correct_timesheet(
    sheet: TimesheetRow, caller: Caller, half_days: int, correction: TimesheetCorrection
) -> None:
    """The lender's new days and note: recorded again, to approve (the rejection is kept)."""
    sheet.status = TimesheetStatus.RECORDED.value
    sheet.half_days = half_days
    sheet.note = correction.note
    sheet.exceptional_reason = correction.exceptional_reason
    sheet.recorded_by = caller.user_id
    sheet.recorded_at = clock.now()


def timesheet_rejection(row: EngagementRow, sheet: TimesheetRow) -> RejectedTimesheet:
    """What the lender is told of rejected days: which, and why."""
    seen = _RowWith(
        row,
        engagement_id=row.id,
        timesheet_id=sheet.id,
        work_date=sheet.work_date,
        days=as_days(sheet.half_days),
        reason=sheet.rejection_reason or "",
    )
    return RejectedTimesheet.model_validate(seen, from_attributes=True)


def due_to_expire(session: Session, requested_before: datetime, limit: int = 100):
    """Requests still undecided that were made before `requested_before`, locked: on
    PostgreSQL those another replica's timer holds are skipped (it expires them), on SQLite
    BEGIN IMMEDIATE already lets one transaction at a time in."""
    query = (
        select(EngagementRow)
        .where(
            EngagementRow.status == EngagementStatus.REQUESTED.value,
            EngagementRow.created_at <= requested_before,
        )
        .order_by(EngagementRow.created_at, EngagementRow.id)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def timesheet_approval(
    session: Session, row: EngagementRow, sheet: TimesheetRow
) -> TimesheetApproval:
    """What billing charges of approved days: the engagement's terms, as they are, and the
    agreement in force that covers the day worked (its reference is the invoice's BT-12)."""
    days = as_days(sheet.half_days)
    agreement = covering_agreement(
        session,
        row.lender_commune,
        row.borrower_commune,
        sheet.work_date,
        sheet.work_date + timedelta(days=1),
    )
    seen = _RowWith(
        row,
        engagement_id=row.id,
        timesheet_id=sheet.id,
        work_date=sheet.work_date,
        days=days,
        amount_cents=amount_cents(days, row.day_rate_cents),
        agreement_reference=agreement.reference if agreement else None,
    )
    return TimesheetApproval.model_validate(seen, from_attributes=True)


def timesheet_recording(
    row: EngagementRow, sheet: TimesheetRow, corrected: bool = False
) -> RecordedTimesheet:
    """What the borrower is told of days recorded (or corrected): which, for approval."""
    seen = _RowWith(
        row,
        engagement_id=row.id,
        timesheet_id=sheet.id,
        recording=f"{sheet.id}@{sheet.recorded_at.isoformat()}",
        work_date=sheet.work_date,
        days=as_days(sheet.half_days),
        note=sheet.note,
        corrected=corrected,
    )
    return RecordedTimesheet.model_validate(seen, from_attributes=True)
