"""Agreements between communes (conventions de mise à disposition) and the council decisions
that approve them: the events other services learn them from.

Agreements live with bookings, the service that owns the loans they cover (see
docs/architecture.md); consultants keeps a copy of those in force for staff engagements, and
billing learns an agreement's reference from the charge it covers (BT-12), never from here.
"""

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from contracts.events import Event, Payload, register
from contracts.fields import Day, Input, Text
from contracts.listings import Category

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
    initiator_commune: str | None = None  # the commune that drafted it (numbers its reference)


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


# -- RPC inputs and views (bookings service, through the gateway) ------------------------

# the clauses an agreement writes unless its parties choose other words
STANDARD_INSURANCE = (
    "Chaque partie assure les biens qu'elle met à disposition. La commune bénéficiaire répond "
    "des dommages causés au matériel pendant la mise à disposition, hors usure normale, "
    "constatés contradictoirement à la restitution, et de ceux causés aux tiers par son usage."
)
STANDARD_DISPUTES = (
    "Les parties recherchent d'abord un règlement amiable, dans un délai de deux mois à compter "
    "de la notification écrite du différend. À défaut, le litige est porté devant le tribunal "
    "administratif territorialement compétent."
)


class AgreementDraft(Input):
    """A framework agreement as a party's manager drafts it."""

    title: Text = Field(min_length=3, max_length=200)
    parties: list[str] = Field(
        default=[],
        max_length=200,
        description="INSEE codes of the parties, the drafting commune among them",
    )
    epci: str | None = Field(
        default=None,
        pattern=r"^\d{9}$",
        description="SIREN of an EPCI: every commune of it becomes a party",
    )
    categories: list[Category] = Field(default=[], max_length=20)
    covers_staff: bool = False
    tariff: Tariff = Tariff.LISTING_RATES
    starts_on: Day
    ends_on: Day | None = None
    insurance: Text = Field(default=STANDARD_INSURANCE, min_length=10, max_length=3000)
    disputes: Text = Field(default=STANDARD_DISPUTES, min_length=10, max_length=3000)


class Signature(Input):
    """A party signs, under its council's decision approving the agreement (or authorising
    the mayor to sign such agreements)."""

    decision_id: str = Field(min_length=1, max_length=36)
    signatory: Text = Field(min_length=3, max_length=200, description="name and office")


class AgreementQuery(Input):
    status: AgreementStatus | None = None


class PartyView(PartyAct):
    commune_name: str = ""
    decision_id: str | None = None


class AgreementView(BaseModel):
    id: str
    reference: str
    title: str
    status: AgreementStatus
    initiator_commune: str
    parties: list[PartyView]
    categories: list[str]
    covers_staff: bool
    tariff: Tariff
    starts_on: date
    ends_on: date | None
    insurance: str
    disputes: str
    one_off_booking_id: str | None = None
    has_signed_scan: bool = False
    created_at: datetime
    ended_at: datetime | None = None


class AgreementList(BaseModel):
    items: list[AgreementView]


class DecisionDraft(Input):
    """A council decision (délibération) relevant to Mutualis, as its commune records it."""

    number: Text = Field(min_length=1, max_length=50, description="e.g. 2026-118")
    date: Day = Field(description="the council's sitting; not in the future (Paris)")
    subject: Text = Field(min_length=3, max_length=500)
    agreement_ids: list[str] = Field(
        default=[], max_length=50, description="the agreements it approves"
    )
    approves_tariffs: bool = False
    authorises_mayor: bool = Field(
        default=False, description="the mayor may sign agreements (one-off ones included)"
    )


class DecisionView(BaseModel):
    id: str
    commune: str
    number: str
    date: date
    subject: str
    agreement_ids: list[str]
    approves_tariffs: bool
    authorises_mayor: bool
    has_pdf: bool
    recorded_at: datetime


class DecisionList(BaseModel):
    items: list[DecisionView]


class AgreementPolicy(Input):
    """Whether the commune lends only under an agreement in force: without one, a request
    for its listings is held until a one-off agreement is accepted by both managers."""

    requires_agreement: bool
