"""What every checker module shares: ``Result``, ``CheckError`` and the timeouts.

Sockets, the connect and Go's error texts live in ``dial``.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from seesaw_healthcheck.model import (
    Config,
    DNSChecker,
    HTTPChecker,
    PingChecker,
    RADIUSChecker,
    TCPChecker,
    UDPChecker,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "CheckError",
    "Result",
    "elapsed_ns",
    "internal_error",
    "now_ns",
    "timed_out",
    "timeout_for",
]

log = logging.getLogger("seesaw_healthcheck.checkers")

now_ns: Final = time.monotonic_ns

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


class Result:
    """The outcome of one check (Go's ``healthcheck.Result``).

    ``error`` is the Go ``Err``: when set, ``str(result)`` is its text, else the message.
    A plain class, not a dataclass: compiled, a dataclass keeps an interpreted
    ``__init__`` (8x the cost of this one), and one Result is made per check.
    """

    __slots__ = ("duration_ns", "error", "message", "success")

    def __init__(
        self,
        success: bool,
        message: str,
        duration_ns: int,
        error: str | BaseException | None = None,
    ) -> None:
        self.success = success
        self.message = message
        self.duration_ns = duration_ns
        self.error = error

    def __str__(self) -> str:
        if self.error is not None:
            return str(self.error)
        return self.message

    def __repr__(self) -> str:
        return (
            f"Result(success={self.success!r}, message={self.message!r}, "
            f"duration_ns={self.duration_ns!r}, error={self.error!r})"
        )


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
