"""Emergency episodes on the pages: the banner of the territory's pages, urgent requests
first for lenders, and the coordinators' page (episodes, their urgent requests, the needs
left unmet, and the forms to declare and end them)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from contracts import clock
from contracts.caller import Caller, Role
from contracts.emergencies import NEED_LABELS, Need
from contracts.errors import InvalidInput, ServiceError, field_error
from contracts.listings import CATEGORIES
from gateway.pages.entrypoint import Page, Web, go, page
from gateway.routes import as_rpc
from gateway.rpc import ServiceRpc

log = logging.getLogger(__name__)

DECLARERS = (Role.OPERATOR, Role.COORDINATOR)


class EpisodesOfCommunes:
    """The episodes in force over each commune, asked of bookings at most once per `ttl`
    seconds per gateway process: the banner is on every page."""

    def __init__(self, ttl: float = 5.0):
        self.ttl = ttl
        self._seen: dict[str, tuple[float, list[dict]]] = {}

    def over(self, bookings, caller: Caller) -> list[dict]:
        seen = self._seen.get(caller.commune)
        if seen is not None and time.monotonic() - seen[0] < self.ttl:
            return seen[1]
        try:
            episodes = bookings.emergencies(as_rpc(caller), {"commune": caller.commune})
        except Exception:
            # whatever bookings answers (unavailable, its database lost: a RemoteError), the
            # page shows without a fresh banner: this runs after the page was made, where an
            # exception would leave the request unanswered and end the gateway's worker; the
            # answer is kept `ttl` seconds too, so a slow bookings delays one page, not all
            log.warning("no emergency banner: bookings did not answer", exc_info=True)
            episodes = seen[1] if seen else []
        self._seen[caller.commune] = (time.monotonic(), episodes)
        return episodes


EPISODES = EpisodesOfCommunes()


def urgent_first(bookings: list[dict]) -> list[dict]:
    """Urgent requests before the others, the most pressing need first, each group in the
    order given."""
    rank = {need.value: need.rank for need in Need}

    def key(booking: dict) -> tuple[int, int]:
        urgency = booking.get("urgency")
        return (0, rank[urgency["need"]]) if urgency else (1, 0)

    return sorted(bookings, key=key)


def declaration_of(form) -> dict:
    """The declaration a coordinator's form sends, as the API takes it."""
    places = [code.strip() for code in (form.get("lieux") or "").replace(";", ",").split(",")]
    places = [code for code in places if code]
    hours = form.get("heures") or "24"
    if not hours.isdigit() or not 1 <= int(hours) <= 24 * 30:
        raise InvalidInput("Durée invalide", [field_error("end", "entre 1 et 720 heures")])
    start = clock.now()
    return {
        "name": (form.get("nom") or "").strip(),
        "territory": {
            "departments": [p for p in places if len(p) <= 3],
            "epcis": [p for p in places if len(p) > 3],
        },
        "categories": form.getlist("categories"),
        "start": start.isoformat(),
        "end": (start + timedelta(hours=int(hours))).isoformat(),
    }


class EmergencyPages:
    bookings = ServiceRpc("bookings")

    @page("GET", "/urgences", roles=DECLARERS)
    def emergencies_page(self, request, web: Web):
        caller = as_rpc(web.caller)
        episodes = self.bookings.emergencies(caller, {"include_ended": True})
        reports = []
        for episode in episodes[:10]:
            try:
                reports.append(self.bookings.urgent_requests(caller, episode["id"]))
            except ServiceError:  # another coordinator's territory: listed, not detailed
                reports.append({"emergency": episode, "requests": None, "unmet": {}})
        return Page(
            "emergencies.html",
            {"reports": reports, "needs": NEED_LABELS, "categories": CATEGORIES},
        )

    @page("POST", "/urgences", roles=DECLARERS)
    def declare_emergency_submit(self, request, web: Web):
        self.bookings.declare_emergency(as_rpc(web.caller), declaration_of(web.form))
        return go("/urgences")

    @page("POST", "/urgences/<emergency_id>/fin", roles=DECLARERS)
    def end_emergency_submit(self, request, web: Web, emergency_id: str):
        reason = (web.form.get("motif") or "")[:1000]
        self.bookings.end_emergency(as_rpc(web.caller), emergency_id, {"reason": reason})
        return go("/urgences")
