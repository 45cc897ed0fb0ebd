"""The coalescing queue and the notifier's batching, retries and never-lose behaviour
(the notifier in virtual time: a MockClock that jumps whenever the loop is idle)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from seesaw_healthcheck.control.config import ServerConfig
from seesaw_healthcheck.control.notifier import CoalescingQueue, Notifier
from seesaw_healthcheck.control.outage import Outage
from seesaw_healthcheck.model import Notification, State, Status
from seesaw_healthcheck.reactor import MockClock, Reactor, Task, current_reactor, sleep

MS = 1_000_000


def status(state: State, successes: int = 0) -> Status:
    return Status(state=state, successes=successes)


def test_queue_coalesces_to_newest_keeping_order():
    wakes: list[int] = []
    queue = CoalescingQueue(
        full_at=3, clock=MockClock().time, wake=lambda: wakes.append(len(queue))
    )
    queue.put(1, status(State.HEALTHY, 1))
    queue.put(2, status(State.HEALTHY, 1))
    assert len(wakes) == 1  # only empty -> non-empty wakes
    queue.put(1, status(State.UNHEALTHY, 1))
    assert len(queue) == 2 and queue.coalesced == 1
    queue.put(3, status(State.HEALTHY))
    assert len(wakes) == 2  # reached full_at
    batch = queue.take(2)
    assert [(n.id, n.status.state) for n in batch] == [(1, State.UNHEALTHY), (2, State.HEALTHY)]
    assert [n.id for n in queue.take(10)] == [3]
    assert len(queue) == 0


def test_put_back_goes_first_and_newer_wins():
    queue = CoalescingQueue(full_at=100, clock=MockClock().time)
    queue.put_many([(1, status(State.HEALTHY)), (2, status(State.HEALTHY))])
    failed = queue.take(100)
    queue.put(2, status(State.UNHEALTHY))  # newer than the failed batch's entry
    queue.put(5, status(State.HEALTHY))
    queue.put_back(failed)
    pending = queue.snapshot()
    assert list(pending) == [1, 2, 5]
    assert pending[2].state == State.UNHEALTHY


def test_queue_threads_bounded_by_ids():
    queue = CoalescingQueue(full_at=10, clock=MockClock().time)

    def writer(base: int) -> None:
        for k in range(20_000):
            queue.put(base + k % 50, status(State.HEALTHY, k))

    threads = [threading.Thread(target=writer, args=(i * 1000,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(queue) == 200  # memory bounded by the number of distinct ids
    assert all(s.successes == 19_950 + k % 50 for k, s in queue.snapshot().items())


class Engine:
    """An in-process sender: records batches, fails while ``down`` is set."""

    def __init__(self, reactor: Reactor) -> None:
        self.reactor = reactor
        self.batches: list[tuple[float, list[Notification]]] = []
        self.down = False
        self.attempts = 0

    async def send(self, batch: list[Notification]) -> None:
        self.attempts += 1
        if self.down:
            raise ConnectionRefusedError("engine down")
        self.batches.append((self.reactor.time(), list(batch)))


def start(config: ServerConfig) -> tuple[CoalescingQueue, Engine, Task]:
    """A notifier task on the running reactor (call from inside a reactor task)."""
    reactor = current_reactor()
    engine = Engine(reactor)
    outage = Outage(reactor.time, lambda: 0)
    notifier = Notifier(reactor, config, engine.send, outage)
    return notifier.queue, engine, reactor.spawn(notifier.run())


def run_on_reactor(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with Reactor(MockClock(autojump_threshold=0.0)) as reactor:
        reactor.run(scenario(), timeout=3600)


def test_batch_delay_and_size():
    async def scenario() -> None:
        config = ServerConfig(batch_delay=300 * MS, batch_size=10)
        queue, engine, task = start(config)
        t0 = current_reactor().time()
        queue.put(1, status(State.HEALTHY))
        await sleep(0.05)
        queue.put(2, status(State.HEALTHY))
        await sleep(0.6)
        assert len(engine.batches) == 1
        sent_at, batch = engine.batches[0]
        assert [n.id for n in batch] == [1, 2]
        # Sent batch_delay after the FIRST entry, not after the second.
        assert sent_at - t0 == pytest.approx(0.3)
        # A full batch goes at once, without waiting for the delay; 25 -> 10 + 10 + 5.
        engine.batches.clear()
        t1 = current_reactor().time()
        queue.put_many((i, status(State.UNHEALTHY)) for i in range(100, 125))
        await sleep(0.6)
        sizes = [len(b) for _, b in engine.batches]
        assert sizes == [10, 10, 5]
        assert engine.batches[1][0] == t1
        task.cancel()

    run_on_reactor(scenario)


def test_engine_down_then_back_gets_latest_of_each_check():
    async def scenario() -> None:
        config = ServerConfig(
            batch_delay=10 * MS, batch_size=3, retry_delay=30 * MS, max_failures=2
        )
        queue, engine, task = start(config)
        engine.down = True
        for k in range(5):
            queue.put(k, status(State.HEALTHY, 1))
        await sleep(0.15)
        assert engine.attempts >= 3 and not engine.batches
        # Changes while the engine is down: newest state per id wins.
        queue.put(0, status(State.UNHEALTHY, 1))
        queue.put(9, status(State.UNHEALTHY))
        await sleep(0.1)
        assert not task.done  # keeps going past max_failures (Seesaw would exit)
        engine.down = False
        await sleep(0.2)
        received = {n.id: n.status.state for _, b in engine.batches for n in b}
        assert received == {
            0: State.UNHEALTHY, 1: State.HEALTHY, 2: State.HEALTHY, 3: State.HEALTHY,
            4: State.HEALTHY, 9: State.UNHEALTHY,
        }  # fmt: skip
        assert all(len(b) <= 3 for _, b in engine.batches)
        assert len(queue) == 0
        task.cancel()

    run_on_reactor(scenario)


def test_an_outage_logs_one_error_then_a_summary_a_minute(caplog: pytest.LogCaptureFixture):
    """Ten minutes of failed sends every 5 ms: one ERROR (the text never changed), one
    summary a minute, and a line when the engine answers again."""

    async def scenario() -> None:
        config = ServerConfig(batch_delay=1 * MS, retry_delay=10 * MS, max_failures=3)
        queue, engine, task = start(config)
        engine.down = True
        queue.put(1, status(State.HEALTHY))
        await sleep(600.5)
        assert engine.attempts > 50_000
        engine.down = False
        await sleep(1.0)
        assert len(engine.batches) == 1
        task.cancel()

    with caplog.at_level("INFO", logger="seesaw_healthcheck.control.engine"):
        run_on_reactor(scenario)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    errors = [text for level, text in lines if level == "ERROR"]
    summaries = [text for level, text in lines if level == "WARNING"]
    assert errors == ["SeesawEngine.HealthState failed: ConnectionRefusedError: engine down"]
    assert len(summaries) == 10, summaries
    assert summaries[-1].startswith("engine unreachable for 10m0s, ")
    assert lines[-1] == ("INFO", "engine answering again after 10m0s")


def test_removed_ids_are_discarded_and_not_merged_back():
    live = {1, 2, 3}
    queue = CoalescingQueue(full_at=100, clock=MockClock().time, live=live.__contains__)
    queue.put_many([(1, status(State.HEALTHY)), (2, status(State.HEALTHY))])
    in_flight = queue.take(100)
    queue.put(3, status(State.HEALTHY))
    live -= {2, 3}
    queue.discard([2, 3])
    queue.put_back(in_flight)  # the send failed after 2 was removed
    assert list(queue.snapshot()) == [1]
