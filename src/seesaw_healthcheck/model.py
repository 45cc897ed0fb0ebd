"""The domain model: what crosses the engine socket, as plain dataclasses.

Field names are the snake_case of Seesaw's Go fields; ``schema.py`` maps them to the Go
names and kinds the wire needs. Durations are ``int`` nanoseconds (Go's
``time.Duration``); IP addresses are ``bytes`` in the 4- or 16-byte form Go sent
(``net.IP``), with helpers to read them. Go strings may hold any bytes: they are ``str``
decoded as UTF-8 with ``surrogateescape``, so ``.encode("utf-8", "surrogateescape")``
gives Go's bytes back.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import socket
from dataclasses import dataclass, field
from enum import IntEnum

from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.goduration import format_duration

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NANOSECOND = 1
MICROSECOND = 1_000
MILLISECOND = 1_000_000
SECOND = 1_000_000_000


class State(IntEnum):
    UNKNOWN = 0
    UNHEALTHY = 1
    HEALTHY = 2

    def __str__(self) -> str:
        return self.name.capitalize()


class Mode(IntEnum):
    """seesaw.HealthcheckMode."""

    PLAIN = 0
    DSR = 1
    TUN = 2

    def __str__(self) -> str:
        return self.name


class Proto(IntEnum):
    """seesaw.IPProto (IANA protocol numbers)."""

    ICMP = 1
    TCP = 6
    UDP = 17
    ICMPV6 = 58


class AuthType(IntEnum):
    NONE = 0
    SSO = 1
    TRUSTED = 2
    UNTRUSTED = 3


class Component(IntEnum):
    """seesaw.Component."""

    NONE = 0
    ENGINE = 1
    ECU = 2
    HA = 3
    HEALTHCHECK = 4
    LOCAL_CLI = 5
    NCC = 6
    REMOTE_CLI = 7

    def __str__(self) -> str:
        return self.name.lower().replace("_", "-")


def ip_from_bytes(raw: bytes) -> IPAddress:
    """Read a Go ``net.IP``: 4 bytes, or 16 (an IPv4-mapped one is IPv4, as To4() says)."""
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw)
    if len(raw) == 16:
        v6 = ipaddress.IPv6Address(raw)
        return v6.ipv4_mapped or v6
    raise ValueError(f"invalid IP of {len(raw)} bytes: {raw.hex() or 'empty'}")


_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
_ZEROS_96 = b"\x00" * 12


def ip_text(raw: bytes) -> str:
    """``str(ip_from_bytes(raw))`` (Go's ``IP.String()``), at C speed: this names every
    check in logs and status pages. ``ValueError`` for a length that is no IP's."""
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if len(raw) == 16:
        prefix = raw[:12]
        if prefix == _V4_MAPPED:
            return socket.inet_ntop(socket.AF_INET, raw[12:])
        if prefix != _ZEROS_96:  # inet_ntop writes ::/96 as ::a.b.c.d, Go does not
            return socket.inet_ntop(socket.AF_INET6, raw)
    return str(ip_from_bytes(raw))


def ip_to_bytes(ip: str | IPAddress, *, four: bool = False) -> bytes:
    """A ``net.IP`` as ``net.ParseIP`` makes it (16 bytes), or the To4() form."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv4Address):
        return addr.packed if four else b"\x00" * 10 + b"\xff\xff" + addr.packed
    return addr.packed


@dataclass(slots=True)
class Target:
    """healthcheck.Target. In DSR/TUN mode ``ip`` is the VIP, ``host`` the backend."""

    ip: bytes = b""
    host: bytes = b""
    mark: int = 0
    mode: int = Mode.PLAIN
    port: int = 0
    proto: int = 0

    @property
    def address(self) -> IPAddress:
        return ip_from_bytes(self.ip)

    @property
    def is_ipv4(self) -> bool:
        ip = self.ip
        return len(ip) == 4 or (len(ip) == 16 and ip[:12] == _V4_MAPPED)

    def addr(self) -> str:
        """``1.2.3.4:80`` or ``[::1]:80``, as Go's Target.addr()."""
        text = ip_text(self.ip)
        return f"{text}:{self.port}" if self.is_ipv4 else f"[{text}]:{self.port}"

    def __str__(self) -> str:
        via = ""
        if self.mode != Mode.PLAIN:
            host = ip_text(self.host) if self.host else "<nil>"
            via = f" (via {host} mark {self.mark})"
        return f"{self.addr()} {_mode_name(self.mode)}{via}"


def _mode_name(mode: int) -> str:
    try:
        return Mode(mode).name
    except ValueError:
        return "(unknown)"


@dataclass(slots=True)
class TCPChecker:
    target: Target = field(default_factory=Target)
    receive: str = ""
    send: str = ""
    secure: bool = False
    tls_verify: bool = False


@dataclass(slots=True)
class HTTPChecker:
    target: Target = field(default_factory=Target)
    secure: bool = False
    tls_verify: bool = False
    method: str = ""
    proxy: bool = False
    request: str = ""
    response: str = ""
    response_code: int = 0


@dataclass(slots=True)
class DNSQuestion:
    """github.com/miekg/dns.Question."""

    name: str = ""
    qtype: int = 0
    qclass: int = 0


@dataclass(slots=True)
class DNSChecker:
    target: Target = field(default_factory=Target)
    question: DNSQuestion = field(default_factory=DNSQuestion)
    answer: str = ""


@dataclass(slots=True)
class PingChecker:
    target: Target = field(default_factory=Target)
    id: int = 0
    seqnum: int = 0


@dataclass(slots=True)
class RADIUSChecker:
    target: Target = field(default_factory=Target)
    username: str = ""
    password: str = ""
    secret: str = ""
    response: str = ""


@dataclass(slots=True)
class UDPChecker:
    target: Target = field(default_factory=Target)
    receive: str = ""
    send: str = ""


Checker = TCPChecker | HTTPChecker | DNSChecker | PingChecker | RADIUSChecker | UDPChecker
CHECKER_TYPES: tuple[type, ...] = (
    DNSChecker,
    HTTPChecker,
    PingChecker,
    RADIUSChecker,
    TCPChecker,
    UDPChecker,
)

# The checker types by the short names operators see (status pages, metrics labels).
CHECKER_KINDS: dict[type, str] = {
    TCPChecker: "tcp",
    HTTPChecker: "http",
    DNSChecker: "dns",
    UDPChecker: "udp",
    PingChecker: "ping",
    RADIUSChecker: "radius",
}


def checker_kind(checker: object) -> str:
    """``tcp``, ``http``, ``dns``, ``udp``, ``ping``, ``radius``, or ``unknown``."""
    return CHECKER_KINDS.get(type(checker), "unknown")


@dataclass(slots=True)
class Config:
    """healthcheck.Config. ``interval`` and ``timeout`` are nanoseconds."""

    id: int = 0
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    checker: Checker | None = None


@dataclass(slots=True)
class Checks:
    """healthcheck.Checks. ``configs`` is None when the engine sent a nil map."""

    configs: dict[int, Config] | None = None


@dataclass(slots=True)
class Status:
    last_check: GoTime = field(default_factory=GoTime)
    duration: int = 0
    failures: int = 0
    successes: int = 0
    state: int = State.UNKNOWN
    message: str = ""


@dataclass(slots=True)
class Notification:
    id: int = 0
    status: Status = field(default_factory=Status)


@dataclass(slots=True)
class Peer:
    component: int = Component.NONE
    identity: str = ""


@dataclass(slots=True)
class User:
    groups: list[str] = field(default_factory=list)
    uid: str = ""
    username: str = ""


@dataclass(slots=True)
class Context:
    """ipc.Context."""

    auth_token: str = ""
    auth_type: int = AuthType.NONE
    groups: list[str] = field(default_factory=list)
    peer: Peer = field(default_factory=Peer)
    proxy: Peer = field(default_factory=Peer)
    user: User = field(default_factory=User)

    @classmethod
    def trusted(cls, component: Component = Component.HEALTHCHECK) -> Context:
        """ipc.NewTrustedContext: this process's identity, user name and uid."""
        uid = os.getuid()
        try:
            username = pwd.getpwuid(uid).pw_name
        except KeyError:
            username = ""
        return cls(
            auth_type=AuthType.TRUSTED,
            peer=Peer(component=component, identity=f"{component} [pid {os.getpid()}]"),
            user=User(uid=str(uid), username=username),
        )


@dataclass(slots=True)
class HealthState:
    ctx: Context | None = None
    notifications: list[Notification] = field(default_factory=list)


# Past these a config is a mistake, not a plan (and would overflow timer arithmetic).
MAX_INTERVAL_NS = 7 * 24 * 3600 * SECOND
MAX_TIMEOUT_NS = 24 * 3600 * SECOND
MAX_RETRIES = 2**31 - 1


def config_problem(config: Config | None) -> str | None:
    """Why this config cannot run, or None when it can (the one definition of a valid
    config, whatever brought it: the engine, gRPC or a file)."""
    if config is None:
        return "no config (nil)"
    checker = config.checker
    if checker is None:
        return "no checker (nil)"
    if not isinstance(checker, CHECKER_TYPES):
        name = getattr(checker, "name", None) or type(checker).__name__
        return f"unknown checker type {name!r}"
    if not 0 < config.interval <= MAX_INTERVAL_NS:
        return (
            f"interval {_duration(config.interval)} is out of range "
            f"(0s, {_duration(MAX_INTERVAL_NS)}]"
        )
    if not 0 <= config.timeout <= MAX_TIMEOUT_NS:
        return (
            f"timeout {_duration(config.timeout)} is out of range [0s, {_duration(MAX_TIMEOUT_NS)}]"
        )
    if not 0 <= config.retries <= MAX_RETRIES:
        return f"retries {config.retries} is out of range [0, {MAX_RETRIES}]"
    target = checker.target
    if len(target.ip) not in (4, 16):  # all ip_from_bytes would check, without its cost
        try:
            ip_from_bytes(target.ip)
        except ValueError as err:
            return f"target: {err}"
    if not 0 <= target.port <= 65535:
        return f"target port {target.port} is out of range [0, 65535]"
    if not 0 <= target.mark <= 0xFFFFFFFF:
        return f"target mark {target.mark} is out of range [0, 2^32)"
    if target.mode not in (Mode.PLAIN, Mode.DSR, Mode.TUN):
        return f"target mode {target.mode} is unknown"
    if target.mode != Mode.PLAIN and len(target.host) not in (4, 16):
        try:
            ip_from_bytes(target.host)
        except ValueError as err:
            return f"target host (needed in {Mode(target.mode)} mode): {err}"
    return None


def _duration(ns: int) -> str:
    """Go's Duration.String(), or the raw number past int64 (Go could not send it)."""
    try:
        return format_duration(ns)
    except (ValueError, OverflowError):
        return f"{ns}ns"
