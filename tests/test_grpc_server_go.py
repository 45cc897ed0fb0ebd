"""The real server (``-config_source grpc``) driven by the Go client built from the .proto.

The Go client (tests/go_grpc) pushes 1,000 checks of mixed types against loopback
responders and watches: every check gets its verdict, every flip of a loopback target
reaches the watcher as exactly one transition, and a changed set (some removed, some
added, most unchanged) leaves the unchanged checks running: counters grow, no Unknown, no
transition that did not happen.
"""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests import grpcclient
from tests.conftest import free_port
from tests.gopeer import write_checks_file
from tests.responders.dns import DNSResponder
from tests.responders.http import HTTPResponder
from tests.responders.tcp import TCPResponder
from tests.responders.udp import UDPEchoResponder
from tests.server_process import healthcheck_process, wait_until
from tests.test_server_integration import ToggleTarget

HEALTHY, UNHEALTHY, UNKNOWN = 2, 1, 0
TOGGLES = 4  # loopback targets switched on and off
PER_TOGGLE = 5  # checks on each
TOTAL = 1000


@pytest.fixture(scope="module")
def client() -> Path:
    lacking = grpcclient.missing()
    if lacking and not grpcclient.BINARY.exists():
        pytest.skip(f"no {', '.join(lacking)}: {grpcclient.MAKE_HINT}")
    return grpcclient.build()


@pytest.fixture
def toggles() -> Iterator[list[ToggleTarget]]:
    targets = [ToggleTarget() for _ in range(TOGGLES)]
    for target in targets:
        target.on()
    try:
        yield targets
    finally:
        for target in targets:
            target.off()


class Watch:
    """``grpcclient watch`` in the background, recording every Status it receives."""

    def __init__(self, binary: Path, addr: str, record: Path) -> None:
        self.record = record
        self._records: list[dict[str, Any]] = []
        self._read = 0  # bytes of the record parsed so far
        self.proc = subprocess.Popen(
            [str(binary), "watch", "-addr", addr, "-record", str(record), "-for", "50s"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def records(self) -> list[dict[str, Any]]:
        """Every Status so far (parsing only what was appended: the responders share
        this process)."""
        assert self.proc.poll() is None, self.proc.communicate()
        if self.record.exists():
            with open(self.record, "rb") as f:
                f.seek(self._read)
                data = f.read()
            whole = data[: data.rfind(b"\n") + 1]  # batches are flushed whole; be safe
            self._read += len(whole)
            self._records += [json.loads(line) for line in whole.splitlines()]
        return self._records

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.communicate(timeout=10)


def latest(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for record in records:
        out[record["id"]] = record
    return out


def state_changes(records: list[dict[str, Any]]) -> dict[int, list[int]]:
    """Per check, the states it went through (each change once, Unknown first if seen)."""
    seen: dict[int, list[int]] = defaultdict(list)
    for record in records:
        states = seen[record["id"]]
        if not states or states[-1] != record["state"]:
            states.append(record["state"])
    return seen


def mixed_checks(
    tcp: int, web: int, echo: int, mute: int, dns: int, closed: int, toggles: list[ToggleTarget]
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """TOTAL checks (gopeer's -checks format) and the verdict each must reach."""
    # Timeouts far above what a responder needs: they share this process and a loaded
    # machine, and a verdict that flips on a slow answer is not what is tested here.
    base = {"interval": "3s", "timeout": "2s", "ip": "127.0.0.1"}
    kinds: list[tuple[dict[str, Any], int]] = [
        ({"type": "tcp", "port": tcp}, HEALTHY),
        ({"type": "tcp", "port": closed}, UNHEALTHY),
        ({"type": "http", "port": web, "method": "GET", "request": "/healthz",
          "response_code": 200, "response": "ok"}, HEALTHY),
        ({"type": "http", "port": web, "method": "GET", "request": "/notfound",
          "response_code": 200}, UNHEALTHY),
        ({"type": "udp", "port": echo, "send": "ping", "receive": "ping"}, HEALTHY),
        ({"type": "udp", "port": mute, "send": "ping", "receive": "ping", "timeout": "500ms"},
         UNHEALTHY),
        ({"type": "dns", "port": dns, "query": "www.example.com.", "query_type": 1,
          "answer": "192.0.2.1"}, HEALTHY),
        ({"type": "dns", "port": dns, "query": "www.example.com.", "query_type": 1,
          "answer": "192.0.2.99"}, UNHEALTHY),
    ]  # fmt: skip
    checks: list[dict[str, Any]] = []
    expected: dict[int, int] = {}
    for n, target in enumerate(toggles):
        for k in range(PER_TOGGLE):
            check_id = 100_000 + n * PER_TOGGLE + k
            checks.append({"id": check_id, **base, "interval": "200ms", "timeout": "300ms",
                           "type": "tcp", "port": target.port})  # fmt: skip
            expected[check_id] = HEALTHY
    for n in range(TOTAL - len(checks)):
        kind, state = kinds[n % len(kinds)]
        checks.append({"id": 1 + n, **base, **kind})
        expected[1 + n] = state
    return checks, expected


def test_go_client_pushes_1000_mixed_checks_watches_flips_and_a_changed_set(
    client: Path, short_tmp: Path, toggles: list[ToggleTarget]
) -> None:
    zone = {("www.example.com.", "A"): ["192.0.2.1"]}
    with (
        TCPResponder("127.0.0.1") as tcp,
        HTTPResponder("127.0.0.1") as web,
        UDPEchoResponder("127.0.0.1") as echo,
        UDPEchoResponder("127.0.0.1", silent=True) as mute,
        DNSResponder("127.0.0.1", zone) as dns,
    ):
        checks, expected = mixed_checks(
            tcp.port, web.port, echo.port, mute.port, dns.port, free_port(), toggles
        )
        assert len(checks) == TOTAL
        toggle_ids = [c["id"] for c in checks if c["id"] >= 100_000]
        addr = f"unix:{short_tmp / 'grpc.sock'}"
        flags = ["-config_source", "grpc", "-grpc_listen", addr, "-batch_delay", "50ms",
                 "-notify_interval", "2s"]  # fmt: skip
        with healthcheck_process(short_tmp, *flags) as server:
            server.channel().close()  # listening
            watch = Watch(client, addr, short_tmp / "watch.jsonl")
            try:
                checks_file = short_tmp / "checks.json"
                write_checks_file(checks_file, checks)
                out = grpcclient.run_json(["push", "-addr", addr, "-checks", str(checks_file)])
                assert out == {"sent": TOTAL, "errors": []}

                def verdicts() -> bool:
                    got = {i: r["state"] for i, r in latest(watch.records()).items()}
                    return got == expected

                try:
                    wait_until(verdicts, 20, "a verdict for every one of the 1,000 checks")
                except AssertionError:
                    got = latest(watch.records())
                    wrong = [
                        (i, got.get(i, {}).get("state"), got.get(i, {}).get("message"), w)
                        for i, w in expected.items()
                        if got.get(i, {}).get("state") != w
                    ]
                    raise AssertionError(f"{len(wrong)} wrong: {wrong[:10]}") from None

                # Every flip of a loopback target: one transition of each of its checks.
                flips = [(t, False) for t in toggles[:2]] + [(t, True) for t in toggles[:2]]
                flips += [(t, False) for t in toggles[2:]] + [(t, True) for t in toggles[2:]]
                for target, on in flips:
                    if on:
                        target.on()
                    else:
                        target.off()
                    mine = [100_000 + toggles.index(target) * PER_TOGGLE + k
                            for k in range(PER_TOGGLE)]  # fmt: skip
                    want = HEALTHY if on else UNHEALTHY
                    wait_until(
                        lambda mine=mine, want=want: all(
                            latest(watch.records()).get(i, {}).get("state") == want for i in mine
                        ),
                        10,
                        f"the checks of port {target.port} to turn {want}",
                    )
                changes = state_changes(watch.records())
                for check_id in toggle_ids:
                    assert changes[check_id] in (
                        [UNKNOWN, HEALTHY, UNHEALTHY, HEALTHY],
                        [HEALTHY, UNHEALTHY, HEALTHY],  # its first full set came after a run
                    ), (check_id, changes[check_id])

                # A changed set: 10% removed, 50 added, the rest (toggles too) unchanged.
                before = {s["id"]: s for s in list_statuses(addr)}
                removed = {c["id"] for c in checks if c["id"] % 10 == 3 and c["id"] < 100_000}
                kept = [c for c in checks if c["id"] not in removed]
                added = [dict(c, id=50_000 + c["id"]) for c in checks[100:150]]
                records_before = len(watch.records())
                write_checks_file(checks_file, kept + added)
                out = grpcclient.run_json(["push", "-addr", addr, "-checks", str(checks_file)])
                assert out == {"sent": len(kept) + len(added), "errors": []}
                pushed_batch = max(r["batch"] for r in watch.records())
                for c in added:
                    expected[c["id"]] = expected[c["id"] - 50_000]
                new_ids = {c["id"] for c in kept + added}

                def full_sets_since() -> int:
                    return len([r for r in watch.records()
                                if r["batch"] > pushed_batch and r.get("full_end")])  # fmt: skip

                def runs(status: dict[str, Any]) -> int:
                    return status["successes"] + status["failures"]  # type: ignore[no-any-return]

                def all_ran_again() -> dict[int, dict[str, Any]] | None:
                    now = {s["id"]: s for s in list_statuses(addr)}
                    if all(runs(now[c["id"]]) > runs(before[c["id"]]) for c in kept):
                        return now
                    return None

                # The unchanged checks run on: each runs again within its interval (3 s)
                # and timeout, their counters carrying on from where they were.
                after = wait_until(all_ran_again, 10, "every unchanged check to run again")
                wait_until(lambda: full_sets_since() >= 2, 10, "two full sets after the change")
                wait_until(
                    lambda: all(latest(watch.records()).get(c["id"], {}).get("state")
                                == expected[c["id"]] for c in added),
                    10,
                    "a verdict for every added check",
                )  # fmt: skip
                records = watch.records()
            finally:
                watch.stop()
            assert server.alive()
            log = server.log()

    assert set(after) == new_ids
    # The last full set is exactly the new set.
    last_end = max(r["batch"] for r in records if r.get("full_end"))
    first = last_end
    while any(r["batch"] == first - 1 and r.get("full") and not r.get("full_end") for r in records):
        first -= 1
    last_full = {r["id"] for r in records if first <= r["batch"] <= last_end}
    assert last_full == new_ids
    unchanged = [c["id"] for c in kept]
    since_change = [r for r in records[records_before:] if r["id"] in set(unchanged)]
    assert since_change, "no status of an unchanged check after the change"
    assert not [r for r in since_change if r["state"] == UNKNOWN]
    changes = state_changes(records)
    for check_id in unchanged:
        assert after[check_id]["state"] == expected[check_id], after[check_id]
        if check_id not in toggle_ids:  # one verdict, never another
            assert changes[check_id] in ([UNKNOWN, expected[check_id]], [expected[check_id]]), (
                check_id,
                [r["message"] for r in records if r["id"] == check_id][:2],
            )
    for r in since_change:
        prior = before[r["id"]]
        assert r["state"] == expected[r["id"]], r  # no transition that did not happen
        assert r["successes"] >= prior["successes"] and r["failures"] >= prior["failures"], r
    # Each batch holds a check at most once.
    per_batch: dict[int, list[int]] = defaultdict(list)
    for r in records:
        per_batch[r["batch"]].append(r["id"])
    assert all(len(ids) == len(set(ids)) for ids in per_batch.values())
    assert "Traceback" not in log


def list_statuses(addr: str) -> list[dict[str, Any]]:
    statuses: list[dict[str, Any]] = grpcclient.run_json(["list", "-addr", addr])["statuses"]
    return statuses
