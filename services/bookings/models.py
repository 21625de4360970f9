"""Tables of the bookings database."""

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from infra.photo_rows import StoredPhotoColumns
from infra.types import UtcDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class ListingCopy(Base):
    """The bookings service's own copy of a listing, kept from listing events, so that
    requests are accepted while the listings service is down."""

    __tablename__ = "listing_copies"

    listing_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_commune: Mapped[str] = mapped_column(String(5), index=True)
    status: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BookingRow(Base):
    __tablename__ = "bookings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    listing_id: Mapped[str] = mapped_column(String(36))
    listing_title: Mapped[str] = mapped_column(String(120))
    lender_commune: Mapped[str] = mapped_column(String(5), index=True)
    borrower_commune: Mapped[str] = mapped_column(String(5), index=True)
    status: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    quantity: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(Text)
    with_operator: Mapped[bool] = mapped_column(Boolean)
    order_reference: Mapped[str | None] = mapped_column(String(50))
    quote: Mapped[dict] = mapped_column(JSON)
    series_id: Mapped[str | None] = mapped_column(String(36))
    condition_out: Mapped[str | None] = mapped_column(Text)
    condition_in: Mapped[str | None] = mapped_column(Text)
    damages: Mapped[list] = mapped_column(JSON)
    cancellation_fee_cents: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # when a request still undecided expires (domain.decide_by)
    decide_by: Mapped[datetime | None] = mapped_column(UtcDateTime)
    checked_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # when booking.overdue was emitted: once per booking, whatever the timers
    overdue_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # the agreement in force that covers it (BT-12 on its invoice), and whether the lender,
    # requiring one, holds the request until a one-off agreement is accepted
    agreement_reference: Mapped[str | None] = mapped_column(String(40))
    agreement_held: Mapped[bool] = mapped_column(Boolean, default=False)
    # the revision of its dates, its invitation's SEQUENCE (domain.dates_revision)
    dates_revision: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        # by end: a request reads the holds ending after it starts, not the whole history
        Index("ix_bookings_listing_status_end", "listing_id", "status", "end", "start"),
        # the timers: requests to expire (by decide_by), loans overdue (by status)
        Index("ix_bookings_status_decide_by", "status", "decide_by"),
    )


class TransitionRow(Base):
    """Every change of a booking's status: who, when, why."""

    __tablename__ = "booking_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booking_id: Mapped[str] = mapped_column(ForeignKey("bookings.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by_user: Mapped[str | None] = mapped_column(String(36))
    by_commune: Mapped[str | None] = mapped_column(String(5))
    note: Mapped[str] = mapped_column(Text)


class DatesProposalRow(Base):
    """New dates the lender's manager proposed for an approved loan that would cost the
    borrower more, and what became of them: kept, as who consented to what is audited."""

    __tablename__ = "dates_proposals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    booking_id: Mapped[str] = mapped_column(ForeignKey("bookings.id"))
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    quote: Mapped[dict] = mapped_column(JSON)
    proposed_by: Mapped[str] = mapped_column(String(36))
    proposed_by_commune: Mapped[str] = mapped_column(String(5))
    reason: Mapped[str] = mapped_column(Text)
    proposed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_by: Mapped[str | None] = mapped_column(String(36))
    answered_by_commune: Mapped[str | None] = mapped_column(String(5))
    answer: Mapped[str] = mapped_column(Text, default="")

    # a booking's pending proposal, read with the booking
    __table_args__ = (Index("ix_dates_proposals_booking_status", "booking_id", "status"),)


class EmergencyRow(Base):
    """An emergency episode declared by an operator or a coordinator."""

    __tablename__ = "emergencies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    territory: Mapped[dict] = mapped_column(JSON)
    categories: Mapped[list] = mapped_column(JSON)
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    declared_by: Mapped[str] = mapped_column(String(36))
    declared_by_commune: Mapped[str] = mapped_column(String(5))
    declared_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(Text)


class UrgentRequestRow(Base):
    """A booking an episode made urgent: its declared need, and the allocation's decision
    (none while its window is open)."""

    __tablename__ = "urgent_requests"

    booking_id: Mapped[str] = mapped_column(ForeignKey("bookings.id"), primary_key=True)
    emergency_id: Mapped[str] = mapped_column(ForeignKey("emergencies.id"), index=True)
    listing_id: Mapped[str] = mapped_column(String(36))
    need: Mapped[str] = mapped_column(String(24))
    distance_km: Mapped[float | None] = mapped_column(Float)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    granted: Mapped[bool | None] = mapped_column(Boolean)
    position: Mapped[int | None] = mapped_column(Integer)
    explanation: Mapped[str] = mapped_column(Text)

    # the allocation timer looks for the undecided ones, listing by listing
    __table_args__ = (Index("ix_urgent_requests_undecided", "decided_at", "listing_id"),)


class ConditionPhotoRow(Base, StoredPhotoColumns):
    """A photo of a loan's condition at hand-over or return: its metadata (the bytes are in
    the storage, written by the gateway, as for listings' photos)."""

    __tablename__ = "condition_photos"

    booking_id: Mapped[str] = mapped_column(ForeignKey("bookings.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    added_by_commune: Mapped[str] = mapped_column(String(5))

    # the same image twice at a stage is one photo
    __table_args__ = (
        UniqueConstraint("booking_id", "stage", "digest", name="uq_condition_photos_digest"),
    )


class AgreementRow(Base):
    """An agreement between communes (convention de mise à disposition)."""

    __tablename__ = "agreements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    initiator_commune: Mapped[str] = mapped_column(String(5))
    year: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    categories: Mapped[list] = mapped_column(JSON)
    covers_staff: Mapped[bool] = mapped_column(Boolean)
    tariff: Mapped[str] = mapped_column(String(32))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    insurance: Mapped[str] = mapped_column(Text)
    disputes: Mapped[str] = mapped_column(Text)
    one_off_booking_id: Mapped[str | None] = mapped_column(String(36))
    signed_scan: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    has_signed_scan: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_agreements_initiator_year", "initiator_commune", "year"),)


class AgreementPartyRow(Base):
    """One party to an agreement, and its signature under its council's decision."""

    __tablename__ = "agreement_parties"

    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreements.id"), primary_key=True)
    commune: Mapped[str] = mapped_column(String(5), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    decision_id: Mapped[str | None] = mapped_column(String(36))
    signatory: Mapped[str | None] = mapped_column(String(200))
    signed_on: Mapped[date | None] = mapped_column(Date)
    signed_by: Mapped[str | None] = mapped_column(String(36))


class CouncilDecisionRow(Base):
    """A council decision (délibération) of a commune relevant to Mutualis."""

    __tablename__ = "council_decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    commune: Mapped[str] = mapped_column(String(5), index=True)
    number: Mapped[str] = mapped_column(String(50))
    decided_on: Mapped[date] = mapped_column(Date)
    subject: Mapped[str] = mapped_column(Text)
    agreement_ids: Mapped[list] = mapped_column(JSON)
    approves_tariffs: Mapped[bool] = mapped_column(Boolean)
    authorises_mayor: Mapped[bool] = mapped_column(Boolean)
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    has_pdf: Mapped[bool] = mapped_column(Boolean, default=False)
    recorded_by: Mapped[str] = mapped_column(String(36))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)

    # a council numbers its decisions once each
    __table_args__ = (UniqueConstraint("commune", "number", name="uq_council_decisions_number"),)


class AgreementPolicyRow(Base):
    """A lending commune's policy: whether it lends only under an agreement in force."""

    __tablename__ = "agreement_policies"

    commune: Mapped[str] = mapped_column(String(5), primary_key=True)
    requires_agreement: Mapped[bool] = mapped_column(Boolean)
    updated_by: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
