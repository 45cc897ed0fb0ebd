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

from seesaw_healthcheck.checkers import tls
from seesaw_healthcheck.checkers.base import CheckError, Result, internal_error, now_ns, timed_out
from seesaw_healthcheck.checkers.dial import (
    ENDPOINTS,
    dial_tcp,
    dial_timeout_text,
    endpoint,
    io_error_text,
    recv_exactly,
    send_all,
)
from seesaw_healthcheck.goquote import go_quote
from seesaw_healthcheck.model import TCPChecker
from seesaw_healthcheck.reactor import limit_deadline

__all__ = ["GUARDED", "check", "describe"]

# check() sets its own deadline and turns every exception into a Result, so checkers.run
# hands its coroutine out directly instead of wrapping it in one more.
GUARDED = True


def describe(checker: TCPChecker) -> str:
    attrs = []
    if checker.secure:
        attrs.append("secure")
        if checker.tls_verify:
            attrs.append("verify")
    extra = f" [{'; '.join(attrs)}]" if attrs else ""
    return f"TCP{extra} {checker.target}"


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
        try:
            sock = await dial_tcp(ep, target.mark)
        except CheckError as error:
            return Result(False, msg + "; failed to connect", now_ns() - start, str(error))
        except TimeoutError:
            text = dial_timeout_text(ep)
            return Result(False, msg + "; failed to connect", now_ns() - start, text)

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
                except TimeoutError as timeout:
                    error_text = io_error_text("read", sock, ep, timeout)
                    return Result(False, msg, now_ns() - start, error_text)
            if not send and not receive:
                return Result(True, msg, now_ns() - start)
            if send:
                try:
                    await send_all(sock, send.encode("utf-8", "surrogateescape"))
                except (OSError, TimeoutError) as io_error:
                    error_text = io_error_text("write", sock, ep, io_error)
                    return Result(
                        False, msg + "; failed to send request", now_ns() - start, error_text
                    )
            if receive:
                want = receive.encode("utf-8", "surrogateescape")
                read_failed = msg + "; failed to read response"
                try:
                    got, eof = await recv_exactly(sock, len(want))
                except (OSError, TimeoutError) as io_error:
                    error_text = io_error_text("read", sock, ep, io_error)
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
    except Exception as bug:
        return internal_error(checker, start, bug)
