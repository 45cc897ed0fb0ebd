"""A Seesaw engine stand-in that misbehaves on demand, for the fault tests.

``HostileEngine(path, checks)`` serves ``SeesawEngine.Healthchecks`` and
``SeesawEngine.HealthState`` on a Unix socket with our own net/rpc codec, a thread per
connection (so a connection held silent blocks no other). HealthState is always answered
properly and its notifications kept; Healthchecks is answered as ``mode`` says, which a
test may change at any time:

- ``sane``: ``checks`` (encoded once per set and reused: every call is seq 0 on a fresh
  connection, so the reply bytes are the same);
- ``silent``: the request is read and never answered; the connection is held until the
  client closes it (or the engine stops);
- ``garbage``: bytes that are no gob stream, then close;
- ``header_then_close``: a valid reply header, then close before the body;
- ``huge_length``: a gob message length prefix of 2 GiB, then nothing (held open);
- ``bad_body``: a valid reply header, then a body that does not decode;
- ``rpc_error``: a reply carrying the error string ``RPC_ERROR_TEXT``.

gopeer cannot play these (it is Go's own server); a hostile *target* lives in
``tcp.py``/``unix.py``.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
from types import TracebackType

from seesaw_healthcheck import schema
from seesaw_healthcheck.gob import Encoder
from seesaw_healthcheck.model import Checks, HealthState, Status
from seesaw_healthcheck.rpc.framing import RESPONSE_TYPE, Request, Response, ServerCodec

MODES = (
    "sane",
    "silent",
    "garbage",
    "header_then_close",
    "huge_length",
    "bad_body",
    "rpc_error",
)
RPC_ERROR_TEXT = "engine: healthchecks are not ready"
# A gob unsigned int of 2**31: the byte count negated (-4), then 0x80000000 big-endian.
HUGE_LENGTH_PREFIX = bytes([0xFC, 0x80, 0x00, 0x00, 0x00])
GARBAGE = bytes(random.Random(11).randrange(256) for _ in range(512))

_ARGS = {
    schema.HEALTHCHECKS: schema.CONTEXT_ARG,
    schema.HEALTH_STATE_METHOD: schema.HEALTH_STATE_ARG,
}


class HostileEngine:
    """``with HostileEngine(path, checks) as engine: engine.mode = "garbage"``.

    ``calls[mode]`` counts the Healthchecks calls answered (or not) in each mode,
    ``health_state_calls`` the HealthState calls, ``latest`` holds the newest Status per
    check id and ``notifications`` how many arrived in all.
    """

    def __init__(self, path: str | os.PathLike[str], checks: Checks) -> None:
        self.path = str(path)
        self.mode = "sane"
        self.checks = checks
        self.calls: dict[str, int] = dict.fromkeys(MODES, 0)
        self.health_state_calls = 0
        self.notifications = 0
        self.latest: dict[int, Status] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._encoded: tuple[Checks, bytes] | None = None
        self._conns: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(64)
        self._listener.settimeout(0.05)
        self._thread = threading.Thread(target=self._accept_loop, name="hostile-engine")

    def __enter__(self) -> HostileEngine:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def encode_now(self) -> None:
        """Encode the sane reply to ``checks`` now rather than on the first call (100,000
        configs take seconds)."""
        self._sane_reply(ServerCodec(), Request(schema.HEALTHCHECKS, 0))

    def states(self) -> dict[int, int]:
        """The newest state the engine heard of, per check id."""
        with self._lock:
            return {check_id: status.state for check_id, status in self.latest.items()}

    # -- serving ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(0.05)
            codec = ServerCodec()
            while not self._stop.is_set():
                try:
                    data = conn.recv(1 << 16)
                except TimeoutError:
                    continue
                if not data:
                    return
                codec.feed(data)
                call = codec.next_call(_ARGS.get)
                if call is None:
                    continue
                if call.request.service_method == schema.HEALTH_STATE_METHOD:
                    self._health_state(call.args)
                    conn.sendall(codec.response(call.request, 0, schema.INT_REPLY))
                    continue
                mode = self.mode
                with self._lock:
                    self.calls[mode] += 1
                if not self._healthchecks(conn, codec, call.request, mode):
                    return
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _health_state(self, args: HealthState | None) -> None:
        with self._lock:
            self.health_state_calls += 1
            for note in args.notifications if args is not None else []:
                if note is not None:
                    self.latest[note.id] = note.status
                    self.notifications += 1

    def _healthchecks(
        self, conn: socket.socket, codec: ServerCodec, request: Request, mode: str
    ) -> bool:
        """Answer one Healthchecks call as ``mode`` says; False: the connection is done."""
        if mode == "sane":
            conn.sendall(self._sane_reply(codec, request))
            return True
        if mode == "rpc_error":
            conn.sendall(codec.response(request, None, None, error=RPC_ERROR_TEXT))
            return True
        if mode == "garbage":
            conn.sendall(GARBAGE)
        elif mode in ("header_then_close", "bad_body"):
            header = Encoder().encode(
                Response(request.service_method, request.seq, ""), RESPONSE_TYPE
            )
            # bad_body: a message that claims 40 bytes and holds a type id past any
            # defined type, then junk.
            body = b"\x28\x7f" + GARBAGE[:39] if mode == "bad_body" else b""
            conn.sendall(header + body)
        elif mode == "huge_length":
            conn.sendall(HUGE_LENGTH_PREFIX + GARBAGE[:64])
            self._hold(conn)
        elif mode == "silent":
            self._hold(conn)
        return False

    def _hold(self, conn: socket.socket) -> None:
        """Keep the connection open, reading nothing we answer, until the client closes
        it or the engine stops."""
        while not self._stop.is_set():
            try:
                if not conn.recv(4096):
                    return
            except TimeoutError:
                continue

    def _sane_reply(self, codec: ServerCodec, request: Request) -> bytes:
        checks = self.checks
        cached = self._encoded
        if request.seq == 0 and cached is not None and cached[0] is checks:
            return cached[1]
        data = codec.response(request, checks, schema.CHECKS)
        if request.seq == 0:
            self._encoded = (checks, data)
        return data


def wait_for_calls(engine: HostileEngine, mode: str, count: int, timeout: float) -> None:
    """Until ``engine`` has taken ``count`` Healthchecks calls in ``mode``."""
    deadline = time.monotonic() + timeout
    while engine.calls[mode] < count:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {count} {mode} fetches: {engine.calls}"
            )
        time.sleep(0.02)
