"""Photos routes: a loan's condition photographed at hand-over and return, and every stored
photo served (listings' photos are added and removed with the listings routes)."""

from contracts.bookings import ConditionPhoto, ConditionPhotoStage
from contracts.caller import Caller, Role
from gateway.http import api, json_response
from gateway.photos import add_condition_photo, photo_response
from gateway.routes import as_rpc
from gateway.routes.listings import LISTINGS, OCTETS, PHOTO_BODY_BYTES, PHOTO_TYPES
from gateway.rpc import ServiceRpc

BOOKINGS = "Bookings"


class PhotoRoutes:
    bookings = ServiceRpc("bookings")

    @api(
        "POST",
        "/api/v1/bookings/<booking_id>/photos",
        query=ConditionPhotoStage,
        consumes=PHOTO_TYPES,
        consumes_documented=(OCTETS,),
        max_body_bytes=PHOTO_BODY_BYTES,
        response=ConditionPhoto,
        status=201,
        idempotent=True,
        roles=(Role.AGENT, Role.MANAGER),
        tag=BOOKINGS,
        summary="Add a photo of the loan's condition at hand-over or return (either commune)",
        description="As a listing's photo (JPEG, PNG or WebP of at most 10 MB, as the body or "
        "the part `file` of a form; checked and re-encoded without metadata). `stage=check_out`"
        " from the approval until the return, `stage=return` from the hand-over on (409 "
        "otherwise); a commune that is not party to the booking: 404. Photos are evidence: "
        "never removed. The same image again at a stage answers the photo there (200).",
        responses={"200": {"description": "This image was already a photo of this stage"}},
    )
    def add_condition_photo(
        self, request, caller: Caller, booking_id: str, query: ConditionPhotoStage, body: bytes
    ):
        photo, new = add_condition_photo(
            self.bookings, as_rpc(caller), booking_id, query.stage, body
        )
        return json_response(photo, 201 if new else 200)

    @api(
        "GET",
        "/api/v1/photos/<kind>/<owner_id>/<name>",
        public=True,
        produces="image/jpeg",
        also_produces=("image/png", "image/webp"),
        tag=LISTINGS,
        summary="A stored photo or thumbnail (the URLs of a listing's `photos` and of a "
        "booking's `condition_photos`)",
        description="`kind`: `listings` or `bookings`. Content-addressed: a URL's bytes never "
        "change (`Cache-Control: immutable`, a year; `ETag` the digest, `If-None-Match` "
        "answered 304). Served without a token, so that pages and mails may show them: the "
        "URL, which holds the image's SHA-256, is the capability.",
        responses={"304": {"description": "The client's copy is this photo"}},
    )
    def photo(self, request, kind: str, owner_id: str, name: str):
        return photo_response(request, kind, owner_id, name)
