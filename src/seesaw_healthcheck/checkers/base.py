"""What every checker module shares: ``Result``, timeouts, sockets, Go-style messages.

Checkers run on ``seesaw_healthcheck.reactor``; their I/O is non-blocking sockets awaited
with ``readable``/``writable``. Error texts follow Go's ``net.OpError`` shape
(``dial tcp4 127.0.0.1:80: connect: connection refused``) so a Seesaw operator sees the
messages they know.
"""

from __future__ import annotations

import _socket
import errno
import ipaddress
import logging
import os
import socket
import time
from dataclasses import dataclass
from typing import TypeVar

from seesaw_healthcheck.goquote import go_quote
from seesaw_healthcheck.model import (
    Config,
    DNSChecker,
    HTTPChecker,
    PingChecker,
    RADIUSChecker,
    Target,
    TCPChecker,
    UDPChecker,
    ip_from_bytes,
)
from seesaw_healthcheck.reactor import writable

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENDPOINTS",
    "CheckError",
    "Endpoint",
    "Result",
    "connect",
    "dial_tcp",
    "dial_tcp_bare",
    "elapsed_ns",
    "endpoint",
    "errno_text",
    "go_quote",
    "internal_error",
    "now_ns",
    "os_error_text",
    "set_mark",
    "tcp_socket",
    "timed_out",
    "timeout_for",
    "udp_socket",
]

log = logging.getLogger("seesaw_healthcheck.checkers")

now_ns = time.monotonic_ns

# Seesaw's per-type defaults for a zero Timeout (healthcheck/*.go).
DEFAULT_TIMEOUT_S: dict[type, float] = {
    TCPChecker: 10.0,
    HTTPChecker: 5.0,
    DNSChecker: 3.0,
    UDPChecker: 5.0,
    PingChecker: 1.0,
    RADIUSChecker: 3.0,
}
FALLBACK_TIMEOUT_S = 10.0


@dataclass(slots=True)
class Result:
    """The outcome of one check (Go's ``healthcheck.Result``).

    ``error`` is the Go ``Err``: when set, ``str(result)`` is its text, else the message.
    """

    success: bool
    message: str
    duration_ns: int
    error: str | BaseException | None = None

    def __str__(self) -> str:
        if self.error is not None:
            return str(self.error)
        return self.message


class CheckError(Exception):
    """A failure with a Go-style text, raised by helpers and turned into a Result."""


def elapsed_ns(start_ns: int) -> int:
    return time.monotonic_ns() - start_ns


def timed_out(start_ns: int, timeout_s: float) -> Result:
    """The Result of a check that let the reactor's deadline through."""
    return Result(False, "", elapsed_ns(start_ns), error=f"i/o timeout after {timeout_s:g}s")


def internal_error(checker: object, start_ns: int, error: Exception) -> Result:
    """The Result of a check that raised something unexpected (a bug): logged, kept."""
    kind = type(checker).__name__
    log.exception("%s check failed unexpectedly", kind)
    text = f"internal error in {kind} check: {type(error).__name__}: {error}"
    return Result(False, "", elapsed_ns(start_ns), error=text)


def timeout_for(config: Config) -> float:
    """The check timeout in seconds: ``config.timeout``, or the type's default when <= 0."""
    if config.timeout > 0:
        return config.timeout / 1e9
    return DEFAULT_TIMEOUT_S.get(type(config.checker), FALLBACK_TIMEOUT_S)


SockAddr = tuple[str, int] | tuple[str, int, int, int]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a target's packets go: socket family, sockaddr and Go's ``addr()`` text."""

    family: socket.AddressFamily
    sockaddr: SockAddr
    addr: str  # 127.0.0.1:80 or [::1]:80
    host: str  # 127.0.0.1 or ::1
    version: int  # 4 or 6, for Go's network names (tcp4, udp6)


# (ip, port) -> Endpoint, for valid targets only. A plain dict a check can index inline
# (cheaper than a function call and an lru_cache); cleared when it grows past the limit.
ENDPOINTS: dict[tuple[bytes, int], Endpoint] = {}
_MAX_ENDPOINTS = 65536


def _endpoint(ip: bytes, port: int) -> Endpoint:
    address = ip_from_bytes(ip)
    host = str(address)
    if isinstance(address, ipaddress.IPv4Address):
        return Endpoint(socket.AF_INET, (host, port), f"{host}:{port}", host, 4)
    return Endpoint(socket.AF_INET6, (host, port, 0, 0), f"[{host}]:{port}", host, 6)


def endpoint(target: Target) -> Endpoint:
    """The target's endpoint (cached: parsing IPs costs more than a loopback connect).

    Raises ``CheckError`` for an IP that is neither 4 nor 16 bytes or a port out of range.
    Hot paths try ``ENDPOINTS[(target.ip, target.port)]`` first and call this on a miss.
    """
    port = target.port
    if not 0 <= port <= 65535:
        raise CheckError(f"invalid port {port}")
    ip = bytes(target.ip)
    key = (ip, port)
    ep = ENDPOINTS.get(key)
    if ep is None:
        try:
            ep = _endpoint(ip, port)
        except ValueError as error:
            raise CheckError(str(error)) from None
        if len(ENDPOINTS) >= _MAX_ENDPOINTS:
            ENDPOINTS.clear()
        ENDPOINTS[key] = ep
    return ep


def errno_text(code: int) -> str:
    """Go's text for an errno: the C strerror with a lower-case first letter."""
    text = os.strerror(code)
    return text[:1].lower() + text[1:]


def os_error_text(error: OSError) -> str:
    if error.errno is not None:
        return errno_text(error.errno)
    return str(error)


def set_mark(sock: _socket.socket, mark: int) -> None:
    """SO_MARK (needs CAP_NET_ADMIN): steers DSR/TUN checks through the right route."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
    except OSError as error:
        raise CheckError(f"failed to set mark: setsockopt: {os_error_text(error)}") from None


_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
_DGRAM = socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


_Sock = TypeVar("_Sock", bound=_socket.socket)


def _marked(sock: _Sock, mark: int) -> _Sock:
    """``sock`` with SO_MARK set when ``mark`` != 0 (closed if marking fails)."""
    if mark:
        try:
            set_mark(sock, mark)
        except BaseException:
            sock.close()
            raise
    return sock


def tcp_socket(family: socket.AddressFamily, mark: int = 0) -> socket.socket:
    """A non-blocking TCP socket, marked when ``mark`` != 0."""
    return _marked(socket.socket(family, _STREAM), mark)


def udp_socket(family: socket.AddressFamily, mark: int = 0) -> _socket.socket:
    """A non-blocking UDP socket, marked when ``mark`` != 0.

    A bare ``_socket.socket``: the Python-level ``socket.socket`` adds an ``__init__`` and
    a ``close`` in Python, a few µs of a UDP check's ~30."""
    return _marked(_socket.socket(family, _DGRAM), mark)


async def connect(sock: socket.socket, sockaddr: SockAddr) -> int:
    """Non-blocking connect; returns 0 or the errno it failed with."""
    code = sock.connect_ex(sockaddr)
    if code == errno.EINPROGRESS:
        await writable(sock)
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return code


async def dial_tcp(ep: Endpoint, mark: int) -> socket.socket:
    """A connected non-blocking TCP socket, or ``CheckError`` with Go's dial error text.

    A ``TimeoutError`` from the reactor deadline passes through (the socket is closed).
    """
    network = "tcp4" if ep.version == 4 else "tcp6"
    try:
        sock = tcp_socket(ep.family, mark)
    except OSError as error:
        raise CheckError(f"dial {network} {ep.addr}: socket: {os_error_text(error)}") from None
    except CheckError as error:
        raise CheckError(f"dial {network} {ep.addr}: {error}") from None
    try:
        code = await connect(sock, ep.sockaddr)
    except BaseException:
        sock.close()
        raise
    if code:
        sock.close()
        raise CheckError(f"dial {network} {ep.addr}: connect: {errno_text(code)}")
    return sock


async def dial_tcp_bare(ep: Endpoint, mark: int) -> _socket.socket:
    """``dial_tcp`` for hot paths: a bare ``_socket.socket`` (no Python-level wrapper),
    connect inlined. Wrap it with ``socket.socket(fileno=s.detach())`` where a full
    socket is needed (ssl)."""
    if mark:
        return await dial_tcp(ep, mark)
    try:
        sock = _socket.socket(ep.family, _STREAM)
    except OSError as error:
        text = os_error_text(error)
        raise CheckError(f"dial tcp{ep.version} {ep.addr}: socket: {text}") from None
    try:
        code = sock.connect_ex(ep.sockaddr)
        if code == errno.EINPROGRESS:
            await writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    except BaseException:
        sock.close()
        raise
    if code:
        sock.close()
        raise CheckError(f"dial tcp{ep.version} {ep.addr}: connect: {errno_text(code)}")
    return sock


def conn_name(sock: _socket.socket, ep: Endpoint) -> str:
    """Go's ``tcp4 127.0.0.1:41234->127.0.0.1:80`` for read/write errors."""
    network = ("tcp" if sock.type == socket.SOCK_STREAM else "udp") + str(ep.version)
    try:
        local = sock.getsockname()
        laddr = f"{local[0]}:{local[1]}" if ep.version == 4 else f"[{local[0]}]:{local[1]}"
    except OSError:
        laddr = "?"
    return f"{network} {laddr}->{ep.addr}"
