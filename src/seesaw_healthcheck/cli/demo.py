"""``make demo``: local targets, the engine emulator and the real server, end to end.

Starts the ``[[demo.target]]`` services of the TOML file on 127.0.0.1, serves the file's
checks from an in-process engine emulator on a Unix socket in a temporary directory, runs
``seesaw-healthcheck`` against it as a subprocess, and prints every state change as the
engine receives it plus a table of all checks every few seconds. Ctrl-C (or
``--duration``) stops everything and removes the temporary directory and socket.

With ``--grpc`` the server runs with ``-config_source grpc`` instead, and the emulator's
gRPC controller (``cli.engine.GrpcController``) pushes it the checks with SetChecks and
watches what it streams. The server serves its status page on ``--http-addr`` (default
``127.0.0.1:10258``).

Usage: ``python -m seesaw_healthcheck.cli.demo [--duration SECONDS] [--grpc]
[--http-addr HOST:PORT] examples/demo.toml``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import tomllib
from typing import Any, TextIO

from seesaw_healthcheck import model
from seesaw_healthcheck.checkfile import ConfigError
from seesaw_healthcheck.cli.engine import CheckFile, EngineEmulator, GrpcController, Received
from seesaw_healthcheck.control.config import DEFAULT_HTTP_ADDR
from seesaw_healthcheck.demo_targets import DemoTarget, TargetError, start_target
from seesaw_healthcheck.goduration import format_duration, parse_duration

log = logging.getLogger("seesaw_healthcheck.demo")

DEMO_KEYS = {"fetch_interval", "notify_interval", "table_every", "target"}


class DemoError(Exception):
    """The demo cannot start; the message says why."""


def _clock() -> str:
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


def _state_name(value: int) -> str:
    try:
        return str(model.State(value))
    except ValueError:
        return f"State({value})"


def _demo_settings(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise DemoError(f"cannot read {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise DemoError(f"{path}: not valid TOML: {e}") from None
    demo = doc.get("demo", {})
    if not isinstance(demo, dict):
        raise DemoError(f"{path}: demo must be a table")
    unknown = set(demo) - DEMO_KEYS
    if unknown:
        raise DemoError(f"{path}: unknown [demo] key(s): {', '.join(sorted(unknown))}")
    settings: dict[str, Any] = {}
    for key, default in (
        ("fetch_interval", "2s"),
        ("notify_interval", "5s"),
        ("table_every", "5s"),
    ):
        text = demo.get(key, default)
        try:
            ns = parse_duration(text) if isinstance(text, str) else -1
        except ValueError as e:
            raise DemoError(f"{path}: [demo] {key}: {e}") from None
        if ns <= 0:
            raise DemoError(f'{path}: [demo] {key} must be a positive Go duration like "5s"')
        settings[key] = ns
    targets = demo.get("target", [])
    if not isinstance(targets, list):
        raise DemoError(f"{path}: demo.target must be an array of tables: [[demo.target]]")
    settings["targets"] = targets
    return settings


class Printer:
    """Prints state changes as they arrive and the periodic table."""

    def __init__(self, engine: CheckFile, out: TextIO) -> None:
        self.engine = engine
        self.out = out
        self.changes = 0

    def _width(self) -> int:
        return max([len(e.name) for e in self.engine.checks.values()] + [12])

    def on_notification(self, r: Received) -> None:
        if r.status.state == r.old_state:
            return  # a periodic re-notification: not a change
        self.changes += 1
        old, new = _state_name(r.old_state), _state_name(r.status.state)
        print(
            f"{_clock()}  {r.name:<{self._width()}}  {old:>9} -> {new:<9}  {r.status.message}",
            file=self.out,
            flush=True,
        )

    def table(self) -> None:
        engine = self.engine
        counts = {state: 0 for state in model.State}
        rows = []
        for check_id, entry in sorted(engine.checks.items(), key=lambda kv: kv[1].name):
            status = engine.statuses.get(check_id)
            state = model.State(status.state) if status else model.State.UNKNOWN
            counts[state] = counts.get(state, 0) + 1
            rows.append(
                (
                    entry.name,
                    entry.type,
                    str(state),
                    str(status.failures) if status else "-",
                    str(status.successes) if status else "-",
                    format_duration(status.duration) if status else "-",
                    status.message if status else "(no notification yet)",
                )
            )
        width = self._width()
        lines = [
            f"-- {_clock()}  {len(rows)} checks: {counts[model.State.HEALTHY]} healthy, "
            f"{counts[model.State.UNHEALTHY]} unhealthy, {counts[model.State.UNKNOWN]} unknown"
            f"  ({engine.calls()}, {engine.notifications} notifications) --",
            f"   {'CHECK':<{width}}  {'TYPE':<7} {'STATE':<9} {'FAIL':>4} {'OK':>4} "
            f"{'TOOK':>10}  MESSAGE",
        ]
        for name, kind, state_text, fails, oks, took, message in rows:
            if len(message) > 70:
                message = message[:67] + "..."
            lines.append(
                f"   {name:<{width}}  {kind:<7} {state_text:<9} {fails:>4} {oks:>4} "
                f"{took:>10}  {message}"
            )
        print("\n".join(lines), file=self.out, flush=True)


async def _stop_process(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout=5.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _tail(path: str, lines: int = 20) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


async def run_demo(
    config_path: str,
    duration: float | None,
    out: TextIO,
    grpc: bool = False,
    http_addr: str = DEFAULT_HTTP_ADDR,
) -> int:
    """Run the demo until Ctrl-C/SIGTERM or ``duration`` seconds; the exit status. With
    ``grpc`` the server takes its checks over its gRPC API from ``GrpcController``.
    ``http_addr``: the server's ``-http_addr`` (status page, /status, /metrics; "": off)."""
    settings = _demo_settings(config_path)
    tmp = tempfile.mkdtemp(prefix="seesaw-demo-")
    socket_path = os.path.join(tmp, "engine.sock")
    server_log = os.path.join(tmp, "seesaw_healthcheck.log")
    targets: list[DemoTarget] = []
    engine: EngineEmulator | GrpcController | None = None
    proc: asyncio.subprocess.Process | None = None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    status = 0
    try:
        for i, spec in enumerate(settings["targets"]):
            targets.append(start_target(spec, f"{config_path}: demo.target #{i + 1}"))
        endpoints = {t.name: (t.ip, t.port) for t in targets}
        if len(endpoints) != len(targets):
            raise DemoError(f"{config_path}: two [[demo.target]] tables share a name")
        notify = ["-notify_interval", format_duration(settings["notify_interval"])]
        if grpc:
            # The controller first: it pushes its checks once the server listens.
            address = f"unix:{os.path.join(tmp, 'grpc.sock')}"
            engine = GrpcController(config_path, address, targets=endpoints)
            source = ["-config_source", "grpc", "-grpc_listen", address]
            flags = [*source, *notify]
            peer = "controller"
        else:
            engine = EngineEmulator(config_path, targets=endpoints)
            source = ["-engine", socket_path]
            flags = [*source, "-fetch_interval", format_duration(settings["fetch_interval"])]
            flags += notify
            peer = "engine"
        printer = Printer(engine, out)
        engine.on_notification = printer.on_notification
        if isinstance(engine, GrpcController):
            await engine.start()
        else:
            await engine.start(socket_path)

        print(f"seesaw-healthcheck demo: {len(engine.checks)} checks from {config_path}", file=out)
        for t in targets:
            print(f"  target {t.name:<10} {t.kind:<8} {t.ip}:{t.port:<5}  {t.detail}", file=out)
        command = [
            sys.executable, "-m", "seesaw_healthcheck.cli.healthcheck", *flags,
            "-http_addr", http_addr,
        ]  # fmt: skip
        with open(server_log, "wb") as log_file:
            # Its own session: a terminal's Ctrl-C reaches the demo only, which then
            # stops the server itself (and does not mistake its exit for a crash).
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
        print(f"  server seesaw-healthcheck {' '.join(source)} (pid {proc.pid})", file=out)
        if http_addr:
            print(
                f"  status page http://{http_addr}/  (seesaw-healthcheck-status "
                f"--url http://{http_addr} in a terminal)",
                file=out,
            )
        print(f"Ctrl-C to stop. State changes as the {peer} receives them:\n", file=out, flush=True)

        started = loop.time()
        table_every = settings["table_every"] / 1e9
        next_table = started + table_every
        end = None if duration is None else started + duration
        waiter = asyncio.ensure_future(proc.wait())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                wake = next_table if end is None else min(next_table, end)
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=max(0.0, wake - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stop.is_set():
                    break
                if waiter.done():
                    print(
                        f"\nthe server exited with status {proc.returncode}; its log:\n"
                        f"{_tail(server_log)}",
                        file=out,
                        flush=True,
                    )
                    status = 1
                    break
                now = loop.time()
                if now >= next_table:
                    printer.table()
                    next_table += table_every
                if end is not None and now >= end:
                    break
        finally:
            waiter.cancel()
            stopper.cancel()
        print(
            f"\nstopping: {printer.changes} state changes, {engine.notifications} "
            f"notifications, {engine.calls()}",
            file=out,
            flush=True,
        )
    except (DemoError, TargetError, ConfigError) as e:
        print(f"demo: {e}", file=sys.stderr)
        status = 2
    except OSError as e:
        print(f"demo: {e}", file=sys.stderr)
        status = 1
    finally:
        if isinstance(engine, GrpcController):
            await engine.close()  # before the server goes: no stream to mourn
        if proc is not None:
            await _stop_process(proc)
        if engine is not None:
            await engine.close()
        for t in targets:
            t.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        shutil.rmtree(tmp, ignore_errors=True)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m seesaw_healthcheck.cli.demo",
        description="Run seesaw-healthcheck against local targets and an engine emulator.",
    )
    parser.add_argument(
        "config",
        nargs="?",
        default="examples/demo.toml",
        help="checks and demo targets (default %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--http-addr",
        default=DEFAULT_HTTP_ADDR,
        metavar="HOST:PORT",
        help='the server\'s status page and endpoints (default %(default)s; "": none)',
    )
    parser.add_argument(
        "--grpc",
        action="store_true",
        help="hand the checks to the server over its gRPC API (-config_source grpc) "
        "instead of the Seesaw engine's gob socket",
    )
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    from seesaw_healthcheck.cli import glog

    # The demo's own log (engine emulator: reloads, refused calls) goes to stderr.
    glog.setup("seesaw_demo", logtostderr=True)
    logging.getLogger().setLevel(logging.WARNING)
    try:
        return asyncio.run(
            run_demo(args.config, args.duration, sys.stdout, args.grpc, args.http_addr)
        )
    except DemoError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
