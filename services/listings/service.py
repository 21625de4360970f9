"""The listings nameko service: RPC entrypoints only; rules live in domain.py."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from contracts.caller import Caller
from contracts.errors import Conflict, NotFound, unknown_commune, validated
from contracts.events import Event
from contracts.fields import is_uuid
from contracts.listings import (
    Availability,
    AvailabilityQuery,
    BlackoutDraft,
    ListingChanges,
    ListingDraft,
    ListingQuery,
    ListingStatus,
    ListingUpdated,
    ListingWithdrawn,
    Period,
)
from contracts.topology import BOOKINGS_TO_LISTINGS
from infra.communes import communes
from infra.consumer import consume_event_batches
from infra.health import OperableService
from infra.rpc import rpc
from services.listings import repository
from services.listings.domain import (
    Origin,
    amended,
    ensure_manager_of,
    free_periods,
    merge_periods,
    saturated_periods,
    search_text,
    window,
)
from services.listings.models import BlackoutRow, ListingRow

log = logging.getLogger(__name__)


class Service(OperableService):
    name = "listings"

    @rpc
    def ping(self) -> str:
        """The cheapest possible round trip, the floor of the benchmarks."""
        return "pong"

    @rpc
    def publish(self, caller: dict, draft: dict) -> dict:
        who = Caller.model_validate(caller)
        terms = validated(ListingDraft, draft)
        ensure_manager_of(who, who.commune)
        with self.db.transaction() as tx:
            row = repository.publish(tx, who.commune, terms)
        log.info("listing %s published by %s for %s", row.id, who.user_id, who.commune)
        return repository.view_of(row)

    @rpc
    def get(self, caller: dict, listing_id: str) -> dict:
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            row = self._visible(session, who, listing_id)
            blackouts = repository.blackouts_of(session, row.id, since=datetime.now(UTC))
            return repository.view_of(row, blackouts)

    @rpc
    def update(self, caller: dict, listing_id: str, changes: dict) -> dict:
        who = Caller.model_validate(caller)
        edit = validated(ListingChanges, changes)
        with self.db.transaction() as tx:
            row = self._for_change(tx.session, who, listing_id)
            terms = amended(repository.terms_of(row), edit)
            for name, value in terms.model_dump(mode="json").items():
                setattr(row, name, value)
            row.search_text = search_text(terms.title, terms.description, terms.category)
            self._bump(row)
            tx.emit(ListingUpdated, repository.snapshot_of(tx.session, row))
            blackouts = repository.blackouts_of(tx.session, row.id, since=datetime.now(UTC))
        return repository.view_of(row, blackouts)

    @rpc
    def withdraw(self, caller: dict, listing_id: str) -> dict:
        """No new bookings from now on; bookings already made are kept. Idempotent."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            row = self._visible(tx.session, who, listing_id, for_update=True)
            ensure_manager_of(who, row.owner_commune)
            if row.status != ListingStatus.WITHDRAWN.value:
                row.status = ListingStatus.WITHDRAWN.value
                self._bump(row)
                tx.emit(ListingWithdrawn, repository.snapshot_of(tx.session, row))
        return repository.view_of(row)

    @rpc
    def add_blackout(self, caller: dict, listing_id: str, draft: dict) -> dict:
        who = Caller.model_validate(caller)
        blackout = validated(BlackoutDraft, draft)
        with self.db.transaction() as tx:
            row = self._for_change(tx.session, who, listing_id)
            tx.session.add(
                BlackoutRow(
                    id=str(uuid.uuid4()),
                    listing_id=row.id,
                    start=blackout.start,
                    end=blackout.end,
                    reason=blackout.reason,
                    created_at=datetime.now(UTC),
                )
            )
            self._bump(row)
            tx.session.flush()
            tx.emit(ListingUpdated, repository.snapshot_of(tx.session, row))
            blackouts = repository.blackouts_of(tx.session, row.id, since=datetime.now(UTC))
        return repository.view_of(row, blackouts)

    @rpc
    def search(self, caller: dict, query: dict) -> dict:
        Caller.model_validate(caller)
        q = validated(ListingQuery, query)
        origin = None
        if q.near is not None:
            commune = communes().get(q.near)
            if commune is None or commune.latitude is None:
                raise unknown_commune("near", q.near)
            origin = Origin(commune.latitude, commune.longitude)
        period = window(q.available_from, q.available_to) if q.available_from else None
        with self.db.reading() as session:
            items, next_cursor = repository.search(session, q, origin, period)
        return {"items": items, "next_cursor": next_cursor}

    @rpc
    def availability(self, caller: dict, listing_id: str, start: str, end: str) -> dict:
        """Busy and free periods of [start, end); a date `end` includes that day."""
        who = Caller.model_validate(caller)
        asked = validated(AvailabilityQuery, {"start": start, "end": end})
        period_start, period_end = window(asked.start, asked.end, names=("from", "to"))
        with self.db.reading() as session:
            row = self._visible(session, who, listing_id)
            closed = [
                (b.start, b.end)
                for b in repository.blackouts_of(session, row.id)
                if b.start < period_end and b.end > period_start
            ]
            held = repository.held_during(session, row.id, period_start, period_end)
        busy = merge_periods(closed + saturated_periods(held, row.quantity))
        return Availability(
            listing_id=listing_id,
            quantity=row.quantity,
            busy=[Period(start=max(s, period_start), end=min(e, period_end)) for s, e in busy],
            free=[Period(start=s, end=e) for s, e in free_periods(period_start, period_end, busy)],
        ).model_dump(mode="json")

    # -- helpers ----------------------------------------------------------------------

    def _visible(
        self, session, who: Caller, listing_id: str, for_update: bool = False
    ) -> ListingRow:
        """A published listing, or a withdrawn one of the caller's own commune; else 404."""
        if not is_uuid(listing_id):  # ids are UUIDs; anything else (e.g. a NUL) is no listing
            raise NotFound(f"No listing {listing_id}")
        query = select(ListingRow).where(ListingRow.id == listing_id)
        if for_update:
            query = query.with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None or (
            row.status != ListingStatus.PUBLISHED.value and row.owner_commune != who.commune
        ):
            raise NotFound(f"No listing {listing_id}")
        return row

    def _for_change(self, session, who: Caller, listing_id: str) -> ListingRow:
        row = self._visible(session, who, listing_id, for_update=True)
        ensure_manager_of(who, row.owner_commune)
        if row.status == ListingStatus.WITHDRAWN.value:
            raise Conflict("This listing is withdrawn and can no longer change")
        return row

    @staticmethod
    def _bump(row: ListingRow) -> None:
        row.revision += 1
        row.updated_at = datetime.now(UTC)

    # -- events -----------------------------------------------------------------------

    @consume_event_batches(BOOKINGS_TO_LISTINGS)
    def track_busy_periods(self, events: list[Event]) -> None:
        """Keeps when each listing is held by a booking, for availability and search."""
        with self.db.handling_all(events) as (tx, fresh):
            repository.record_bookings(
                tx.session, [(event.payload, event.occurred_at) for event in fresh]
            )
