"""A check worker: a reactor that only runs checks.

It takes deltas from the control process (``channel.APPLY``), runs its checks on their
schedule, writes every result's numbers into its slot of the shared table, and reports
transitions and message changes (``channel.REPORTS``) once per loop turn. It never forks
and holds nothing but its checks' sockets, its channel and its table.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from seesaw_healthcheck import checkers
from seesaw_healthcheck.channel import (
    APPLIED,
    APPLY,
    LOG,
    REPORTS,
    SLOT,
    STOP,
    Add,
    Endpoint,
    Header,
    SharedTable,
    config_from_wire,
    slot_offset,
)
from seesaw_healthcheck.memory import SHRINK_RELEASE, release
from seesaw_healthcheck.model import Config
from seesaw_healthcheck.reactor import Reactor, Timer
from seesaw_healthcheck.worker.schedule import RunCheck, Schedule, ScheduledCheck, TimeoutFor

__all__ = ["HEARTBEAT_S", "Worker"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 0.25  # how often the header (counters, heartbeat) is rewritten


class Worker:
    """Wires a schedule to the channel and the shared table on ``reactor``."""

    def __init__(
        self,
        reactor: Reactor,
        channel: socket.socket,
        table: SharedTable,
        *,
        dry_run: bool = False,
        run_check: RunCheck = checkers.run,
        timeout_for: TimeoutFor = checkers.timeout_for,
        on_closed: Callable[[], object] | None = None,
    ) -> None:
        self.reactor = reactor
        self.table = table
        # A restarted worker's table still holds the dead one's counters: count on from them.
        self.stats = Header.unpack_from(table.buffer)
        self.stats.carry_on()
        self.schedule = Schedule(
            reactor,
            run_check=run_check,
            timeout_for=timeout_for,
            on_result=self._on_result,
            dry_run=dry_run,
            stats=self.stats,
        )
        self._buffer = table.buffer
        self._reports: list[tuple[Any, ...]] = []
        self._logs: list[tuple[int, str, str]] = []
        self._flush_timer: Timer | None = None
        self._beat_timer: Timer | None = None
        self._removed = 0  # checks removed since memory was last given back
        self._release_timer: Timer | None = None
        self._on_closed = on_closed if on_closed is not None else reactor.stop
        self.debug = log.isEnabledFor(logging.DEBUG)  # a line per result (-v 1)
        self.endpoint = Endpoint(reactor, channel, self._on_message, self._closed)
        self._beat()

    # -- from the control process ------------------------------------------------------

    def _on_message(self, message: tuple[Any, ...]) -> None:
        if message[0] == APPLY:
            _, seq, requested_at, wired_adds, wired_updates, removes = message
            adds = [
                (slot, share, config_from_wire(wire), resume)
                for slot, share, wire, resume in wired_adds
            ]
            updates = [config_from_wire(wire) for wire in wired_updates]
            self.apply(adds, updates, removes, requested_at)
            self.endpoint.send((APPLIED, seq, len(self.schedule.checks)))
        elif message[0] == STOP:
            self._on_closed()
        else:
            log.error("unknown message from the control process: %r", message[:1])

    def apply(
        self,
        adds: list[Add],
        updates: list[Config],
        removes: list[int],
        requested_at: float | None = None,
    ) -> None:
        schedule = self.schedule
        for check_id in removes:
            schedule.remove(check_id)
        if removes:
            self._removed += len(removes)
            if self._release_timer is not None:
                self._release_timer.cancel()
            # A delta comes in chunks of 500: give memory back once, a second after its
            # last chunk (a full collection per chunk took 40 s for 100,000 removals).
            self._release_timer = self.reactor.call_later(1.0, self._release)
        for config in updates:
            schedule.update(config)
        if adds:
            schedule.add(adds, requested_at)
        self.stats.applied += 1

    def _release(self) -> None:
        self._release_timer = None
        if self._removed >= SHRINK_RELEASE:
            self._removed = 0
            release()

    def _closed(self) -> None:
        # The control process is gone (or closed the channel to stop us): stop checking.
        self._on_closed()

    # -- results -----------------------------------------------------------------------

    def _on_result(self, check: ScheduledCheck, changed: bool) -> None:
        SLOT.pack_into(
            self._buffer,
            slot_offset(check.slot),
            check.id,
            check.last_start_unix_ns,
            check.last_duration_ns,
            check.failures,
            check.successes,
            check.consecutive_failures,
            check.state,
            1,  # fresh
        )
        message = check.last_message
        if self.debug and not changed:
            verdict = "SUCCESS" if check.consecutive_failures == 0 else "FAILURE"
            log.debug(
                "%d: (%s) %s: %s", check.id, checkers.describe(check.checker), verdict, message
            )
        if changed or message != check.reported_message:
            check.reported_message = message
            self._reports.append(
                (
                    check.id,
                    check.state,
                    message,
                    check.last_start_unix_ns,
                    check.last_duration_ns,
                    check.failures,
                    check.successes,
                    changed,
                )
            )
            self._flush_soon()

    def log_record(self, levelno: int, name: str, text: str) -> None:
        """Queue a log line for the control process (the worker keeps no log files)."""
        self._logs.append((levelno, name, text))
        self._flush_soon()

    def _flush_soon(self) -> None:
        if self._flush_timer is None:
            # Due now: runs after this turn's events, so one frame carries the whole turn.
            self._flush_timer = self.reactor.call_at(self.reactor.time(), self.flush)

    def flush(self) -> None:
        """Send what is queued for the control process now."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush_timer = None
        if self._reports:
            reports, self._reports = self._reports, []
            self.endpoint.send((REPORTS, reports))
        if self._logs:
            logs, self._logs = self._logs, []
            for levelno, name, text in logs:
                self.endpoint.send((LOG, levelno, name, text))

    def _beat(self) -> None:
        stats = self.stats
        stats.heartbeat = self.reactor.time()
        stats.pack_into(self._buffer)
        self._beat_timer = self.reactor.call_later(HEARTBEAT_S, self._beat)

    def close(self) -> None:
        self.flush()
        self.schedule.stop_all()
        self.endpoint.close()
        if self._beat_timer is not None:
            self._beat_timer.cancel()


class ChannelLogHandler(logging.Handler):
    """Sends the worker's log records to the control process, which logs them."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self.worker.log_record(record.levelno, record.name, text)
        except Exception:
            self.handleError(record)
