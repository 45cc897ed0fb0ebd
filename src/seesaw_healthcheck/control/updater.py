"""The updater: fetches the check configs from the engine every fetch interval."""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from seesaw_healthcheck.checkfile import Reader
from seesaw_healthcheck.control.config import ENGINE_TIMEOUT_S, FETCH_RETRY_S
from seesaw_healthcheck.control.outage import Outage
from seesaw_healthcheck.gob import ReuseMap
from seesaw_healthcheck.model import Checks, Config, Context
from seesaw_healthcheck.reactor import Event, Reactor

log = logging.getLogger(__name__)

# The checks, or None when the source knows they have not changed since the last call.
Fetcher = Callable[[], Awaitable[Checks | None]]
FETCH_DURATION_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Configs = Mapping[int, Config | None] | None


class Updater:
    """Calls ``fetch`` every ``fetch_interval_s`` and hands each result to ``apply``,
    with the time the fetch was sent (the reactor's clock). A task on ``reactor``.

    On any error it tells ``outage`` (which logs) and retries after ``retry_s``; running
    checks go on untouched.
    """

    def __init__(
        self,
        reactor: Reactor,
        fetch: Fetcher,
        apply: Callable[[Configs, float], None],
        fetch_interval_s: float,
        outage: Outage,
        retry_s: float = FETCH_RETRY_S,
        name: str = "SeesawEngine.Healthchecks",
        what: str = "engine",
    ) -> None:
        self.name = name  # of the call, in error lines
        self.what = what  # where checks come from, in the lines Seesaw logs
        self._reactor = reactor
        self._outage = outage
        self._fetch = fetch
        self._apply = apply
        self._interval = fetch_interval_s
        self._retry = retry_s
        self.fetches = 0
        self.failures = 0
        self.last_success_wall = 0.0  # time.time() of the last fetch applied
        self.last_success_at = 0.0  # the same on the reactor's clock
        self.last_error: str | None = None  # of the last fetch, if it failed
        self._now = Event()  # fetch_now() sets it
        # Fetch durations (request to reply decoded): a histogram for /metrics.
        self.duration_counts = [0] * (len(FETCH_DURATION_BOUNDS) + 1)
        self.duration_sum = 0.0

    async def run(self) -> None:
        next_fetch = self._reactor.time()
        while True:
            # Fetches keep to a fixed grid (Go sleeps a full interval after each fetch and
            # drifts), so they stay out of phase with the manager's periodic re-notify.
            next_fetch += self._interval
            if self.what == "engine":  # Seesaw's line; a file is polled every second
                log.info("Getting healthchecks from engine...")
            requested_at = self._reactor.time()
            try:
                checks = await self._fetch()
            except Exception as err:  # dial, RpcError, GobError, timeout, ...
                self.failures += 1
                self.last_error = f"{type(err).__name__}: {str(err) or type(err).__name__}"
                self._outage.failed(self.name, err)
                await self._pause(self._retry)
                next_fetch = self._reactor.time()
                continue
            self._outage.answered(self.name)
            took = self._reactor.time() - requested_at
            self.duration_counts[bisect.bisect_left(FETCH_DURATION_BOUNDS, took)] += 1
            self.duration_sum += took
            self.fetches += 1
            self.last_error = None
            self.last_success_wall = time.time()
            self.last_success_at = self._reactor.time()
            if checks is not None:  # None: the source says nothing changed
                configs = checks.configs
                what = self.what[:1].upper() + self.what[1:]
                log.info("%s returned %d healthchecks", what, len(configs or {}))
                self._apply(configs, requested_at)
            now = self._reactor.time()
            if next_fetch < now:  # the fetch took longer than an interval: no catching up
                next_fetch = now
            if await self._pause(next_fetch - now):
                next_fetch = self._reactor.time()  # a fetch out of turn starts a new grid

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if ``fetch_now()`` is called: True then."""
        woken = await self._now.wait(self._reactor, seconds)
        self._now.clear()
        return woken

    def fetch_now(self) -> None:
        """Fetch at once instead of at the next interval (reactor thread)."""
        self._now.set()


def engine_fetcher(engine_socket: str, reuse: ReuseMap | None = None) -> Fetcher:
    """SeesawEngine.Healthchecks over a fresh connection, with a trusted context.

    The engine sends every config every fetch: with ``reuse``, unchanged ones keep their
    objects (no decode, no garbage), and the diff then finds them unchanged by identity.
    """
    from seesaw_healthcheck import schema
    from seesaw_healthcheck.rpc import reactor_call

    ctx = Context.trusted()  # the process's identity: read the user database once

    async def fetch() -> Checks:
        reply = await reactor_call.call(
            engine_socket,
            schema.HEALTHCHECKS,
            ctx,
            schema.CONTEXT_ARG,
            schema.CHECKS,
            timeout=ENGINE_TIMEOUT_S,
            reuse=reuse,
        )
        if not isinstance(reply, Checks):
            raise TypeError(f"engine replied with {type(reply).__name__}, not Checks")
        return reply

    return fetch


def file_fetcher(reader: Reader) -> Fetcher:
    """The checks of a TOML file (``checkfile.Reader``), read again only when it changed;
    a broken file raises (the last good set stays)."""

    async def fetch() -> Checks | None:
        return reader.read_if_changed()

    return fetch
