"""The channel between the control process and its check workers: the one definition
both sides import (the worker never imports the control process, nor the other way round).

Two parts, chosen for cost (see ARCHITECTURE.md):

- **Messages** on a stream socket pair: frames of a 4-byte little-endian length and a
  pickled tuple whose first item is its kind. The control process sends check deltas
  (``APPLY``: adds with a slot and, for a restarted worker, the state to resume from;
  updates; removals); a worker sends what must not be lost or late: state transitions and
  message changes (``REPORTS``), log records (``LOG``), and when it applied a delta
  (``APPLIED``). Frames are only what changes, so a steady worker writes one small frame
  per loop turn with a transition in it, and none otherwise.
- **A shared table** (a memfd per worker, mapped by both): a header with the worker's
  counters, histograms and heartbeat, rewritten by the worker a few times a second, then
  one fixed-size slot per check holding the numbers of its latest result, written by the
  worker after every run (one ``struct.pack_into``) and read by the control process only
  when it needs them (status pages, metrics, the periodic re-notify). The mapping is
  sparse: untouched slots cost no memory. The control process keeps the memfd, so a
  restarted worker finds its checks' numbers where the dead one left them.
"""

from __future__ import annotations

import dataclasses
import math
import mmap
import os
import pickle
import socket
import struct
from collections.abc import Callable
from typing import Any, ClassVar, Final

from seesaw_healthcheck import model
from seesaw_healthcheck.reactor import Reactor, Task, writable

__all__ = [
    "APPLIED",
    "APPLY",
    "CHECKER_KINDS",
    "DURATION_BOUNDS",
    "HEADER",
    "LATENESS_BOUNDS",
    "LOG",
    "REPORTS",
    "SLOT",
    "SLOT_SIZE",
    "STOP",
    "Add",
    "Endpoint",
    "FrameReader",
    "Header",
    "Resume",
    "SharedTable",
    "WireConfig",
    "config_from_wire",
    "config_to_wire",
    "frame",
    "slot_offset",
]

# --- messages ----------------------------------------------------------------------------

# control -> worker
APPLY = 1  # (APPLY, seq, requested_at, adds, updates, removes); see Worker.apply
STOP = 2  # (STOP,): send what is queued and exit (the control process restarts it)
# worker -> control
REPORTS: Final = 10  # (REPORTS, [(id, state, message, start_unix_ns, duration_ns, failures,
#                          successes, transition), ...])
LOG = 11  # (LOG, levelno, logger name, text)
APPLIED = 12  # (APPLIED, seq, checks running)

# Where a check resumes in a (re)started worker: state, consecutive failures, failures,
# successes, last start (Unix ns), last duration (ns), last message.
Resume = tuple[int, int, int, int, int, int, str]
# An APPLY's add: slot, share (its place in the first round, [0, 1)), config, resume;
# on the wire the config is a WireConfig, and so are the updates.
Add = tuple[int, float, model.Config, Resume | None]

# A Config as the channel carries it: plain tuples (pickled in C, ~10x cheaper than the
# dataclasses): id, interval, timeout, retries, checker kind, target
# (ip, host, mark, mode, port, proto), the checker's other fields in declaration order.
WireConfig = tuple[int, int, int, int, int, tuple[Any, ...], tuple[Any, ...]]

_WIRE_CLASSES: tuple[type, ...] = tuple(model.CHECKER_KINDS)
_WIRE_INDEX = {cls: index for index, cls in enumerate(_WIRE_CLASSES)}
_WIRE_FIELDS = {
    cls: tuple(f.name for f in dataclasses.fields(cls) if f.name != "target")
    for cls in _WIRE_CLASSES
}


def config_to_wire(config: model.Config) -> WireConfig:
    """A runnable config (``model.config_problem`` said None) as plain tuples."""
    checker = config.checker
    kind = type(checker)
    t = checker.target  # type: ignore[union-attr]
    values = tuple(getattr(checker, name) for name in _WIRE_FIELDS[kind])
    if kind is model.DNSChecker:
        q = values[0]
        values = ((q.name, q.qtype, q.qclass), *values[1:])
    target = (bytes(t.ip), bytes(t.host), t.mark, t.mode, t.port, t.proto)
    return (config.id, config.interval, config.timeout, config.retries, _WIRE_INDEX[kind],
            target, values)  # fmt: skip


def config_from_wire(wire: WireConfig) -> model.Config:
    check_id, interval, timeout, retries, kind_index, target, values = wire
    kind = _WIRE_CLASSES[kind_index]
    if kind is model.DNSChecker:
        values = (model.DNSQuestion(*values[0]), *values[1:])
    checker = kind(model.Target(*target), *values)
    return model.Config(check_id, interval, timeout, retries, checker)


_LENGTH = struct.Struct("<I")
MAX_FRAME = 1 << 30  # a whole 100,000-check first delta is ~30 MB


def frame(message: tuple[Any, ...]) -> bytes:
    """One message as the bytes to write."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(body) > MAX_FRAME:
        raise ValueError(f"channel message of {len(body)} bytes is too big")
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Sans-IO: bytes in (``feed``), messages out (``next``)."""

    __slots__ = ("_buffer", "_start")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._start = 0

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def pending(self) -> int:
        """Bytes fed but not yet taken as messages."""
        return len(self._buffer) - self._start

    def next(self) -> tuple[Any, ...] | None:
        """The next complete message, or None until more bytes are fed."""
        buffer = self._buffer
        start = self._start
        if len(buffer) - start < 4:
            return None
        (size,) = _LENGTH.unpack_from(buffer, start)
        if size > MAX_FRAME:
            raise ValueError(f"channel frame of {size} bytes is too big")
        end = start + 4 + size
        if len(buffer) < end:
            return None
        with memoryview(buffer) as view:
            message: tuple[Any, ...] = pickle.loads(view[start + 4 : end])
        if end == len(buffer):
            buffer.clear()
            self._start = 0
        elif end > 1 << 20:  # drop what was read, now and then, not per message
            del buffer[:end]
            self._start = 0
        else:
            self._start = end
        return message


# --- the shared table --------------------------------------------------------------------

# One check's latest result: id (to tell a reused slot from its old check), LastCheck as
# Unix ns, Duration ns, failures, successes, consecutive failures, state, and "fresh": 1
# as the worker writes it; /status's renderer clears it once it has read the slot.
SLOT: Final = struct.Struct("<QqqQQIBB")
SLOT_SIZE: Final = 64
FRESH_OFFSET: Final = SLOT.size - 1
MAX_SLOTS = 1 << 22  # per worker; the mapping is sparse, so this costs address space only

# The checker types, in the order of the per-type counters.
CHECKER_KINDS: tuple[str, ...] = tuple(model.CHECKER_KINDS.values())

# Lateness of a run against its scheduled slot, seconds: 1 µs to ~100 s in steps of ~12%.
LATENESS_BOUNDS: Final[tuple[float, ...]] = tuple(1e-6 * 1.122**k for k in range(164))
# Check durations, seconds (Prometheus-style buckets, 100 µs to 30 s).
DURATION_BOUNDS: Final[tuple[float, ...]] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

_KINDS = len(CHECKER_KINDS)
_DURATION_BUCKETS = len(DURATION_BOUNDS) + 1
_LATENESS_BUCKETS = len(LATENESS_BOUNDS) + 1
_HEADER_FIXED = "dQQQQQQQQddddQ"  # see Header.FIELDS
HEADER = struct.Struct(
    "<"
    + _HEADER_FIXED
    + f"{_LATENESS_BUCKETS}Q"  # lateness histogram
    + f"{2 * _KINDS}Q"  # results per kind: successes, failures
    + f"{_KINDS * _DURATION_BUCKETS}Q"  # duration histogram per kind
    + f"{_KINDS}d"  # duration sum per kind
)
HEADER_SIZE: Final = 8192
assert HEADER.size <= HEADER_SIZE


def slot_offset(slot: int) -> int:
    return HEADER_SIZE + slot * SLOT_SIZE


class Header:
    """A worker's counters, as the header of its table holds them."""

    FIELDS: ClassVar[tuple[str, ...]] = (
        "heartbeat",  # the worker's clock when it last wrote the header (its loop turns)
        "pid",
        "checks",  # checks it runs
        "ran_once",  # of those, how many ran since it got them
        "checks_run",
        "transitions",
        "skipped_busy",  # slots skipped because the previous run was still going
        "skipped_late",  # slots skipped because the loop was behind
        "applied",  # deltas applied
        "first_config_at",  # reactor clock: the first fetch's request time it was given
        "all_ran_at",  # reactor clock: every check it runs had run once
        "max_lateness",
        "lateness_sum",
        "generation",  # bumped with every write
    )
    __slots__ = (*FIELDS, "durations", "duration_sums", "lateness", "results")

    def __init__(self) -> None:
        self.heartbeat = 0.0
        self.pid = 0
        self.checks = 0
        self.ran_once = 0
        self.checks_run = 0
        self.transitions = 0
        self.skipped_busy = 0
        self.skipped_late = 0
        self.applied = 0
        self.first_config_at = 0.0
        self.all_ran_at = 0.0
        self.max_lateness = 0.0
        self.lateness_sum = 0.0
        self.generation = 0
        self.lateness = [0] * _LATENESS_BUCKETS
        self.results = [0] * (2 * _KINDS)  # [kind*2] successes, [kind*2+1] failures
        self.durations = [0] * (_KINDS * _DURATION_BUCKETS)
        self.duration_sums = [0.0] * _KINDS

    def pack_into(self, buffer: Any) -> None:
        self.generation += 1
        HEADER.pack_into(
            buffer,
            0,
            *(getattr(self, name) for name in self.FIELDS),
            *self.lateness,
            *self.results,
            *self.durations,
            *self.duration_sums,
        )

    def carry_on(self) -> None:
        """For a restarted worker: keep the running totals (results, durations, lateness,
        runs), drop what described the dead worker's checks."""
        self.pid = os.getpid()
        self.checks = self.ran_once = 0
        self.first_config_at = self.all_ran_at = 0.0

    @classmethod
    def unpack_from(cls, buffer: Any) -> Header:
        values = HEADER.unpack_from(buffer, 0)
        header = cls()
        fixed = len(cls.FIELDS)
        for name, value in zip(cls.FIELDS, values[:fixed], strict=True):
            setattr(header, name, value)
        at = fixed
        header.lateness = list(values[at : at + _LATENESS_BUCKETS])
        at += _LATENESS_BUCKETS
        header.results = list(values[at : at + 2 * _KINDS])
        at += 2 * _KINDS
        header.durations = list(values[at : at + _KINDS * _DURATION_BUCKETS])
        at += _KINDS * _DURATION_BUCKETS
        header.duration_sums = list(values[at : at + _KINDS])
        return header


class SharedTable:
    """One worker's table: a sparse memfd mapping (header, then ``MAX_SLOTS`` slots).

    The control process creates it (``create``) and keeps it across worker restarts; the
    worker maps the fd it was given (``SharedTable(fd)``).
    """

    __slots__ = ("buffer", "fd", "size")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.size = HEADER_SIZE + MAX_SLOTS * SLOT_SIZE
        self.buffer = mmap.mmap(fd, self.size)

    @classmethod
    def create(cls, name: str) -> SharedTable:
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
        os.ftruncate(fd, HEADER_SIZE + MAX_SLOTS * SLOT_SIZE)
        return cls(fd)

    def read_slot(self, slot: int) -> tuple[int, int, int, int, int, int, int, int]:
        """(id, start_unix_ns, duration_ns, failures, successes, consecutive failures,
        state, fresh), read until two reads agree (the worker may be writing)."""
        offset = slot_offset(slot)
        buffer = self.buffer
        first = SLOT.unpack_from(buffer, offset)
        while True:
            again = SLOT.unpack_from(buffer, offset)
            if again == first:
                return again
            first = again

    def header(self) -> Header:
        return Header.unpack_from(self.buffer)

    def release(self, first_slot: int) -> None:
        """Give the memory of slots ``first_slot`` and above back (whole pages only)."""
        start = slot_offset(first_slot)
        start += -start % mmap.PAGESIZE
        if start < self.size:
            self.buffer.madvise(mmap.MADV_REMOVE, start, self.size - start)

    def close(self) -> None:
        self.buffer.close()
        os.close(self.fd)


# --- an end of the channel on a reactor --------------------------------------------------

_RECV_SIZE = 1 << 20
_READ_AHEAD = 8 << 20  # stop reading while this much waits to be handled


class Endpoint:
    """One end of the message socket, on a reactor: ``send`` queues a message (written at
    once when the socket takes it, else by a writer task), and every message that arrives
    goes to ``on_message``, at most ``per_turn`` per loop turn (a big delta must not stall
    the checks). ``on_closed`` is called once when the other end is gone.
    """

    def __init__(
        self,
        reactor: Reactor,
        sock: socket.socket,
        on_message: Callable[[tuple[Any, ...]], object],
        on_closed: Callable[[], object],
        per_turn: int = 4,
    ) -> None:
        self._reactor = reactor
        self._sock = sock
        self._on_message = on_message
        self._on_closed = on_closed
        self._per_turn = per_turn
        self._reader = FrameReader()
        self._out = bytearray()
        self._writer: Task | None = None
        self._reading = False
        self._dispatch_due = False
        self.closed = False
        sock.setblocking(False)
        self._start_reading()

    def _start_reading(self) -> None:
        if not self._reading and not self.closed:
            self._reading = True
            self._reactor.add_reader(self._sock, self._readable)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._reactor.remove_reader(self._sock)

    def send(self, message: tuple[Any, ...]) -> None:
        if self.closed:
            return
        self._out += frame(message)
        if self._writer is None:
            self._write_some()
            if self._out and not self.closed:
                self._writer = self._reactor.spawn(self._write_rest(), None, self._written)

    def _write_some(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except BlockingIOError:
            return
        except OSError:
            self._close()
            return
        del self._out[:sent]

    async def _write_rest(self) -> None:
        while self._out and not self.closed:
            await writable(self._sock)
            self._write_some()

    def _written(self, outcome: object) -> None:
        self._writer = None
        if isinstance(outcome, BaseException):
            self._close()

    def _readable(self) -> None:
        try:
            data = self._sock.recv(_RECV_SIZE)
        except BlockingIOError:
            return  # a spurious wake-up
        except OSError:
            data = b""
        if not data:
            self._close()
            return
        self._reader.feed(data)
        if self._reader.pending() > _READ_AHEAD:
            self._stop_reading()
        self._dispatch()

    def _dispatch(self) -> None:
        self._dispatch_due = False
        for _ in range(self._per_turn):
            if self.closed:
                return
            message = self._reader.next()
            if message is None:
                self._start_reading()
                return
            self._on_message(message)
        if self._reader.pending() and not self._dispatch_due:
            self._dispatch_due = True
            self._reactor.call_later(0.0, self._dispatch)
        elif not self._reader.pending():
            self._start_reading()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop_reading()
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None
        self._on_closed()

    def close(self) -> None:
        """Stop using the socket (the caller closes it)."""
        if not self.closed:
            self.closed = True
            self._stop_reading()
            if self._writer is not None:
                self._writer.cancel()
                self._writer = None


def percentile(bounds: tuple[float, ...], counts: list[int], q: float) -> float:
    """Upper bound of the histogram bucket holding quantile q (0..1); inf past the end."""
    total = sum(counts)
    if not total:
        return math.nan
    rank = q * total
    seen = 0
    for k, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return bounds[k] if k < len(bounds) else math.inf
    return math.inf
