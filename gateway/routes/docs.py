"""The API documentation: OpenAPI document and Swagger UI, served from local assets."""

import mimetypes
from pathlib import Path

import swagger_ui_bundle
from werkzeug.wrappers import Response

from gateway.http import json_response
from infra.web import http

DOCS_DIR = Path(swagger_ui_bundle.swagger_ui_path)
DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mutualis API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>"""
# Swagger UI is served from here alone; its React styles are inline attributes
DOCS_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
DOCS_INIT = """window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui",
  deepLinking: true, persistAuthorization: true});"""


class DocsRoutes:
    @http("GET", "/api/openapi.json")
    def openapi(self, request):
        return json_response(self.openapi_document())

    @http("GET", "/api/docs")
    def docs(self, request):
        return Response(
            DOCS_PAGE,
            mimetype="text/html",
            headers={"Content-Security-Policy": DOCS_POLICY, "X-Frame-Options": "DENY"},
        )

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
