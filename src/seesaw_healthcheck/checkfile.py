"""A TOML file of checks: the format of the engine emulator (``seesaw-healthcheck-engine``)
and of the server's ``-config_source file:PATH``.

A file that does not parse or does not validate is a ``ConfigError`` naming the file and
the check. ``Reader`` reads a file again only when it changed, keeping check ids stable
across reads (by name, or by the whole table of an unnamed check).

File format (``examples/demo.toml`` is a commented example)::

    [defaults]                 # optional; applies to every [[check]]
    interval = "5s"            # Go durations; Seesaw's defaults are 5s / 30s / 0
    timeout = "30s"
    retries = 0

    [[check]]
    name = "web-1"             # optional label (logs, the demo's table); not on the wire
    id = 1                     # optional; else (pid & 0xFFFF) << 48 counting up, as Seesaw
    type = "http"              # tcp, tcp_tls, http, https, dns, udp, radius, ping
    ip = "127.0.0.1"           # target address (in dsr/tun mode: the VIP)
    port = 8080
    mode = "plain"             # plain, dsr or tun; dsr/tun want host (the backend) and mark
    ...per-type fields, see TYPE_FIELDS below

Per-type fields and their defaults follow Seesaw's engine (engine/healthcheck.go):
tcp/tcp_tls: send, receive, tls_verify; http/https: method ("GET"), request ("/"),
response, response_code (200), proxy, tls_verify (true); dns: query, query_type ("A"),
answer; udp: send, receive; radius: username, password, secret, response ("accept");
ping: none (no port).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from seesaw_healthcheck import model
from seesaw_healthcheck.goduration import parse_duration

__all__ = ["CheckEntry", "ConfigError", "IdAllocator", "Reader", "load_checks", "parse_checks"]

COMMON_FIELDS = frozenset(
    {
        "id",
        "name",
        "type",
        "ip",
        "port",
        "interval",
        "timeout",
        "retries",
        "mode",
        "host",
        "mark",
        "target",
    }
)
TYPE_FIELDS: dict[str, frozenset[str]] = {
    "tcp": frozenset({"send", "receive"}),
    "tcp_tls": frozenset({"send", "receive", "tls_verify"}),
    "http": frozenset({"method", "request", "response", "response_code", "proxy"}),
    "https": frozenset({"method", "request", "response", "response_code", "proxy", "tls_verify"}),
    "dns": frozenset({"query", "query_type", "answer"}),
    "udp": frozenset({"send", "receive"}),
    "radius": frozenset({"username", "password", "secret", "response"}),
    "ping": frozenset(),
}
TYPE_ALIASES = {"icmp": "ping", "tls": "tcp_tls", "tcptls": "tcp_tls"}
TOP_LEVEL = frozenset({"check", "defaults", "demo"})  # [demo] belongs to cli/demo.py

# Seesaw's healthcheck.NewConfig defaults.
DEFAULT_INTERVAL = 5 * model.SECOND
DEFAULT_TIMEOUT = 30 * model.SECOND

Endpoint = tuple[str, int]


class ConfigError(ValueError):
    """A checks file that cannot be used; the message names the file and the check."""


@dataclass(slots=True)
class _Rules:
    """The rules a check's values break: each a ``ConfigError``, or with ``allow_invalid``
    a note kept in ``broken`` while the value goes on the wire as written."""

    allow_invalid: bool = False
    broken: list[str] = field(default_factory=list)

    def broke(self, message: str) -> None:
        if not self.allow_invalid:
            raise ConfigError(message)
        self.broken.append(message)


@dataclass(slots=True)
class CheckEntry:
    """One configured check: what goes on the wire plus a human label."""

    config: model.Config
    name: str
    type: str
    invalid: list[str] = field(default_factory=list)  # rules broken (-allow_invalid)


@dataclass(slots=True)
class IdAllocator:
    """Seesaw's engine numbering: ids start at (pid & 0xFFFF) << 48 and count up.

    A check keeps its id across reloads as long as its key (its name, or else its whole
    table) is unchanged, so the server sees an unchanged check as unchanged.
    """

    next_id: int = field(default_factory=lambda: (os.getpid() & 0xFFFF) << 48)
    by_key: dict[str, int] = field(default_factory=dict)

    def id_for(self, key: str) -> int:
        if key not in self.by_key:
            self.by_key[key] = self.next_id
            self.next_id += 1
        return self.by_key[key]


def _duration(value: object, where: str, what: str, rules: _Rules) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f'{where}: {what} must be a Go duration string like "1s"')
    if isinstance(value, int):
        # A bare number is ambiguous (Go would read nanoseconds): refuse it clearly.
        raise ConfigError(f'{where}: {what} = {value} has no unit; write e.g. "{value}s"')
    try:
        ns = parse_duration(value)
    except ValueError as e:
        raise ConfigError(f"{where}: {what}: {e}") from None
    if ns < 0:
        rules.broke(f"{where}: {what} must not be negative")
    return ns


_GO_INT = (-(2**63), 2**63 - 1)  # what an int field can carry on the wire at all


def _int(
    value: object, where: str, what: str, lo: int, hi: int, rules: _Rules | None = None
) -> int:
    """An integer in lo..hi; with ``rules`` (a value, not a key) out of range is a rule
    broken, as long as it fits in Go's int."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: {what} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        message = f"{where}: {what} = {value} is out of range {lo}..{hi}"
        if rules is None or not _GO_INT[0] <= value <= _GO_INT[1]:
            raise ConfigError(message)
        rules.broke(message)
    return value


def _str(value: object, where: str, what: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {what} must be a string, got {value!r}")
    return value


def _bool(value: object, where: str, what: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: {what} must be true or false, got {value!r}")
    return value


def _ip(value: object, where: str, what: str, rules: _Rules) -> bytes:
    """The IP as Go's net.ParseIP gives it; one that does not parse is a nil IP."""
    text = _str(value, where, what)
    try:
        return model.ip_to_bytes(text)
    except ValueError:
        rules.broke(f"{where}: {what} = {text!r} is not an IP address")
        return b""


def _dns_type(name: str, where: str) -> int:
    import dns.rdatatype  # dnspython, a runtime dependency; imported only when needed

    try:
        return int(dns.rdatatype.from_text(name.upper()))
    except (dns.rdatatype.UnknownRdatatype, ValueError):
        raise ConfigError(f"{where}: unknown DNS query_type {name!r}") from None


def _build_checker(
    kind: str, t: Mapping[str, Any], target: model.Target, where: str, rules: _Rules
) -> model.Checker | None:
    def s(key: str, default: str = "") -> str:
        return _str(t.get(key, default), where, key)

    def b(key: str, default: bool) -> bool:
        return _bool(t.get(key, default), where, key)

    if kind in ("tcp", "tcp_tls"):
        target.proto = model.Proto.TCP
        secure = kind == "tcp_tls"
        return model.TCPChecker(
            target=target,
            send=s("send"),
            receive=s("receive"),
            secure=secure,
            tls_verify=secure and b("tls_verify", False),
        )
    if kind in ("http", "https"):
        target.proto = model.Proto.TCP
        secure = kind == "https"
        return model.HTTPChecker(
            target=target,
            secure=secure,
            tls_verify=b("tls_verify", True),
            method=s("method", "GET"),
            proxy=b("proxy", False),
            request=s("request", "/"),
            response=s("response"),
            response_code=_int(t.get("response_code", 200), where, "response_code", 0, 999, rules),
        )
    if kind == "dns":
        target.proto = model.Proto.UDP
        if "query" not in t:
            raise ConfigError(f"{where}: a dns check needs query (the name to look up)")
        question = model.DNSQuestion(
            name=s("query"), qtype=_dns_type(s("query_type", "A"), where), qclass=1
        )  # class IN
        return model.DNSChecker(target=target, question=question, answer=s("answer"))
    if kind == "udp":
        target.proto = model.Proto.UDP
        return model.UDPChecker(target=target, send=s("send"), receive=s("receive"))
    if kind == "radius":
        target.proto = model.Proto.UDP
        return model.RADIUSChecker(
            target=target,
            username=s("username"),
            password=s("password"),
            secret=s("secret"),
            response=s("response", "accept"),
        )
    if kind == "nil":
        return None
    # ping
    if target.mode != model.Mode.PLAIN:
        rules.broke(f"{where}: ping checks cannot be used with dsr or tun mode")
    ipv6 = len(target.ip) == 16 and not target.ip.startswith(_V4_IN_V6)
    target.proto = model.Proto.ICMPV6 if ipv6 else model.Proto.ICMP
    target.port = 0
    return model.PingChecker(target=target)


_V4_IN_V6 = b"\x00" * 10 + b"\xff\xff"


def _build_entry(
    t: Mapping[str, Any],
    where: str,
    defaults: Mapping[str, Any],
    targets: Mapping[str, Endpoint] | None,
    allow_invalid: bool = False,
) -> tuple[int | None, CheckEntry]:
    if not isinstance(t, dict):
        raise ConfigError(f"{where}: must be a table")
    rules = _Rules(allow_invalid)
    raw_type = _str(t.get("type", ""), where, "type").lower()
    kind = TYPE_ALIASES.get(raw_type, raw_type)
    kinds = TYPE_FIELDS if not allow_invalid else {**TYPE_FIELDS, "nil": frozenset()}
    if kind not in kinds:
        raise ConfigError(f"{where}: type {raw_type!r} is not one of {', '.join(sorted(kinds))}")
    if kind == "nil":
        rules.broke(f"{where}: a check of type 'nil' has no checker")
    unknown = set(t) - COMMON_FIELDS - kinds[kind]
    if unknown:
        allowed = ", ".join(sorted(COMMON_FIELDS | kinds[kind]))
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))} for a "
            f"{kind} check (allowed: {allowed})"
        )
    name = _str(t.get("name", ""), where, "name")
    if name:
        where = f"{where} ({name})"

    if "target" in t:
        ref = _str(t["target"], where, "target")
        if targets is None or ref not in targets:
            raise ConfigError(f"{where}: target {ref!r} is not a known demo target")
        if "ip" in t or "port" in t:
            raise ConfigError(f"{where}: give either target or ip/port, not both")
        ip_text, port = targets[ref]
    else:
        if "ip" not in t and kind != "nil":
            raise ConfigError(f"{where}: ip is required")
        ip_text = _str(t.get("ip", ""), where, "ip")
        port = t.get("port", 0)
    ip = _ip(ip_text, where, "ip", rules) if kind != "nil" else b""
    port = _int(port, where, "port", 0, 65535, rules)
    if kind not in ("ping", "nil") and port == 0:
        rules.broke(f"{where}: port is required for a {kind} check")

    mode_name = _str(t.get("mode", "plain"), where, "mode").upper()
    if mode_name not in model.Mode.__members__:
        raise ConfigError(f"{where}: mode {t['mode']!r} is not one of plain, dsr, tun")
    mode = model.Mode[mode_name]
    target = model.Target(ip=ip, port=port, mode=mode)
    if mode != model.Mode.PLAIN:
        if "host" not in t:
            rules.broke(f"{where}: {mode_name.lower()} mode needs host (the backend IP)")
        target.host = _ip(t["host"], where, "host", rules) if "host" in t else b""
    else:
        # Plain mode: the backend is the target itself, as Seesaw's engine sets it.
        target.host = _ip(t["host"], where, "host", rules) if "host" in t else ip
    target.mark = _int(t.get("mark", 0), where, "mark", 0, 2**31 - 1, rules)

    checker = _build_checker(kind, t, target, where, rules)

    def setting(key: str) -> object:
        return t[key] if key in t else defaults.get(key)

    interval = setting("interval")
    timeout = setting("timeout")
    retries = setting("retries")
    config = model.Config(
        interval=(
            DEFAULT_INTERVAL if interval is None else _duration(interval, where, "interval", rules)
        ),
        timeout=DEFAULT_TIMEOUT if timeout is None else _duration(timeout, where, "timeout", rules),
        retries=0 if retries is None else _int(retries, where, "retries", 0, 2**31 - 1, rules),
        checker=checker,
    )
    if config.interval == 0:
        rules.broke(f"{where}: interval must be more than 0")
    explicit_id = None
    if "id" in t:
        explicit_id = _int(t["id"], where, "id", 1, 2**64 - 1)
    label = name or _label(kind, target, ip_text)
    return explicit_id, CheckEntry(config=config, name=label, type=kind, invalid=rules.broken)


def _label(kind: str, target: model.Target, ip_text: str) -> str:
    """``tcp 127.0.0.1:80``, ``ping ::1``; the IP as written when it is not one."""
    if kind == "nil":
        return "nil checker"
    try:
        return f"ping {target.address}" if kind == "ping" else f"{kind} {target.addr()}"
    except ValueError:
        return f"{kind} {ip_text!r}" + ("" if kind == "ping" else f" port {target.port}")


def parse_checks(
    text: str,
    source: str,
    *,
    ids: IdAllocator | None = None,
    targets: Mapping[str, Endpoint] | None = None,
    allow_invalid: bool = False,
) -> dict[int, CheckEntry]:
    """The checks a TOML document configures, by id. Raises ``ConfigError``.

    ``allow_invalid``: a check whose values break a rule is kept, as written, with the
    rules it breaks in ``CheckEntry.invalid``.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from None
    unknown = set(doc) - TOP_LEVEL
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))} "
            "(want [defaults] and [[check]] tables)"
        )
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{source}: defaults must be a table")
    bad = set(defaults) - {"interval", "timeout", "retries"}
    if bad:
        raise ConfigError(
            f"{source}: [defaults] takes interval, timeout and retries only, "
            f"not {', '.join(sorted(bad))}"
        )
    tables = doc.get("check", [])
    if not isinstance(tables, list):
        raise ConfigError(f"{source}: check must be an array of tables: write [[check]]")
    ids = ids or IdAllocator()
    built = [
        _build_entry(t, f"{source}: check #{i + 1}", defaults, targets, allow_invalid)
        for i, t in enumerate(tables)
    ]
    result: dict[int, CheckEntry] = {}
    for i, (explicit_id, entry) in enumerate(built):
        if explicit_id is None:
            key = (
                f"name:{entry.name}"
                if tables[i].get("name")
                else "table:" + json.dumps(tables[i], sort_keys=True, default=str)
            )
            check_id = ids.id_for(key)
            while check_id in result:  # a clash with an explicit id: take the next free one
                check_id = ids.id_for(f"{key}#{check_id}")
        else:
            check_id = explicit_id
            if check_id in result:
                raise ConfigError(
                    f"{source}: check #{i + 1} ({entry.name}): id {check_id} "
                    f"is already used by {result[check_id].name}"
                )
        entry.config.id = check_id
        result[check_id] = entry
    return result


def load_checks(
    path: str,
    *,
    ids: IdAllocator | None = None,
    targets: Mapping[str, Endpoint] | None = None,
    allow_invalid: bool = False,
) -> dict[int, CheckEntry]:
    """``parse_checks`` of a file; an unreadable file is a ``ConfigError`` too."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    return parse_checks(text, path, ids=ids, targets=targets, allow_invalid=allow_invalid)


class Reader:
    """A checks file for the server: ``read_if_changed()`` gives its checks when the file
    changed since the last call (size, time or inode), else None; ``ConfigError`` when it
    cannot be used (the caller keeps the last good set)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.ids = IdAllocator()
        self._seen: tuple[int, int, int] | None = None

    def forget(self) -> None:
        """Read the file with the next call, changed or not (SIGHUP: an edit can keep its
        size, time and inode)."""
        self._seen = None

    def read_if_changed(self) -> model.Checks | None:
        try:
            st = os.stat(self.path)
        except OSError as e:
            self._seen = None
            raise ConfigError(f"{self.path}: cannot read: {e.strerror or e}") from None
        seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        if seen == self._seen:
            return None
        checks = load_checks(self.path, ids=self.ids)
        self._seen = seen
        return model.Checks(configs={i: entry.config for i, entry in checks.items()})
