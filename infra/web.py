"""The HTTP server of our processes: nameko's, with Nagle's algorithm off, `nosniff` on every
answer, a problem+json 431 for oversized headers, and requests that match no route answered
by an entrypoint that claims them (the gateway: problem+json under /api/, pages elsewhere).

Without TCP_NODELAY an answer written in more than one piece waits for the client's delayed
ACK: ~40 ms on every response over ~16 KB. Every HTTP entrypoint of a container must share
this one server (nameko shares a server per class), so all of ours come from here.
"""

import json
import socket
from functools import partial

from eventlet.wsgi import HeaderLineTooLong, HeadersTooLarge
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Request

HEADERS_TOO_LARGE = json.dumps(
    {
        "type": "urn:mutualis:problem:request-header-fields-too-large",
        "title": "Request header fields too large",
        "status": 431,
        "detail": "A header line may hold 8 KB, all headers together 64 KB",
        "errors": [],
    }
).encode()


class HeaderLimitProtocol(HttpOnlyProtocol):
    """eventlet answers oversized headers with an empty 400; we say 431 and why."""

    def parse_request(self):
        try:
            return super().parse_request()
        except (HeaderLineTooLong, HeadersTooLarge):
            self.refuse_headers()
            return False

    def send_error(self, code, message=None, explain=None):
        if code == 431:  # the standard library's "too many headers"
            self.refuse_headers()
        else:
            super().send_error(code, message, explain)

    def refuse_headers(self) -> None:
        self.wfile.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"Content-Type: application/problem+json\r\n"
            b"X-Content-Type-Options: nosniff\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n"
            % len(HEADERS_TOO_LARGE)
            + HEADERS_TOO_LARGE
        )
        self.close_connection = 1


def nosniff(start_response, status, headers, exc_info=None):
    if not any(name.lower() == "x-content-type-options" for name, _ in headers):
        headers = [*headers, ("X-Content-Type-Options", "nosniff")]
    return start_response(status, headers, exc_info)


class RoutingApp(WsgiApp):
    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        request.url_adapter = adapter  # what an unrouted request's claimant may look up
        try:
            try:
                provider, values = adapter.match()
            except (NotFound, MethodNotAllowed) as exc:
                rv = self.unrouted(request, exc)
            else:
                request.path_values = values
                rv = provider.handle_request(request)
        except HTTPException as exc:
            rv = exc
        return rv(environ, partial(nosniff, start_response))

    def unrouted(self, request: Request, exc: HTTPException):
        """The answer of the first entrypoint whose `answer_unrouted` claims the request, or
        werkzeug's."""
        for provider in self.server._providers:
            claim = getattr(provider, "answer_unrouted", None)
            answer = claim(request, exc) if claim is not None else None
            if answer is not None:
                return answer
        return exc


class NoDelayWebServer(WebServer):
    def process_request(self, sock, address):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().process_request(sock, address)

    def get_wsgi_app(self):
        return RoutingApp(self)

    def get_wsgi_server(self, sock, wsgi_app, protocol=HeaderLimitProtocol, debug=False):
        return super().get_wsgi_server(sock, wsgi_app, protocol, debug)


class HttpEntrypoint(HttpRequestHandler):
    server = NoDelayWebServer()


http = HttpEntrypoint.decorator
