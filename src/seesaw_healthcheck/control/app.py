"""The control process: engine talk, the table of every check, the check workers.

One reactor on the main thread runs the updater (fetch, decode, diff), the notifier (batch
and send), the periodic re-notify, the workers' channels and the stats file. Checks run
only in the workers (``seesaw_healthcheck.worker``), so nothing here, however long it
takes (decoding a 100,000-config fetch, re-notifying every check), delays a check.

Checks are sharded over the workers by id. A worker that dies is restarted at once (then
after a growing pause if it keeps dying) and given its checks again with the state the
table holds, so the engine sees neither an Unknown nor a transition that did not happen.

Stats: with ``stats_file`` the server rewrites that file (atomically) every second with
one JSON object: the workers' counters summed (checks_run, transitions, ran_once, skipped
slots, the lateness histogram of actual start against the scheduled slot), the table's
(checks, runnable), first_config_at / all_ran_at on the reactor's clock and
all_ran_after_s, the notifier's (batches_sent, notifications_sent, send_failures,
pending, coalesced), the updater's (fetches, fetch_failures) and the workers' pids.
``benchmarks/server_bench.py`` reads it.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import resource
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

from seesaw_healthcheck import build_info, checkers
from seesaw_healthcheck.channel import APPLIED, LATENESS_BOUNDS, LOG, REPORTS, Add, Header
from seesaw_healthcheck.checkfile import Reader
from seesaw_healthcheck.control.config import ServerConfig
from seesaw_healthcheck.control.endpoints import Endpoints
from seesaw_healthcheck.control.grpcserver import GrpcServer, WatchHub
from seesaw_healthcheck.control.http import HttpServer, parse_address
from seesaw_healthcheck.control.notifier import Notifier, Sender, engine_sender
from seesaw_healthcheck.control.outage import Outage
from seesaw_healthcheck.control.systemd import SystemdNotifier
from seesaw_healthcheck.control.table import Entry, Table, TableReuse, make_status
from seesaw_healthcheck.control.updater import (
    Configs,
    Fetcher,
    Updater,
    engine_fetcher,
    file_fetcher,
)
from seesaw_healthcheck.control.workers import Launcher, WorkerProcess, spawn_worker, worker_for
from seesaw_healthcheck.memory import SHRINK_RELEASE, release
from seesaw_healthcheck.model import Config, State, Status, config_problem
from seesaw_healthcheck.reactor import Clock, Reactor, Task, sleep

__all__ = ["Control", "raise_nofile_limit", "run"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# A worker that ran at least this many checks is recycled when they fall to a quarter.
RECYCLE_PEAK = 10_000
# A checks file is looked at this often (and read again when it changed).
FILE_POLL_S = 1.0
# How long the gRPC API waits for the control loop to answer.
CALL_TIMEOUT_S = 30.0
# /healthz fails when a worker's heartbeat (rewritten every 0.25 s) is older than this.
LIVENESS_S = 1.0
# ... and a worker that has not beaten yet is starting for this long, then stalled.
STARTING_S = 10.0
# Full re-notification is chunked so the control loop keeps reading reports in between.
NOTIFY_CHUNK = 1000
# A dead worker is restarted at once; one that dies again this soon after starting is
# restarted after a pause that doubles each time, up to RESTART_MAX_PAUSE_S.
RESTART_STABLE_S = 10.0
RESTART_MAX_PAUSE_S = 30.0


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each check in flight holds an fd;
    the workers inherit the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as err:
            log.warning("Could not raise RLIMIT_NOFILE from %d to %d: %s", soft, hard, err)
    return soft


class Control:
    """One server: build it, then ``run()`` it until ``stop()``.

    ``fetch`` and ``send`` default to the engine's net/rpc calls, ``clock`` to the system's,
    ``launch`` to starting each worker as a process of its own.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        workers: int = 1,
        stats_file: str | None = None,
        clock: Clock | None = None,
        fetch: Fetcher | None = None,
        send: Sender | None = None,
        launch: Launcher = spawn_worker,
    ) -> None:
        config.validate()
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.config = config
        self.stats_file = stats_file
        self.reactor = Reactor(clock)
        self.table = Table()
        self.reuse = TableReuse(self.table)  # the engine's unchanged configs keep objects
        self.source = config.source
        # The engine hears of states only when the checks come from it.
        self.to_engine = self.source == "engine"
        self.hub = WatchHub()  # the gRPC API's watchers
        self.outage = Outage(
            self.reactor.time,
            lambda: len(self.notifier.queue),
            what="engine" if self.to_engine else "checks file",
        )
        self.notifier = Notifier(
            self.reactor,
            config,
            send if send is not None else engine_sender(config.engine_socket),
            self.outage,
            live=self.table.__contains__,
        )
        self.updater: Updater | None = None
        self.reader: Reader | None = None  # the checks file (file source)
        if self.source == "engine":
            self.updater = Updater(
                self.reactor,
                fetch if fetch is not None else engine_fetcher(config.engine_socket, self.reuse),
                self.apply,
                config.fetch_interval / 1e9,
                self.outage,
            )
        elif self.source == "file":
            path = config.checks_file
            self.reader = Reader(path)
            self.updater = Updater(
                self.reactor,
                fetch if fetch is not None else file_fetcher(self.reader),
                self.apply,
                FILE_POLL_S,
                self.outage,
                retry_s=FILE_POLL_S,
                name=f"reading {path}",
                what=path,
            )
        self.grpc: GrpcServer | None = None
        self.last_applied_wall = 0.0  # time.time() a set of checks was last applied
        log_level = logging.getLogger().getEffectiveLevel()
        self.workers = [
            WorkerProcess(
                self.reactor,
                index,
                on_message=self._on_message,
                on_exit=self._on_exit,
                dry_run=config.dry_run,
                log_level=log_level,
                launch=launch,
            )
            for index in range(workers)
        ]
        self.notify_interval_s = config.notify_interval / 1e9
        # How often checks are fetched (a file is polled every second; gRPC pushes them).
        self.fetch_interval_s = (
            FILE_POLL_S if self.source == "file" else config.fetch_interval / 1e9
        )
        self._logged_problems: dict[int, str] = {}
        self._notifying = False
        self._next_notify = 0.0
        self._quick_deaths: dict[int, int] = {}  # worker -> deaths soon after a start
        self._pending_seq: dict[int, int] = {}  # worker -> seq that completes the delta
        self.first_config_at = 0.0  # reactor clock: the first fetch with checks was sent
        self.first_answered_at = 0.0  # reactor clock: the first set of checks arrived
        self.first_applied_at = 0.0  # ... every worker had taken its checks
        self.failed: str | None = None  # why run() stopped by itself, if it did
        self._tasks: list[Task] = []
        self.started_ns = time.time_ns()
        self.http: HttpServer | None = None
        self.systemd = SystemdNotifier()

    # -- configs ------------------------------------------------------------------------

    def apply(self, configs: Configs, requested_at: float | None = None) -> None:
        """Make the checks match ``configs`` (None or empty: stop them all), fetched at
        ``requested_at`` (reactor clock; default now): new checks all run once within one
        interval of it."""
        configs = configs or {}
        now = self.reactor.time()
        if requested_at is None or requested_at > now:
            requested_at = now
        table = self.table
        count = len(self.workers)
        adds: list[list[tuple[Entry, Config]]] = [[] for _ in range(count)]
        updates: list[list[Config]] = [[] for _ in range(count)]
        removes: list[list[int]] = [[] for _ in range(count)]

        gone = [check_id for check_id in table.entries if check_id not in configs]
        for check_id in gone:
            removed = table.pop(check_id)
            if removed.running:
                removes[removed.worker].append(check_id)
            self.workers[removed.worker].free_slot(removed.slot)
            self._logged_problems.pop(check_id, None)
            log.info("Stopping healthchecker for %d (%s)", check_id, _describe(removed))
        if gone:
            self.notifier.queue.discard(gone)
            self.hub.discard(gone)
        if len(gone) >= SHRINK_RELEASE:
            self.reactor.call_later(0.0, self._give_back_memory)  # after this apply's garbage

        fresh = self.reuse.fresh
        for check_id, maybe_config in configs.items():
            # A nil *Config in the map runs nothing, like a nil checker.
            config = maybe_config if maybe_config is not None else Config(id=check_id)
            entry = table.get(check_id)
            if entry is not None and entry.config is config:
                continue  # taken over unchanged from the last fetch's decode
            raw = fresh.get(check_id, b"") if fresh else b""
            if entry is None:
                index = worker_for(check_id, count)
                worker = self.workers[index]
                entry = Entry(check_id, config, index, worker.shared)
                entry.raw = raw
                entry.slot = worker.alloc_slot()
                table.add(entry)
                if self._configure(entry, config):
                    adds[index].append((entry, config))
                    log.info("Starting healthchecker for %d (%s)", check_id, _describe(entry))
            elif entry.config == config:
                if raw:  # decoded again (other type ids): its bytes of this stream
                    entry.raw = raw
            else:
                entry.raw = raw
                was_running = entry.running
                table.set_config(entry, config)
                if self._configure(entry, config):
                    if was_running:
                        updates[entry.worker].append(config)
                    else:  # it had a bad config before: start it as it was
                        adds[entry.worker].append((entry, config))
                elif was_running:
                    removes[entry.worker].append(check_id)

        fresh.clear()
        self.last_applied_wall = time.time()
        if not self.first_answered_at:  # the first set, even an empty one: ready then
            self.first_answered_at = now
        if configs and not self.first_config_at:
            self.first_config_at = requested_at
        for index, worker in enumerate(self.workers):
            if adds[index] or updates[index] or removes[index]:
                self._send(worker, adds[index], updates[index], removes[index], requested_at)
        self._check_first_applied()
        self._recycle_shrunk_workers()
        if not self._notifying:
            # Half an interval out of phase with the fetches: a full re-notify (encoding
            # every Status) and a fetch (decoding every Config) are each this process's
            # largest bursts of work.
            self._notifying = True
            self._next_notify = self.reactor.time() + self.notify_interval_s / 2
            self.reactor.call_at(self._next_notify, self._notify_all)

    def _recycle_shrunk_workers(self) -> None:
        """A worker whose checks fell to a quarter of its peak (of at least RECYCLE_PEAK)
        is started afresh: Python keeps the memory of freed objects in its own pools, a
        new process starts small. Its checks resume from the table, as after a crash."""
        running = [0] * len(self.workers)
        for entry in self.table:
            if entry.running:
                running[entry.worker] += 1
        for worker, count in zip(self.workers, running, strict=True):
            worker.peak_checks = max(worker.peak_checks, count)
            if worker.recycling:
                continue  # asked already: it stops once it has taken what was queued
            if worker.peak_checks >= RECYCLE_PEAK and count * 4 <= worker.peak_checks:
                log.info(
                    "Check worker %d went from %d checks to %d: recycling it",
                    worker.index, worker.peak_checks, count,
                )  # fmt: skip
                worker.recycle()

    def _give_back_memory(self) -> None:
        """After a big shrink: the per-check collections sized to what is left, the slots
        above the highest in use given back, then the free heap (``memory.release``)."""
        self.table.compact()
        self._logged_problems = dict(self._logged_problems)
        for index, worker in enumerate(self.workers):
            worker.trim_slots(e.slot for e in self.table if e.worker == index and e.slot >= 0)
        release()

    def _configure(self, entry: Entry, config: Config) -> bool:
        """True when ``config`` can run (then it is marked running; the caller sends it)."""
        problem = config_problem(config)
        self.table.set_problem(entry, problem)
        if problem is not None:
            entry.running = False
            if self._logged_problems.get(entry.id) != problem:
                self._logged_problems[entry.id] = problem
                log.error("Healthcheck %d has a bad config, not running it: %s", entry.id, problem)
            return False
        self._logged_problems.pop(entry.id, None)
        entry.running = True
        return True

    def _send(
        self,
        worker: WorkerProcess,
        adds: list[tuple[Entry, Config]],
        updates: list[Config],
        removes: list[int],
        requested_at: float,
    ) -> None:
        # Each new check's place in the first round: spread evenly over the whole delta.
        total = len(adds)
        items: list[Add] = [
            (entry.slot, index / total, config, entry.resume() if entry.since_ns else None)
            for index, (entry, config) in enumerate(adds)
        ]
        self._pending_seq[worker.index] = worker.apply(items, updates, removes, requested_at)

    # -- from the workers ---------------------------------------------------------------

    def _on_message(self, worker: WorkerProcess, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == REPORTS:
            self._reports(worker, message[1])
        elif kind == APPLIED:
            worker.applied = message[1]
            self._check_first_applied()
        elif kind == LOG:
            _, levelno, name, text = message
            logging.getLogger(name).log(levelno, "%s", text)
        else:
            log.error("unknown message from check worker %d: %r", worker.index, message[:1])

    def _reports(self, worker: WorkerProcess, reports: list[tuple[Any, ...]]) -> None:
        table = self.table
        notify: list[tuple[int, Status]] = []
        index = worker.index
        for check_id, state, message, start, duration, failures, successes, changed in reports:
            entry = table.get(check_id)
            if entry is None or entry.worker != index or not entry.running:
                continue  # removed or stopped meanwhile: it never reports again
            table.set_message(entry, message)
            if not changed:
                continue
            previous = entry.state
            table.transition(entry, state, time.time_ns())
            log.info(
                "%d: (%s) %s -> %s: %s",
                check_id,
                _describe(entry),
                State(previous),
                State(state),
                message,
            )
            notify.append(
                (check_id, make_status(state, message, start, duration, failures, successes))
            )
        if notify:
            self._publish(notify)

    def _publish(self, items: list[tuple[int, Status]]) -> None:
        """To the engine (when checks come from it) and to every gRPC watcher."""
        if self.to_engine:
            self.notifier.queue.put_many(items)
        if len(self.hub):
            self.hub.changed(items)

    def _check_first_applied(self) -> None:
        if (
            self.first_answered_at
            and not self.first_applied_at
            and all(
                worker.applied >= self._pending_seq.get(worker.index, 0) for worker in self.workers
            )
        ):
            self.first_applied_at = self.reactor.time()
            self.systemd.notify("READY=1", f"STATUS={self.status_line()}")

    def _on_exit(self, worker: WorkerProcess, why: str) -> None:
        if worker.stopping:
            return
        if worker.recycling:
            log.info(
                "Check worker %d (pid %s) recycled; starting it afresh", worker.index, worker.pid
            )
            self._restart(worker)
            return
        lived = self.reactor.time() - worker.started_at
        quick = self._quick_deaths.get(worker.index, 0) + 1 if lived < RESTART_STABLE_S else 0
        self._quick_deaths[worker.index] = quick
        # At once, unless it keeps dying right after starting: then a growing pause.
        pause = 0.0 if quick <= 1 else min(RESTART_MAX_PAUSE_S, 0.5 * 2 ** (quick - 2))
        running = sum(1 for e in self.table if e.worker == worker.index and e.running)
        log.error(
            "Check worker %d (pid %s) %s after %.1fs; restarting it%s (%d checks)",
            worker.index,
            worker.pid,
            why,
            lived,
            f" in {pause:g}s" if pause else "",
            running,
        )
        self.reactor.call_later(pause, lambda: self._restart(worker))

    def _restart(self, worker: WorkerProcess) -> None:
        if worker.alive or worker.stopping:
            return
        self._pack_slots(worker)
        try:
            worker.start()
        except OSError as err:
            log.error("Could not start check worker %d: %s", worker.index, err)
            self._on_exit(worker, f"could not start: {err}")
            return
        adds = [(e, e.config) for e in self.table if e.worker == worker.index and e.running]
        self._send(worker, adds, [], [], self.reactor.time())

    def _pack_slots(self, worker: WorkerProcess) -> None:
        """Before a worker's next process: its checks' slots packed at the table's start."""
        entries = sorted(
            (e for e in self.table if e.worker == worker.index and e.slot >= 0),
            key=lambda e: e.slot,
        )
        if entries and entries[-1].slot < len(entries) * 2:
            return  # packed enough
        for entry, slot in zip(entries, worker.pack_slots([e.slot for e in entries]), strict=True):
            entry.slot = slot
        self.table.version += 1  # readers that map slots to checks must map them again

    # -- periodic re-notify --------------------------------------------------------------

    def _notify_all(self) -> None:
        self._next_notify += self.notify_interval_s
        now = self.reactor.time()
        if self._next_notify <= now:
            self._next_notify = now + self.notify_interval_s
        self.reactor.call_at(self._next_notify, self._notify_all)
        self.hub.full()  # each watcher takes the full set itself
        if self.to_engine:
            self._notify_chunk(list(self.table.entries))

    def _notify_chunk(self, ids: list[int]) -> None:
        """Queue the Status of ``ids`` (of those still present), a chunk at a time."""
        chunk, rest = ids[:NOTIFY_CHUNK], ids[NOTIFY_CHUNK:]
        get = self.table.get
        items: list[tuple[int, Status]] = []
        for check_id in chunk:
            entry = get(check_id)
            if entry is not None:
                items.append((check_id, entry.status()))
        self.notifier.queue.put_many(items)
        if rest:
            self.reactor.call_later(0.0, lambda: self._notify_chunk(rest))

    # -- running ------------------------------------------------------------------------

    # -- health -----------------------------------------------------------------------

    def liveness(self) -> tuple[bool, str]:
        """Whether every worker's loop turned within the last second (and why not)."""
        now = self.reactor.time()
        for worker in self.workers:
            if not worker.alive:
                return False, f"check worker {worker.index} is not running (restarting)"
            beat = worker.shared.header().heartbeat
            if beat < worker.started_at:
                if now - worker.started_at < STARTING_S:
                    return False, f"check worker {worker.index} (pid {worker.pid}) is starting"
                beat = worker.started_at
            age = now - beat
            if age > LIVENESS_S:
                return (
                    False,
                    f"check worker {worker.index} (pid {worker.pid}) stalled for {age:.1f}s",
                )
        return True, f"ok: {len(self.workers)} check workers turning"

    def readiness(self) -> tuple[bool, str]:
        """Whether the first fetch is applied and the engine answered lately."""
        if not self.first_applied_at:
            return False, "the first set of checks has not been applied yet"
        if self.updater is None:  # SetChecks: ready once a set was applied
            return True, f"ok: {len(self.table)} checks"
        since = self.reactor.time() - self.updater.last_success_at
        limit = 3 * max(self.config.fetch_interval / 1e9, FILE_POLL_S)
        if since > limit:
            return False, f"the {self.updater.what} has not answered for {since:.0f}s"
        return True, f"ok: {len(self.table)} checks"

    def status_line(self) -> str:
        counts = {State.HEALTHY: 0, State.UNHEALTHY: 0, State.UNKNOWN: 0}
        for (_, state), count in self.table.counts.items():
            counts[State(state)] += count
        return (
            f"{len(self.table)} checks: {counts[State.HEALTHY]} healthy, "
            f"{counts[State.UNHEALTHY]} unhealthy, {counts[State.UNKNOWN]} unknown"
        )

    def _watchdog(self) -> None:
        assert self.systemd.watchdog_s
        self.reactor.call_later(self.systemd.watchdog_s / 2, self._watchdog)
        ok, reason = self.liveness()
        if ok:  # no ping while a loop is stuck: systemd then restarts the service
            self.systemd.notify("WATCHDOG=1", f"STATUS={self.status_line()}")
        else:
            self.systemd.notify(f"STATUS=unhealthy: {reason}")

    def start(self) -> None:
        """Start the workers and the tasks (``run`` does it; tests run in steps)."""
        if self._tasks:
            return
        reactor = self.reactor

        def spawn(name: str, coro: Any) -> None:
            def done(outcome: Any) -> None:
                # These loop forever: ending at all is a bug. Stop (run() then exits 1, and
                # the watchdog restarts us) rather than check on with stale configs or
                # notifications that never go out.
                self.failed = f"the {name} task ended: {outcome!r}"
                log.error("Stopping: %s", self.failed)
                reactor.stop()

            self._tasks.append(reactor.spawn(coro, None, done))

        for worker in self.workers:
            worker.start()
        if self.config.http_addr:
            try:
                self.http = HttpServer(
                    reactor, parse_address(self.config.http_addr), Endpoints(self)
                )
                log.info("Serving status, metrics and probes on http://%s", self.config.http_addr)
            except (OSError, ValueError) as err:
                # The checks matter more than the status page: run on without it.
                log.error("Not serving -http_addr %s: %s", self.config.http_addr, err)
        if self.systemd.enabled and self.systemd.watchdog_s:
            reactor.call_later(self.systemd.watchdog_s / 2, self._watchdog)
        if self.config.grpc_listen:
            config = self.config
            try:
                self.grpc = GrpcServer(
                    self,
                    config.grpc_listen,
                    cert=config.grpc_cert,
                    key=config.grpc_key,
                    client_ca=config.grpc_client_ca,
                )
                log.info("Serving the gRPC API on %s", config.grpc_listen)
            except (OSError, ValueError, RuntimeError) as err:
                if self.source == "grpc":  # nothing to check without it
                    raise
                log.error("Not serving -grpc_listen %s: %s", config.grpc_listen, err)
            else:
                reactor.call_later(0.0, self._grpc_health)
        if self.updater is not None:
            spawn("updater", self.updater.run())
        if self.to_engine:
            spawn("notifier", self.notifier.run())
        if self.stats_file:
            spawn("stats", self._write_stats(self.stats_file))

    def run(self) -> None:
        """Run until ``stop()``; then stop the workers and every task."""
        self.start()
        try:
            self.reactor.run_forever()
        finally:
            self.close()

    def close(self) -> None:
        if self.grpc is not None:
            self.grpc.stop()
        if self.http is not None:
            self.http.close()
        self.systemd.notify("STOPPING=1")
        self.systemd.close()
        for task in self._tasks:
            task.cancel()
        for worker in self.workers:  # all at once: each stops on its channel's end
            worker.stop(wait=False)
        for worker in self.workers:
            worker.close()
        self.reactor.close()

    def call(self, fn: Callable[[], T], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run ``fn`` on the reactor thread and return what it returns (from another
        thread: the gRPC API's). ``TimeoutError`` if the loop does not get to it."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as err:
                done.set_exception(err)

        self.reactor.call_soon_threadsafe(run)
        return done.result(timeout)

    def _grpc_health(self) -> None:
        if self.grpc is not None:
            self.grpc.set_serving(self.readiness()[0])
            self.reactor.call_later(1.0, self._grpc_health)

    def hangup(self, reopen_logs: Callable[[], object] | None = None) -> None:
        """SIGHUP: new log files (logrotate moved the old ones) and a fetch right now."""
        if reopen_logs is not None:
            reopen_logs()
        if self.updater is not None:
            log.info("SIGHUP: reopened the log files; fetching the checks now")
            if self.reader is not None:
                self.reader.forget()
            self.updater.fetch_now()
        else:
            log.info("SIGHUP: reopened the log files")

    def stop(self) -> None:
        """Make ``run`` return soon; safe from a signal handler or another thread."""
        self.reactor.stop()

    def worker_headers(self) -> list[Header]:
        return [worker.shared.header() for worker in self.workers]

    def stats(self) -> dict[str, Any]:
        headers = self.worker_headers()
        lateness = [0] * (len(LATENESS_BOUNDS) + 1)
        for header in headers:
            for k, count in enumerate(header.lateness):
                lateness[k] += count
        runnable = sum(1 for entry in self.table if entry.running)
        ran_once = sum(h.ran_once for h in headers)
        all_ran = [h.all_ran_at for h in headers if h.checks]
        all_ran_at = max(all_ran) if all_ran and all(all_ran) and ran_once >= runnable else 0.0
        notifier = self.notifier
        return {
            "now": self.reactor.time(),
            "checks": len(self.table),
            "runnable": runnable,
            "ran_once": ran_once,
            "checks_run": sum(h.checks_run for h in headers),
            "transitions": sum(h.transitions for h in headers),
            "skipped_busy": sum(h.skipped_busy for h in headers),
            "skipped_late": sum(h.skipped_late for h in headers),
            "max_lateness_s": max((h.max_lateness for h in headers), default=0.0),
            "first_config_at": self.first_config_at,
            "first_answered_at": self.first_answered_at,
            "first_applied_at": self.first_applied_at,
            "all_ran_at": all_ran_at,
            "all_ran_after_s": all_ran_at - self.first_config_at if all_ran_at else None,
            "lateness_bounds_s": list(LATENESS_BOUNDS),
            "lateness_counts": lateness,
            "batches_sent": notifier.batches_sent,
            "notifications_sent": notifier.notifications_sent,
            "send_failures": notifier.send_failures,
            "pending": len(notifier.queue),
            "coalesced": notifier.queue.coalesced,
            "fetches": self.updater.fetches if self.updater else 0,
            "fetch_failures": self.updater.failures if self.updater else 0,
            "worker_pids": [worker.pid for worker in self.workers],
            "worker_starts": [worker.starts for worker in self.workers],
        }

    async def _write_stats(self, path: str) -> None:
        tmp = f"{path}.tmp"
        while True:
            try:
                with open(tmp, "w") as out:
                    json.dump(self.stats(), out)
                os.replace(tmp, path)
            except OSError as err:
                log.warning("Could not write stats to %s: %s", path, err)
            await sleep(1.0)


def _describe(entry: Entry) -> str:
    if entry.problem is not None:
        return f"not running: {entry.problem}"
    return checkers.describe(entry.config.checker)


def run(
    config: ServerConfig,
    *,
    workers: int = 1,
    stats_file: str | None = None,
    reopen_logs: Callable[[], object] | None = None,
) -> int:
    """Run the server until SIGTERM or SIGINT (exit status 0), or until one of its tasks
    fails (1). SIGHUP calls ``reopen_logs`` and fetches the checks at once."""
    warn, build = build_info.log_line()
    (log.warning if warn else log.info)("%s", build)
    limit = raise_nofile_limit()
    log.info("File descriptor limit: %d", limit)
    control = Control(config, workers=workers, stats_file=stats_file)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between bytecodes (an epoll wait in progress returns
        # EINTR first); stop() only queues a callback and writes the reactor's eventfd.
        control.stop()

    def on_hangup(signum: int, frame: FrameType | None) -> None:
        control.reactor.call_soon_threadsafe(lambda: control.hangup(reopen_logs))

    handlers = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    handlers[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
    try:
        control.run()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    log.info("Shut down")
    return 1 if control.failed else 0
