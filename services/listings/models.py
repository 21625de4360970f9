"""Tables of the listings database."""

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
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


class ListingRow(Base):
    __tablename__ = "listings"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_commune: Mapped[str] = mapped_column(String(5), index=True)
    # the owner commune's point, copied at publication so that search stays in SQL
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    pricing_unit: Mapped[str] = mapped_column(String(8))
    rate_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    deposit_cents: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    min_duration: Mapped[int] = mapped_column(Integer)
    max_duration: Mapped[int | None] = mapped_column(Integer)
    lead_time_days: Mapped[int] = mapped_column(Integer)
    with_operator: Mapped[bool] = mapped_column(Boolean)
    operator_rate_cents: Mapped[int] = mapped_column(Integer)
    cancellation_notice_days: Mapped[int] = mapped_column(Integer)
    late_cancellation_fee_cents: Mapped[int] = mapped_column(Integer)
    early_pickup: Mapped[bool] = mapped_column(Boolean, default=False)
    late_fee_per_day_cents: Mapped[int] = mapped_column(Integer, default=0)
    rules: Mapped[str] = mapped_column(Text)
    auto_approve_in_emergencies: Mapped[bool] = mapped_column(Boolean, default=False)
    # contracts.listings.Contact as JSON (its number in E.164), or none named
    contact: Mapped[dict | None] = mapped_column(JSON)
    pickup_address: Mapped[str] = mapped_column(Text, default="")
    pickup_instructions: Mapped[str] = mapped_column(Text, default="")
    search_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_listings_status_latitude", "status", "latitude"),
        # the listings at one point by id: a nearest-first page's ties
        # (repository.nearest_page_statement)
        Index("ix_listings_point_id", "latitude", "longitude", "id"),
    )


class BlackoutRow(Base):
    __tablename__ = "blackouts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    listing_id: Mapped[str] = mapped_column(ForeignKey("listings.id"), index=True)
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PhotoRow(Base, StoredPhotoColumns):
    """A photo of a listing: its metadata; the bytes are in the storage under its keys
    (written by the gateway, which received them: docs/architecture.md)."""

    __tablename__ = "listing_photos"

    listing_id: Mapped[str] = mapped_column(ForeignKey("listings.id"), index=True)

    # the same image twice on a listing is one photo
    __table_args__ = (UniqueConstraint("listing_id", "digest", name="uq_listing_photos_digest"),)


class BookedPeriod(Base):
    """When a listing is held by a booking, learnt from booking events (never by asking)."""

    __tablename__ = "booked_periods"

    booking_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    listing_id: Mapped[str] = mapped_column(String(36))
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    quantity: Mapped[int] = mapped_column(Integer)
    holding: Mapped[bool] = mapped_column(Boolean)
    # events may arrive out of order: the latest occurrence wins
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_booked_periods_listing_period", "listing_id", "start", "end"),)


class EmergencyCopy(Base):
    """An emergency episode as the bookings service announced it (search puts what is free
    now first for a searcher in its territory)."""

    __tablename__ = "emergencies"

    emergency_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    snapshot: Mapped[dict] = mapped_column(JSON)
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended: Mapped[bool] = mapped_column(Boolean)
