"""The real `seesaw-healthcheck` process against the Go engine stand-in (gopeer engine).

Each test runs the server as a subprocess with short intervals, real loopback targets
(tests/responders), and reads what the Go engine recorded. Every test ends by sending
SIGTERM and asserting a clean exit (status 0) within 1 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.gopeer import GoEngine, read_records, write_checks_file
from tests.responders.dns import DNSResponder
from tests.responders.http import HTTPResponder
from tests.responders.tcp import TCPResponder
from tests.responders.udp import UDPEchoResponder

from seesaw_healthcheck import schema
from seesaw_healthcheck.gob import Field, Int, Interface, Map, Ptr, Registry, String, Struct, Uint
from seesaw_healthcheck.model import (
    Checks,
    Config,
    HealthState,
    Notification,
    Target,
    TCPChecker,
    ip_to_bytes,
)
from seesaw_healthcheck.rpc import RpcServer

HEALTHY, UNHEALTHY, UNKNOWN = 2, 1, 0
FAST = [
    "-fetch_interval", "500ms", "-notify_interval", "2s",
    "-batch_delay", "50ms", "-retry_delay", "200ms",
]  # fmt: skip


class ServerProcess:
    """`python -m seesaw_healthcheck.cli.healthcheck` with logs and stats in ``tmp``."""

    def __init__(self, engine_socket: Path, tmp: Path, *flags: str) -> None:
        self.log_path = tmp / "server.log"
        self.stats_path = tmp / "stats.json"
        args = [
            sys.executable, "-m", "seesaw_healthcheck.cli.healthcheck",
            "-engine", str(engine_socket), "-logtostderr", "-stats_file", str(self.stats_path),
            *FAST, *flags,
        ]  # fmt: skip
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=self._log)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stats(self) -> dict[str, Any]:
        try:
            return json.loads(self.stats_path.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> float:
        """SIGTERM; return how long the exit took. Asserts exit status 0."""
        try:
            if self.proc.poll() is None:
                t0 = time.monotonic()
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    raise AssertionError("server ignored SIGTERM for 5 s") from None
                took = time.monotonic() - t0
            else:
                took = 0.0
            assert self.proc.returncode == 0, f"exit {self.proc.returncode}\n{self.log()[-3000:]}"
            return took
        finally:
            self._log.close()


@contextmanager
def server_process(engine_socket: Path, tmp: Path, *flags: str) -> Iterator[ServerProcess]:
    server = ServerProcess(engine_socket, tmp, *flags)
    try:
        yield server
    except BaseException:
        sys.stderr.write(server.log()[-4000:])
        raise
    finally:
        took = server.stop()
    assert took < 1.0, f"SIGTERM took {took:.2f} s"


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def latest(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for record in records:
        out[record["id"]] = record
    return out


def transitions(records: list[dict[str, Any]], check_id: int) -> list[dict[str, Any]]:
    """The records of ``check_id`` where its state differs from the previous one."""
    out: list[dict[str, Any]] = []
    for record in records:
        if record["id"] == check_id and (not out or out[-1]["state"] != record["state"]):
            out.append(record)
    return out


class ToggleTarget:
    """A TCP port that accepts (on) or refuses (off), switchable at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def on(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.05)
        self._listener = listener

        def accept_loop() -> None:
            while self._listener is listener:
                try:
                    conn, _ = listener.accept()
                    conn.close()
                except (TimeoutError, OSError):
                    continue

        self._thread = threading.Thread(target=accept_loop, daemon=True)
        self._thread.start()

    def off(self) -> None:
        listener, self._listener = self._listener, None
        if self._thread is not None:
            self._thread.join(2)
        if listener is not None:
            listener.close()


def tcp_config(check_id: int, port: int, **extra: Any) -> dict[str, Any]:
    return {"id": check_id, "interval": "200ms", "timeout": "300ms", "type": "tcp",
            "ip": "127.0.0.1", "port": port, **extra}  # fmt: skip


def test_mixed_checks_reach_expected_states(gopeer: Path, short_tmp: Path) -> None:
    zone = {("www.example.com.", "A"): ["192.0.2.1"]}
    with (
        TCPResponder("127.0.0.1") as tcp4,
        TCPResponder("::1") as tcp6,
        HTTPResponder("127.0.0.1") as web,
        UDPEchoResponder("127.0.0.1") as echo,
        UDPEchoResponder("127.0.0.1", silent=True) as mute,
        DNSResponder("127.0.0.1", zone) as dns,
    ):
        closed = free_port()
        base = {"interval": "1s", "timeout": "500ms"}
        kinds: list[tuple[dict[str, Any], int]] = [
            ({"type": "tcp", "ip": "127.0.0.1", "port": tcp4.port}, HEALTHY),
            ({"type": "tcp", "ip": "::1", "port": tcp6.port, "send": "hi", "receive": "hi"},
             HEALTHY),
            ({"type": "tcp", "ip": "127.0.0.1", "port": closed}, UNHEALTHY),
            ({"type": "http", "ip": "127.0.0.1", "port": web.port, "method": "GET",
              "request": "/healthz", "response_code": 200, "response": "ok"}, HEALTHY),
            ({"type": "http", "ip": "127.0.0.1", "port": web.port, "method": "GET",
              "request": "/notfound", "response_code": 200}, UNHEALTHY),
            ({"type": "udp", "ip": "127.0.0.1", "port": echo.port, "send": "ping",
              "receive": "ping"}, HEALTHY),
            ({"type": "udp", "ip": "127.0.0.1", "port": mute.port, "send": "ping",
              "receive": "ping", "timeout": "300ms"}, UNHEALTHY),
            ({"type": "dns", "ip": "127.0.0.1", "port": dns.port, "query": "www.example.com.",
              "query_type": 1, "answer": "192.0.2.1"}, HEALTHY),
        ]  # fmt: skip
        configs, expected = [], {}
        for n in range(200):
            kind, state = kinds[n % len(kinds)]
            configs.append({"id": 1000 + n, **base, **kind})
            expected[1000 + n] = state
        checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
        write_checks_file(checks, configs)
        sock = short_tmp / "engine.sock"
        with GoEngine(sock, checks_file=checks, record=record), server_process(sock, short_tmp):

            def settled() -> bool:
                got = {i: r["state"] for i, r in latest(read_records(record)).items()}
                return got == expected

            try:
                wait_until(settled, 20, "all 200 checks to reach their expected states")
            except AssertionError:
                got = latest(read_records(record))
                wrong = [
                    (i, got.get(i, {}).get("state"), got.get(i, {}).get("message"), want)
                    for i, want in expected.items()
                    if got.get(i, {}).get("state") != want
                ]
                raise AssertionError(f"{len(wrong)} checks wrong: {wrong[:10]}") from None
        records = read_records(record)
    by_id = latest(records)
    assert by_id[1000]["message"].startswith("TCP connect to 127.0.0.1:")
    assert all(r["ctx_auth_type"] == 2 for r in records)
    assert all(r["ctx_identity"].startswith("healthcheck [pid ") for r in records)
    # Local zone, as time.Now(); a never-run check (Unknown) carries the zero time.
    assert all(not r["last_check_utc"] for r in records if r["state"] != 0)
    healthy = [r for r in records if r["state"] == HEALTHY]
    assert all(r["last_check_unix_ns"] > 0 and r["duration_ns"] > 0 for r in healthy)


def test_retries_table(gopeer: Path, short_tmp: Path) -> None:
    target = ToggleTarget()
    target.on()
    retries = {1: 0, 2: 2, 3: 5}
    checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
    write_checks_file(
        checks,
        [tcp_config(i, target.port, interval="100ms", retries=r) for i, r in retries.items()],
    )
    sock = short_tmp / "engine.sock"
    try:
        with (
            GoEngine(sock, checks_file=checks, record=record),
            server_process(sock, short_tmp, "-notify_interval", "10m"),
        ):

            def states() -> dict[int, int]:
                return {i: r["state"] for i, r in latest(read_records(record)).items()}

            wait_until(lambda: states() == dict.fromkeys(retries, HEALTHY), 10, "all Healthy")
            target.off()
            wait_until(lambda: states() == dict.fromkeys(retries, UNHEALTHY), 10, "Unhealthy")
            target.on()
            wait_until(lambda: states() == dict.fromkeys(retries, HEALTHY), 10, "Healthy again")
    finally:
        target.off()
    records = read_records(record)
    for check_id, r in retries.items():
        steps = transitions(records, check_id)
        assert [s["state"] for s in steps] == [HEALTHY, UNHEALTHY, HEALTHY], steps
        _, down, up = steps
        # Healthy stayed Healthy for `retries` failures and flipped on the next one.
        assert down["failures"] == r + 1, (check_id, down)
        # Healthy again on the first success.
        assert up["successes"] == down["successes"] + 1, (check_id, down, up)
        # One notification per change: no periodic ones in this test.
        assert len([x for x in records if x["id"] == check_id]) == 3


def test_config_update_adds_removes_retimes(gopeer: Path, short_tmp: Path) -> None:
    with TCPResponder("127.0.0.1") as tcp:
        checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
        write_checks_file(checks, [tcp_config(i, tcp.port) for i in range(1, 11)])
        sock = short_tmp / "engine.sock"
        with (
            GoEngine(sock, checks_file=checks, record=record),
            server_process(sock, short_tmp, "-notify_interval", "1s") as server,
        ):
            wait_until(lambda: len(latest(read_records(record))) == 10, 10, "first 10 checks")
            time.sleep(1.2)  # a periodic round, so the counters are well above 1
            updated = [tcp_config(i, tcp.port) for i in range(7, 11)]
            updated += [tcp_config(i, tcp.port, interval="50ms") for i in (4, 5, 6)]
            updated += [tcp_config(i, tcp.port) for i in (11, 12, 13)]
            write_checks_file(checks, updated)
            wait_until(lambda: {11, 12, 13} <= set(latest(read_records(record))), 10, "new checks")
            time.sleep(2.5)  # two more periodic rounds
            assert server.alive()
        records = read_records(record)
    first_new_call = min(r["call"] for r in records if r["id"] in (11, 12, 13))
    assert not [r for r in records if r["call"] >= first_new_call and r["id"] in (1, 2, 3)]
    for check_id in (4, 5, 6):
        mine = [r for r in records if r["id"] == check_id]
        successes = [r["successes"] for r in mine]
        assert successes == sorted(successes), "counters were reset"
        # Re-timed from 200 ms to 50 ms: the last two periodic reports, 1 s apart, show
        # about 20 runs, not about 5.
        (a, b) = mine[-2:]
        rate = (b["successes"] - a["successes"]) / (
            (b["last_check_unix_ns"] - a["last_check_unix_ns"]) / 1e9
        )
        assert rate > 12, (check_id, a, b)
    for check_id in (7, 8, 9, 10):
        mine = [r for r in records if r["id"] == check_id]
        a, b = mine[-2:]
        rate = (b["successes"] - a["successes"]) / (
            (b["last_check_unix_ns"] - a["last_check_unix_ns"]) / 1e9
        )
        assert 3 < rate < 7, (check_id, a, b)


def test_dry_run(gopeer: Path, short_tmp: Path) -> None:
    closed = free_port()
    checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
    write_checks_file(checks, [tcp_config(i, closed) for i in range(1, 6)])
    sock = short_tmp / "engine.sock"
    with (
        GoEngine(sock, checks_file=checks, record=record),
        server_process(sock, short_tmp, "-dry_run"),
    ):
        wait_until(lambda: len(latest(read_records(record))) == 5, 10, "dry-run notifications")
    for r in latest(read_records(record)).values():
        assert r["state"] == HEALTHY
        assert r["message"] == "dryrun mode; always succeed"
        assert r["failures"] == 0


def test_periodic_full_renotify(gopeer: Path, short_tmp: Path) -> None:
    with TCPResponder("127.0.0.1") as tcp:
        checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
        configs = [tcp_config(1, tcp.port), tcp_config(2, tcp.port)]
        configs.append({"id": 3, "interval": "1s", "type": "none"})  # nil checker: never runs
        write_checks_file(checks, configs)
        sock = short_tmp / "engine.sock"
        with (
            GoEngine(sock, checks_file=checks, record=record),
            server_process(sock, short_tmp, "-notify_interval", "700ms"),
        ):
            time.sleep(3.0)
        records = read_records(record)
    for check_id in (1, 2):
        mine = [r for r in records if r["id"] == check_id]
        # One transition to Healthy, then a full report every 700 ms while unchanged.
        assert len(mine) >= 4, mine
        assert all(r["state"] == HEALTHY for r in mine)
        assert len({r["call"] for r in mine}) == len(mine)
    unknown = [r for r in records if r["id"] == 3]
    assert len(unknown) >= 3 and all(r["state"] == UNKNOWN for r in unknown)
    assert all(r["last_check_unix_ns"] <= 0 or r["last_check_utc"] for r in unknown)


@contextmanager
def junk_server(path: Path) -> Iterator[list[int]]:
    """A raw Unix server that answers every connection with garbage and closes it."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    listener.settimeout(0.05)
    served = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    conn.recv(4096)
                    conn.sendall(b"\x07\xff\x81garbage\x00\xff" * 20)
                except OSError:
                    pass
            served[0] += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        stop.set()
        thread.join(2)
        listener.close()
        os.unlink(path)


def test_garbage_and_bad_configs_do_not_stop_checks(gopeer: Path, short_tmp: Path) -> None:
    with TCPResponder("127.0.0.1") as tcp:
        checks, record = short_tmp / "checks.json", short_tmp / "record.jsonl"
        good = [tcp_config(i, tcp.port) for i in (1, 2)]
        write_checks_file(checks, good)
        sock = short_tmp / "engine.sock"
        with server_process(sock, short_tmp) as server:
            with GoEngine(sock, checks_file=checks, record=record):
                wait_until(lambda: len(latest(read_records(record))) == 2, 10, "two checks")
            # The engine is replaced by something that answers garbage.
            with junk_server(sock) as served:
                runs = server.stats().get("checks_run", 0)
                wait_until(lambda: served[0] >= 2, 15, "the server to fetch from the junk")
                wait_until(lambda: server.stats().get("checks_run", 0) > runs + 10, 5, "runs")
                assert server.alive()
            assert "SeesawEngine.Healthchecks failed" in server.log()
            # Bad configs next to good ones: each logged once, the good ones run on.
            bad = [
                {"id": 20, "interval": "0s", "type": "tcp", "ip": "127.0.0.1", "port": 1},
                {"id": 21, "interval": "1s", "timeout": "-1s", "type": "tcp",
                 "ip": "127.0.0.1", "port": 1},
                {"id": 22, "interval": "1s", "type": "tcp", "ip": "", "port": 1},
            ]  # fmt: skip
            write_checks_file(checks, good + bad)
            record.unlink()
            with GoEngine(sock, checks_file=checks, record=record):
                wait_until(lambda: server.stats().get("fetches", 0) >= 5, 15, "more fetches")
                wait_until(lambda: {1, 2} <= set(latest(read_records(record))), 10, "good")
            log = server.log()
            for check_id, words in ((20, "interval"), (21, "timeout"), (22, "IP")):
                lines = [x for x in log.splitlines() if f"Healthcheck {check_id} has a bad" in x]
                assert len(lines) == 1, (check_id, lines)
                assert words in lines[0]
            assert server.alive()


@dataclass
class FancyChecker:
    """A checker type from some newer engine: this server has never heard of it."""

    target: Target
    colour: str = ""


def fancy_schema() -> Any:
    """CHECKS whose checker registry also knows ``*healthcheck.FancyChecker``."""
    registry = Registry()
    for name, kind, cls in (
        ("*healthcheck.TCPChecker", schema.TCP_CHECKER, TCPChecker),
        ("*healthcheck.FancyChecker",
         Struct("FancyChecker", [Field("Target", schema.TARGET, "target"),
                                 Field("Colour", String(), "colour")], FancyChecker),
         FancyChecker),
    ):  # fmt: skip
        registry.register(name, kind, cls)
    config = Struct(
        "",
        [
            Field("Id", Uint(64), "id"),
            Field("Interval", Int(64), "interval"),
            Field("Timeout", Int(64), "timeout"),
            Field("Retries", Int(64), "retries"),
            Field("Checker", Interface(registry), "checker"),
        ],
        Config,
    )
    return Struct(
        "Checks",
        [
            Field(
                "Configs",
                Map(Uint(64), Ptr(config), name="map[healthcheck.Id]*healthcheck.Config"),
                "configs",
            )
        ],
        Checks,
    )


@contextmanager
def python_engine(path: Path, checks: Checks) -> Iterator[list[Notification]]:
    """A Seesaw engine on our own RpcServer, serving ``checks`` with a wider registry."""
    received: list[Notification] = []
    checks_type = fancy_schema()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop: asyncio.Event | None = None

    async def healthchecks(ctx: Any) -> Checks:
        return checks

    async def health_state(state: HealthState) -> int:
        received.extend(state.notifications)
        return 0

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server = RpcServer()
        server.register(schema.HEALTHCHECKS, schema.CONTEXT_ARG, checks_type, healthchecks)
        server.register(
            schema.HEALTH_STATE_METHOD, schema.HEALTH_STATE_ARG, schema.INT_REPLY, health_state
        )
        await server.start_unix(str(path))
        ready.set()
        await stop.wait()
        await server.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield received
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)
        loop.close()


def test_unknown_checker_type_costs_only_that_check(short_tmp: Path) -> None:
    with TCPResponder("127.0.0.1") as tcp:
        target = Target(ip=ip_to_bytes("127.0.0.1"), port=tcp.port, proto=6)
        second = 1_000_000_000
        checks = Checks(
            configs={
                1: Config(1, second // 5, second // 2, 0, TCPChecker(target)),
                2: Config(2, second // 5, second // 2, 0, FancyChecker(target, "teal")),  # type: ignore[arg-type]
            }
        )
        sock = short_tmp / "engine.sock"
        with python_engine(sock, checks) as received, server_process(sock, short_tmp) as server:
            wait_until(lambda: server.stats().get("fetches", 0) >= 3, 10, "three fetches")
            wait_until(lambda: any(n.id == 1 for n in received), 5, "check 1 notifies")
            log = server.log()
        assert any(n.id == 1 and n.status.state == HEALTHY for n in received)
        lines = [x for x in log.splitlines() if "Healthcheck 2 has a bad config" in x]
        assert len(lines) == 1 and "*healthcheck.FancyChecker" in lines[0], lines
