"""The manager: runs every check on the reactor thread.

It diffs each fetched config set against the running checks (remove, add, update in
place), schedules each check on monotonic deadlines through the reactor's timer heap (one
timer per check), applies results through Seesaw's state machine, and queues a
notification on every state change and for every check each notify interval.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from seesaw_healthcheck.goduration import format_duration
from seesaw_healthcheck.model import (
    CHECKER_TYPES,
    Config,
    Mode,
    State,
    Status,
    ip_from_bytes,
)
from seesaw_healthcheck.server.check import DRY_RUN_MESSAGE, Check
from seesaw_healthcheck.server.notifier import CoalescingQueue

log = logging.getLogger(__name__)

SECOND = 1_000_000_000
# Past these a config is a mistake, not a plan (and would overflow timer arithmetic).
MAX_INTERVAL_NS = 7 * 24 * 3600 * SECOND
MAX_TIMEOUT_NS = 24 * 3600 * SECOND
MAX_RETRIES = 2**31 - 1

# New checks all run once within this share of their interval after the fetch: the rest
# is room for the first round's extra work (a transition per check) on a busy machine.
# Measured, 10,000 checks at 1 s: all had run 0.90-0.91 s after the fetch (0.95: 1.00-1.01).
FIRST_ROUND_SHARE = 0.9

# Full re-notification is chunked so the reactor keeps running checks in between.
NOTIFY_CHUNK = 1000

# Lateness histogram bucket upper bounds, seconds: 1 µs to ~100 s in steps of ~12%.
LATENESS_BOUNDS: tuple[float, ...] = tuple(1e-6 * 1.122**k for k in range(164))


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class TaskHandle(Protocol):
    def cancel(self) -> None: ...


class ReactorLike(Protocol):
    """What the manager needs of ``seesaw_healthcheck.reactor.Reactor``."""

    def time(self) -> float: ...

    def call_at(self, when: float, cb: Callable[[], Any]) -> TimerHandle: ...

    def call_later(self, delay: float, cb: Callable[[], Any]) -> TimerHandle: ...

    def spawn(
        self,
        coro: Coroutine[Any, Any, Any],
        deadline: float | None = None,
        on_done: Callable[[Any], Any] | None = None,
    ) -> TaskHandle: ...


class CheckResult(Protocol):
    success: bool
    duration_ns: int


RunCheck = Callable[[Any, float], Coroutine[Any, Any, Any]]
TimeoutFor = Callable[[Config], float]


def config_problem(config: Config | None) -> str | None:
    """Why this config cannot run, or None when it can."""
    if config is None:
        return "no config (nil)"
    checker = config.checker
    if checker is None:
        return "no checker (nil)"
    if not isinstance(checker, CHECKER_TYPES):
        name = getattr(checker, "name", None) or type(checker).__name__
        return f"unknown checker type {name!r}"
    if not 0 < config.interval <= MAX_INTERVAL_NS:
        return (
            f"interval {_duration(config.interval)} is out of range "
            f"(0s, {_duration(MAX_INTERVAL_NS)}]"
        )
    if not 0 <= config.timeout <= MAX_TIMEOUT_NS:
        return (
            f"timeout {_duration(config.timeout)} is out of range "
            f"[0s, {_duration(MAX_TIMEOUT_NS)}]"
        )
    if not 0 <= config.retries <= MAX_RETRIES:
        return f"retries {config.retries} is out of range [0, {MAX_RETRIES}]"
    target = checker.target
    try:
        ip_from_bytes(target.ip)
    except ValueError as err:
        return f"target: {err}"
    if not 0 <= target.port <= 65535:
        return f"target port {target.port} is out of range [0, 65535]"
    if not 0 <= target.mark <= 0xFFFFFFFF:
        return f"target mark {target.mark} is out of range [0, 2^32)"
    if target.mode not in (Mode.PLAIN, Mode.DSR, Mode.TUN):
        return f"target mode {target.mode} is unknown"
    if target.mode != Mode.PLAIN:
        try:
            ip_from_bytes(target.host)
        except ValueError as err:
            return f"target host (needed in {Mode(target.mode)} mode): {err}"
    return None


def _duration(ns: int) -> str:
    """Go's Duration.String(), or the raw number past int64 (Go could not send it)."""
    try:
        return format_duration(ns)
    except (ValueError, OverflowError):
        return f"{ns}ns"


class Stats:
    """Cheap counters for observability and the benchmark."""

    __slots__ = (
        "all_ran_at",
        "checks",
        "checks_run",
        "first_config_at",
        "lateness",
        "max_lateness",
        "ran_once",
        "runnable",
        "skipped_busy",
        "skipped_late",
        "transitions",
    )

    def __init__(self) -> None:
        self.checks = 0
        self.runnable = 0
        self.ran_once = 0
        self.checks_run = 0
        self.transitions = 0
        self.skipped_busy = 0  # slots skipped because the previous run was still going
        self.skipped_late = 0  # slots skipped because the reactor was behind
        self.lateness = [0] * (len(LATENESS_BOUNDS) + 1)
        self.max_lateness = 0.0
        self.first_config_at = 0.0  # reactor time the first non-empty config arrived
        self.all_ran_at = 0.0  # reactor time every runnable check had run at least once

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "now": now,
            "checks": self.checks,
            "runnable": self.runnable,
            "ran_once": self.ran_once,
            "checks_run": self.checks_run,
            "transitions": self.transitions,
            "skipped_busy": self.skipped_busy,
            "skipped_late": self.skipped_late,
            "max_lateness_s": self.max_lateness,
            "first_config_at": self.first_config_at,
            "all_ran_at": self.all_ran_at,
            "all_ran_after_s": (
                self.all_ran_at - self.first_config_at if self.all_ran_at else None
            ),
            "lateness_bounds_s": list(LATENESS_BOUNDS),
            "lateness_counts": list(self.lateness),
        }


def percentile(bounds: tuple[float, ...], counts: list[int], q: float) -> float:
    """Upper bound of the histogram bucket holding quantile q (0..1); inf past the end."""
    total = sum(counts)
    if not total:
        return math.nan
    rank = q * total
    seen = 0
    for k, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return bounds[k] if k < len(bounds) else math.inf
    return math.inf


def _ignore(*_: object) -> None:
    pass


class ScheduledCheck(Check):
    """A Check with its schedule: one reactor timer, at most one run in flight."""

    __slots__ = (
        "_done_cb",
        "_fire_cb",
        "checker",
        "interval_s",
        "manager",
        "next_slot",
        "problem",
        "rephase",
        "running",
        "start_time",
        "task",
        "timeout_s",
        "timer",
    )

    def __init__(self, check_id: int, config: Config, manager: Manager) -> None:
        super().__init__(check_id, config)
        self.manager = manager
        self.checker: Any = config.checker
        self.interval_s = config.interval / 1e9
        self.timeout_s = 0.0
        self.problem: str | None = "not configured yet"
        self.next_slot = 0.0
        self.rephase = 0.0  # taken off the second slot once: from the first round's phase
        self.timer: TimerHandle | None = None
        self.task: TaskHandle | None = None
        self.running = False
        self.start_time = 0.0
        self._fire_cb: Callable[[], None] = self._fire
        self._done_cb: Callable[[Any], None] = self._done

    def describe(self) -> str:
        if self.checker is None:
            return f"not running: {self.problem}"
        return self.manager.describe(self.checker)

    def schedule(self, first_slot: float, rephase: float = 0.0) -> None:
        """Run first at ``first_slot``; the second slot comes one interval less
        ``rephase`` after it, and every later one an interval after the one before."""
        self._fire_cb = self._fire
        self._done_cb = self._done
        self.next_slot = first_slot
        self.rephase = rephase
        self.timer = self.manager.reactor.call_at(first_slot, self._fire_cb)

    def stop(self) -> None:
        """Cancel the timer and any run in flight; the check never reports again."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.running = False
        # Break the check <-> bound-method cycles so refcounting frees a removed check
        # even after gc.freeze() has moved it out of the collector's reach.
        self._fire_cb = self._done_cb = _ignore

    def _fire(self) -> None:
        manager = self.manager
        stats = manager.stats
        now = manager.reactor.time()
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
        self.timer = manager.reactor.call_at(following, self._fire_cb)
        if self.running:
            stats.skipped_busy += 1
            return
        late = now - slot
        stats.lateness[bisect.bisect_left(LATENESS_BOUNDS, late)] += 1
        if late > stats.max_lateness:
            stats.max_lateness = late
        self.start_time = now
        self.running = True
        if manager.dry_run:
            self._finish(True, DRY_RUN_MESSAGE, int((manager.reactor.time() - now) * 1e9))
            return
        task = manager.reactor.spawn(
            manager.run_check(self.checker, self.timeout_s), None, self._done_cb
        )
        # A run that completed inside spawn() has already cleared `running`.
        if self.running:
            self.task = task

    def _done(self, outcome: Any) -> None:
        self.task = None
        if isinstance(outcome, BaseException):
            # checkers.run never raises; this is a bug, kept as a failure with its text.
            duration = int((self.manager.reactor.time() - self.start_time) * 1e9)
            self._finish(False, f"internal error: {outcome!r}", duration)
        else:
            self._finish(outcome.success, str(outcome), outcome.duration_ns)

    def _finish(self, success: bool, message: str, duration_ns: int) -> None:
        self.running = False
        manager = self.manager
        stats = manager.stats
        stats.checks_run += 1
        first_run = not self.last_start_unix_ns
        # LastCheck is when the check started, as Seesaw's `start := time.Now()`.
        start_ns = time.time_ns() - duration_ns
        previous = self.state
        if self.record(success, message, duration_ns, start_ns):
            manager.transition(self, previous)
        elif manager.debug:
            log.debug(
                "%d: (%s) %s: %s",
                self.id,
                self.describe(),
                "SUCCESS" if success else "FAILURE",
                message,
            )
        if first_run:
            stats.ran_once += 1
            if stats.ran_once >= stats.runnable and not stats.all_ran_at:
                stats.all_ran_at = manager.reactor.time()


class Manager:
    """Owns the running checks; every method runs on the reactor thread."""

    def __init__(
        self,
        reactor: ReactorLike,
        queue: CoalescingQueue,
        *,
        run_check: RunCheck,
        timeout_for: TimeoutFor,
        describe: Callable[[Any], str] = str,
        dry_run: bool = False,
        notify_interval_s: float = 15.0,
    ) -> None:
        self.reactor = reactor
        self.queue = queue
        self.run_check = run_check
        self.timeout_for = timeout_for
        self.describe = describe
        self.dry_run = dry_run
        self.notify_interval_s = notify_interval_s
        self.checks: dict[int, ScheduledCheck] = {}
        self.stats = Stats()
        self.debug = log.isEnabledFor(logging.DEBUG)
        self._logged_problems: dict[int, str] = {}
        self._notify_timer: TimerHandle | None = None
        self._next_notify = 0.0

    # -- configs ----------------------------------------------------------------------

    def apply(
        self, configs: Mapping[int, Config | None] | None, requested_at: float | None = None
    ) -> int:
        """Make the running checks match ``configs`` (None or empty: stop them all).

        ``requested_at`` is when the fetch that brought them was sent (reactor clock; default
        now): new checks all run once within one interval of it. Returns how many checks
        were added.
        """
        configs = configs or {}
        checks = self.checks
        stats = self.stats
        now = self.reactor.time()
        if requested_at is None or requested_at > now:
            requested_at = now
        if configs and not stats.first_config_at:
            stats.first_config_at = requested_at
        self.debug = log.isEnabledFor(logging.DEBUG)

        removed = [check_id for check_id in checks if check_id not in configs]
        for check_id in removed:
            gone = checks.pop(check_id)
            gone.stop()
            self._forget(gone)
            log.info("Stopping healthchecker for %d (%s)", check_id, gone.describe())
        for check_id in removed:
            self._logged_problems.pop(check_id, None)
        if removed:
            self.queue.discard(removed)

        added: list[ScheduledCheck] = []
        for check_id, maybe_config in configs.items():
            # A nil *Config in the map runs nothing, like a nil checker.
            config = maybe_config if maybe_config is not None else Config(id=check_id)
            check = checks.get(check_id)
            if check is None:
                check = ScheduledCheck(check_id, config, self)
                checks[check_id] = check
                stats.checks += 1
                if self._configure(check, config):
                    added.append(check)
            elif check.config is not config and check.config != config:
                self._update(check, config, now)

        # New checks start evenly spread (no thundering herd) and every one has run once
        # within an interval of the fetch: the first runs fill what is left of that interval
        # after the fetch and this diff (less a margin for the runs themselves). From the
        # second run on, each keeps its even phase over the whole interval, counted from
        # the fetch, so the steady load is flat, not squeezed like the first round.
        for check in added:
            log.info("Starting healthchecker for %d (%s)", check.id, check.describe())
        count = len(added)
        start = self.reactor.time()  # after the logging: 10,000 lines take ~0.1 s
        for index, check in enumerate(added):
            interval = check.interval_s
            share = index / count
            window = max(requested_at + FIRST_ROUND_SHARE * interval - start, interval / 2)
            first = start + window * share
            check.schedule(first, rephase=first - (requested_at + interval * share))
        if stats.runnable and stats.ran_once < stats.runnable:
            stats.all_ran_at = 0.0
        return len(added)

    def _configure(self, check: ScheduledCheck, config: Config) -> bool:
        """Take ``config``; True when it can run (the caller schedules it)."""
        check.config = config
        problem = config_problem(config)
        was_runnable = check.problem is None
        if was_runnable != (problem is None):
            # Keep "runnable" and "ran once" counting only checks that can run.
            step = -1 if was_runnable else 1
            self.stats.runnable += step
            if check.last_start_unix_ns:
                self.stats.ran_once += step
        check.problem = problem
        if problem is not None:
            check.checker = None
            if self._logged_problems.get(check.id) != problem:
                self._logged_problems[check.id] = problem
                log.error("Healthcheck %d has a bad config, not running it: %s", check.id, problem)
            return False
        self._logged_problems.pop(check.id, None)
        check.checker = config.checker
        check.retries = config.retries
        check.interval_s = config.interval / 1e9
        check.timeout_s = self.timeout_for(config)
        return True

    def _update(self, check: ScheduledCheck, config: Config, now: float) -> None:
        was_scheduled = check.timer is not None
        old_interval = check.interval_s
        if not self._configure(check, config):
            check.stop()
            return
        if not was_scheduled:
            # It had a bad config before: start it like a new one.
            check.schedule(now)
            return
        if check.interval_s != old_interval:
            # Keep the phase: the next slot is one new interval after the last one.
            last_slot = check.next_slot - old_interval
            if check.timer is not None:
                check.timer.cancel()
            check.schedule(max(now, last_slot + check.interval_s))

    def _forget(self, check: ScheduledCheck) -> None:
        stats = self.stats
        stats.checks -= 1
        if check.problem is None:
            stats.runnable -= 1
            if check.last_start_unix_ns:
                stats.ran_once -= 1

    # -- notifications ----------------------------------------------------------------

    def transition(self, check: ScheduledCheck, previous: int) -> None:
        self.stats.transitions += 1
        log.info(
            "%d: (%s) %s -> %s: %s",
            check.id,
            check.describe(),
            State(previous),
            State(check.state),
            check.last_message,
        )
        self.queue.put(check.id, check.status())

    def start_notify_timer(self, first_after_s: float | None = None) -> None:
        """Re-notify every check every notify interval, the first after ``first_after_s``
        (default: one interval)."""
        if self._notify_timer is not None:
            self._notify_timer.cancel()
        delay = self.notify_interval_s if first_after_s is None else first_after_s
        self._next_notify = self.reactor.time() + delay
        self._notify_timer = self.reactor.call_at(self._next_notify, self._notify_all)

    @property
    def notifying(self) -> bool:
        return self._notify_timer is not None

    def _notify_all(self) -> None:
        self._next_notify += self.notify_interval_s
        now = self.reactor.time()
        if self._next_notify <= now:
            self._next_notify = now + self.notify_interval_s
        self._notify_timer = self.reactor.call_at(self._next_notify, self._notify_all)
        self.notify_chunk(list(self.checks))

    def notify_chunk(self, ids: list[int]) -> None:
        """Queue the Status of ``ids`` (of those still present), a chunk at a time."""
        chunk, rest = ids[:NOTIFY_CHUNK], ids[NOTIFY_CHUNK:]
        checks = self.checks
        items: list[tuple[int, Status]] = []
        for check_id in chunk:
            check = checks.get(check_id)
            if check is not None:
                items.append((check_id, check.status()))
        self.queue.put_many(items)
        if rest:
            self.reactor.call_later(0.0, lambda: self.notify_chunk(rest))

    def stop_all(self) -> None:
        for check in self.checks.values():
            check.stop()
        if self._notify_timer is not None:
            self._notify_timer.cancel()
            self._notify_timer = None
