"""One health check's state: Seesaw's state machine and counters (core.go healthcheck()).

Kept lean because it runs for every check result: plain slots, no Status object unless a
notification is due, and the start time kept as Unix nanoseconds until then.
"""

from __future__ import annotations

import time

from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.model import Config, State, Status

DRY_RUN_MESSAGE = "dryrun mode; always succeed"

_HEALTHY = State.HEALTHY
_UNHEALTHY = State.UNHEALTHY


class Check:
    """A check's config, counters and state.

    ``record`` applies one result exactly as Seesaw does: a success makes the check
    Healthy and clears the consecutive-failure count; a failure counts, and makes the
    check Unhealthy unless it was Healthy and has failed at most ``retries`` times in a
    row. It returns whether the state changed (Seesaw notifies on every change).
    """

    __slots__ = (
        "config",
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

    def __init__(self, check_id: int, config: Config) -> None:
        self.id = check_id
        self.config = config
        self.retries = config.retries
        self.state: int = State.UNKNOWN
        self.consecutive_failures = 0
        self.failures = 0
        self.successes = 0
        self.last_start_unix_ns = 0  # 0: never run (Go's zero time.Time)
        self.last_duration_ns = 0
        self.last_message = ""

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

    def status(self) -> Status:
        """The Status Seesaw would send now: LastCheck in the local zone, as time.Now()."""
        if self.last_start_unix_ns:
            seconds = self.last_start_unix_ns // 1_000_000_000
            last_check = GoTime.from_unix_ns(
                self.last_start_unix_ns, time.localtime(seconds).tm_gmtoff
            )
        else:
            last_check = GoTime()
        return Status(
            last_check=last_check,
            duration=self.last_duration_ns,
            failures=self.failures,
            successes=self.successes,
            state=self.state,
            message=self.last_message,
        )

    @property
    def retrying(self) -> bool:
        """Healthy but failing within its retries (Seesaw logs "retrying" then)."""
        return self.state == _HEALTHY and self.consecutive_failures > 0
