"""The control process with in-process workers, in virtual time (tests/inprocess.py):
diffing fetches into worker deltas, transitions to the engine, the periodic re-notify,
bad configs, and a worker that dies."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from tests.inprocess import (
    SECOND,
    FakeEngine,
    InProcessWorkers,
    ScriptedChecks,
    control_in_virtual_time,
    run_for,
    tcp_config,
)

from seesaw_healthcheck.control.app import Control
from seesaw_healthcheck.model import Config, State

H, U, K = State.HEALTHY, State.UNHEALTHY, State.UNKNOWN
FAST = {
    "fetch_interval": 1 * SECOND,
    "notify_interval": 3600 * SECOND,  # no periodic re-notify unless a test wants it
    "batch_delay": 50_000_000,
}


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def checks() -> ScriptedChecks:
    return ScriptedChecks()


def make(engine: FakeEngine, checks: ScriptedChecks, **settings: object) -> Iterator[Control]:
    control, _, _ = control_in_virtual_time(engine, checks, **{**FAST, **settings})  # type: ignore[arg-type]
    try:
        yield control
    finally:
        control.close()


def states(engine: FakeEngine) -> dict[int, int]:
    return {i: n.status.state for i, n in engine.latest().items()}


def test_checks_reach_their_states_and_the_engine_hears_each_change_once(
    engine: FakeEngine, checks: ScriptedChecks
) -> None:
    engine.configs = {i: tcp_config(i, 1000 + i % 2) for i in range(1, 21)}
    checks.up[1001] = False
    for control in make(engine, checks):
        run_for(control, 5.0)
    assert states(engine) == {i: (U if i % 2 else H) for i in range(1, 21)}
    # One notification each: Unknown -> state, no periodic ones.
    assert sorted(n.id for n in engine.notifications()) == list(range(1, 21))
    # Each ran about once a second, from within one interval of the first fetch.
    assert 4 <= checks.runs[1000] / 10 <= 6


def test_a_changed_set_adds_removes_and_retimes_keeping_counters(
    engine: FakeEngine, checks: ScriptedChecks
) -> None:
    engine.configs = {i: tcp_config(i, 2000 + i) for i in (1, 2, 3)}
    for control in make(engine, checks, notify_interval=2 * SECOND):
        run_for(control, 4.0)
        before = control.table.entries[1].numbers()[3]  # successes
        engine.configs = {1: tcp_config(1, 2001, interval_ms=100), 4: tcp_config(4, 2004)}
        run_for(control, 1.0)  # the next fetch applies it
        engine.batches.clear()
        run_for(control, 4.0)
        assert sorted(control.table.entries) == [1, 4]
        after = control.table.entries[1].numbers()[3]
        assert after >= before + 30  # kept its count; now runs every 100 ms
    seen = {n.id for n in engine.notifications()}
    assert {1, 4} <= seen and not seen & {2, 3}  # removed: never reported again


def test_bad_configs_are_logged_once_kept_unknown_and_fixed_ones_start(
    engine: FakeEngine, checks: ScriptedChecks, caplog: pytest.LogCaptureFixture
) -> None:
    good = tcp_config(1, 3001)
    bad_interval = tcp_config(2, 3002, interval_ms=0)
    engine.configs = {1: good, 2: bad_interval, 3: Config(3, SECOND, 0, 0, None), 4: None}
    with caplog.at_level(logging.ERROR):
        for control in make(engine, checks, notify_interval=2 * SECOND):
            run_for(control, 5.0)  # five fetches of the same bad configs
            errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 3, errors
            assert any("Healthcheck 2" in e and "interval" in e for e in errors)
            got = states(engine)
            assert got[1] == H and got[2] == got[3] == got[4] == K  # re-notified as Unknown
            engine.configs[2] = tcp_config(2, 3002)
            run_for(control, 3.0)
    assert states(engine)[2] == H


def test_the_periodic_renotify_sends_every_check_even_never_run_ones(
    engine: FakeEngine, checks: ScriptedChecks
) -> None:
    engine.configs = {
        1: tcp_config(1, 4001),
        2: tcp_config(2, 4002, interval_ms=3_600_000),  # its first run may be far away
        3: Config(3, SECOND, 0, 0, None),
    }
    for control in make(engine, checks, notify_interval=10 * SECOND):
        run_for(control, 41.0)  # re-notifies at 5, 15, 25, 35 s
    by_id: dict[int, list[int]] = {}
    for n in engine.notifications():
        by_id.setdefault(n.id, []).append(n.status.state)
    assert by_id[1][0] == H and len(by_id[1]) == 5  # the transition, then four rounds
    assert by_id[3] == [K] * 4
    assert len(by_id[2]) >= 4


def test_nil_or_empty_configs_stop_every_check(engine: FakeEngine, checks: ScriptedChecks) -> None:
    engine.configs = {1: tcp_config(1, 5001, 100), 2: tcp_config(2, 5002, 100)}
    for control in make(engine, checks):
        run_for(control, 2.0)
        engine.configs = None  # the engine says nil: run nothing
        engine.down = False
        engine.configs = {}
        run_for(control, 2.0)
        runs = dict(checks.runs)
        run_for(control, 3.0)
        assert checks.runs == runs
        assert len(control.table) == 0
        assert control.stats()["runnable"] == 0


def test_a_dead_worker_is_restarted_and_its_checks_resume_without_a_spurious_change(
    engine: FakeEngine, checks: ScriptedChecks
) -> None:
    engine.configs = {i: tcp_config(i, 6000 + i % 3, retries=2) for i in range(1, 31)}
    checks.up[6001] = False
    control, _clock, launcher = control_in_virtual_time(engine, checks, workers=2, **FAST)
    try:
        run_for(control, 5.0)
        before = states(engine)
        count_before = len(engine.notifications())
        assert len(before) == 30
        successes = {e.id: e.numbers()[3] for e in control.table}
        victim = launcher.started[0]
        victim.kill()
        run_for(control, 5.0)
        assert len(launcher.started) == 3  # the dead one's replacement
        assert control.workers[0].starts == 2
        # Every check reports again, from where it was, and nothing changed for the engine.
        assert len(engine.notifications()) == count_before
        for entry in control.table:
            assert entry.numbers()[3] >= successes[entry.id] + (3 if entry.state == H else 0)
        # A failure within the retries of a Healthy check does not flip it after the
        # restart either: the state machine resumed, it did not start again from Unknown.
        checks.up[6000] = False
        run_for(control, 1.5)
        assert all(n.status.state != K for n in engine.notifications())
    finally:
        control.close()


def test_the_engine_down_then_back_gets_the_newest_state_of_every_check(
    engine: FakeEngine, checks: ScriptedChecks
) -> None:
    """A 60-second outage in virtual time: checks flap meanwhile; once the engine answers,
    it gets one notification per changed check, the newest, and nothing is lost."""
    engine.configs = {i: tcp_config(i, 7000 + (i - 1) // 5) for i in range(1, 16)}
    checks.up[7002] = False  # 11-15 fail throughout
    for control in make(engine, checks, retry_delay=200_000_000):
        run_for(control, 3.0)
        engine.down = True
        engine.batches.clear()
        checks.up[7000] = False  # 1-5: fail, then recover (two changes)
        run_for(control, 2.0)
        checks.up[7000] = True
        run_for(control, 2.0)
        checks.up[7001] = False  # 6-10: fail
        run_for(control, 56.0)
        stats = control.stats()
        assert stats["send_failures"] > 10 and stats["pending"] == 10
        engine.down = False
        run_for(control, 3.0)
    got = engine.latest()
    assert sorted(got) == list(range(1, 11))  # 11-15 never changed
    assert all(got[i].status.state == H and got[i].status.failures >= 1 for i in range(1, 6))
    assert all(got[i].status.state == U for i in range(6, 11))
    assert len(engine.notifications()) == 10  # coalesced to the newest per check


def test_a_ten_minute_engine_outage_logs_two_errors_and_a_summary_a_minute(
    engine: FakeEngine, checks: ScriptedChecks, caplog: pytest.LogCaptureFixture
) -> None:
    """Fetches and sends both fail for 10 minutes while checks flap: one ERROR per call,
    one summary line a minute, and every change still reaches the engine afterwards."""
    engine.configs = {i: tcp_config(i, 8000 + i % 2) for i in range(1, 11)}
    with caplog.at_level(logging.INFO, logger="seesaw_healthcheck.control.engine"):
        for control in make(engine, checks, retry_delay=2 * SECOND):
            run_for(control, 3.0)
            engine.down = True
            for minute in range(10):
                checks.up[8001] = minute % 2 == 1  # flaps every minute
                run_for(control, 60.0)
            engine.down = False
            run_for(control, 5.0)
    records = [r for r in caplog.records if r.name == "seesaw_healthcheck.control.engine"]
    errors = [r.getMessage() for r in records if r.levelno == logging.ERROR]
    summaries = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(errors) == 2, errors
    assert {e.split(" failed:")[0] for e in errors} == {
        "SeesawEngine.Healthchecks",
        "SeesawEngine.HealthState",
    }
    assert 9 <= len(summaries) <= 10, summaries
    assert "5 pending notifications" in summaries[-1]  # the flapping five, coalesced
    # The engine then got the newest state: Healthy again (minute 9), after failures.
    got = engine.latest()
    assert all(got[i].status.state == H for i in range(1, 11))
    assert all(got[i].status.failures >= 60 for i in range(1, 11, 2))


def forty_checks_of_a_worker_recycled_at_40(
    engine: FakeEngine, checks: ScriptedChecks, monkeypatch: pytest.MonkeyPatch
) -> tuple[Control, InProcessWorkers]:
    """40 checks (the odd ids failing) run 4 s by a worker recycled when they fall to 10."""
    from seesaw_healthcheck.control import app

    monkeypatch.setattr(app, "RECYCLE_PEAK", 40)
    engine.configs = {i: tcp_config(i, 9500 + i % 2) for i in range(1, 41)}
    checks.up[9501] = False
    control, _, launcher = control_in_virtual_time(engine, checks, **FAST)
    run_for(control, 4.0)
    return control, launcher


def test_a_worker_whose_checks_shrink_to_a_quarter_is_recycled_without_a_notification(
    engine: FakeEngine, checks: ScriptedChecks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new process gives back the memory Python keeps after most checks are gone; the
    remaining checks resume from the table's state: the engine hears nothing about it."""
    control, launcher = forty_checks_of_a_worker_recycled_at_40(engine, checks, monkeypatch)
    try:
        heard = len(engine.notifications())
        assert heard == 40
        engine.configs = {i: tcp_config(i, 9500 + i % 2) for i in range(1, 11)}
        run_for(control, 4.0)
        assert len(launcher.started) == 2 and control.workers[0].starts == 2
        assert launcher.started[0].returncode == 0  # it left when asked
        assert len(engine.notifications()) == heard  # no Unknown, no transition
        runs = {e.id: e.numbers()[3] + e.numbers()[2] for e in control.table}
        run_for(control, 2.0)
        assert all(e.numbers()[3] + e.numbers()[2] > runs[e.id] for e in control.table)
    finally:
        control.close()


def test_a_big_shrink_gives_back_the_per_check_collections_and_the_slots_above_those_in_use(
    engine: FakeEngine, checks: ScriptedChecks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CPython keeps a dict's peak capacity after deletions, and the slot allocator would
    keep a free slot number per removed check: after 5,000 checks shrink to 10, both are
    sized to what is left, and the checks left keep their slots and numbers. The worker
    gets the removals in 10 chunks and gives memory back once (a full collection each)."""
    import sys

    from seesaw_healthcheck.worker import worker as worker_module

    releases: list[float] = []
    monkeypatch.setattr(worker_module, "release", lambda: releases.append(0.0))
    engine.configs = {i: tcp_config(i, 9500) for i in range(1, 5001)}
    control, _, _ = control_in_virtual_time(engine, checks, **FAST)
    try:
        run_for(control, 3.0)
        worker = control.workers[0]
        peak_size = sys.getsizeof(control.table.entries)
        kept = [*range(1, 10), 1200]
        slots = {i: control.table.entries[i].slot for i in kept}
        assert max(slots.values()) < 4999
        engine.configs = {i: engine.configs[i] for i in kept}
        run_for(control, 2.0)
        assert len(releases) == 1
        assert sys.getsizeof(control.table.entries) < peak_size / 50
        assert worker.alloc_slot() == min(set(range(5000)) - set(slots.values()))
        assert worker._next_slot == max(slots.values()) + 1
        assert {i: control.table.entries[i].slot for i in kept} == slots
        runs = {e.id: e.numbers()[3] for e in control.table}
        run_for(control, 2.0)
        assert all(e.numbers()[3] > runs[e.id] > 0 for e in control.table)
    finally:
        control.close()


def test_a_recycled_worker_gets_its_checks_slots_packed_with_their_numbers(
    engine: FakeEngine, checks: ScriptedChecks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks left after a shrink hold slots high in the table; before the worker's
    next process they move to the start, their numbers with them: counters go on from
    where they were and the engine hears nothing."""
    control, launcher = forty_checks_of_a_worker_recycled_at_40(engine, checks, monkeypatch)
    try:
        heard = len(engine.notifications())
        kept = range(31, 41)
        before = {i: control.table.entries[i].numbers() for i in kept}
        assert sorted(control.table.entries[i].slot for i in kept) == list(range(30, 40))
        engine.configs = {i: engine.configs[i] for i in kept}
        run_for(control, 4.0)
        assert len(launcher.started) == 2  # recycled
        assert sorted(e.slot for e in control.table) == list(range(10))
        assert control.workers[0].alloc_slot() == 10
        assert len(engine.notifications()) == heard  # no Unknown, no transition
        for entry in control.table:
            start, _, failures, successes, _ = entry.numbers()
            was_start, _, was_failures, was_successes, _ = before[entry.id]
            assert start > was_start
            assert failures + successes > was_failures + was_successes >= 3
            assert (failures > was_failures) == (entry.id % 2 == 1)
    finally:
        control.close()
