"""The notifier: batches state notifications and sends them to the engine.

The manager puts Statuses into a ``CoalescingQueue``; the notifier, a task on the same
reactor, takes batches from it. Pending entries coalesce to the newest Status per
check id, so memory is bounded by the number of checks, and a batch that could not be
sent is merged back under any newer entries: when the engine answers again it receives
the latest state of every check that changed. Unlike Seesaw, the server never exits after
``max_failures`` consecutive failed sends; it keeps trying (``outage`` says what to log).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from itertools import islice

from seesaw_healthcheck.control.config import ENGINE_TIMEOUT_S, ServerConfig
from seesaw_healthcheck.control.outage import Outage
from seesaw_healthcheck.model import Context, HealthState, Notification, Status
from seesaw_healthcheck.reactor import Event, Reactor, sleep

log = logging.getLogger(__name__)

Sender = Callable[[list[Notification]], Awaitable[None]]


class CoalescingQueue:
    """Thread-safe pending notifications: newest Status per check id, oldest id first.

    ``wake`` is called (outside the lock) when the queue goes from empty to non-empty, and
    when it reaches ``full_at`` entries, so the consumer never polls. ``live(id)`` says
    which ids still exist: a failed batch is merged back only for those, so a check removed
    while its notification was in flight never reports again. ``clock`` times the oldest
    entry (the reactor's).
    """

    __slots__ = (
        "_clock",
        "_first_put",
        "_full_at",
        "_live",
        "_lock",
        "_pending",
        "_wake",
        "coalesced",
    )

    def __init__(
        self,
        full_at: int,
        *,
        clock: Callable[[], float],
        wake: Callable[[], None] | None = None,
        live: Callable[[int], bool] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, Status] = {}
        self._full_at = full_at
        self._clock = clock
        self._wake = wake
        self._live = live
        self._first_put = 0.0
        self.coalesced = 0  # how many Statuses a newer one replaced before being sent

    def put(self, check_id: int, status: Status) -> None:
        self.put_many(((check_id, status),))

    def put_many(self, items: Iterable[tuple[int, Status]]) -> None:
        with self._lock:
            pending = self._pending
            was_empty = not pending
            before = len(pending)
            added = 0
            for check_id, status in items:
                added += 1
                # A replaced id keeps its place in line (no starvation of flapping
                # checks) and carries its newest Status.
                pending[check_id] = status
            self.coalesced += before + added - len(pending)
            if was_empty and pending:
                self._first_put = self._clock()
            wake = (was_empty and pending) or (before < self._full_at <= len(pending))
        if wake and self._wake is not None:
            self._wake()

    def discard(self, ids: Iterable[int]) -> None:
        """Drop pending entries of checks that no longer exist: they never report again."""
        with self._lock:
            pending = self._pending
            for check_id in ids:
                pending.pop(check_id, None)

    def take(self, limit: int) -> list[Notification]:
        """Remove and return up to ``limit`` notifications, oldest queued first."""
        with self._lock:
            pending = self._pending
            if len(pending) <= limit:
                batch = [Notification(id=i, status=s) for i, s in pending.items()]
                pending.clear()
                return batch
            # islice, not list(pending)[:limit]: with 50,000 pending a full copy per
            # batch made draining quadratic.
            ids = list(islice(pending, limit))
            batch = [Notification(id=check_id, status=pending.pop(check_id)) for check_id in ids]
            # The rest keep their (older) first_put: they are already due.
            return batch

    def put_back(self, batch: list[Notification]) -> None:
        """Return a batch that was not sent, ahead of the rest; newer entries win."""
        with self._lock:
            rest = self._pending
            live = self._live
            merged: dict[int, Status] = {}
            for n in batch:
                if live is not None and not live(n.id):
                    continue
                if n.id not in rest:
                    merged[n.id] = n.status
                else:
                    self.coalesced += 1
            was_empty = not rest
            merged.update(rest)
            self._pending = merged
            if was_empty and merged:
                self._first_put = self._clock()

    def first_put(self) -> float:
        """When (on ``clock``) the oldest pending entry arrived (meaningless when empty)."""
        return self._first_put

    def __len__(self) -> int:
        return len(self._pending)

    def snapshot(self) -> dict[int, Status]:
        with self._lock:
            return dict(self._pending)


class Notifier:
    """Sends batches of at most batch_size, no later than batch_delay after the first.

    Producers put Statuses into ``queue`` (its own ``CoalescingQueue``; ``live`` as the
    queue takes it). ``run`` is a task on ``reactor``; the puts come from the same thread,
    so a wake-up is never missed between looking at the queue and waiting.
    """

    METHOD = "SeesawEngine.HealthState"

    def __init__(
        self,
        reactor: Reactor,
        config: ServerConfig,
        send: Sender,
        outage: Outage,
        live: Callable[[int], bool] | None = None,
    ) -> None:
        self._reactor = reactor
        self._outage = outage
        self._config = config
        self._send = send
        self._wakeup = Event()
        self.queue = CoalescingQueue(
            config.batch_size, clock=reactor.time, wake=self.wake, live=live
        )
        self.batches_sent = 0
        self.notifications_sent = 0
        self.send_failures = 0
        self.consecutive_failures = 0
        self.last_sent_wall = 0.0  # time.time() of the last batch the engine took

    def wake(self) -> None:
        """The queue's wake callback (reactor thread)."""
        self._wakeup.set()

    async def run(self) -> None:
        config = self._config
        queue = self.queue
        reactor = self._reactor
        wakeup = self._wakeup
        batch_delay = config.batch_delay / 1e9
        while True:
            if not len(queue):
                wakeup.clear()
                await wakeup.wait(reactor)
                continue
            # Wait for a full batch or the delay after the first queued entry.
            while len(queue) < config.batch_size:
                remaining = queue.first_put() + batch_delay - reactor.time()
                if remaining <= 0:
                    break
                wakeup.clear()
                await wakeup.wait(reactor, remaining)
            batch = queue.take(config.batch_size)
            if batch:
                await self._send_with_retries(batch)

    async def _send_with_retries(self, batch: list[Notification]) -> None:
        config = self._config
        while True:
            try:
                await self._send(batch)
            except GeneratorExit:  # the task is being cancelled (shutdown)
                self.queue.put_back(batch)
                raise
            except Exception as err:  # any failure: dial, RPC, codec, timeout
                self.send_failures += 1
                self.consecutive_failures += 1
                # Merge back, wait, then send the newest state of the same ids (and
                # whatever else fits in a batch).
                self.queue.put_back(batch)
                self._outage.failed(self.METHOD, err)
                await sleep(config.retry_delay / 1e9)
                batch = self.queue.take(config.batch_size)
                if not batch:
                    return
                continue
            self._outage.answered(self.METHOD)
            self.consecutive_failures = 0
            self.last_sent_wall = time.time()
            self.batches_sent += 1
            self.notifications_sent += len(batch)
            return


def engine_sender(engine_socket: str) -> Sender:
    """SeesawEngine.HealthState over a fresh connection per batch, as Seesaw does."""
    from seesaw_healthcheck import schema
    from seesaw_healthcheck.rpc import reactor_call

    ctx = Context.trusted()  # the process's identity: read the user database once

    async def send(batch: list[Notification]) -> None:
        args = HealthState(ctx=ctx, notifications=batch)
        await reactor_call.call(
            engine_socket,
            schema.HEALTH_STATE_METHOD,
            args,
            schema.HEALTH_STATE_ARG,
            schema.INT_REPLY,
            timeout=ENGINE_TIMEOUT_S,
        )

    return send
