"""Bad requests: our net/rpc server answers them as Go's does, byte sequence for byte sequence.

Each case sends the same raw bytes to Go's net/rpc server (``gopeer engine``) and to ours
(the ``seesaw-healthcheck-engine`` emulator, a subprocess too), then a good call (the
"probe"), then EOF, reads until the server closes, and compares the decoded replies.

What Go 1.19 does (net/rpc/server.go ``ServeCodec``, ``readRequest``,
``readRequestHeader``; encoding/gob/decoder.go):

- Reading is one gob ``Decode`` per header and one per args. A ``Decode`` reads whole
  length-prefixed messages: type definitions, then one value. When it fails, the rest of
  the message it was in is dropped and the next ``Decode`` starts at the next message;
  the type definitions received so far are kept (even those of the failed value).
- Every reply is a ``Response`` (ServiceMethod and Seq copied from the request, any
  uint64 Seq) then a body; an error reply's body is ``invalidRequest``, an empty struct.
- Header that does not decode (garbage, not a Request, a bad type definition, a
  zero-length message, a bad length prefix, EOF part way): no reply. Go stops reading,
  waits for the calls already running to reply, then closes.
- No dot in ServiceMethod: "rpc: service/method request ill-formed: X"; unknown service:
  "rpc: can't find service X"; unknown method: "rpc: can't find method X". The args are
  read and dropped (even when they do not decode), the error reply goes out at once,
  the connection carries on.
- Known method, args do not decode: the reply's Error is the gob error, verbatim: a type
  mismatch or corrupt value ("gob: ..."), a length prefix over 8 bytes ("gob: encoded
  unsigned integer out of range", 1 byte consumed), a length of 8 GiB or more ("invalid
  message length", prefix consumed), a zero-length message or no byte before EOF ("EOF"),
  args cut short by EOF ("unexpected EOF"). The connection carries on: the next message
  is read as the next header.
- EOF with a partial header: nothing. After the last whole request: the running calls
  reply, then Go closes.

Ours matches all of that. Where we differ, on purpose:

- Gob errors that name Go types (Go says "want struct type healthcheck.HealthState", we
  know no Go package names) or that our decoder words differently: the same "gob: "
  shape, not the same words. Those cases give a pattern for our text (``ours``); Go's
  exact text is still asserted, as a record of what Go says.
- A message over our decoder's 64 MiB limit closes the connection (Go waits for, and
  allocates, up to 8 GiB); past ``framing.MAX_REPLAY`` bytes of type definitions on one
  connection, a bad args value closes it too (tests/test_rpc_framing.py covers both).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.gopeer import GoEngine

from seesaw_healthcheck import model, schema
from seesaw_healthcheck.gob import (
    NEED_DATA,
    Bool,
    Decoder,
    Encoder,
    Field,
    Int,
    String,
    Struct,
    Uint,
)
from seesaw_healthcheck.gob.types import GobType
from seesaw_healthcheck.rpc import RpcServer
from seesaw_healthcheck.rpc.framing import REQUEST_TYPE, RESPONSE_TYPE, Request

HC = schema.HEALTHCHECKS
HS = schema.HEALTH_STATE_METHOD
PROBE = 1000  # seq of the good call sent after each case's bytes
EMPTY: dict[str, Any] = {}  # the body of an error reply, decoded generically
OTHER = Struct("Other", [Field("Foo", Int(64), "foo")])

CHECKS_TOML = '[[check]]\nname = "a"\ntype = "tcp"\nip = "127.0.0.1"\nport = 80\n'


def _health_state() -> model.HealthState:
    return model.HealthState(ctx=model.Context.trusted(), notifications=[])


def split(data: bytes) -> list[bytes]:
    """The gob messages in ``data``, length prefixes included."""
    out, i = [], 0
    while i < len(data):
        b = data[i]
        n, hl = (b, 1) if b < 0x80 else (int.from_bytes(data[i + 1 : i + 257 - b], "big"), 257 - b)
        out.append(data[i : i + hl + n])
        i += hl + n
    return out


class Wire:
    """One client connection's worth of gob: a single encoder, so definitions go once."""

    def __init__(self) -> None:
        self.enc = Encoder()

    def header(self, method: str, seq: int) -> bytes:
        return self.enc.encode(Request(method, seq), REQUEST_TYPE)

    def value(self, value: Any, type: GobType) -> bytes:
        return self.enc.encode(value, type)

    def call(self, method: str, seq: int, args: Any, type: GobType) -> bytes:
        return self.header(method, seq) + self.value(args, type)

    def good(self, seq: int = PROBE) -> bytes:
        return self.call(HS, seq, _health_state(), schema.HEALTH_STATE_ARG)


def _corrupt_value(message: bytes) -> bytes:
    """The same value message (same type id) with a struct field delta past every field."""
    tid_len = 1 if message[1] < 0x80 else 257 - message[1]
    payload = message[1 : 1 + tid_len] + b"\x7f"
    return bytes([len(payload)]) + payload


def _types_kept_after_bad_value(w: Wire) -> bytes:
    # HealthState's definitions, then a corrupt value; the next call's args use the same
    # types without sending them again (one encoder), so it works only if they were kept.
    *defs, value = split(w.value(_health_state(), schema.HEALTH_STATE_ARG))
    return w.header(HS, 1) + b"".join(defs) + _corrupt_value(value) + w.good(2)


def _types_kept_after_bad_length(w: Wire) -> bytes:
    *defs, _ = split(w.value(_health_state(), schema.HEALTH_STATE_ARG))
    return w.header(HS, 1) + b"".join(defs) + b"\xf0" + w.good(2)


def _duplicate_definition(w: Wire) -> bytes:
    # The header's first message defines Request as type 65; sending it again as the args
    # redefines 65. Go drops it and reads on: the probe's header is next.
    first = w.header(HC, 1)
    return first + split(first)[0]


def _definition_with_extra_data(w: Wire) -> bytes:
    definition = split(w.value({"foo": 5}, OTHER))[0]
    return w.header(HC, 1) + bytes([definition[0] + 2]) + definition[1:] + b"\x01\x02"


def _header_as(fields: list[Field], value: dict[str, Any]) -> Callable[[Wire], bytes]:
    return lambda w: w.value(value, Struct("Request", fields))


def _healthchecks_args(w: Wire) -> bytes:
    return w.value(model.Context.trusted(), schema.CONTEXT_ARG)


@dataclass
class Case:
    """``send(wire)`` bytes (then, unless ``eof``, the probe call), then EOF.

    ``replies`` are Go's: (ServiceMethod, Seq, Error) sorted by seq; ``ours`` maps a seq
    to a pattern our Error must match instead of Go's words (see the module docstring).
    """

    send: Callable[[Wire], bytes]
    replies: list[tuple[str, int, str]]
    ours: dict[int, str] = field(default_factory=dict)
    eof: bool = False  # the case's bytes end the stream: no probe


OK = (HS, PROBE, "")  # the probe answered: the connection carried on

CASES = {
    # -- lookup errors: answered, args read and dropped, connection kept --
    "unknown service": Case(
        lambda w: w.call("Nope.Echo", 1, "x", String()),
        [("Nope.Echo", 1, "rpc: can't find service Nope.Echo"), OK],
    ),
    "unknown method": Case(
        lambda w: w.call("SeesawEngine.Nope", 1, "x", String()),
        [("SeesawEngine.Nope", 1, "rpc: can't find method SeesawEngine.Nope"), OK],
    ),
    "no dot": Case(
        lambda w: w.call("SeesawEngineHealthchecks", 1, "x", String()),
        [
            (
                "SeesawEngineHealthchecks",
                1,
                "rpc: service/method request ill-formed: SeesawEngineHealthchecks",
            ),
            OK,
        ],
    ),
    "empty name": Case(
        lambda w: w.call("", 1, "x", String()),
        [("", 1, "rpc: service/method request ill-formed: "), OK],
    ),
    "unknown method, args of an undefined type": Case(
        lambda w: w.header("X.Y", 1) + b"\x03\xff\xc6\x00",
        [("X.Y", 1, "rpc: can't find service X.Y"), OK],
    ),
    "unknown method, zero-length args message": Case(
        lambda w: w.header("X.Y", 1) + b"\x00",
        [("X.Y", 1, "rpc: can't find service X.Y"), OK],
    ),
    "unknown method, seq 2**64-1": Case(
        lambda w: w.call("X.Y", 2**64 - 1, "x", String()) + w.good(2**64 - 2),
        [OK, (HS, 2**64 - 2, ""), ("X.Y", 2**64 - 1, "rpc: can't find service X.Y")],
    ),
    # -- args of another gob type: the decode error, connection kept --
    "string args": Case(
        lambda w: w.call(HS, 1, "x", String()),
        [
            (
                HS,
                1,
                "gob: type mismatch in decoder: want struct type "
                "healthcheck.HealthState; got non-struct",
            ),
            OK,
        ],
        ours={1: r"gob: type mismatch: cannot decode string into .*HealthState.*"},
    ),
    "int args": Case(
        lambda w: w.call(HC, 1, 5, Int(64)),
        [
            (HC, 1, "gob: type mismatch in decoder: want struct type ipc.Context; got non-struct"),
            OK,
        ],
        ours={1: r"gob: type mismatch: cannot decode int into .*Context.*"},
    ),
    "struct args sharing no field": Case(
        lambda w: w.call(HC, 1, {"foo": 3}, OTHER),
        [(HC, 1, "gob: type mismatch: no fields matched compiling decoder for Context"), OK],
    ),
    "Healthchecks args to HealthState": Case(
        lambda w: w.header(HS, 1) + _healthchecks_args(w),
        [(HS, 1, "gob: type mismatch: no fields matched compiling decoder for HealthState"), OK],
    ),
    # -- args that do not decode: the decode error, connection kept --
    "args of an undefined type": Case(
        lambda w: w.header(HC, 1) + b"\x03\xff\xc6\x00",
        [(HC, 1, "gob: unknown type id or corrupted data"), OK],
        ours={1: r"gob: value of undefined type id 99"},
    ),
    "corrupt args, types kept": Case(
        _types_kept_after_bad_value,
        [(HS, 1, "gob: bad data: field numbers out of bounds"), (HS, 2, ""), OK],
        ours={1: r"gob: field number out of range for struct HealthState: 126"},
    ),
    "redefined type id": Case(
        _duplicate_definition,
        [(HC, 1, "gob: duplicate type received"), OK],
        ours={1: r"gob: duplicate or reserved type id 65 defined"},
    ),
    "type definition with extra data": Case(
        _definition_with_extra_data,
        [(HC, 1, "extra data in buffer"), OK],
        ours={1: r"gob: extra data after type definition"},
    ),
    "length prefix over 8 bytes": Case(
        lambda w: w.header(HC, 1) + b"\xf0",
        [(HC, 1, "gob: encoded unsigned integer out of range"), OK],
    ),
    "bad length prefix after definitions, types kept": Case(
        _types_kept_after_bad_length,
        [(HS, 1, "gob: encoded unsigned integer out of range"), (HS, 2, ""), OK],
    ),
    "length of 8 GiB": Case(
        lambda w: w.header(HC, 1) + b"\xfb\x02\x00\x00\x00\x00",
        [(HC, 1, "invalid message length"), OK],
    ),
    "length of 2**64-1": Case(
        lambda w: w.header(HC, 1) + b"\xf8" + b"\xff" * 8,
        [(HC, 1, "invalid message length"), OK],
    ),
    "zero-length args message": Case(
        lambda w: w.header(HC, 1) + b"\x00",
        [(HC, 1, "EOF"), OK],
    ),
    # -- headers: any other struct with the right fields will do --
    "header of another struct with an extra field": Case(
        lambda w: (
            _header_as(
                [Field("ServiceMethod", String()), Field("Seq", Uint(64)), Field("X", Bool())],
                {"ServiceMethod": HS, "Seq": 5, "X": True},
            )(w)
            + w.value(_health_state(), schema.HEALTH_STATE_ARG)
        ),
        [(HS, 5, ""), OK],
    ),
    # -- headers that do not decode: no reply, no more reading, close --
    "garbage": Case(lambda w: b"\x00\x01garbage" * 100, []),
    "HTTP request": Case(lambda w: b"GET / HTTP/1.1\r\nHost: engine\r\n\r\n" * 8, []),
    "bad type definition": Case(lambda w: b"\x0b\xff\x81" + b"\xff" * 200, []),
    "header is an int": Case(lambda w: w.value(5, Int(64)), []),
    "header with ServiceMethod an int": Case(
        _header_as(
            [Field("ServiceMethod", Int(64)), Field("Seq", Uint(64))],
            {"ServiceMethod": 3, "Seq": 5},
        ),
        [],
    ),
    "header sharing no field": Case(_header_as([Field("Foo", Int(64))], {"Foo": 3}), []),
    "zero-length header": Case(lambda w: b"\x00", []),
    "header length prefix over 8 bytes": Case(lambda w: b"\xf0", []),
    "good call then garbage": Case(lambda w: w.good(1) + b"\x00\x01garbage", [(HS, 1, "")]),
    "lookup error then garbage": Case(
        lambda w: w.call("X.Y", 1, "x", String()) + b"\x00\x01garbage",
        [("X.Y", 1, "rpc: can't find service X.Y")],
    ),
    # -- EOF part way --
    "EOF after a header": Case(lambda w: w.header(HC, 1), [(HC, 1, "EOF")], eof=True),
    "EOF after an unknown method's header": Case(
        lambda w: w.header("X.Y", 1), [("X.Y", 1, "rpc: can't find service X.Y")], eof=True
    ),
    "EOF after the args' definitions": Case(
        lambda w: (
            w.header(HS, 1)
            + b"".join(split(w.value(_health_state(), schema.HEALTH_STATE_ARG))[:-1])
        ),
        [(HS, 1, "unexpected EOF")],
        eof=True,
    ),
    "EOF in the args": Case(
        lambda w: w.header(HC, 1) + _healthchecks_args(w)[:-3],
        [(HC, 1, "unexpected EOF")],
        eof=True,
    ),
    "EOF in a length prefix": Case(
        lambda w: w.header(HC, 1) + b"\xfe\x01", [(HC, 1, "unexpected EOF")], eof=True
    ),
    "EOF in the header": Case(lambda w: w.header(HC, 1)[:-2], [], eof=True),
    "EOF after calls": Case(
        lambda w: w.call("X.Y", 1, "x", String()) + w.good(2),
        [("X.Y", 1, "rpc: can't find service X.Y"), (HS, 2, "")],
        eof=True,
    ),
}


# --- the two servers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(gopeer: Path) -> Iterator[dict[str, str]]:
    """Socket paths of Go's engine and ours (``seesaw-healthcheck-engine``), running."""
    tmp = Path(tempfile.mkdtemp(prefix="ssw-", dir="/tmp"))
    config = tmp / "checks.toml"
    config.write_text(CHECKS_TOML)
    ours = str(tmp / "py.sock")
    log = open(tmp / "engine.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seesaw_healthcheck.cli.engine",
            "-socket",
            ours,
            "-config",
            str(config),
            "-logtostderr",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        with GoEngine(tmp / "go.sock", configs=1) as engine:
            deadline = time.monotonic() + 20
            while not _accepts(ours):
                assert proc.poll() is None, (tmp / "engine.log").read_text()
                assert time.monotonic() < deadline, "our engine did not start"
                time.sleep(0.05)
            yield {"go": engine.socket_path, "ours": ours}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except OSError:
            return False
    return True


Reply = tuple[str, int, str, Any]  # ServiceMethod, Seq, Error, body


def exchange(path: str, data: bytes, timeout: float = 5.0) -> list[Reply]:
    """Send ``data`` on a fresh connection, then EOF; the replies read until the server
    closed (EOF, or a reset when it closed with our bytes unread), sorted by seq.

    A server that neither replies nor closes fails the test (socket timeout)."""
    received = b""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    decoder = Decoder()
    decoder.feed(received)
    replies: list[Reply] = []
    while (header := decoder.next(RESPONSE_TYPE)) is not NEED_DATA:
        body = decoder.next(None)
        assert body is not NEED_DATA, f"reply {header} without its body"
        replies.append((header.service_method, header.seq, header.error, body))
    decoder.close()  # nothing left over
    return sorted(replies, key=lambda r: r[1])


def _shape(replies: list[Reply], ours: dict[int, str]) -> list[tuple[str, int, str, Any]]:
    """Replies with our own wording (``ours``) replaced by a marker, bodies checked."""
    out = []
    for method, seq, error, body in replies:
        assert body == (EMPTY if error else 0), (seq, error, body)  # invalidRequest / int
        if seq in ours:
            assert error.startswith("gob: ") and re.fullmatch(ours[seq], error), error
            error = "<gob error>"
        out.append((method, seq, error, body))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_bad_request_answered_like_go(servers: dict[str, str], name: str) -> None:
    case = CASES[name]
    wire = Wire()
    data = case.send(wire)
    if not case.eof:
        data += wire.good()
    want = [(m, s, e, EMPTY if e else 0) for m, s, e in case.replies]
    go = exchange(servers["go"], data)
    assert go == want, "Go's net/rpc server changed?"
    ours = exchange(servers["ours"], data)
    marked = {s: "<gob error>" for s in case.ours}
    assert _shape(ours, case.ours) == [(m, s, marked.get(s, e), b) for m, s, e, b in want]


def test_both_servers_serve_other_connections_after_bad_ones(servers: dict[str, str]) -> None:
    """All the cases at once, each on its own connection, then one good call each."""
    for path in servers.values():
        for case in CASES.values():
            exchange(path, case.send(Wire()))
        assert exchange(path, Wire().good(7)) == [(HS, 7, "", 0)]


# --- ours alone: what Go's wg.Wait() guarantees -----------------------------------------


def test_running_calls_are_answered_before_a_bad_header_closes(short_tmp: Path) -> None:
    """A call still running when garbage arrives gets its reply, then the close (Go waits
    for its running calls before closing; gopeer's methods are too quick to show it)."""
    path = str(short_tmp / "slow.sock")
    started = time.monotonic()

    async def slow(ms: int) -> int:
        await asyncio.sleep(ms / 1000)
        return ms

    async def scenario() -> list[Reply]:
        server = RpcServer()
        server.register("Test.Slow", Int(64), Int(64), slow)
        await server.start_unix(path)
        try:
            w = Wire()
            data = (
                w.call("Test.Slow", 1, 300, Int(64))
                + w.call("Test.Nope", 2, 0, Int(64))
                + b"\x00\x01garbage"
                + w.call("Test.Slow", 3, 1, Int(64))  # never read
            )
            return await asyncio.to_thread(exchange, path, data)
        finally:
            await server.close()

    replies = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert replies == [
        ("Test.Slow", 1, "", 300),
        ("Test.Nope", 2, "rpc: can't find method Test.Nope", EMPTY),
    ]
    assert time.monotonic() - started >= 0.3
