"""The updater: fetches the check configs from the engine every fetch interval."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from seesaw_healthcheck.control.config import ENGINE_TIMEOUT_S, FETCH_RETRY_S
from seesaw_healthcheck.model import Checks, Config, Context
from seesaw_healthcheck.reactor import Reactor, sleep

log = logging.getLogger(__name__)

Fetcher = Callable[[], Awaitable[Checks]]
Configs = Mapping[int, Config | None] | None


class Updater:
    """Calls ``fetch`` every ``fetch_interval_s`` and hands each result to ``apply``,
    with the time the fetch was sent (the reactor's clock). A task on ``reactor``.

    On any error it logs and retries after ``retry_s``; running checks go on untouched.
    """

    def __init__(
        self,
        reactor: Reactor,
        fetch: Fetcher,
        apply: Callable[[Configs, float], None],
        fetch_interval_s: float,
        retry_s: float = FETCH_RETRY_S,
    ) -> None:
        self._reactor = reactor
        self._fetch = fetch
        self._apply = apply
        self._interval = fetch_interval_s
        self._retry = retry_s
        self.fetches = 0
        self.failures = 0

    async def run(self) -> None:
        next_fetch = self._reactor.time()
        while True:
            # Fetches keep to a fixed grid (Go sleeps a full interval after each fetch and
            # drifts), so they stay out of phase with the manager's periodic re-notify.
            next_fetch += self._interval
            log.info("Getting healthchecks from engine...")
            requested_at = self._reactor.time()
            try:
                checks = await self._fetch()
            except Exception as err:  # dial, RpcError, GobError, timeout, ...
                self.failures += 1
                text = str(err) or type(err).__name__
                log.error("SeesawEngine.Healthchecks failed: %s: %s", type(err).__name__, text)
                await sleep(self._retry)
                next_fetch = self._reactor.time()
                continue
            self.fetches += 1
            configs = checks.configs
            log.info("Engine returned %d healthchecks", len(configs or {}))
            self._apply(configs, requested_at)
            now = self._reactor.time()
            if next_fetch < now:  # the fetch took longer than an interval: no catching up
                next_fetch = now
            await sleep(next_fetch - now)


def engine_fetcher(engine_socket: str) -> Fetcher:
    """SeesawEngine.Healthchecks over a fresh connection, with a trusted context."""
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
        )
        if not isinstance(reply, Checks):
            raise TypeError(f"engine replied with {type(reply).__name__}, not Checks")
        return reply

    return fetch
