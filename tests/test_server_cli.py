"""The `seesaw-healthcheck` command line: Seesaw's flags, clear errors, exit codes."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seesaw_healthcheck import __version__

COMMAND = [sys.executable, "-m", "seesaw_healthcheck.cli.healthcheck"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("flag", ["-version", "--version", "-version=true"])
def test_version(flag: str) -> None:
    proc = run(flag)
    assert proc.returncode == 0
    version, build = proc.stdout.splitlines()
    assert version == f"seesaw-healthcheck {__version__}"
    assert build.startswith(("build: compiled (mypyc ", "build: pure Python ("))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-batch_size", "0"], "-batch_size must be positive, got 0"),
        (["--batch_size=-3"], "-batch_size must be positive, got -3"),
        (["-retry_delay", "-1s"], "-retry_delay must be at least 10ms, got -1s"),
        (["-retry_delay", "0s"], "-retry_delay must be at least 10ms, got 0s"),
        (["-fetch_interval=0s"], "-fetch_interval must be positive, got 0s"),
        (["-max_failures", "0"], "-max_failures must be positive"),
        (["-stderrthreshold", "LOUD"], "LOUD"),
        (["-engine", "/tmp/x.sock", "extra"], "unexpected arguments: extra"),
    ],
)
def test_bad_values_one_line_exit_2(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["-batch_delay", "soon"], 'invalid value "soon" for flag -batch_delay: parse error'),
        (["-batch_size", "many"], 'invalid value "many" for flag -batch_size: parse error'),
        (["-no_such_flag"], "flag provided but not defined: -no_such_flag"),
    ],
)
def test_go_flag_errors_exit_2(args: list[str], first_line: str) -> None:
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == first_line


def test_help_lists_seesaw_flags_with_defaults() -> None:
    proc = run("-h")
    assert proc.returncode == 0
    for text in (
        "-batch_delay duration",
        "(default 100ms)",
        "-engine string",
        '(default "/var/run/seesaw/engine/engine.sock")',
        "-notify_interval duration",
        "(default 15s)",
        "-channel_size int",
        "(default 1000)",
        "-dry_run",
    ):
        assert text in proc.stderr


def test_no_engine_keeps_running_raises_nofile_and_stops_on_sigint(tmp_path: Path) -> None:
    """No engine at all: it logs the dial error, keeps going, and Ctrl-C exits 0 fast."""
    proc = subprocess.Popen(
        [*COMMAND, "-engine", str(tmp_path / "none.sock"), "-logtostderr"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 10
        seen = ""
        while "SeesawEngine.Healthchecks failed" not in seen:
            assert time.monotonic() < deadline, seen
            seen += proc.stderr.readline()
        soft, hard = _nofile(proc.pid)
        assert soft == hard or hard == resource.RLIM_INFINITY
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0
        assert time.monotonic() - t0 < 1.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _nofile(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no Max open files line")


def test_a_task_that_ends_stops_the_server_with_status_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The updater, notifier and stats tasks loop forever; if one ends (a bug), the server
    stops and run() returns 1, so the watchdog restarts it, instead of checking on with
    configs that never refresh."""
    from seesaw_healthcheck.control import app
    from seesaw_healthcheck.control.config import ServerConfig

    server = app.Control(ServerConfig(engine_socket=str(tmp_path / "none.sock")))

    async def broken() -> None:
        raise RuntimeError("manager bug")

    server.updater.run = broken  # type: ignore[method-assign]
    started = time.monotonic()
    with caplog.at_level("ERROR"):
        server.run()  # returns by itself
    assert time.monotonic() - started < 5
    assert server.failed is not None and "updater" in server.failed
    assert "manager bug" in caplog.text
