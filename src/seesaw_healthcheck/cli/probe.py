"""``seesaw-healthcheck-probe``: run one kind of health check by hand, from the shell.

It takes exactly the flags of Seesaw's ``healthcheck_test_tool`` (same names, defaults and
Go flag syntax), glog's logging flags included (``-v``, ``-logtostderr``, ``-log_dir``, ...,
which glog adds to every Seesaw binary), and prints one line per check, like that tool,
plus how long the check took. Unlike that tool it exits 1 when any check fails (0 when all
pass, 2 on a bad command line), so scripts can use it; and it refuses on the command line
what cannot work: a negative ``-timeout``, a DNS check without ``-answer``.

``-parallel N`` runs N checks at once on one reactor. ``-count`` is, as in Go's tool, the
number of echo requests each ping check sends; other types run one check per worker.
"""

from __future__ import annotations

import ipaddress
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO, cast

import dns.rdataclass
import dns.rdatatype

from seesaw_healthcheck import checkers
from seesaw_healthcheck.checkers.base import DEFAULT_TIMEOUT_S
from seesaw_healthcheck.cli import glog
from seesaw_healthcheck.cli.goflags import ErrorHandling, FlagSet, go_quote
from seesaw_healthcheck.goduration import DurationError, format_duration, parse_duration
from seesaw_healthcheck.model import (
    Checker,
    DNSChecker,
    DNSQuestion,
    HTTPChecker,
    PingChecker,
    Proto,
    RADIUSChecker,
    Target,
    TCPChecker,
    UDPChecker,
    ip_from_bytes,
    ip_to_bytes,
)
from seesaw_healthcheck.reactor import Future, Reactor

__all__ = ["ProbeError", "build_checker", "go_unquote", "main"]

CHECK_TYPES = ("dns", "http", "https", "ping", "radius", "tcp", "tcp_tls", "udp")
PROGRAM = "seesaw-healthcheck-probe"
# The flags glog registers in every Go binary that links it, as Seesaw's tools do.
GLOG_FLAGS = (
    "alsologtostderr", "log_backtrace_at", "log_dir", "logtostderr", "stderrthreshold", "v",
    "vmodule",
)  # fmt: skip


class ProbeError(Exception):
    """A setting the probe cannot run with; the message is the whole story."""


@dataclass(slots=True)
class ProbeOptions:
    """The parsed command line, with the names and defaults of Go's tool."""

    type: str = "ping"
    ip: str = "127.0.0.1"
    port: int = 80
    mark: int = 0
    count: int = 3
    receive: str = ""
    send: str = ""
    method: str = "GET"
    proxy: bool = False
    request: str = "/"
    response: str = ""
    response_code: int = 200
    tls_verify: bool = True
    parallel: int = 1
    answer: str = ""
    query: str = ""
    query_type: str = "A"
    radius_user: str = ""
    radius_password: str = ""
    radius_response: str = "accept"
    radius_secret: str = ""
    timeout: int = 0  # nanoseconds; 0 means the check type's default


def flag_set(prog: str, error_handling: ErrorHandling = ErrorHandling.EXIT_ON_ERROR,
             output: TextIO | None = None) -> FlagSet:  # fmt: skip
    """The flags of Go's healthcheck_test_tool, in its words."""
    d = ProbeOptions()
    flags = FlagSet(prog, error_handling, output)
    flags.string("type", d.type, "healthcheck type")
    flags.string("ip", d.ip, "IP address to check")
    flags.int("port", d.port, "port to check")
    flags.int("mark", d.mark, "mark to use for network traffic")
    flags.int("count", d.count, "number of packets to send for a ping healthcheck")
    flags.string("receive", d.receive, "expected TCP or UDP response string")
    flags.string("send", d.send, "string to send for a TCP or UDP healthcheck")
    flags.string("method", d.method, "HTTP method")
    flags.bool("proxy", d.proxy, "HTTP(S) healthcheck is against a proxy")
    flags.string("request", d.request, "request URI for an HTTP(S) healthcheck")
    flags.string("response", d.response, "expected HTTP(S) response")
    flags.int("response_code", d.response_code, "expected HTTP(S) response code")
    flags.bool("tls_verify", d.tls_verify, "enable TLS verification for HTTPS and TCP TLS")
    flags.int("parallel", d.parallel, "concurrent goroutines")
    flags.string("answer", d.answer, "DNS answer expected from query")
    flags.string("query", d.query, "DNS query to perform")
    flags.string("query_type", d.query_type, "DNS query type")
    flags.string("radius_user", d.radius_user, "RADIUS username")
    flags.string("radius_password", d.radius_password, "RADIUS password")
    flags.string(
        "radius_response",
        d.radius_response,
        "RADIUS response type (any, accept, challenge or reject)",
    )
    flags.string("radius_secret", d.radius_secret, "RADIUS secret")
    flags.var("timeout", d.timeout, _timeout_usage(), _parse_timeout, type_name="duration",
              default_text="0s", zero_text="0s")  # fmt: skip
    _glog_flags(flags)
    return flags


def _timeout_usage() -> str:
    """Go's tool says "healthcheck timeout"; we also say what 0, its default, means."""
    per_type = ", ".join(
        f"{kind.__name__.removesuffix('Checker').lower()} {format_duration(int(s * 1e9))}"
        for kind, s in sorted(DEFAULT_TIMEOUT_S.items(), key=lambda item: item[0].__name__)
    )
    return f"healthcheck timeout; 0 (the default) means the type's own: {per_type}"


def _parse_timeout(text: str) -> int:
    try:
        value = parse_duration(text)
    except DurationError:
        raise ValueError("parse error") from None
    if value < 0:
        raise ValueError("negative timeout")
    return value


def _glog_flags(flags: FlagSet) -> None:
    """glog's flags (``GLOG_FLAGS``), with the server's words and defaults."""
    flags.bool("alsologtostderr", False, "log to standard error as well as files")
    flags.var("log_backtrace_at", "", "file:N where glog would log a stack trace (checked, "
              "not used)", _checked(glog.parse_backtrace_at))  # fmt: skip
    flags.string("log_dir", "", "If non-empty, write log files in this directory")
    flags.bool("logtostderr", False, "log to standard error instead of files")
    flags.var("stderrthreshold", "ERROR", "logs at or above this threshold go to stderr",
              _checked(glog.parse_severity))  # fmt: skip
    flags.int("v", 0, "log level for V logs")
    flags.var("vmodule", "", "comma-separated list of pattern=N settings for per-file V "
              "levels (checked, not used: -v applies to all)",
              _checked(glog.parse_vmodule))  # fmt: skip


def _checked(check: Callable[[str], object]) -> Callable[[str], str]:
    """A string flag whose text must pass ``check`` (ValueError: Go's flag error)."""

    def parse(text: str) -> str:
        check(text)
        return text

    return parse


# --------------------------------------------------------------- Go string literals

_SIMPLE_ESCAPES = {
    "a": 0x07, "b": 0x08, "f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B,
    "\\": 0x5C, '"': 0x22,
}  # fmt: skip
_HEX_DIGITS = "0123456789abcdefABCDEF"


def _unquote_error(text: str) -> ProbeError:
    return ProbeError(f"Failed to unquote {go_quote(text)}: invalid syntax")


def go_unquote(text: str) -> str:
    """Go's tool passes -send/-receive/-request/-response through strconv.Unquote when they
    start with a double quote or a backquote, so ``-send '"GET /\\r\\n"'`` sends CR LF."""
    if not text.startswith(('"', "`")):
        return text
    quote = text[0]
    if len(text) < 2 or text[-1] != quote:
        raise _unquote_error(text)
    body = text[1:-1]
    if quote == "`":
        if "`" in body:
            raise _unquote_error(text)
        return body.replace("\r", "")  # Go drops carriage returns from raw strings
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch in '"\n':
            raise _unquote_error(text)
        if ch != "\\":
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        if i + 1 >= len(body):
            raise _unquote_error(text)
        kind = body[i + 1]
        i += 2
        if kind in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[kind])
        elif kind in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[kind]
            digits = body[i : i + width]
            if len(digits) != width or any(c not in _HEX_DIGITS for c in digits):
                raise _unquote_error(text)
            value = int(digits, 16)
            i += width
            if kind == "x":
                out.append(value)
            elif value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise _unquote_error(text)
            else:
                out += chr(value).encode()
        elif kind in "01234567":
            digits = body[i - 1 : i + 2]
            if len(digits) != 3 or any(c not in "01234567" for c in digits):
                raise _unquote_error(text)
            value = int(digits, 8)
            if value > 0xFF:
                raise _unquote_error(text)
            out.append(value)
            i += 2
        else:
            raise _unquote_error(text)
    return out.decode("utf-8", "surrogateescape")


# --------------------------------------------------------------- building checkers


def parse_ip(text: str) -> bytes:
    """A ``net.IP`` as Go's net.ParseIP gives it (16 bytes); ProbeError if not an IP."""
    try:
        if "%" in text:  # Go's ParseIP has no zones
            raise ValueError(text)
        return ip_to_bytes(ipaddress.ip_address(text))
    except ValueError:
        raise ProbeError(f"Invalid IP address: {text}") from None


def dns_type(name: str) -> int:
    """healthcheck.DNSType: a query type name (any case) to its number."""
    try:
        return int(dns.rdatatype.from_text(name.upper()))
    except (dns.rdatatype.UnknownRdatatype, ValueError):
        raise ProbeError(f"unknown DNS type {go_quote(name)}") from None


def build_checker(opts: ProbeOptions, ip: bytes, ping_id: int = 0) -> Checker:
    """The model checker Go's tool builds for ``opts.type`` (``ping_id``: the ICMP id)."""

    def target(proto: int) -> Target:
        return Target(ip=ip, port=opts.port, proto=proto, mark=opts.mark)

    kind = opts.type
    if kind in ("tcp", "tcp_tls"):
        return TCPChecker(
            target=target(Proto.TCP),
            receive=go_unquote(opts.receive),
            send=go_unquote(opts.send),
            secure=kind == "tcp_tls",
            tls_verify=opts.tls_verify,
        )
    if kind in ("http", "https"):
        return HTTPChecker(
            target=target(Proto.TCP),
            secure=kind == "https",
            tls_verify=opts.tls_verify,
            method=opts.method,
            proxy=opts.proxy,
            request=go_unquote(opts.request),
            response=go_unquote(opts.response),
            response_code=opts.response_code,
        )
    if kind == "udp":
        return UDPChecker(
            target=target(Proto.UDP), receive=go_unquote(opts.receive), send=go_unquote(opts.send)
        )
    if kind == "dns":
        question = DNSQuestion(
            name=opts.query, qtype=dns_type(opts.query_type), qclass=int(dns.rdataclass.IN)
        )
        if not opts.answer:  # else the check fails on "" as an answer, naming no flag
            raise ProbeError("-type dns needs -answer (the answer expected, e.g. 192.0.2.1)")
        return DNSChecker(target=target(Proto.UDP), question=question, answer=opts.answer)
    if kind == "radius":
        return RADIUSChecker(
            target=target(Proto.UDP),
            username=opts.radius_user,
            password=opts.radius_password,
            secret=opts.radius_secret,
            response=opts.radius_response,
        )
    if kind == "ping":
        is_v4 = ip_from_bytes(ip).version == 4
        proto = Proto.ICMP if is_v4 else Proto.ICMPV6
        return PingChecker(target=Target(ip=ip, proto=proto, mark=opts.mark), id=ping_id)
    raise ProbeError(f"Unsupported healthcheck type: {go_quote(kind)}")


# --------------------------------------------------------------- running


@dataclass(slots=True)
class Outcome:
    success: bool
    lines: list[str]


def _go_log_prefix() -> str:
    """Go's standard logger prefix: local date and time."""
    return time.strftime("%Y/%m/%d %H:%M:%S ")


async def _check_once(checker: Checker, timeout_s: float) -> Outcome:
    result = await checkers.run(checker, timeout_s)
    verdict = "success" if result.success else "failure"
    line = (
        f"{checkers.describe(checker)} - {result} "
        f"(healthcheck {verdict}, {format_duration(result.duration_ns)})"
    )
    return Outcome(result.success, [line if result.success else "Error message: " + line])


async def _ping(checker: PingChecker, count: int, timeout_s: float) -> Outcome:
    lines = []
    received = 0
    host = str(ip_from_bytes(checker.target.ip))
    for sequence in range(count):
        checker.seqnum = sequence & 0xFFFF
        result = await checkers.run(checker, timeout_s)
        if result.success:
            received += 1
            lines.append(f"Received reply from {host} in {format_duration(result.duration_ns)}")
        else:
            lines.append(f"Failed to ping {host}: {result}")
    summary = f"Sent {count} packets, received {received} replies"
    ok = received == count
    lines.append(summary if ok else "Error message: " + summary)
    return Outcome(ok, lines)


def run_probe(opts: ProbeOptions, out: TextIO) -> int:
    """Run the checks ``opts`` asks for; print their lines; 0 if all passed, else 1."""
    ip = parse_ip(opts.ip)
    if opts.parallel < 1:
        raise ProbeError(f"Invalid value for parallel: {opts.parallel}")
    if opts.type not in CHECK_TYPES:
        raise ProbeError(f"Unsupported healthcheck type: {go_quote(opts.type)}")
    # Go seeds its first ping id from the pid and counts up for each checker.
    first_id = random.Random(os.getpid()).getrandbits(16)
    workers = [build_checker(opts, ip, (first_id + n) & 0xFFFF) for n in range(opts.parallel)]
    timeout_s = opts.timeout / 1e9 if opts.timeout > 0 else 0.0
    # The reactor deadline is a backstop: each check already ends within its timeout.
    per_check = timeout_s or 15.0
    rounds = max(opts.count, 1) if opts.type == "ping" else 1
    backstop = per_check * rounds + 5.0

    def work(checker: Checker) -> Any:
        if isinstance(checker, PingChecker):
            return _ping(checker, opts.count, timeout_s)
        return _check_once(checker, timeout_s)

    with Reactor() as reactor:

        async def run_all() -> list[Outcome | BaseException]:
            futures: list[Future[Outcome | BaseException]] = []
            for checker in workers:
                future: Future[Outcome | BaseException] = Future()
                futures.append(future)
                reactor.spawn(work(checker), on_done=_resolver(future))
            return [await future for future in futures]

        outcomes = reactor.run(run_all(), timeout=backstop)

    failures = 0
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            failures += 1
            out.write(f"{_go_log_prefix()}Error message: {type(outcome).__name__}: {outcome}\n")
            continue
        failures += not outcome.success
        for line in outcome.lines:
            out.write(f"{_go_log_prefix()}{line}\n")
    out.write(
        f"{_go_log_prefix()}Test done. {opts.parallel} goroutines. "
        f"success: {opts.parallel - failures}, fail: {failures}\n"
    )
    out.flush()
    return 1 if failures else 0


def _resolver(future: Future[Outcome | BaseException]) -> Callable[[Any], None]:
    def resolve(result: Any) -> None:
        future.set_result(result)

    return resolve


def _fatal(message: str) -> NoReturn:
    """Go's log.Fatal: the message with the log prefix on stderr, exit status 1."""
    sys.stderr.write(f"{_go_log_prefix()}{message}\n")
    sys.stderr.flush()
    sys.exit(1)


def _usage_error(flags: FlagSet, message: str) -> NoReturn:
    """A command line that cannot work: the message and the usage, exit 2 (Go's flag)."""
    flags.output.write(message + "\n")
    flags.print_usage()
    sys.exit(2)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    prog = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if not prog or prog.endswith(".py"):  # run as python -m: name the command instead
        prog = PROGRAM
    flags = flag_set(prog)
    values = flags.parse(args)  # exits 2 on a bad command line, 0 for -h
    logging_flags = {name: values.pop(name) for name in GLOG_FLAGS}
    opts = ProbeOptions(**values)  # type: ignore[arg-type]
    try:
        glog.setup(
            PROGRAM,
            log_dir=str(logging_flags["log_dir"]) or None,
            logtostderr=bool(logging_flags["logtostderr"]),
            alsologtostderr=bool(logging_flags["alsologtostderr"]),
            verbosity=cast(int, logging_flags["v"]),
            stderrthreshold=str(logging_flags["stderrthreshold"]),
        )
    except (ValueError, OSError) as err:
        _usage_error(flags, str(err))
    try:
        return run_probe(opts, sys.stdout)
    except ProbeError as err:
        _fatal(str(err))
    except KeyboardInterrupt:
        return 130
    finally:
        glog.shutdown()


if __name__ == "__main__":
    sys.exit(main())
