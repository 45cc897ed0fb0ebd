"""A small HTTP/1.1 server on the control process's reactor, for the operator's endpoints.

One request per connection (``Connection: close``), GET and HEAD, a handler that maps a
``Request`` to a ``Response``. It runs in the control process, never in a check worker, so
no request can delay a check; a slow or silent client costs only its own connection
(``REQUEST_TIMEOUT_S`` for the request and the response together) and at most
``MAX_CONNECTIONS`` are served at once. ``parse_request`` owns no I/O.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit

from seesaw_healthcheck.checkers.dial import send_all
from seesaw_healthcheck.reactor import Reactor, readable

__all__ = ["HttpError", "HttpServer", "Request", "Response", "parse_address", "parse_request"]

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
MAX_CONNECTIONS = 64
REQUEST_TIMEOUT_S = 30.0

REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


@dataclass(slots=True)
class Request:
    method: str
    path: str  # percent-decoded, without the query
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def head(self) -> bytes:
        """The status line and headers, up to the blank line that ends them."""
        lines = [
            f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Status')}",
            f"Date: {formatdate(usegmt=True)}",
            "Server: seesaw-healthcheck",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Connection: close",
        ]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_request(head: bytes) -> Request:
    """A request line and headers (without the blank line); ``HttpError`` 400 otherwise."""
    try:
        text = head.decode("latin-1")
        request_line, *header_lines = text.split("\r\n")
        method, target, version = request_line.split(" ")
    except ValueError:
        raise HttpError(400, "malformed request line") from None
    if not version.startswith("HTTP/1."):
        raise HttpError(400, f"unsupported protocol {version!r}")
    headers = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise HttpError(400, "malformed header line")
        headers[name.lower()] = value.strip()
    parts = urlsplit(target)
    if not parts.path.startswith("/"):
        raise HttpError(400, "the request target must be a path")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise HttpError(400, "malformed query string") from None
    return Request(method, unquote(parts.path), query, headers)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` (flag syntax); ``ValueError`` naming what is wrong."""
    host, colon, port_text = text.rpartition(":")
    if not colon or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port_text)


class HttpServer:
    """Listens on ``address`` and answers every request with ``handler(request)``."""

    def __init__(
        self, reactor: Reactor, address: tuple[str, int], handler: Callable[[Request], Response]
    ) -> None:
        self.reactor = reactor
        self.handler = handler
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(address)
            self.listener.listen(128)
        except OSError:
            self.listener.close()
            raise
        self.listener.setblocking(False)
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.connections = 0
        reactor.add_reader(self.listener, self._accept)

    def _accept(self) -> None:
        while self.connections < MAX_CONNECTIONS:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE):
                    log.warning("HTTP: cannot accept a connection: %s", err.strerror)
                return
            conn.setblocking(False)
            self.connections += 1
            self.reactor.spawn(
                self._serve(conn), self.reactor.time() + REQUEST_TIMEOUT_S, self._done
            )

    def _done(self, outcome: object) -> None:
        self.connections -= 1

    async def _serve(self, conn: socket.socket) -> None:
        try:
            await self._exchange(conn)
        finally:
            conn.close()

    async def _exchange(self, conn: socket.socket) -> None:
        head = bytearray()
        while True:
            end = head.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(head) > MAX_HEAD:
                await self._send(conn, _error(413, "request head too large"))
                return
            await readable(conn)
            try:
                chunk = conn.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not chunk:
                return
            head += chunk
        try:
            request = parse_request(bytes(head[:end]))
        except HttpError as err:
            await self._send(conn, _error(err.status, str(err)))
            return
        if request.method not in ("GET", "HEAD"):
            response = _error(405, f"{request.method} is not served here")
            response.headers = (("Allow", "GET, HEAD"),)
        else:
            try:
                response = self.handler(request)
            except HttpError as err:
                response = _error(err.status, str(err))
            except Exception:
                log.exception("HTTP: %s %s failed", request.method, request.path)
                response = _error(500, "internal error (logged)")
        await self._send(conn, response, head_only=request.method == "HEAD")

    async def _send(self, conn: socket.socket, response: Response, head_only: bool = False) -> None:
        head = response.head()
        body = b"" if head_only else response.body
        with contextlib.suppress(OSError):  # the client left: nothing to do
            # Head and body in one call, without copying the body (20 MB for /status at
            # 50,000 checks) behind the head; what the socket did not take, after.
            try:
                sent = conn.sendmsg([head, body])
            except BlockingIOError:
                sent = 0
            if sent < len(head):
                await send_all(conn, head[sent:])
                sent = len(head)
            await send_all(conn, memoryview(body)[sent - len(head) :])
            conn.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.reactor.remove_reader(self.listener)
        self.listener.close()


def _error(status: int, text: str) -> Response:
    body = json.dumps({"error": text}).encode() + b"\n"
    return Response(status, body, "application/json")
