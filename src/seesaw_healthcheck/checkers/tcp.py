"""TCP (and TCP over TLS) checks, as Seesaw's ``TCPChecker``.

Connect; with ``secure``, a TLS handshake (server name: an explicit ``sni`` if given,
else the target IP, as Go does); then, if set, write ``send`` and read exactly
``len(receive)`` bytes, which must equal ``receive``. Success and failure messages are
Seesaw's: ``TCP connect to 127.0.0.1:80``, ``...; failed to connect``,
``...; failed to send request``, ``...; failed to read response``,
``...; unexpected response - "..."``.
"""

from __future__ import annotations

import _socket
import socket
import ssl
from errno import EINPROGRESS
from socket import SO_ERROR, SOL_SOCKET

from seesaw_healthcheck.checkers import tls
from seesaw_healthcheck.checkers.base import (
    ENDPOINTS,
    CheckError,
    Endpoint,
    Result,
    conn_name,
    dial_tcp,
    endpoint,
    errno_text,
    go_quote,
    internal_error,
    now_ns,
    timed_out,
)
from seesaw_healthcheck.model import TCPChecker
from seesaw_healthcheck.reactor import limit_deadline, readable, writable

__all__ = ["GUARDED", "check", "describe", "recv_exactly", "send_all"]

# check() sets its own deadline and turns every exception into a Result, so checkers.run
# hands its coroutine out directly instead of wrapping it in one more.
GUARDED = True

_WANT_READ = (BlockingIOError, ssl.SSLWantReadError)
_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
_WANT_WRITE = (BlockingIOError, ssl.SSLWantWriteError)


def _dial_timeout(ep: Endpoint) -> str:
    return f"dial tcp{ep.version} {ep.addr}: i/o timeout"


def describe(checker: TCPChecker) -> str:
    attrs = []
    if checker.secure:
        attrs.append("secure")
        if checker.tls_verify:
            attrs.append("verify")
    extra = f" [{'; '.join(attrs)}]" if attrs else ""
    return f"TCP{extra} {checker.target}"


def io_error_text(op: str, sock: _socket.socket, ep: Endpoint, error: BaseException) -> str:
    """Go's ``read tcp4 a->b: <reason>`` text (TCP checks and DNS over TCP)."""
    if isinstance(error, TimeoutError):
        reason = "i/o timeout"
    elif isinstance(error, ssl.SSLError):
        reason = tls.ssl_error_text(error, ep.host)
        if reason == "EOF":
            return "EOF"
    elif isinstance(error, OSError) and error.errno is not None:
        reason = f"{op}: {errno_text(error.errno)}"
    else:
        reason = str(error)
    return f"{op} {conn_name(sock, ep)}: {reason}"


async def send_all(sock: _socket.socket, data: bytes) -> None:
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


async def recv_exactly(sock: _socket.socket, size: int) -> tuple[bytes, bool]:
    """Read up to ``size`` bytes; returns (data, eof) where eof means it ended early."""
    chunks: list[bytes] = []
    need = size
    while need > 0:
        try:
            data = sock.recv(need)
        except _WANT_READ:
            await readable(sock)
            continue
        except ssl.SSLWantWriteError:
            await writable(sock)
            continue
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""
        if not data:
            return b"".join(chunks), True
        chunks.append(data)
        need -= len(data)
    return b"".join(chunks), False


async def check(checker: TCPChecker, timeout_s: float, sni: str | None = None) -> Result:
    """One TCP check, bounded to ``timeout_s`` (> 0); never raises (see ``GUARDED``)."""
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
                msg = "TCP connect to (invalid target)"
                return Result(False, msg, now_ns() - start, str(error))
        msg = "TCP connect to " + ep.addr
        sock: _socket.socket
        if target.mark:
            try:
                sock = await dial_tcp(ep, target.mark)
            except CheckError as error:
                return Result(False, msg + "; failed to connect", now_ns() - start, str(error))
            except TimeoutError:
                return Result(
                    False, msg + "; failed to connect", now_ns() - start, _dial_timeout(ep)
                )
        else:
            # dial_tcp inlined: the plain connect is the hot path of the most common check.
            # A bare _socket.socket skips socket.socket's Python-level __init__ and close.
            try:
                sock = _socket.socket(ep.family, _STREAM)
            except OSError as error:
                return Result(False, msg + "; failed to connect", now_ns() - start, str(error))
            try:
                code = sock.connect_ex(ep.sockaddr)
                if code == EINPROGRESS:
                    await writable(sock)
                    code = sock.getsockopt(SOL_SOCKET, SO_ERROR)
            except TimeoutError:
                sock.close()
                return Result(
                    False, msg + "; failed to connect", now_ns() - start, _dial_timeout(ep)
                )
            except BaseException:
                sock.close()
                raise
            if code:
                sock.close()
                error_text = f"dial tcp{ep.version} {ep.addr}: connect: {errno_text(code)}"
                return Result(False, msg + "; failed to connect", now_ns() - start, error_text)

        send = checker.send
        receive = checker.receive
        try:
            if checker.secure:
                server_name = sni or ep.host
                try:
                    if not isinstance(sock, socket.socket):  # ssl wants the full socket class
                        sock = socket.socket(fileno=sock.detach())
                    sock = await tls.handshake(sock, checker.tls_verify, server_name)
                except CheckError as error:
                    return Result(False, msg, now_ns() - start, str(error))
                except TimeoutError as error:
                    error_text = io_error_text("read", sock, ep, error)
                    return Result(False, msg, now_ns() - start, error_text)
            if not send and not receive:
                return Result(True, msg, now_ns() - start)
            if send:
                try:
                    await send_all(sock, send.encode("utf-8", "surrogateescape"))
                except (OSError, TimeoutError) as error:
                    error_text = io_error_text("write", sock, ep, error)
                    return Result(
                        False, msg + "; failed to send request", now_ns() - start, error_text
                    )
            if receive:
                want = receive.encode("utf-8", "surrogateescape")
                read_failed = msg + "; failed to read response"
                try:
                    got, eof = await recv_exactly(sock, len(want))
                except (OSError, TimeoutError) as error:
                    error_text = io_error_text("read", sock, ep, error)
                    return Result(False, read_failed, now_ns() - start, error_text)
                if eof:
                    error_text = "unexpected EOF" if got else "EOF"
                    return Result(False, read_failed, now_ns() - start, error_text)
                if got != want:
                    unexpected = f"{msg}; unexpected response - {go_quote(got)}"
                    return Result(False, unexpected, now_ns() - start)
            return Result(True, msg, now_ns() - start)
        finally:
            sock.close()
    except TimeoutError:
        return timed_out(start, timeout_s)
    except Exception as error:
        return internal_error(checker, start, error)
