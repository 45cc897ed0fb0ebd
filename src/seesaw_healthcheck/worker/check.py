"""One health check's state: Seesaw's state machine and counters (core.go healthcheck()).

Kept lean because it runs for every check result: plain slots, and the start time kept as
Unix nanoseconds.
"""

from __future__ import annotations

from typing import Final

from seesaw_healthcheck.channel import Resume
from seesaw_healthcheck.model import State

__all__ = ["DRY_RUN_MESSAGE", "Check"]

DRY_RUN_MESSAGE: Final = "dryrun mode; always succeed"

_HEALTHY: Final = State.HEALTHY
_UNHEALTHY: Final = State.UNHEALTHY


class Check:
    """A check's counters and state.

    ``record`` applies one result exactly as Seesaw does: a success makes the check
    Healthy and clears the consecutive-failure count; a failure counts, and makes the
    check Unhealthy unless it was Healthy and has failed at most ``retries`` times in a
    row. It returns whether the state changed (Seesaw notifies on every change).
    """

    __slots__ = (
        "consecutive_failures",
        "failures",
        "id",
        "last_duration_ns",
        "last_message",
        "last_start_unix_ns",
        "retries",
        "state",
        "successes",
    )

    def __init__(self, check_id: int, retries: int = 0, resume: Resume | None = None) -> None:
        self.id = check_id
        self.retries = retries
        if resume is None:
            self.state: int = State.UNKNOWN
            self.consecutive_failures = 0
            self.failures = 0
            self.successes = 0
            self.last_start_unix_ns = 0  # 0: never run (Go's zero time.Time)
            self.last_duration_ns = 0
            self.last_message = ""
        else:
            (
                self.state,
                self.consecutive_failures,
                self.failures,
                self.successes,
                self.last_start_unix_ns,
                self.last_duration_ns,
                self.last_message,
            ) = resume

    def record(self, success: bool, message: str, duration_ns: int, start_unix_ns: int) -> bool:
        """Apply one result; True when the state changed."""
        self.last_start_unix_ns = start_unix_ns
        self.last_duration_ns = duration_ns
        self.last_message = message
        if success:
            new_state = _HEALTHY
            self.consecutive_failures = 0
            self.successes += 1
        else:
            self.consecutive_failures += 1
            self.failures += 1
            new_state = _UNHEALTHY
            if self.state == _HEALTHY and self.consecutive_failures <= self.retries:
                new_state = _HEALTHY
        if new_state != self.state:
            self.state = new_state
            return True
        return False

    @property
    def retrying(self) -> bool:
        """Healthy but failing within its retries (Seesaw logs "retrying" then)."""
        return self.state == _HEALTHY and self.consecutive_failures > 0
