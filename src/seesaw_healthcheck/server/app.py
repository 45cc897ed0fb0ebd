"""Wiring: the reactor thread (manager, scheduler, checks) and the asyncio thread
(updater, notifier, stats), signals and the file-descriptor limit.

Stats: with ``stats_file`` the server rewrites that file (atomically) every second with
one JSON object: the manager's counters (checks, runnable, ran_once, checks_run,
transitions, skipped slots, lateness histogram of actual start against the scheduled slot,
first_config_at / all_ran_at on the reactor's monotonic clock, all_ran_after_s), the
notifier's (batches_sent, notifications_sent, send_failures, pending, coalesced) and the
updater's (fetches, fetch_failures). ``benchmarks/server_bench.py`` reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import resource
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

from seesaw_healthcheck.model import Config
from seesaw_healthcheck.server.config import ServerConfig
from seesaw_healthcheck.server.manager import Manager
from seesaw_healthcheck.server.notifier import CoalescingQueue, Notifier, engine_sender
from seesaw_healthcheck.server.updater import Updater, engine_fetcher

log = logging.getLogger(__name__)

STOP_GRACE_S = 0.5  # how long the reactor thread gets to finish after a stop signal
# The reactor releases the GIL at every epoll call; while the asyncio thread decodes a big
# fetch or encodes a full re-notification, the reactor waits up to the switch interval
# (5 ms by default) each time it wants the GIL back, and its checks start late.
SWITCH_INTERVAL_S = 0.001


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
    """One server: build it, then ``await run()`` on the main thread's asyncio loop."""

    def __init__(self, config: ServerConfig, *, stats_file: str | None = None) -> None:
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
        self.updater = Updater(
            engine_fetcher(config.engine_socket),
            self._hand_to_manager,
            config.fetch_interval / 1e9,
        )
        self._thread: threading.Thread | None = None

    def _hand_to_manager(
        self, configs: Mapping[int, Config | None] | None, requested_at: float
    ) -> None:
        self.reactor.call_soon_threadsafe(lambda: self._apply(configs, requested_at))

    def _apply(self, configs: Mapping[int, Config | None] | None, requested_at: float) -> None:
        """On the reactor thread: apply; when checks were added, take the long-lived
        objects out of the collector's view (else every full collection traverses them).
        No gc.collect() first: with 50,000 checks it stalls the reactor for ~100 ms.
        The periodic re-notify starts with the first fetched set."""
        if self.manager.apply(configs, requested_at):
            gc.freeze()
        if not self.manager.notifying:
            # Half an interval out of phase with the fetches: a full re-notify (encoding
            # every Status) and a fetch (decoding every Config) are each the server's
            # largest bursts of work; at the same moment they delay checks far more.
            self.manager.start_notify_timer(self.manager.notify_interval_s / 2)

    def _run_reactor(self) -> None:
        try:
            self.reactor.run_forever()
        except BaseException:
            log.exception("The check reactor failed")
            raise

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then stop everything within about a second."""
        loop = asyncio.get_running_loop()
        self.queue.set_wake(self.notifier.wake_threadsafe(loop))
        # Fewer, larger young-generation collections: a check allocates a handful of
        # short-lived containers.
        gc.set_threshold(10_000, 20, 20)
        self._thread = threading.Thread(target=self._run_reactor, name="reactor", daemon=True)
        self._thread.start()
        tasks = [
            asyncio.create_task(self.updater.run(), name="updater"),
            asyncio.create_task(self.notifier.run(), name="notifier"),
        ]
        if self.stats_file:
            tasks.append(asyncio.create_task(self._write_stats(self.stats_file), name="stats"))
        stopper = asyncio.create_task(stop.wait(), name="stop")
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and not task.cancelled() and task.exception() is not None:
                log.error("%s task failed: %r", task.get_name(), task.exception())
        for task in [stopper, *tasks]:
            task.cancel()
        await asyncio.gather(stopper, *tasks, return_exceptions=True)
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the checks and the reactor thread (bounded wait)."""
        reactor = self.reactor
        reactor.call_soon_threadsafe(self.manager.stop_all)
        reactor.stop()
        if self._thread is not None:
            self._thread.join(STOP_GRACE_S)
            if self._thread.is_alive():
                log.warning("The check reactor did not stop within %.1fs", STOP_GRACE_S)
            else:
                reactor.close()

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
            await asyncio.sleep(1.0)


def run(config: ServerConfig, *, stats_file: str | None = None) -> int:
    """Run the server until SIGTERM or SIGINT; return the exit status (0)."""
    limit = raise_nofile_limit()
    log.info("File descriptor limit: %d", limit)
    sys.setswitchinterval(SWITCH_INTERVAL_S)

    async def main() -> None:
        server = Server(config, stats_file=stats_file)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await server.run(stop)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signum)

    asyncio.run(main())
    log.info("Shut down")
    return 0
