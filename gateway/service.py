"""The gateway nameko service: the HTTP routes of API.md, each a thin call to a service."""

from __future__ import annotations

from functools import cache

from gateway.openapi import build_openapi
from gateway.pages.routes import PageRoutes
from gateway.routes.accounting import AccountingRoutes
from gateway.routes.agreements import AgreementRoutes
from gateway.routes.auth import AuthRoutes
from gateway.routes.billing import BillingRoutes
from gateway.routes.bookings import BookingRoutes
from gateway.routes.communes import CommuneRoutes
from gateway.routes.consultants import ConsultantRoutes
from gateway.routes.docs import DocsRoutes
from gateway.routes.emergencies import EmergencyRoutes
from gateway.routes.listings import ListingRoutes
from gateway.routes.notifications import NotificationRoutes
from gateway.routes.photos import PhotoRoutes
from infra.health import OperableService, metrics_answer
from infra.web import metrics_http


class Service(
    AuthRoutes,
    CommuneRoutes,
    ListingRoutes,
    BookingRoutes,
    EmergencyRoutes,
    AgreementRoutes,
    ConsultantRoutes,
    BillingRoutes,
    AccountingRoutes,
    NotificationRoutes,
    PhotoRoutes,
    DocsRoutes,
    PageRoutes,
    OperableService,
):
    name = "gateway"

    @metrics_http("GET", "/metrics")
    def metrics(self, request):
        """On the metrics port (GATEWAY_METRICS_PORT), not the public one, where the ingress
        sends every path: there `/metrics` answers 404 like any unknown path."""
        return metrics_answer()

    @staticmethod
    def openapi_document() -> dict:
        return openapi_document()


@cache
def openapi_document() -> dict:
    return build_openapi(Service, "Mutualis API", "1.0.0")
