"""The HTTP server of our processes: nameko's, with Nagle's algorithm off, `nosniff` on every
answer, a problem+json 431 for oversized headers and 414 for an over-long request line, and
requests that match no route answered by an entrypoint that claims them (the gateway:
problem+json under /api/, pages elsewhere).

A process may serve a second port, its metrics port (METRICS_SERVER_ADDRESS), with entrypoints
of `metrics_http`: the gateway's metrics, kept off its public port.

Without TCP_NODELAY an answer written in more than one piece waits for the client's delayed
ACK: ~40 ms on every response over ~16 KB. Every HTTP entrypoint of a container must share
this one server (nameko shares a server per class), so all of ours come from here.
"""

import json
import socket
from functools import partial

from eventlet.wsgi import HeaderLineTooLong, HeadersTooLarge
from nameko.exceptions import ConfigurationError
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp, parse_address
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Request

from infra.metrics import HTTP_REQUESTS

# the route label of the answers to requests that match no route
UNROUTED = "unrouted"
# the nameko config key of the metrics port's `host:port`
METRICS_SERVER_ADDRESS = "METRICS_SERVER_ADDRESS"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _problem(status: int, title: str, detail: str) -> bytes:
    return json.dumps(
        {
            "type": "urn:mutualis:problem:" + title.lower().replace(" ", "-"),
            "title": title,
            "status": status,
            "detail": detail,
            "errors": [],
        }
    ).encode()


HEADERS_TOO_LARGE = _problem(
    431,
    "Request header fields too large",
    "A header line may hold 8 KB, all headers together 64 KB",
)
URI_TOO_LONG = _problem(414, "URI too long", "The request line (method, path, query) may hold 8 KB")


class HeaderLimitProtocol(HttpOnlyProtocol):
    """eventlet answers oversized headers with an empty 400 and an over-long request line
    with an empty 414; we say 431 or 414 and why, as problem+json."""

    def _read_request_line(self):
        line = super()._read_request_line()
        if len(line) >= self.server.url_length_limit:
            self.refuse(b"414 URI Too Long", URI_TOO_LONG)
            return ""  # eventlet closes the connection
        return line

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
        self.refuse(b"431 Request Header Fields Too Large", HEADERS_TOO_LARGE)

    def refuse(self, status: bytes, problem: bytes) -> None:
        self.wfile.write(
            b"HTTP/1.1 %s\r\n"
            b"Content-Type: application/problem+json\r\n"
            b"X-Content-Type-Options: nosniff\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (status, len(problem)) + problem
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
        werkzeug's; counted like every answer, under the route `unrouted` (a scanner's
        paths would make a series each)."""
        answer = exc
        for provider in self.server._providers:
            claim = getattr(provider, "answer_unrouted", None)
            claimed = claim(request, exc) if claim is not None else None
            if claimed is not None:
                answer = claimed
                break
        method = request.method if request.method in KNOWN_METHODS else "OTHER"
        status = answer.code if answer is exc else answer.status_code
        service = next(iter(self.server._providers)).container.service_name
        HTTP_REQUESTS.labels(service, UNROUTED, method, str(status)).inc()
        return answer


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


class MetricsWebServer(NoDelayWebServer):
    """The process's second server, on METRICS_SERVER_ADDRESS (nameko shares a server per
    class, so this one is not the public one): what Prometheus reads and nobody else needs."""

    @property
    def bind_addr(self):
        address = self.container.config.get(METRICS_SERVER_ADDRESS)
        if not address:
            raise ConfigurationError(f"{METRICS_SERVER_ADDRESS} is not set: where do metrics go?")
        return parse_address(address)


class MetricsEntrypoint(HttpRequestHandler):
    server = MetricsWebServer()


metrics_http = MetricsEntrypoint.decorator
