"""The schedule: every check of a worker on its interval, one reactor timer each.

New checks all run once within an interval of the fetch that brought them (spread evenly,
no herd), then keep an even phase; a check still running when its slot comes skips that
slot; a loop that fell whole intervals behind skips them rather than running a burst. Each
result goes through Seesaw's state machine (``check.Check``) and then to ``on_result``.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final

from seesaw_healthcheck.channel import (
    CHECKER_KINDS,
    DURATION_BOUNDS,
    LATENESS_BOUNDS,
    Add,
    Header,
    Resume,
)
from seesaw_healthcheck.model import Config, checker_kind
from seesaw_healthcheck.reactor import Reactor, Task, Timer
from seesaw_healthcheck.worker.check import DRY_RUN_MESSAGE, Check

__all__ = ["FIRST_ROUND_SHARE", "Schedule", "ScheduledCheck"]

# New checks all run once within this share of their interval after the fetch: the rest
# is room for the first round's extra work (a transition per check) on a busy machine.
# Measured, 10,000 checks at 1 s: all had run 0.90-0.91 s after the fetch (0.95: 1.00-1.01).
FIRST_ROUND_SHARE: Final = 0.9

_KIND_INDEX: Final = {name: index for index, name in enumerate(CHECKER_KINDS)}
# Final: compiled code calls these without looking them up on their modules each time.
_bisect_left: Final = bisect.bisect_left
_time_ns: Final = time.time_ns


RunCheck = Callable[[Any, float], Coroutine[Any, Any, Any]]
TimeoutFor = Callable[[Config], float]
OnResult = Callable[["ScheduledCheck", bool], None]


def _ignore(*_: object) -> None:
    pass


class ScheduledCheck(Check):
    """A Check with its schedule: one reactor timer, at most one run in flight."""

    __slots__ = (
        "_done_cb",
        "_fire_cb",
        "checker",
        "interval_s",
        "kind",
        "next_slot",
        "ran_here",
        "rephase",
        "reported_message",
        "running",
        "schedule",
        "slot",
        "start_time",
        "task",
        "timeout_s",
        "timer",
    )

    def __init__(
        self,
        schedule: Schedule,
        config: Config,
        slot: int,
        resume: Resume | None,
    ) -> None:
        super().__init__(config.id, config.retries, resume)
        self.schedule = schedule
        self.slot = slot
        self.reported_message = self.last_message
        self.checker: Any = config.checker
        self.kind = _KIND_INDEX.get(checker_kind(config.checker), 0)
        self.interval_s = config.interval / 1e9
        self.timeout_s = schedule.timeout_for(config)
        self.next_slot = 0.0
        self.rephase = 0.0  # taken off the second slot once: from the first round's phase
        self.timer: Timer | None = None
        self.task: Task | None = None
        self.running = False
        self.ran_here = False  # ran since this worker got it
        self.start_time = 0.0
        self._fire_cb: Callable[[], None] = self._fire
        self._done_cb: Callable[[Any], None] = self._done

    def configure(self, config: Config) -> None:
        self.checker = config.checker
        self.kind = _KIND_INDEX.get(checker_kind(config.checker), 0)
        self.retries = config.retries
        self.interval_s = config.interval / 1e9
        self.timeout_s = self.schedule.timeout_for(config)

    def start(self, first_slot: float, rephase: float = 0.0) -> None:
        """Run first at ``first_slot``; the second slot comes one interval less
        ``rephase`` after it, and every later one an interval after the one before."""
        self.next_slot = first_slot
        self.rephase = rephase
        self.timer = self.schedule.reactor.call_at(first_slot, self._fire_cb)

    def stop(self) -> None:
        """Cancel the timer and any run in flight; the check never reports again."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.running = False
        # Break the check <-> bound-method cycles so refcounting frees a removed check.
        self._fire_cb = self._done_cb = _ignore

    def _fire(self) -> None:
        schedule = self.schedule
        stats = schedule.stats
        now = schedule.reactor.time()
        slot = self.next_slot
        interval = self.interval_s
        following = slot + interval
        if self.rephase:
            following -= self.rephase
            self.rephase = 0.0
        if following <= now:
            # Behind by whole intervals: skip them rather than run a burst.
            missed = int((now - slot) / interval)
            following = slot + (missed + 1) * interval
            if following <= now:
                following += interval
            stats.skipped_late += missed
        self.next_slot = following
        self.timer = schedule.reactor.call_at(following, self._fire_cb)
        if self.running:
            stats.skipped_busy += 1
            return
        late = now - slot
        stats.lateness[_bisect_left(LATENESS_BOUNDS, late)] += 1
        stats.lateness_sum += late
        if late > stats.max_lateness:
            stats.max_lateness = late
        self.start_time = now
        self.running = True
        if schedule.dry_run:
            duration = int((schedule.reactor.time() - now) * 1e9)
            self._finish(True, DRY_RUN_MESSAGE, duration)
            return
        task = schedule.reactor.spawn(
            schedule.run_check(self.checker, self.timeout_s), None, self._done_cb
        )
        # A run that completed inside spawn() has already cleared `running`.
        if self.running:
            self.task = task

    def _done(self, outcome: Any) -> None:
        self.task = None
        if isinstance(outcome, BaseException):
            # checkers.run never raises; this is a bug, kept as a failure with its text.
            duration = int((self.schedule.reactor.time() - self.start_time) * 1e9)
            self._finish(False, f"internal error: {outcome!r}", duration)
        else:
            self._finish(outcome.success, str(outcome), outcome.duration_ns)

    def _finish(self, success: bool, message: str, duration_ns: int) -> None:
        self.running = False
        schedule = self.schedule
        stats = schedule.stats
        stats.checks_run += 1
        kind = self.kind
        stats.results[2 * kind + (not success)] += 1
        seconds = duration_ns / 1e9
        stats.durations[_DURATION_BUCKETS * kind + _bisect_left(DURATION_BOUNDS, seconds)] += 1
        stats.duration_sums[kind] += seconds
        # LastCheck is when the check started, as Seesaw's `start := time.Now()`.
        changed = self.record(success, message, duration_ns, _time_ns() - duration_ns)
        if changed:
            stats.transitions += 1
        schedule.on_result(self, changed)
        if not self.ran_here:
            self.ran_here = True
            stats.ran_once += 1
            if stats.ran_once >= stats.checks and not stats.all_ran_at:
                stats.all_ran_at = schedule.reactor.time()


_DURATION_BUCKETS: Final = len(DURATION_BOUNDS) + 1


class Schedule:
    """Owns a worker's running checks; every method runs on the reactor thread."""

    def __init__(
        self,
        reactor: Reactor,
        *,
        run_check: RunCheck,
        timeout_for: TimeoutFor,
        on_result: OnResult,
        dry_run: bool = False,
        stats: Header | None = None,
    ) -> None:
        self.reactor = reactor
        self.run_check = run_check
        self.timeout_for = timeout_for
        self.on_result = on_result
        self.dry_run = dry_run
        self.stats = stats if stats is not None else Header()
        self.checks: dict[int, ScheduledCheck] = {}

    def add(
        self,
        adds: list[Add],
        requested_at: float | None = None,
    ) -> None:
        """Start checks: (slot, share, config, resume) each, ``share`` in [0, 1) its place
        in the first round of the fetch sent at ``requested_at`` (reactor clock; default
        now).

        The first runs fill what is left of the first interval after the fetch (less a
        margin for the runs themselves); from the second run on each keeps its even phase
        over the whole interval, counted from the fetch, so the steady load is flat.
        """
        checks = self.checks
        stats = self.stats
        start = self.reactor.time()
        if requested_at is None or requested_at > start:
            requested_at = start
        if adds and not stats.first_config_at:
            stats.first_config_at = requested_at
        for slot, share, config, resume in adds:
            old = checks.pop(config.id, None)
            if old is not None:  # a second add: the control process restarted it
                old.stop()
                self._forget(old)
            check = ScheduledCheck(self, config, slot, resume)
            checks[config.id] = check
            stats.checks += 1
            interval = check.interval_s
            window = max(requested_at + FIRST_ROUND_SHARE * interval - start, interval / 2)
            first = start + window * share
            check.start(first, rephase=first - (requested_at + interval * share))
        if stats.ran_once < stats.checks:
            stats.all_ran_at = 0.0

    def update(self, config: Config) -> None:
        """A running check's config changed: take it, keeping counters, state and phase."""
        check = self.checks.get(config.id)
        if check is None:
            return
        old_interval = check.interval_s
        check.configure(config)
        if check.interval_s != old_interval and check.timer is not None:
            # Keep the phase: the next slot is one new interval after the last one.
            last_slot = check.next_slot - old_interval
            check.timer.cancel()
            check.start(max(self.reactor.time(), last_slot + check.interval_s))

    def remove(self, check_id: int) -> None:
        check = self.checks.pop(check_id, None)
        if check is not None:
            check.stop()
            self._forget(check)

    def _forget(self, check: ScheduledCheck) -> None:
        stats = self.stats
        stats.checks -= 1
        if check.ran_here:
            stats.ran_once -= 1

    def stop_all(self) -> None:
        for check in self.checks.values():
            check.stop()
