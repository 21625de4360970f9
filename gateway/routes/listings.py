"""Listings routes: publish, edit, withdraw, blackouts, photos, search, availability."""

from werkzeug.wrappers import Response

from contracts.caller import Caller, Role
from contracts.listings import (
    Availability,
    BlackoutDraft,
    ListingChanges,
    ListingDraft,
    ListingPage,
    ListingQuery,
    ListingView,
    Photo,
)
from gateway.http import api, json_response
from gateway.photos import (
    MEDIA_TYPES,
    add_listing_photo,
    remove_listing_photo,
)
from gateway.routes import as_rpc, query_dict
from gateway.rpc import ServiceRpc
from gateway.schemas import AvailabilityWindow
from infra.images import MAX_PHOTO_BYTES

LISTINGS = "Listings"
OCTETS = "application/octet-stream"
PHOTO_TYPES = (*MEDIA_TYPES.values(), OCTETS)
# a photo of at most 10 MB (infra.images), and the multipart form around it
PHOTO_BODY_BYTES = MAX_PHOTO_BYTES + 64 * 1024


class ListingRoutes:
    listings = ServiceRpc("listings")

    @api(
        "GET",
        "/api/v1/ping",
        tag="Operations",
        summary="One trivial RPC to the listings service: the floor of the benchmarks",
    )
    def ping(self, request, caller: Caller):
        return {"listings": self.listings.ping()}

    @api(
        "POST",
        "/api/v1/listings",
        body=ListingDraft,
        response=ListingView,
        status=201,
        roles=(Role.MANAGER,),
        idempotent=True,
        tag=LISTINGS,
        summary="Publish a listing of the caller's commune",
    )
    def publish_listing(self, request, caller: Caller, body: ListingDraft):
        return self.listings.publish(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "GET",
        "/api/v1/listings",
        query=ListingQuery,
        response=ListingPage,
        tag=LISTINGS,
        summary="Search listings; with `near`, each has distance_km, nearest first",
        description="`available_from`/`available_to` take dates (the `to` day included) or "
        "datetimes with offset.",
    )
    def search_listings(self, request, caller: Caller, query: ListingQuery):
        return self.listings.search(as_rpc(caller), query_dict(query))

    @api(
        "GET",
        "/api/v1/listings/<listing_id>",
        response=ListingView,
        tag=LISTINGS,
        summary="One listing",
    )
    def get_listing(self, request, caller: Caller, listing_id: str):
        return self.listings.get(as_rpc(caller), listing_id)

    @api(
        "PATCH",
        "/api/v1/listings/<listing_id>",
        body=ListingChanges,
        response=ListingView,
        idempotent=True,
        roles=(Role.MANAGER,),
        tag=LISTINGS,
        summary="Edit a listing (the owning commune's manager)",
    )
    def edit_listing(self, request, caller: Caller, listing_id: str, body: ListingChanges):
        changes = body.model_dump(mode="json", exclude_unset=True)
        return self.listings.update(as_rpc(caller), listing_id, changes)

    @api(
        "DELETE",
        "/api/v1/listings/<listing_id>",
        response=ListingView,
        idempotent=True,
        roles=(Role.MANAGER,),
        tag=LISTINGS,
        summary="Withdraw a listing: no new bookings, existing ones are kept",
    )
    def withdraw_listing(self, request, caller: Caller, listing_id: str):
        return self.listings.withdraw(as_rpc(caller), listing_id)

    @api(
        "POST",
        "/api/v1/listings/<listing_id>/blackouts",
        body=BlackoutDraft,
        response=ListingView,
        status=201,
        idempotent=True,
        roles=(Role.MANAGER,),
        tag=LISTINGS,
        summary="Close a listing for a period (maintenance, local event)",
    )
    def add_blackout(self, request, caller: Caller, listing_id: str, body: BlackoutDraft):
        return self.listings.add_blackout(as_rpc(caller), listing_id, body.model_dump(mode="json"))

    @api(
        "GET",
        "/api/v1/listings/<listing_id>/availability",
        query=AvailabilityWindow,
        response=Availability,
        tag=LISTINGS,
        summary="Free and busy periods of a listing",
    )
    def listing_availability(
        self, request, caller: Caller, listing_id: str, query: AvailabilityWindow
    ):
        window = query.model_dump(mode="json", by_alias=True)
        return self.listings.availability(as_rpc(caller), listing_id, window["from"], window["to"])

    @api(
        "POST",
        "/api/v1/listings/<listing_id>/photos",
        consumes=PHOTO_TYPES,
        consumes_documented=(OCTETS,),
        max_body_bytes=PHOTO_BODY_BYTES,
        response=Photo,
        status=201,
        idempotent=True,
        roles=(Role.MANAGER,),
        tag=LISTINGS,
        summary="Add a photo to a listing (its owning commune's manager)",
        description="Send a JPEG, PNG or WebP image of at most 10 MB as the body (its media "
        "type, or `application/octet-stream`) or as the part `file` of a `multipart/form-data` "
        "form. It is checked and re-encoded: metadata (EXIF, GPS position) removed, turned "
        "upright, at most 2560 pixels on its longer side, with a thumbnail of 480. Larger than "
        "10 MB: 413; not such an image, or one larger than 40 megapixels: 422 (`not_an_image`); "
        "a listing of another commune: 404; more than 12 photos: 409. The same image again "
        "answers the photo already there (200).",
        responses={"200": {"description": "This image was already a photo of the listing"}},
    )
    def add_photo(self, request, caller: Caller, listing_id: str, body: bytes):
        photo, new = add_listing_photo(self.listings, as_rpc(caller), listing_id, body)
        return json_response(photo, 201 if new else 200)

    @api(
        "DELETE",
        "/api/v1/listings/<listing_id>/photos/<photo_id>",
        status=204,
        idempotent=True,
        roles=(Role.MANAGER,),
        tag=LISTINGS,
        summary="Remove a photo from a listing (its owning commune's manager)",
    )
    def remove_photo(self, request, caller: Caller, listing_id: str, photo_id: str):
        remove_listing_photo(self.listings, as_rpc(caller), listing_id, photo_id)
        return Response(status=204)
