"""Photos sent from the pages: a loan's condition at hand-over and return (on the booking's
page); the helpers the listing's page shares for its own photos."""

from __future__ import annotations

from werkzeug.datastructures import FileStorage

from contracts.bookings import CONDITION_PHOTOS_OPEN, BookingStatus
from contracts.caller import Role
from contracts.errors import ServiceError
from gateway.errors import status_of
from gateway.pages.entrypoint import PageProblem, Web, go, page
from gateway.photos import add_condition_photo
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc
from infra.images import MAX_PHOTO_BYTES

# a photo of at most 10 MB and the form around it
PHOTO_FORM_BYTES = MAX_PHOTO_BYTES + 64 * 1024
# why a photo was refused, in words (a thing not the visitor's commune's: the usual 404)
PHOTO_REFUSALS = {
    "payload_too_large": "Cette photo dépasse 10 Mo : réduisez-la avant de l'envoyer.",
    "invalid_input": "Ce fichier n'est pas une photo utilisable : envoyez une image JPEG, PNG "
    "ou WebP de 40 mégapixels au plus.",
    "conflict": "Cette photo ne peut plus être ajoutée ici : le nombre de photos est atteint, "
    "ou le moment est passé.",
}
STAGES = {"check_out": "À la remise", "return": "Au retour"}
PARTIES = (Role.AGENT, Role.MANAGER)


def uploaded_photo(web: Web, back: str) -> bytes:
    """The form's `photo` file, or a French refusal when none was chosen."""
    upload = web.form.get("photo")
    if not isinstance(upload, FileStorage) or not upload.filename:
        raise PageProblem(422, "Choisissez une photo à envoyer.", back)
    return upload.read()


def refused(exc: ServiceError, back: str, conflict: str = "") -> PageProblem | ServiceError:
    """A refusal of a photo in French (others as the pages answer them); `conflict` says
    what a 409 means where the photo was sent."""
    said = PHOTO_REFUSALS | ({"conflict": conflict} if conflict else {})
    if exc.code not in said:
        return exc
    return PageProblem(status_of(exc), said[exc.code], back)


def condition_photo_stages(booking: dict, commune: str, roles) -> list[str]:
    """The stages this visitor may photograph now (the service decides the same way)."""
    if commune not in (booking["borrower_commune"], booking["lender_commune"]):
        return []
    if not any(role in roles for role in PARTIES):
        return []
    status = BookingStatus(booking["status"])
    return [stage for stage, open_in in CONDITION_PHOTOS_OPEN.items() if status in open_in]


class PhotoPages:
    bookings = ServiceRpc("bookings")

    @page(
        "POST",
        "/reservations/<booking_id>/photos",
        roles=PARTIES,
        max_body_bytes=PHOTO_FORM_BYTES,
    )
    def condition_photo_submit(self, request, web: Web, booking_id: str):
        back = f"/reservations/{booking_id}#photos-etat"
        stage = web.form.get("etape")
        if stage not in STAGES:
            raise PageProblem(422, "Choisissez le moment de la photo : remise ou retour.", back)
        raw = uploaded_photo(web, back)
        try:
            add_condition_photo(self.bookings, as_rpc(web.caller), booking_id, stage, raw)
        except ServiceError as exc:
            raise refused(exc, back) from None
        return go(back, "photo-etat-ajoutee")
