"""What the failure path logs while the engine does not answer.

Seesaw logs every failed call, forever (~2,500 lines an hour at the default retry delay).
Here the first failure of each call, and every change of its error text, is an ERROR; then
one summary line a minute while the outage lasts ("engine unreachable for 5m0s, 42 pending
notifications, last error: ..."); and one line when the engine answers again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from seesaw_healthcheck.goduration import format_duration

__all__ = ["SUMMARY_EVERY_S", "Outage"]

log = logging.getLogger("seesaw_healthcheck.control.engine")

SUMMARY_EVERY_S = 60.0


class Outage:
    """Fed by the updater and the notifier with every call's outcome (reactor thread)."""

    def __init__(
        self,
        clock: Callable[[], float],
        pending: Callable[[], int],
        summary_every_s: float = SUMMARY_EVERY_S,
        what: str = "engine",
    ) -> None:
        self._what = what
        self._clock = clock
        self._pending = pending
        self._summary_every = summary_every_s
        self._errors: dict[str, str] = {}  # call -> its last error text, while failing
        self._since = 0.0
        self._next_summary = 0.0
        self.last_error: str | None = None

    @property
    def ongoing(self) -> bool:
        return bool(self._errors)

    def failed(self, call: str, error: BaseException) -> None:
        text = str(error) or type(error).__name__
        text = f"{type(error).__name__}: {text}"
        now = self._clock()
        if not self._errors:
            self._since = now
            self._next_summary = now + self._summary_every
        self.last_error = text
        if self._errors.get(call) != text:
            self._errors[call] = text
            log.error("%s failed: %s", call, text)
        elif now >= self._next_summary:
            self._next_summary = now + self._summary_every
            log.warning(
                "%s unreachable for %s, %d pending notifications, last error: %s",
                self._what,
                _duration(now - self._since),
                self._pending(),
                text,
            )

    def answered(self, call: str) -> None:
        if self._errors.pop(call, None) is not None and not self._errors:
            log.info(
                "%s answering again after %s", self._what, _duration(self._clock() - self._since)
            )
            self.last_error = None


def _duration(seconds: float) -> str:
    return format_duration(int(seconds) * 1_000_000_000)
