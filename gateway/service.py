"""The gateway nameko service: the HTTP routes of API.md, each a thin call to a service."""

from __future__ import annotations

import mimetypes
from functools import cache
from pathlib import Path

import swagger_ui_bundle
from nameko.web.handlers import http
from sqlalchemy import select
from werkzeug.wrappers import Response

from contracts.caller import Caller, Role
from contracts.errors import NotFound
from contracts.listings import (
    Availability,
    BlackoutDraft,
    ListingChanges,
    ListingDraft,
    ListingPage,
    ListingQuery,
    ListingView,
)
from gateway.auth import TokenIssuer, password_matches
from gateway.http import Unauthenticated, api, json_response
from gateway.models import User
from gateway.openapi import build_openapi
from gateway.rpc import ServiceRpc
from gateway.schemas import (
    AvailabilityWindow,
    CommunePage,
    CommuneQuery,
    CommuneView,
    Me,
    TokenRequest,
    TokenResponse,
)
from infra.communes import communes
from infra.database import Database
from infra.health import OperableService

DOCS_DIR = Path(swagger_ui_bundle.swagger_ui_path)
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mutualis API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>"""
DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui",
  deepLinking: true, persistAuthorization: true});"""

LISTINGS = "Listings"


def _caller(caller: Caller) -> dict:
    return caller.model_dump(mode="json")


def _query(query) -> dict:
    return query.model_dump(mode="json", exclude_none=True)


class Service(OperableService):
    name = "gateway"

    db = Database(with_outbox=False)
    listings = ServiceRpc("listings")

    # -- auth -------------------------------------------------------------------------

    @api(
        "POST",
        "/api/v1/auth/token",
        public=True,
        body=TokenRequest,
        response=TokenResponse,
        tag="Auth",
        summary="Exchange e-mail and password for an access token",
    )
    def issue_token(self, request, body: TokenRequest):
        with self.db.reading() as session:
            user = session.scalars(select(User).where(User.email == body.email.lower())).first()
        if not password_matches(user.password_hash if user else None, body.password):
            raise Unauthenticated("Unknown e-mail or wrong password")
        settings = self.config["GATEWAY"]
        issuer = TokenIssuer(
            settings.token_secret,
            settings.token_audience,
            settings.token_issuer,
            settings.token_ttl_seconds,
        )
        caller = Caller(
            user_id=user.id,
            commune=user.commune,
            roles=frozenset(Role(r) for r in user.roles.split(",")),
        )
        return TokenResponse(
            access_token=issuer.issue(caller), expires_in=settings.token_ttl_seconds
        )

    @api("GET", "/api/v1/me", response=Me, tag="Auth", summary="Who the token belongs to")
    def me(self, request, caller: Caller):
        with self.db.reading() as session:
            user = session.get(User, caller.user_id)
        if user is None:
            raise Unauthenticated("This account no longer exists")
        commune = communes().get(user.commune)
        return Me(
            id=user.id,
            email=user.email,
            name=user.name,
            commune={"insee_code": user.commune, "name": commune.name if commune else user.commune},
            roles=sorted(user.roles.split(",")),
        )

    @api(
        "GET",
        "/api/v1/ping",
        tag="Operations",
        summary="One trivial RPC to the listings service: the floor of the benchmarks",
    )
    def ping(self, request, caller: Caller):
        return {"listings": self.listings.ping()}

    # -- communes (reference data, public) ----------------------------------------------

    @api(
        "GET",
        "/api/v1/communes",
        public=True,
        query=CommuneQuery,
        response=CommunePage,
        tag="Communes",
        summary="Search communes by name or INSEE code",
    )
    def search_communes(self, request, query: CommuneQuery):
        found = communes().search(query.q, query.department, query.limit)
        return {"items": [c.as_dict() for c in found], "next_cursor": None}

    @api(
        "GET",
        "/api/v1/communes/<insee_code>",
        public=True,
        response=CommuneView,
        tag="Communes",
        summary="One commune with its SIREN, coordinates and EPCI",
    )
    def get_commune(self, request, insee_code: str):
        commune = communes().get(insee_code)
        if commune is None:
            raise NotFound(f"No commune has INSEE code {insee_code}")
        return commune.as_dict()

    # -- listings ---------------------------------------------------------------------

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
        return self.listings.publish(_caller(caller), body.model_dump(mode="json"))

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
        return self.listings.search(_caller(caller), _query(query))

    @api(
        "GET",
        "/api/v1/listings/<listing_id>",
        response=ListingView,
        tag=LISTINGS,
        summary="One listing",
    )
    def get_listing(self, request, caller: Caller, listing_id: str):
        return self.listings.get(_caller(caller), listing_id)

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
        return self.listings.update(_caller(caller), listing_id, changes)

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
        return self.listings.withdraw(_caller(caller), listing_id)

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
        return self.listings.add_blackout(_caller(caller), listing_id, body.model_dump(mode="json"))

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
        return self.listings.availability(_caller(caller), listing_id, window["from"], window["to"])

    # -- documentation ------------------------------------------------------------------

    @http("GET", "/api/openapi.json")
    def openapi(self, request):
        return json_response(openapi_document())

    @http("GET", "/api/docs")
    def docs(self, request):
        return Response(DOCS_PAGE, mimetype="text/html")

    @http("GET", "/api/docs/<path:asset>")
    def docs_asset(self, request, asset: str):
        if asset == "init.js":
            return Response(DOCS_INIT, mimetype="application/javascript")
        path = (DOCS_DIR / asset).resolve()
        if not path.is_file() or DOCS_DIR.resolve() not in path.parents:
            return Response("not found", status=404)
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        response = Response(path.read_bytes(), mimetype=mimetype)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response


@cache
def openapi_document() -> dict:
    return build_openapi(Service, "Mutualis API", "1.0.0")
