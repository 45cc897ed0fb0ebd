"""`make demo` end to end: targets, engine emulator and the real server subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO_TOML = ROOT / "examples" / "demo.toml"
DEMO = [sys.executable, "-m", "seesaw_healthcheck.cli.demo"]
SOCKET_LINE = re.compile(r"server seesaw-healthcheck -engine (\S+) \(pid (\d+)\)")


def _socket_and_pid(output: str) -> tuple[str, int]:
    m = SOCKET_LINE.search(output)
    assert m, output
    return m.group(1), int(m.group(2))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.slow
def test_demo_runs_bounded_and_shows_changes_and_table() -> None:
    result = subprocess.run(
        [*DEMO, "--duration", "15", str(DEMO_TOML)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    # State changes as the engine received them: every working target turns Healthy,
    # the closed port Unhealthy.
    changes = [line for line in out.splitlines() if " -> " in line]
    assert changes, out
    assert any("api-http" in line and "Unknown -> Healthy" in line for line in changes), out
    assert any("resolver-dns" in line and "-> Healthy" in line for line in changes), out
    assert any("gone-tcp" in line and "-> Unhealthy" in line for line in changes), out
    # The periodic table, with every check of the file in it.
    assert "CHECK" in out and "STATE" in out
    table = out[out.rindex("CHECK") :]
    for name in ("web-flapping", "api-http", "smtp-tcp", "resolver-dns", "syslog-udp", "gone-tcp"):
        assert name in table, table
    assert re.search(r"\d+ state changes, [1-9]\d* notifications", out), out
    sock, pid = _socket_and_pid(out)
    assert not os.path.exists(os.path.dirname(sock))  # temp dir and socket removed
    assert _gone(pid)


GRPC_LINE = re.compile(
    r"server seesaw-healthcheck -config_source grpc -grpc_listen unix:(\S+) \(pid (\d+)\)"
)


@pytest.mark.slow
def test_demo_over_grpc(tmp_path: Path) -> None:
    """``--grpc``: the same demo with the checks pushed over the gRPC API."""
    result = subprocess.run(
        [*DEMO, "--grpc", "--duration", "12", str(DEMO_TOML)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "State changes as the controller receives them" in out
    changes = [line for line in out.splitlines() if " -> " in line]
    assert any("api-http" in line and "Unknown -> Healthy" in line for line in changes), out
    assert any("resolver-dns" in line and "-> Healthy" in line for line in changes), out
    assert any("gone-tcp" in line and "-> Unhealthy" in line for line in changes), out
    table = out[out.rindex("CHECK") :]
    assert "web-flapping" in table  # either state, as it flaps
    for name in ("api-http", "smtp-tcp", "resolver-dns", "syslog-udp"):
        assert re.search(rf"{name} .* Healthy ", table), table
    assert re.search(r"gone-tcp .* Unhealthy ", table), table
    assert re.search(r"\(1 push, \d+ notifications\)", out), out
    assert re.search(r"\d+ state changes, [1-9]\d* notifications, 1 push$", out, re.M), out
    assert result.stderr == "", result.stderr  # nothing went wrong, not even on the way out
    m = GRPC_LINE.search(out)
    assert m, out
    assert not os.path.exists(os.path.dirname(m.group(1)))  # temp dir and socket removed
    assert _gone(int(m.group(2)))


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    out_path = tmp_path / "out.txt"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(
            [*DEMO, str(DEMO_TOML)], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    try:
        deadline = time.monotonic() + 20
        while "-> Healthy" not in out_path.read_text():
            assert time.monotonic() < deadline, out_path.read_text()
            assert proc.poll() is None, out_path.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out_path.read_text()
    assert "stopping:" in text and "Traceback" not in text
    sock, pid = _socket_and_pid(text)
    assert not os.path.exists(sock)
    assert _gone(pid)


def test_demo_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[demo.target]]\nname = 'x'\nkind = 'ftp'\n")
    result = subprocess.run(
        [*DEMO, "--duration", "1", str(bad)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "kind 'ftp' is not one of" in result.stderr
    missing = subprocess.run(
        [*DEMO, "--duration", "1", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_demo_http_target_is_quiet_about_clients_that_hang_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A checker closes once it has the status line; the demo's web target must not print
    a traceback for that (it did, on the demo's screen), but still does for a real bug."""
    from http.server import BaseHTTPRequestHandler

    from seesaw_healthcheck.demo_targets import _QuietHTTPServer

    srv = _QuietHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        for error in (BrokenPipeError(32, "Broken pipe"), ValueError("a real bug")):
            try:
                raise error
            except Exception:
                srv.handle_error(None, ("127.0.0.1", 1))
    finally:
        srv.server_close()
    err = capsys.readouterr().err
    assert "BrokenPipeError" not in err
    assert "ValueError: a real bug" in err
