"""``seesaw-healthcheck-engine``: a small Seesaw engine emulator for demos, tests and trials.

It serves ``SeesawEngine.Healthchecks`` from a TOML file of checks and records every
``SeesawEngine.HealthState`` it receives, on a Unix socket speaking Go ``net/rpc`` +
``encoding/gob`` as the real engine does. Like the real engine it refuses a nil or
untrusted ``ipc.Context`` ("context is nil", "insufficient access").

With ``-grpc ADDR`` it plays a controller of the server's gRPC API instead (the server
running with ``-config_source grpc``): it pushes the file's checks with ``SetChecks`` (at
start, when the file changes, on SIGHUP, and again after its watch stream broke, as a
restarted server starts empty) and records every Status that ``WatchStatus`` streams, in
the same JSON lines as the notifications (``GrpcController``).

The TOML file is re-read when its modification time changes (polled every second) or on
SIGHUP. A file that does not parse or does not validate is reported with a clear error
and the last good configuration stays in service. With ``-allow_invalid`` a check that
breaks a rule of its values (interval 0, a negative timeout or retries, an IP that is not
one, a port out of range, ...) is served as written, as a faulty engine would send it
(an IP that does not parse as a nil ``net.IP``), with a warning, so that the server's own
handling of bad checks can be seen; ``type = "nil"`` then sends a check without a
checker. A file that cannot be read as checks at all (not TOML, unknown fields, values
of the wrong kind) is still refused.

``-record FILE`` appends one JSON line per notification received, times in RFC 3339
with nanoseconds (``"last_check": "2026-12-03T07:24:38.123456789+01:00"``).

The file's format is ``seesaw_healthcheck.checkfile``'s (``examples/demo.toml`` is a
commented example).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from seesaw_healthcheck import model
from seesaw_healthcheck.checkfile import (
    CheckEntry,
    ConfigError,
    Endpoint,
    IdAllocator,
    load_checks,
)
from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.goduration import format_duration

log = logging.getLogger("seesaw_healthcheck.engine")

DEFAULT_SOCKET = "/var/run/seesaw/engine/engine.sock"
ERR_CONTEXT = "context is nil"
ERR_ACCESS = "insufficient access"
GRPC_RETRY_S = 1.0  # between attempts while the gRPC server cannot be reached
GRPC_CALL_TIMEOUT_S = 30.0
GRPC_MAX_MESSAGE = 256 << 20  # a SetChecks of 100,000 checks is ~7 MB


@dataclass(slots=True)
class Received:
    """One notification as the engine received it."""

    id: int
    name: str
    old_state: model.State | int
    status: model.Status


NotificationCallback = Callable[[Received], None]


def _context_error(ctx: model.Context | None) -> str | None:
    if ctx is None:
        return ERR_CONTEXT
    if ctx.auth_type != model.AuthType.TRUSTED:
        return ERR_ACCESS
    return None


class CheckFile:
    """The checks of a TOML file (re-read when it changes, see ``watch_file``) and the
    latest Status of each as the server reported it, appended to ``record_path``: what
    both the gob engine emulator and the gRPC controller keep."""

    def __init__(
        self,
        config_path: str,
        *,
        record_path: str | None = None,
        targets: Mapping[str, Endpoint] | None = None,
        on_notification: NotificationCallback | None = None,
        poll_interval: float = 1.0,
        allow_invalid: bool = False,
    ) -> None:
        self.config_path = config_path
        self.allow_invalid = allow_invalid
        self.record_path = record_path
        self.targets = targets
        self.on_notification = on_notification
        self.poll_interval = poll_interval
        self.ids = IdAllocator()
        self.checks: dict[int, CheckEntry] = {}
        self.statuses: dict[int, model.Status] = {}  # latest Status per check id
        self.notifications = 0
        self.last_error: str | None = None
        self._mtime: float | None = None
        self._record: Any = None  # text file, opened in start()

    # -- configuration ------------------------------------------------------------------

    def _file_mtime(self) -> float | None:
        try:
            return os.stat(self.config_path).st_mtime_ns / 1e9
        except OSError:
            return None

    def reload(self) -> bool:
        """Re-read the checks file; on error log it and keep the last good checks."""
        self._mtime = self._file_mtime()
        try:
            checks = self._load()
        except ConfigError as e:
            self.last_error = str(e)
            log.error("keeping the last good config (%d checks): %s", len(self.checks), e)
            return False
        self.last_error = None
        added = checks.keys() - self.checks.keys()
        removed = self.checks.keys() - checks.keys()
        self.checks = checks
        for gone in removed:
            self.statuses.pop(gone, None)
        log.info(
            "loaded %d checks from %s (%d added, %d removed)",
            len(checks),
            self.config_path,
            len(added),
            len(removed),
        )
        return True

    def _load(self) -> dict[int, CheckEntry]:
        checks = load_checks(
            self.config_path, ids=self.ids, targets=self.targets, allow_invalid=self.allow_invalid
        )
        for check_id, entry in checks.items():
            for rule in entry.invalid:
                log.warning("serving check %d as written (-allow_invalid): %s", check_id, rule)
        return checks

    def _load_first(self) -> None:
        """The first read (a bad file is fatal: ConfigError) and the record opened."""
        self._mtime = self._file_mtime()
        self.checks = self._load()
        log.info("loaded %d checks from %s", len(self.checks), self.config_path)
        if self.record_path:
            self._record = open(self.record_path, "a", encoding="utf-8")  # noqa: SIM115

    def _close_record(self) -> None:
        if self._record is not None:
            self._record.close()
            self._record = None

    def name_of(self, check_id: int) -> str:
        entry = self.checks.get(check_id)
        return entry.name if entry else f"id {check_id:#x}"

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            mtime = self._file_mtime()
            if mtime != self._mtime:
                self.reload()

    # -- statuses -------------------------------------------------------------------------

    def _receive_status(self, check_id: int, status: model.Status) -> None:
        self.notifications += 1
        previous = self.statuses.get(check_id)
        old = _state(previous.state) if previous else model.State.UNKNOWN
        self.statuses[check_id] = status
        received = Received(check_id, self.name_of(check_id), old, status)
        if self._record is not None:
            self._record.write(json.dumps(record_json(received)) + "\n")
            self._record.flush()
        if self.on_notification is not None:
            self.on_notification(received)

    def calls(self) -> str:
        """The server's calls for checks so far, for a person ("3 fetches")."""
        raise NotImplementedError


class EngineEmulator(CheckFile):
    """The two engine methods the health-check server calls, over a checks file."""

    def __init__(
        self,
        config_path: str,
        *,
        record_path: str | None = None,
        targets: Mapping[str, Endpoint] | None = None,
        on_notification: NotificationCallback | None = None,
        poll_interval: float = 1.0,
        allow_invalid: bool = False,
    ) -> None:
        super().__init__(
            config_path,
            record_path=record_path,
            targets=targets,
            on_notification=on_notification,
            poll_interval=poll_interval,
            allow_invalid=allow_invalid,
        )
        self.fetches = 0
        self.refused = 0
        self._server: Any = None
        self._watcher: asyncio.Task[None] | None = None

    def calls(self) -> str:
        return _count(self.fetches, "fetch", "fetches")

    # -- RPC methods ----------------------------------------------------------------------

    async def healthchecks(self, ctx: model.Context | None) -> model.Checks:
        error = _context_error(ctx)
        if error:
            self.refused += 1
            log.warning("Healthchecks refused: %s", error)
            raise _rpc_error(error)
        self.fetches += 1
        return model.Checks(configs={i: e.config for i, e in self.checks.items()})

    async def health_state(self, args: model.HealthState | None) -> int:
        if args is None:
            self.refused += 1
            raise _rpc_error("args is nil")
        error = _context_error(args.ctx)
        if error:
            self.refused += 1
            log.warning("HealthState refused: %s", error)
            raise _rpc_error(error)
        for note in args.notifications:
            self._receive(note)
        return 0

    def _receive(self, note: model.Notification | None) -> None:
        if note is not None:
            self._receive_status(note.id, note.status)

    # -- serving --------------------------------------------------------------------------

    async def start(self, socket_path: str) -> None:
        """Load the checks (a bad file is fatal at start), then serve ``socket_path``."""
        # Imported here so the checks-file parser works without the wire layers loaded.
        from seesaw_healthcheck import schema
        from seesaw_healthcheck.rpc import RpcServer

        self._load_first()
        server = RpcServer()
        server.register(schema.HEALTHCHECKS, schema.CONTEXT_ARG, schema.CHECKS, self.healthchecks)
        server.register(
            schema.HEALTH_STATE_METHOD, schema.HEALTH_STATE_ARG, schema.INT_REPLY, self.health_state
        )
        await server.start_unix(socket_path)
        self._server = server
        self._watcher = asyncio.get_running_loop().create_task(self._watch())
        log.info("engine emulator serving on %s", socket_path)

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._server is not None:
            await self._server.close()
            self._server = None
        self._close_record()


class GrpcController(CheckFile):
    """A controller of the server's gRPC API (``-config_source grpc``) over a checks file.

    It pushes the file's checks with ``SetChecks`` at start, whenever the file changes
    (or SIGHUP, see ``reload``) and whenever its ``WatchStatus`` stream had to be opened
    anew (a server that went away and came back holds no checks), and takes every Status
    the stream brings as the engine takes a notification. While the server cannot be
    reached it logs once and tries again every ``GRPC_RETRY_S``.
    """

    def __init__(
        self,
        config_path: str,
        address: str,
        *,
        record_path: str | None = None,
        targets: Mapping[str, Endpoint] | None = None,
        on_notification: NotificationCallback | None = None,
        poll_interval: float = 1.0,
        allow_invalid: bool = False,
    ) -> None:
        super().__init__(
            config_path,
            record_path=record_path,
            targets=targets,
            on_notification=on_notification,
            poll_interval=poll_interval,
            allow_invalid=allow_invalid,
        )
        self.address = address
        self.pushes = 0  # SetChecks calls answered
        self.batches = 0  # StatusBatch messages received
        self.rejected: dict[int, str] = {}  # check id -> the server's reason, last push
        self._push_due = asyncio.Event()
        self._channel: Any = None  # grpc.aio.Channel, opened in start()
        self._stub: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    def calls(self) -> str:
        return _count(self.pushes, "push", "pushes")

    def reload(self) -> bool:
        """Re-read the checks file and, if it is good, push its checks."""
        ok = super().reload()
        if ok:
            self._push_due.set()
        return ok

    def request(self) -> Any:
        """The SetChecksRequest of the file's checks (those it cannot express are logged
        and left out)."""
        from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb

        checks = []
        for check_id, entry in self.checks.items():
            try:
                checks.append(_check_proto(entry.config))
            except (ValueError, TypeError) as e:
                log.error("check %d (%s) cannot be sent over gRPC: %s", check_id, entry.name, e)
        return pb.SetChecksRequest(checks=checks)

    async def start(self) -> None:
        """Load the checks (a bad file is fatal at start), then push and watch."""
        import grpc

        from seesaw_healthcheck.grpcapi import healthcheck_pb2_grpc as pb_grpc

        self._load_first()
        self._channel = grpc.aio.insecure_channel(
            self.address,
            options=[
                # A server started after us (the demo) is found within a fraction of a
                # second, not after gRPC's default backoff of up to two minutes.
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.min_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", int(GRPC_RETRY_S * 1000)),
                ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE),
                ("grpc.max_send_message_length", GRPC_MAX_MESSAGE),
            ],
        )
        self._stub = pb_grpc.HealthcheckStub(self._channel)
        self._push_due.set()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._push()),
            loop.create_task(self._follow()),
            loop.create_task(self._watch()),
        ]
        log.info("controlling the server's gRPC API at %s", self.address)

    async def _push(self) -> None:
        import grpc

        failing: str | None = None
        while True:
            await self._push_due.wait()
            self._push_due.clear()
            request = self.request()
            try:
                reply = await self._stub.SetChecks(
                    request, timeout=GRPC_CALL_TIMEOUT_S, wait_for_ready=True
                )
            except grpc.aio.AioRpcError as e:
                why = f"{e.code().name}: {e.details()}"
                if why != failing:
                    log.error("SetChecks to %s failed (%s); trying again", self.address, why)
                failing = why
                self._push_due.set()
                await asyncio.sleep(GRPC_RETRY_S)
                continue
            failing = None
            self.pushes += 1
            self.rejected = {error.id: error.reason for error in reply.errors}
            for error in reply.errors:
                name = self.name_of(error.id)
                log.warning("the server rejected check %d (%s): %s", error.id, name, error.reason)
            log.info(
                "pushed %d checks to %s (%d rejected)",
                len(request.checks),
                self.address,
                len(reply.errors),
            )

    async def _follow(self) -> None:
        """WatchStatus, opened again whenever it ends."""
        import grpc

        from seesaw_healthcheck.grpcapi import convert
        from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb

        failing: str | None = None
        while True:
            call = self._stub.WatchStatus(pb.WatchStatusRequest(), wait_for_ready=True)
            try:
                async for batch in call:
                    if failing is not None:
                        log.info("watching %s again", self.address)
                        failing = None
                    self.batches += 1
                    for status in batch.statuses:
                        self._receive_status(*convert.status_from_proto(status))
                why = "the server ended the stream"
            except grpc.aio.AioRpcError as e:
                why = f"{e.code().name}: {e.details()}"
            if why != failing:
                log.error("WatchStatus on %s: %s; watching again", self.address, why)
            failing = why
            self._push_due.set()  # a server that restarted has no checks
            await asyncio.sleep(GRPC_RETRY_S)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        self._close_record()


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _check_proto(config: model.Config) -> Any:
    """The API's Check of a config; one without a checker (``-allow_invalid``'s ``nil``)
    goes without one, for the server to reject."""
    from seesaw_healthcheck.grpcapi import convert
    from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb

    if config.checker is not None:
        return convert.check_to_proto(config)
    check = pb.Check(id=config.id, retries=config.retries)
    check.interval.FromNanoseconds(config.interval)
    check.timeout.FromNanoseconds(config.timeout)
    return check


def _rpc_error(message: str) -> Exception:
    from seesaw_healthcheck.rpc import RpcError

    return RpcError(message)


def record_json(r: Received) -> dict[str, Any]:
    """The JSON-lines record of one received notification."""
    st = r.status
    return {
        "received": _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds"),
        "id": r.id,
        "name": r.name,
        "old_state": str(r.old_state),
        "state": str(_state(st.state)),
        "message": st.message,
        "failures": st.failures,
        "successes": st.successes,
        "duration": format_duration(st.duration),
        "last_check": rfc3339(st.last_check),
    }


def rfc3339(t: GoTime) -> str:
    """RFC 3339 with nanoseconds, in the zone offset the time carries (Go's UTC location
    and offset 0 both as "Z"): ``2026-12-03T07:24:38.123456789+01:00``. An offset's
    seconds are dropped, as RFC 3339 has none (Go does the same). A year outside 1..9999,
    which RFC 3339 cannot write, gives ``str(t)``."""
    offset = t.offset or 0
    try:
        local = _GO_EPOCH + _dt.timedelta(seconds=t.sec + offset)
    except OverflowError:
        return str(t)
    zone = "Z"
    if offset:
        sign = "-" if offset < 0 else "+"
        hours, minutes = divmod(abs(offset) // 60, 60)
        zone = f"{sign}{hours:02d}:{minutes:02d}"
    date = f"{local.year:04d}-{local.month:02d}-{local.day:02d}"  # %Y gives "1", not "0001"
    return f"{date}T{local:%H:%M:%S}.{t.nsec:09d}{zone}"


_GO_EPOCH = _dt.datetime(1, 1, 1)  # second 0 of GoTime.sec


def _state(value: int) -> model.State | int:
    try:
        return model.State(value)
    except ValueError:
        return value


def _parse_args(argv: list[str] | None) -> dict[str, Any]:
    """Go-style flags (``-socket PATH``, ``-socket=PATH``, ``--socket PATH``)."""
    from seesaw_healthcheck.cli.goflags import FlagSet

    flags = FlagSet("seesaw-healthcheck-engine")
    flags.string("socket", DEFAULT_SOCKET, "Unix socket to serve")
    flags.string(
        "grpc",
        "",
        "Instead of serving -socket, push the checks to the gRPC API of a server at this "
        "address (unix:PATH or HOST:PORT; the server runs with -config_source grpc) and "
        "record the statuses it streams",
    )
    flags.string("config", "", "TOML file of checks (required; see examples/demo.toml)")
    flags.string(
        "record",
        "",
        "Append every notification (HealthState; with -grpc, every streamed Status) to this "
        "file as JSON lines",
    )
    flags.duration("poll", model.SECOND, "How often to look at the config file's mtime")
    flags.bool(
        "allow_invalid",
        False,
        "Serve checks that break a rule (interval 0, a bad IP, "
        "...) as written, to see what the server does with them",
    )
    flags.string("log_dir", "", "If non-empty, write glog-style log files in this directory")
    flags.bool("logtostderr", False, "log to standard error instead of files")
    flags.bool("alsologtostderr", False, "log to standard error as well as files")
    flags.int("v", 0, "log level for V logs")
    flags.string("stderrthreshold", "ERROR", "logs at or above this threshold go to stderr")
    values = flags.parse(sys.argv[1:] if argv is None else argv)
    if flags.args:
        flags.output.write(f"unexpected arguments: {' '.join(flags.args)}\n")
        flags.print_usage()
        sys.exit(2)
    problem = None
    if not values["config"]:
        problem = "-config is required"
    elif values["grpc"]:
        problem = _grpc_address_problem(str(values["grpc"]))
    if problem:
        flags.output.write(f"{problem}\n")
        flags.print_usage()
        sys.exit(2)
    return values


def _grpc_address_problem(address: str) -> str | None:
    """Why ``address`` is not ``unix:PATH`` or ``HOST:PORT``, or None."""
    if address.startswith("unix:"):
        return None if address.removeprefix("unix:") else "-grpc unix: needs a socket path"
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"-grpc {address!r} is not unix:PATH or HOST:PORT"
    return None


async def _control(args: dict[str, Any]) -> int:
    """``-grpc ADDR``: the controller, until SIGINT or SIGTERM."""
    controller = GrpcController(
        str(args["config"]),
        str(args["grpc"]),
        record_path=str(args["record"]) or None,
        poll_interval=max(0.05, int(args["poll"]) / model.SECOND),
        allow_invalid=bool(args["allow_invalid"]),
    )
    try:
        await controller.start()
    except ConfigError as e:
        log.error("%s", e)
        return 2
    except OSError as e:
        log.error("cannot open the record: %s", e)
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, controller.reload)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info(
            "shutting down: %d pushes, %d statuses received in %d batches",
            controller.pushes,
            controller.notifications,
            controller.batches,
        )
        await controller.close()
    return 0


async def _serve(args: dict[str, Any]) -> int:
    if args["grpc"]:
        return await _control(args)
    socket_path = str(args["socket"])
    engine = EngineEmulator(
        str(args["config"]),
        record_path=str(args["record"]) or None,
        poll_interval=max(0.05, int(args["poll"]) / model.SECOND),
        allow_invalid=bool(args["allow_invalid"]),
    )
    try:
        await engine.start(socket_path)
    except ConfigError as e:
        log.error("%s", e)
        return 2
    except OSError as e:
        log.error("cannot serve %s: %s", socket_path, e)
        return 1
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, engine.reload)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info(
            "shutting down: %d fetches, %d notifications received, %d calls refused",
            engine.fetches,
            engine.notifications,
            engine.refused,
        )
        await engine.close()  # the RPC server removes its socket
    return 0


def main(argv: list[str] | None = None) -> int:
    from seesaw_healthcheck.cli import glog

    args = _parse_args(argv)
    try:
        glog.setup(
            "seesaw_engine_emulator",
            str(args["log_dir"]) or None,
            bool(args["logtostderr"]),
            bool(args["alsologtostderr"]),
            int(args["v"]),
            str(args["stderrthreshold"]),
        )
    except (ValueError, OSError) as e:
        print(f"seesaw-healthcheck-engine: {e}", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    sys.exit(main())
