"""The columns every stored photo's metadata has, in whichever service owns the photo
(listings' photos, loans' condition photos): its bytes are in the storage (infra.storage)
under its two content-addressed keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from contracts.listings import photo_url
from infra.types import UtcDateTime


class StoredPhotoColumns:
    """A declarative mixin: each service's photo table has these columns, and its own."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200))
    thumbnail_key: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(20))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    added_by: Mapped[str] = mapped_column(String(36))
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)

    def photo_fields(self) -> dict:
        """The fields of contracts.listings.Photo: what clients see of it."""
        return {
            "id": self.id,
            "url": photo_url(self.key),
            "thumbnail_url": photo_url(self.thumbnail_key),
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
            "added_at": self.added_at,
        }
