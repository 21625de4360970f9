"""Emergency episodes: declared and ended by operators and coordinators, seen by everyone
in their territory, with the urgent requests each made."""

from contracts.bookings import UrgentRequestsReport
from contracts.caller import Caller, Role
from contracts.emergencies import (
    EmergencyDeclaration,
    EmergencyEnding,
    EmergencyList,
    EmergencyQuery,
    EmergencyView,
)
from gateway.http import api
from gateway.routes import as_rpc, query_dict
from gateway.rpc import ServiceRpc

EMERGENCIES = "Emergencies"
DECLARERS = (Role.OPERATOR, Role.COORDINATOR)


class EmergencyRoutes:
    bookings = ServiceRpc("bookings")

    @api(
        "POST",
        "/api/v1/emergencies",
        body=EmergencyDeclaration,
        response=EmergencyView,
        status=201,
        roles=DECLARERS,
        idempotent=True,
        tag=EMERGENCIES,
        summary="Declare an emergency episode (snow, flood, storm) over a territory",
        description="An operator declares anywhere; a coordinator within the département "
        "of their commune or their commune's EPCI (403 otherwise). 422 when the territory "
        "names a département, an EPCI or a centre the communes data does not know. While "
        "the episode lasts, requests of borrowers in its territory for listings in its "
        "categories are urgent: their lead time is waived, and requests for one listing made "
        "within an allocation window (10 minutes by default) are decided together by the "
        "published rule: declared need first (safety_of_people, main_roads, "
        "service_continuity, comfort), then the shorter distance, then the earlier request.",
    )
    def declare_emergency(self, request, caller: Caller, body: EmergencyDeclaration):
        return self.bookings.declare_emergency(as_rpc(caller), body.model_dump(mode="json"))

    @api(
        "POST",
        "/api/v1/emergencies/<emergency_id>/end",
        body=EmergencyEnding,
        response=EmergencyView,
        roles=DECLARERS,
        idempotent=True,
        tag=EMERGENCIES,
        summary="End an episode now (409 if it has already ended)",
    )
    def end_emergency(self, request, caller: Caller, emergency_id: str, body: EmergencyEnding):
        return self.bookings.end_emergency(as_rpc(caller), emergency_id, body.model_dump())

    @api(
        "GET",
        "/api/v1/emergencies",
        query=EmergencyQuery,
        response=EmergencyList,
        tag=EMERGENCIES,
        summary="The episodes in force (now, or `at`) covering the caller's commune",
        description="Operators and coordinators see every episode, or those covering "
        "`commune`, and the ended ones with `include_ended`; anyone else the episodes "
        "covering their own commune.",
    )
    def list_emergencies(self, request, caller: Caller, query: EmergencyQuery):
        return {"items": self.bookings.emergencies(as_rpc(caller), query_dict(query))}

    @api(
        "GET",
        "/api/v1/emergencies/<emergency_id>/requests",
        response=UrgentRequestsReport,
        roles=DECLARERS,
        tag=EMERGENCIES,
        summary="An episode's urgent requests, their state and the needs left unmet",
    )
    def emergency_requests(self, request, caller: Caller, emergency_id: str):
        return self.bookings.urgent_requests(as_rpc(caller), emergency_id)
