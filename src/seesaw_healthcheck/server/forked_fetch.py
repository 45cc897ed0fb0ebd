"""Fetch the configs in a forked child that sends back only what changed.

Decoding a ``Checks`` reply costs ~6 µs a config: 0.3 s for 50,000, every fetch interval.
On the reactor thread that stalls every check for as long; on a second thread it fights
the checks for the interpreter lock (see ``app``). A child forked for the fetch decodes on
the other core and compares each config with the running one (it has a copy-on-write view
of them); it pipes back, pickled, only the added and changed configs and the removed ids,
which is nothing at all when the engine's set did not change. The parent merges that into
its current configs, so unchanged checks keep their very Config objects and the manager's
diff skips them by identity.

The first fetch (nothing running yet) is done in-process: there is nothing to compare
with, and forking would only add the pickling to the time until the first checks start.
If fork fails (memory), the fetch is done in-process as well.

The child touches nothing of the parent's: before anything else it closes every fd it
inherited but stdio and its pipe (see ``_close_inherited``); it resets the signal handlers,
does not log (a lock held by another thread at fork time would never be released), and
leaves with ``os._exit``.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import pickle
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from seesaw_healthcheck import schema
from seesaw_healthcheck.gob import GobError
from seesaw_healthcheck.model import Checks, Config, Context
from seesaw_healthcheck.reactor import readable, sleep
from seesaw_healthcheck.rpc.client import RpcError
from seesaw_healthcheck.rpc.framing import ClientCodec
from seesaw_healthcheck.rpc.reactor_call import take_reply, with_timeout

__all__ = ["forked_fetcher"]

# A fresh dict of the running configs, the fetch's to keep and change.
Current = Callable[[], dict[int, Config | None]]

# Errors the child reports by name, rebuilt under the same type in the parent (the
# updater logs the type's name).
_ERRORS: dict[str, type[Exception]] = {
    "ConnectionError": ConnectionError,
    "GobError": GobError,
    "RpcError": RpcError,
    "TimeoutError": TimeoutError,
    "TypeError": TypeError,
}


def forked_fetcher(
    engine_socket: str,
    current: Current,
    in_process: Callable[[], Awaitable[Checks]],
    timeout_s: float,
) -> Callable[[], Awaitable[Checks]]:
    """A fetch function for the ``Updater``: ``current()`` gives the running configs."""
    ctx = Context.trusted()

    async def fetch() -> Checks:
        running = current()
        if not running:
            return await in_process()
        try:
            read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        except OSError:
            return await in_process()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            return await in_process()
        if pid == 0:  # the child: never returns
            _close_inherited(keep=write_fd)
            _child(engine_socket, ctx, running, write_fd, timeout_s)
        os.close(write_fd)
        what = f"rpc: {schema.HEALTHCHECKS} on {engine_socket} (fetch process {pid})"
        try:
            payload = await with_timeout(_read_all(read_fd), timeout_s + 1.0, what)
        except GeneratorExit:  # cancelled (shutdown): no more awaiting; end the child now
            os.close(read_fd)
            _kill(pid)
            raise
        except BaseException:
            os.close(read_fd)
            await _reap(pid)
            raise
        os.close(read_fd)
        await _reap(pid)
        return _merge(running, payload)

    return fetch


def _merge(running: dict[int, Config | None], payload: bytes) -> Checks:
    if not payload:
        raise ConnectionError("the fetch process died without an answer")
    result: tuple[Any, ...] = pickle.loads(payload)
    kind = result[0]
    if kind == "error":
        _, name, text = result
        raise _ERRORS.get(name, RuntimeError)(text)
    if kind == "nil":
        return Checks(configs=None)
    _, changed, removed = result
    for check_id in removed:
        running.pop(check_id, None)
    running.update(changed)
    return Checks(configs=running)  # type: ignore[arg-type]  # None values: nil *Config


async def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    while True:
        await readable(fd)
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            continue
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # at once: SIGKILL cannot be caught or ignored


async def _reap(pid: int) -> None:
    """Wait for the child (it exits right after writing); kill it if it hangs."""
    for attempt in range(21):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        if attempt == 20:  # ~0.1 s: it should have gone; it has hung
            _kill(pid)
            return
        await sleep(0.005)


def _close_inherited(keep: int) -> None:
    """In the child, first of all: close every inherited fd but stdio and ``keep``.

    While this process held the parent's check sockets, a socket the parent closed would
    stay open here, and with it its epoll registration in the parent's (shared) epoll set:
    late events on it would reach the parent's reactor under an fd number a new check has
    taken. The epoll fd and the eventfd go too, untouched (no ``epoll_ctl``)."""
    os.closerange(3, keep)
    os.closerange(keep + 1, max(keep + 1, os.sysconf("SC_OPEN_MAX")))


def _child(
    path: str, ctx: Context, running: Mapping[int, Config | None], out: int, timeout_s: float
) -> None:
    """In the forked child: fetch, compare, write the pickled answer to ``out``, exit."""
    status = 0
    try:
        gc.disable()  # a short life: a collection would only copy the parent's pages
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        try:
            result: tuple[Any, ...] = _changes(_call(path, ctx, timeout_s), running)
        except Exception as error:  # each reported to the parent, which logs it
            result = ("error", type(error).__name__, str(error) or type(error).__name__)
        data = memoryview(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        while data:
            try:
                data = data[os.write(out, data) :]
            except InterruptedError:
                continue
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _call(path: str, ctx: Context, timeout_s: float) -> Checks:
    codec = ClientCodec()
    _, request = codec.request(schema.HEALTHCHECKS, ctx, schema.CONTEXT_ARG, schema.CHECKS)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(path)
        except OSError as exc:
            if isinstance(exc, TimeoutError):
                raise
            raise ConnectionError(f"rpc: cannot connect to {path}: {exc.strerror or exc}") from exc
        try:
            sock.sendall(request)
            done = False
            while not done:
                done, body = take_reply(codec, sock.recv(1 << 18), path)
        except TimeoutError:
            raise TimeoutError(
                f"rpc: {schema.HEALTHCHECKS} on {path}: no reply in {timeout_s:g} s"
            ) from None
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.ECONNRESET):
                raise ConnectionError(f"rpc: server {path} closed the connection") from exc
            raise
    if not isinstance(body, Checks):
        raise TypeError(f"engine replied with {type(body).__name__}, not Checks")
    return body


def _changes(checks: Checks, running: Mapping[int, Config | None]) -> tuple[Any, ...]:
    configs = checks.configs
    if configs is None:
        return ("nil",)
    changed = {
        check_id: config
        for check_id, config in configs.items()
        if check_id not in running or running[check_id] != config
    }
    removed = [check_id for check_id in running if check_id not in configs]
    return ("delta", changed, removed)
