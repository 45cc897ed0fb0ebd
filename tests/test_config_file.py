"""``-config_source file:PATH``: the real server takes its checks from a TOML file.

The server (a subprocess, tests/server_process.py) reads the file at start, again within
about a second of an edit and at once on SIGHUP; a broken file is logged and the last good
set keeps running. What it runs is read back over its read-only gRPC API (ListStatus) and
its ``/status`` endpoint.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from tests.conftest import free_port
from tests.responders.tcp import TCPResponder
from tests.server_process import (
    HealthcheckProcess,
    healthcheck_process,
    list_status,
    stub,
    tcp_check,
    wait_until,
)

from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb

HEALTHY, UNHEALTHY = pb.STATE_HEALTHY, pb.STATE_UNHEALTHY
GLOG_TIME = re.compile(r"^[IWEF]\d{4} (\d\d:\d\d:\d\d\.\d{6}) ")


def toml(checks: list[tuple[int, int]], interval: str = "300ms") -> str:
    """A checks file of TCP checks: (id, port) each."""
    return "".join(
        f'[[check]]\nid = {check_id}\ntype = "tcp"\nip = "127.0.0.1"\nport = {port}\n'
        f'interval = "{interval}"\ntimeout = "200ms"\n\n'
        for check_id, port in checks
    )


def replace(path: Path, text: str) -> None:
    """Write ``path`` as an editor that saves atomically does."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@dataclass
class FileServer:
    server: HealthcheckProcess
    path: Path  # its checks file
    channel: grpc.Channel  # to its read-only gRPC API
    http: str  # its -http_addr
    port: int  # a port that answers (check 1's)

    def status_page(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{self.http}/status", timeout=5) as reply:
            return json.loads(reply.read())  # type: ignore[no-any-return]


@pytest.fixture
def fs(short_tmp: Path) -> Iterator[FileServer]:
    """A server on ``checks.toml``: at first check 1 on a port that answers and check 2 on
    one that does not."""
    with TCPResponder("127.0.0.1") as tcp:
        path = short_tmp / "checks.toml"
        path.write_text(toml([(1, tcp.port), (2, free_port())]))
        http = f"127.0.0.1:{free_port()}"
        flags = ["-config_source", f"file:{path}", "-grpc_listen", f"unix:{short_tmp}/g.sock",
                 "-http_addr", http, "-batch_delay", "50ms"]  # fmt: skip
        with healthcheck_process(short_tmp, *flags) as server, server.channel() as channel:
            wait_until(
                lambda: states(channel) == {1: HEALTHY, 2: UNHEALTHY}, 10, "the file's checks"
            )
            yield FileServer(server, path, channel, http, tcp.port)


def states(channel: grpc.Channel) -> dict[int, int]:
    return {i: s.state for i, s in list_status(channel).items()}


def runs(channel: grpc.Channel, check_id: int) -> int:
    status = list_status(channel, ids=[check_id])[check_id]
    return status.successes + status.failures


def test_an_edit_is_applied_within_two_seconds(fs: FileServer) -> None:
    server, path, channel, port = fs.server, fs.path, fs.channel, fs.port
    page = fs.status_page()
    assert page["server"]["config_source"] == f"file:{path}"
    assert {c["id"] for c in page["checks"]} == {1, 2}
    before = runs(channel, 1)
    # Check 2 goes, 3 comes (on the answering port), 1 stays.
    replace(path, toml([(1, port), (3, port)]))
    edited = time.monotonic()
    wait_until(lambda: set(list_status(channel)) == {1, 3}, 5, "the edit")
    took = time.monotonic() - edited
    assert took < 2.0, took
    wait_until(lambda: states(channel) == {1: HEALTHY, 3: HEALTHY}, 5, "check 3's verdict")
    assert runs(channel, 1) > before  # check 1 ran on, its counters kept
    assert {c["id"] for c in fs.status_page()["checks"]} == {1, 3}
    # A file of the same name put in place again (a new inode, same text) changes nothing.
    replace(path, path.read_text())
    time.sleep(1.5)
    assert states(channel) == {1: HEALTHY, 3: HEALTHY}
    assert "Stopping healthchecker for 1 " not in server.log()


def _log_time(line: str) -> float:
    match = GLOG_TIME.match(line)
    assert match, line
    clock = datetime.strptime(match.group(1), "%H:%M:%S.%f")
    return clock.hour * 3600 + clock.minute * 60 + clock.second + clock.microsecond / 1e6


def test_sighup_reads_the_file_at_once(fs: FileServer) -> None:
    """Each edit is followed at once by SIGHUP: the read comes right after the signal, not
    at the next poll (up to a second later). Three rounds, so that a poll falling right
    after the signal by chance (a few in a hundred) cannot pass for the SIGHUP."""
    server, path, channel, port = fs.server, fs.path, fs.channel, fs.port
    for count in (3, 4, 5):
        replace(path, toml([(i, port) for i in range(1, count + 1)]))
        server.signal(signal.SIGHUP)
        wait_until(lambda count=count: len(list_status(channel)) == count, 5, f"{count} checks")

    def hups() -> list[float]:
        lines = server.log().splitlines()  # written out every 0.2 s
        return [_log_time(x) for x in lines if "SIGHUP: reopened the log files; fetching" in x]

    wait_until(lambda: len(hups()) == 3, 3, "three SIGHUPs logged")
    lines = server.log().splitlines()
    for hup, count in zip(hups(), (3, 4, 5), strict=True):
        [read] = [
            _log_time(x) for x in lines if x.endswith(f"{path} returned {count} healthchecks")
        ]
        assert abs(read - hup) < 0.2, (count, read - hup)


def test_sighup_reads_an_edit_that_kept_size_and_mtime(fs: FileServer) -> None:
    """An edit in place of the same length, its mtime put back (``touch -r``, ``cp -p``,
    ``rsync -t``, or two saves within the filesystem's timestamp tick): only SIGHUP can
    tell the server, and SIGHUP must then read the file."""
    server, path, channel, port = fs.server, fs.path, fs.channel, fs.port
    seen = path.stat()
    text = toml([(1, port), (7, port)])  # check 2 becomes 7: same length
    assert len(text) == seen.st_size
    with open(path, "r+") as f:  # the same inode
        f.write(text)
    os.utime(path, ns=(seen.st_atime_ns, seen.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (
        seen.st_size,
        seen.st_mtime_ns,
        seen.st_ino,
    )
    server.signal(signal.SIGHUP)
    wait_until(lambda: set(list_status(channel)) == {1, 7}, 3, "the edit, after SIGHUP")


def test_a_broken_file_keeps_the_last_good_set(fs: FileServer) -> None:
    server, path, channel, port = fs.server, fs.path, fs.channel, fs.port
    good = path.read_text()
    brokens = [
        (good + "[[check]\n", "not valid TOML"),
        (good + '[[check]]\nid = 9\ntype = "smtp"\nip = "127.0.0.1"\nport = 25\n', "'smtp'"),
        (toml([(1, port), (1, port)]), "id 1 is already used"),
    ]
    for text, why in brokens:
        before = runs(channel, 1)
        replace(path, text)
        wait_until(
            lambda why=why: why in (fs.status_page()["server"]["last_fetch_error"] or ""),
            5,
            f"the error ({why}) on /status",
        )
        error = fs.status_page()["server"]["last_fetch_error"]
        assert str(path) in error
        # The last good set runs on: same checks, same verdicts, counters growing.
        wait_until(lambda before=before: runs(channel, 1) > before + 2, 5, "check 1 to run on")
        assert states(channel) == {1: HEALTHY, 2: UNHEALTHY}
        assert server.alive()
    log = server.log()
    assert f"reading {path} failed: ConfigError: {path}: not valid TOML" in log
    assert "Traceback" not in log
    # Mended: the new set applies and the error clears.
    replace(path, toml([(1, port), (4, port)]))
    wait_until(lambda: states(channel) == {1: HEALTHY, 4: HEALTHY}, 5, "the mended file")
    wait_until(lambda: fs.status_page()["server"]["last_fetch_error"] is None, 3, "no error")


def test_set_checks_is_refused_in_file_mode(fs: FileServer) -> None:
    channel = fs.channel
    with pytest.raises(grpc.RpcError) as err:
        stub(channel).SetChecks(pb.SetChecksRequest(checks=[tcp_check(5, 1)]), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "checks come from file" in (err.value.details() or "")
    assert set(list_status(channel)) == {1, 2}


def test_a_missing_file_at_start_is_logged_and_retried(short_tmp: Path) -> None:
    path = short_tmp / "later.toml"
    flags = ["-config_source", f"file:{path}", "-grpc_listen", f"unix:{short_tmp}/g.sock"]
    with healthcheck_process(short_tmp, *flags) as server, server.channel() as channel:
        wait_until(lambda: f"{path}: cannot read" in server.log(), 5, "the error logged")
        assert list_status(channel) == {}
        path.write_text(toml([(1, free_port())]))
        wait_until(lambda: states(channel) == {1: UNHEALTHY}, 5, "the file, once it is there")
