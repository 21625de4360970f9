"""The gateway nameko service: the HTTP routes of API.md, each a thin call to a service."""

from __future__ import annotations

from functools import cache

from gateway.openapi import build_openapi
from gateway.pages.routes import PageRoutes
from gateway.routes.auth import AuthRoutes
from gateway.routes.billing import BillingRoutes
from gateway.routes.bookings import BookingRoutes
from gateway.routes.communes import CommuneRoutes
from gateway.routes.consultants import ConsultantRoutes
from gateway.routes.docs import DocsRoutes
from gateway.routes.emergencies import EmergencyRoutes
from gateway.routes.listings import ListingRoutes
from gateway.routes.notifications import NotificationRoutes
from infra.health import OperableService


class Service(
    AuthRoutes,
    CommuneRoutes,
    ListingRoutes,
    BookingRoutes,
    EmergencyRoutes,
    ConsultantRoutes,
    BillingRoutes,
    NotificationRoutes,
    DocsRoutes,
    PageRoutes,
    OperableService,
):
    name = "gateway"

    @staticmethod
    def openapi_document() -> dict:
        return openapi_document()


@cache
def openapi_document() -> dict:
    return build_openapi(Service, "Mutualis API", "1.0.0")
