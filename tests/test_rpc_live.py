"""net/rpc over real Unix sockets: our client and server against Go's, and against
misbehaving peers (silent, garbage, disconnecting)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.gopeer import GoEngine, recipe_checks, recipe_notification

from seesaw_healthcheck import model, schema
from seesaw_healthcheck.gob import GobError, Int, String
from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.rpc import RpcClient, RpcError, RpcServer, call
from seesaw_healthcheck.rpc.framing import ClientCodec, ServerCodec
from seesaw_healthcheck.rpc.server import MAX_IN_FLIGHT

T = TypeVar("T")
N_CONFIGS = 10_000
BATCH = 100
SECOND = 1_000_000_000


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run one test coroutine on a fresh loop, bounded in time."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


# --- notifications with varied states, messages, zones -------------------------------

_OFFSETS: list[int | None] = [None, 0, 3600, -19800, 20700]
_MESSAGES = ["", "ok", "TCP 127.0.0.1:80 - connection refused", "naïve ☃ \u200b", "x" * 300]


def _notification(check_id: int) -> model.Notification:
    return model.Notification(
        id=check_id,
        status=model.Status(
            last_check=GoTime.from_unix_ns(
                1_700_000_000_123_456_789 + check_id * 1_000_003, _OFFSETS[check_id % 5]
            ),
            duration=check_id * 1_234,
            failures=check_id % 7,
            successes=(check_id * 31) % 1_000,
            state=check_id % 3,
            message=_MESSAGES[check_id % 5] + (f" #{check_id}" if check_id % 2 else ""),
        ),
    )


def _batches(ctx: model.Context, n: int) -> list[model.HealthState]:
    return [
        model.HealthState(
            ctx=ctx,
            notifications=[_notification(i) for i in range(start, min(start + BATCH, n + 1))],
        )
        for start in range(1, n + 1, BATCH)
    ]


def _assert_recorded(record: Path, ctx: model.Context, n: int) -> None:
    lines = record.read_text().splitlines()
    assert len(lines) == n
    by_id = {}
    for line in lines:
        entry = json.loads(line)
        assert entry["id"] not in by_id, f"notification {entry['id']} recorded twice"
        by_id[entry["id"]] = entry
    assert sorted(by_id) == list(range(1, n + 1))
    assert len({e["call"] for e in by_id.values()}) == n // BATCH
    for check_id, entry in by_id.items():
        status = _notification(check_id).status
        assert entry["state"] == status.state, check_id
        assert entry["failures"] == status.failures, check_id
        assert entry["successes"] == status.successes, check_id
        assert entry["message"] == status.message, check_id
        assert entry["duration_ns"] == status.duration, check_id
        assert entry["last_check_unix_ns"] == status.last_check.unix_ns, check_id
        assert entry["last_check_utc"] == (status.last_check.offset is None), check_id
        assert entry["last_check_offset"] == (status.last_check.offset or 0), check_id
        assert entry["ctx_identity"] == ctx.peer.identity
        assert entry["ctx_auth_type"] == model.AuthType.TRUSTED


# --- (1) our client against Go's net/rpc engine -----------------------------------------


def test_python_client_against_go_engine(gopeer: Path, short_tmp: Path) -> None:
    path = str(short_tmp / "engine.sock")
    record = short_tmp / "record.jsonl"
    port = 4242
    with GoEngine(path, configs=N_CONFIGS, port=port, record=record) as engine:
        ctx = model.Context.trusted()

        async def scenario() -> None:
            checks = await call(
                path, schema.HEALTHCHECKS, ctx, schema.CONTEXT_ARG, schema.CHECKS, timeout=30
            )
            assert isinstance(checks, model.Checks) and checks.configs is not None
            assert sorted(checks.configs) == list(range(1, N_CONFIGS + 1))
            for config_id, config in checks.configs.items():
                assert config.id == config_id
                assert (config.interval, config.timeout) == (SECOND, SECOND // 2)
                checker = config.checker
                assert isinstance(checker, model.TCPChecker), config
                assert checker.target.address == ipaddress.IPv4Address("127.0.0.1")
                assert (checker.target.port, checker.target.proto) == (port, model.Proto.TCP)

            batches = _batches(ctx, N_CONFIGS)
            # Half on one connection, ten calls in flight at a time (seq matching)...
            client = await RpcClient.connect(path, timeout=5)
            try:
                half = len(batches) // 2
                for start in range(0, half, 10):
                    replies = await asyncio.gather(
                        *(
                            client.call(
                                schema.HEALTH_STATE_METHOD,
                                batch,
                                schema.HEALTH_STATE_ARG,
                                schema.INT_REPLY,
                                timeout=10,
                            )
                            for batch in batches[start : min(start + 10, half)]
                        )
                    )
                    assert replies == [0] * len(replies)
                # ...an engine error leaves the connection usable, as with Go's server...
                for bad_ctx in (None, model.Context(auth_type=model.AuthType.UNTRUSTED)):
                    with pytest.raises(RpcError) as refused:
                        await client.call(
                            schema.HEALTH_STATE_METHOD,
                            model.HealthState(ctx=bad_ctx, notifications=[_notification(1)]),
                            schema.HEALTH_STATE_ARG,
                            schema.INT_REPLY,
                        )
                    assert str(refused.value) in ENGINE_REFUSALS
                untrusted = model.Context.trusted()
                untrusted.auth_type = model.AuthType.UNTRUSTED
                with pytest.raises(RpcError) as refused:
                    await client.call(
                        schema.HEALTHCHECKS, untrusted, schema.CONTEXT_ARG, schema.CHECKS
                    )
                assert str(refused.value) in ENGINE_REFUSALS
                # ...and the other half one fresh connection per call, as Seesaw does.
                for batch in batches[half:]:
                    reply = await call(
                        path,
                        schema.HEALTH_STATE_METHOD,
                        batch,
                        schema.HEALTH_STATE_ARG,
                        schema.INT_REPLY,
                    )
                    assert reply == 0
            finally:
                await client.close()

        run(scenario())
    assert engine.summary["notifications"] == N_CONFIGS, engine.summary
    assert engine.summary["refused"] == 3, engine.summary
    _assert_recorded(record, ctx, N_CONFIGS)


ENGINE_REFUSALS = {"context is nil", "insufficient access"}


# --- (2) Go's net/rpc client against our server -----------------------------------------


def test_go_client_against_python_server(gopeer: Path, short_tmp: Path) -> None:
    path = str(short_tmp / "py-engine.sock")
    received: list[model.Notification] = []
    contexts: list[model.Context | None] = []
    checks = recipe_checks(N_CONFIGS)

    async def healthchecks(ctx: model.Context | None) -> model.Checks:
        contexts.append(ctx)
        if ctx is None or ctx.auth_type != model.AuthType.TRUSTED:
            raise RpcError("insufficient access")
        return checks

    async def health_state(state: model.HealthState) -> int:
        if state.ctx is None or state.ctx.auth_type != model.AuthType.TRUSTED:
            raise RpcError("insufficient access")
        received.extend(state.notifications)
        return 0

    async def scenario() -> str:
        server = RpcServer()
        server.register(schema.HEALTHCHECKS, schema.CONTEXT_ARG, schema.CHECKS, healthchecks)
        server.register(
            schema.HEALTH_STATE_METHOD, schema.HEALTH_STATE_ARG, schema.INT_REPLY, health_state
        )
        await server.start_unix(path)
        try:
            proc = await asyncio.create_subprocess_exec(
                str(gopeer),
                "client",
                "-socket",
                path,
                "-n",
                str(N_CONFIGS),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise
            assert proc.returncode == 0, f"gopeer client failed:\n{out.decode()}{err.decode()}"
            return out.decode()
        finally:
            await server.close()

    out = run(scenario(), timeout=90)
    assert out.strip(), "gopeer client printed no summary"
    assert len(contexts) >= 1
    ctx = contexts[0]
    assert ctx is not None and ctx.auth_type == model.AuthType.TRUSTED
    assert ctx.peer.component == model.Component.HEALTHCHECK
    assert sorted(n.id for n in received) == list(range(1, N_CONFIGS + 1))
    for notification in received:
        assert notification == recipe_notification(notification.id)
    assert not os.path.exists(path)  # close() removes the socket file


# --- helpers for misbehaving peers ------------------------------------------------------

ECHO = "Test.Echo"
SLOW = "Test.Slow"
FAIL = "Test.Fail"
BOOM = "Test.Boom"
WRONG = "Test.Wrong"
STR = String()
INT = Int(64)


@contextlib.asynccontextmanager
async def python_server(path: str) -> AsyncIterator[RpcServer]:
    async def echo(text: str) -> str:
        return text

    async def slow(seconds: int) -> int:
        await asyncio.sleep(seconds / 1000)
        return seconds

    async def fail(text: str) -> str:
        raise RpcError(text)

    async def boom(text: str) -> str:
        raise ValueError(f"bad {text}")

    async def wrong(text: str) -> Any:
        return {"not": "an int"}

    server = RpcServer()
    server.register(ECHO, STR, STR, echo)
    server.register(SLOW, INT, INT, slow)
    server.register(FAIL, STR, STR, fail)
    server.register(BOOM, STR, STR, boom)
    server.register(WRONG, STR, INT, wrong)
    await server.start_unix(path)
    try:
        yield server
    finally:
        await server.close()


Behaviour = Callable[[socket.socket], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(path: str, behave: Behaviour) -> AsyncIterator[None]:
    """A Unix socket server running ``behave(conn)`` on each accepted connection."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    listener.setblocking(False)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def serve_one(conn: socket.socket) -> None:
        with conn:
            await behave(conn)

    async def accept_loop() -> None:
        while True:
            conn, _ = await loop.sock_accept(listener)
            conn.setblocking(False)
            task = asyncio.ensure_future(serve_one(conn))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    acceptor = asyncio.ensure_future(accept_loop())
    try:
        yield
    finally:
        acceptor.cancel()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(acceptor, *tasks, return_exceptions=True)
        listener.close()


async def _read_some(conn: socket.socket) -> bytes:
    return await asyncio.get_running_loop().sock_recv(conn, 65536)


# --- (3) deadlines ----------------------------------------------------------------------


def test_call_times_out_on_a_silent_server(short_tmp: Path) -> None:
    path = str(short_tmp / "silent.sock")

    async def silent(conn: socket.socket) -> None:
        while await _read_some(conn):
            pass  # read everything, answer nothing

    async def scenario() -> float:
        async with raw_server(path, silent):
            started = time.monotonic()
            with pytest.raises(TimeoutError, match=r"^rpc: Test\.Echo on .*silent\.sock: no reply"):
                await call(path, ECHO, "hello", STR, STR, timeout=0.3)
            return time.monotonic() - started

    elapsed = run(scenario(), timeout=10)
    assert 0.3 <= elapsed < 0.3 + 0.5


def test_dial_waits_out_a_full_listen_queue(short_tmp: Path) -> None:
    """A server slow to accept: Unix connect says EAGAIN; the dial retries in its time."""
    path = str(short_tmp / "busy.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(0)
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    filler.connect(path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
        pytest.skip("this kernel queued a second connection on a backlog of 0")
    except BlockingIOError:
        pass
    finally:
        probe.close()

    async def scenario() -> str:
        loop = asyncio.get_running_loop()
        listener.setblocking(False)
        pending = asyncio.ensure_future(call(path, ECHO, "queued", STR, STR, timeout=5))
        await asyncio.sleep(0.2)
        assert not pending.done()
        (await loop.sock_accept(listener))[0].close()  # the filler: the queue frees
        filler.close()
        conn, _ = await loop.sock_accept(listener)
        with conn:
            conn.setblocking(False)
            codec = ServerCodec()
            while (incoming := codec.next_call(lambda _: STR)) is None:
                data = await loop.sock_recv(conn, 65536)
                assert data, "client closed before its request was complete"
                codec.feed(data)
            await loop.sock_sendall(conn, codec.response(incoming.request, incoming.args, STR))
            return await pending

    try:
        assert run(scenario(), timeout=10) == "queued"
    finally:
        filler.close()
        listener.close()


def test_timed_out_call_leaves_connection_usable(short_tmp: Path) -> None:
    """The late reply of a timed-out call is read and dropped, not taken for garbage."""
    path = str(short_tmp / "slow.sock")

    async def scenario() -> None:
        async with python_server(path):
            client = await RpcClient.connect(path)
            try:
                with pytest.raises(TimeoutError):
                    await client.call(SLOW, 300, INT, INT, timeout=0.05)
                assert await client.call(ECHO, "after", STR, STR, timeout=2) == "after"
                await asyncio.sleep(0.4)  # the slow reply arrives now
                assert await client.call(ECHO, "later", STR, STR, timeout=2) == "later"
                assert not client.closed
            finally:
                await client.close()

    run(scenario(), timeout=10)


def test_concurrent_calls_on_one_connection_match_by_seq(short_tmp: Path) -> None:
    path = str(short_tmp / "conc.sock")

    async def scenario() -> None:
        async with python_server(path):
            client = await RpcClient.connect(path)
            try:
                # Later calls sleep less, so replies come back out of order.
                delays = [(200 - i * 2) for i in range(100)]
                got = await asyncio.gather(
                    *(client.call(SLOW, d, INT, INT, timeout=5) for d in delays)
                )
                assert got == delays
            finally:
                await client.close()

    run(scenario(), timeout=10)


# --- server errors, Go's wording -------------------------------------------------------


def test_server_errors_keep_the_connection(short_tmp: Path) -> None:
    path = str(short_tmp / "err.sock")

    async def scenario() -> None:
        async with python_server(path):
            client = await RpcClient.connect(path)
            try:
                cases = [
                    ("Test.Nope", "rpc: can't find method Test.Nope"),
                    ("Nope.Echo", "rpc: can't find service Nope.Echo"),
                    ("TestEcho", "rpc: service/method request ill-formed: TestEcho"),
                    (FAIL, "exactly this: message"),
                    (BOOM, "ValueError: bad exactly this: message"),
                ]
                for method, want in cases:
                    with pytest.raises(RpcError) as err:
                        await client.call(method, "exactly this: message", STR, STR)
                    assert str(err.value) == want
                    assert await client.call(ECHO, method, STR, STR) == method
                # A handler returning what its reply type cannot carry: an error reply.
                with pytest.raises(RpcError, match=r"^rpc: cannot encode reply: "):
                    await client.call(WRONG, "x", STR, INT)
                # Args that do not fit their type: nothing is sent, the client stays up.
                with pytest.raises(GobError):
                    await client.call(ECHO, 42, STR, STR)
                assert await client.call(ECHO, "still here", STR, STR) == "still here"
                assert not client.closed
            finally:
                await client.close()

    run(scenario(), timeout=10)


# --- (4) garbage and disconnects --------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4, GobError),  # "H": 72 bytes of junk
        (b"\xff" * 300, GobError),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", ConnectionError),  # too short for "H"
        (b"\x7f\xff\x81\x03", ConnectionError),  # a message that never completes
        (b"", ConnectionError),  # closes without a word
    ],
)
def test_client_against_garbage_server(
    short_tmp: Path, reply: bytes, expected: type[Exception]
) -> None:
    path = str(short_tmp / "garbage.sock")

    async def garbage(conn: socket.socket) -> None:
        await _read_some(conn)
        if reply:
            await asyncio.get_running_loop().sock_sendall(conn, reply)
        # returning closes the connection

    async def scenario() -> None:
        async with raw_server(path, garbage):
            with pytest.raises(expected) as err:
                await call(path, ECHO, "hello", STR, STR, timeout=5)
            assert str(err.value)
            # A persistent client fails every pending call and refuses new ones.
            client = await RpcClient.connect(path)
            try:
                with pytest.raises(expected):
                    await client.call(ECHO, "hello", STR, STR, timeout=5)
                assert client.closed
                with pytest.raises(ConnectionError):
                    await client.call(ECHO, "again", STR, STR, timeout=5)
            finally:
                await client.close()

    run(scenario(), timeout=20)


def test_connect_to_missing_socket_is_a_connection_error(short_tmp: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(ConnectionError, match=r"absent\.sock"):
            await call(str(short_tmp / "absent.sock"), ECHO, "x", STR, STR, timeout=2)
        # A socket file nobody listens on any more.
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(short_tmp / "stale.sock"))
        stale.close()
        with pytest.raises(ConnectionError, match=r"stale\.sock"):
            await RpcClient.connect(str(short_tmp / "stale.sock"), timeout=2)

    run(scenario(), timeout=5)


async def _raw_send(path: str, data: bytes, *, half_close: bool = False) -> bytes:
    """Send ``data`` on a fresh connection; return what the server sent before closing."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    with sock:
        await loop.sock_connect(sock, path)
        await loop.sock_sendall(sock, data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        async with asyncio.timeout(5):
            while chunk := await loop.sock_recv(sock, 65536):
                received += chunk
        return received


def test_server_survives_garbage_and_disconnects(
    short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(short_tmp / "robust.sock")
    # A real request cut in half: header complete, args not.
    _, whole = ClientCodec().request(ECHO, "x" * 1000, STR, STR)

    async def scenario() -> None:
        async with python_server(path):
            steady = await RpcClient.connect(path)
            try:
                assert await steady.call(ECHO, "before", STR, STR) == "before"
                # Garbage: the server closes that connection (we read EOF, no hang).
                assert await _raw_send(path, b"\x00\x01garbage" * 100) == b""
                assert await _raw_send(path, b"\x0b\xff\x81" + b"\xff" * 200) == b""
                # Disconnecting mid-message, and after half a request. As Go's server, a
                # request whose header came gets an answer (tests/test_rpc_errors_go.py).
                cut = ClientCodec()
                cut.request(ECHO, "", STR, STR)
                cut.feed(await _raw_send(path, whole[: len(whole) // 2], half_close=True))
                reply = cut.next_reply()
                assert reply is not None and (reply.seq, reply.error) == (0, "unexpected EOF")
                assert await _raw_send(path, whole[:3], half_close=True) == b""
                # The steady connection and new ones still work.
                assert await steady.call(ECHO, "after", STR, STR) == "after"
                assert await call(path, ECHO, "fresh", STR, STR, timeout=2) == "fresh"
            finally:
                await steady.close()

    caplog.set_level(logging.INFO, logger="seesaw_healthcheck.rpc")
    run(scenario(), timeout=20)
    bad = [r for r in caplog.records if "bad request" in r.getMessage()]
    assert len(bad) == 2 and all(r.levelno == logging.WARNING for r in bad)
    assert f"pid {os.getpid()}" in bad[0].getMessage()
    assert "stopped sending mid-request" in caplog.text


def test_server_answers_a_client_that_stopped_sending(short_tmp: Path) -> None:
    """Requests then EOF (shutdown SHUT_WR): Go's server still replies; so do we."""
    path = str(short_tmp / "eof.sock")
    codec = ClientCodec()
    requests = codec.request(SLOW, 100, INT, INT)[1] + codec.request(ECHO, "bye", STR, STR)[1]

    async def scenario() -> None:
        async with python_server(path):
            codec.feed(await _raw_send(path, requests, half_close=True))
            replies = [codec.next_reply(), codec.next_reply()]
            # Echo answers first: replies go out as handlers finish, matched by seq.
            assert [(r.seq, r.body) for r in replies if r] == [(1, "bye"), (0, 100)]

    run(scenario(), timeout=10)


def test_server_close_fails_pending_calls(short_tmp: Path) -> None:
    path = str(short_tmp / "closing.sock")

    async def scenario() -> None:
        server_cm = python_server(path)
        await server_cm.__aenter__()
        client = await RpcClient.connect(path)
        try:
            pending = asyncio.ensure_future(client.call(SLOW, 5_000, INT, INT, timeout=10))
            await asyncio.sleep(0.05)
            await server_cm.__aexit__(None, None, None)
            with pytest.raises(ConnectionError):
                await pending
        finally:
            await client.close()

    run(scenario(), timeout=10)


def test_server_bounds_the_requests_it_runs_per_connection(short_tmp: Path) -> None:
    """1,000 requests in one write: at most MAX_IN_FLIGHT handlers at once, all answered."""
    path = str(short_tmp / "flood.sock")
    n = 1_000
    running = 0
    peak = 0
    release = asyncio.Event()

    async def hold(value: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await release.wait()
            return value
        finally:
            running -= 1

    async def scenario() -> None:
        server = RpcServer()
        server.register("Flood.Hold", INT, INT, hold)
        await server.start_unix(path)
        codec = ClientCodec()
        flood = b"".join(codec.request("Flood.Hold", i, INT, INT)[1] for i in range(n))
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, path)
            await loop.sock_sendall(sock, flood)
            await asyncio.sleep(0.2)
            assert peak == MAX_IN_FLIGHT
            release.set()
            replies = []
            while len(replies) < n:
                data = await loop.sock_recv(sock, 65536)
                assert data, f"server closed after {len(replies)} replies"
                codec.feed(data)
                while (reply := codec.next_reply()) is not None:
                    replies.append(reply)
            assert sorted(r.body for r in replies) == list(range(n))
            assert all(r.seq == r.body and not r.error for r in replies)
        finally:
            sock.close()
            await server.close()

    run(scenario(), timeout=20)


def test_server_replaces_a_stale_socket_but_not_a_live_one(short_tmp: Path) -> None:
    path = str(short_tmp / "engine.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)  # a socket file left behind by a dead process
    stale.close()

    async def scenario() -> None:
        async with python_server(path) as first:
            with pytest.raises(OSError, match="already listening") as err:
                await RpcServer().start_unix(path)
            assert err.value.errno == errno.EADDRINUSE
            assert first.path == path
            assert await call(path, ECHO, "first", STR, STR, timeout=2) == "first"
        assert not os.path.exists(path)  # closing removes its own socket file
        async with python_server(path):
            assert await call(path, ECHO, "second", STR, STR, timeout=2) == "second"

    run(scenario(), timeout=10)
