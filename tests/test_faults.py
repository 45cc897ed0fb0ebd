"""Fault tests: the real server process (control process and check workers) against an
engine that dies, turns into a regular file or misbehaves, a full log filesystem, a file
descriptor limit of 64, a wall clock stepped by an hour, and SIGHUP.

Each test is bounded (every wait has a deadline) and ends with SIGTERM and a clean exit
(``server_process``'s check). The engine is the Go stand-in (``gopeer engine``) where Go's
own net/rpc server can play the part, else ``tests/responders/engine.py``. Some need root
(mounting a tmpfs, raising a hard limit) or Debian's ``faketime``; ``make test`` runs as
root and installs it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import free_port
from tests.gopeer import GoEngine, read_records, write_checks_file
from tests.responders.engine import RPC_ERROR_TEXT, HostileEngine, wait_for_calls
from tests.responders.tcp import DelayedReplyResponder
from tests.test_server_integration import (
    FAST,
    HEALTHY,
    UNHEALTHY,
    ServerProcess,
    ToggleTarget,
    latest,
    tcp_config,
    wait_until,
)

from seesaw_healthcheck.control.config import ENGINE_TIMEOUT_S
from seesaw_healthcheck.model import (
    SECOND,
    Checks,
    Config,
    Target,
    TCPChecker,
    ip_to_bytes,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


class FaultServer(ServerProcess):
    """The server as ``ServerProcess`` runs it, plus: a command to run it under
    (``prefix``, e.g. prlimit), an environment, logging to files instead of stderr, and
    no HTTP endpoint (parallel runs would fight over its port)."""

    def __init__(
        self,
        engine_socket: Path,
        tmp: Path,
        *flags: str,
        prefix: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        logtostderr: bool = True,
    ) -> None:
        self.log_path = tmp / "server.log"  # stdout and stderr
        self.stats_path = tmp / "stats.json"
        args = [
            *prefix, sys.executable, "-m", "seesaw_healthcheck.cli.healthcheck",
            "-engine", str(engine_socket), "-stats_file", str(self.stats_path),
            *(["-logtostderr"] if logtostderr else []), *FAST, "-http_addr", "", *flags,
        ]  # fmt: skip
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=self._log, env=env)


@contextlib.contextmanager
def fault_server(
    engine_socket: Path, tmp: Path, *flags: str, stop_within: float = 1.0, **kw: Any
) -> Iterator[FaultServer]:
    server = FaultServer(engine_socket, tmp, *flags, **kw)
    try:
        yield server
    except BaseException:
        sys.stderr.write(server.log()[-4000:])
        raise
    finally:
        took = server.stop()
    assert took < stop_within, f"SIGTERM took {took:.2f} s"


def states(record: Path) -> dict[int, int]:
    return {i: r["state"] for i, r in latest(read_records(record)).items()}


def stat(server: ServerProcess, key: str) -> Any:
    return server.stats().get(key, 0)


def grows(server: ServerProcess, key: str, by: int, timeout: float) -> None:
    """Wait until the server's stats counter ``key`` has grown by ``by``."""
    start = stat(server, key)
    wait_until(lambda: stat(server, key) >= start + by, timeout, f"{key} to grow by {by}")


# --- the engine killed mid-burst -----------------------------------------------------


def test_engine_killed_mid_notify_burst_and_restarted_loses_no_state_change(
    gopeer: Path, short_tmp: Path
) -> None:
    """400 checks go Unhealthy within one interval, notified 10 to a call; the engine is
    stopped (SIGSTOP, so a call is cut mid-way) once some but not all have arrived, then
    SIGKILLed, and a new engine is started on the same path. Every check's Unhealthy
    reaches one of the two engines, those the first missed reach the second, and the
    server never stops. No periodic re-notify in this test: only the retries deliver."""
    count = 400
    target = ToggleTarget()
    target.on()
    checks = short_tmp / "checks.json"
    first, second = short_tmp / "first.jsonl", short_tmp / "second.jsonl"
    write_checks_file(checks, [tcp_config(i, target.port, interval="1s") for i in range(count)])
    sock = short_tmp / "engine.sock"
    all_healthy = dict.fromkeys(range(count), HEALTHY)
    all_unhealthy = dict.fromkeys(range(count), UNHEALTHY)
    engine = GoEngine(sock, checks_file=checks, record=first).start()
    restarted: GoEngine | None = None
    try:
        with fault_server(
            sock, short_tmp, "-batch_size", "10", "-batch_delay", "5ms", "-notify_interval", "1h"
        ) as server:
            wait_until(lambda: states(first) == all_healthy, 20, "all Healthy")
            target.off()

            def some_unhealthy() -> bool:
                return UNHEALTHY in states(first).values()

            wait_until(some_unhealthy, 10, "the burst to start")
            assert engine.proc is not None
            os.kill(engine.proc.pid, signal.SIGSTOP)
            heard = [i for i, s in states(first).items() if s == UNHEALTHY]
            assert len(heard) < count, "the burst was over before the kill"
            os.kill(engine.proc.pid, signal.SIGKILL)
            engine.stop()
            grows(server, "send_failures", 2, 10)  # the cut call, then a refused one

            restarted = GoEngine(sock, checks_file=checks, record=second).start()

            def union() -> dict[int, int]:
                return {**states(first), **states(second)}

            wait_until(lambda: union() == all_unhealthy, 20, "every Unhealthy delivered")
            missed = set(range(count)) - set(heard)
            assert missed <= set(states(second)), "a change the kill cut off never came"
            # Notifications flow on to the new engine.
            target.on()
            wait_until(lambda: states(second) == all_healthy, 20, "Healthy again, at the new one")
            assert server.alive()
            assert server.stats()["worker_starts"] == [1]
    finally:
        target.off()
        engine.stop()
        if restarted is not None:
            restarted.stop()


# --- the engine socket turned into a regular file -----------------------------------


def test_engine_path_a_regular_file_then_a_live_engine_again(gopeer: Path, short_tmp: Path) -> None:
    target = ToggleTarget()
    target.on()
    checks = short_tmp / "checks.json"
    first, second = short_tmp / "first.jsonl", short_tmp / "second.jsonl"
    write_checks_file(checks, [tcp_config(i, target.port) for i in range(1, 6)])
    sock = short_tmp / "engine.sock"
    try:
        with fault_server(sock, short_tmp, "-notify_interval", "1h") as server:
            with GoEngine(sock, checks_file=checks, record=first):
                wait_until(lambda: states(first) == dict.fromkeys(range(1, 6), HEALTHY), 15, "up")
            # The engine is gone and its path is now a regular file.
            sock.write_text("not an engine\n")
            mark = len(server.log())
            target.off()  # changes to deliver once the engine is back

            def both_failed() -> bool:
                text = server.log()[mark:]
                return (
                    "SeesawEngine.Healthchecks failed" in text
                    and "SeesawEngine.HealthState failed" in text
                )

            wait_until(both_failed, 10, "a failed fetch and a failed notification")
            failures = [
                line
                for line in server.log()[mark:].splitlines()
                if "SeesawEngine." in line and " failed: " in line
            ]
            assert failures
            for line in failures:
                assert f"ConnectionError: rpc: cannot connect to {sock}: not a socket" in line
            about_engine = [x for x in server.log()[mark:].splitlines() if str(sock) in x]
            assert not [x for x in about_engine if "refused" in x.lower()], about_engine

            sock.unlink()
            back = len(server.log())
            with GoEngine(sock, checks_file=checks, record=second) as engine:
                wait_until(
                    lambda: states(second) == dict.fromkeys(range(1, 6), UNHEALTHY),
                    15,
                    "the changes made meanwhile to reach the new engine",
                )
                # After a failed fetch the next comes FETCH_RETRY_S (5 s) later.
                wait_until(
                    lambda: "Engine returned 5 healthchecks" in server.log()[back:],
                    10,
                    "fetches to resume",
                )
            assert engine.summary["healthchecks_calls"] >= 1
            assert "engine answering again" in server.log()[mark:]
            assert server.alive()
    finally:
        target.off()


# --- a hostile engine ---------------------------------------------------------------

GOOD = range(1, 6)


def good_checks(port: int) -> dict[int, Config]:
    target = Target(ip=ip_to_bytes("127.0.0.1"), port=port, proto=6)
    return {i: Config(i, SECOND // 5, SECOND // 2, 0, TCPChecker(target)) for i in GOOD}


# mode -> (what the control process logs for the failed fetch, how long it may take)
HOSTILE: dict[str, tuple[str, float]] = {
    "garbage": ("GobError: gob: ", 5.0),
    "header_then_close": (
        "ConnectionError: rpc: server {sock} closed the connection mid-reply",
        5.0,
    ),
    "huge_length": ("GobError: gob: message length 2147483648 at offset 0 exceeds the limit", 5.0),
    "bad_body": ("ReplyBodyError: reading body gob: ", 5.0),
    "rpc_error": (f"RpcError: {RPC_ERROR_TEXT}", 5.0),
    "silent": (
        f"TimeoutError: rpc: SeesawEngine.Healthchecks on {{sock}}: no reply in "
        f"{ENGINE_TIMEOUT_S:g} s",
        ENGINE_TIMEOUT_S + 5.0,
    ),
}


@pytest.mark.parametrize("mode", sorted(HOSTILE))
def test_hostile_engine_costs_only_the_fetch(mode: str, short_tmp: Path) -> None:
    """The engine answers Healthchecks in a hostile way (HealthState stays sane): the
    control process logs the failure once, under the error's own type name, within the
    time it should (at once, or ENGINE_TIMEOUT_S for silence, never waiting for a 2 GiB
    message); the good checks are checked and notified all the while; once the engine
    is sane again (SIGHUP: fetch now, not after the 5 s retry pause) fetches resume."""
    sock = short_tmp / "engine.sock"
    expected, limit = HOSTILE[mode]
    expected = expected.format(sock=sock)
    with (
        DelayedReplyResponder() as up,
        HostileEngine(sock, Checks(good_checks(up.port))) as engine,
        fault_server(sock, short_tmp, "-notify_interval", "1s") as server,
    ):
        wait_until(lambda: engine.states() == dict.fromkeys(GOOD, HEALTHY), 15, "Healthy")
        mark = len(server.log())
        engine.mode = mode
        wait_for_calls(engine, mode, 1, 5)
        asked = time.monotonic()
        runs, notes = stat(server, "checks_run"), engine.notifications

        def failure_line() -> str | None:
            for line in server.log()[mark:].splitlines():
                if "SeesawEngine.Healthchecks failed: " in line:
                    return line
            return None

        line = wait_until(failure_line, limit, f"the {mode} fetch to fail")
        took = time.monotonic() - asked
        assert line.startswith("E"), line  # an ERROR
        assert f"SeesawEngine.Healthchecks failed: {expected}" in line, line
        if mode == "silent":
            assert took >= ENGINE_TIMEOUT_S - 0.5, f"gave up after {took:.1f} s"
        else:
            assert took < ENGINE_TIMEOUT_S / 2, f"took {took:.1f} s"
        # Meanwhile the good checks ran and were notified (every second, here).
        wait_until(lambda: stat(server, "checks_run") >= runs + 5 * len(GOOD), 5, "runs")
        wait_until(lambda: engine.notifications >= notes + len(GOOD), 5, "notifications")
        assert engine.states() == dict.fromkeys(GOOD, HEALTHY)
        assert server.alive()

        sane = engine.calls["sane"]
        engine.mode = "sane"
        server.proc.send_signal(signal.SIGHUP)
        wait_for_calls(engine, "sane", sane + 1, 3)
        wait_until(lambda: "engine answering again" in server.log()[mark:], 3, "recovery")
        assert engine.calls[mode] <= 2, engine.calls  # no busy retry loop
        log = server.log()[mark:]
        assert log.count("SeesawEngine.Healthchecks failed: ") == 1, log
        assert "Traceback" not in server.log()
        assert server.stats()["worker_starts"] == [1]


def test_hostile_engine_invalid_checks_are_logged_once_and_the_good_ones_run(
    short_tmp: Path,
) -> None:
    sock = short_tmp / "engine.sock"
    with DelayedReplyResponder() as up, DelayedReplyResponder() as also_up:
        good = good_checks(up.port)
        tcp = TCPChecker(Target(ip=ip_to_bytes("127.0.0.1"), port=also_up.port, proto=6))
        bad: dict[int, Config] = {
            20: Config(20, 0, SECOND, 0, tcp),
            21: Config(21, SECOND, -SECOND, 0, tcp),
            22: Config(22, SECOND, SECOND, -1, tcp),
            23: Config(23, SECOND, SECOND, 0, TCPChecker(Target(ip=b"\x7f\x00\x01", port=1))),
            24: Config(24, SECOND, SECOND, 0, TCPChecker(Target(ip=b"\x7f\0\0\1", port=70000))),
            25: Config(25, SECOND, SECOND, 0, None),
        }
        problems = {
            20: "interval 0s is out of range",
            21: "timeout -1s is out of range",
            22: "retries -1 is out of range",
            23: "target: invalid IP of 3 bytes",
            24: "target port 70000 is out of range",
            25: "no checker (nil)",
        }
        with (
            HostileEngine(sock, Checks(good)) as engine,
            fault_server(sock, short_tmp, "-notify_interval", "1s") as server,
        ):
            wait_until(lambda: engine.states() == dict.fromkeys(GOOD, HEALTHY), 15, "Healthy")
            engine.checks = Checks({**good, **bad})
            sane = engine.calls["sane"]
            wait_for_calls(engine, "sane", sane + 4, 5)  # the bad set fetched four times
            runs, notes = stat(server, "checks_run"), engine.notifications
            wait_until(lambda: stat(server, "checks_run") >= runs + 5 * len(GOOD), 5, "runs")
            wait_until(lambda: engine.notifications >= notes + len(GOOD), 5, "notifications")
            # Fixing one starts it; the others stay logged once.
            engine.checks = Checks({**good, **bad, 20: Config(20, SECOND // 5, SECOND, 0, tcp)})
            wait_until(lambda: engine.states().get(20) == HEALTHY, 5, "the fixed check to run")
            log = server.log()
            assert server.alive()
        for check_id, problem in problems.items():
            lines = [x for x in log.splitlines() if f"Healthcheck {check_id} has a bad" in x]
            assert len(lines) == 1, (check_id, lines)
            assert lines[0].startswith("E") and problem in lines[0], lines[0]
        states_heard = engine.states()
        assert all(states_heard[i] == HEALTHY for i in GOOD)
        # Never-run bad checks are reported as Unknown by the periodic re-notify.
        assert all(states_heard.get(i) == 0 for i in (21, 22, 23, 24, 25)), states_heard


def test_hostile_engine_100000_configs_are_all_scheduled_in_bounded_time(short_tmp: Path) -> None:
    """A reply of 100,000 configs (7.5 MB of gob): the server takes it, and every check is
    in a worker's schedule (each worker acknowledged the whole set) within a bounded time;
    the good checks among them run and are notified, and so do the others."""
    count = 100_000
    sock = short_tmp / "engine.sock"
    with DelayedReplyResponder() as up:
        good = good_checks(up.port)
        # Refused by the kernel: no TIME_WAIT, no ephemeral ports used up. A long interval:
        # a few hundred checks a second.
        target = Target(ip=ip_to_bytes("127.0.0.1"), port=free_port(), proto=6)
        many: dict[int, Config] = {
            i: Config(i, 300 * SECOND, SECOND, 0, TCPChecker(target))
            for i in range(1000, 1000 + count - len(good))
        }
        with HostileEngine(sock, Checks({**good, **many})) as engine:
            engine.encode_now()  # not on the clock of the server's first fetch
            with fault_server(
                sock, short_tmp, "-notify_interval", "1h", "-fetch_interval", "1h", stop_within=3.0
            ) as server:
                wait_until(lambda: stat(server, "first_applied_at"), 60, "100,000 scheduled")
                stats = server.stats()
                assert stats["checks"] == stats["runnable"] == count
                fetched = stats["first_answered_at"] - stats["first_config_at"]
                scheduled = stats["first_applied_at"] - stats["first_answered_at"]
                assert fetched < ENGINE_TIMEOUT_S, fetched
                assert scheduled < 30.0, scheduled
                wait_until(lambda: engine.states().get(1) == HEALTHY, 10, "the good checks")
                wait_until(lambda: stat(server, "ran_once") >= 500, 20, "the others to start")
                heard = engine.states()
                assert all(heard[i] == HEALTHY for i in GOOD)
                assert sum(heard.get(i) == UNHEALTHY for i in many) >= 100
                assert engine.calls["sane"] == 1
                assert server.alive()
                assert server.stats()["worker_starts"] == [1]
    sys.stderr.write(f"100k: fetched in {fetched:.2f} s, scheduled {scheduled:.2f} s later\n")


# --- -log_dir on a full filesystem --------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "1m") -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill(directory: Path) -> Path:
    """Write a file in ``directory`` until its filesystem is full."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as out:
        block = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                out.write(block)
        with contextlib.suppress(OSError):
            while True:
                out.write(b"\0")
    probe = directory / "probe"
    with pytest.raises(OSError, match="No space left"), open(probe, "wb", buffering=0) as out:
        out.write(b"x")
    probe.unlink()
    return filler


@needs_root
def test_log_dir_on_a_full_filesystem(gopeer: Path, short_tmp: Path) -> None:
    """The INFO log cannot be written: stderr says so once, the checks and notifications
    go on; once there is room again, stderr says it is written again, and it is."""
    target = ToggleTarget()
    target.on()
    checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
    write_checks_file(checks, [tcp_config(i, target.port) for i in range(1, 6)])
    sock = short_tmp / "engine.sock"
    try:
        with (
            small_tmpfs(short_tmp / "logs") as logs,
            GoEngine(sock, checks_file=checks, record=record),
        ):
            filler = fill(logs)
            with fault_server(
                sock, short_tmp, "-log_dir", str(logs), "-notify_interval", "1s", logtostderr=False
            ) as server:
                cannot = f"seesaw_healthcheck: cannot write the INFO log in {logs}: "

                def said() -> int:
                    return server.log().count(cannot)

                wait_until(said, 10, "stderr to say the log cannot be written")
                wait_until(lambda: states(record) == dict.fromkeys(range(1, 6), HEALTHY), 15, "up")
                # Retried every second (each retry fails): still said only once.
                notes = len(read_records(record))
                grows(server, "fetches", 6, 10)
                target.off()
                wait_until(
                    lambda: states(record) == dict.fromkeys(range(1, 6), UNHEALTHY), 10, "down"
                )
                assert len(read_records(record)) > notes + 5
                assert said() == 1, server.log()
                line = next(x for x in server.log().splitlines() if cannot in x)
                assert line.endswith("No space left on device; dropping its lines until it can")

                filler.unlink()
                again = f"seesaw_healthcheck: writing INFO log files in {logs} again"
                wait_until(lambda: again in server.log(), 10, "logging to resume")
                info = logs / "seesaw_healthcheck.INFO"
                wait_until(
                    lambda: "Getting healthchecks from engine" in info.read_text(), 5, "lines"
                )
                assert server.log().count(again) == 1
                assert said() == 1
                assert server.alive()
    finally:
        target.off()


# --- RLIMIT_NOFILE 64 ---------------------------------------------------------------


def nofile(pid: int) -> tuple[int, int]:
    """The soft and hard RLIMIT_NOFILE of ``pid``."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open files limit for {pid}")


def set_nofile(pid: int, soft: int) -> None:
    """Set the soft RLIMIT_NOFILE of ``pid``, keeping its hard limit."""
    hard = nofile(pid)[1]
    subprocess.run(["prlimit", "--pid", str(pid), f"--nofile={soft}:{hard}"], check=True)
    assert nofile(pid) == (soft, hard)


@needs_root
def test_nofile_limit_64_with_500_checks_fails_clearly_and_recovers(
    gopeer: Path, short_tmp: Path
) -> None:
    """500 checks that each hold a socket for 300 ms, every second, with 64 fds: the ones
    that get no socket fail with Go's text for it, nothing crashes; with the limit raised
    again, every check recovers.

    The limit is lowered at run time, on the control process and its worker: the server
    raises its soft limit to the hard one when it starts, and a hard limit of 64 could not
    be raised again without CAP_SYS_RESOURCE (which this project's machines lack)."""
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) not installed")
    count = 500
    everyone = range(1, count + 1)
    with DelayedReplyResponder(reply=b"pong", delay_s=0.3) as slow:
        configs = [
            tcp_config(i, slow.port, interval="1s", timeout="1s", send="ping", receive="pong")
            for i in everyone
        ]
        checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
        write_checks_file(checks, configs)
        sock = short_tmp / "engine.sock"
        emfile = f"dial tcp4 127.0.0.1:{slow.port}: socket: too many open files"
        with (
            GoEngine(sock, checks_file=checks, record=record),
            fault_server(sock, short_tmp, "-notify_interval", "1s") as server,
        ):
            wait_until(lambda: states(record) == dict.fromkeys(everyone, HEALTHY), 20, "Healthy")
            pids = [server.proc.pid, *server.stats()["worker_pids"]]
            for pid in pids:
                set_nofile(pid, 64)

            def starved() -> list[dict[str, Any]]:
                return [r for r in latest(read_records(record)).values() if r["state"] == 1]

            wait_until(lambda: len(starved()) > 50, 10, "checks starved of sockets")
            messages = {r["message"] for r in starved()}
            assert messages == {emfile}, messages
            assert HEALTHY in states(record).values()  # the others still get their sockets
            assert server.alive()
            assert server.stats()["worker_starts"] == [1]
            for pid in pids:
                set_nofile(pid, 4096)
            wait_until(
                lambda: states(record) == dict.fromkeys(everyone, HEALTHY),
                15,
                "every check Healthy once the limit is raised",
            )
            assert server.stats()["worker_starts"] == [1]
            assert "Traceback" not in server.log()


# --- the wall clock stepped ---------------------------------------------------------


REPO = Path(__file__).resolve().parent.parent
NANOSLEEP_FIX = REPO / "tests" / "faketime" / "clock_nanosleep.c"


def faketime_preload() -> str:
    """LD_PRELOAD for libfaketime with its clock_nanosleep bug worked around (see
    ``tests/faketime/clock_nanosleep.c``); skips when libfaketime or gcc is missing."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not found:
        pytest.skip("libfaketime not installed (Debian's faketime; make test installs it)")
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed (make test installs it)")
    fix = REPO / "build" / "faketime" / "clock_nanosleep.so"
    if not fix.exists() or fix.stat().st_mtime < NANOSLEEP_FIX.stat().st_mtime:
        fix.parent.mkdir(parents=True, exist_ok=True)
        tmp = fix.with_name(f".{fix.name}.{os.getpid()}")
        subprocess.run(
            [gcc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(NANOSLEEP_FIX)], check=True
        )
        os.replace(tmp, fix)
    return f"{fix} {found[0]}"


def test_wall_clock_stepped_back_and_forward_an_hour(gopeer: Path, short_tmp: Path) -> None:
    """The server's processes see the wall clock step back an hour, then forward an
    hour twice (libfaketime on the server only; CLOCK_MONOTONIC left alone): the checks
    keep their rate and their slots, a change is notified as quickly as before, and the
    LastCheck the engine hears follows the wall clock."""
    preload = faketime_preload()
    count = 20
    target = ToggleTarget()
    target.on()
    checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
    write_checks_file(checks, [tcp_config(i, target.port) for i in range(count)])
    sock = short_tmp / "engine.sock"
    offset_file = short_tmp / "faketime"
    offset_file.write_text("+0\n")
    env = dict(
        os.environ,
        LD_PRELOAD=preload,
        FAKETIME_TIMESTAMP_FILE=str(offset_file),
        FAKETIME_NO_CACHE="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
    )
    try:
        with (
            GoEngine(sock, checks_file=checks, record=record),
            fault_server(sock, short_tmp, "-notify_interval", "1s", env=env) as server,
        ):
            wait_until(
                lambda: states(record) == dict.fromkeys(range(count), HEALTHY), 15, "Healthy"
            )
            up = True
            for offset in (0, -3600, 0, 3600):  # back an hour, then forward twice
                offset_file.write_text(f"{offset:+d}\n")
                up = not up
                stepped_phase(server, record, target, up, offset, count)
            assert server.alive()
    finally:
        target.off()


def stepped_phase(
    server: ServerProcess, record: Path, target: ToggleTarget, up: bool, offset: int, count: int
) -> None:
    """Right after the wall clock stepped to ``offset`` s from the real time: a change of
    the target is notified as quickly as ever, the checks keep their rate of 100 a second
    (20 at 200 ms) and their slots, and the engine hears the stepped LastCheck."""
    seen = len(read_records(record))
    wanted = dict.fromkeys(range(count), HEALTHY if up else UNHEALTHY)
    (target.on if up else target.off)()
    flipped = time.monotonic()
    wait_until(lambda: states(record) == wanted, 3, f"the change at {offset:+d} s")
    took = time.monotonic() - flipped
    # An interval, the batch delay and polling: well under this, unless a timer or the
    # batching follows the wall clock.
    assert took < 1.5, f"the change took {took:.2f} s at {offset:+d} s"
    # The stats file is rewritten every second (and the workers' counters it sums every
    # 0.25 s): a fresh one, then one 3 s later.
    stale = stat(server, "now")
    wait_until(lambda: stat(server, "now") > stale, 3, "fresh stats")
    before = server.stats()
    wait_until(lambda: stat(server, "now") >= before["now"] + 2.9, 5, "a 3 s window")
    after = server.stats()
    rate = (after["checks_run"] - before["checks_run"]) / (after["now"] - before["now"])
    assert 85 < rate < 115, f"{rate:.0f} checks/s at {offset:+d} s"
    # A slot skipped now and then on a busy machine, not an hour's worth (18,000 a check).
    skipped = sum(after[k] - before[k] for k in ("skipped_late", "skipped_busy"))
    assert skipped < count, (offset, before, after)
    new = read_records(record)[seen:]
    assert len(new) >= 2 * count  # the change and a periodic round or two
    now = time.time()
    for r in new[count:]:  # a periodic round right after the step may carry older results
        stamped = int(r["last_check_unix_ns"]) / 1e9
        assert abs(stamped - (now + offset)) < 10, (offset, r)


# --- SIGHUP -------------------------------------------------------------------------


def test_sighup_reopens_the_log_files_and_fetches_at_once(short_tmp: Path) -> None:
    """As logrotate does it: the INFO file is renamed, SIGHUP sent. A new INFO file is
    made (the symlink moves to it) and gets the lines from then on, and the checks are
    fetched at once although the fetch interval is an hour; twice, and the server keeps
    running."""
    sock = short_tmp / "engine.sock"
    logs = short_tmp / "logs"
    logs.mkdir()
    link = logs / "seesaw_healthcheck.INFO"
    with (
        DelayedReplyResponder() as up,
        HostileEngine(sock, Checks(good_checks(up.port))) as engine,
        fault_server(
            sock, short_tmp, "-log_dir", str(logs), "-fetch_interval", "1h", logtostderr=False
        ) as server,
    ):
        wait_until(lambda: engine.states() == dict.fromkeys(GOOD, HEALTHY), 15, "Healthy")
        wait_until(lambda: link.exists() and "Getting healthchecks" in link.read_text(), 5, "log")
        assert engine.calls["sane"] == 1  # and none due for an hour
        for hup in (1, 2):
            rotate_and_hang_up(server, engine, logs, fetches=1 + hup)
        assert engine.calls["sane"] == 3


def rotate_and_hang_up(
    server: ServerProcess, engine: HostileEngine, logs: Path, fetches: int
) -> None:
    link = logs / "seesaw_healthcheck.INFO"
    old = logs / os.readlink(link)
    rotated = old.with_name(old.name + ".1")
    old.rename(rotated)
    hups_before = rotated.read_text().count("SIGHUP")
    runs = stat(server, "checks_run")
    server.proc.send_signal(signal.SIGHUP)
    sent = time.monotonic()
    wait_for_calls(engine, "sane", fetches, 1.0)
    assert time.monotonic() - sent < 1.0
    wait_until(lambda: logs / os.readlink(link) != old, 3, "a new INFO file")
    new = logs / os.readlink(link)
    wait_until(
        lambda: "SIGHUP: reopened the log files; fetching the checks now" in new.read_text(),
        3,
        "the SIGHUP line in the new file",
    )
    assert new.read_text().startswith("Log file created at: ")
    assert rotated.read_text().count("SIGHUP") == hups_before  # it went to the new file
    wait_until(lambda: stat(server, "checks_run") > runs + 10, 5, "checks to run on")
    assert server.alive()
