"""Never a false Healthy: the whole server against the Go engine, under the conditions
that once made it report dead backends Healthy.

A check that times out closes its socket; if any other process still holds that socket
(a child forked for a fetch did), the kernel keeps its epoll registration, and a late
event on it arrives under its old fd number, which a new check's socket may have by then.
A connect judged done on such a wake-up reports a dead backend Healthy.

The mix (40 s, fetch every second): checks against a listener whose accept queue is full
(never answer), checks whose target answers 15 ms after their timeout (late events on
closed sockets), healthy checks, 30,000 idle checks that make each fetch as big as a real
engine's, and 20 checks added and removed every 2 s. None of the never-answering checks
may ever reach the engine as Healthy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import full_accept_queue
from tests.gopeer import GoEngine, read_records, write_checks_file
from tests.responders.tcp import DelayedReplyResponder
from tests.test_server_integration import HEALTHY, UNHEALTHY, latest, server_process

RUN_S = 40.0
FULL_QUEUE_IDS = range(1, 201)
LATE_IDS = range(1001, 1301)
HEALTHY_IDS = range(2001, 2101)
IDLE_IDS = range(100_001, 130_001)
CHURN_BASE = 500_000


def _tcp(check_id: int, port: int, interval: str, timeout: str, **extra: Any) -> dict[str, Any]:
    return {"id": check_id, "interval": interval, "timeout": timeout, "type": "tcp",
            "ip": "127.0.0.1", "port": port, **extra}  # fmt: skip


@pytest.mark.slow
def test_never_answering_backends_are_never_reported_healthy(gopeer: Path, short_tmp: Path) -> None:
    with (
        full_accept_queue() as dead_port,
        DelayedReplyResponder(reply=b"pong", delay_s=0.315) as late,
        DelayedReplyResponder() as alive,
    ):
        base = [_tcp(i, dead_port, "1s", "500ms") for i in FULL_QUEUE_IDS]
        base += [_tcp(i, late.port, "1s", "300ms", send="ping", receive="pong") for i in LATE_IDS]
        base += [_tcp(i, alive.port, "1s", "500ms") for i in HEALTHY_IDS]
        base += [_tcp(i, alive.port, "1h", "500ms") for i in IDLE_IDS]

        def churn(round_: int) -> list[dict[str, Any]]:
            first = CHURN_BASE + 20 * round_
            return [_tcp(i, alive.port, "1s", "500ms") for i in range(first, first + 20)]

        checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
        write_checks_file(checks, base + churn(0))
        sock = short_tmp / "engine.sock"
        with (
            GoEngine(sock, checks_file=checks, record=record),
            server_process(sock, short_tmp, "-fetch_interval", "1s", "-notify_interval", "20s"),
        ):
            started = time.monotonic()
            round_ = 0
            while time.monotonic() - started < RUN_S:
                time.sleep(2.0)  # the churn's own pace: the engine re-reads the file
                round_ += 1
                write_checks_file(checks, base + churn(round_))
        records = read_records(record)
        assert late.served > 1000, "the late target answered too few checks to matter"

    never_answering = set(FULL_QUEUE_IDS) | set(LATE_IDS)
    false_healthy = {
        r["id"] for r in records if r["id"] in never_answering and r["state"] == HEALTHY
    }
    examples = [
        (r["id"], r["message"])
        for r in records
        if r["id"] in false_healthy and r["state"] == HEALTHY
    ][:5]
    assert not false_healthy, (
        f"{len(false_healthy)} of {len(never_answering)} never-answering checks were "
        f"reported Healthy, e.g. {examples}"
    )
    # The scenario ran: every never-answering check was judged Unhealthy, and the live
    # ones Healthy.
    final = latest(records)
    assert all(final.get(i, {}).get("state") == UNHEALTHY for i in never_answering)
    assert all(final.get(i, {}).get("state") == HEALTHY for i in HEALTHY_IDS)
