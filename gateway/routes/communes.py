"""Communes: the public reference data, served from this process's own copy."""

from contracts.errors import NotFound
from gateway.http import api
from gateway.schemas import CommunePage, CommuneQuery, CommuneView
from infra.communes import communes


class CommuneRoutes:
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
