"""Agreements between communes (conventions de mise à disposition) and the council decisions
that approve them: the events other services learn them from.

Agreements live with bookings, the service that owns the loans they cover (see
docs/architecture.md); consultants keeps a copy of those in force for staff engagements, and
billing learns an agreement's reference from the charge it covers (BT-12), never from here.
"""

from datetime import date
from enum import StrEnum

from contracts.events import Event, Payload, register

PRODUCER = "bookings"  # the service whose outbox emits these events


class AgreementStatus(StrEnum):
    DRAFT = "draft"
    PROPOSED = "proposed"
    SIGNED = "signed"  # by some parties, not yet all
    IN_FORCE = "in_force"
    ENDED = "ended"


class Tariff(StrEnum):
    LISTING_RATES = "listing_rates"  # the lender's published rates
    COST_REIMBURSEMENT = "cost_reimbursement"  # the lender's actual costs, reimbursed


class PartyAct(Payload):
    """One party to an agreement: its council's decision and who signed for it."""

    commune: str  # INSEE code
    decision_number: str | None = None
    decision_date: date | None = None
    signatory: str | None = None  # name and office, as written on the agreement
    signed_on: date | None = None


class AgreementSnapshot(Payload):
    """What other services need of an agreement to know whether it covers a loan."""

    agreement_id: str
    reference: str  # unique, printed on invoices as BT-12 (contract reference)
    title: str
    status: AgreementStatus
    parties: list[PartyAct]
    categories: list[str] = []  # listing categories of equipment, vehicles, spaces, services
    covers_staff: bool = False  # experts lent for engagements
    tariff: Tariff = Tariff.LISTING_RATES
    starts_on: date
    ends_on: date | None = None  # last day covered; None: until ended
    one_off_booking_id: str | None = None  # a one-off agreement accepted for one request


@register
class AgreementProposed(Event):
    TYPE = "agreement.proposed"
    payload: AgreementSnapshot


@register
class AgreementSigned(Event):
    TYPE = "agreement.signed"  # one party signed; the snapshot says who has
    payload: AgreementSnapshot


@register
class AgreementInForce(Event):
    TYPE = "agreement.in_force"  # every party signed with its council's decision
    payload: AgreementSnapshot


@register
class AgreementEnded(Event):
    TYPE = "agreement.ended"
    payload: AgreementSnapshot


AGREEMENT_EVENTS = (
    AgreementProposed.TYPE,
    AgreementSigned.TYPE,
    AgreementInForce.TYPE,
    AgreementEnded.TYPE,
)
