"""Shared pytest fixtures. Add yours below; keep each one small and documented."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from tests import gopeer as _gopeer

from seesaw_healthcheck import checkers
from seesaw_healthcheck.checkers import Result, tls
from seesaw_healthcheck.reactor import Reactor


@pytest.fixture(scope="session")
def gopeer() -> Path:
    """Path of the Go peer binary (``build/gopeer``), built once per session if stale."""
    if shutil.which("go") is None and not _gopeer.BINARY.exists():
        pytest.skip("Go toolchain not installed (run `make go`)")
    return _gopeer.build()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A fresh directory with a short path: AF_UNIX socket paths are limited to 107 bytes,
    which pytest's tmp_path can exceed."""
    path = Path(tempfile.mkdtemp(prefix="ssw-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    """A port the kernel just gave out on ``host`` (may be reused later; fine for tests)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until truthy or ``timeout`` seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def full_accept_queue(host: str = "127.0.0.1") -> Iterator[int]:
    """A loopback port whose listener's accept queue is full: the kernel drops further
    SYNs, so a connect() to it hangs until the caller's timeout. Yields the port."""
    listener = socket.socket()
    listener.bind((host, 0))
    listener.listen(0)
    fillers: list[socket.socket] = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex((host, listener.getsockname()[1]))
            fillers.append(filler)
        time.sleep(0.05)
        yield listener.getsockname()[1]
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def run_check(checker: Any, timeout_s: float = 1.0) -> Result:
    """One check to completion on a fresh reactor."""
    with Reactor() as reactor:
        return reactor.run(checkers.run(checker, timeout_s))


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusted_ca(ca: trustme.CA, tmp_path: Path) -> Iterator[trustme.CA]:
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    tls.trust(str(cafile))
    yield ca
    tls.trust(None)
