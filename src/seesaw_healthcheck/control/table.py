"""The control process's table of every check: its config, where it runs, and its latest
Status, which outlives any worker.

State, message and the time of the last transition come from the workers' reports; the
numbers of the latest run (LastCheck, Duration, counters) are read from the worker's
shared table when needed. A check whose config cannot run stays here (Unknown, with the
reason) and is re-notified like the others, as Seesaw does.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from seesaw_healthcheck.channel import Resume, SharedTable
from seesaw_healthcheck.gob import ReuseMap
from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.model import Config, State, Status, checker_kind

__all__ = ["Entry", "Table", "TableReuse"]


class Entry:
    """One check in the table."""

    __slots__ = (
        "config",
        "id",
        "kind",
        "message",
        "problem",
        "raw",
        "running",
        "shared",
        "since_ns",
        "slot",
        "state",
        "worker",
    )

    def __init__(self, check_id: int, config: Config, worker: int, shared: SharedTable) -> None:
        self.id = check_id
        self.config = config
        self.kind = checker_kind(config.checker)
        self.raw = b""  # the gob bytes its config came in (see TableReuse)
        self.problem: str | None = None  # why its config cannot run
        self.running = False  # sent to its worker
        self.worker = worker
        self.shared = shared
        self.slot = -1
        self.state: int = State.UNKNOWN
        self.since_ns = 0  # Unix ns of the last transition (0: none yet)
        self.message = ""
        # /status's text of its config, kept while config and problem hold (control.status)

    def numbers(self) -> tuple[int, int, int, int, int]:
        """(LastCheck Unix ns, Duration ns, failures, successes, consecutive failures) of
        the latest run: zeros before the first (or when the slot is someone else's)."""
        if self.slot < 0:
            return (0, 0, 0, 0, 0)
        check_id, start, duration, failures, successes, consecutive, _, _ = self.shared.read_slot(
            self.slot
        )
        if check_id != self.id:
            return (0, 0, 0, 0, 0)
        return (start, duration, failures, successes, consecutive)

    def status(self) -> Status:
        """The Status Seesaw would send now: LastCheck in the local zone, as time.Now()."""
        start, duration, failures, successes, _ = self.numbers()
        return make_status(self.state, self.message, start, duration, failures, successes)

    def resume(self) -> Resume:
        """Where a (re)started run of this check picks up: the state the engine knows."""
        start, duration, failures, successes, consecutive = self.numbers()
        return (self.state, consecutive, failures, successes, start, duration, self.message)


def make_status(
    state: int, message: str, start_ns: int, duration_ns: int, failures: int, successes: int
) -> Status:
    if start_ns:
        offset = time.localtime(start_ns // 1_000_000_000).tm_gmtoff
        last_check = GoTime.from_unix_ns(start_ns, offset)
    else:
        last_check = GoTime()
    return Status(
        last_check=last_check,
        duration=duration_ns,
        failures=failures,
        successes=successes,
        state=state,
        message=message,
    )


class Table:
    """Every check by id, with counts by (kind, state) kept up to date."""

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}
        self.counts: Counter[tuple[str, int]] = Counter()
        # (kind, from, to) -> transitions since start
        self.transitions: Counter[tuple[str, int, int]] = Counter()
        self.version = 0  # bumped when a check comes or goes
        # ids whose state, message, config or problem changed since /status's renderer
        # last took them (see control.status.StatusRenderer)
        self.touched: set[int] = set()

    def __contains__(self, check_id: object) -> bool:
        return check_id in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def get(self, check_id: int) -> Entry | None:
        return self.entries.get(check_id)

    def compact(self) -> None:
        """Copy the per-check collections to their size: CPython never shrinks a dict or
        a set on deletion, so after 100,000 checks go each would keep ~5 MB."""
        self.entries = dict(self.entries)
        self.touched = set(self.touched)

    def add(self, entry: Entry) -> None:
        self.version += 1
        self.entries[entry.id] = entry
        self.counts[entry.kind, entry.state] += 1

    def pop(self, check_id: int) -> Entry:
        self.version += 1
        entry = self.entries.pop(check_id)
        self.touched.discard(check_id)
        self._uncount(entry.kind, entry.state)
        return entry

    def set_config(self, entry: Entry, config: Config) -> None:
        kind = checker_kind(config.checker)
        if kind != entry.kind:
            self._uncount(entry.kind, entry.state)
            self.counts[kind, entry.state] += 1
            entry.kind = kind
        entry.config = config
        self.touched.add(entry.id)

    def transition(self, entry: Entry, state: int, at_ns: int) -> None:
        self.transitions[entry.kind, entry.state, state] += 1
        self._uncount(entry.kind, entry.state)
        self.counts[entry.kind, state] += 1
        entry.state = state
        entry.since_ns = at_ns
        self.touched.add(entry.id)

    def set_message(self, entry: Entry, message: str) -> None:
        if message != entry.message:
            entry.message = message
            self.touched.add(entry.id)

    def set_problem(self, entry: Entry, problem: str | None) -> None:
        if problem != entry.problem:
            entry.problem = problem
            self.touched.add(entry.id)

    def _uncount(self, kind: str, state: int) -> None:
        key = (kind, state)
        left = self.counts[key] - 1
        if left:
            self.counts[key] = left
        else:
            del self.counts[key]


class TableReuse(ReuseMap):
    """The engine's last Configs as the table holds them, for the next fetch's decoder
    (``gob.ReuseMap``): an entry's config and the bytes it came in, so an unchanged config
    keeps its object at the cost of a few bytes per check. ``fresh`` holds the bytes of
    the configs the last fetch decoded, for ``Control.apply`` to keep."""

    __slots__ = ("fresh", "table")

    def __init__(self, table: Table) -> None:
        super().__init__()
        self.table = table
        self.fresh: dict[int, bytes] = {}

    def begin(self) -> None:
        self.fresh.clear()

    def previous(self, key: int) -> tuple[bytes, Any] | None:
        entry = self.table.entries.get(key)
        if entry is None or not entry.raw:
            return None
        return entry.raw, entry.config

    def decoded(self, key: int, raw: bytes, value: Any) -> None:
        self.fresh[key] = raw

    def finish(self, taken: list[int]) -> None:
        pass  # the table keeps them
