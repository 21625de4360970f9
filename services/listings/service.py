"""The listings nameko service: RPC entrypoints and the events they emit; rules in domain.py."""

from __future__ import annotations

import logging

from contracts import clock
from contracts.caller import Caller
from contracts.errors import unknown_commune, validated
from contracts.events import Event
from contracts.listings import (
    Availability,
    AvailabilityQuery,
    BlackoutDraft,
    ListingChanges,
    ListingDraft,
    ListingPublished,
    ListingQuery,
    ListingStatus,
    ListingTerms,
    ListingUpdated,
    ListingWithdrawn,
    Period,
)
from contracts.topology import BOOKINGS_TO_LISTINGS, EMERGENCIES_TO_LISTINGS
from infra.communes import communes
from infra.consumer import consume_event_batches, consume_events
from infra.database import UnitOfWork
from infra.health import OperableService
from infra.rpc import rpc
from services.listings import repository
from services.listings.dependencies import EPISODES
from services.listings.domain import (
    Origin,
    amended,
    ensure_changeable,
    ensure_manager_of,
    ensure_visible,
    free_now_first,
    free_periods,
    merge_periods,
    saturated_periods,
    window,
)
from services.listings.models import ListingRow

log = logging.getLogger(__name__)


def publish_listing(tx: UnitOfWork, owner_commune: str, terms: ListingTerms) -> ListingRow:
    """A new published listing and its listing.published: what `publish` does, and the
    seeds (demo, bench) with it."""
    row = repository.add_listing(tx.session, owner_commune, terms)
    tx.emit(ListingPublished, repository.snapshot_of(tx.session, row))
    return row


def _changed(tx: UnitOfWork, row: ListingRow) -> dict:
    """A new revision of the listing, its listing.updated, and the listing as now shown."""
    repository.bump(tx.session, row)
    tx.emit(ListingUpdated, repository.snapshot_of(tx.session, row))
    return repository.view_of(row, repository.current_blackouts(tx.session, row.id))


def _visible(session, who: Caller, listing_id: str, for_update: bool = False) -> ListingRow:
    """The listing if this caller may see it, else 404 (domain.ensure_visible)."""
    row = repository.listing_row(session, listing_id, for_update)
    ensure_visible(who, listing_id, row and row.status, row and row.owner_commune)
    return row


def _for_change(session, who: Caller, listing_id: str) -> ListingRow:
    row = _visible(session, who, listing_id, for_update=True)
    ensure_changeable(who, row.status, row.owner_commune)
    return row


def _free_now_first_in_emergencies(session, who: Caller, items: list[dict]) -> list[dict]:
    """During an episode over the searcher's commune, what is free now comes first (within
    the page: pages stay in the search's own order)."""
    now = clock.now()
    directory = communes()
    categories = {
        category
        for episode in EPISODES.at(session, now)
        if episode.territory.contains(who.commune, directory)
        for category in episode.categories
    }
    if not categories or not items:
        return items
    covered = [item["id"] for item in items if item["category"] in categories]
    return free_now_first(items, categories, repository.held_at(session, covered, now))


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
            row = publish_listing(tx, who.commune, terms)
        log.info("listing %s published by %s for %s", row.id, who.user_id, who.commune)
        return repository.view_of(row)

    @rpc
    def get(self, caller: dict, listing_id: str) -> dict:
        who = Caller.model_validate(caller)
        with self.db.reading() as session:
            row = _visible(session, who, listing_id)
            return repository.view_of(row, repository.current_blackouts(session, row.id))

    @rpc
    def update(self, caller: dict, listing_id: str, changes: dict) -> dict:
        who = Caller.model_validate(caller)
        edit = validated(ListingChanges, changes)
        with self.db.transaction() as tx:
            row = _for_change(tx.session, who, listing_id)
            repository.amend(row, amended(repository.terms_of(row), edit))
            return _changed(tx, row)

    @rpc
    def withdraw(self, caller: dict, listing_id: str) -> dict:
        """No new bookings from now on; bookings already made are kept. Idempotent."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            row = _visible(tx.session, who, listing_id, for_update=True)
            ensure_manager_of(who, row.owner_commune)
            if row.status != ListingStatus.WITHDRAWN.value:
                repository.withdraw(row)
                repository.bump(tx.session, row)
                tx.emit(ListingWithdrawn, repository.snapshot_of(tx.session, row))
        return repository.view_of(row)

    @rpc
    def add_blackout(self, caller: dict, listing_id: str, draft: dict) -> dict:
        who = Caller.model_validate(caller)
        blackout = validated(BlackoutDraft, draft)
        with self.db.transaction() as tx:
            row = _for_change(tx.session, who, listing_id)
            repository.add_blackout(tx.session, row, blackout)
            return _changed(tx, row)

    @rpc
    def search(self, caller: dict, query: dict) -> dict:
        who = Caller.model_validate(caller)
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
            items = _free_now_first_in_emergencies(session, who, items)
            # count, count_exact and facets always sent (null unless `count=true`), as the
            # API's schema says: generated clients read every field it lists as sent
            found = {"items": items, "next_cursor": next_cursor}
            found |= {"count": None, "count_exact": None, "facets": None}
            if q.count:
                found["count"], found["count_exact"], found["facets"] = repository.count_matches(
                    session, q, origin, period
                )
        return found

    @rpc
    def availability(self, caller: dict, listing_id: str, start: str, end: str) -> dict:
        """Busy and free periods of [start, end); a date `end` includes that day."""
        who = Caller.model_validate(caller)
        asked = validated(AvailabilityQuery, {"start": start, "end": end})
        period_start, period_end = window(asked.start, asked.end, names=("from", "to"))
        with self.db.reading() as session:
            row = _visible(session, who, listing_id)
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

    # -- events -----------------------------------------------------------------------

    @consume_event_batches(BOOKINGS_TO_LISTINGS)
    def track_busy_periods(self, events: list[Event]) -> None:
        """Keeps when each listing is held by a booking, for availability and search."""
        with self.db.handling_all(events) as (tx, fresh):
            repository.record_bookings(
                tx.session, [(event.payload, event.occurred_at) for event in fresh]
            )

    @consume_events(EMERGENCIES_TO_LISTINGS)
    def keep_emergencies(self, event: Event) -> None:
        """Keeps the episodes, to put what is free now first in their territory's searches."""
        with self.db.handling(event) as tx:
            repository.keep_emergency(tx.session, event.payload)
        EPISODES.forget()  # this process reads them again at its next search
