"""Fetching in a forked child that sends back only the changes, against Go's engine."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.gopeer import GoEngine, write_checks_file
from tests.responders.unix import read_request_then, unix_server

from seesaw_healthcheck.gob import GobError
from seesaw_healthcheck.model import Checks, Config
from seesaw_healthcheck.reactor import Reactor
from seesaw_healthcheck.server.forked_fetch import forked_fetcher
from seesaw_healthcheck.server.updater import engine_fetcher

SECOND = 1_000_000_000


def check_dicts(ids: range, interval: str = "1s") -> list[dict[str, Any]]:
    return [
        {"id": i, "interval": interval, "timeout": "1s", "type": "tcp", "ip": "127.0.0.1",
         "port": 1000 + i}
        for i in ids
    ]  # fmt: skip


def zombie_children() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] == "Z":
            found.append(int(entry))
    return found


class Fetch:
    """forked_fetcher over a reactor, with ``running`` standing in for the manager's."""

    def __init__(self, path: str, timeout_s: float = 5.0) -> None:
        self.running: dict[int, Config | None] = {}
        self.fetch = forked_fetcher(
            path, lambda: dict(self.running), engine_fetcher(path), timeout_s
        )

    def __call__(self) -> Checks:
        with Reactor() as reactor:
            result: Checks = reactor.run(self.fetch(), timeout=30)
            return result


def test_only_changes_come_back_and_unchanged_configs_keep_their_objects(
    gopeer: Path, short_tmp: Path
) -> None:
    checks_file = short_tmp / "checks.json"
    write_checks_file(checks_file, check_dicts(range(1, 301)))
    with GoEngine(str(short_tmp / "engine.sock"), checks_file=checks_file):
        fetch = Fetch(str(short_tmp / "engine.sock"))
        first = fetch()  # nothing running: in-process
        assert first.configs is not None and sorted(first.configs) == list(range(1, 301))
        fetch.running = dict(first.configs)

        same = fetch()  # forked: nothing changed
        assert same.configs is not None and same.configs.keys() == fetch.running.keys()
        assert all(same.configs[i] is fetch.running[i] for i in fetch.running)

        # Remove 1, re-time 2, add 301: the rest stay the very same objects.
        changed = check_dicts(range(2, 302))
        changed[0]["interval"] = "3s"
        write_checks_file(checks_file, changed)
        after = fetch()
        assert after.configs is not None
        assert sorted(after.configs) == list(range(2, 302))
        config_2 = after.configs[2]
        assert config_2 is not None and config_2.interval == 3 * SECOND
        assert config_2 is not fetch.running[2]
        assert after.configs[301] is not None
        assert all(after.configs[i] is fetch.running[i] for i in range(3, 301))

        write_checks_file(checks_file, [])
        assert not fetch().configs  # an empty set: every check stops
    assert zombie_children() == []


def test_errors_come_back_under_their_type(short_tmp: Path) -> None:
    fetch = Fetch(str(short_tmp / "nobody.sock"))
    fetch.running = {1: Config(1)}  # something running: the fork path
    with pytest.raises(ConnectionError, match=r"cannot connect to .*nobody\.sock"):
        fetch()
    assert zombie_children() == []


@pytest.fixture
def garbage_engine(short_tmp: Path) -> Iterator[str]:
    path = str(short_tmp / "garbage.sock")
    with unix_server(path, read_request_then(b"\x05\xff\xff\xff\xff\xff" * 4)):
        yield path


def test_garbage_from_the_engine_is_a_gob_error(garbage_engine: str) -> None:
    fetch = Fetch(garbage_engine)
    fetch.running = {1: Config(1)}
    with pytest.raises(GobError):
        fetch()


def test_a_silent_engine_times_out_and_the_child_is_reaped(short_tmp: Path) -> None:
    path = str(short_tmp / "silent.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)  # accepts in the kernel's queue, never answers
    try:
        fetch = Fetch(path, timeout_s=0.3)
        fetch.running = {1: Config(1)}
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            fetch()
        assert time.monotonic() - started < 0.3 + 1.0 + 1.0
    finally:
        listener.close()
    assert zombie_children() == []


def test_a_fetch_cancelled_at_shutdown_ends_its_child(
    short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Server.run cancels its tasks on the way out; a fetch then in flight must end its
    child at once (no awaiting in a closing coroutine) and leave no zombie."""
    path = str(short_tmp / "silent.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    try:
        fetch = Fetch(path, timeout_s=5.0)
        fetch.running = {1: Config(1)}
        with Reactor() as reactor:
            task = reactor.spawn(fetch.fetch())
            reactor.call_later(0.3, reactor.stop)
            reactor.run_forever()
            assert not task.done  # still waiting for the silent engine
            started = time.monotonic()
            task.cancel()
            assert time.monotonic() - started < 1.0
    finally:
        listener.close()
    assert zombie_children() == []
    assert "did not close cleanly" not in caplog.text
