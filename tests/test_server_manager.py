"""The manager on a real reactor thread, with real checks against loopback sockets."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from seesaw_healthcheck import checkers
from seesaw_healthcheck.model import (
    Config,
    State,
    Status,
    Target,
    TCPChecker,
    UDPChecker,
    ip_to_bytes,
)
from seesaw_healthcheck.reactor import Reactor
from seesaw_healthcheck.server.manager import FIRST_ROUND_SHARE, Manager
from seesaw_healthcheck.server.notifier import CoalescingQueue

MS = 1_000_000


class RecordingQueue(CoalescingQueue):
    """Keeps every put, in order, besides coalescing."""

    def __init__(self) -> None:
        super().__init__(full_at=10**9)
        self.log: list[tuple[float, int, Status]] = []

    def put_many(self, items: Any) -> None:
        items = list(items)
        now = time.monotonic()
        self.log.extend((now, i, s) for i, s in items)
        super().put_many(items)

    def ids_after(self, t: float) -> set[int]:
        return {i for when, i, _ in list(self.log) if when > t}


@contextlib.contextmanager
def running_manager(
    dry_run: bool = False, notify_s: float = 60.0, run_check: Any = checkers.run
) -> Iterator[tuple[Manager, RecordingQueue, Callable[[Callable[[], Any]], Any]]]:
    reactor = Reactor()
    queue = RecordingQueue()
    manager = Manager(
        reactor,
        queue,
        run_check=run_check,
        timeout_for=checkers.timeout_for,
        describe=checkers.describe,
        dry_run=dry_run,
        notify_interval_s=notify_s,
    )
    thread = threading.Thread(target=reactor.run_forever, daemon=True)
    thread.start()

    def on_reactor(fn: Callable[[], Any]) -> Any:
        """Run fn on the reactor thread and wait for its result."""
        done = threading.Event()
        box: list[Any] = []
        reactor.call_soon_threadsafe(lambda: (box.append(fn()), done.set()))
        assert done.wait(5), "reactor did not answer"
        return box[0]

    on_reactor(manager.start_notify_timer)
    try:
        yield manager, queue, on_reactor
    finally:
        on_reactor(manager.stop_all)
        reactor.stop()
        thread.join(10)  # generous: CI machines are loaded
        assert not thread.is_alive(), "reactor thread did not stop"
        reactor.close()


@contextlib.contextmanager
def tcp_listener() -> Iterator[int]:
    """Accept-and-close on 127.0.0.1; yields the port."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1024)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        server.close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


@contextlib.contextmanager
def silent_udp() -> Iterator[int]:
    """A bound UDP socket that never answers: UDP checks to it run until their timeout."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def tcp(check_id: int, port: int, interval_ms: int = 200, retries: int = 0) -> Config:
    target = Target(ip=ip_to_bytes("127.0.0.1"), port=port, proto=6)
    return Config(check_id, interval_ms * MS, 500 * MS, retries, TCPChecker(target))


def udp(check_id: int, port: int, interval_ms: int, timeout_ms: int) -> Config:
    target = Target(ip=ip_to_bytes("127.0.0.1"), port=port, proto=17)
    checker = UDPChecker(target, receive="pong", send="ping")
    return Config(check_id, interval_ms * MS, timeout_ms * MS, 0, checker)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_checks_reach_states_spread_and_on_schedule():
    with tcp_listener() as port, running_manager() as (manager, queue, on_reactor):
        dead = closed_port()
        configs: Mapping[int, Config | None] = {
            **{i: tcp(i, port) for i in range(1, 41)},
            **{i: tcp(i, dead) for i in range(41, 51)},
        }
        on_reactor(lambda: manager.apply(configs))
        time.sleep(1.1)
        states = on_reactor(lambda: {i: c.state for i, c in manager.checks.items()})
        assert all(states[i] == State.HEALTHY for i in range(1, 41))
        assert all(states[i] == State.UNHEALTHY for i in range(41, 51))
        runs = on_reactor(lambda: {i: c.successes + c.failures for i, c in manager.checks.items()})
        # 1.1 s at a 200 ms interval: 5 or 6 runs each (4 on a loaded machine, where a
        # late slot is skipped), never a burst.
        assert all(4 <= n <= 6 for n in runs.values()), runs
        # One notification per transition: Unknown -> state.
        first = {}
        for _, i, s in queue.log:
            first.setdefault(i, s)
        assert len(first) == 50
        stats = manager.stats
        assert stats.ran_once == stats.runnable == 50 and stats.all_ran_at > 0
        # The first runs were spread over the first interval, not started at once.
        assert stats.all_ran_at - stats.first_config_at > 0.1
        assert stats.max_lateness < 0.25
        assert stats.skipped_busy == 0


class _Passed:
    success = True
    duration_ns = 0

    def __str__(self) -> str:
        return "ok"


def test_first_round_ends_within_an_interval_of_the_fetch_then_phases_even():
    """A fetch that took 0.3 s of a 1 s interval: the new checks' first runs still all come
    within the interval after the fetch was sent (spread, not a herd); from the second run
    on, check k of n runs at fetch + (k/n + r) intervals: an even load over the interval."""
    runs: dict[int, list[float]] = {}

    async def record(checker: TCPChecker, timeout_s: float) -> _Passed:
        runs.setdefault(checker.target.port, []).append(time.monotonic())
        return _Passed()

    count = 100
    with running_manager(run_check=record) as (manager, _, on_reactor):
        configs = {i: tcp(i, i, interval_ms=1000) for i in range(1, count + 1)}
        requested_at = time.monotonic() - 0.3
        on_reactor(lambda: manager.apply(configs, requested_at))
        wait_for(lambda: all(len(runs.get(i, ())) >= 3 for i in configs), timeout=6)
    firsts = [runs[i][0] for i in configs]
    assert max(firsts) - requested_at <= FIRST_ROUND_SHARE + 0.03  # + lateness when loaded
    assert max(firsts) - min(firsts) > 0.5  # spread over what was left of the interval
    assert manager.stats.first_config_at == requested_at
    for i in configs:
        phase = requested_at + (i - 1) / count
        assert runs[i][1] - (phase + 1.0) == pytest.approx(0, abs=0.03), i
        assert runs[i][2] - (phase + 2.0) == pytest.approx(0, abs=0.03), i


def test_remove_add_update_keep_counters():
    with (
        tcp_listener() as port,
        silent_udp() as quiet,
        running_manager() as (
            manager,
            queue,
            on_reactor,
        ),
    ):
        configs: dict[int, Config | None] = {
            1: tcp(1, port),
            2: tcp(2, port),
            3: udp(3, quiet, 200, 2000),
        }
        on_reactor(lambda: manager.apply(dict(configs)))
        wait_for(lambda: on_reactor(lambda: manager.checks[1].successes >= 2))
        in_flight = on_reactor(lambda: manager.checks[3].running)
        assert in_flight  # the UDP check waits for its 2 s timeout
        # Remove 2 and the in-flight 3, add 4, re-time 1.
        before = on_reactor(lambda: manager.checks[1].successes)
        new = {1: tcp(1, port, interval_ms=50), 4: tcp(4, port)}
        removed_at = time.monotonic()
        on_reactor(lambda: manager.apply(new))
        time.sleep(0.6)
        assert on_reactor(lambda: sorted(manager.checks)) == [1, 4]
        after = on_reactor(lambda: manager.checks[1].successes)
        assert after >= before + 8  # kept its count and now runs every 50 ms
        assert 4 in queue.ids_after(removed_at)
        # Removed checks never report again, even in a full re-notification.
        on_reactor(lambda: manager.notify_chunk([*manager.checks, 2, 3]))
        assert not queue.ids_after(removed_at) & {2, 3}


def test_busy_check_skips_slots_without_overlap():
    with silent_udp() as quiet, running_manager() as (manager, _queue, on_reactor):
        on_reactor(lambda: manager.apply({9: udp(9, quiet, 100, 350)}))
        time.sleep(1.3)
        check = on_reactor(lambda: manager.checks[9])
        runs = check.failures + (1 if check.running else 0)
        # 350 ms runs on a 100 ms grid: one run per 4 slots, the rest skipped.
        assert 3 <= runs <= 4
        assert manager.stats.skipped_busy >= 8


def test_bad_configs_logged_once_and_others_run(caplog: pytest.LogCaptureFixture):
    with tcp_listener() as port, running_manager() as (manager, _queue, on_reactor):
        configs: dict[int, Config | None] = {
            1: tcp(1, port),
            2: Config(2, 0, 0, 0, TCPChecker(Target(ip=ip_to_bytes("127.0.0.1"), port=port))),
            3: Config(3, 10**9, 0, 0, None),
            4: None,
        }
        with caplog.at_level(logging.ERROR, logger="seesaw_healthcheck.server.manager"):
            on_reactor(lambda: manager.apply(configs))
            on_reactor(lambda: manager.apply(dict(configs)))
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 3, errors
        assert any("Healthcheck 2" in e and "interval" in e for e in errors)
        wait_for(lambda: on_reactor(lambda: manager.checks[1].state) == State.HEALTHY)
        # Fixing a bad config starts it.
        on_reactor(lambda: manager.apply({**configs, 2: tcp(2, port)}))
        wait_for(lambda: on_reactor(lambda: manager.checks[2].state) == State.HEALTHY)


def test_full_renotify_includes_never_run_checks():
    with tcp_listener() as port, running_manager(notify_s=0.3) as (manager, queue, on_reactor):
        configs: dict[int, Config | None] = {
            1: tcp(1, port, interval_ms=100),
            2: tcp(2, port, interval_ms=60_000),  # first slot may be far away
            3: Config(3, 10**9, 0, 0, None),  # never runs: Unknown, as Go reports it
        }
        on_reactor(lambda: manager.apply(configs))
        t0 = time.monotonic()
        time.sleep(0.8)
        later = [(i, s) for when, i, s in list(queue.log) if when > t0 + 0.05]
        by_id: dict[int, list[Status]] = {}
        for i, s in later:
            by_id.setdefault(i, []).append(s)
        assert set(by_id) >= {1, 3}
        assert len(by_id[3]) >= 2 and all(s.state == State.UNKNOWN for s in by_id[3])
        assert by_id[1][-1].state == State.HEALTHY


def test_dry_run_always_succeeds_without_network():
    with running_manager(dry_run=True) as (manager, queue, on_reactor):
        dead = closed_port()
        on_reactor(lambda: manager.apply({5: tcp(5, dead, interval_ms=50)}))
        time.sleep(0.3)
        check = on_reactor(lambda: manager.checks[5])
        assert check.state == State.HEALTHY and check.failures == 0 and check.successes >= 4
        assert check.last_message == "dryrun mode; always succeed"
        assert queue.log[0][2].message == "dryrun mode; always succeed"


def test_empty_or_nil_configs_stop_everything():
    with tcp_listener() as port, running_manager() as (manager, queue, on_reactor):
        on_reactor(lambda: manager.apply({1: tcp(1, port, 50), 2: tcp(2, port, 50)}))
        time.sleep(0.2)
        on_reactor(lambda: manager.apply(None))
        t0 = time.monotonic()
        assert on_reactor(lambda: len(manager.checks)) == 0
        time.sleep(0.2)
        assert not queue.ids_after(t0)
        assert manager.stats.checks == manager.stats.runnable == manager.stats.ran_once == 0


def test_stopped_checks_hold_no_reference_cycle():
    """gc.freeze() runs after each config; a removed check must then be freed by reference
    counting alone, so it must not keep bound methods of itself."""
    with tcp_listener() as port, running_manager() as (manager, _queue, on_reactor):
        on_reactor(lambda: manager.apply({1: tcp(1, port, 50), 2: tcp(2, port, 50)}))
        time.sleep(0.2)
        check = on_reactor(lambda: manager.checks[1])
        on_reactor(lambda: manager.apply({2: tcp(2, port, 50)}))
        for slot in ("_fire_cb", "_done_cb"):
            assert getattr(getattr(check, slot), "__self__", None) is not check
