"""The pages' style sheet, script and icons, served from gateway/static with caching
headers: a URL carries the file's hash (`?v=`), so a browser may keep it for a year. Files
are read once per process: a changed file is served after a restart."""

import mimetypes

from werkzeug.wrappers import Response

from gateway.pages.entrypoint import SECURITY_HEADERS, static_asset
from infra.web import http

YEAR = 365 * 86400


class StaticFiles:
    @http("GET", "/static/<path:asset>")
    def static_file(self, request, asset: str):
        found = static_asset(asset)
        if found is None:
            return Response("Fichier introuvable", status=404, mimetype="text/plain")
        content, etag = found
        if request.if_none_match.contains(etag):
            response = Response(status=304)
        else:
            mimetype = mimetypes.guess_type(asset)[0] or "application/octet-stream"
            response = Response(content, mimetype=mimetype)
        response.set_etag(etag)
        versioned = request.args.get("v") == etag[:10]
        response.headers["Cache-Control"] = (
            f"public, max-age={YEAR}, immutable" if versioned else "public, max-age=3600"
        )
        response.headers.update(SECURITY_HEADERS)
        return response
