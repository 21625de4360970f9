"""Tables of the consultants database. Days are stored as whole half days (integers), so
sums are exact on every database."""

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from infra.types import UtcDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class ConsultantRow(Base):
    __tablename__ = "consultants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    home_commune: Mapped[str] = mapped_column(String(5), index=True)
    # the home commune's point, copied at publication: matching measures distances from it
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(16))
    # bumped by every change a match could see, its commitments included: the matching
    # index reloads a consultant when this moves
    revision: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(160))
    skills: Mapped[list] = mapped_column(JSON)
    bio: Mapped[str] = mapped_column(Text)
    languages: Mapped[list] = mapped_column(JSON)
    day_rate_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    max_days_per_month: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


# how many rows of catalogue_changes share the count: two changes wait for each other only
# when their consultants fall in the same one
CATALOGUE_SHARDS = 16


class CatalogueChangeRow(Base):
    """Changes a match could see (a consultant published, any revision bump), counted
    in the transaction that makes them, spread over CATALOGUE_SHARDS rows: their sum is
    what the matching index checks before each match, a read of a few rows whatever the
    number of consultants (summing every consultant's revision grew with them)."""

    __tablename__ = "catalogue_changes"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    changes: Mapped[int] = mapped_column(BigInteger)


class AvailabilityRow(Base):
    """A period when the consultant is (or is not) lent: half-open [start, end)."""

    __tablename__ = "availability_periods"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    consultant_id: Mapped[str] = mapped_column(ForeignKey("consultants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class EngagementRow(Base):
    __tablename__ = "engagements"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    consultant_id: Mapped[str] = mapped_column(ForeignKey("consultants.id"))
    consultant_name: Mapped[str] = mapped_column(String(120))
    lender_commune: Mapped[str] = mapped_column(String(5), index=True)
    borrower_commune: Mapped[str] = mapped_column(String(5), index=True)
    status: Mapped[str] = mapped_column(String(16))
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    half_days: Mapped[int] = mapped_column(Integer)
    mission: Mapped[str] = mapped_column(Text)
    order_reference: Mapped[str | None] = mapped_column(String(50))
    # agreed when requested: a later change of the profile's rate does not reprice it
    day_rate_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    requested_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # the official's consent, recorded by the lender's manager when accepting
    consent_given_on: Mapped[date | None] = mapped_column(Date)
    consent_note: Mapped[str | None] = mapped_column(Text)
    consent_recorded_by: Mapped[str | None] = mapped_column(String(36))
    consent_recorded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_engagements_consultant_status", "consultant_id", "status"),
        # the expiry timer's: requests by age
        Index("ix_engagements_status_created", "status", "created_at"),
    )


class EngagementTransitionRow(Base):
    """Every change of an engagement's status: who, when, why."""

    __tablename__ = "engagement_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    by_user: Mapped[str | None] = mapped_column(String(36))
    by_commune: Mapped[str | None] = mapped_column(String(5))
    note: Mapped[str] = mapped_column(Text)


class TimesheetRow(Base):
    """Days worked on an engagement, recorded by the lender, approved by the borrower (or
    rejected with a reason, then corrected by the lender)."""

    __tablename__ = "timesheets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(ForeignKey("engagements.id"), index=True)
    work_date: Mapped[date] = mapped_column(Date)
    half_days: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text)
    # set: work on a weekend or public holiday, and why it could not wait
    exceptional_reason: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(36))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    approved_by: Mapped[str | None] = mapped_column(String(36))
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # the last rejection, kept once the lender corrected the days
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    rejected_by: Mapped[str | None] = mapped_column(String(36))
    rejected_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AgreementRow(Base):
    """A copy of an agreement between communes (owned by bookings), from its agreement.*
    events: what says whether it covers an engagement's staff."""

    __tablename__ = "agreements"

    agreement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reference: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    parties: Mapped[list] = mapped_column(JSON)  # INSEE codes
    covers_staff: Mapped[bool] = mapped_column(Boolean)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    # once in force, an ended agreement still covers the days up to its end
    was_in_force: Mapped[bool] = mapped_column(Boolean)
    # when the event last applied happened: an older one arriving late changes nothing
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
