"""Small loopback services for the demo to health-check: TCP, HTTP, DNS, UDP echo.

Each runs in a daemon thread on 127.0.0.1 (an ephemeral port unless one is given) and
stops with ``close()``. No root is needed. The HTTP target can flap: it answers 200 and
503 in turns of ``flap`` seconds, so the demo shows state changes on its own.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

__all__ = ["KINDS", "DemoTarget", "TargetError", "start_target"]

KINDS = ("tcp", "http", "dns", "udp_echo", "closed")
LOOPBACK = "127.0.0.1"


class TargetError(ValueError):
    """A demo target that cannot be described or started."""


@dataclass
class DemoTarget:
    """A running demo service: where it listens and how to stop it."""

    name: str
    kind: str
    ip: str
    port: int
    detail: str
    _stop: threading.Event
    _threads: list[threading.Thread]
    _closers: list[Any]

    def close(self) -> None:
        self._stop.set()
        for closer in self._closers:
            with contextlib.suppress(OSError):
                closer()
        for thread in self._threads:
            thread.join(timeout=2.0)


def _thread(target: Any, name: str) -> threading.Thread:
    t = threading.Thread(target=target, name=name, daemon=True)
    t.start()
    return t


def _tcp(name: str, port: int) -> DemoTarget:
    """Accepts, writes a one-line banner and closes: a TCP connect check passes."""
    stop = threading.Event()
    srv = socket.create_server((LOOPBACK, port), backlog=128)
    srv.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(b"220 seesaw demo ready\r\n")

    port = srv.getsockname()[1]
    threads = [_thread(serve, f"demo-tcp-{name}")]
    return DemoTarget(name, "tcp", LOOPBACK, port, "banner then close", stop, threads, [srv.close])


class _FlappingHandler(BaseHTTPRequestHandler):
    flap: ClassVar[float] = 0.0
    started: ClassVar[float] = 0.0

    def do_GET(self) -> None:
        healthy = True
        if self.flap > 0:
            healthy = int((time.monotonic() - self.started) // self.flap) % 2 == 0
        code, body = (200, b"ok\n") if healthy else (503, b"flapping: down for now\n")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the demo prints state changes, not every request


class _QuietHTTPServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A health checker hangs up once it has the status line (and a stopping server
        # mid-check): normal for a health endpoint, not a traceback on the demo's screen.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _http(name: str, port: int, flap: float) -> DemoTarget:
    handler = type(
        f"Handler_{name}", (_FlappingHandler,), {"flap": flap, "started": time.monotonic()}
    )
    srv = _QuietHTTPServer((LOOPBACK, port), handler)
    srv.daemon_threads = True
    stop = threading.Event()
    threads = [_thread(lambda: srv.serve_forever(poll_interval=0.2), f"demo-http-{name}")]

    def close() -> None:
        srv.shutdown()
        srv.server_close()

    detail = f"200/503, switching every {flap:g}s" if flap > 0 else "always 200"
    return DemoTarget(name, "http", LOOPBACK, srv.server_address[1], detail, stop, threads, [close])


def _udp_loop(
    name: str, port: int, reply: Any
) -> tuple[socket.socket, threading.Event, threading.Thread]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, port))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            answer = reply(data)
            if answer is not None:
                with contextlib.suppress(OSError):
                    sock.sendto(answer, peer)

    return sock, stop, _thread(serve, f"demo-udp-{name}")


def _udp_echo(name: str, port: int) -> DemoTarget:
    sock, stop, thread = _udp_loop(name, port, lambda data: data)
    return DemoTarget(
        name,
        "udp_echo",
        LOOPBACK,
        sock.getsockname()[1],
        "echoes datagrams",
        stop,
        [thread],
        [sock.close],
    )


def _dns(name: str, port: int, answer: str) -> DemoTarget:
    """Answers every A question with ``answer``; other types get an empty NOERROR."""
    import dns.message
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

    def reply(data: bytes) -> bytes | None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return None  # not DNS: ignore, as a real server would
        response = dns.message.make_response(query)
        for q in query.question:
            if q.rdtype == dns.rdatatype.A:
                response.answer.append(
                    dns.rrset.from_text(q.name, 30, dns.rdataclass.IN, dns.rdatatype.A, answer)
                )
        wire: bytes = response.to_wire()
        return wire

    sock, stop, thread = _udp_loop(name, port, reply)
    return DemoTarget(
        name, "dns", LOOPBACK, sock.getsockname()[1], f"A -> {answer}", stop, [thread], [sock.close]
    )


def _closed(name: str) -> DemoTarget:
    """A port nothing listens on (found by binding and releasing it): checks fail."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    return DemoTarget(
        name, "closed", LOOPBACK, port, "nothing listening", threading.Event(), [], []
    )


def _flap_seconds(value: object, where: str) -> float:
    from seesaw_healthcheck.goduration import parse_duration

    if not isinstance(value, str):
        raise TargetError(f'{where}: flap must be a Go duration string like "10s"')
    try:
        ns = parse_duration(value)
    except ValueError as e:
        raise TargetError(f"{where}: flap: {e}") from None
    if ns < 0:
        raise TargetError(f"{where}: flap must not be negative")
    return ns / 1e9


def start_target(spec: Mapping[str, Any], where: str = "target") -> DemoTarget:
    """Start the target a ``[[demo.target]]`` table describes.

    Keys: ``name`` (required), ``kind`` (one of KINDS), ``port`` (0 = ephemeral, the
    default), ``flap`` (http: a Go duration between 200 and 503 turns; "0s" = always
    200), ``answer`` (dns: the A record to give, default 127.0.0.1).
    """
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise TargetError(f"{where}: name is required")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise TargetError(f"{where} ({name}): kind {kind!r} is not one of {', '.join(KINDS)}")
    allowed = {"name", "kind", "port"} | {"http": {"flap"}, "dns": {"answer"}}.get(kind, set())
    unknown = set(spec) - allowed
    if unknown:
        raise TargetError(f"{where} ({name}): unknown field(s) {', '.join(sorted(unknown))}")
    port = spec.get("port", 0)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise TargetError(f"{where} ({name}): port must be 0..65535")
    try:
        if kind == "tcp":
            return _tcp(name, port)
        if kind == "http":
            return _http(name, port, _flap_seconds(spec.get("flap", "0s"), f"{where} ({name})"))
        if kind == "dns":
            answer = spec.get("answer", "127.0.0.1")
            if not isinstance(answer, str):
                raise TargetError(f"{where} ({name}): answer must be an IPv4 address string")
            return _dns(name, port, answer)
        if kind == "udp_echo":
            return _udp_echo(name, port)
        return _closed(name)
    except OSError as e:
        raise TargetError(f"{where} ({name}): cannot listen on {LOOPBACK}:{port}: {e}") from None
