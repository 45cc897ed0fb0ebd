"""net/rpc calls as reactor tasks (what the server's updater and notifier use): against
Go's net/rpc engine, and against silent, hanging-up and garbage-sending peers."""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from tests.gopeer import GoEngine
from tests.responders.unix import read_request_then, unix_server
from tests.test_rpc_live import ENGINE_REFUSALS, _assert_recorded, _batches

from seesaw_healthcheck import model, schema
from seesaw_healthcheck.gob import GobError
from seesaw_healthcheck.reactor import Reactor
from seesaw_healthcheck.rpc import RpcError
from seesaw_healthcheck.rpc.reactor_call import call

N_CONFIGS = 10_000


def on_reactor(scenario: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 60) -> Any:
    with Reactor() as reactor:
        return reactor.run(scenario(), timeout=timeout)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_fetch_and_notify_against_go_engine(gopeer: Path, short_tmp: Path) -> None:
    path = str(short_tmp / "engine.sock")
    record = short_tmp / "record.jsonl"
    with GoEngine(path, configs=N_CONFIGS, port=4242, record=record) as engine:
        ctx = model.Context.trusted()

        async def scenario() -> None:
            checks = await call(path, schema.HEALTHCHECKS, ctx, schema.CONTEXT_ARG, schema.CHECKS)
            assert isinstance(checks, model.Checks) and checks.configs is not None
            assert sorted(checks.configs) == list(range(1, N_CONFIGS + 1))
            for config_id, config in checks.configs.items():
                assert config.id == config_id
                checker = config.checker
                assert isinstance(checker, model.TCPChecker), config
                assert checker.target.address == ipaddress.IPv4Address("127.0.0.1")
                assert checker.target.port == 4242
            for batch in _batches(ctx, N_CONFIGS):  # a fresh connection per call
                reply = await call(
                    path, schema.HEALTH_STATE_METHOD, batch, schema.HEALTH_STATE_ARG,
                    schema.INT_REPLY,
                )  # fmt: skip
                assert reply == 0
            untrusted = model.Context.trusted()
            untrusted.auth_type = model.AuthType.UNTRUSTED
            with pytest.raises(RpcError) as refused:
                await call(path, schema.HEALTHCHECKS, untrusted, schema.CONTEXT_ARG, schema.CHECKS)
            assert str(refused.value) in ENGINE_REFUSALS

        before = open_fds()
        on_reactor(scenario)
        assert open_fds() == before
    assert engine.summary["notifications"] == N_CONFIGS, engine.summary
    _assert_recorded(record, ctx, N_CONFIGS)


def fetch(path: str, timeout: float = 5.0) -> Callable[[], Coroutine[Any, Any, Any]]:
    ctx = model.Context.trusted()
    return lambda: call(
        path, schema.HEALTHCHECKS, ctx, schema.CONTEXT_ARG, schema.CHECKS, timeout=timeout
    )


def test_silent_server_times_out_and_the_socket_is_closed(short_tmp: Path) -> None:
    path = str(short_tmp / "silent.sock")
    before = open_fds()
    with unix_server(path, read_request_then(None, hold_s=1.0)):
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"^rpc: SeesawEngine\.Healthchecks on .*: no reply"):
            on_reactor(fetch(path, timeout=0.3))
        elapsed = time.monotonic() - started
    assert open_fds() == before  # the server side is gone too: nothing of ours is left
    assert 0.3 <= elapsed < 0.3 + 0.5


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
            on_reactor(fetch(str(path)))
        assert str(err.value) == f"rpc: cannot connect to {path}: {why}"


def test_hang_up_before_the_reply_is_a_connection_error(short_tmp: Path) -> None:
    path = str(short_tmp / "hangup.sock")
    with (
        unix_server(path, read_request_then(b"")),
        pytest.raises(ConnectionError, match="closed the connection"),
    ):
        on_reactor(fetch(path))


def test_garbage_reply_is_a_gob_error(short_tmp: Path) -> None:
    path = str(short_tmp / "garbage.sock")
    with (
        unix_server(path, read_request_then(b"\x05\xff\xff\xff\xff\xff" * 4)),
        pytest.raises(GobError),
    ):
        on_reactor(fetch(path))
