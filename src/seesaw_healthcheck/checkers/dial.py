"""Sockets for every checker, and Go's texts for what goes wrong with them (Seesaw's
``dial.go`` plus the ``net.OpError`` strings a Seesaw operator knows).

One place for: where a target's packets go (``Endpoint``), making (marked) sockets, the
non-blocking connect, sending and receiving on the reactor, and the error texts
(``dial tcp4 127.0.0.1:80: connect: connection refused``,
``read tcp4 127.0.0.1:41234->127.0.0.1:80: i/o timeout``).

Wake-ups are hints, never verdicts (the rule of trio's ``_core``). A socket this process
closed can keep its epoll registration while another process holds the same file, and
then its late events arrive under an fd number a newer socket has taken. So:

- a connect is complete only when ``SO_ERROR`` is 0 *and* the socket has its peer (what
  ``getpeername()`` tells, read from ``TCP_INFO``); a writable wake-up that finds the socket
  still connecting waits again, until the task's deadline; and a socket connected to
  itself (a local port nobody listens on, which the kernel happened to give us as our
  own) is refused, as Go's dialer refuses it;
- a readable wake-up that finds no data (``EAGAIN``) waits again.

Every checker that waits on a socket does it through these functions.
"""

from __future__ import annotations

import _socket
import errno
import ipaddress
import os
import socket
import ssl
from errno import EINPROGRESS
from socket import IPPROTO_TCP, SO_ERROR, SOL_SOCKET, TCP_INFO
from typing import Final

from seesaw_healthcheck.checkers import tls
from seesaw_healthcheck.checkers.base import CheckError
from seesaw_healthcheck.model import Target, ip_from_bytes
from seesaw_healthcheck.reactor import readable, writable

__all__ = [
    "ENDPOINTS",
    "Endpoint",
    "conn_name",
    "connect",
    "dial_tcp",
    "dial_timeout_text",
    "endpoint",
    "errno_text",
    "exchange_datagram",
    "io_error_text",
    "open_udp",
    "os_error_text",
    "receive_datagram",
    "recv_exactly",
    "recv_ready",
    "send_all",
    "send_datagram",
    "set_mark",
    "tcp_socket",
    "udp_socket",
]

TIMEOUT_TEXT: Final = "i/o timeout"

SockAddr = tuple[str, int] | tuple[str, int, int, int]


class Endpoint:
    """Where a target's packets go: socket family, sockaddr and Go's ``addr()`` text.

    Read-only by convention (cached and shared). A plain class: every check reads it, and
    compiled code reads a plain class's attributes directly (a dataclass with slots stays
    an interpreted class).
    """

    __slots__ = ("addr", "family", "host", "sockaddr", "version")

    def __init__(
        self,
        family: socket.AddressFamily,
        sockaddr: SockAddr,
        addr: str,  # 127.0.0.1:80 or [::1]:80
        host: str,  # 127.0.0.1 or ::1
        version: int,  # 4 or 6, for Go's network names (tcp4, udp6)
    ) -> None:
        self.family = family
        self.sockaddr = sockaddr
        self.addr = addr
        self.host = host
        self.version = version

    def __repr__(self) -> str:
        return (
            f"Endpoint(family={self.family!r}, sockaddr={self.sockaddr!r}, "
            f"addr={self.addr!r}, host={self.host!r}, version={self.version!r})"
        )


# (ip, port) -> Endpoint, for valid targets only. A plain dict a check can index inline
# (cheaper than a function call and an lru_cache); cleared when it grows past the limit.
ENDPOINTS: Final[dict[tuple[bytes, int], Endpoint]] = {}
_MAX_ENDPOINTS: Final = 65536


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


# --- Go's texts --------------------------------------------------------------------------


def errno_text(code: int) -> str:
    """Go's text for an errno: the C strerror with a lower-case first letter."""
    text = os.strerror(code)
    return text[:1].lower() + text[1:]


def os_error_text(error: OSError) -> str:
    if error.errno is not None:
        return errno_text(error.errno)
    return str(error)


def dial_timeout_text(ep: Endpoint, network: str | None = None) -> str:
    """``dial tcp4 127.0.0.1:80: i/o timeout``."""
    return f"dial {network or f'tcp{ep.version}'} {ep.addr}: {TIMEOUT_TEXT}"


def conn_name(sock: _socket.socket, ep: Endpoint) -> str:
    """Go's ``tcp4 127.0.0.1:41234->127.0.0.1:80`` for read/write errors."""
    network = ("tcp" if sock.type == socket.SOCK_STREAM else "udp") + str(ep.version)
    try:
        local = sock.getsockname()
        laddr = f"{local[0]}:{local[1]}" if ep.version == 4 else f"[{local[0]}]:{local[1]}"
    except OSError:
        laddr = "?"
    return f"{network} {laddr}->{ep.addr}"


def io_error_text(op: str, sock: _socket.socket, ep: Endpoint, error: BaseException | str) -> str:
    """Go's ``read tcp4 a->b: <reason>`` text for a failed read or write.

    ``error`` is the exception (a timeout, a TLS failure, an errno) or the reason itself.
    """
    if isinstance(error, str):
        reason = error
    elif isinstance(error, TimeoutError):
        reason = TIMEOUT_TEXT
    elif isinstance(error, ssl.SSLError):
        reason = tls.ssl_error_text(error, ep.host)
        if reason == "EOF":
            return "EOF"
    elif isinstance(error, OSError) and error.errno is not None:
        syscall = op if sock.type == socket.SOCK_STREAM or op == "write" else "recvfrom"
        reason = f"{syscall}: {errno_text(error.errno)}"
    else:
        reason = str(error)
    return f"{op} {conn_name(sock, ep)}: {reason}"


# --- sockets -----------------------------------------------------------------------------

_STREAM: Final = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
_TCP_SYN_SENT: Final = 2  # include/net/tcp_states.h
_TCP_CLOSE: Final = 7
_DGRAM: Final = socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


def set_mark(sock: _socket.socket, mark: int) -> None:
    """SO_MARK (needs CAP_NET_ADMIN): steers DSR/TUN checks through the right route."""
    try:
        sock.setsockopt(SOL_SOCKET, socket.SO_MARK, mark)
    except OSError as error:
        raise CheckError(f"failed to set mark: setsockopt: {os_error_text(error)}") from None


def _marked(sock: _socket.socket, mark: int) -> _socket.socket:
    if mark:
        try:
            set_mark(sock, mark)
        except BaseException:
            sock.close()
            raise
    return sock


def tcp_socket(family: int, mark: int = 0) -> _socket.socket:
    """A non-blocking TCP socket, marked when ``mark`` != 0.

    A bare ``_socket.socket``: the Python-level ``socket.socket`` adds an ``__init__`` and a
    ``close`` in Python, a few µs of a ~30 µs check. Wrap it with
    ``socket.socket(fileno=s.detach())`` where a full socket is needed (ssl).
    Raises ``OSError`` (no socket) or ``CheckError`` (mark refused).
    """
    return _marked(_socket.socket(family, _STREAM), mark)


def udp_socket(family: int, mark: int = 0) -> _socket.socket:
    """A non-blocking UDP socket, marked when ``mark`` != 0 (see ``tcp_socket``)."""
    return _marked(_socket.socket(family, _DGRAM), mark)


async def connect(sock: _socket.socket, sockaddr: SockAddr) -> int:
    """Non-blocking connect; 0 once really connected, else the errno it failed with.

    A writable wake-up is only a hint (see the module docstring): SO_ERROR 0 with no peer
    yet means still connecting, so wait again; the task's deadline ends it.
    """
    code = sock.connect_ex(sockaddr)
    if code != EINPROGRESS:
        return code or _refuse_self_connect(sock, sockaddr)
    while True:
        await writable(sock)
        code = sock.getsockopt(SOL_SOCKET, SO_ERROR)
        if code:
            return code
        # Has it a peer? getpeername() answers ENOTCONN exactly in the states SYN_SENT and
        # CLOSE (Linux, inet_getname); the first byte of TCP_INFO is the state, which costs
        # a third of getpeername(), whose answer is an address formatted as text.
        try:
            state = sock.getsockopt(IPPROTO_TCP, TCP_INFO, 1)[0]
        except OSError as error:
            return error.errno or errno.EIO
        if state in (_TCP_SYN_SENT, _TCP_CLOSE):
            continue  # a stale or spurious wake-up: not connected yet
        return _refuse_self_connect(sock, sockaddr)


def _refuse_self_connect(sock: _socket.socket, sockaddr: SockAddr) -> int:
    """ECONNREFUSED for a socket connected to itself, else 0.

    The kernel can give us, as our source port, the very local port we connect to when
    nobody listens there (TCP simultaneous open). Go's dialer refuses these too
    (selfConnect); a dead backend must not look alive.
    """
    if sock.getsockname()[:2] == sockaddr[:2]:
        return errno.ECONNREFUSED
    return 0


async def dial_tcp(ep: Endpoint, mark: int = 0, network: str | None = None) -> _socket.socket:
    """A connected non-blocking TCP socket, or ``CheckError`` with Go's dial error text.

    ``network`` is the name Go's error carries (``tcp`` for net/http's Transport; default
    ``tcp4``/``tcp6``). A ``TimeoutError`` from the reactor deadline passes through (the
    socket is closed); ``dial_timeout_text`` is Go's text for it.
    """
    try:
        sock = tcp_socket(ep.family, mark)
    except OSError as error:
        raise CheckError(_dial_text(ep, network, f"socket: {os_error_text(error)}")) from None
    except CheckError as mark_error:
        raise CheckError(_dial_text(ep, network, str(mark_error))) from None
    try:
        code = await connect(sock, ep.sockaddr)
    except BaseException:
        sock.close()
        raise
    if code:
        sock.close()
        raise CheckError(_dial_text(ep, network, f"connect: {errno_text(code)}"))
    return sock


def _dial_text(ep: Endpoint, network: str | None, reason: str) -> str:
    return f"dial {network or f'tcp{ep.version}'} {ep.addr}: {reason}"


# --- streams -----------------------------------------------------------------------------

_WANT_READ: Final = (BlockingIOError, ssl.SSLWantReadError)
_WANT_WRITE: Final = (BlockingIOError, ssl.SSLWantWriteError)


async def send_all(sock: _socket.socket, data: bytes | memoryview) -> None:
    """Write all of ``data`` to a non-blocking (TLS) socket."""
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except _WANT_WRITE:
            await writable(sock)
            continue
        except ssl.SSLWantReadError:
            await readable(sock)
            continue
        view = view[sent:]


async def recv_ready(sock: _socket.socket, size: int) -> bytes:
    """What a plain socket has for us after waiting for it (b"" at EOF).

    Waits first: right after a request the answer cannot be there yet, and a recv that
    fails with EAGAIN costs a syscall and an exception. A wake-up with nothing to read
    waits again.
    """
    while True:
        await readable(sock)
        try:
            return sock.recv(size)
        except BlockingIOError:
            continue


async def recv_some(sock: _socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes from a non-blocking (TLS) socket, b"" at EOF; reads first
    (TLS may hold decrypted bytes already), waits when there is nothing."""
    while True:
        try:
            return sock.recv(size)
        except _WANT_READ:
            await readable(sock)
        except ssl.SSLWantWriteError:
            await writable(sock)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return b""


async def recv_exactly(sock: _socket.socket, size: int) -> tuple[bytes, bool]:
    """Read up to ``size`` bytes; returns (data, eof) where eof means it ended early."""
    chunks: list[bytes] = []
    need = size
    while need > 0:
        data = await recv_some(sock, need)
        if not data:
            return b"".join(chunks), True
        chunks.append(data)
        need -= len(data)
    return b"".join(chunks), False


# --- datagrams ---------------------------------------------------------------------------


def open_udp(target: Target) -> tuple[_socket.socket, Endpoint]:
    """A non-blocking UDP socket, marked when the target says so, connected to it.

    Connected, so the kernel drops datagrams from any other source and an ICMP
    port-unreachable comes back as "connection refused" on the read. Raises
    ``CheckError`` (bad target, mark refused, connect refused) or ``OSError`` (no socket).
    """
    ep = endpoint(target)
    for _ in range(3):
        sock = udp_socket(ep.family, target.mark)
        try:
            sock.connect(ep.sockaddr)  # a UDP connect binds and sets the peer: never blocks
            if sock.getsockname()[:2] != ep.sockaddr[:2]:
                return sock, ep
        except OSError as error:
            sock.close()
            network = f"udp{ep.version}"
            raise CheckError(f"dial {network} {ep.addr}: connect: {os_error_text(error)}") from None
        # Bound to the very address it sends to (a local port nobody uses, given to us as
        # our source port): it would read its own datagram back. Another socket.
        sock.close()
    raise CheckError(f"dial udp{ep.version} {ep.addr}: connect: connection refused")


def send_datagram(sock: _socket.socket, ep: Endpoint, payload: bytes) -> None:
    try:
        sock.send(payload)
    except OSError as error:  # incl. a full send buffer: Go would fail the write too
        raise CheckError(io_error_text("write", sock, ep, error)) from None


async def receive_datagram(sock: _socket.socket, ep: Endpoint, bufsize: int) -> bytes:
    """The next datagram (cut at ``bufsize``, at least 1 byte asked for); ``CheckError``
    with Go's text on timeout or a socket error ("connection refused")."""
    # CPython answers a zero-length recv without asking the kernel, so it would neither
    # wait for the datagram nor see "connection refused".
    bufsize = bufsize or 1
    try:
        return await recv_ready(sock, bufsize)
    except TimeoutError:
        raise CheckError(io_error_text("read", sock, ep, TIMEOUT_TEXT)) from None
    except OSError as error:
        raise CheckError(io_error_text("read", sock, ep, error)) from None


async def exchange_datagram(
    sock: _socket.socket, ep: Endpoint, payload: bytes, bufsize: int
) -> tuple[bytes | None, str, CheckError | None]:
    """Send one datagram and wait for one back.

    Returns (reply, "", None), or (None, Go's message suffix, error) when it failed.
    """
    try:
        send_datagram(sock, ep, payload)
    except CheckError as error:
        return None, "; failed to send request", error
    try:
        return await receive_datagram(sock, ep, bufsize), "", None
    except CheckError as error:
        return None, "; failed to read response", error
