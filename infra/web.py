"""The HTTP entrypoint of our processes: nameko's, with Nagle's algorithm off.

Without TCP_NODELAY an answer written in more than one piece waits for the client's delayed
ACK: ~40 ms on every response over ~16 KB. Every HTTP entrypoint of a container must share
this one server (nameko shares a server per class), so all of ours come from here.
"""

import socket

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer


class NoDelayWebServer(WebServer):
    def process_request(self, sock, address):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().process_request(sock, address)


class HttpEntrypoint(HttpRequestHandler):
    server = NoDelayWebServer()


http = HttpEntrypoint.decorator
