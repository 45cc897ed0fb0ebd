"""UDP health check: send ``Send`` in one datagram; the first datagram back must start with
``Receive`` (only its first ``len(Receive)`` bytes are compared, as Seesaw reads into a
buffer of that size).

The socket is connected (``dial.open_udp``), so the kernel drops datagrams from any other
source and an ICMP port-unreachable comes back as "connection refused" on the read.
"""

from __future__ import annotations

from seesaw_healthcheck.checkers.base import (
    CheckError,
    Result,
    elapsed_ns,
    internal_error,
    now_ns,
    timed_out,
)
from seesaw_healthcheck.checkers.dial import (
    ENDPOINTS,
    endpoint,
    open_udp,
    receive_datagram,
    send_datagram,
)
from seesaw_healthcheck.goquote import go_quote
from seesaw_healthcheck.model import UDPChecker
from seesaw_healthcheck.reactor import limit_deadline

__all__ = ["GUARDED", "check", "describe"]

# check() sets its own deadline and turns every exception into a Result, so checkers.run
# hands its coroutine out directly instead of wrapping it in one more.
GUARDED = True


def describe(checker: UDPChecker) -> str:
    return f"UDP {checker.target}"


async def check(checker: UDPChecker, timeout_s: float) -> Result:
    """One UDP exchange, bounded to ``timeout_s`` (> 0); never raises (see ``GUARDED``)."""
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
            sock, _ = open_udp(target)
        except (OSError, CheckError) as no_socket:
            return Result(False, msg + "; failed to create socket", elapsed_ns(start), no_socket)
        try:
            want = checker.receive.encode("utf-8", "surrogateescape")
            try:
                send_datagram(sock, ep, checker.send.encode("utf-8", "surrogateescape"))
            except CheckError as error:
                return Result(False, msg + "; failed to send request", elapsed_ns(start), error)
            try:
                got = (await receive_datagram(sock, ep, len(want)))[: len(want)]
            except CheckError as error:
                return Result(False, msg + "; failed to read response", elapsed_ns(start), error)
            if got != want:
                return Result(
                    False, f"{msg}; unexpected response - {go_quote(got)}", elapsed_ns(start)
                )
            return Result(True, msg, elapsed_ns(start))
        finally:
            sock.close()
    except TimeoutError:
        return timed_out(start, timeout_s)
    except Exception as bug:
        return internal_error(checker, start, bug)
