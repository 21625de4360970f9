"""The bookings nameko service."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts.events import Event
from contracts.topology import LISTINGS_TO_BOOKINGS
from infra.consumer import consume_events
from infra.health import OperableService
from services.bookings.domain import is_newer
from services.bookings.models import ListingCopy


class Service(OperableService):
    name = "bookings"

    @consume_events(LISTINGS_TO_BOOKINGS)
    def keep_listing_copy(self, event: Event) -> None:
        snapshot = event.payload
        with self.db.handling(event) as tx:
            copy = tx.session.get(ListingCopy, snapshot.listing_id, with_for_update=True)
            if not is_newer(snapshot, copy.revision if copy else None):
                return
            if copy is None:
                copy = ListingCopy(listing_id=snapshot.listing_id)
                tx.session.add(copy)
            copy.owner_commune = snapshot.owner_commune
            copy.status = snapshot.status.value
            copy.revision = snapshot.revision
            copy.snapshot = snapshot.model_dump(mode="json")
            copy.updated_at = datetime.now(UTC)
