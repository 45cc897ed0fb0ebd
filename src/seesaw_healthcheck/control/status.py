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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from seesaw_healthcheck import checkers
from seesaw_healthcheck.channel import SLOT, slot_offset
from seesaw_healthcheck.control.http import HttpError
from seesaw_healthcheck.control.table import Entry, Table
from seesaw_healthcheck.model import CHECKER_KINDS, Mode, State, ip_from_bytes, ip_text

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

_second_text: dict[int, str] = {}


def rfc3339(unix_ns: int) -> str | None:
    """``2026-12-03T07:24:38.123456Z`` (microseconds), or None for 0 (never)."""
    if not unix_ns:
        return None
    seconds, ns = divmod(unix_ns, 1_000_000_000)
    text = _second_text.get(seconds)
    if text is None:
        if len(_second_text) > 4096:
            _second_text.clear()
        text = _second_text[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{ns // 1000:06d}Z"


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


_STATE_JSON: dict[int, bytes] = {
    state: f'"state":"{name}"'.encode() for state, name in STATE_NAMES.items()
}
_SLOT_SIZE = SLOT.size


class StatusRenderer:
    """``document()`` at the cost of what changed: each check's JSON is kept in two parts,
    its config's (until the config or its problem changes) and its state's (until its slot,
    state, message or last transition changes), so a render of 50,000 checks formats only
    those that ran since the last one. The text is ``document()``'s, byte for byte."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._sorted: list[Entry] = []
        self._version = -1

    def render(self, server: ServerInfo, filters: Filters) -> bytes:
        table = self.table
        if self._version != table.version:
            self._sorted = sorted(table, key=lambda e: e.id)
            self._version = table.version
        entries = self._sorted
        if filters.states or filters.kinds or filters.ips:
            entries = [e for e in entries if filters.match(e)]
            counted = totals(entries)
        else:
            counted = _totals_of(table)
        head = {"generated": rfc3339(time.time_ns()), "server": server.as_json(), "totals": counted}
        parts = [json.dumps(head, separators=(",", ":"))[:-1].encode(), b',"checks":[']
        append = parts.append
        for entry in entries:
            cached = entry.json_config
            if cached is None or cached[0] is not entry.config or cached[1] != entry.problem:
                cached = entry.json_config = (entry.config, entry.problem, _config_json(entry))
            append(cached[2])
            slot = entry.slot
            raw = entry.shared.buffer[
                _HEAD + slot * _SLOT_STRIDE : _HEAD + slot * _SLOT_STRIDE + _SLOT_SIZE
            ]
            known = entry.json_state
            if (
                known is None
                or known[0] != raw
                or known[1] != entry.state
                or known[2] is not entry.message
                or known[3] != entry.since_ns
            ):
                known = entry.json_state = (
                    raw,
                    entry.state,
                    entry.message,
                    entry.since_ns,
                    _state_json(entry, raw),
                )
            append(known[4])
        if entries:
            parts[-1] = parts[-1][:-1]  # no comma after the last check
        parts.append(b"]}\n")
        return b"".join(parts)


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
    """The check's JSON from its first key to "retries" (and a comma)."""
    whole = check_json(entry)
    fixed = {key: whole[key] for key in _CONFIG_KEYS}
    return json.dumps(fixed, separators=(",", ":"))[:-1].encode() + b","


_CONFIG_KEYS = ("id", "type", "description", "target", "interval", "timeout", "retries")
_HEAD = slot_offset(0)
_SLOT_STRIDE = slot_offset(1) - slot_offset(0)
_STATE_TEMPLATE = (
    '"state":"%s","since":%s,"last_check":%s,"duration":%r,"failures":%d,"successes":%d,'
    '"consecutive_failures":%d,"message":%s,"problem":%s},'
)


def _quoted(text: str | None) -> str:
    return "null" if text is None else quote(text)


def _state_json(entry: Entry, raw: bytes) -> bytes:
    """The check's JSON from "state" to its end, and a comma."""
    values = SLOT.unpack(raw) if entry.slot >= 0 else (0, 0, 0, 0, 0, 0, 0)
    if values[0] == entry.id:
        _, start, duration, failures, successes, consecutive, _ = values
    else:
        start = duration = failures = successes = consecutive = 0
    text = _STATE_TEMPLATE % (
        STATE_NAMES.get(entry.state, "unknown"),
        _quoted(rfc3339(entry.since_ns)),
        _quoted(rfc3339(start)),
        duration / 1e9,
        failures,
        successes,
        consecutive,
        quote(entry.message),
        _quoted(entry.problem),
    )
    return text.encode()
