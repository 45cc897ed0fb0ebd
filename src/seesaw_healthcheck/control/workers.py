"""The check workers as the control process sees them: each a process started with
``python -m seesaw_healthcheck.worker``, its end of the channel, its shared table and the
allocation of that table's slots.

The shared table belongs to the control process and outlives the worker: a restarted
worker gets the same one, so its checks' numbers are where the dead worker left them.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from seesaw_healthcheck.channel import (
    APPLY,
    SLOT_SIZE,
    STOP,
    Add,
    Endpoint,
    SharedTable,
    config_to_wire,
    slot_offset,
)
from seesaw_healthcheck.model import Config
from seesaw_healthcheck.reactor import Reactor

__all__ = ["APPLY_CHUNK", "Launcher", "ProcessLike", "WorkerProcess", "spawn_worker", "worker_for"]

log = logging.getLogger(__name__)

# Adds per APPLY frame: a worker takes a few frames per loop turn, so a big delta is
# applied between checks instead of stalling them (1,000 adds unpickle in ~4 ms).
APPLY_CHUNK = 500
_SOCKET_BUFFER = 4 << 20


class ProcessLike(Protocol):
    """What the control process needs of a worker process (``subprocess.Popen`` has it)."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


# Starts worker ``index`` on its end of the channel and the shared table's fd; owns the
# channel socket from then on.
Launcher = Callable[[int, socket.socket, int, bool, int], ProcessLike]


def spawn_worker(
    index: int, channel: socket.socket, table_fd: int, dry_run: bool, log_level: int
) -> ProcessLike:
    """``python -m seesaw_healthcheck.worker`` with the two fds, a fresh interpreter that
    holds nothing of the control process's."""
    args = [
        sys.executable, "-m", "seesaw_healthcheck.worker",
        "--channel", str(channel.fileno()), "--table", str(table_fd),
        "--parent", str(os.getpid()), "--index", str(index), "--log-level", str(log_level),
    ]  # fmt: skip
    if dry_run:
        args.append("--dry-run")
    try:
        return subprocess.Popen(
            args, pass_fds=(channel.fileno(), table_fd), stdin=subprocess.DEVNULL
        )
    finally:
        channel.close()


def worker_for(check_id: int, workers: int) -> int:
    """The worker a check runs on: ids spread evenly whatever their pattern."""
    return (((check_id * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> 32) % workers


class WorkerProcess:
    """One worker: ``start()`` it, ``apply()`` deltas to it, ``stop()`` it.

    ``on_message(worker, message)`` gets what it sends; ``on_exit(worker, why)`` is called
    once its channel closes (it died, or was stopped) after the process is reaped.
    """

    def __init__(
        self,
        reactor: Reactor,
        index: int,
        *,
        on_message: Callable[[WorkerProcess, tuple[Any, ...]], object],
        on_exit: Callable[[WorkerProcess, str], object],
        dry_run: bool = False,
        log_level: int = logging.INFO,
        launch: Launcher = spawn_worker,
    ) -> None:
        self.reactor = reactor
        self._launch = launch
        self.index = index
        self.shared = SharedTable.create(f"seesaw-healthcheck-worker-{index}")
        self._on_message = on_message
        self._on_exit = on_exit
        self._dry_run = dry_run
        self._log_level = log_level
        self._free: list[int] = []
        self._next_slot = 0
        self.proc: ProcessLike | None = None
        self._sock: socket.socket | None = None
        self._endpoint: Endpoint | None = None
        self.seq = 0  # of the last APPLY sent
        self.applied = 0  # the last APPLY it said it applied
        self.started_at = 0.0  # reactor clock
        self.starts = 0
        self.stopping = False
        self.recycling = False  # asked to exit, to start afresh (see Control._recycle)
        self.peak_checks = 0  # the most checks it ran since it started

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        return self._endpoint is not None and not self._endpoint.closed

    # -- slots --------------------------------------------------------------------------

    def alloc_slot(self) -> int:
        """The lowest free slot (live slots stay packed at the start of the table)."""
        if self._free:
            return heapq.heappop(self._free)
        slot = self._next_slot
        self._next_slot += 1
        return slot

    def free_slot(self, slot: int) -> None:
        heapq.heappush(self._free, slot)
        if len(self._free) == self._next_slot:  # none in use: give the memory back
            self._free.clear()
            self._next_slot = 0
            self.shared.release(0)

    def trim_slots(self, in_use: Iterable[int]) -> None:
        """Forget the free slots above the highest one in use and give their memory back
        (after a big shrink: the free list would hold a number per check removed)."""
        used = set(in_use)
        self._next_slot = max(used, default=-1) + 1
        self._free = [slot for slot in range(self._next_slot) if slot not in used]
        heapq.heapify(self._free)
        self.shared.release(self._next_slot)

    def pack_slots(self, in_use: list[int]) -> list[int]:
        """Between two processes only (nothing writes the table): move the slots in use,
        ascending, to 0, 1, 2, ... with their contents; their new numbers, in order.

        After a big shrink the checks left hold slots anywhere below the peak; the free
        list would keep an int per removed check, and those ints, spread over every
        memory arena the peak used, would keep the arenas (80 MiB at 100,000 checks)."""
        buffer = self.shared.buffer
        for new, old in enumerate(in_use):
            if new != old:  # new < old: a slot is read before anything is written over it
                start, to = slot_offset(old), slot_offset(new)
                buffer[to : to + SLOT_SIZE] = buffer[start : start + SLOT_SIZE]
        self._free = []
        self._next_slot = len(in_use)
        self.shared.release(self._next_slot)
        return list(range(len(in_use)))

    # -- the process --------------------------------------------------------------------

    def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for sock in (ours, theirs):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        self.proc = self._launch(self.index, theirs, self.shared.fd, self._dry_run, self._log_level)
        self._sock = ours
        self._endpoint = Endpoint(
            self.reactor, ours, lambda message: self._on_message(self, message), self._closed
        )
        self.started_at = self.reactor.time()
        self.starts += 1
        self.stopping = False
        self.recycling = False
        self.peak_checks = 0
        log.info("Started check worker %d (pid %d)", self.index, self.proc.pid)

    def apply(
        self,
        adds: list[Add],
        updates: list[Config],
        removes: list[int],
        requested_at: float,
    ) -> int:
        """Send a delta (in chunks); returns the seq its last chunk will be acknowledged
        with (``APPLIED``)."""
        endpoint = self._endpoint
        if endpoint is None or endpoint.closed:
            return self.seq  # it is being restarted: the restart sends it everything
        # Removals first (they free slots the adds may take), then updates, then adds;
        # at most APPLY_CHUNK items a frame, so each frame is a short piece of work.
        for at in range(0, len(removes), APPLY_CHUNK):
            self.seq += 1
            endpoint.send((APPLY, self.seq, requested_at, [], [], removes[at : at + APPLY_CHUNK]))
        for at in range(0, len(updates), APPLY_CHUNK):
            self.seq += 1
            wired = [config_to_wire(config) for config in updates[at : at + APPLY_CHUNK]]
            endpoint.send((APPLY, self.seq, requested_at, [], wired, []))
        for at in range(0, len(adds), APPLY_CHUNK):
            self.seq += 1
            chunk = [
                (slot, share, config_to_wire(config), resume)
                for slot, share, config, resume in adds[at : at + APPLY_CHUNK]
            ]
            endpoint.send((APPLY, self.seq, requested_at, chunk, [], []))
        return self.seq

    def _closed(self) -> None:
        proc = self.proc
        why = "stopped"
        if proc is not None:
            try:
                code = proc.wait(1.0)
            except subprocess.TimeoutExpired:  # it closed its channel but lives on
                proc.kill()
                code = proc.wait()
            why = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._on_exit(self, why)

    def stop(self, timeout: float = 0.5, wait: bool = True) -> None:
        """Close the channel (the worker stops on its end of file); kill it if it has not
        exited within ``timeout`` (without ``wait``: only close the channel)."""
        self.stopping = True
        if self._endpoint is not None:
            self._endpoint.close()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc = self.proc
        if wait and proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def recycle(self) -> None:
        """Ask it to send what it has and exit; its end of file then reports it, and the
        control process starts it afresh (a new process gives back all its memory)."""
        if self._endpoint is not None and not self._endpoint.closed:
            self.recycling = True
            self._endpoint.send((STOP,))

    def kill(self) -> None:
        """SIGKILL (a hung worker); its channel's end of file then reports it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def close(self) -> None:
        self.stop()
        self.shared.close()
