"""The control process with its check workers on its own reactor, for tests in virtual time.

``InProcessWorkers`` is a ``Launcher`` for ``Control``: each "process" is a real
``Worker`` on the control's reactor, talking over a real socket pair and writing a real
shared table, so everything but the process boundary is what runs in production; with a
``MockClock`` the whole server runs hours in a second. ``ScriptedChecks`` is a run_check
whose verdict per target port the test sets.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from seesaw_healthcheck.channel import SharedTable
from seesaw_healthcheck.checkers import Result
from seesaw_healthcheck.control.app import Control
from seesaw_healthcheck.control.config import ServerConfig
from seesaw_healthcheck.model import Checks, Config, Notification, Target, TCPChecker, ip_to_bytes
from seesaw_healthcheck.reactor import MockClock, Reactor, sleep
from seesaw_healthcheck.worker.worker import Worker

SECOND = 1_000_000_000
MS = 1_000_000


@dataclass
class ScriptedChecks:
    """run_check for workers: a check of port P succeeds when ``up[P]`` is true (default
    True), after ``took_s`` of (virtual) time. ``runs`` counts runs per port."""

    up: dict[int, bool] = field(default_factory=dict)
    took_s: dict[int, float] = field(default_factory=dict)
    runs: dict[int, int] = field(default_factory=dict)

    async def __call__(self, checker: Any, timeout_s: float) -> Result:
        port = checker.target.port
        self.runs[port] = self.runs.get(port, 0) + 1
        took = self.took_s.get(port, 0.001)
        await sleep(min(took, timeout_s))
        if took > timeout_s:
            return Result(False, "", int(timeout_s * 1e9), f"i/o timeout on port {port}")
        if self.up.get(port, True):
            return Result(True, f"TCP connect to 127.0.0.1:{port}", int(took * 1e9))
        return Result(False, "", int(took * 1e9), f"connection refused on port {port}")


class InProcessWorker:
    """Looks like a worker process to the control process; ``kill()`` is its death."""

    def __init__(
        self,
        reactor: Reactor,
        run_check: ScriptedChecks,
        index: int,
        channel: socket.socket,
        table_fd: int,
        dry_run: bool,
    ) -> None:
        self.pid = 4_000_000 + index
        self.returncode: int | None = None
        self.channel = channel
        self.table = SharedTable(os.dup(table_fd))
        self.worker = Worker(
            reactor,
            channel,
            self.table,
            dry_run=dry_run,
            run_check=run_check,
            timeout_for=lambda config: (config.timeout or SECOND) / 1e9,
            on_closed=lambda: self._end(0),
        )

    def _end(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
            self.worker.close()
            self.channel.close()
            self.table.buffer.close()
            os.close(self.table.fd)

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            raise subprocess.TimeoutExpired("in-process worker", timeout or 0)
        return self.returncode

    def kill(self) -> None:
        self._end(-9)


class InProcessWorkers:
    """A ``Launcher`` keeping every worker it started (``started``, newest last)."""

    def __init__(self, reactor_of: Callable[[], Reactor], run_check: ScriptedChecks) -> None:
        self._reactor_of = reactor_of
        self.run_check = run_check
        self.started: list[InProcessWorker] = []

    def __call__(
        self, index: int, channel: socket.socket, table_fd: int, dry_run: bool, log_level: int
    ) -> InProcessWorker:
        worker = InProcessWorker(
            self._reactor_of(), self.run_check, index, channel, table_fd, dry_run
        )
        self.started.append(worker)
        return worker


class FakeEngine:
    """fetch and send for ``Control``: serves ``configs`` (None: fetch fails with
    ``ConnectionError``), records every notification sent (``down``: sends fail)."""

    def __init__(self, configs: dict[int, Config | None] | None = None) -> None:
        self.configs: dict[int, Config | None] | None = configs if configs is not None else {}
        self.down = False
        self.fetches = 0
        self.batches: list[list[Notification]] = []

    async def fetch(self) -> Checks:
        self.fetches += 1
        if self.down or self.configs is None:
            raise ConnectionError("rpc: cannot connect to engine.sock: connection refused")
        return Checks(configs=dict(self.configs))  # type: ignore[arg-type]

    async def send(self, batch: list[Notification]) -> None:
        if self.down:
            raise ConnectionError("rpc: cannot connect to engine.sock: connection refused")
        self.batches.append(list(batch))

    def notifications(self) -> list[Notification]:
        return [n for batch in self.batches for n in batch]

    def latest(self) -> dict[int, Notification]:
        return {n.id: n for n in self.notifications()}


def tcp_config(check_id: int, port: int, interval_ms: int = 1000, retries: int = 0) -> Config:
    target = Target(ip=ip_to_bytes("127.0.0.1"), port=port, proto=6)
    return Config(check_id, interval_ms * MS, 500 * MS, retries, TCPChecker(target))


def control_in_virtual_time(
    engine: FakeEngine,
    checks: ScriptedChecks,
    *,
    workers: int = 1,
    autojump: float = 0.0,
    **settings: Any,
) -> tuple[Control, MockClock, InProcessWorkers]:
    """A Control on a MockClock with in-process workers. Run it with ``run_for``."""
    clock = MockClock(start=1000.0, autojump_threshold=autojump)
    control: Control | None = None

    def reactor_of() -> Reactor:
        assert control is not None
        return control.reactor

    launcher = InProcessWorkers(reactor_of, checks)
    config = ServerConfig(engine_socket="engine.sock", **{"http_addr": "", **settings})
    control = Control(
        config,
        workers=workers,
        clock=clock,
        fetch=engine.fetch,
        send=engine.send,
        launch=launcher,
    )
    return control, clock, launcher


def run_for(control: Control, seconds: float) -> None:
    """Run ``control`` (started if it is not) for ``seconds`` of its clock."""
    control.start()
    reactor = control.reactor
    reactor.call_later(seconds, reactor.stop)
    reactor.run_forever()
