"""``/status``: every check as JSON (the status page, ``seesaw-healthcheck-status`` and
scripts read it).

The document: ``generated`` (RFC 3339), ``server`` (version, pid, started, config source,
workers, intervals, last fetch and its error, last notification, pending notifications),
``totals`` (by state, and by type and state, over the checks listed), and ``checks``
sorted by id, each: id, type, description, target (ip, host, port, proto, mode, mark),
interval, timeout, retries, state, since, last_check, duration, failures, successes,
consecutive_failures, message, problem. Times are RFC 3339 in UTC, durations seconds.
Filters: ``?state=``, ``?type=``, ``?ip=`` (each may repeat; a check matches any value of
each); a bad value is a 400 with the reason.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from seesaw_healthcheck import checkers
from seesaw_healthcheck.channel import FRESH_OFFSET, SLOT, SLOT_SIZE, SharedTable, slot_offset
from seesaw_healthcheck.control.http import HttpError
from seesaw_healthcheck.control.table import Entry, Table
from seesaw_healthcheck.model import CHECKER_KINDS, Config, Mode, State, ip_from_bytes, ip_text

quote: Callable[[str], str] = json.encoder.encode_basestring_ascii

__all__ = [
    "MODE_NAMES",
    "PROTO_NAMES",
    "STATE_NAMES",
    "Filters",
    "ServerInfo",
    "StatusRenderer",
    "address_text",
    "check_json",
    "document",
    "rfc3339",
]

STATE_NAMES: dict[int, str] = {
    State.UNKNOWN: "unknown",
    State.UNHEALTHY: "unhealthy",
    State.HEALTHY: "healthy",
}
_STATES = {name: state for state, name in STATE_NAMES.items()}
_KINDS = frozenset(CHECKER_KINDS.values()) | {"unknown"}
PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
MODE_NAMES: dict[int, str] = {Mode.PLAIN: "plain", Mode.DSR: "dsr", Mode.TUN: "tun"}


def rfc3339(unix_ns: int) -> str | None:
    """``2026-12-03T07:24:38.123456Z`` (microseconds), or None for 0 (never)."""
    if not unix_ns:
        return None
    seconds, ns = divmod(unix_ns, 1_000_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{ns // 1000:06d}Z"


def address_text(raw: bytes) -> str | None:
    if not raw:
        return None
    try:
        return ip_text(raw)
    except ValueError:
        return raw.hex()


def check_json(entry: Entry) -> dict[str, Any]:
    config = entry.config
    checker = config.checker
    start, duration, failures, successes, consecutive = entry.numbers()
    target: dict[str, Any] | None = None
    description = f"not running: {entry.problem}" if entry.problem else ""
    if checker is not None and hasattr(checker, "target"):
        t = checker.target
        target = {
            "ip": address_text(t.ip),
            "host": address_text(t.host) if t.mode != Mode.PLAIN else None,
            "port": t.port,
            "proto": PROTO_NAMES.get(t.proto, str(t.proto)),
            "mode": MODE_NAMES.get(t.mode, str(t.mode)),
            "mark": t.mark,
        }
        if not description:
            description = checkers.describe(checker)
    return {
        "id": entry.id,
        "type": entry.kind,
        "description": description,
        "target": target,
        "interval": config.interval / 1e9,
        "timeout": config.timeout / 1e9,
        "retries": config.retries,
        "state": STATE_NAMES.get(entry.state, "unknown"),
        "since": rfc3339(entry.since_ns),
        "last_check": rfc3339(start),
        "duration": duration / 1e9,
        "failures": failures,
        "successes": successes,
        "consecutive_failures": consecutive,
        "message": entry.message,
        "problem": entry.problem,
    }


@dataclass
class Filters:
    states: set[int] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    ips: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = field(default_factory=set)

    @classmethod
    def parse(cls, query: dict[str, list[str]]) -> Filters:
        """From a query string; ``HttpError`` 400 naming a bad parameter or value."""
        filters = cls()
        for name, values in query.items():
            for value in values:
                if name == "state":
                    if value not in _STATES:
                        raise HttpError(400, f"state must be one of {sorted(_STATES)}: {value!r}")
                    filters.states.add(_STATES[value])
                elif name == "type":
                    if value not in _KINDS:
                        raise HttpError(400, f"type must be one of {sorted(_KINDS)}: {value!r}")
                    filters.kinds.add(value)
                elif name == "ip":
                    try:
                        filters.ips.add(ipaddress.ip_address(value))
                    except ValueError:
                        raise HttpError(400, f"ip must be an IP address: {value!r}") from None
                else:
                    raise HttpError(400, f"unknown parameter {name!r} (state, type, ip)")
        return filters

    def match(self, entry: Entry) -> bool:
        if self.states and entry.state not in self.states:
            return False
        if self.kinds and entry.kind not in self.kinds:
            return False
        if self.ips:
            checker = entry.config.checker
            target = getattr(checker, "target", None)
            if target is None:
                return False
            found = set()
            for raw in (target.ip, target.host):
                with contextlib.suppress(ValueError):
                    found.add(ip_from_bytes(raw))
            if not found & self.ips:
                return False
        return True


@dataclass
class ServerInfo:
    version: str
    pid: int
    started: int  # Unix ns
    config_source: str
    workers: int
    fetch_interval: float
    notify_interval: float
    last_fetch: int  # Unix ns, 0: none yet
    last_fetch_error: str | None
    last_notification: int
    pending_notifications: int

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "pid": self.pid,
            "started": rfc3339(self.started),
            "config_source": self.config_source,
            "workers": self.workers,
            "fetch_interval": self.fetch_interval,
            "notify_interval": self.notify_interval,
            "last_fetch": rfc3339(self.last_fetch),
            "last_fetch_error": self.last_fetch_error,
            "last_notification": rfc3339(self.last_notification),
            "pending_notifications": self.pending_notifications,
        }


def totals(entries: Iterable[Entry]) -> dict[str, Any]:
    out: dict[str, Any] = {"checks": 0, "healthy": 0, "unhealthy": 0, "unknown": 0}
    by_type: dict[str, dict[str, int]] = {}
    for entry in entries:
        name = STATE_NAMES.get(entry.state, "unknown")
        out["checks"] += 1
        out[name] += 1
        kind = by_type.setdefault(entry.kind, {"healthy": 0, "unhealthy": 0, "unknown": 0})
        kind[name] += 1
    out["by_type"] = {kind: by_type[kind] for kind in sorted(by_type, key=_kind_order)}
    return out


_KIND_ORDER = {kind: n for n, kind in enumerate((*CHECKER_KINDS.values(), "unknown"))}


def _kind_order(kind: str) -> int:
    return _KIND_ORDER.get(kind, len(_KIND_ORDER))


def document(entries: Iterable[Entry], server: ServerInfo, filters: Filters) -> bytes:
    listed = sorted((e for e in entries if filters.match(e)), key=lambda e: e.id)
    doc = {
        "generated": rfc3339(time.time_ns()),
        "server": server.as_json(),
        "totals": totals(listed),
        "checks": [check_json(entry) for entry in listed],
    }
    return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


_PARTS = 4  # per check: config, state and since, the latest run's numbers, message


class StatusRenderer:
    """``document()`` at the cost of what changed, byte for byte the same text.

    Each check's JSON is kept in four parts: its config's (remade when its config or
    problem changes), its state and since, its latest run's numbers, its message and
    problem. The table names the checks whose state, message, config or problem changed
    (``Table.touched``); the workers mark each slot they write (its ``fresh`` byte, cleared
    here before the slot is read), so a render of 50,000 checks reads one byte per check
    and formats only what changed since the last one.
    """

    def __init__(self, table: Table) -> None:
        self.table = table
        self._entries: list[Entry] = []  # by id
        self._position: dict[int, int] = {}  # id -> index in _entries
        self._slots: dict[SharedTable, list[int]] = {}  # slot -> index (-1: none)
        # by index: the config and problem each check's config part was made of
        self._made_of: list[tuple[Config, str | None]] = []
        # the document's parts: [head, 4 per check..., tail]
        self._parts: list[bytes] = [b"", b"]}\n"]
        self._version = -1
        self._second_text: dict[int, bytes] = {}  # Unix second -> its RFC 3339 text

    def render(self, server: ServerInfo, filters: Filters) -> bytes:
        self._refresh()
        table = self.table
        parts = self._parts
        if filters.states or filters.kinds or filters.ips:
            chosen = [i for i, e in enumerate(self._entries) if filters.match(e)]
            counted = totals(self._entries[i] for i in chosen)
            parts = [b""]
            for i in chosen:
                parts += self._parts[1 + _PARTS * i : 1 + _PARTS * (i + 1)]
            parts.append(b"]}\n")
        else:
            counted = _totals_of(table)
        head = {"generated": rfc3339(time.time_ns()), "server": server.as_json(), "totals": counted}
        parts[0] = json.dumps(head, separators=(",", ":"))[:-1].encode() + b',"checks":['
        last = parts[-2]
        if len(parts) > 2:
            parts[-2] = last[:-1]  # no comma after the last check
        try:
            return b"".join(parts)
        finally:
            parts[-2] = last

    def _refresh(self) -> None:
        """Bring every check's parts up to date."""
        table = self.table
        touched = table.touched
        table.touched = set()
        if self._version != table.version:
            self._rebuild()
            return
        position = self._position
        entries = self._entries
        parts = self._parts
        numbers = self._numbers_json
        unpack = SLOT.unpack_from
        for shared, slots in self._slots.items():
            buffer = shared.buffer
            for slot in _fresh_slots(shared, len(slots)):
                index = slots[slot]
                if index >= 0:
                    # No lock: a write racing this read marks the slot fresh again, so a
                    # torn read is redone by the next render.
                    check_id, start, duration, failures, successes, consecutive, _, _ = unpack(
                        buffer, _SLOTS_AT + slot * SLOT_SIZE
                    )
                    parts[3 + _PARTS * index] = (
                        numbers(start, duration, failures, successes, consecutive)
                        if check_id == entries[index].id
                        else _NO_NUMBERS
                    )
        for check_id in touched:
            index = position.get(check_id, -1)
            if index >= 0:
                entry = entries[index]
                at = 1 + _PARTS * index
                if self._made_of[index] != (entry.config, entry.problem):
                    self._made_of[index] = (entry.config, entry.problem)
                    parts[at] = _config_json(entry)
                parts[at + 1] = _state_json(entry)
                parts[at + 3] = _message_json(entry)

    def _numbers_json(
        self, start: int, duration: int, failures: int, successes: int, consecutive: int
    ) -> bytes:
        """ "last_check" to "consecutive_failures", and a comma (what ``check_json`` says)."""
        if not start:
            if not (duration or failures or successes or consecutive):
                return _NO_NUMBERS
            return (
                b'"last_check":null,"duration":%a,"failures":%d,"successes":%d,'
                b'"consecutive_failures":%d,' % (duration / 1e9, failures, successes, consecutive)
            )
        seconds, ns = divmod(start, 1_000_000_000)
        second = self._second_text.get(seconds)
        if second is None:
            if len(self._second_text) > 4096:
                self._second_text.clear()
            second = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)).encode()
            self._second_text[seconds] = second
        return (
            b'"last_check":"%s.%06dZ","duration":%a,"failures":%d,"successes":%d,'
            b'"consecutive_failures":%d,'
            % (second, ns // 1000, duration / 1e9, failures, successes, consecutive)
        )

    def _rebuild(self) -> None:
        table = self.table
        self._version = table.version
        entries = self._entries = sorted(table, key=lambda e: e.id)
        old_position = self._position
        self._position = {entry.id: index for index, entry in enumerate(entries)}
        self._slots = {}
        for index, entry in enumerate(entries):
            if entry.slot >= 0:
                slots = self._slots.setdefault(entry.shared, [])
                if len(slots) <= entry.slot:
                    slots.extend([-1] * (entry.slot + 1 - len(slots)))
                slots[entry.slot] = index
        for shared, slots in self._slots.items():
            _fresh_slots(shared, len(slots))  # all read again below
        # The config parts of the checks whose config and problem are the ones they were
        # made of are kept (a fetch that adds or removes checks changes the version).
        old_parts, old_made_of = self._parts, self._made_of
        made_of = self._made_of = []
        parts = [b""]
        for entry in entries:
            made = (entry.config, entry.problem)
            old = old_position.get(entry.id, -1)
            if old >= 0 and old_made_of[old] == made:
                config = old_parts[1 + _PARTS * old]
            else:
                config = _config_json(entry)
            made_of.append(made)
            parts += (
                config,
                _state_json(entry),
                self._numbers_json(*entry.numbers()),
                _message_json(entry),
            )
        parts.append(b"]}\n")
        self._parts = parts


_SLOTS_AT = slot_offset(0)
_FRESH_AT = _SLOTS_AT + FRESH_OFFSET
_NO_NUMBERS = (
    b'"last_check":null,"duration":0.0,"failures":0,"successes":0,"consecutive_failures":0,'
)
_FRESH = re.compile(b"\x01")


def _fresh_slots(shared: SharedTable, count: int) -> list[int]:
    """The slots below ``count`` a worker wrote since the last call (their marks cleared
    first, so a write that races this one is seen next time)."""
    buffer = shared.buffer
    marks = buffer[_FRESH_AT : _FRESH_AT + count * SLOT_SIZE : SLOT_SIZE]
    fresh = [found.start() for found in _FRESH.finditer(marks)]
    for slot in fresh:
        buffer[_FRESH_AT + slot * SLOT_SIZE] = 0
    return fresh


def _totals_of(table: Table) -> dict[str, Any]:
    """``totals`` of the whole table, from its running counts."""
    out: dict[str, Any] = {"checks": len(table), "healthy": 0, "unhealthy": 0, "unknown": 0}
    by_type: dict[str, dict[str, int]] = {}
    for (kind, state), count in sorted(table.counts.items()):
        name = STATE_NAMES.get(state, "unknown")
        out[name] += count
        by_type.setdefault(kind, {"healthy": 0, "unhealthy": 0, "unknown": 0})[name] += count
    out["by_type"] = {kind: by_type[kind] for kind in sorted(by_type, key=_kind_order)}
    return out


def _config_json(entry: Entry) -> bytes:
    """The check's JSON from its first key to "retries", and a comma."""
    whole = check_json(entry)
    fixed = {key: whole[key] for key in _CONFIG_KEYS}
    return json.dumps(fixed, separators=(",", ":"))[:-1].encode() + b","


_CONFIG_KEYS = ("id", "type", "description", "target", "interval", "timeout", "retries")
_STATE_TEXT = {state: f'"state":"{name}","since":' for state, name in STATE_NAMES.items()}


def _quoted(text: str | None) -> str:
    return "null" if text is None else quote(text)


def _state_json(entry: Entry) -> bytes:
    """ "state" and "since", and a comma."""
    head = _STATE_TEXT.get(entry.state) or _STATE_TEXT[State.UNKNOWN]
    return f"{head}{_quoted(rfc3339(entry.since_ns))},".encode()


def _message_json(entry: Entry) -> bytes:
    """ "message" and "problem", the end of the check's object, and a comma."""
    return f'"message":{quote(entry.message)},"problem":{_quoted(entry.problem)}}},'.encode()
