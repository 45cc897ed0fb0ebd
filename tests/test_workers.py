"""The control process and its check workers as real processes, against the Go engine:
what ``ps`` shows, no process per fetch, a killed worker, a killed control process, and no
check socket in the process that talks to the engine."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from tests.gopeer import GoEngine, read_records, write_checks_file
from tests.responders.tcp import DelayedReplyResponder
from tests.test_server_integration import (
    HEALTHY,
    UNHEALTHY,
    latest,
    server_process,
    tcp_config,
    wait_until,
)


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever adopts it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def inet_sockets() -> dict[str, tuple[str, int]]:
    """inode -> (table, remote port) of every TCP, UDP and raw socket of the machine."""
    found: dict[str, tuple[str, int]] = {}
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "raw6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            found[fields[9]] = (table, int(fields[2].rsplit(":", 1)[1], 16))
    return found


def socket_inodes(pid: int) -> set[str]:
    found = set()
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(target[8:-1])
    return found


def test_ps_shows_the_control_process_and_its_workers_and_no_process_per_fetch(
    gopeer: Path, short_tmp: Path
) -> None:
    with DelayedReplyResponder() as alive:
        checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
        write_checks_file(checks, [tcp_config(i, alive.port) for i in range(1, 201)])
        sock = short_tmp / "engine.sock"
        with (
            GoEngine(sock, checks_file=checks, record=record),
            server_process(sock, short_tmp, "-workers", "2", "-fetch_interval", "200ms") as server,
        ):
            wait_until(lambda: len(latest(read_records(record))) == 200, 15, "200 checks")
            control = server.proc.pid
            workers = children(control)
            assert len(workers) == 2, workers
            for pid in workers:
                assert command_line(pid)[1:3] == ["-m", "seesaw_healthcheck.worker"]
            fetches = server.stats()["fetches"]
            seen: set[int] = set()
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:  # ~15 fetches at 200 ms
                seen |= children(control)
                time.sleep(0.01)
            assert server.stats()["fetches"] >= fetches + 10
            assert seen == workers  # no process was made for a fetch
            # The control process holds no check socket: its only TCP sockets are the
            # HTTP endpoint's, none to the checks' target.
            inet = inet_sockets()
            held = [inet[inode] for inode in socket_inodes(control) if inode in inet]
            assert all(table in ("tcp", "tcp6") for table, _ in held), held
            assert all(port != alive.port for _, port in held), held
            assert all(states == HEALTHY for states in _states(record).values())


def _states(record: Path) -> dict[int, int]:
    return {i: r["state"] for i, r in latest(read_records(record)).items()}


def test_a_killed_worker_is_back_within_2s_with_no_spurious_notification(
    gopeer: Path, short_tmp: Path
) -> None:
    with DelayedReplyResponder() as alive:
        dead = alive.port + 1 if alive.port < 65535 else alive.port - 1
        configs = [tcp_config(i, alive.port, interval="100ms") for i in range(1, 51)]
        configs += [tcp_config(i, dead, interval="100ms") for i in range(51, 61)]
        checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
        write_checks_file(checks, configs)
        sock = short_tmp / "engine.sock"
        with (
            GoEngine(sock, checks_file=checks, record=record),
            server_process(sock, short_tmp, "-workers", "2", "-notify_interval", "10m") as server,
        ):
            expected = {i: HEALTHY if i <= 50 else UNHEALTHY for i in range(1, 61)}
            wait_until(lambda: _states(record) == expected, 15, "first states")
            count = len(read_records(record))
            victim = sorted(children(server.proc.pid))[0]
            runs = server.stats()["checks_run"]
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            wait_until(lambda: server.stats()["worker_starts"] != [1, 1], 2, "a restart")
            # Its checks report again: the shared table's counters move for all of them.
            wait_until(lambda: server.stats()["checks_run"] > runs + 200, 2, "checks running again")
            assert time.monotonic() - killed_at < 2.0
            time.sleep(1.0)  # a few more rounds, to see any spurious change
            extra = read_records(record)[count:]
            assert not extra, f"notifications the kill caused: {extra}"
            assert victim not in children(server.proc.pid)
            assert len(children(server.proc.pid)) == 2
            assert "Check worker" in server.log() and "restarting it" in server.log()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_workers_die_with_a_killed_control_process(
    gopeer: Path, short_tmp: Path, workers: str
) -> None:
    with DelayedReplyResponder() as alive:
        checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
        write_checks_file(checks, [tcp_config(i, alive.port) for i in range(1, 11)])
        sock = short_tmp / "engine.sock"
        with GoEngine(sock, checks_file=checks, record=record):
            server = server_process(sock, short_tmp, "-workers", workers)
            with pytest.raises(AssertionError, match="exit -9"), server as running:
                wait_until(lambda: len(latest(read_records(record))) == 10, 10, "checks")
                pids = children(running.proc.pid)
                assert len(pids) == int(workers)
                os.kill(running.proc.pid, signal.SIGKILL)
                running.proc.wait(5)
                gone_by = time.monotonic() + 2.0
                while any(running(p) for p in pids) and time.monotonic() < gone_by:
                    time.sleep(0.02)
                assert not [p for p in pids if running(p)], "orphaned workers"
