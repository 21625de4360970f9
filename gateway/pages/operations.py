"""The operator's pages: the event queues between the services, how many events wait for
their consumer and how many were parked as dead letters (replayed with the command line,
`python -m mutualis dead-letters replay`)."""

from __future__ import annotations

from kombu import Connection

from contracts.caller import Role
from gateway.pages.entrypoint import Page, Web, page
from infra.dead_letters import queue_depths

OPERATORS = (Role.OPERATOR,)
SERVICES = {
    "listings": "annonces",
    "bookings": "réservations",
    "billing": "facturation",
    "consultants": "experts",
}
# what each consumer does with the events it receives
PURPOSES = {
    "listing_copies": "copie des annonces pour les réservations",
    "busy_periods": "jours occupés des annonces",
    "charges": "sommes à facturer",
    "emergencies": "épisodes d'urgence sur les annonces",
}


class OperationPages:
    @page("GET", "/exploitation/files-d-attente", roles=OPERATORS)
    def queues_page(self, request, web: Web):
        with Connection(self.config["AMQP_URI"], connect_timeout=5) as conn:
            depths = queue_depths(conn)
        return Page(
            "queues.html",
            {"depths": depths, "services": SERVICES, "purposes": PURPOSES},
        )
