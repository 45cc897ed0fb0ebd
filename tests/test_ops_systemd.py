"""systemd's notify protocol, spoken by the real server to a ``NOTIFY_SOCKET`` the test binds
(a Unix datagram socket, as systemd's), with ``WATCHDOG_USEC`` of 1 s; and ``/healthz`` and
``/readyz``:

- READY=1 only once the first fetch is applied (the engine starts after the server), with
  ``/readyz`` 503 before and 200 after; WATCHDOG=1 every half second with STATUS= counts;
- a check worker frozen with SIGSTOP: ``/healthz`` answers 503 with the reason within
  1.5 s and the WATCHDOG=1 pings stop (STATUS= says why); after SIGCONT both recover;
- STOPPING=1 on SIGTERM.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.live_server import Fleet, LiveServer, states_of, wait_until
from tests.test_workers import children

WATCHDOG_USEC = 1_000_000  # pings every 0.5 s


class NotifySocket:
    """A bound Unix datagram socket; every datagram received, with its arrival time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.received: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            with self._lock:
                self.received.append((time.monotonic(), fields))

    def since(self, start: float) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return [(t, f) for t, f in self.received if t >= start]

    def pings(self, start: float = 0.0) -> list[tuple[float, dict[str, str]]]:
        return [(t, f) for t, f in self.since(start) if f.get("WATCHDOG") == "1"]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@contextmanager
def notify_socket(path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(path)
    try:
        yield listener
    finally:
        listener.close()


def status_line(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return (
        f"{total} checks: {counts.get('healthy', 0)} healthy, "
        f"{counts.get('unhealthy', 0)} unhealthy, {counts.get('unknown', 0)} unknown"
    )


@pytest.mark.slow
def test_sd_notify_ready_watchdog_and_a_frozen_worker(short_tmp: Path) -> None:
    env = dict(os.environ, NOTIFY_SOCKET=str(short_tmp / "notify"),
               WATCHDOG_USEC=str(WATCHDOG_USEC))  # fmt: skip
    env.pop("WATCHDOG_PID", None)
    with notify_socket(short_tmp / "notify") as notify, Fleet() as fleet:
        server = LiveServer(short_tmp, None, env=env)  # no engine yet
        with server:
            # Not ready while there is no engine to fetch from; the loops turn all the same.
            wait_until(lambda: len(notify.pings()) >= 3, 5, "three watchdog pings")
            code, _, body = server.get("/readyz")
            assert (code, body) == (503, b"the first set of checks has not been applied yet\n")
            assert not [f for _, f in notify.since(0) if "READY" in f]
            assert notify.pings()[-1][1]["STATUS"] == "0 checks: 0 healthy, 0 unhealthy, 0 unknown"

            engine_at = time.monotonic()
            server.start_engine(fleet.configs)
            ready = wait_until(
                lambda: [(t, f) for t, f in notify.since(0) if f.get("READY") == "1"],
                15,
                "READY=1",
            )
            assert len(ready) == 1 and ready[0][0] > engine_at
            assert ready[0][1]["STATUS"].startswith(f"{len(fleet.ids)} checks: ")
            code, _, body = server.get("/readyz")
            assert (code, body) == (200, f"ok: {len(fleet.ids)} checks\n".encode())

            wait_until(
                lambda: states_of(server.engine_view()) == fleet.expected(), 20, "the states"
            )
            counts: dict[str, int] = {}
            for state in fleet.expected().values():
                counts[state] = counts.get(state, 0) + 1
            settled = time.monotonic()
            wait_until(lambda: len(notify.pings(settled)) >= 6, 10, "six pings")
            pings = notify.pings(settled)
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(pings)]
            assert max(gaps) < 0.9 and min(gaps) > 0.2, gaps  # every 0.5 s
            assert pings[-1][1]["STATUS"] == status_line(counts)
            code, _, body = server.get("/healthz")
            assert (code, body) == (200, b"ok: 1 check workers turning\n")

            worker = server.stats()["worker_pids"][0]
            assert worker in children(server.pid)
            os.kill(worker, signal.SIGSTOP)
            try:
                stopped = time.monotonic()
                wait_until(lambda: server.get("/healthz")[0] == 503, 3, "/healthz 503")
                took = time.monotonic() - stopped
                failing = time.monotonic()
                code, _, body = server.get("/healthz")
                assert took <= 1.5, f"/healthz said 503 only {took:.2f} s after SIGSTOP"
                assert code == 503
                assert f"check worker 0 (pid {worker}) stalled for " in body.decode()

                # Two watchdog ticks without a ping: each says why instead.
                def said() -> list[str]:
                    return [f["STATUS"] for _, f in notify.since(failing) if "STATUS" in f]

                wait_until(lambda: len(said()) >= 2, 3, "two watchdog ticks while frozen")
                assert notify.pings(failing) == []
                assert all(
                    s.startswith(f"unhealthy: check worker 0 (pid {worker})") for s in said()
                )
            finally:
                os.kill(worker, signal.SIGCONT)
            resumed = time.monotonic()
            wait_until(lambda: server.get("/healthz")[0] == 200, 1.5, "/healthz 200 again")
            wait_until(lambda: notify.pings(resumed), 1.5, "a watchdog ping again")
            assert server.stats()["worker_starts"] == [1]  # frozen, not restarted
            assert server.get("/readyz")[0] == 200
            stopping_from = time.monotonic()
        # SIGTERM: the server says it is stopping.
        wait_until(
            lambda: [f for _, f in notify.since(stopping_from) if f.get("STOPPING") == "1"],
            2,
            "STOPPING=1",
        )
