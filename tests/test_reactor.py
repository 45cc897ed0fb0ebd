"""The reactor: timers, tasks, deadlines, cancellation, fds and cross-thread wake-ups."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from seesaw_healthcheck import reactor as reactor_module
from seesaw_healthcheck.reactor import (
    Future,
    MockClock,
    Reactor,
    limit_deadline,
    readable,
    sleep,
    within,
    writable,
)


@pytest.fixture
def reactor() -> Iterator[Reactor]:
    r = Reactor()
    yield r
    r.close()


def test_timers_fire_in_order_and_cancelled_ones_do_not(reactor: Reactor) -> None:
    fired: list[str] = []
    now = reactor.time()
    reactor.call_at(now + 0.03, lambda: fired.append("c"))
    reactor.call_at(now + 0.01, lambda: fired.append("a"))
    cancelled = reactor.call_at(now + 0.02, lambda: fired.append("x"))
    reactor.call_later(0.02, lambda: fired.append("b"))
    cancelled.cancel()
    reactor.call_at(now + 0.05, reactor.stop)
    reactor.run_forever()
    assert fired == ["a", "b", "c"]
    assert reactor.time() - now >= 0.05


def test_run_returns_value_and_sleep_waits(reactor: Reactor) -> None:
    async def main() -> int:
        await sleep(0.02)
        return 42

    start = time.monotonic()
    assert reactor.run(main()) == 42
    assert time.monotonic() - start >= 0.02


def test_run_raises_task_exception(reactor: Reactor) -> None:
    async def main() -> None:
        await sleep(0)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        reactor.run(main())


def test_deadline_throws_timeout_into_io_wait_and_finally_runs(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    cleaned: list[bool] = []

    async def main() -> None:
        try:
            await readable(a)  # nobody writes: only the deadline can end this
        finally:
            cleaned.append(True)

    start = time.monotonic()
    with pytest.raises(TimeoutError):
        reactor.run(main(), timeout=0.05)
    took = time.monotonic() - start
    assert cleaned == [True]
    assert 0.04 <= took < 1.0
    a.close()
    b.close()


def test_within_tightens_deadline_and_later_awaits_time_out_at_once(reactor: Reactor) -> None:
    async def main() -> str:
        await within(0.03)
        with contextlib.suppress(TimeoutError):
            await sleep(5)
        try:
            await sleep(5)  # the deadline has passed: no more waiting
        except TimeoutError:
            return "timed out twice"
        return "slept"

    start = time.monotonic()
    assert reactor.run(main(), timeout=10) == "timed out twice"
    assert time.monotonic() - start < 1.0


def test_cancel_closes_coroutine_runs_finally_and_skips_on_done(reactor: Reactor) -> None:
    events: list[str] = []
    done: list[object] = []

    async def waiter() -> None:
        try:
            await sleep(10)
        finally:
            events.append("finally")

    task = reactor.spawn(waiter(), on_done=done.append)
    reactor.call_later(0.01, task.cancel)
    reactor.call_later(0.03, reactor.stop)
    reactor.run_forever()
    assert events == ["finally"]
    assert done == []
    assert task.done


def test_on_done_gets_result_or_exception(reactor: Reactor) -> None:
    outcomes: list[object] = []

    async def ok() -> str:
        await sleep(0)
        return "ok"

    async def bad() -> None:
        await sleep(0)
        raise KeyError("k")

    reactor.spawn(ok(), on_done=outcomes.append)
    reactor.spawn(bad(), on_done=outcomes.append)
    reactor.call_later(0.02, reactor.stop)
    reactor.run_forever()
    assert outcomes[0] == "ok"
    assert isinstance(outcomes[1], KeyError)


def test_socketpair_readable_and_writable(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)

    async def main() -> bytes:
        await writable(a)
        a.send(b"ping")
        await readable(b)
        got = b.recv(16)
        # Wait on the same fd again: the one-shot registration is re-armed.
        reactor.call_later(0.01, lambda: a.send(b"again"))
        await readable(b)
        return got + b.recv(16)

    try:
        assert reactor.run(main(), timeout=2) == b"pingagain"
    finally:
        a.close()
        b.close()


def test_fd_number_reuse_after_close(reactor: Reactor) -> None:
    """A closed socket's fd number comes back for a new socket; waiting on it works."""

    async def one_round() -> bytes:
        a, b = socket.socketpair()
        try:
            a.setblocking(False)
            b.send(b"x")
            await readable(a)
            return a.recv(1)
        finally:
            a.close()
            b.close()

    async def main() -> int:
        count = 0
        for _ in range(50):
            count += len(await one_round())
        return count

    assert reactor.run(main(), timeout=5) == 50


def test_future_resolved_by_reader_callback(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    fut: Future[bytes] = Future()

    def on_readable() -> None:
        data = a.recv(16)
        if not fut.done():
            fut.set_result(data)

    reactor.add_reader(a, on_readable)

    async def main() -> bytes:
        reactor.call_later(0.01, lambda: b.send(b"hello"))
        return await fut

    try:
        assert reactor.run(main(), timeout=2) == b"hello"
    finally:
        reactor.remove_reader(a)
        a.close()
        b.close()


def test_future_exception_and_timeout(reactor: Reactor) -> None:
    failing: Future[int] = Future()
    reactor.call_later(0.01, lambda: failing.set_exception(OSError("nope")))

    async def main() -> None:
        await failing

    with pytest.raises(OSError, match="nope"):
        reactor.run(main(), timeout=2)

    never: Future[int] = Future()

    async def wait_never() -> int:
        return await never

    with pytest.raises(TimeoutError):
        reactor.run(wait_never(), timeout=0.02)
    assert never._waiters == []


def test_call_soon_threadsafe_wakes_a_blocked_loop(reactor: Reactor) -> None:
    got: list[int] = []

    def other_thread() -> None:
        time.sleep(0.05)
        for i in range(100):
            reactor.call_soon_threadsafe(lambda i=i: got.append(i))
        reactor.stop()

    thread = threading.Thread(target=other_thread)
    start = time.monotonic()
    thread.start()
    reactor.run_forever()  # no timers, no fds: only the eventfd can wake it
    thread.join()
    assert got == list(range(100))
    assert time.monotonic() - start < 2.0


def test_unsupported_yield_becomes_error(reactor: Reactor) -> None:
    import types

    @types.coroutine
    def bogus() -> Iterator[object]:
        yield "not a request"

    async def main() -> None:
        await bogus()

    with pytest.raises(RuntimeError, match="unsupported"):
        reactor.run(main(), timeout=1)


def test_many_concurrent_tasks_with_deadlines(reactor: Reactor) -> None:
    finished: list[object] = []

    async def short(i: int) -> int:
        await sleep(0.001 * (i % 5))
        return i

    async def stuck() -> None:
        await sleep(10)

    now = reactor.time()
    for i in range(500):
        reactor.spawn(short(i), deadline=now + 1, on_done=finished.append)
    for _ in range(100):
        reactor.spawn(stuck(), deadline=now + 0.05, on_done=finished.append)
    reactor.call_later(0.2, reactor.stop)
    reactor.run_forever()
    assert sorted(x for x in finished if isinstance(x, int)) == list(range(500))
    assert sum(isinstance(x, TimeoutError) for x in finished) == 100


def test_two_tasks_waiting_on_one_fd_is_an_error(reactor: Reactor) -> None:
    a, b = socket.socketpair()
    outcomes: list[object] = []

    async def wait_on_a() -> str:
        await readable(a)
        return "woke"

    reactor.spawn(wait_on_a(), on_done=outcomes.append)
    reactor.spawn(wait_on_a(), on_done=outcomes.append)
    assert isinstance(outcomes[0], RuntimeError)  # the second one, at once
    b.send(b"x")
    reactor.call_later(0.05, reactor.stop)
    reactor.run_forever()
    assert outcomes[1] == "woke"
    a.close()
    b.close()


def test_close_runs_finally_of_unfinished_tasks() -> None:
    reactor = Reactor()
    a, b = socket.socketpair()
    closed: list[str] = []

    async def waiter(name: str, deadline: bool) -> None:
        try:
            if deadline:
                await sleep(10)
            else:
                await readable(a)
        finally:
            closed.append(name)

    reactor.spawn(waiter("io", False))
    reactor.spawn(waiter("sleep", True), deadline=reactor.time() + 10)
    reactor.close()
    assert sorted(closed) == ["io", "sleep"]
    a.close()
    b.close()


def test_close_runs_on_close_callbacks_after_cancelling_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Last registered first, after unfinished tasks' finally blocks, once each; a failing
    callback is logged and the others still run; a removed one does not run."""
    reactor = Reactor()
    order: list[str] = []
    a, b = socket.socketpair()

    async def waiter() -> None:
        try:
            await readable(a)
        finally:
            order.append("task finally")

    def fail() -> None:
        order.append("fail")
        raise ValueError("boom")

    def removed() -> None:
        order.append("removed")

    first = functools.partial(order.append, "first")
    reactor.spawn(waiter())
    reactor.on_close(first)
    reactor.on_close(removed)
    reactor.on_close(fail)
    reactor.on_close(lambda: order.append("last"))
    reactor.on_close(first)  # again: still once, in its first place
    reactor.remove_on_close(removed)
    reactor.remove_on_close(removed)  # not there: no error
    with caplog.at_level(logging.ERROR, logger=reactor_module.__name__):
        reactor.close()
    assert order == ["task finally", "last", "fail", "first"]
    assert "reactor close callback failed" in caplog.text and "boom" in caplog.text
    reactor.close()  # twice: nothing runs again
    assert order == ["task finally", "last", "fail", "first"]
    with pytest.raises(RuntimeError, match="closed"):
        reactor.on_close(first)
    a.close()
    b.close()


def test_timed_out_task_may_start_work_with_a_new_timeout(reactor: Reactor) -> None:
    """Resumed by its deadline, a task starts a check with another timeout (a new deadline
    bucket appears while deadlines are being expired)."""
    outcomes: list[object] = []

    async def wait_with_timeout(seconds: float) -> str:
        limit_deadline(seconds)
        try:
            await sleep(5)
        except TimeoutError:
            return f"timed out after {seconds}"
        return "slept"

    async def first() -> None:
        outcomes.append(await wait_with_timeout(0.02))
        reactor.spawn(wait_with_timeout(0.03), on_done=outcomes.append)

    reactor.spawn(first())
    reactor.call_later(0.2, reactor.stop)
    reactor.run_forever()
    assert outcomes == ["timed out after 0.02", "timed out after 0.03"]


@pytest.fixture
def many_fds() -> Iterator[None]:
    """Room for a few thousand sockets (the soft limit is often 1024)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if want < 4096:
        pytest.skip(f"needs 4096 file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_answers_polled_before_their_deadline_count_though_the_loop_gets_to_them_after(
    reactor: Reactor, many_fds: None
) -> None:
    """A batch of answers seen by one poll before their deadline is judged as seen then:
    a task the loop resumes only after its deadline (the batch is slow to work through)
    still gets its answer, not a timeout."""
    count = reactor_module.MAX_EVENTS - 24
    pairs = [socket.socketpair() for _ in range(count)]
    got: list[object] = []

    async def wait_for_byte(sock: socket.socket) -> bytes:
        limit_deadline(0.2)
        await readable(sock)
        return sock.recv(1)

    def slow_done(outcome: object) -> None:
        got.append(outcome)
        time.sleep(0.0004)  # ~0.4 s for the whole batch: far past the 0.2 s deadline

    def answer_all() -> None:
        for _, peer in pairs:
            peer.send(b"x")

    try:
        for sock, _ in pairs:
            reactor.spawn(wait_for_byte(sock), on_done=slow_done)
        reactor.call_later(0.01, answer_all)
        reactor.call_later(0.7, reactor.stop)
        reactor.run_forever()
    finally:
        for a, b in pairs:
            a.close()
            b.close()
    timeouts = sum(isinstance(outcome, TimeoutError) for outcome in got)
    assert timeouts == 0
    assert got == [b"x"] * count


def test_an_answer_polled_after_its_deadline_is_a_timeout(reactor: Reactor) -> None:
    """Readiness first seen by a poll after the task's deadline is a timeout, even though
    the loop only looked late (a stall): the answer may have come late too."""
    a, b = socket.socketpair()
    got: list[object] = []

    async def wait_for_byte() -> bytes:
        limit_deadline(0.1)
        await readable(a)
        return a.recv(1)

    def answer_then_stall() -> None:
        b.send(b"x")
        time.sleep(0.2)  # the loop stalls past the deadline

    try:
        reactor.spawn(wait_for_byte(), on_done=got.append)
        reactor.call_later(0.05, answer_then_stall)
        reactor.call_later(0.4, reactor.stop)
        reactor.run_forever()
    finally:
        a.close()
        b.close()
    assert len(got) == 1 and isinstance(got[0], TimeoutError), got


def test_a_burst_of_due_timers_starts_in_batches_between_polls(reactor: Reactor) -> None:
    """Thousands of timers due at once (a loop that fell behind) start at most TIMER_BATCH
    tasks before the loop polls again, so answers are read between starts."""
    batch = reactor_module.TIMER_BATCH
    in_flight = 0
    most_in_flight = 0
    finished = 0
    a, b = socket.socketpair()
    b.send(b"x")  # a is readable for good: each task waits one poll, no more

    def start() -> None:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        # Each waits on its own dup of the fd: one waiter per fd.
        dup = socket.socket(fileno=os.dup(a.fileno()))

        async def wait_then_close() -> None:
            try:
                await one_wait_on(dup)
            finally:
                dup.close()

        reactor.spawn(wait_then_close())

    async def one_wait_on(sock: socket.socket) -> None:
        nonlocal in_flight, finished
        await readable(sock)
        in_flight -= 1
        finished += 1

    now = reactor.time()
    total = batch * 4
    for _ in range(total):
        reactor.call_at(now + 0.01, start)
    reactor.call_later(0.5, reactor.stop)
    try:
        reactor.run_forever()
    finally:
        a.close()
        b.close()
    assert finished == total
    assert most_in_flight <= batch


def test_a_mock_clock_jumps_to_timers_and_deadlines_when_the_loop_is_idle() -> None:
    clock = MockClock(start=100.0, autojump_threshold=0.0)
    seen: list[float] = []
    outcome: list[object] = []

    async def sleeper() -> None:
        await sleep(3600.0)  # an hour of virtual time
        seen.append(clock.time())
        limit_deadline(30.0)
        await Future()  # nobody resolves it: the deadline ends the wait

    with Reactor(clock) as reactor:
        reactor.call_later(10.0, lambda: seen.append(reactor.time()))
        started = time.monotonic()
        reactor.spawn(sleeper(), on_done=outcome.append)
        reactor.call_later(7200.0, reactor.stop)
        reactor.run_forever()
        real = time.monotonic() - started
    assert seen == [110.0, 3700.0]
    assert len(outcome) == 1 and isinstance(outcome[0], TimeoutError)
    assert clock.time() == 7300.0
    assert real < 1.0  # two hours of virtual time, no real waiting


def test_a_mock_clock_without_autojump_moves_only_when_advanced() -> None:
    clock = MockClock(start=0.0)
    fired: list[float] = []
    with Reactor(clock) as reactor:
        reactor.call_later(5.0, lambda: fired.append(reactor.time()))

        async def drive() -> None:
            for _ in range(3):
                clock.advance(2.0)
                await sleep(0)

        reactor.run(drive())
        assert fired == [6.0]
