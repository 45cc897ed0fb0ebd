"""Wiring: one reactor on the main thread runs the manager (scheduler, checks) and the
updater, notifier and stats tasks; signals and the file-descriptor limit.

One thread on purpose: every socket call releases the interpreter lock, and a second
thread busy decoding a fetch or encoding notifications then holds it for up to a switch
interval each time, so checks start late and the first round of 10,000 new checks took
1.2-1.4 s instead of 0.95. (Besides it: glog's flusher, asleep but five times a second.)
Fetches after the first are decoded in a forked child (``forked_fetch``), which sends back
only what changed, so a big fetch does not stall the checks either.

Stats: with ``stats_file`` the server rewrites that file (atomically) every second with
one JSON object: the manager's counters (checks, runnable, ran_once, checks_run,
transitions, skipped slots, lateness histogram of actual start against the scheduled slot,
first_config_at / all_ran_at on the reactor's monotonic clock, all_ran_after_s), the
notifier's (batches_sent, notifications_sent, send_failures, pending, coalesced) and the
updater's (fetches, fetch_failures). ``benchmarks/server_bench.py`` reads it.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import resource
import signal
from collections.abc import Mapping
from types import FrameType
from typing import Any

from seesaw_healthcheck.model import Config
from seesaw_healthcheck.reactor import Task, sleep
from seesaw_healthcheck.server.config import ENGINE_TIMEOUT_S, ServerConfig
from seesaw_healthcheck.server.forked_fetch import forked_fetcher
from seesaw_healthcheck.server.manager import Manager
from seesaw_healthcheck.server.notifier import CoalescingQueue, Notifier, engine_sender
from seesaw_healthcheck.server.updater import Updater, engine_fetcher

log = logging.getLogger(__name__)


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each check in flight holds an fd)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as err:
            log.warning("Could not raise RLIMIT_NOFILE from %d to %d: %s", soft, hard, err)
    return soft


class Server:
    """One server: build it, then ``run()`` it until ``stop()``."""

    def __init__(
        self, config: ServerConfig, *, stats_file: str | None = None, fork_fetch: bool = True
    ) -> None:
        from seesaw_healthcheck import checkers
        from seesaw_healthcheck.reactor import Reactor

        config.validate()
        self.config = config
        self.stats_file = stats_file
        self.reactor = Reactor()
        self.queue = CoalescingQueue(config.batch_size)
        self.manager = Manager(
            self.reactor,
            self.queue,
            run_check=checkers.run,
            timeout_for=checkers.timeout_for,
            describe=checkers.describe,
            dry_run=config.dry_run,
            notify_interval_s=config.notify_interval / 1e9,
        )
        self.queue.live = self.manager.checks.__contains__
        self.notifier = Notifier(config, self.queue, engine_sender(config.engine_socket))
        self.queue.set_wake(self.notifier.wake)
        fetch = engine_fetcher(config.engine_socket)
        if fork_fetch:
            checks = self.manager.checks
            fetch = forked_fetcher(
                config.engine_socket,
                lambda: {check_id: check.config for check_id, check in checks.items()},
                fetch,
                ENGINE_TIMEOUT_S,
            )
        self.updater = Updater(fetch, self._apply, config.fetch_interval / 1e9)
        self.failed: str | None = None  # why run() stopped by itself, if it did

    def _apply(self, configs: Mapping[int, Config | None] | None, requested_at: float) -> None:
        """Apply a fetched set; when checks were added, take the long-lived objects out of
        the collector's view (else every full collection traverses them). No gc.collect()
        first: with 50,000 checks it stalls the reactor for ~100 ms. The periodic
        re-notify starts with the first fetched set."""
        if self.manager.apply(configs, requested_at):
            gc.freeze()
        if not self.manager.notifying:
            # Half an interval out of phase with the fetches: a full re-notify (encoding
            # every Status) and a fetch (decoding every Config) are each the server's
            # largest bursts of work; at the same moment they delay checks far more.
            self.manager.start_notify_timer(self.manager.notify_interval_s / 2)

    def run(self) -> None:
        """Run until ``stop()``; then stop every check and task and close the reactor."""
        # Fewer, larger young-generation collections: a check allocates a handful of
        # short-lived containers.
        gc.set_threshold(10_000, 20, 20)
        reactor = self.reactor
        tasks: list[Task] = []

        def spawn(name: str, coro: Any) -> None:
            def done(outcome: Any) -> None:
                # These loop forever: ending at all is a bug. Stop (run() then exits 1, and
                # the watchdog restarts us) rather than check on with stale configs or
                # notifications that never go out.
                self.failed = f"the {name} task ended: {outcome!r}"
                log.error("Stopping: %s", self.failed)
                reactor.stop()

            tasks.append(reactor.spawn(coro, None, done))

        spawn("updater", self.updater.run())
        spawn("notifier", self.notifier.run())
        if self.stats_file:
            spawn("stats", self._write_stats(self.stats_file))
        try:
            reactor.run_forever()
        finally:
            self.manager.stop_all()
            for task in tasks:
                task.cancel()
            reactor.close()

    def stop(self) -> None:
        """Make ``run`` return soon; safe from a signal handler or another thread."""
        self.reactor.stop()

    def stats(self) -> dict[str, Any]:
        out = self.manager.stats.as_dict(self.reactor.time())
        notifier = self.notifier
        out.update(
            batches_sent=notifier.batches_sent,
            notifications_sent=notifier.notifications_sent,
            send_failures=notifier.send_failures,
            pending=len(self.queue),
            coalesced=self.queue.coalesced,
            fetches=self.updater.fetches,
            fetch_failures=self.updater.failures,
        )
        return out

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


def run(config: ServerConfig, *, stats_file: str | None = None) -> int:
    """Run the server until SIGTERM or SIGINT (exit status 0), or until one of its tasks
    fails (1)."""
    limit = raise_nofile_limit()
    log.info("File descriptor limit: %d", limit)
    server = Server(config, stats_file=stats_file)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # Runs on the main thread between bytecodes (an epoll wait in progress returns
        # EINTR first); stop() only queues a callback and writes the reactor's eventfd.
        server.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("Shut down")
    return 1 if server.failed else 0
