"""A worker's schedule in virtual time: first rounds, phases, busy and late slots, changes.

The checks are scripted (tests/inprocess.py), so only the schedule is under test; the real
checkers have their own tests, and the whole server runs against the Go engine elsewhere.
"""

from __future__ import annotations

import itertools

import pytest
from tests.inprocess import ScriptedChecks, tcp_config

from seesaw_healthcheck.channel import Add
from seesaw_healthcheck.model import Config, State
from seesaw_healthcheck.reactor import MockClock, Reactor
from seesaw_healthcheck.worker.check import DRY_RUN_MESSAGE
from seesaw_healthcheck.worker.schedule import FIRST_ROUND_SHARE, Schedule, ScheduledCheck


class Harness:
    def __init__(self, checks: ScriptedChecks | None = None, dry_run: bool = False) -> None:
        self.clock = MockClock(start=1000.0, autojump_threshold=0.0)
        self.reactor = Reactor(self.clock)
        self.checks = checks or ScriptedChecks()
        self.starts: dict[int, list[float]] = {}
        self.changes: list[tuple[int, int]] = []
        self.schedule = Schedule(
            self.reactor,
            run_check=self._run,
            timeout_for=lambda config: config.timeout / 1e9,
            on_result=self._on_result,
            dry_run=dry_run,
        )

    async def _run(self, checker: object, timeout_s: float) -> object:
        port = checker.target.port  # type: ignore[attr-defined]
        self.starts.setdefault(port, []).append(self.reactor.time())
        return await self.checks(checker, timeout_s)

    def _on_result(self, check: ScheduledCheck, changed: bool) -> None:
        if changed:
            self.changes.append((check.id, check.state))

    def add(self, configs: list[Config], requested_at: float | None = None) -> None:
        adds: list[Add] = [(n, n / len(configs), c, None) for n, c in enumerate(configs)]
        self.schedule.add(adds, requested_at)

    def run_for(self, seconds: float) -> None:
        self.reactor.call_later(seconds, self.reactor.stop)
        self.reactor.run_forever()

    def close(self) -> None:
        self.schedule.stop_all()
        self.reactor.close()


def test_first_round_ends_within_an_interval_of_the_fetch_then_phases_even() -> None:
    """A fetch that took 0.3 s of a 1 s interval: the first runs still all come within the
    interval after the fetch was sent (spread, not a herd); from the second run on, check
    k of n runs at fetch + (k/n + r) intervals: an even load over the interval."""
    h = Harness()
    count = 100
    requested_at = h.reactor.time() - 0.3
    h.add([tcp_config(i, i) for i in range(1, count + 1)], requested_at)
    h.run_for(3.0)
    firsts = [h.starts[i][0] for i in range(1, count + 1)]
    assert max(firsts) - requested_at <= FIRST_ROUND_SHARE
    assert max(firsts) - min(firsts) > 0.5  # spread over what was left of the interval
    assert h.schedule.stats.first_config_at == requested_at
    for i in range(1, count + 1):
        phase = requested_at + (i - 1) / count
        assert h.starts[i][1] == pytest.approx(phase + 1.0)
        assert h.starts[i][2] == pytest.approx(phase + 2.0)
    stats = h.schedule.stats
    assert stats.ran_once == stats.checks == count and stats.all_ran_at
    assert stats.max_lateness == 0.0
    h.close()


def test_a_busy_check_skips_its_slots_without_overlapping_runs() -> None:
    checks = ScriptedChecks(took_s={9: 0.35})
    h = Harness(checks)
    h.add([tcp_config(9, 9, interval_ms=100)])
    h.run_for(1.3)
    runs = h.starts[9]
    assert all(b - a >= 0.35 for a, b in itertools.pairwise(runs))
    assert len(runs) == 4  # 350 ms runs on a 100 ms grid: one run per 4 slots
    assert h.schedule.stats.skipped_busy >= 8
    h.close()


def test_a_loop_that_fell_behind_skips_whole_intervals_instead_of_a_burst() -> None:
    h = Harness()
    h.add([tcp_config(1, 1, interval_ms=100)])
    h.run_for(0.5)
    before = len(h.starts[1])
    h.clock.advance(1.0)  # the loop stalled for ten intervals
    h.run_for(0.05)
    assert len(h.starts[1]) == before + 1  # one late run, not ten
    assert h.schedule.stats.skipped_late >= 9
    h.close()


def test_a_changed_config_keeps_counters_state_and_phase() -> None:
    h = Harness()
    h.add([tcp_config(1, 1, interval_ms=200), tcp_config(2, 2, interval_ms=200)])
    h.run_for(1.0)
    check = h.schedule.checks[1]
    successes = check.successes
    h.schedule.update(tcp_config(1, 1, interval_ms=50))
    h.run_for(1.0)
    assert check.successes >= successes + 19  # same check, now every 50 ms
    assert check.state == State.HEALTHY and h.changes.count((1, State.HEALTHY)) == 1
    h.schedule.remove(2)
    runs = len(h.starts[2])
    h.run_for(1.0)
    assert len(h.starts[2]) == runs  # removed: never runs again
    assert h.schedule.stats.checks == 1
    h.close()


def test_a_removed_check_holds_no_reference_to_itself() -> None:
    """A removed check must be freed by reference counting alone (no cycle through its own
    bound methods)."""
    h = Harness()
    h.add([tcp_config(1, 1, interval_ms=50)])
    h.run_for(0.2)
    check = h.schedule.checks[1]
    h.schedule.remove(1)
    for slot in ("_fire_cb", "_done_cb"):
        assert getattr(getattr(check, slot), "__self__", None) is not check
    h.close()


def test_dry_run_always_succeeds_without_running_a_check() -> None:
    checks = ScriptedChecks(up={5: False})
    h = Harness(checks, dry_run=True)
    h.add([tcp_config(5, 5, interval_ms=50)])
    h.run_for(0.3)
    check = h.schedule.checks[5]
    assert check.state == State.HEALTHY and check.failures == 0 and check.successes >= 5
    assert check.last_message == DRY_RUN_MESSAGE
    assert not checks.runs
    h.close()


def test_a_resumed_check_keeps_its_state_and_counts_on() -> None:
    h = Harness(ScriptedChecks(up={7: False}))
    resume = (int(State.HEALTHY), 0, 3, 40, 1, 1, "TCP connect to 127.0.0.1:7")
    h.schedule.add([(0, 0.0, tcp_config(7, 7, interval_ms=100, retries=2), resume)])
    h.run_for(0.15)  # runs at 0 and 0.1 s
    check = h.schedule.checks[7]
    assert check.state == State.HEALTHY and check.successes == 40 and check.failures == 5
    assert not h.changes  # two failures within the retries: no change
    h.run_for(0.1)
    assert h.changes == [(7, State.UNHEALTHY)]
    h.close()
