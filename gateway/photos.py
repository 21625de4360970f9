"""Photos (listings', and loans' condition) at the gateway, which receives the uploads: it
checks and re-encodes them (infra.images), writes their bytes to the storage (infra.storage),
then has the owning service (listings, bookings) record them, which decides whether the
caller may (docs/architecture.md, "Photos and pick-up details").

Bytes first, record second: a recorded photo always has its bytes. A refusal (the listing
is not the caller's commune's, withdrawn, full) deletes the bytes this upload wrote, so bad
input leaves nothing stored; a failure with no answer (a timeout) keeps them: the photo may
have been recorded, and an orphan file is harmless where a missing one is not."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from functools import lru_cache

from eventlet import tpool
from eventlet.semaphore import Semaphore
from werkzeug.wrappers import Request, Response

from contracts.bookings import condition_photo_prefix
from contracts.errors import InvalidInput, NotFound, ServiceError, field_error
from contracts.listings import content_keys, photo_prefix
from gateway.errors import PayloadTooLarge
from infra.images import ImageRefused, checked_photo
from infra.storage import Storage, storage_from_environment

# a stored photo's file name: its digest, "-vignette" for the thumbnail, its extension
_PHOTO_NAME = re.compile(r"^(?P<digest>[0-9a-f]{64})(?P<thumb>-vignette)?\.(?P<ext>jpg|png|webp)$")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# content-addressed: a URL's bytes never change, so every cache may keep them for a year
IMMUTABLE = "public, max-age=31536000, immutable"


# decoding a photo takes a second or two of CPU and up to a few hundred MB: in a real
# thread (Pillow releases the GIL, so the hub goes on serving other requests), two at a time
# in a gateway process (its memory limit holds them)
DECODING = Semaphore(2)


def checked_in_a_thread(raw: bytes):
    with DECODING:
        return tpool.execute(checked_photo, raw)


@lru_cache(maxsize=1)
def photo_storage() -> Storage:
    """The process's storage, as the environment configures it (STORAGE_*)."""
    return storage_from_environment()


def canonical_id(value: str, what: str) -> str:
    """An id as the services write them (a UUID's canonical form); anything else, a path
    included, is nothing at all (404), and never part of a storage key."""
    try:
        canonical = str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        canonical = None
    if canonical != value:
        raise NotFound(f"No {what} {value}")
    return canonical


def add_listing_photo(listings, caller: dict, listing_id: str, raw: bytes) -> tuple[dict, bool]:
    """Checks, stores and records one photo of a listing: (the Photo, whether it is new)."""
    listing_id = canonical_id(listing_id, "listing")
    return stored_and_recorded(
        photo_prefix(listing_id), raw, lambda stored: listings.add_photo(caller, listing_id, stored)
    )


def add_condition_photo(
    bookings, caller: dict, booking_id: str, stage: str, raw: bytes
) -> tuple[dict, bool]:
    """Checks, stores and records one photo of a loan's condition at `stage`."""
    booking_id = canonical_id(booking_id, "booking")
    return stored_and_recorded(
        condition_photo_prefix(booking_id),
        raw,
        lambda stored: bookings.add_condition_photo(caller, booking_id, stage, stored),
    )


def stored_and_recorded(prefix: str, raw: bytes, record: Callable[[dict], dict]):
    """The image checked and re-encoded, its bytes stored under `prefix`, then `record`ed by
    the service that owns it; the bytes this call wrote deleted if the service refuses."""
    try:
        photo = checked_in_a_thread(raw)
    except ImageRefused as exc:
        if exc.too_large:
            raise PayloadTooLarge(f"The photo is too large: {exc.message}") from None
        raise InvalidInput(
            "The file is no photo Mutualis keeps",
            [field_error("file", exc.message, "not_an_image")],
        ) from None
    key, thumbnail_key = content_keys(prefix, photo.digest, photo.extension)
    storage = photo_storage()
    written = [k for k in (key, thumbnail_key) if not storage.exists(k)]
    storage.put(key, photo.data, photo.content_type)
    storage.put(thumbnail_key, photo.thumbnail, photo.content_type)
    try:
        answer = record(
            {
                "digest": photo.digest,
                "key": key,
                "thumbnail_key": thumbnail_key,
                "content_type": photo.content_type,
                "width": photo.width,
                "height": photo.height,
                "size_bytes": len(photo.data),
            }
        )
    except ServiceError:
        for written_key in written:
            storage.delete(written_key)
        raise
    return answer["photo"], answer["new"]


def remove_listing_photo(listings, caller: dict, listing_id: str, photo_id: str) -> None:
    """Forgets a photo, then deletes its bytes (what the listings service no longer names)."""
    listing_id = canonical_id(listing_id, "listing")
    answer = listings.remove_photo(caller, listing_id, photo_id)
    storage = photo_storage()
    for key in answer["keys"]:
        storage.delete(key)


# the kinds of things photos are stored for, and where: /api/v1/photos/<kind>/<id>/<name>
PREFIXES = {"listings": photo_prefix, "bookings": condition_photo_prefix}


def photo_response(request: Request, kind: str, owner_id: str, name: str) -> Response:
    """A stored photo or thumbnail, with the headers of immutable content: its digest is its
    ETag, and a client that has it gets 304."""
    match = _PHOTO_NAME.match(name)
    owner_id = canonical_id(owner_id, kind.removesuffix("s"))
    if match is None or kind not in PREFIXES:
        raise NotFound("No such photo")
    etag = match["digest"] + (match["thumb"] or "")
    headers = {
        "Cache-Control": IMMUTABLE,
        "ETag": f'"{etag}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    key = PREFIXES[kind](owner_id) + name
    if etag in request.if_none_match and photo_storage().exists(key):
        return Response(status=304, headers=headers)
    data = photo_storage().get(key)
    if data is None:
        raise NotFound("No such photo")
    return Response(data, status=200, headers=headers, mimetype=MEDIA_TYPES[match["ext"]])
