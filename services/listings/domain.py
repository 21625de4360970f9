"""Listing rules, free-text folding, the distance filter's bounds, availability: pure, no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from contracts.caller import Caller
from contracts.clock import PARIS
from contracts.errors import Conflict, InvalidInput, NotFound, field_error
from contracts.fields import amended  # noqa: F401 - the service asks the domain
from contracts.listings import MAX_PHOTOS, ListingStatus, PhotoStored, photo_prefix
from infra.communes import fold

KM_PER_DEGREE = 6371.0088 * math.pi / 180


def ensure_visible(caller: Caller, listing_id: str, status: str | None, owner: str | None) -> None:
    """A published listing, or a withdrawn one of the caller's own commune (status None:
    there is no such listing); anything else is no listing to this caller (404)."""
    if status is None or (status != ListingStatus.PUBLISHED and owner != caller.commune):
        raise NotFound(f"No listing {listing_id}")


def ensure_changeable(caller: Caller, status: str, owner_commune: str) -> None:
    """A manager of the owning commune changes a listing until it is withdrawn."""
    ensure_manager_of(caller, owner_commune)
    if status == ListingStatus.WITHDRAWN:
        raise Conflict("This listing is withdrawn and can no longer change")


def ensure_manager_of(caller: Caller, owner_commune: str) -> None:
    """Only a manager of the owning commune publishes or changes its listings."""
    caller.ensure_manages(owner_commune, "listings", "This listing")


def ensure_photos_changeable(caller: Caller, listing_id: str, status: str, owner: str) -> None:
    """A listing's photos are its owner's managers' to add and remove; to another commune
    there is no such photo collection to write to (404, not 403: the upload already sent
    bytes, and says nothing of whose listing it is)."""
    if owner != caller.commune:
        raise NotFound(f"No listing {listing_id} of your commune")
    ensure_changeable(caller, status, owner)


def ensure_stored_for(listing_id: str, photo: PhotoStored) -> None:
    """A photo's keys are under its listing's prefix (what the gateway writes)."""
    if not photo.is_under(photo_prefix(listing_id)):
        raise InvalidInput(
            "The photo is not stored for this listing",
            [field_error("key", f"keys under {photo_prefix(listing_id)} naming the digest")],
        )


def ensure_room_for_photo(photos: int) -> None:
    if photos >= MAX_PHOTOS:
        raise Conflict(f"A listing shows at most {MAX_PHOTOS} photos: remove one first")


def search_text(title: str, description: str, category: str) -> str:
    return f" {fold(title)} {fold(description)} {fold(category)} "


def query_terms(q: str | None) -> list[str]:
    return fold(q or "").split()


# PostgreSQL orders by a nearest-neighbour index on (longitude × this, latitude): one fixed
# flat-earth scale, cos 46.4°, the middle of metropolitan France (migration 0003)
KNN_LON_SCALE = "0.69"


@dataclass(frozen=True)
class Origin:
    """The point distances are measured from, with its flat-earth scale for ordering."""

    latitude: float
    longitude: float

    @property
    def lon_scale(self) -> float:
        return math.cos(math.radians(self.latitude))

    def degree_radius(self, radius_km: float) -> float:
        # a little slack so the approximate SQL filter never drops a true match
        return radius_km / KM_PER_DEGREE * 1.01

    def bounds(self, radius_km: float) -> Bounds:
        """What the search's SQL filter compares each listing's point with, for `radius_km`
        around this origin (services/listings/repository.py, `search_statement`)."""
        r = self.degree_radius(radius_km)
        r_lon = r / self.lon_scale
        return Bounds(
            flat_radius=r * r,
            lat_min=self.latitude - r,
            lat_max=self.latitude + r,
            lon_min=self.longitude - r_lon,
            lon_max=self.longitude + r_lon,
        )


class Bounds(NamedTuple):
    """A radius in the search's flat-earth terms: a point is kept when
    Δlat² + (Δlon·cos lat₀)² ≤ flat_radius (degrees of latitude, squared); the latitude and
    longitude box holds that circle, so that SQLite can narrow the rows by index first."""

    flat_radius: float
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float


def as_instant(value: datetime | date) -> datetime:
    """A date means the start of that day in Paris."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time(0), tzinfo=PARIS)


def window(
    available_from: datetime | date,
    available_to: datetime | date,
    names: tuple[str, str] = ("available_from", "available_to"),
) -> tuple[datetime, datetime]:
    """The period a search asks about; a date `available_to` includes that whole day.
    `names` are the fields the client sent, for the error."""
    start = as_instant(available_from)
    if isinstance(available_to, datetime):
        end = available_to
    else:
        end = as_instant(available_to + timedelta(days=1))
    if end <= start:
        raise InvalidInput(
            "The period is empty",
            [field_error(names[1], f"must be after {names[0]}")],
        )
    return start, end


def merge_periods(periods: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping or touching periods merged, in order."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def saturated_periods(
    held: list[tuple[datetime, datetime, int]], quantity: int
) -> list[tuple[datetime, datetime]]:
    """Where bookings hold every unit of a listing (all `quantity` of them)."""
    changes = sorted(
        [(start, q) for start, _, q in held] + [(end, -q) for _, end, q in held],
        key=lambda c: (c[0], c[1]),
    )
    full, level, since = [], 0, None
    for moment, delta in changes:
        level += delta
        if level >= quantity and since is None:
            since = moment
        elif level < quantity and since is not None:
            if moment > since:
                full.append((since, moment))
            since = None
    return merge_periods(full)


def free_periods(
    start: datetime, end: datetime, busy: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) that no busy period covers."""
    free, cursor = [], start
    for b_start, b_end in merge_periods(busy):
        if b_end <= cursor or b_start >= end:
            continue
        if b_start > cursor:
            free.append((cursor, b_start))
        cursor = max(cursor, b_end)
    if cursor < end:
        free.append((cursor, end))
    return free


def free_now_first(items: list[dict], categories: set[str], held_now: dict[str, int]) -> list[dict]:
    """During an episode over the searcher's commune: listings of its categories with a
    unit free now first (nearest first among them, as found), then the others as found."""

    def free_now(item: dict) -> bool:
        return item["category"] in categories and held_now.get(item["id"], 0) < item["quantity"]

    return sorted(items, key=lambda item: not free_now(item))


# how far ahead `sort=available` looks for a free slot; a listing with none comes last
AVAILABILITY_HORIZON = timedelta(days=366)


def earliest_free(
    since: datetime,
    length: timedelta,
    quantity: int,
    closed: list[tuple[datetime, datetime]],
    held: list[tuple[datetime, datetime, int]],
    horizon: timedelta = AVAILABILITY_HORIZON,
) -> datetime | None:
    """The earliest start from `since` of a slot of `length` that no blackout (`closed`)
    touches and that bookings (`held`: start, end, units) leave a unit of free, by the
    search's cautious rule (units of bookings overlapping the slot add up as if
    simultaneous); None when no slot starts before `since + horizon`. Such a start is
    `since` itself or the end of a blackout or booking: try them in order."""

    def free(start: datetime) -> bool:
        end = start + length
        if any(s < end and e > start for s, e in closed):
            return False
        return sum(q for s, e, q in held if s < end and e > start) < quantity

    ends = sorted({e for _, e in closed} | {e for _, e, _ in held})
    for start in [since, *(e for e in ends if e > since)]:
        if start >= since + horizon:
            return None
        if free(start):
            return start
    return None
