"""net/rpc over real Unix sockets: our client (``rpc.reactor_call``, a task on our reactor)
and our asyncio server, against Go's net/rpc and against misbehaving peers (silent,
garbage, disconnecting, not there at all).

Where both of ours take part, the server runs on an asyncio loop in a thread of its own
(``tests.loop_thread``) and the client on a reactor in the test's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from tests.gopeer import GoEngine, recipe_checks, recipe_notification
from tests.loop_thread import LoopThread
from tests.responders.unix import read_request_then, unix_server

from seesaw_healthcheck import model, schema
from seesaw_healthcheck.gob import GobError, Int, String
from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.gob.types import GobType
from seesaw_healthcheck.reactor import Future, Reactor, current_reactor, readable, sleep
from seesaw_healthcheck.rpc import Reply, RpcError, RpcServer
from seesaw_healthcheck.rpc.framing import ClientCodec, ServerCodec
from seesaw_healthcheck.rpc.reactor_call import call
from seesaw_healthcheck.rpc.server import MAX_IN_FLIGHT

T = TypeVar("T")
N_CONFIGS = 10_000
BATCH = 100
SECOND = 1_000_000_000


def run(coro: Awaitable[T], timeout: float = 60.0) -> T:
    """Run one asyncio test coroutine on a fresh loop, bounded in time."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def on_reactor(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run one coroutine on a fresh reactor (the client's loop), bounded in time."""
    with Reactor() as reactor:
        return reactor.run(coro, timeout=timeout)


def _settle(future: Future[Any], outcome: Any) -> None:
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def start(coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Run ``coro`` as a task of its own on the current reactor; its outcome, to await."""
    future: Future[T] = Future()
    current_reactor().spawn(coro, on_done=functools.partial(_settle, future))
    return future


async def gather(*coros: Coroutine[Any, Any, T]) -> list[T]:
    """Run the coroutines as overlapping tasks; their results in order."""
    futures = [start(coro) for coro in coros]
    return [await future for future in futures]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


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


def test_our_client_against_go_engine(gopeer: Path, short_tmp: Path) -> None:
    path = str(short_tmp / "engine.sock")
    record = short_tmp / "record.jsonl"
    port = 4242
    with GoEngine(path, configs=N_CONFIGS, port=port, record=record) as engine:
        ctx = model.Context.trusted()

        async def notify(batch: model.HealthState) -> Any:
            return await call(
                path, schema.HEALTH_STATE_METHOD, batch, schema.HEALTH_STATE_ARG, schema.INT_REPLY
            )

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
            half = len(batches) // 2
            # Half ten calls at a time (overlapping tasks, a connection each)...
            for first in range(0, half, 10):
                replies = await gather(*(notify(b) for b in batches[first : min(first + 10, half)]))
                assert replies == [0] * len(replies)
            # ...the engine's refusals come back as RpcError with its words...
            for bad_ctx in (None, model.Context(auth_type=model.AuthType.UNTRUSTED)):
                with pytest.raises(RpcError) as refused:
                    await notify(model.HealthState(ctx=bad_ctx, notifications=[_notification(1)]))
                assert str(refused.value) in ENGINE_REFUSALS
            untrusted = model.Context.trusted()
            untrusted.auth_type = model.AuthType.UNTRUSTED
            with pytest.raises(RpcError) as refused:
                await call(path, schema.HEALTHCHECKS, untrusted, schema.CONTEXT_ARG, schema.CHECKS)
            assert str(refused.value) in ENGINE_REFUSALS
            # ...and the other half one call after the other, as the notifier sends them.
            for batch in batches[half:]:
                assert await notify(batch) == 0

        before = open_fds()
        on_reactor(scenario())
        assert open_fds() == before  # every connection closed
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


@contextlib.contextmanager
def python_server(
    path: str, slow_returned: threading.Semaphore | None = None
) -> Iterator[RpcServer]:
    """Our ``RpcServer`` with the Test.* methods, on a loop thread of its own.
    ``slow_returned`` is released each time a Test.Slow handler returns."""

    async def echo(text: str) -> str:
        return text

    async def slow(milliseconds: int) -> int:
        await asyncio.sleep(milliseconds / 1000)
        if slow_returned is not None:
            slow_returned.release()
        return milliseconds

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
    with LoopThread() as loop:
        loop.run(server.start_unix(path))
        try:
            yield server
        finally:
            loop.run(server.close())


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    return sock


def _exchange(
    sock: socket.socket,
    codec: ClientCodec,
    method: str,
    args: Any,
    args_type: GobType,
    reply_type: GobType,
) -> Reply:
    """One call on a connection kept across calls, driving the codec by hand: our client
    makes one call per connection, but the server must keep a connection as Go's does."""
    sock.sendall(codec.request(method, args, args_type, reply_type)[1])
    while (reply := codec.next_reply()) is None:
        data = sock.recv(65536)
        assert data, "the server closed the connection"
        codec.feed(data)
    return reply


def _raw_send(path: str, data: bytes, *, half_close: bool = False) -> bytes:
    """Send ``data`` on a fresh connection; return what the server sent before closing."""
    with _connect(path) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


# --- (3) deadlines ----------------------------------------------------------------------


def test_call_times_out_on_a_silent_server(short_tmp: Path) -> None:
    path = str(short_tmp / "silent.sock")
    before = open_fds()
    with unix_server(path, read_request_then(None, hold_s=1.0)):
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"^rpc: Test\.Echo on .*silent\.sock: no reply"):
            on_reactor(call(path, ECHO, "hello", STR, STR, timeout=0.3), timeout=10)
        elapsed = time.monotonic() - started
    assert open_fds() == before  # the server side is gone too: nothing of ours is left
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
        pending = start(call(path, ECHO, "queued", STR, STR, timeout=5))
        await sleep(0.2)
        assert not pending.done()  # still dialling
        listener.accept()[0].close()  # the filler: the queue frees
        filler.close()
        listener.setblocking(False)
        await readable(listener)
        conn, _ = listener.accept()
        with conn:
            conn.setblocking(False)
            codec = ServerCodec()
            while (incoming := codec.next_call(lambda _: STR)) is None:
                await readable(conn)
                data = conn.recv(65536)
                assert data, "client closed before its request was complete"
                codec.feed(data)
            conn.sendall(codec.response(incoming.request, incoming.args, STR))
            return await pending

    try:
        assert on_reactor(scenario(), timeout=10) == "queued"
    finally:
        filler.close()
        listener.close()


def test_server_carries_on_after_a_client_gave_up(short_tmp: Path) -> None:
    """A call that times out closes its connection while the handler runs: the handler's
    late reply goes nowhere, and the server serves the next calls."""
    path = str(short_tmp / "slow.sock")
    returned = threading.Semaphore(0)
    with python_server(path, slow_returned=returned):
        with pytest.raises(TimeoutError, match=r"^rpc: Test\.Slow on .*: no reply in 0\.05 s$"):
            on_reactor(call(path, SLOW, 300, INT, INT, timeout=0.05), timeout=10)
        assert on_reactor(call(path, ECHO, "after", STR, STR, timeout=2), timeout=10) == "after"
        assert returned.acquire(timeout=5)  # its reply was written to a closed connection
        assert on_reactor(call(path, ECHO, "later", STR, STR, timeout=2), timeout=10) == "later"


def test_overlapping_calls_each_get_their_own_reply(short_tmp: Path) -> None:
    path = str(short_tmp / "conc.sock")
    # 100 calls at once, a connection each; later calls sleep less, so they end first.
    delays = [(200 - i * 2) for i in range(100)]
    with python_server(path):
        got = on_reactor(gather(*(call(path, SLOW, d, INT, INT, timeout=5) for d in delays)), 10)
    assert got == delays


# --- server errors, Go's wording -------------------------------------------------------

SERVER_ERRORS = [
    ("Test.Nope", "rpc: can't find method Test.Nope"),
    ("Nope.Echo", "rpc: can't find service Nope.Echo"),
    ("TestEcho", "rpc: service/method request ill-formed: TestEcho"),
    (FAIL, "exactly this: message"),
    (BOOM, "ValueError: bad exactly this: message"),
]


def test_server_errors_reach_the_client_word_for_word(short_tmp: Path) -> None:
    path = str(short_tmp / "err.sock")

    async def scenario() -> None:
        for method, want in SERVER_ERRORS:
            with pytest.raises(RpcError) as err:
                await call(path, method, "exactly this: message", STR, STR)
            assert str(err.value) == want
        # A handler returning what its reply type cannot carry: an error reply.
        with pytest.raises(RpcError, match=r"^rpc: cannot encode reply: "):
            await call(path, WRONG, "x", STR, INT)
        assert await call(path, ECHO, "still here", STR, STR) == "still here"

    with python_server(path):
        on_reactor(scenario(), timeout=10)


def test_args_that_do_not_fit_fail_before_dialling(short_tmp: Path) -> None:
    # No server at that path: a GobError, not a ConnectionError, shows nothing was dialled.
    with pytest.raises(GobError):
        on_reactor(call(str(short_tmp / "nobody.sock"), ECHO, 42, STR, STR, timeout=2), 5)


def test_server_errors_keep_the_connection(short_tmp: Path) -> None:
    """As Go's server: a call that fails leaves its connection serving the next ones."""
    path = str(short_tmp / "keep.sock")
    codec = ClientCodec()
    with python_server(path), _connect(path) as sock:
        for method, want in SERVER_ERRORS:
            reply = _exchange(sock, codec, method, "exactly this: message", STR, STR)
            assert reply.error == want
            assert _exchange(sock, codec, ECHO, method, STR, STR).body == method
        reply = _exchange(sock, codec, WRONG, "x", STR, INT)
        assert reply.error.startswith("rpc: cannot encode reply: ")
        assert _exchange(sock, codec, ECHO, "still here", STR, STR).body == "still here"


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
    before = open_fds()
    with unix_server(path, read_request_then(reply)), pytest.raises(expected) as err:
        on_reactor(call(path, ECHO, "hello", STR, STR, timeout=5), timeout=10)
    assert str(err.value)
    if expected is ConnectionError:
        assert path in str(err.value) and "closed the connection" in str(err.value)
    assert open_fds() == before


def test_connect_errors_name_the_path_and_why(short_tmp: Path) -> None:
    stale = short_tmp / "stale.sock"  # a socket file nobody listens on any more
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))
    regular = short_tmp / "regular.sock"
    regular.write_text("not a socket")
    directory = short_tmp / "dir.sock"
    directory.mkdir()
    cases = {
        short_tmp / "absent.sock": "No such file or directory",
        stale: "Connection refused",
        regular: "not a socket",
        directory: "not a socket",
        regular / "below": "Not a directory",
    }
    for path, why in cases.items():
        with pytest.raises(ConnectionError) as err:
            on_reactor(call(str(path), ECHO, "x", STR, STR, timeout=2), timeout=5)
        assert str(err.value) == f"rpc: cannot connect to {path}: {why}"


def test_server_survives_garbage_and_disconnects(
    short_tmp: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(short_tmp / "robust.sock")
    # A real request cut in half: header complete, args not.
    _, whole = ClientCodec().request(ECHO, "x" * 1000, STR, STR)
    caplog.set_level(logging.INFO, logger="seesaw_healthcheck.rpc")
    steady_codec = ClientCodec()
    with python_server(path), _connect(path) as steady:
        assert _exchange(steady, steady_codec, ECHO, "before", STR, STR).body == "before"
        # Garbage: the server closes that connection (we read EOF, no hang).
        assert _raw_send(path, b"\x00\x01garbage" * 100) == b""
        assert _raw_send(path, b"\x0b\xff\x81" + b"\xff" * 200) == b""
        # Disconnecting mid-message, and after half a request. As Go's server, a
        # request whose header came gets an answer (tests/test_rpc_errors_go.py).
        cut = ClientCodec()
        cut.request(ECHO, "", STR, STR)
        cut.feed(_raw_send(path, whole[: len(whole) // 2], half_close=True))
        reply = cut.next_reply()
        assert reply is not None and (reply.seq, reply.error) == (0, "unexpected EOF")
        assert _raw_send(path, whole[:3], half_close=True) == b""
        # The steady connection and new ones still work.
        assert _exchange(steady, steady_codec, ECHO, "after", STR, STR).body == "after"
        assert on_reactor(call(path, ECHO, "fresh", STR, STR, timeout=2), timeout=10) == "fresh"
    bad = [r for r in caplog.records if "bad request" in r.getMessage()]
    assert len(bad) == 2 and all(r.levelno == logging.WARNING for r in bad)
    assert f"pid {os.getpid()}" in bad[0].getMessage()
    assert "stopped sending mid-request" in caplog.text


def test_server_answers_a_client_that_stopped_sending(short_tmp: Path) -> None:
    """Requests then EOF (shutdown SHUT_WR): Go's server still replies; so do we."""
    path = str(short_tmp / "eof.sock")
    codec = ClientCodec()
    requests = codec.request(SLOW, 100, INT, INT)[1] + codec.request(ECHO, "bye", STR, STR)[1]
    with python_server(path):
        codec.feed(_raw_send(path, requests, half_close=True))
    replies = [codec.next_reply(), codec.next_reply()]
    # Echo answers first: replies go out as handlers finish, matched by seq.
    assert [(r.seq, r.body) for r in replies if r] == [(1, "bye"), (0, 100)]


def test_server_close_fails_pending_calls(short_tmp: Path) -> None:
    """The server closing while a call runs: the call fails at once, not at its timeout."""
    path = str(short_tmp / "closing.sock")
    server = RpcServer()
    closing: list[asyncio.Task[None]] = []

    async def close_the_server(text: str) -> str:
        closing.append(asyncio.ensure_future(server.close()))
        await asyncio.sleep(60)  # cancelled by the close
        return text

    server.register("Test.Close", STR, STR, close_the_server)
    with LoopThread() as loop:
        loop.run(server.start_unix(path))
        try:
            started = time.monotonic()
            with pytest.raises(ConnectionError, match="closed the connection"):
                on_reactor(call(path, "Test.Close", "x", STR, STR, timeout=10), timeout=20)
            assert time.monotonic() - started < 5
        finally:
            loop.run(server.close())
    assert len(closing) == 1 and not os.path.exists(path)


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

    with python_server(path) as first:
        with pytest.raises(OSError, match="already listening") as err:
            run(RpcServer().start_unix(path), timeout=5)
        assert err.value.errno == errno.EADDRINUSE
        assert first.path == path
        assert on_reactor(call(path, ECHO, "first", STR, STR, timeout=2), timeout=10) == "first"
    assert not os.path.exists(path)  # closing removes its own socket file
    with python_server(path):
        assert on_reactor(call(path, ECHO, "second", STR, STR, timeout=2), timeout=10) == "second"
