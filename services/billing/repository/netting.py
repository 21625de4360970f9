"""Nettings in the billing database: proposals and each party's decision, then the
settlement that takes effect once all accepted, with the transfers it leaves to pay
(obligations) and the audit trail of which invoice each covers."""

from __future__ import annotations

from datetime import date, datetime
from operator import itemgetter
from typing import NamedTuple

from sqlalchemy import (
    Row,
    Text,
    any_,
    cast,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from contracts.billing import OPEN_STATUSES, InvoiceStatus
from contracts.errors import NotFound
from services.billing import domain
from services.billing.models import (
    InvoiceRow,
    NettingInvoiceRow,
    NettingPartyRow,
    NettingProposalRow,
    SettlementAllocationRow,
    SettlementRow,
    SettlementTransferRow,
)
from services.billing.repository.bulk import bulk_insert
from services.billing.repository.disputes import undisputed

_OPEN = [s.value for s in OPEN_STATUSES]
_BALANCE = (
    InvoiceRow.total_cents
    - InvoiceRow.credited_cents
    - InvoiceRow.paid_cents
    - InvoiceRow.settled_cents
)


def _in_scope(period: str | None, up_to: date | None):
    return InvoiceRow.period == period if period is not None else InvoiceRow.issue_date <= up_to


def counterparties(
    session: Session, commune: str, period: str | None, up_to: date | None
) -> list[str]:
    """The communes `commune` has open invoices with, in the scope."""
    rows = session.execute(
        select(InvoiceRow.supplier_commune, InvoiceRow.customer_commune).where(
            _in_scope(period, up_to),
            InvoiceRow.status.in_(_OPEN),
            or_(InvoiceRow.supplier_commune == commune, InvoiceRow.customer_commune == commune),
        )
    ).all()
    return sorted({s if c == commune else c for s, c in rows})


def open_debts(
    session: Session, period: str | None, up_to: date | None, communes: set[str] | None
) -> list[domain.OpenDebt]:
    """The open, undisputed invoices of the scope between communes taking part (None: all),
    a debtor's oldest first."""
    stmt = (
        select(InvoiceRow.id, InvoiceRow.supplier_commune, InvoiceRow.customer_commune, _BALANCE)
        .where(_in_scope(period, up_to), InvoiceRow.status.in_(_OPEN), _BALANCE > 0, undisputed())
        .order_by(InvoiceRow.customer_commune, InvoiceRow.due_date, InvoiceRow.number)
    )
    if communes is not None:
        stmt = stmt.where(
            InvoiceRow.supplier_commune.in_(sorted(communes)),
            InvoiceRow.customer_commune.in_(sorted(communes)),
        )
    return [domain.OpenDebt(i, s, c, int(cents)) for i, s, c, cents in session.execute(stmt)]


def add_proposal(session: Session, proposal: domain.NettingProposal) -> NettingProposalRow:
    row = NettingProposalRow(**proposal.columns)
    session.add(row)
    session.flush()
    session.execute(
        NettingPartyRow.__table__.insert(),
        [{"proposal_id": row.id, "commune": c, "decision": "pending"} for c in proposal.parties],
    )
    bulk_insert(
        session,
        NettingInvoiceRow.__table__,
        [
            {"proposal_id": row.id, "invoice_id": invoice_id, "open_cents": cents}
            for invoice_id, cents in sorted(proposal.invoices)  # key order, as _in_key_order
        ],
        {"proposal_id": "text", "invoice_id": "text", "open_cents": "bigint"},
    )
    return row


def get_proposal(
    session: Session, proposal_id: str, for_update: bool = False
) -> NettingProposalRow:
    stmt = select(NettingProposalRow).where(NettingProposalRow.id == proposal_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFound("No such settlement")
    return row


def parties_of(session: Session, proposal_id: str) -> list[NettingPartyRow]:
    return list(
        session.scalars(
            select(NettingPartyRow)
            .where(NettingPartyRow.proposal_id == proposal_id)
            .order_by(NettingPartyRow.commune)
        )
    )


def proposals_of(session: Session, commune: str | None) -> list[NettingProposalRow]:
    """The latest proposals `commune` is party to (None: anyone's), latest first."""
    stmt = select(NettingProposalRow).order_by(NettingProposalRow.proposed_at.desc()).limit(100)
    if commune is not None:
        stmt = stmt.where(
            NettingProposalRow.id.in_(
                select(NettingPartyRow.proposal_id).where(NettingPartyRow.commune == commune)
            )
        )
    return list(session.scalars(stmt))


def proposal_invoices(session: Session, proposal_id: str, commune: str | None) -> list[Row]:
    """(id, number, supplier, customer, due date, open cents) of the proposal's invoices
    that `commune` is party to (None: all). A party's are found from its own invoices
    first: joined the other way, a party's page read every invoice of a large netting."""
    stmt = (
        select(
            InvoiceRow.id,
            InvoiceRow.number,
            InvoiceRow.supplier_commune,
            InvoiceRow.customer_commune,
            InvoiceRow.due_date,
            NettingInvoiceRow.open_cents,
        )
        .join(NettingInvoiceRow, NettingInvoiceRow.invoice_id == InvoiceRow.id)
        .where(NettingInvoiceRow.proposal_id == proposal_id)
        .order_by(InvoiceRow.number)
    )
    if commune is not None:
        mine = session.scalars(
            select(InvoiceRow.id).where(
                or_(InvoiceRow.supplier_commune == commune, InvoiceRow.customer_commune == commune)
            )
        ).all()
        stmt = stmt.where(NettingInvoiceRow.invoice_id.in_(mine))
    return list(session.execute(stmt).all())


class LockedInvoice(NamedTuple):
    """An invoice of a proposal as its acceptance locked it, a `domain.PayableInvoice` (a
    tuple: a netting locks tens of thousands, and ORM rows or result rows read by name
    cost more than the netting itself)."""

    id: str
    number: str
    customer_commune: str
    supplier_commune: str
    due_date: date
    status: str
    total_cents: int
    credited_cents: int
    paid_cents: int
    settled_cents: int
    place: str | None


def lock_proposal_invoices(
    session: Session, proposal_id: str
) -> tuple[dict[str, int], list[LockedInvoice]]:
    """Locks the proposal's invoices in id order, as every writer locks invoices; returns
    what each owed when proposed, and the invoices as they are now (on PostgreSQL with
    where each row lies, `place`, for `settle_proposal_invoices`). The invoices are found
    through their index (id = ANY of the proposal's), then locked one by one in id order.
    Both are read as plain rows (Core, not the ORM's session): tens of thousands at once."""
    proposed = select(NettingInvoiceRow.invoice_id).where(
        NettingInvoiceRow.proposal_id == proposal_id
    )
    if session.get_bind().dialect.name == "postgresql":
        ours = InvoiceRow.id == any_(func.array(proposed.scalar_subquery()))
    else:
        ours = InvoiceRow.id.in_(proposed)
    connection = session.connection()
    owed = connection.execute(
        select(NettingInvoiceRow.invoice_id, NettingInvoiceRow.open_cents).where(
            NettingInvoiceRow.proposal_id == proposal_id
        )
    )
    rows = connection.execute(
        select(
            InvoiceRow.id,
            InvoiceRow.number,
            InvoiceRow.customer_commune,
            InvoiceRow.supplier_commune,
            InvoiceRow.due_date,
            InvoiceRow.status,
            InvoiceRow.total_cents,
            InvoiceRow.credited_cents,
            InvoiceRow.paid_cents,
            InvoiceRow.settled_cents,
            _place(session),
        )
        .where(ours)
        .order_by(InvoiceRow.id)
        .with_for_update()
    )
    return dict(owed.all()), list(map(LockedInvoice._make, rows.all()))


def _place(session: Session):
    """Where an invoice row lies in its table: PostgreSQL's ctid, stable while the row is
    locked and not yet updated by the transaction holding the lock (None elsewhere)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(literal_column("invoices.ctid"), Text).label("place")
    return null().label("place")


def decide(
    party: NettingPartyRow,
    decision: str,
    user_id: str | None,
    now: datetime,
    reason: str | None = None,
) -> None:
    party.decision = decision
    party.decided_at = now
    party.decided_by = user_id
    party.reason = reason


def close(proposal: NettingProposalRow, status: str, now: datetime, reason: str | None) -> None:
    proposal.status = status
    proposal.closed_at = now
    proposal.closing_reason = reason


def pending_with(
    session: Session, invoice_ids: list[str], but: str | None = None
) -> list[NettingProposalRow]:
    """The proposals still waiting that settle any of these invoices, locked (after the
    invoices: the order every writer takes)."""
    stmt = (
        select(NettingProposalRow)
        .where(
            NettingProposalRow.status == "proposed",
            NettingProposalRow.id.in_(
                select(NettingInvoiceRow.proposal_id).where(
                    NettingInvoiceRow.invoice_id.in_(invoice_ids)
                )
            ),
        )
        .order_by(NettingProposalRow.id)
        .with_for_update()
    )
    if but is not None:
        stmt = stmt.where(NettingProposalRow.id != but)
    return list(session.scalars(stmt))


def pending_sharing_invoices_with(session: Session, proposal_id: str) -> list[NettingProposalRow]:
    """The other proposals still waiting that settle one of this one's invoices, locked."""
    mine = select(NettingInvoiceRow.invoice_id).where(NettingInvoiceRow.proposal_id == proposal_id)
    return pending_with(session, mine, but=proposal_id)  # type: ignore[arg-type]


def settle_proposal_invoices(
    session: Session, proposal_id: str, proposed: dict[str, int], locked: list
) -> None:
    """Settles each invoice of the proposal for what it owed when proposed (the caller
    checked, under lock, that it still owes exactly that). `proposed` and `locked`: what
    `lock_proposal_invoices` returned. On PostgreSQL the rows are updated where they lie, in
    the table's order: found by id, a netting larger than the cache read and wrote each
    page of invoices about once per invoice on it. Places and amounts go as two strings
    the server splits: psycopg2 adapts a list item by item, nine times slower."""
    invoices = InvoiceRow.__table__.c
    values = {"status": InvoiceStatus.SETTLED.value}
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "UPDATE invoices SET settled_cents = invoices.settled_cents + v.cents, "
                "status = :status FROM ("
                " SELECT place, cents FROM unnest("
                "CAST(string_to_array(:places, ' ') AS tid[]),"
                " CAST(string_to_array(:cents, ' ') AS bigint[])) AS u(place, cents)"
                " ORDER BY place"
                ") AS v WHERE invoices.ctid = v.place"
            ),
            {
                **values,
                "places": " ".join([r.place for r in locked]),
                "cents": " ".join([str(proposed[r.id]) for r in locked]),
            },
        )
        return
    proposed = (
        select(NettingInvoiceRow.open_cents)
        .where(
            NettingInvoiceRow.proposal_id == proposal_id,
            NettingInvoiceRow.invoice_id == invoices.id,
        )
        .scalar_subquery()
    )
    session.execute(
        update(InvoiceRow.__table__)
        .where(
            invoices.id.in_(
                select(NettingInvoiceRow.invoice_id).where(
                    NettingInvoiceRow.proposal_id == proposal_id
                )
            )
        )
        .values(settled_cents=invoices.settled_cents + proposed, **values)
    )


def next_sequence(session: Session, period: str) -> int:
    """The number of the period's next settlement: 1, then 2 after invoices issued late."""
    last = session.scalar(
        select(func.max(SettlementRow.sequence)).where(SettlementRow.period == period)
    )
    return (last or 0) + 1


def add_settlement(
    session: Session, settlement: domain.Settlement, due_date: date, proposal_id: str
) -> SettlementRow:
    """Writes the settlement of proposal `proposal_id`, its transfers (obligations due on
    `due_date`) and its audit trail: the invoices its transfers carry as decided, then each
    other invoice of the proposal compensated wholly, for what it owed when proposed (what
    it was settled for), straight from the proposal's invoices."""
    row = SettlementRow(**settlement.columns, proposal_id=proposal_id)
    session.add(row)
    session.flush()
    bulk_insert(
        session,
        SettlementTransferRow.__table__,
        [
            {
                "id": key,
                "settlement_id": row.id,
                "payer": payer,
                "payee": payee,
                "amount_cents": cents,
                "due_date": due_date,
            }
            for key, payer, payee, cents in settlement.transfers
        ],
        {
            "id": "text",
            "settlement_id": "text",
            "payer": "text",
            "payee": "text",
            "amount_cents": "bigint",
            "due_date": "date",
        },
    )
    bulk_insert(
        session,
        SettlementAllocationRow.__table__,
        _in_key_order(settlement.trail),
        {
            "settlement_id": "text",
            "invoice_id": "text",
            "part": "integer",
            "amount_cents": "bigint",
            "transfer_id": "text",
        },
    )
    allocations = SettlementAllocationRow.__table__.c
    carried = sorted({part["invoice_id"] for part in settlement.trail})
    session.execute(
        insert(SettlementAllocationRow.__table__).from_select(
            [
                allocations.settlement_id,
                allocations.invoice_id,
                allocations.part,
                allocations.amount_cents,
                allocations.transfer_id,
            ],
            select(
                literal(row.id),
                NettingInvoiceRow.invoice_id,
                literal(1),
                NettingInvoiceRow.open_cents,
                null(),
            )
            .where(
                NettingInvoiceRow.proposal_id == proposal_id,
                NettingInvoiceRow.invoice_id.not_in(carried),
            )
            .order_by(NettingInvoiceRow.invoice_id),  # key order, as _in_key_order
        )
    )
    return row


def _in_key_order(trail: list[dict]) -> list[dict]:
    """The audit trail in its primary key's order: appended in order, the index of a
    netting of hundreds of thousands of invoices is written page after page rather than
    at random places (invoice ids are random)."""
    return sorted(trail, key=itemgetter("invoice_id"))  # stable: an invoice's parts in order


def awaiting_decision_of(session: Session, commune: str) -> list[NettingProposalRow]:
    """The proposals still waiting for this commune's decision."""
    return list(
        session.scalars(
            select(NettingProposalRow)
            .join(NettingPartyRow, NettingPartyRow.proposal_id == NettingProposalRow.id)
            .where(
                NettingProposalRow.status == "proposed",
                NettingPartyRow.commune == commune,
                NettingPartyRow.decision == "pending",
            )
            .order_by(NettingProposalRow.deadline)
        )
    )
