"""Listings routes: publish, edit, withdraw, blackouts, search, availability."""

from contracts.caller import Caller, Role
from contracts.listings import (
    Availability,
    BlackoutDraft,
    ListingChanges,
    ListingDraft,
    ListingPage,
    ListingQuery,
    ListingView,
)
from gateway.http import api
from gateway.routes import as_rpc, query_dict
from gateway.rpc import ServiceRpc
from gateway.schemas import AvailabilityWindow

LISTINGS = "Listings"


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
