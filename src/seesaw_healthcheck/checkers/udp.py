"""UDP health check: send ``Send`` in one datagram; the first datagram back must start with
``Receive`` (only its first ``len(Receive)`` bytes are compared, as Seesaw reads into a
buffer of that size).

The socket is connected, so the kernel drops datagrams from any other source and an ICMP
port-unreachable comes back as "connection refused" on the read. This module also holds
the datagram helpers the DNS and RADIUS checks share: ``open_udp``, ``receive_datagram``
and ``exchange_datagram``.
"""

from __future__ import annotations

import _socket
import socket

from seesaw_healthcheck.checkers.base import (
    ENDPOINTS,
    CheckError,
    Endpoint,
    Result,
    conn_name,
    elapsed_ns,
    endpoint,
    go_quote,
    internal_error,
    now_ns,
    os_error_text,
    timed_out,
    udp_socket,
)
from seesaw_healthcheck.model import Target, UDPChecker
from seesaw_healthcheck.reactor import limit_deadline, readable

_TIMEOUT_TEXT = "i/o timeout"
_DGRAM = socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC

# check() sets its own deadline and turns every exception into a Result, so checkers.run
# hands its coroutine out directly instead of wrapping it in one more.
GUARDED = True


def open_udp(target: Target) -> tuple[_socket.socket, Endpoint]:
    """A non-blocking UDP socket, marked when the target says so, connected to it.

    Raises ``CheckError`` (bad target, mark refused) or ``OSError`` (no socket).
    """
    ep = endpoint(target)
    sock = udp_socket(ep.family, target.mark)
    try:
        sock.connect(ep.sockaddr)  # a UDP connect binds and sets the peer: it never blocks
    except OSError as error:
        sock.close()
        network = f"udp{ep.version}"
        raise CheckError(f"dial {network} {ep.addr}: connect: {os_error_text(error)}") from None
    return sock, ep


def io_error(op: str, sock: _socket.socket, ep: Endpoint, reason: str | OSError) -> CheckError:
    """Go's net.OpError text: ``read udp4 127.0.0.1:41234->127.0.0.1:53: i/o timeout``."""
    if isinstance(reason, OSError):
        reason = f"{'recvfrom' if op == 'read' else 'write'}: {os_error_text(reason)}"
    return CheckError(f"{op} {conn_name(sock, ep)}: {reason}")


async def receive_datagram(sock: _socket.socket, ep: Endpoint, bufsize: int) -> bytes:
    """The next datagram (cut at ``bufsize``); ``CheckError`` on timeout or socket error.

    Waits first: right after a send the reply cannot be there yet, and a recv that fails
    with EAGAIN costs a syscall and an exception.
    """
    while True:
        try:
            await readable(sock)
        except TimeoutError:
            raise io_error("read", sock, ep, _TIMEOUT_TEXT) from None
        try:
            return sock.recv(bufsize)
        except BlockingIOError:
            continue
        except OSError as error:
            raise io_error("read", sock, ep, error) from None


def send_datagram(sock: _socket.socket, ep: Endpoint, payload: bytes) -> None:
    try:
        sock.send(payload)
    except OSError as error:  # incl. a full send buffer: Go would fail the write too
        raise io_error("write", sock, ep, error) from None


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


def describe(checker: UDPChecker) -> str:
    return f"UDP {checker.target}"


async def check(checker: UDPChecker, timeout_s: float) -> Result:
    """One UDP exchange. The caller (``checkers.run``) bounds it to ``timeout_s``.

    The hot path of every UDP check, so written out flat: one endpoint lookup, no helper
    coroutines, no recv before the socket is readable.
    """
    start = now_ns()
    if timeout_s > 0:
        limit_deadline(timeout_s)
    try:
        target = checker.target
        try:
            ep = ENDPOINTS[target.ip, target.port]
        except (KeyError, TypeError):  # first use (or an odd ip type): validate
            try:
                ep = endpoint(target)
            except CheckError as error:
                msg = "UDP check to <nil>; failed to create socket"
                return Result(False, msg, elapsed_ns(start), error)
        msg = "UDP check to " + ep.addr
        try:
            if target.mark:
                sock: _socket.socket = udp_socket(ep.family, target.mark)
            else:
                # A bare _socket.socket skips socket.socket's Python-level __init__ and close.
                sock = _socket.socket(ep.family, _DGRAM)
        except (OSError, CheckError) as error:
            return Result(False, msg + "; failed to create socket", elapsed_ns(start), error)
        try:
            want = checker.receive.encode("utf-8", "surrogateescape")
            try:
                sock.connect(ep.sockaddr)  # binds and sets the peer: never blocks for UDP
                sock.send(checker.send.encode("utf-8", "surrogateescape"))
            except OSError as error:
                failure = io_error("write", sock, ep, error)
                return Result(False, msg + "; failed to send request", elapsed_ns(start), failure)
            # Read at least one byte: CPython answers a zero-length recv without asking the
            # kernel, so it would neither wait for the datagram nor see "connection refused".
            bufsize = len(want) or 1
            while True:
                try:
                    await readable(sock)
                except TimeoutError:
                    failure = io_error("read", sock, ep, _TIMEOUT_TEXT)
                    return Result(
                        False, msg + "; failed to read response", elapsed_ns(start), failure
                    )
                try:
                    got = sock.recv(bufsize)[: len(want)]
                    break
                except BlockingIOError:
                    continue
                except OSError as error:
                    failure = io_error("read", sock, ep, error)
                    return Result(
                        False, msg + "; failed to read response", elapsed_ns(start), failure
                    )
            if got != want:
                return Result(
                    False, f"{msg}; unexpected response - {go_quote(got)}", elapsed_ns(start)
                )
            return Result(True, msg, elapsed_ns(start))
        finally:
            sock.close()
    except TimeoutError:
        return timed_out(start, timeout_s)
    except Exception as error:
        return internal_error(checker, start, error)
