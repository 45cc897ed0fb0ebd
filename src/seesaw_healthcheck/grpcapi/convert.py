"""Between the gRPC API's messages and the domain model.

``check_from_proto`` turns a ``Check`` into a ``model.Config`` (what the engine's gob
path gives the manager) or raises ``CheckInvalid`` whose text says what is wrong, naming
the field. It checks only what the model cannot hold (an IP that is not one, a number
past its Go type, a malformed Duration, no checker); whether a config can *run* is
``server.manager.config_problem``'s to say, so the gob and gRPC paths agree on what is
valid. ``checks_from_proto`` does both for a whole ``SetChecksRequest`` and adds the
request-level rules (ids unique and not 0).

``status_to_proto`` turns a ``model.Status`` into an API ``Status``; ``StatusFilter``
applies a ``ListStatusRequest``. The reverse conversions (``check_to_proto``,
``status_from_proto``) serve clients and tests.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.protobuf import duration_pb2, timestamp_pb2, unknown_fields

from seesaw_healthcheck import model
from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb
from seesaw_healthcheck.model import config_problem

NS_PER_S = 1_000_000_000
MAX_NANOS = NS_PER_S - 1
UINT16_MAX = 0xFFFF
IP_PROTO_MAX = 0xFF

# The oneof's field names, in the .proto's order, and the model type of each.
CHECKER_FIELDS: dict[str, type[model.Checker]] = {
    "tcp": model.TCPChecker,
    "http": model.HTTPChecker,
    "dns": model.DNSChecker,
    "udp": model.UDPChecker,
    "ping": model.PingChecker,
    "radius": model.RADIUSChecker,
}
CHECKER_TYPES: dict[type[model.Checker], pb.CheckerType.ValueType] = {
    model.TCPChecker: pb.CHECKER_TYPE_TCP,
    model.HTTPChecker: pb.CHECKER_TYPE_HTTP,
    model.DNSChecker: pb.CHECKER_TYPE_DNS,
    model.UDPChecker: pb.CHECKER_TYPE_UDP,
    model.PingChecker: pb.CHECKER_TYPE_PING,
    model.RADIUSChecker: pb.CHECKER_TYPE_RADIUS,
}
_CHECKER_LIST = ", ".join(CHECKER_FIELDS)

# Target.proto when the check leaves it unspecified (ping: by the ip's family).
_OWN_PROTO: dict[type[model.Checker], int] = {
    model.TCPChecker: model.Proto.TCP,
    model.HTTPChecker: model.Proto.TCP,
    model.DNSChecker: model.Proto.UDP,
    model.UDPChecker: model.Proto.UDP,
    model.RADIUSChecker: model.Proto.UDP,
}
DNS_CLASS_IN = 1


class CheckInvalid(ValueError):
    """A Check the server cannot run; ``str()`` is the reason, naming the field."""


# --- Check -> model.Config --------------------------------------------------------------


def duration_ns(duration: duration_pb2.Duration, field: str) -> int:
    """A Duration in nanoseconds; CheckInvalid if it breaks the Duration rules (nanos
    within +-999,999,999 and of the sign of seconds)."""
    seconds, nanos = duration.seconds, duration.nanos
    if not -MAX_NANOS <= nanos <= MAX_NANOS:
        raise CheckInvalid(f"{field}: nanos {nanos} is out of range [-{MAX_NANOS}, {MAX_NANOS}]")
    if (seconds > 0 and nanos < 0) or (seconds < 0 and nanos > 0):
        raise CheckInvalid(f"{field}: seconds {seconds} and nanos {nanos} differ in sign")
    return seconds * NS_PER_S + nanos


_V4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"


def _ip(text: str, field: str) -> bytes:
    """An IP address text as ``net.ParseIP`` bytes (IPv4 in its 16-byte mapped form)."""
    # inet_pton is ~10x cheaper than ipaddress; only its canonical IPv4 text is taken as
    # is, so "01.2.3.4" still goes to ipaddress, which refuses leading zeros as Go does.
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
        if socket.inet_ntop(socket.AF_INET, packed) == text:
            return _V4_MAPPED_PREFIX + packed
    except OSError:
        try:
            return socket.inet_pton(socket.AF_INET6, text)
        except OSError:
            pass
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        if "%" in text:
            raise CheckInvalid(f"{field} {text!r}: an IPv6 zone is not allowed") from None
        raise CheckInvalid(f"{field} {text!r} is not an IP address") from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id is not None:
        raise CheckInvalid(f"{field} {text!r}: an IPv6 zone is not allowed")
    return model.ip_to_bytes(addr)


def _uint16(value: int, field: str) -> int:
    if value > UINT16_MAX:
        raise CheckInvalid(f"{field} {value} is out of range [0, {UINT16_MAX}]")
    return value


def _go_string(data: bytes) -> str:
    """Bytes as the model holds a Go string (UTF-8, other bytes kept as surrogates)."""
    return data.decode("utf-8", "surrogateescape")


def _target(check: pb.Check) -> model.Target:
    if not check.HasField("target"):
        raise CheckInvalid("target is not set")
    t = check.target
    if not t.ip:
        raise CheckInvalid("target.ip is empty")
    if t.proto > IP_PROTO_MAX:
        raise CheckInvalid(f"target.proto {t.proto} is out of range [0, {IP_PROTO_MAX}]")
    return model.Target(
        ip=_ip(t.ip, "target.ip"),
        host=_ip(t.host, "target.host") if t.host else b"",
        mark=t.mark,
        mode=t.mode,
        port=t.port,
        proto=t.proto,
    )


def _checker(check: pb.Check, target: model.Target) -> model.Checker:
    kind = check.WhichOneof("checker")
    if kind == "tcp":
        c = check.tcp
        return model.TCPChecker(
            target,
            receive=_go_string(c.receive),
            send=_go_string(c.send),
            secure=c.secure,
            tls_verify=c.tls_verify,
        )
    if kind == "http":
        h = check.http
        return model.HTTPChecker(
            target,
            secure=h.secure,
            tls_verify=h.tls_verify,
            method=h.method or "GET",  # as Seesaw's engine fills it in
            proxy=h.proxy,
            request=h.request,
            response=h.response,
            response_code=h.response_code,
        )
    if kind == "dns":
        d = check.dns
        question = model.DNSQuestion(
            name=d.query_name,
            qtype=_uint16(d.query_type, "dns.query_type"),
            qclass=_uint16(d.query_class, "dns.query_class") or DNS_CLASS_IN,
        )
        return model.DNSChecker(target, question, answer=d.answer)
    if kind == "udp":
        u = check.udp
        return model.UDPChecker(target, receive=_go_string(u.receive), send=_go_string(u.send))
    if kind == "ping":
        p = check.ping
        return model.PingChecker(
            target, id=_uint16(p.id, "ping.id"), seqnum=_uint16(p.seqnum, "ping.seqnum")
        )
    if kind == "radius":
        r = check.radius
        return model.RADIUSChecker(
            target,
            username=r.username,
            password=r.password,
            secret=r.secret,
            response=r.response,
        )
    # A checker field of a newer .proto arrives as an unknown field.
    fields = unknown_fields.UnknownFieldSet(check)
    unknown = sorted({int(fields[i].field_number) for i in range(len(fields))})
    if unknown:
        numbers = ", ".join(map(str, unknown))
        raise CheckInvalid(
            f"no known checker: field {numbers} is a checker type this server does not know "
            f"(it knows {_CHECKER_LIST})"
        )
    raise CheckInvalid(f"no checker: set one of {_CHECKER_LIST}")


def check_from_proto(check: pb.Check) -> model.Config:
    """The model Config of ``check``; CheckInvalid if the model cannot hold it.

    The result may still be unable to run: ``config_problem`` says so.
    """
    target = _target(check)
    checker = _checker(check, target)
    if not target.proto:
        own = _OWN_PROTO.get(type(checker))
        if own is None:  # ping
            own = model.Proto.ICMP if target.is_ipv4 else model.Proto.ICMPV6
        target.proto = own
    return model.Config(
        id=check.id,
        interval=duration_ns(check.interval, "interval"),
        timeout=duration_ns(check.timeout, "timeout"),
        retries=check.retries,
        checker=checker,
    )


def check_error(check_id: int, index: int, reason: str) -> pb.CheckError:
    return pb.CheckError(id=check_id, reason=reason, index=index)


class ConfigReuse:
    """Carried from one SetChecks to the next: each valid check's bytes and its Config, so
    that a check sent again unchanged keeps its very Config object (the control process
    then passes it over at the cost of an identity test) instead of being converted and
    compared again: a serialization in C instead of ~20 µs of Python per check. As
    ``gob.ReuseMap`` does for the engine's fetches."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[int, tuple[bytes, model.Config]] = {}


def checks_from_proto(
    checks: Sequence[pb.Check], reuse: ConfigReuse | None = None
) -> tuple[dict[int, model.Config], list[pb.CheckError]]:
    """A SetChecksRequest's checks: the configs that can run, by id, and one CheckError
    per other check, in request order. With ``reuse``, unchanged checks keep the Config
    of the last call, and ``reuse`` then holds this call's.

    Every occurrence of a duplicated id is rejected: which one was meant is unknowable.
    """
    previous = reuse.entries if reuse is not None else {}
    kept: dict[int, tuple[bytes, model.Config]] = {}
    configs: dict[int, model.Config] = {}
    errors: list[pb.CheckError] = []
    counts = Counter(c.id for c in checks)
    duplicated = {i for i, n in counts.items() if n > 1}
    for index, check in enumerate(checks):
        check_id = check.id
        if check_id == 0:
            errors.append(
                check_error(0, index, "id 0 is not allowed: it is what an unset id reads as")
            )
            continue
        if check_id in duplicated:
            reason = (
                f"id {check_id} is not unique: {counts[check_id]} checks in the request have it"
            )
            errors.append(check_error(check_id, index, reason))
            continue
        raw = check.SerializeToString(deterministic=True) if reuse is not None else b""
        last = previous.get(check_id)
        if last is not None and last[0] == raw:
            configs[check_id] = last[1]
            kept[check_id] = last
            continue
        try:
            config = check_from_proto(check)
        except CheckInvalid as err:
            errors.append(check_error(check_id, index, str(err)))
            continue
        problem = config_problem(config)
        if problem is not None:
            errors.append(check_error(check_id, index, problem))
            continue
        configs[check_id] = config
        if reuse is not None:
            kept[check_id] = (raw, config)
    if reuse is not None:
        reuse.entries = kept
    return configs, errors


# --- model.Config -> Check ----------------------------------------------------------------


def _duration(ns: int) -> duration_pb2.Duration:
    seconds, nanos = divmod(abs(ns), NS_PER_S)
    sign = -1 if ns < 0 else 1
    return duration_pb2.Duration(seconds=sign * seconds, nanos=sign * nanos)


def _ip_text(raw: bytes) -> str:
    return str(model.ip_from_bytes(raw)) if raw else ""


def _go_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def check_to_proto(config: model.Config) -> pb.Check:
    """The Check of a model Config (ValueError if it has no checker or holds what the API
    cannot: bytes that are not UTF-8 in a string field, an IP of the wrong length)."""
    checker = config.checker
    if checker is None:
        raise ValueError(f"config {config.id} has no checker")
    t = checker.target
    check = pb.Check(
        id=config.id,
        interval=_duration(config.interval),
        timeout=_duration(config.timeout),
        retries=config.retries,
        target=pb.Target(
            ip=_ip_text(t.ip),
            host=_ip_text(t.host),
            port=t.port,
            proto=pb.Protocol.ValueType(t.proto),
            mode=pb.Mode.ValueType(t.mode),
            mark=t.mark,
        ),
    )
    try:
        if isinstance(checker, model.TCPChecker):
            check.tcp.CopyFrom(
                pb.TCPChecker(
                    send=_go_bytes(checker.send),
                    receive=_go_bytes(checker.receive),
                    secure=checker.secure,
                    tls_verify=checker.tls_verify,
                )
            )
        elif isinstance(checker, model.HTTPChecker):
            check.http.CopyFrom(
                pb.HTTPChecker(
                    method=checker.method,
                    request=checker.request,
                    response=checker.response,
                    response_code=checker.response_code,
                    secure=checker.secure,
                    tls_verify=checker.tls_verify,
                    proxy=checker.proxy,
                )
            )
        elif isinstance(checker, model.DNSChecker):
            q = checker.question
            check.dns.CopyFrom(
                pb.DNSChecker(
                    query_name=q.name,
                    query_type=q.qtype,
                    query_class=q.qclass,
                    answer=checker.answer,
                )
            )
        elif isinstance(checker, model.UDPChecker):
            check.udp.CopyFrom(
                pb.UDPChecker(send=_go_bytes(checker.send), receive=_go_bytes(checker.receive))
            )
        elif isinstance(checker, model.PingChecker):
            check.ping.CopyFrom(pb.PingChecker(id=checker.id, seqnum=checker.seqnum))
        else:
            check.radius.CopyFrom(
                pb.RADIUSChecker(
                    username=checker.username,
                    password=checker.password,
                    secret=checker.secret,
                    response=checker.response,
                )
            )
    except UnicodeEncodeError as err:
        raise ValueError(f"config {config.id}: a string field is not UTF-8: {err}") from None
    return check


def checker_type(checker: model.Checker | None) -> pb.CheckerType.ValueType:
    """The API's CheckerType of a model checker (UNSPECIFIED for none)."""
    if checker is None:
        return pb.CHECKER_TYPE_UNSPECIFIED
    return CHECKER_TYPES.get(type(checker), pb.CHECKER_TYPE_UNSPECIFIED)


# --- model.Status <-> Status --------------------------------------------------------------


def _utf8(text: str) -> str:
    """A Go string as valid UTF-8 (proto3 strings must be): other bytes become U+FFFD."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def status_to_proto(check_id: int, status: model.Status) -> pb.Status:
    """The API Status of one check; ``last_check`` is left unset before the first run."""
    msg = pb.Status(
        id=check_id,
        state=pb.State.ValueType(status.state),
        duration=_duration(status.duration),
        failures=status.failures,
        successes=status.successes,
        message=_utf8(status.message),
    )
    if not status.last_check.is_zero:
        seconds, nanos = divmod(status.last_check.unix_ns, NS_PER_S)
        msg.last_check.CopyFrom(timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos))
    return msg


def status_from_proto(msg: pb.Status) -> tuple[int, model.Status]:
    """The check id and model Status of an API Status (times in UTC: the API has no zone)."""
    last_check = GoTime()
    if msg.HasField("last_check"):
        ts = msg.last_check
        last_check = GoTime.from_unix_ns(ts.seconds * NS_PER_S + ts.nanos)
    d = msg.duration
    return msg.id, model.Status(
        last_check=last_check,
        duration=d.seconds * NS_PER_S + d.nanos,
        failures=msg.failures,
        successes=msg.successes,
        state=msg.state,
        message=msg.message,
    )


# --- ListStatusRequest ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusFilter:
    """A ListStatusRequest's filters; an empty set lets everything through."""

    states: frozenset[int] = frozenset()
    types: frozenset[int] = frozenset()
    ips: frozenset[bytes] = frozenset()  # 16-byte net.ParseIP form
    ids: frozenset[int] = frozenset()

    @classmethod
    def from_proto(cls, request: pb.ListStatusRequest) -> StatusFilter:
        """The filter of ``request``; ValueError (to answer INVALID_ARGUMENT) for an ip
        that is not one."""
        ips = set()
        for text in request.ips:
            try:
                ips.add(model.ip_to_bytes(text))
            except ValueError:
                raise ValueError(f"ips: {text!r} is not an IP address") from None
        return cls(
            states=frozenset(request.states),
            types=frozenset(request.types),
            ips=frozenset(ips),
            ids=frozenset(request.ids),
        )

    def matches(self, check_id: int, config: model.Config | None, state: int) -> bool:
        if self.ids and check_id not in self.ids:
            return False
        if self.states and state not in self.states:
            return False
        checker = config.checker if config is not None else None
        if self.types and checker_type(checker) not in self.types:
            return False
        if self.ips:
            if checker is None:
                return False
            return any(_same_ip(raw, self.ips) for raw in (checker.target.ip, checker.target.host))
        return True


def _same_ip(raw: bytes, wanted: Iterable[bytes]) -> bool:
    if not raw:
        return False
    try:
        normal = model.ip_to_bytes(model.ip_from_bytes(raw))
    except ValueError:
        return False
    return normal in wanted
