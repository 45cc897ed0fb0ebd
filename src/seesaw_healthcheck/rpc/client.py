"""Go net/rpc client over an asyncio Unix stream socket.

A ``Protocol`` feeds received bytes to the sans-IO ``ClientCodec`` and resolves the
pending call of each reply's seq. Several calls may be in flight on one connection.
A reply that does not decode ends the connection as it ends Go's client's reading (see
``framing``): the call whose body failed gets "reading body <err>", the others <err>.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from seesaw_healthcheck.gob import GobError
from seesaw_healthcheck.gob.types import GobType
from seesaw_healthcheck.rpc.framing import ClientCodec, ReplyBodyError, RpcError

__all__ = ["RpcClient", "RpcError", "call"]  # RpcError: until its last importer moves

log = logging.getLogger(__name__)


class _ClientProtocol(asyncio.Protocol):
    def __init__(self, client: RpcClient) -> None:
        self._client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._client._transport = transport

    def data_received(self, data: bytes) -> None:
        self._client._data_received(data)

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._connection_lost(exc)

    def pause_writing(self) -> None:
        self._client._pause_writing()

    def resume_writing(self) -> None:
        self._client._resume_writing()


class RpcClient:
    """One net/rpc connection. Create with ``await RpcClient.connect(path)``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._codec = ClientCodec()
        self._transport: asyncio.Transport | None = None
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._failure: BaseException | None = None  # set once the connection is unusable
        self._closed = asyncio.get_running_loop().create_future()
        self._drained: asyncio.Future[None] | None = None  # set while writes are paused

    @classmethod
    async def connect(cls, path: str, timeout: float | None = 10.0) -> RpcClient:
        """Dial the Unix socket at ``path``.

        ``TimeoutError`` after ``timeout`` seconds; ``ConnectionError`` (naming the path)
        when there is no socket or nobody listens on it. A full listen queue (the server
        is slow to accept) is waited out, within ``timeout``.
        """
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await cls._dial(path)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise TimeoutError(f"rpc: connecting to {path}: no answer in {timeout} s") from None

    @classmethod
    async def _dial(cls, path: str) -> RpcClient:
        client = cls(path)
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            delay = 0.001
            while True:
                try:
                    sock.connect(path)
                    break
                except BlockingIOError:
                    # EAGAIN: the listen queue is full. Unix sockets do not complete such a
                    # connect later on their own (asyncio would take it for done), so retry.
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.05)
            await loop.create_unix_connection(lambda: _ClientProtocol(client), sock=sock)
        except OSError as exc:
            sock.close()
            raise ConnectionError(f"rpc: cannot connect to {path}: {exc.strerror or exc}") from exc
        except BaseException:
            sock.close()
            raise
        return client

    @property
    def closed(self) -> bool:
        return self._failure is not None

    async def call(
        self,
        method: str,
        args: Any,
        args_type: GobType,
        reply_type: GobType,
        timeout: float | None = 10.0,
    ) -> Any:
        """Call ``method`` ("Service.Method") and return the decoded reply.

        Raises ``RpcError`` with the server's error string, ``TimeoutError`` once
        ``timeout`` seconds have passed, ``ConnectionError`` if the connection is or gets
        closed, and ``GobError`` if the server sends garbage (the connection is then
        closed; as with Go's client, a reply body that does not decode fails its call
        with "reading body <err>" and the other pending calls with <err>) or if ``args``
        does not fit ``args_type`` (nothing is sent then, and the connection stays
        usable).
        """
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await self._call(method, args, args_type, reply_type)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise TimeoutError(f"rpc: {method} on {self.path}: no reply in {timeout} s") from None

    async def _call(self, method: str, args: Any, args_type: GobType, reply_type: GobType) -> Any:
        if self._drained is not None:
            await asyncio.shield(self._drained)
        if self._failure is not None:
            raise self._error_for_new_call()
        transport = self._transport
        assert transport is not None
        seq, data = self._codec.request(method, args, args_type, reply_type)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[seq] = future
        transport.write(data)
        try:
            return await future
        finally:
            # On timeout or cancellation the reply may still come: the codec keeps
            # the seq pending so it is read and dropped, not taken for garbage.
            if not future.done():
                future.cancel()
            self._calls.pop(seq, None)

    async def close(self) -> None:
        """Close the connection; pending calls fail with ``ConnectionError``.

        Unsent bytes are dropped (abort): nobody is left to read a reply to them, and a
        peer that stopped reading must not keep us waiting.
        """
        if self._failure is None:
            self._fail(ConnectionError(f"rpc: connection to {self.path} closed by client"))
        if self._transport is not None:
            self._transport.abort()
            await asyncio.shield(self._closed)

    def _error_for_new_call(self) -> BaseException:
        failure = self._failure
        if isinstance(failure, ConnectionError):
            return ConnectionError(str(failure))
        return ConnectionError(f"rpc: connection to {self.path} is broken: {failure}")

    # --- protocol callbacks ---

    def _data_received(self, data: bytes) -> None:
        if self._failure is not None:
            return
        self._codec.feed(data)
        try:
            while (reply := self._codec.next_reply()) is not None:
                future = self._calls.pop(reply.seq, None)
                if future is None or future.done():
                    continue  # the caller gave up (timeout): drop the late reply
                if reply.error:
                    future.set_exception(RpcError(reply.error))
                else:
                    future.set_result(reply.body)
        except GobError as exc:
            log.warning("rpc: garbage from server %s: %s", self.path, exc)
            if isinstance(exc, ReplyBodyError):
                future = self._calls.pop(exc.seq, None)
                if future is not None and not future.done():
                    future.set_exception(exc)  # "reading body <err>"
                exc = GobError(exc.stream_error)  # what the other calls get
            self._fail(exc)
            assert self._transport is not None
            self._transport.abort()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._failure is None:
            pending = self._codec.pending
            how = "mid-reply" if self._codec.mid_message else "with no reply pending"
            if pending:
                how = f"with {pending} call(s) pending" + (
                    ", mid-reply" if self._codec.mid_message else ""
                )
            reason = f": {exc}" if exc else ""
            self._fail(
                ConnectionError(f"rpc: server {self.path} closed the connection {how}{reason}")
            )
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if not self._closed.done():
            self._closed.set_result(None)

    def _pause_writing(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def _resume_writing(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self._failure = exc
        calls, self._calls = self._calls, {}
        for future in calls.values():
            if not future.done():
                future.set_exception(exc)


async def call(
    path: str,
    method: str,
    args: Any,
    args_type: GobType,
    reply_type: GobType,
    timeout: float | None = 10.0,
) -> Any:
    """One call on a fresh connection, closed afterwards (as Seesaw's Go server does).

    ``timeout`` bounds dial, write and reply together.
    """
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            client = await RpcClient._dial(path)
            try:
                return await client._call(method, args, args_type, reply_type)
            finally:
                with contextlib.suppress(Exception):
                    await client.close()
    except TimeoutError:
        if not deadline.expired():
            raise
        raise TimeoutError(f"rpc: {method} on {path}: no reply in {timeout} s") from None
