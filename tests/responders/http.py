"""An HTTP/HTTPS responder on loopback with a route table; records what it was asked."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass
class Route:
    """What a path answers. ``body_size`` streams that many bytes of ``b"x"`` instead of
    ``body`` (to show a checker never buffers a huge body)."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    reason: str | None = None
    chunked: bool = False
    close_delimited: bool = False  # no Content-Length: the body ends when we close
    body_size: int | None = None


# The routes of Seesaw's own test server (healthcheck_test.go).
SEESAW_ROUTES: dict[str, Route] = {
    "/": Route(200, b"<html><body>Test Server</body></html>\n", (("Content-Type", "text/http"),)),
    "/healthz": Route(200, b"ok\n", (("Content-Type", "text/plain"),)),
    "/notfound": Route(404, b"404 page not found\n", (("Content-Type", "text/plain"),)),
}
NOT_FOUND = Route(404, b"404 page not found\n")


@dataclass
class Seen:
    request_line: str
    host: str | None
    headers: list[tuple[str, str]]


def tls_server_context(ca: Any, *names: str) -> ssl.SSLContext:
    """A server context with a certificate from a ``trustme.CA`` for ``names``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(ctx)
    return ctx


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    responder: HTTPResponder


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, with_body: bool) -> None:
        responder = self.server.responder
        with responder.lock:
            responder.seen.append(
                Seen(self.requestline, self.headers.get("Host"), list(self.headers.items()))
            )
        path = self.path.partition("?")[0]
        route = responder.routes.get(path) or responder.routes.get("*") or NOT_FOUND
        self.send_response(route.status, route.reason)
        for name, value in route.headers:
            self.send_header(name, value)
        body = route.body
        size = len(body) if route.body_size is None else route.body_size
        if route.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif route.close_delimited:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        if not with_body:
            return
        try:
            if route.body_size is not None:
                block = b"x" * 65536
                left = size
                while left > 0 and not responder.stopping.is_set():
                    piece = block[: min(left, len(block))]
                    self._write_piece(piece, route.chunked)
                    left -= len(piece)
            elif route.chunked:
                # Split in small chunks so chunk parsing is exercised.
                for i in range(0, len(body), 3):
                    self._write_piece(body[i : i + 3], True)
            else:
                self.wfile.write(body)
            if route.chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _write_piece(self, piece: bytes, chunked: bool) -> None:
        if chunked:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        else:
            self.wfile.write(piece)

    def do_GET(self) -> None:
        self._answer(True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._answer(True)

    def do_PUT(self) -> None:
        self.do_POST()

    def do_HEAD(self) -> None:
        self._answer(False)


class HTTPResponder:
    """``with HTTPResponder("::1", routes=..., tls=ctx) as web: web.port``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        routes: dict[str, Route] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.routes = dict(SEESAW_ROUTES if routes is None else routes)
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        server_cls = _Server6 if ":" in host else _Server
        self.server = server_cls((host, 0), _Handler)
        self.server.responder = self
        if tls is not None:
            # Handshake per connection in its own thread (do_handshake_on_connect).
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> HTTPResponder:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        with contextlib.suppress(OSError):
            self.server.server_close()
        self._thread.join(timeout=5)
