"""Booking rules: pure, no I/O."""

from contracts.listings import ListingSnapshot


def is_newer(snapshot: ListingSnapshot, kept_revision: int | None) -> bool:
    """Listing events may arrive out of order; only a later revision replaces the copy."""
    return kept_revision is None or snapshot.revision > kept_revision
