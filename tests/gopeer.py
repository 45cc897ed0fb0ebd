"""Build and drive the Go peer (``tests/go``, see its README.md) from tests and benchmarks.

``build()`` compiles ``tests/go`` with Debian's ``go`` into ``build/gopeer`` (relative to
the repo root), offline, only when a Go source is newer than the binary; a file lock makes
concurrent callers (pytest workers, a benchmark) build once. ``GoEngine`` runs
``gopeer engine`` as a Seesaw engine stand-in. ``recipe_*`` build, in Python, the
deterministic configs and notifications that ``gopeer client`` and ``gopeer bench`` use.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from seesaw_healthcheck import model
from seesaw_healthcheck.gob.gotime import GoTime

REPO = Path(__file__).resolve().parent.parent
GO_DIR = REPO / "tests" / "go"
BINARY = REPO / "build" / "gopeer"
BUILD_TIMEOUT_S = 300.0


class GoPeerError(RuntimeError):
    """The Go toolchain is missing, the build failed, or gopeer misbehaved."""


def go_sources() -> list[Path]:
    return sorted(p for p in GO_DIR.rglob("*") if p.suffix == ".go" or p.name == "go.mod")


def _go_env() -> dict[str, str]:
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", GOTOOLCHAIN="local")
    if "HOME" not in env and "GOCACHE" not in env:
        env["GOCACHE"] = str(REPO / "build" / "go-cache")  # go refuses to run without one
    return env


def _stale() -> bool:
    if not BINARY.exists():
        return True
    built = BINARY.stat().st_mtime
    return any(src.stat().st_mtime > built for src in go_sources())


def build() -> Path:
    """Return the path of an up-to-date ``build/gopeer``, building it if needed."""
    go = shutil.which("go")
    if not _stale():
        return BINARY
    if go is None:
        raise GoPeerError("`go` not found on PATH; install Debian's golang-go (make go)")
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    with open(BINARY.parent / ".gopeer.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _stale():  # another process built it while we waited
            return BINARY
        tmp = BINARY.with_name(f".gopeer.{os.getpid()}")
        try:
            proc = subprocess.run(
                [go, "build", "-o", str(tmp), "."],
                cwd=GO_DIR,
                env=_go_env(),
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
            if proc.returncode != 0:
                raise GoPeerError(f"go build failed ({proc.returncode}):\n{proc.stderr}")
            os.replace(tmp, BINARY)
        finally:
            tmp.unlink(missing_ok=True)
    return BINARY


def run(
    args: Sequence[str], *, timeout: float = 60.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``gopeer ARGS...``; with ``check`` raise GoPeerError (with its output) on failure."""
    proc = subprocess.run(
        [str(build()), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise GoPeerError(
            f"gopeer {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


class GoEngine:
    """``gopeer engine`` as a context manager: started and listening on enter, stopped with
    SIGTERM on exit. ``summary`` then holds its call counts (JSON it printed at exit)."""

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        *,
        checks_file: str | os.PathLike[str] | None = None,
        configs: int | None = None,
        port: int = 80,
        record: str | os.PathLike[str] | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        if (checks_file is None) == (configs is None):
            raise ValueError("give exactly one of checks_file, configs")
        self.socket_path = str(socket_path)
        args = ["engine", "-socket", self.socket_path]
        if checks_file is not None:
            args += ["-checks", str(checks_file)]
        else:
            args += ["-configs", str(configs), "-port", str(port)]
        if record is not None:
            args += ["-record", str(record)]
        self.args = args
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[str] | None = None
        self.summary: dict[str, Any] = {}
        self.stderr = ""  # what the engine wrote to stderr, once stopped
        self._stderr_file: IO[str] | None = None

    def start(self) -> GoEngine:
        # stderr goes to a file, not a pipe nobody drains while the engine runs.
        self._stderr_file = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(build()), *self.args],
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            text=True,
        )
        assert self.proc.stdout is not None
        # The first line is "listening PATH" once the socket accepts, or EOF on failure.
        os.set_blocking(self.proc.stdout.fileno(), True)
        deadline = time.monotonic() + self.start_timeout
        line = ""
        while time.monotonic() < deadline and self.proc.poll() is None:
            line = self.proc.stdout.readline()
            if line:
                break
        if not line.startswith("listening "):
            self.stop()
            raise GoPeerError(f"gopeer engine did not start: {line!r} {self.stderr}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        if self._stderr_file is not None:
            self._stderr_file.seek(0)
            self.stderr = self._stderr_file.read()
            self._stderr_file.close()
            self._stderr_file = None
        for line in out.splitlines():
            if line.startswith("{"):
                self.summary = json.loads(line)

    def __enter__(self) -> GoEngine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def write_checks_file(path: str | os.PathLike[str], configs: list[dict[str, Any]] | None) -> None:
    """Write a ``gopeer engine -checks`` file atomically (the engine re-reads it per call)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps({"configs": configs}))
    os.replace(tmp, path)


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The notifications a ``gopeer engine -record`` received, one dict per notification.

    Only whole lines: while the engine runs, its buffered writer may have written part of
    the last one (a flush of a full buffer ends anywhere)."""
    p = Path(path)
    if not p.exists():
        return []
    text = p.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line]


# --- The recipe shared with gopeer client and bench (tests/go/README.md) ---

_RECIPE_KINDS = ("tcp", "http", "dns", "udp", "ping", "radius")
RECIPE_ZONE_OFFSET = 3600


def recipe_config(config_id: int) -> model.Config:
    """Config ``config_id`` of the deterministic mixed set (same as gopeer's recipeConfig)."""
    i = config_id
    target = model.Target(
        ip=model.ip_to_bytes(f"127.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"),
        port=1024 + i % 50000,
    )
    kind = _RECIPE_KINDS[(i - 1) % 6]
    checker: model.Checker
    if kind == "tcp":
        target.proto = model.Proto.TCP
        checker = model.TCPChecker(target, receive=f"pong {i}", send=f"ping {i}", secure=i % 2 == 0)
    elif kind == "http":
        target.proto = model.Proto.TCP
        checker = model.HTTPChecker(
            target,
            secure=i % 2 == 0,
            method="GET",
            request=f"/health/{i}",
            response="ok",
            response_code=200,
        )
    elif kind == "dns":
        target.proto = model.Proto.UDP
        checker = model.DNSChecker(
            target, model.DNSQuestion(f"host{i}.example.com.", 1, 1), answer="127.0.0.1"
        )
    elif kind == "udp":
        target.proto = model.Proto.UDP
        checker = model.UDPChecker(target, receive=f"pong {i}", send=f"ping {i}")
    elif kind == "ping":
        target.proto, target.port = model.Proto.ICMP, 0
        checker = model.PingChecker(target, id=i & 0xFFFF, seqnum=1)
    else:
        target.proto = model.Proto.UDP
        checker = model.RADIUSChecker(
            target, username=f"user{i}", password=f"pw{i}", secret="secret", response="accept"
        )
    return model.Config(
        id=i,
        interval=(1 + i % 5) * model.SECOND,
        timeout=500 * model.MILLISECOND,
        retries=i % 3,
        checker=checker,
    )


def recipe_checks(n: int) -> model.Checks:
    return model.Checks(configs={i: recipe_config(i) for i in range(1, n + 1)})


def recipe_notification(config_id: int) -> model.Notification:
    """The notification ``gopeer client`` sends for ``config_id``."""
    i = config_id
    return model.Notification(
        id=i,
        status=model.Status(
            last_check=GoTime.from_unix_ns(
                (1_700_000_000 + i) * 1_000_000_000 + i, RECIPE_ZONE_OFFSET
            ),
            duration=i * model.MICROSECOND,
            failures=i % 7,
            successes=i,
            state=model.State.UNHEALTHY if i % 2 else model.State.HEALTHY,
            message=f"check {i}",
        ),
    )


# The name tests/test_rpc_live.py uses for the configs gopeer client expects.
client_recipe_checks = recipe_checks
