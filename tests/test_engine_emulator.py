"""The engine emulator: checks-file parsing, serving over net/rpc, reloads, refusals."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.loop_thread import LoopThread

from seesaw_healthcheck import model, schema
from seesaw_healthcheck.checkfile import ConfigError, IdAllocator, parse_checks
from seesaw_healthcheck.cli.engine import EngineEmulator, rfc3339
from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.gob.types import GobType
from seesaw_healthcheck.reactor import Reactor
from seesaw_healthcheck.rpc import RpcError, reactor_call

ONE_CHECK = """
[[check]]
name = "web-1"
type = "tcp"
ip = "127.0.0.1"
port = 8080
interval = "1s"
timeout = "500ms"
retries = 1
"""

TWO_CHECKS = (
    ONE_CHECK
    + """
[[check]]
name = "dns-1"
type = "dns"
ip = "127.0.0.1"
port = 53
query = "www.example.com."
query_type = "aaaa"
answer = "::1"
"""
)

EVERY_TYPE = """
[defaults]
interval = "2s"
timeout = "1s"
retries = 3

[[check]]
id = 7
type = "http"
ip = "::1"
port = 80
request = "/healthz"
response_code = 204

[[check]]
type = "https"
ip = "10.0.0.1"
port = 443
mode = "dsr"
host = "10.0.0.2"
mark = 9
tls_verify = false

[[check]]
type = "tcp_tls"
ip = "127.0.0.1"
port = 993
send = "a"
receive = "b"
tls_verify = true

[[check]]
type = "udp"
ip = "127.0.0.1"
port = 514
send = "x"
receive = "y"

[[check]]
type = "radius"
ip = "127.0.0.1"
port = 1812
username = "u"
password = "p"
secret = "s"

[[check]]
type = "ping"
ip = "127.0.0.1"
interval = "10s"
"""


def test_every_type_parses_with_seesaw_defaults() -> None:
    checks = parse_checks(EVERY_TYPE, "every.toml")
    by_type = {type(e.config.checker).__name__: e.config for e in checks.values()}
    assert set(by_type) == {
        "HTTPChecker",
        "TCPChecker",
        "UDPChecker",
        "RADIUSChecker",
        "PingChecker",
    }
    http = checks[7].config
    assert isinstance(http.checker, model.HTTPChecker)
    assert http.checker.method == "GET" and http.checker.request == "/healthz"
    assert http.checker.response_code == 204 and http.checker.tls_verify
    assert http.checker.target.proto == model.Proto.TCP
    assert (http.interval, http.timeout, http.retries) == (2 * 10**9, 10**9, 3)
    https = next(
        e.config.checker
        for e in checks.values()
        if isinstance(e.config.checker, model.HTTPChecker) and e.config.id != 7
    )
    assert isinstance(https, model.HTTPChecker)
    assert https.secure and not https.tls_verify
    assert https.target.mode == model.Mode.DSR and https.target.mark == 9
    assert https.target.host == model.ip_to_bytes("10.0.0.2")
    radius = by_type["RADIUSChecker"].checker
    assert isinstance(radius, model.RADIUSChecker) and radius.response == "accept"
    ping = by_type["PingChecker"]
    assert ping.interval == 10 * 10**9
    assert isinstance(ping.checker, model.PingChecker)
    assert ping.checker.target.proto == model.Proto.ICMP


def test_ids_follow_seesaw_numbering_and_survive_reloads() -> None:
    ids = IdAllocator()
    base = (os.getpid() & 0xFFFF) << 48
    first = parse_checks(TWO_CHECKS, "a.toml", ids=ids)
    assert sorted(first) == [base, base + 1]
    dns_id = next(i for i, e in first.items() if e.name == "dns-1")
    # dns-1 keeps its id when web-1 goes away and a new check arrives.
    second = parse_checks(TWO_CHECKS.replace("web-1", "web-2"), "a.toml", ids=ids)
    assert next(i for i, e in second.items() if e.name == "dns-1") == dns_id
    assert base + 2 in second


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[check]]\ntype='tcp'\nip='127.0.0.1'", "port is required"),
        ("[[check]]\ntype='tcp'\nip='127.0.0.1'\nport=1\nsnd='x'", "unknown field(s) snd"),
        ("[[check]]\ntype='smtp'\nip='127.0.0.1'\nport=1", "type 'smtp' is not one of"),
        ("[[check]]\ntype='tcp'\nip='nowhere'\nport=1", "is not an IP address"),
        ("[[check]]\ntype='tcp'\nip='127.0.0.1'\nport=1\ninterval=5", "has no unit"),
        ("[[check]]\ntype='tcp'\nip='127.0.0.1'\nport=1\ntimeout='5 s'", "timeout"),
        ("[[check]]\ntype='tcp'\nip='127.0.0.1'\nport=70000", "out of range"),
        ("[[check]]\ntype='ping'\nip='1.2.3.4'\nmode='dsr'\nhost='1.2.3.5'", "dsr or tun"),
        (
            "[[check]]\ntype='dns'\nip='127.0.0.1'\nport=53\nquery='x.'\nquery_type='NOPE'",
            "unknown DNS query_type",
        ),
        (
            "[[check]]\nid=1\ntype='ping'\nip='::1'\n[[check]]\nid=1\ntype='ping'\nip='::1'",
            "already used",
        ),
        ("check = 1", "array of tables"),
        ("[checks]", "unknown top-level key"),
        ("[[check]\n", "not valid TOML"),
    ],
)
def test_bad_files_give_clear_errors(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_checks(text, "bad.toml")
    assert expected in str(info.value)
    assert str(info.value).startswith("bad.toml")


def _wait_for(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _notification(check_id: int, state: model.State, message: str) -> model.Notification:
    return model.Notification(
        id=check_id,
        status=model.Status(
            last_check=GoTime.now(), duration=1234, successes=1, state=state, message=message
        ),
    )


def _call(sock: str, method: str, args: Any, args_type: GobType, reply_type: GobType) -> Any:
    """One call from our client (as the healthcheck server makes it), on a reactor."""
    with Reactor() as reactor:
        return reactor.run(
            reactor_call.call(sock, method, args, args_type, reply_type, timeout=5.0), 10
        )


def test_serves_checks_and_records_health_state(tmp_path: Path) -> None:
    config = tmp_path / "checks.toml"
    config.write_text(TWO_CHECKS)
    record = tmp_path / "record.jsonl"
    sock = str(tmp_path / "engine.sock")

    engine = EngineEmulator(str(config), record_path=str(record), poll_interval=0.05)
    with LoopThread() as loop:  # the engine's loop; our client's reactor runs here
        loop.run(engine.start(sock))
        try:
            checks = _call(
                sock,
                schema.HEALTHCHECKS,
                model.Context.trusted(),
                schema.CONTEXT_ARG,
                schema.CHECKS,
            )
            assert isinstance(checks, model.Checks) and checks.configs is not None
            assert {c.id for c in checks.configs.values()} == set(engine.checks)
            web = next(i for i, e in engine.checks.items() if e.name == "web-1")
            got = checks.configs[web]
            assert got.interval == 10**9 and got.timeout == 500 * 10**6 and got.retries == 1
            assert isinstance(got.checker, model.TCPChecker)
            assert got.checker.target.port == 8080

            # Like Seesaw's engine: a nil or untrusted context is refused. (A nil top-level
            # pointer cannot be sent with gob, so Healthchecks gets an empty context.)
            with pytest.raises(RpcError, match=r"^insufficient access$"):
                _call(sock, schema.HEALTHCHECKS, model.Context(), schema.CONTEXT_ARG, schema.CHECKS)
            untrusted = model.Context.trusted()
            untrusted.auth_type = model.AuthType.UNTRUSTED
            with pytest.raises(RpcError, match=r"^insufficient access$"):
                _call(sock, schema.HEALTHCHECKS, untrusted, schema.CONTEXT_ARG, schema.CHECKS)
            with pytest.raises(RpcError, match=r"^context is nil$"):
                _call(
                    sock,
                    schema.HEALTH_STATE_METHOD,
                    model.HealthState(
                        ctx=None, notifications=[_notification(web, model.State.HEALTHY, "sneaky")]
                    ),
                    schema.HEALTH_STATE_ARG,
                    schema.INT_REPLY,
                )
            assert engine.refused == 3 and web not in engine.statuses

            state = model.HealthState(
                ctx=model.Context.trusted(),
                notifications=[
                    _notification(web, model.State.HEALTHY, "TCP connect to 127.0.0.1:8080 ok")
                ],
            )
            reply = _call(
                sock, schema.HEALTH_STATE_METHOD, state, schema.HEALTH_STATE_ARG, schema.INT_REPLY
            )
            assert reply == 0
            assert engine.statuses[web].state == model.State.HEALTHY
            assert engine.statuses[web].message == "TCP connect to 127.0.0.1:8080 ok"

            # Reload on change: a new file replaces the checks; ids of kept checks stay.
            config.write_text(ONE_CHECK)
            os.utime(config, (time.time() + 2, time.time() + 2))
            _wait_for(lambda: len(engine.checks) == 1)
            assert web in engine.checks

            # A broken file keeps the last good checks and says why.
            config.write_text("[[check]]\ntype = 'tcp'\n")
            os.utime(config, (time.time() + 4, time.time() + 4))
            _wait_for(lambda: engine.last_error is not None)
            assert "ip is required" in (engine.last_error or "")
            assert list(engine.checks) == [web]
            again = _call(
                sock,
                schema.HEALTHCHECKS,
                model.Context.trusted(),
                schema.CONTEXT_ARG,
                schema.CHECKS,
            )
            assert list(again.configs) == [web]
        finally:
            loop.run(engine.close())
    assert not os.path.exists(sock)

    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(lines) == 1
    assert lines[0]["name"] == "web-1" and lines[0]["state"] == "Healthy"
    assert lines[0]["old_state"] == "Unknown" and lines[0]["duration"] == "1.234µs"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)", lines[0]["last_check"]
    ), lines[0]


def test_cli_reloads_on_sighup_and_keeps_last_good(tmp_path: Path) -> None:
    config = tmp_path / "checks.toml"
    config.write_text(ONE_CHECK)
    sock = str(tmp_path / "engine.sock")
    stderr_path = tmp_path / "stderr.txt"

    def fetch_names() -> int:
        checks = _call(
            sock, schema.HEALTHCHECKS, model.Context.trusted(), schema.CONTEXT_ARG, schema.CHECKS
        )
        return len(checks.configs or {})

    with open(stderr_path, "wb") as err:
        # -poll 1h: only SIGHUP can make it re-read the file within this test.
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "seesaw_healthcheck.cli.engine",
                "-socket",
                sock,
                "-config",
                str(config),
                "-poll",
                "1h",
                "-logtostderr",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        _wait_for(lambda: os.path.exists(sock), 10.0)
        assert fetch_names() == 1
        config.write_text(TWO_CHECKS)
        time.sleep(0.2)
        assert fetch_names() == 1  # not re-read yet
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: fetch_names() == 2)

        config.write_text("[[check]\n")
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: "not valid TOML" in stderr_path.read_text())
        assert fetch_names() == 2
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert not os.path.exists(sock)
    log = stderr_path.read_text()
    assert "keeping the last good config (2 checks)" in log
    assert log.splitlines()[0][0] in "IWE"  # glog-style lines


def test_cli_refuses_bad_config_at_start(tmp_path: Path) -> None:
    config = tmp_path / "checks.toml"
    config.write_text("[[check]]\ntype = 'tcp'\nip = '127.0.0.1'\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seesaw_healthcheck.cli.engine",
            "-socket",
            str(tmp_path / "e.sock"),
            "-config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "port is required for a tcp check" in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "seesaw_healthcheck.cli.engine"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2 and "-config is required" in missing.stderr


def test_nil_arguments_refused_like_seesaw(tmp_path: Path) -> None:
    config = tmp_path / "checks.toml"
    config.write_text(ONE_CHECK)
    engine = EngineEmulator(str(config))
    engine.reload()

    async def scenario() -> None:
        with pytest.raises(RpcError, match=r"^context is nil$"):
            await engine.healthchecks(None)
        with pytest.raises(RpcError, match=r"^args is nil$"):
            await engine.health_state(None)
        checks = await engine.healthchecks(model.Context.trusted())
        assert checks.configs is not None and len(checks.configs) == 1

    asyncio.run(scenario())
    assert engine.refused == 2


INVALID_CHECKS = """
[[check]]
name = "good"
id = 1
type = "tcp"
ip = "127.0.0.1"
port = PORT
interval = "1s"
timeout = "1s"

[[check]]
name = "every-zero"
id = 2
type = "tcp"
ip = "127.0.0.1"
port = PORT
interval = "0s"

[[check]]
name = "negative"
id = 3
type = "tcp"
ip = "127.0.0.1"
port = PORT
timeout = "-1s"
retries = -1

[[check]]
name = "nowhere"
id = 4
type = "http"
ip = "not-an-ip"
port = 70000

[[check]]
name = "no-checker"
id = 5
type = "nil"
"""


def test_allow_invalid_serves_bad_checks_as_written() -> None:
    text = INVALID_CHECKS.replace("PORT", "80")
    with pytest.raises(ConfigError, match="check #2 \\(every-zero\\): interval must be more"):
        parse_checks(text, "bad.toml")
    checks = parse_checks(text, "bad.toml", allow_invalid=True)
    assert checks[1].invalid == []
    assert checks[2].config.interval == 0
    assert checks[2].invalid == ["bad.toml: check #2 (every-zero): interval must be more than 0"]
    assert (checks[3].config.timeout, checks[3].config.retries) == (-(10**9), -1)
    http = checks[4].config.checker
    assert isinstance(http, model.HTTPChecker)
    assert (http.target.ip, http.target.host, http.target.port) == (b"", b"", 70000)
    assert len(checks[4].invalid) == 2 and "not an IP address" in checks[4].invalid[0]
    assert checks[5].config.checker is None
    # Not values but the file's shape: still refused, with or without the flag.
    for broken in ("[[check]]\ntype='tcp'\nip='::1'\nport='80'", "[[check]]\ntype='nil'\nx=1"):
        with pytest.raises(ConfigError):
            parse_checks(broken, "bad.toml", allow_invalid=True)


def test_allow_invalid_shows_the_servers_handling_of_bad_checks(tmp_path: Path) -> None:
    """The shipped engine emulator and server: each bad check is one logged error of the
    server, and the good one next to them runs and is reported."""
    from tests.responders.tcp import TCPResponder

    sock = str(tmp_path / "engine.sock")
    record = tmp_path / "record.jsonl"
    engine_log, server_log = tmp_path / "engine.txt", tmp_path / "server.txt"
    procs: list[subprocess.Popen[bytes]] = []
    with TCPResponder("127.0.0.1") as peer:
        config = tmp_path / "checks.toml"
        config.write_text(INVALID_CHECKS.replace("PORT", str(peer.port)))
        try:
            with open(engine_log, "wb") as err:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "seesaw_healthcheck.cli.engine",
                            "-socket",
                            sock,
                            "-config",
                            str(config),
                            "-allow_invalid",
                            "-record",
                            str(record),
                            "-logtostderr",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                    )
                )
            _wait_for(lambda: os.path.exists(sock), 10.0)
            with open(server_log, "wb") as err:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "seesaw_healthcheck.cli.healthcheck",
                            "-engine",
                            sock,
                            "-batch_delay",
                            "10ms",
                            "-logtostderr",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                    )
                )
            _wait_for(lambda: record.exists() and '"Healthy"' in record.read_text(), 20.0)
            _wait_for(lambda: server_log.read_text().count("has a bad config") >= 4, 10.0)
        finally:
            for proc in reversed(procs):
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    server = server_log.read_text()
    for check_id, problem in [
        (2, "interval 0s is out of range"),
        (3, "timeout -1s is out of range"),
        (4, "target: invalid IP of 0 bytes"),
        (5, "no checker (nil)"),
    ]:
        assert f"Healthcheck {check_id} has a bad config, not running it: {problem}" in server
    engine = engine_log.read_text()
    assert engine.count("serving check ") == 6, engine  # 1 + 2 rules + 2 + 1
    notes = [json.loads(line) for line in record.read_text().splitlines()]
    assert {n["id"] for n in notes} == {1}
    assert notes[0]["state"] == "Healthy"
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)", notes[0]["last_check"]
    ), notes[0]


@pytest.mark.parametrize(
    ("time", "text"),
    [
        (GoTime.from_unix_ns(1_700_000_000_123_456_789), "2023-11-14T22:13:20.123456789Z"),
        (
            GoTime.from_unix_ns(1_700_000_000_000_000_005, 3600),
            "2023-11-14T23:13:20.000000005+01:00",
        ),
        (GoTime.from_unix_ns(0, -(5 * 3600 + 30 * 60)), "1969-12-31T18:30:00.000000000-05:30"),
        (GoTime.from_unix_ns(7, 0), "1970-01-01T00:00:00.000000007Z"),
        (GoTime(), "0001-01-01T00:00:00.000000000Z"),
        (GoTime(sec=-1), "GoTime(sec=-1, nsec=0, offset=None)"),  # before year 1
    ],
)
def test_record_times_are_rfc3339(time: GoTime, text: str) -> None:
    assert rfc3339(time) == text
