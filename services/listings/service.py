"""The listings nameko service: RPC entrypoints and the events they emit; rules in domain.py."""

from __future__ import annotations

import logging

from contracts import clock
from contracts.caller import Caller
from contracts.errors import NotFound, unknown_commune, validated
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
    PhotoStored,
)
from contracts.topology import BOOKINGS_TO_LISTINGS, EMERGENCIES_TO_LISTINGS
from infra.communes import communes
from infra.consumer import consume_event_batches, consume_events
from infra.database import DatabaseAccess, UnitOfWork, one_statement_at_a_time
from infra.health import OperableService
from infra.metrics import DUPLICATES_SKIPPED
from infra.rpc import rpc
from services.listings import repository
from services.listings.dependencies import EPISODES
from services.listings.domain import (
    Origin,
    amended,
    ensure_changeable,
    ensure_manager_of,
    ensure_photos_changeable,
    ensure_room_for_photo,
    ensure_stored_for,
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
    return _shown(tx.session, row)


def _shown(session, row: ListingRow) -> dict:
    """One listing as its own answers show it: with its blackouts to come and its photos."""
    return repository.view_of(
        row,
        repository.current_blackouts(session, row.id),
        photos=repository.photos_of(session, row.id),
    )


def _visible(session, who: Caller, listing_id: str, for_update: bool = False) -> ListingRow:
    """The listing if this caller may see it, else 404 (domain.ensure_visible)."""
    row = repository.listing_row(session, listing_id, for_update)
    ensure_visible(who, listing_id, row and row.status, row and row.owner_commune)
    return row


def _for_change(session, who: Caller, listing_id: str) -> ListingRow:
    row = _visible(session, who, listing_id, for_update=True)
    ensure_changeable(who, row.status, row.owner_commune)
    return row


def _photos_for_change(session, who: Caller, listing_id: str) -> ListingRow:
    row = _visible(session, who, listing_id, for_update=True)
    ensure_photos_changeable(who, listing_id, row.status, row.owner_commune)
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


def track_bookings(db: DatabaseAccess, events: list[Event]) -> None:
    """Each booking's latest state from `events`, each applied once: on PostgreSQL in one
    statement committing alone (`repository.record_bookings_once`), elsewhere in a
    transaction of its own (`handling_all`)."""
    if db.engine.dialect.name != "postgresql":
        with db.handling_all(events) as (tx, fresh):
            repository.record_bookings(tx.session, [(e.payload, e.occurred_at) for e in fresh])
        return
    applied = [(str(e.event_id), e.type, e.payload, e.occurred_at) for e in events]
    with one_statement_at_a_time(db.engine).connect() as conn:
        fresh = repository.record_bookings_once(conn, db.consumer, applied)
    if skipped := len(events) - fresh:
        DUPLICATES_SKIPPED.labels(db.producer, db.consumer).inc(skipped)
        log.info("%s skipped %d duplicate events", db.consumer, skipped)


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
            return _shown(session, row)

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
    def add_photo(self, caller: dict, listing_id: str, stored: dict) -> dict:
        """Records a photo the gateway has checked and stored (its keys under this listing's
        prefix); the same image again is the photo already there. Answers the Photo and
        whether it is new (the gateway keeps the bytes it wrote only if so)."""
        who = Caller.model_validate(caller)
        photo = validated(PhotoStored, stored)
        with self.db.transaction() as tx:
            row = _photos_for_change(tx.session, who, listing_id)
            ensure_stored_for(listing_id, photo)
            existing = repository.photo_with_digest(tx.session, row.id, photo.digest)
            if existing is not None:
                return {
                    "photo": repository.photo_of(existing).model_dump(mode="json"),
                    "new": False,
                }
            ensure_room_for_photo(repository.photo_count(tx.session, row.id))
            added = repository.add_photo(tx.session, row, photo, who.user_id)
            _changed(tx, row)
            return {"photo": repository.photo_of(added).model_dump(mode="json"), "new": True}

    @rpc
    def remove_photo(self, caller: dict, listing_id: str, photo_id: str) -> dict:
        """Forgets a photo; answers its keys, whose bytes the gateway then deletes."""
        who = Caller.model_validate(caller)
        with self.db.transaction() as tx:
            row = _photos_for_change(tx.session, who, listing_id)
            photo = repository.photo_row(tx.session, row.id, photo_id)
            if photo is None:
                raise NotFound(f"No photo {photo_id} on this listing")
            keys = [photo.key, photo.thumbnail_key]
            repository.remove_photo(tx.session, photo)
            _changed(tx, row)
        log.info("photo %s of listing %s removed by %s", photo_id, listing_id, who.user_id)
        return {"keys": keys}

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
        track_bookings(self.db, events)

    @consume_events(EMERGENCIES_TO_LISTINGS)
    def keep_emergencies(self, event: Event) -> None:
        """Keeps the episodes, to put what is free now first in their territory's searches."""
        with self.db.handling(event) as tx:
            repository.keep_emergency(tx.session, event.payload)
        EPISODES.forget()  # this process reads them again at its next search
