"""Tables of the bookings database."""

from datetime import datetime

from sqlalchemy import JSON, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
