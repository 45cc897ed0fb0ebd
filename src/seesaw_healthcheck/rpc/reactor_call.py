"""The net/rpc client: one call on a fresh Unix-socket connection, as a task on our reactor.

Seesaw's healthcheck server dials the engine for each call and closes the connection
after it, and so does this client: no connection outlives its call, so nothing needs
keeping in step after a timeout or an error (the socket is closed). It runs on the
reactor that runs the checks, not on a thread of its own: a second thread would fight the
checks for the interpreter lock (each socket call releases it, and a busy second thread
then keeps it for up to a switch interval). The bytes go through the sans-IO
``ClientCodec``, so a reply is read as Go's client reads it.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from typing import Any, TypeVar

from seesaw_healthcheck.gob import ReuseMap
from seesaw_healthcheck.gob.types import GobType
from seesaw_healthcheck.reactor import Future, current_reactor, readable, sleep, writable
from seesaw_healthcheck.rpc.framing import ClientCodec, RpcError

__all__ = ["call", "take_reply", "with_timeout"]

T = TypeVar("T")

RECV_SIZE = 1 << 18  # a 10,000-check reply is ~1 MB


async def with_timeout(coro: Any, timeout: float, what: str) -> Any:
    """Run ``coro`` as a task of its own with a deadline ``timeout`` seconds away (a
    task's deadline only ever tightens, so a long-lived task cannot time one call itself).
    Raises ``TimeoutError(f"{what}: no reply in {timeout} s")`` when it passes; the
    inner task's ``finally`` blocks have run by then."""
    reactor = current_reactor()
    outcome: Future[Any] = Future()

    def done(result: Any) -> None:
        if isinstance(result, BaseException):
            outcome.set_exception(result)
        else:
            outcome.set_result(result)

    task = reactor.spawn(coro, reactor.time() + timeout, done)
    try:
        return await outcome
    except TimeoutError:
        raise TimeoutError(f"{what}: no reply in {timeout:g} s") from None
    finally:
        task.cancel()  # if we were cancelled first; a no-op once it finished


async def call(
    path: str,
    method: str,
    args: Any,
    args_type: GobType,
    reply_type: GobType,
    timeout: float = 10.0,
    reuse: ReuseMap | None = None,
) -> Any:
    """``method`` ("Service.Method") on a fresh connection to ``path``, closed afterwards
    (as Seesaw's server does); ``timeout`` bounds dial, write and reply together.
    ``reuse`` carries a reply's map entries to the next call's (``gob.ReuseMap``).

    Raises ``RpcError`` with the server's error string, ``TimeoutError``,
    ``ConnectionError`` naming the path, and ``GobError`` for garbage from the server.
    """
    return await with_timeout(
        _call(path, method, args, args_type, reply_type, reuse),
        timeout,
        f"rpc: {method} on {path}",
    )


async def _call(
    path: str,
    method: str,
    args: Any,
    args_type: GobType,
    reply_type: GobType,
    reuse: ReuseMap | None,
) -> Any:
    codec = ClientCodec(reuse)
    _, data = codec.request(method, args, args_type, reply_type)  # GobError: nothing sent
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    try:
        delay = 0.001
        while True:
            try:
                sock.connect(path)
                break
            except BlockingIOError:
                # EAGAIN: the listen queue is full; a Unix socket does not finish such a
                # connect later on its own, so try again.
                await sleep(delay)
                delay = min(delay * 2, 0.05)
            except OSError as exc:
                raise ConnectionError(
                    f"rpc: cannot connect to {path}: {_connect_failure(path, exc)}"
                ) from exc
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                await writable(sock)
            except OSError as exc:
                raise ConnectionError(f"rpc: writing to {path}: {exc.strerror or exc}") from exc
        while True:
            await readable(sock)
            try:
                chunk = sock.recv(RECV_SIZE)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise ConnectionError(f"rpc: reading from {path}: {exc.strerror or exc}") from exc
            done, body = take_reply(codec, chunk, path)
            if done:
                return body
    finally:
        sock.close()


def _connect_failure(path: str, exc: OSError) -> str:
    """Why connecting to ``path`` failed. A path that is there but is no socket (a regular
    file, a directory) gives "connection refused", which sends an operator looking for a
    dead engine; a stat on this error path only tells the two apart."""
    if exc.errno == errno.ECONNREFUSED:
        try:
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                return "not a socket"
        except OSError:
            pass  # gone meanwhile, or not ours to look at: the connect's own error
    return exc.strerror or str(exc)


def take_reply(codec: ClientCodec, chunk: bytes, path: str) -> tuple[bool, Any]:
    """Feed ``chunk`` (b"": the server hung up) to a one-call ``codec``: (True, body) once
    the reply is complete, (False, None) until then. Raises ``ConnectionError`` for a
    hang-up before the reply, ``RpcError`` for the server's error, ``GobError``."""
    if not chunk:
        how = "mid-reply" if codec.mid_message else "with 1 call(s) pending"
        raise ConnectionError(f"rpc: server {path} closed the connection {how}")
    codec.feed(chunk)
    reply = codec.next_reply()
    if reply is None:
        return False, None
    if reply.error:
        raise RpcError(reply.error)
    return True, reply.body
