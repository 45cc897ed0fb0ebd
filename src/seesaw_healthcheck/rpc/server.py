"""Go net/rpc server over an asyncio Unix stream socket.

Each connection gets a ``ServerCodec``; each complete request runs its handler as a task
and the reply is written when it finishes (replies may go out of order, matched by seq,
as with Go's server). Bad requests are handled as Go's ``ServeCodec`` does: a request
naming no method, or whose args do not decode, is answered at once with an error and the
connection carries on; a request header that does not decode (garbage) or the client's
EOF ends the reading: the calls already running still get their replies, then the
connection closes. Other connections carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from seesaw_healthcheck.gob import GobError
from seesaw_healthcheck.gob.types import GobType
from seesaw_healthcheck.rpc.framing import IncomingCall, Request, RpcError, ServerCodec

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[Any]]

# Requests of one connection running at once; further ones wait, and past them we stop
# reading from it, so a client that floods requests cannot grow our memory without bound.
MAX_IN_FLIGHT = 64
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True, slots=True)
class _Method:
    args_type: GobType
    reply_type: GobType
    handler: Handler


def _split(service_method: str) -> tuple[str, str] | None:
    service, dot, method = service_method.rpartition(".")
    if not dot:
        return None
    return service, method


def _remove_stale_socket(path: str) -> None:
    try:
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            return  # not ours to remove: bind reports it
    except FileNotFoundError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)  # a live server with a full queue says EAGAIN, not wait
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except BlockingIOError:
        pass
    finally:
        probe.close()
    raise OSError(errno.EADDRINUSE, f"rpc: a server is already listening on {path}")


class RpcServer:
    """Serves registered "Service.Method" handlers to net/rpc clients."""

    def __init__(self) -> None:
        self._methods: dict[str, _Method] = {}
        self._services: set[str] = set()
        self._server: asyncio.Server | None = None
        self._path: str | None = None
        self._inode = 0
        self._connections: set[_ServerConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def register(
        self, method: str, args_type: GobType, reply_type: GobType, handler: Handler
    ) -> None:
        """Serve ``method`` ("Service.Method"): ``await handler(args)`` gives the reply.

        A handler raising ``RpcError(msg)`` makes the reply's error exactly ``msg``; any
        other exception gives "ExceptionType: message" and is logged.
        """
        parts = _split(method)
        if parts is None or not all(parts):
            raise ValueError(f"rpc: method name {method!r} is not of the form Service.Method")
        if method in self._methods:
            raise ValueError(f"rpc: method {method} already registered")
        self._methods[method] = _Method(args_type, reply_type, handler)
        self._services.add(parts[0])

    def method_error(self, service_method: str) -> str:
        """Go's error for a request naming no registered method (same wording)."""
        parts = _split(service_method)
        if parts is None:
            return f"rpc: service/method request ill-formed: {service_method}"
        if parts[0] not in self._services:
            return f"rpc: can't find service {service_method}"
        return f"rpc: can't find method {service_method}"

    def args_type_for(self, service_method: str) -> GobType | None:
        method = self._methods.get(service_method)
        return None if method is None else method.args_type

    async def start_unix(self, path: str) -> None:
        """Listen on a Unix socket at ``path``.

        A stale socket file there (nobody listening) is replaced; a live one is not:
        ``OSError`` (EADDRINUSE), as Go's ``net.Listen`` says.
        """
        if self._server is not None:
            raise RuntimeError("rpc: server already started")
        _remove_stale_socket(path)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _ServerConnection(self), path)
        self._path = path
        self._inode = os.lstat(path).st_ino

    @property
    def path(self) -> str | None:
        return self._path

    async def close(self) -> None:
        """Stop listening, drop every connection and cancel running handlers."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for conn in list(self._connections):
            conn.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        path, self._path = self._path, None
        if path is not None:
            # Only our own socket file: a successor may already have bound the path.
            with contextlib.suppress(FileNotFoundError):
                if os.lstat(path).st_ino == self._inode:
                    os.unlink(path)

    async def __aenter__(self) -> RpcServer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, conn: _ServerConnection, incoming: IncomingCall) -> None:
        request = incoming.request
        method = self._methods[request.service_method]
        try:
            reply = await method.handler(incoming.args)
        except RpcError as exc:
            conn.reply_error(request, str(exc) or "rpc: handler failed with an empty error")
        except Exception as exc:
            log.exception("rpc: %s handler failed", request.service_method)
            conn.reply_error(request, f"{type(exc).__name__}: {exc}")
        else:
            conn.reply(request, reply, method.reply_type)
        finally:
            conn.call_done()


class _ServerConnection(asyncio.Protocol):
    def __init__(self, server: RpcServer) -> None:
        self._server = server
        self._codec = ServerCodec()
        self._transport: asyncio.Transport | None = None
        self._peer = "unknown peer"
        self._broken = False  # gone: nothing more is written
        self._in_flight = 0
        self._write_paused = False
        self._read_paused = False
        self._eof = False  # the client sent its last byte
        self._done_reading = False  # no more requests: close once the running ones reply

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError, AttributeError):
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            pid, uid, _ = _PEERCRED.unpack(creds)
            self._peer = f"pid {pid} uid {uid}"
        self._server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._server._connections.discard(self)
        self._broken = True
        if self._codec.mid_message and not self._eof and not self._done_reading:
            log.info("rpc: client %s disconnected mid-request", self._peer)

    def eof_received(self) -> bool:
        # The client is done sending. Like Go's server, still answer what it asked
        # (a request cut short included): keep the connection open for writing until
        # the running requests reply; _finish closes it.
        self._eof = True
        if self._codec.mid_message:
            log.info("rpc: client %s stopped sending mid-request", self._peer)
        self._process()
        return True

    def abort(self) -> None:
        self._broken = True
        if self._transport is not None:
            self._transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._broken or self._done_reading:
            return
        self._codec.feed(data)
        self._process()

    def _process(self) -> None:
        """Start the complete requests buffered, up to ``MAX_IN_FLIGHT`` running."""
        try:
            while self._in_flight < MAX_IN_FLIGHT and not self._broken and not self._done_reading:
                incoming = self._codec.next_call(self._server.args_type_for)
                if incoming is None:
                    if self._eof:
                        self._done_reading = True
                        incoming = self._codec.eof()
                    if incoming is None:
                        break
                self._dispatch(incoming)
        except GobError as exc:
            # Go's server reads no more after a header it cannot decode.
            log.warning("rpc: closing connection from %s: bad request: %s", self._peer, exc)
            self._done_reading = True
        if self._done_reading:
            self._finish()
        else:
            self._update_reading()

    def _dispatch(self, incoming: IncomingCall) -> None:
        request = incoming.request
        if not incoming.known:
            # Go answers at once, in order, and keeps the connection.
            self.reply_error(request, self._server.method_error(request.service_method))
        elif incoming.error:
            self.reply_error(request, incoming.error)  # args that did not decode: the same
        else:
            self._in_flight += 1
            self._server._spawn(self._server._run(self, incoming))

    def _finish(self) -> None:
        """No more requests: stop reading, close once the running ones have replied."""
        transport = self._transport
        if transport is None or self._broken or transport.is_closing():
            return
        if not self._eof and not self._read_paused:
            transport.pause_reading()
            self._read_paused = True
        if self._in_flight == 0:
            transport.close()  # after the buffered replies are written

    def reply(self, request: Request, reply: Any, reply_type: GobType) -> None:
        if self._broken:
            return
        try:
            data = self._codec.response(request, reply, reply_type)
        except GobError as exc:
            # The handler returned something the reply type cannot carry: a bug on our
            # side, but the caller still gets an answer (Go would drop the connection).
            log.error("rpc: cannot encode %s reply: %s", request.service_method, exc)
            data = self._codec.response(request, None, None, f"rpc: cannot encode reply: {exc}")
        self._write(data)

    def reply_error(self, request: Request, error: str) -> None:
        if self._broken:
            return
        self._write(self._codec.response(request, None, None, error))

    def _write(self, data: bytes) -> None:
        assert self._transport is not None
        if not self._transport.is_closing():
            self._transport.write(data)

    def call_done(self) -> None:
        self._in_flight -= 1
        if self._broken:
            return
        if self._done_reading:
            self._finish()
        else:
            self._process()  # requests that waited for a free slot

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._update_reading()

    def _update_reading(self) -> None:
        # Stop reading while the client is not reading its replies, or its requests fill
        # every slot.
        transport = self._transport
        if transport is None or self._broken or self._eof or transport.is_closing():
            return  # (after EOF asyncio reads no more anyway; resuming would re-arm it)
        if self._done_reading:
            return  # _finish paused reading for good
        want_pause = self._write_paused or self._in_flight >= MAX_IN_FLIGHT
        if want_pause and not self._read_paused:
            transport.pause_reading()
            self._read_paused = True
        elif not want_pause and self._read_paused:
            transport.resume_reading()
            self._read_paused = False
