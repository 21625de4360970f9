"""Reading and writing agreements, their parties, council decisions and the lenders'
agreement policy in the bookings database."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contracts.agreements import (
    AgreementDraft,
    AgreementSnapshot,
    AgreementStatus,
    AgreementView,
    DecisionDraft,
    DecisionView,
    PartyAct,
    PartyView,
    Tariff,
)
from contracts.bookings import HOLDING
from contracts.caller import Caller
from contracts.clock import paris_today
from contracts.errors import Conflict, NotFound
from contracts.fields import is_uuid
from infra.communes import communes
from services.bookings import agreements
from services.bookings.models import (
    AgreementPartyRow,
    AgreementPolicyRow,
    AgreementRow,
    BookingRow,
    CouncilDecisionRow,
)

# -- agreements ------------------------------------------------------------------------------


def add_agreement(
    session: Session,
    who: Caller,
    draft: AgreementDraft,
    parties: list[str],
    now: datetime,
    *,
    status: AgreementStatus = AgreementStatus.DRAFT,
    one_off_booking_id: str | None = None,
) -> AgreementRow:
    """The agreement and its parties; its reference numbered after the initiator's others of
    the year (unique by the database: two drafted at once, the second is told to retry).
    The year is the communes': 00:30 on 1 January in Paris is still 31 December in UTC."""
    year = paris_today(now).year
    drafted = session.scalar(
        select(func.count())
        .select_from(AgreementRow)
        .where(AgreementRow.initiator_commune == who.commune, AgreementRow.year == year)
    )
    row = AgreementRow(
        id=str(uuid.uuid4()),
        reference=agreements.reference(who.commune, year, drafted + 1),
        initiator_commune=who.commune,
        year=year,
        title=draft.title,
        status=status.value,
        categories=list(draft.categories),
        covers_staff=draft.covers_staff,
        tariff=draft.tariff.value,
        starts_on=draft.starts_on,
        ends_on=draft.ends_on,
        insurance=draft.insurance,
        disputes=draft.disputes,
        one_off_booking_id=one_off_booking_id,
        has_signed_scan=False,
        created_by=who.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        session.flush()  # before its parties, which refer to it
    except IntegrityError:
        raise Conflict("Another agreement was drafted at the same moment: send it again") from None
    session.add_all(
        AgreementPartyRow(agreement_id=row.id, commune=commune, position=position)
        for position, commune in enumerate(parties)
    )
    session.flush()
    return row


def agreement_for_update(session: Session, agreement_id: str) -> AgreementRow:
    if not is_uuid(agreement_id):
        raise NotFound("No such agreement")
    row = session.scalars(
        select(AgreementRow).where(AgreementRow.id == agreement_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound("No such agreement")
    return row


def get_agreement(session: Session, agreement_id: str) -> AgreementRow:
    row = session.get(AgreementRow, agreement_id) if is_uuid(agreement_id) else None
    if row is None:
        raise NotFound("No such agreement")
    return row


def parties_of(
    session: Session, agreement_ids: Iterable[str]
) -> dict[str, list[AgreementPartyRow]]:
    ids = list(agreement_ids)
    found: dict[str, list[AgreementPartyRow]] = {i: [] for i in ids}
    if ids:
        rows = session.scalars(
            select(AgreementPartyRow)
            .where(AgreementPartyRow.agreement_id.in_(ids))
            .order_by(AgreementPartyRow.position)
        )
        for party in rows:
            found[party.agreement_id].append(party)
    return found


def agreements_of(
    session: Session, commune: str, status: AgreementStatus | None = None
) -> list[AgreementRow]:
    """The agreements the commune is party to, the latest drafted first."""
    stmt = (
        select(AgreementRow)
        .join(AgreementPartyRow, AgreementPartyRow.agreement_id == AgreementRow.id)
        .where(AgreementPartyRow.commune == commune)
    )
    if status is not None:
        stmt = stmt.where(AgreementRow.status == status.value)
    return list(session.scalars(stmt.order_by(AgreementRow.created_at.desc(), AgreementRow.id)))


def terms_of(row: AgreementRow, parties: list[AgreementPartyRow]) -> agreements.Terms:
    return agreements.Terms(
        agreement_id=row.id,
        reference=row.reference,
        status=AgreementStatus(row.status),
        parties=frozenset(p.commune for p in parties),
        categories=frozenset(row.categories),
        covers_staff=row.covers_staff,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        one_off_booking_id=row.one_off_booking_id,
    )


def terms_binding(
    session: Session, communes_: Iterable[str] | None = None
) -> list[agreements.Terms]:
    """The agreements not ended (those of `communes_`' parties only, when given): overlap
    is checked and coverage found among them. A few per pair of communes at most."""
    stmt = select(AgreementRow).where(AgreementRow.status != AgreementStatus.ENDED.value)
    if communes_ is not None:
        stmt = stmt.where(
            AgreementRow.id.in_(
                select(AgreementPartyRow.agreement_id).where(
                    AgreementPartyRow.commune.in_(list(communes_))
                )
            )
        )
    rows = list(session.scalars(stmt))
    parties = parties_of(session, [r.id for r in rows])
    return [terms_of(r, parties[r.id]) for r in rows]


def terms_in_force(session: Session, communes_: Iterable[str] | None) -> list[agreements.Terms]:
    return [t for t in terms_binding(session, communes_) if t.status == AgreementStatus.IN_FORCE]


def view_of(session: Session, row: AgreementRow, parties: list[AgreementPartyRow]) -> AgreementView:
    """The agreement as its parties read it, each party's decision by number and date."""
    directory = communes()
    decisions = decisions_by_id(session, [p.decision_id for p in parties if p.decision_id])
    return AgreementView(
        id=row.id,
        reference=row.reference,
        title=row.title,
        status=AgreementStatus(row.status),
        initiator_commune=row.initiator_commune,
        parties=[
            PartyView(
                commune=p.commune,
                commune_name=(c.name if (c := directory.get(p.commune)) else p.commune),
                decision_id=p.decision_id,
                decision_number=(d.number if (d := decisions.get(p.decision_id or "")) else None),
                decision_date=d.decided_on if d else None,
                signatory=p.signatory,
                signed_on=p.signed_on,
            )
            for p in parties
        ],
        categories=row.categories,
        covers_staff=row.covers_staff,
        tariff=Tariff(row.tariff),
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        insurance=row.insurance,
        disputes=row.disputes,
        one_off_booking_id=row.one_off_booking_id,
        has_signed_scan=row.has_signed_scan,
        created_at=row.created_at,
        ended_at=row.ended_at,
    )


def snapshot_of(view: AgreementView) -> AgreementSnapshot:
    """The agreement as its events carry it."""
    return AgreementSnapshot(
        agreement_id=view.id,
        reference=view.reference,
        title=view.title,
        status=view.status,
        parties=[p.model_dump(include=set(PartyAct.model_fields)) for p in view.parties],
        categories=view.categories,
        covers_staff=view.covers_staff,
        tariff=view.tariff,
        starts_on=view.starts_on,
        ends_on=view.ends_on,
        one_off_booking_id=view.one_off_booking_id,
        initiator_commune=view.initiator_commune,
    )


# -- council decisions -----------------------------------------------------------------------


def add_decision(session: Session, who: Caller, draft: DecisionDraft, now: datetime):
    row = CouncilDecisionRow(
        id=str(uuid.uuid4()),
        commune=who.commune,
        number=draft.number,
        decided_on=draft.date,
        subject=draft.subject,
        agreement_ids=list(dict.fromkeys(draft.agreement_ids)),
        approves_tariffs=draft.approves_tariffs,
        authorises_mayor=draft.authorises_mayor,
        has_pdf=False,
        recorded_by=who.user_id,
        recorded_at=now,
    )
    taken = session.scalar(
        select(CouncilDecisionRow.id).where(
            CouncilDecisionRow.commune == who.commune, CouncilDecisionRow.number == draft.number
        )
    )
    if taken is not None:
        raise Conflict(f"Your commune has already recorded decision {draft.number}")
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"Your commune has already recorded decision {draft.number}") from None
    return row


def decision_of(session: Session, commune: str, decision_id: str, *, for_update: bool = False):
    """The commune's decision; another commune's is none (404)."""
    row = None
    if is_uuid(decision_id):
        stmt = select(CouncilDecisionRow).where(CouncilDecisionRow.id == decision_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = session.scalars(stmt).one_or_none()
    if row is None or row.commune != commune:
        raise NotFound("No such council decision")
    return row


def decisions_by_id(session: Session, ids: Iterable[str]) -> dict[str, CouncilDecisionRow]:
    wanted = [i for i in ids if is_uuid(i)]
    if not wanted:
        return {}
    rows = session.scalars(select(CouncilDecisionRow).where(CouncilDecisionRow.id.in_(wanted)))
    return {r.id: r for r in rows}


def decisions_of(session: Session, commune: str) -> list[CouncilDecisionRow]:
    return list(
        session.scalars(
            select(CouncilDecisionRow)
            .where(CouncilDecisionRow.commune == commune)
            .order_by(CouncilDecisionRow.decided_on.desc(), CouncilDecisionRow.number)
        )
    )


def facts_of(row: CouncilDecisionRow | None) -> agreements.DecisionFacts | None:
    if row is None:
        return None
    return agreements.DecisionFacts(
        decision_id=row.id,
        commune=row.commune,
        decided_on=row.decided_on,
        agreement_ids=frozenset(row.agreement_ids),
        authorises_mayor=row.authorises_mayor,
    )


def decision_view(row: CouncilDecisionRow) -> DecisionView:
    return DecisionView(
        id=row.id,
        commune=row.commune,
        number=row.number,
        date=row.decided_on,
        subject=row.subject,
        agreement_ids=row.agreement_ids,
        approves_tariffs=row.approves_tariffs,
        authorises_mayor=row.authorises_mayor,
        has_pdf=row.has_pdf,
        recorded_at=row.recorded_at,
    )


# -- the lenders' policy, and the bookings an agreement covers --------------------------------


def requires_agreement(session: Session, commune: str) -> bool:
    row = session.get(AgreementPolicyRow, commune)
    return bool(row and row.requires_agreement)


def set_policy(session: Session, who: Caller, required: bool, now: datetime) -> None:
    row = session.get(AgreementPolicyRow, who.commune)
    if row is None:
        row = AgreementPolicyRow(commune=who.commune)
        session.add(row)
    row.requires_agreement = required
    row.updated_by = who.user_id
    row.updated_at = now
    session.flush()


def uncovered_between(session: Session, parties: Iterable[str]) -> list[BookingRow]:
    """Bookings still holding their slot between two of these communes, none covered yet:
    those an agreement coming in force may cover."""
    codes = list(parties)
    return list(
        session.scalars(
            select(BookingRow)
            .where(
                BookingRow.lender_commune.in_(codes),
                BookingRow.borrower_commune.in_(codes),
                BookingRow.agreement_reference.is_(None),
                BookingRow.status.in_([s.value for s in HOLDING]),
            )
            .with_for_update()
        )
    )


class AgreementsInForce:
    """The agreements in force and the communes lending only under one, read at most once
    per `ttl` seconds per process: every booking request asks, and agreements change a few
    times a year. A change in this process is seen at once; one in another replica within
    `ttl` (the approval checks again in its own transaction)."""

    def __init__(self, ttl: float = 2.0):
        self.ttl = ttl
        self._read_at = -float("inf")
        self._terms: list[agreements.Terms] = []
        self._requiring: frozenset[str] = frozenset()

    def _fresh(self, session: Session) -> None:
        if time.monotonic() - self._read_at > self.ttl:
            self._terms = terms_in_force(session, None)
            self._requiring = frozenset(
                session.scalars(
                    select(AgreementPolicyRow.commune).where(AgreementPolicyRow.requires_agreement)
                )
            )
            self._read_at = time.monotonic()

    def coverage(
        self, session: Session, lender: str, borrower: str, category: str, start, end
    ) -> tuple[str | None, bool]:
        """The reference of the agreement covering a new request, and whether it is held
        (its lender requires an agreement and none covers it)."""
        self._fresh(session)
        terms = agreements.covering(
            self._terms, lender=lender, borrower=borrower, category=category, start=start, end=end
        )
        if terms is not None:
            return terms.reference, False
        return None, lender in self._requiring and lender != borrower

    def forget(self) -> None:
        self._read_at = -float("inf")


IN_FORCE = AgreementsInForce()
