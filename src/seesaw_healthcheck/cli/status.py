"""``seesaw-healthcheck-status``: the checks of a running server in a terminal, and a
Nagios plugin.

It reads ``/status`` from the server's HTTP endpoint (``--url``, default
``http://127.0.0.1:10258``), with the endpoint's filters (``--state``, ``--type``,
``--ip``), and prints a one-line summary in the Nagios plugin format, a line about the
server, and a table of the checks: aligned columns fitted to the terminal (least useful
columns dropped first, long descriptions and messages cut). ``--json`` prints the server's
answer as it came instead.

Exit status, as a Nagios plugin's: 0 OK; 1 WARNING when the unhealthy checks (of those
selected) number at least ``--warn-unhealthy``; 2 CRITICAL when at least
``--crit-unhealthy``, or when the server cannot be reached or gives a bad answer (the
reason is the summary and one line on stderr); 3 UNKNOWN for a bad command line.
Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import ipaddress
import json
import os
import shutil
import sys
import textwrap
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

from seesaw_healthcheck.goduration import format_duration

DEFAULT_URL = "http://127.0.0.1:10258"
STATES = ("healthy", "unhealthy", "unknown")
TYPES = ("tcp", "http", "dns", "udp", "ping", "radius", "unknown")
STATE_ORDER = {"unhealthy": 0, "unknown": 1, "healthy": 2}

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}

PROG = "seesaw-healthcheck-status"
MAX_ANSWER = 1 << 30  # bytes of /status read at most (50,000 checks are about 25 MiB)


class StatusError(Exception):
    """The server could not be reached, or its answer is not a /status document."""


# ---- fetching ----------------------------------------------------------------------------


def normalize_url(url: str) -> str:
    """``host:port`` or ``http(s)://host:port[/prefix]``, as a base URL without a slash."""
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"bad --url {url!r}: want http://HOST:PORT")
    if parts.query or parts.fragment:
        raise ValueError(f"bad --url {url!r}: no query or fragment, please")
    return url.rstrip("/")


def status_url(base: str, state: str | None, kind: str | None, ip: str | None) -> str:
    params = [(k, v) for k, v in (("state", state), ("type", kind), ("ip", ip)) if v]
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    return f"{base}/status{query}"


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        return _reason(error.reason)
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    return str(error) or type(error).__name__


def fetch(url: str, timeout: float) -> tuple[bytes, dict[str, Any]]:
    """The raw body of ``url`` and its JSON document; StatusError with a one-line reason."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as error:
        detail = error.reason
        try:
            answer = json.loads(error.read(65536))
            if isinstance(answer, dict) and isinstance(answer.get("error"), str):
                detail = answer["error"]
        except (ValueError, OSError):
            pass
        raise StatusError(f"HTTP {error.code} from {url}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise StatusError(f"cannot reach {url}: {_reason(error)}") from None
    if len(body) > MAX_ANSWER:
        raise StatusError(f"answer of {url} is larger than {MAX_ANSWER} bytes")
    try:
        document = json.loads(body)
    except ValueError as error:
        raise StatusError(f"answer of {url} is not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("checks"), list):
        raise StatusError(f"answer of {url} is not a /status document (no checks list)")
    if not all(isinstance(c, dict) for c in document["checks"]):
        raise StatusError(f"answer of {url} is not a /status document (a check is no object)")
    return body, document


# ---- summary -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    healthy: int
    unhealthy: int
    unknown: int

    @property
    def total(self) -> int:
        return self.healthy + self.unhealthy + self.unknown


def count(checks: Sequence[dict[str, Any]]) -> Counts:
    states = [c.get("state") for c in checks]
    healthy = states.count("healthy")
    unhealthy = states.count("unhealthy")
    return Counts(healthy, unhealthy, len(states) - healthy - unhealthy)


def exit_status(counts: Counts, warn: int | None, crit: int | None) -> int:
    if crit is not None and counts.unhealthy >= crit:
        return CRITICAL
    if warn is not None and counts.unhealthy >= warn:
        return WARNING
    return OK


def summary_line(status: int, counts: Counts) -> str:
    return (
        f"{STATUS_NAMES[status]} - {counts.total} checks: {counts.healthy} healthy, "
        f"{counts.unhealthy} unhealthy, {counts.unknown} unknown"
    )


# ---- formatting --------------------------------------------------------------------------


def parse_time(value: Any) -> _dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def format_age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def age(value: Any, now: _dt.datetime) -> str:
    when = parse_time(value)
    return "-" if when is None else format_age((now - when).total_seconds())


def format_seconds(seconds: Any) -> str:
    """A duration in seconds as Go prints it, to 3 significant digits: ``1.23ms``."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "-"
    ns = round(seconds * 1e9)
    if ns >= 1000:
        digits = len(str(abs(ns)))
        step = 10 ** max(0, digits - 3)
        ns = round(ns / step) * step
    return format_duration(ns)


def printable(text: Any) -> str:
    """One line of text: control characters (a target's message may hold escape
    sequences) are shown escaped instead of reaching the terminal."""
    s = "" if text is None else str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def format_target(target: Any) -> str:
    if not isinstance(target, dict):
        return ""
    ip = str(target.get("ip") or "")
    port = target.get("port") or 0
    host = f"[{ip}]" if ":" in ip else ip
    text = f"{host}:{port}" if port else ip
    mode = target.get("mode")
    if mode and mode != "plain":
        text += f" {mode}"
        if target.get("host"):
            text += f" via {target['host']}"
    return printable(text)


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    cell: Callable[[dict[str, Any], _dt.datetime], str]
    drop: int = 0  # columns with the highest number go first when the terminal is narrow
    right: bool = False
    flex: bool = False  # shares the width left; cut to fit
    min_width: int = 0
    grow: int = 0  # which flexible column gets more room first


def _int_cell(key: str) -> Callable[[dict[str, Any], _dt.datetime], str]:
    return lambda c, now: str(c.get(key, 0))


def _message(check: dict[str, Any], now: _dt.datetime) -> str:
    if check.get("problem"):
        return printable(f"config problem: {check['problem']}")
    return printable(check.get("message"))


COLUMNS = (
    Column("ID", lambda c, now: str(c.get("id", ""))),
    Column("TYPE", lambda c, now: printable(c.get("type"))),
    Column(
        "TARGET", lambda c, now: format_target(c.get("target")), flex=True, min_width=22, grow=1
    ),
    Column("STATE", lambda c, now: printable(c.get("state"))),
    Column("SINCE", lambda c, now: age(c.get("since"), now), drop=2, right=True),
    Column("CHECKED", lambda c, now: age(c.get("last_check"), now), drop=5, right=True),
    Column(
        "TOOK",
        lambda c, now: format_seconds(c.get("duration")) if c.get("last_check") else "-",
        drop=6,
        right=True,
    ),
    Column("FAIL", _int_cell("failures"), drop=3, right=True),
    Column("OK", _int_cell("successes"), drop=7, right=True),
    Column("CONSEC", _int_cell("consecutive_failures"), drop=4, right=True),
    Column(
        "DESCRIPTION",
        lambda c, now: printable(c.get("description")),
        drop=8,
        flex=True,
        min_width=20,
        grow=2,
    ),
    Column("MESSAGE", _message, flex=True, min_width=30),
)
GAP = 2  # spaces between columns
MIN_CUT = 4  # a flexible column is never cut narrower than this


def cut(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: max(0, width - 3)] + "..." if width >= 4 else text[:width]


def fit(columns: Sequence[Column], natural: Sequence[int], width: int) -> list[int | None]:
    """Each column's width, None for a dropped one; ``width`` 0 means no limit.

    Columns are dropped (highest ``drop`` first) until the fixed ones at their natural
    width and the flexible ones at their minimum fit; the flexible ones then share what
    is left: each its minimum first, then the rest in ``grow`` order (the message first),
    none wider than it needs.
    """
    widths: list[int | None] = list(natural)
    if width <= 0:
        return widths

    def needed() -> int:
        used = [i for i, w in enumerate(widths) if w is not None]
        fixed = sum(natural[i] for i in used if not columns[i].flex)
        flex = sum(min(natural[i], columns[i].min_width) for i in used if columns[i].flex)
        return fixed + flex + GAP * (len(used) - 1)

    droppable = sorted((c.drop, i) for i, c in enumerate(columns) if c.drop)
    while needed() > width and droppable:
        _, i = droppable.pop()
        widths[i] = None
    used = [i for i, w in enumerate(widths) if w is not None]
    left = width - GAP * (len(used) - 1)
    left -= sum(natural[i] for i in used if not columns[i].flex)
    flex = sorted((columns[i].grow, i) for i in used if columns[i].flex)
    for _, i in flex:
        widths[i] = min(natural[i], columns[i].min_width)
        left -= widths[i] or 0
    if left < 0:  # too narrow even so: each gets its share of the minimums
        minimums = sum(widths[i] or 0 for _, i in flex)
        budget = minimums + left
        for _, i in flex:
            widths[i] = max(MIN_CUT, (widths[i] or 0) * budget // minimums)
        left = 0
    for _, i in flex:
        more = max(0, min(natural[i] - (widths[i] or 0), left))
        widths[i] = max(MIN_CUT, (widths[i] or 0) + more)
        left -= more
    return widths


def table(checks: Sequence[dict[str, Any]], now: _dt.datetime, width: int) -> list[str]:
    rows = [[col.cell(check, now) for col in COLUMNS] for check in checks]
    natural = [
        max([len(col.title), *(len(row[i]) for row in rows)]) for i, col in enumerate(COLUMNS)
    ]
    widths = fit(COLUMNS, natural, width)
    shown = [(i, w) for i, w in enumerate(widths) if w is not None]
    lines = []
    for row in [[col.title for col in COLUMNS], *rows]:
        cells = []
        for n, (i, w) in enumerate(shown):
            text = cut(row[i], w)
            last = n == len(shown) - 1
            cells.append(text.rjust(w) if COLUMNS[i].right else text if last else text.ljust(w))
        lines.append((" " * GAP).join(cells).rstrip())
    return lines


def server_lines(server: Any, now: _dt.datetime, width: int) -> list[str]:
    """What the server says about itself, wrapped at ``width`` (0: no limit)."""
    text = server_line(server, now)
    if width <= 0:
        return text.splitlines()
    return [
        wrapped
        for line in text.splitlines()
        for wrapped in textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False)
    ]


def server_line(server: Any, now: _dt.datetime) -> str:
    if not isinstance(server, dict):
        return "server: no information"
    workers = server.get("workers")
    parts = [
        f"server {printable(server.get('version', '?'))}, pid {server.get('pid', '?')}, "
        f"config {printable(server.get('config_source', '?'))}, "
        f"{workers} worker{'s' if workers != 1 else ''}",
        f"last fetch {_ago(server.get('last_fetch'), now)}",
        f"last notification {_ago(server.get('last_notification'), now)}",
        f"{server.get('pending_notifications', 0)} pending notifications",
    ]
    line = "; ".join(parts)
    if server.get("last_fetch_error"):
        line += f"\nlast fetch failed: {printable(server['last_fetch_error'])}"
    return line


def _ago(value: Any, now: _dt.datetime) -> str:
    return "never" if parse_time(value) is None else f"{age(value, now)} ago"


SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "id": lambda c: int(c["id"]) if isinstance(c.get("id"), int) else 0,
    "state": lambda c: STATE_ORDER.get(str(c.get("state")), 3),
    "type": lambda c: str(c.get("type")),
    "failures": lambda c: -(c.get("failures") or 0),
    "since": lambda c: str(c.get("since") or ""),
}


# ---- command line ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Exits 3 (UNKNOWN) on a bad command line, as a Nagios plugin should."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(UNKNOWN, f"{self.prog}: error: {message}\n")


def _threshold(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"want 1 or more, not {n}")
    return n


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"want 0 < seconds <= 3600, not {text}")
    return value


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from None


def _width(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"want 0 (no limit) or more, not {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Show the checks of a running seesaw-healthcheck; a Nagios plugin.",
        epilog="Exit status: 0 OK, 1 WARNING, 2 CRITICAL (or server unreachable), "
        "3 UNKNOWN (bad command line).",
    )
    p.add_argument("--url", default=DEFAULT_URL, help="the server's HTTP endpoint (%(default)s)")
    p.add_argument("--state", choices=STATES, help="only checks in this state")
    p.add_argument("--type", choices=TYPES, dest="kind", help="only checks of this type")
    p.add_argument("--ip", type=_ip, help="only checks of this target address")
    p.add_argument("--json", action="store_true", help="print the server's JSON answer as is")
    p.add_argument("--warn-unhealthy", type=_threshold, metavar="N", help="WARNING at N")
    p.add_argument("--crit-unhealthy", type=_threshold, metavar="N", help="CRITICAL at N")
    p.add_argument("--sort", choices=tuple(SORT_KEYS), default="id", help="table order (id)")
    p.add_argument(
        "--width",
        type=_width,
        help="table width in columns, 0 for no limit (default: the terminal's, "
        "else $COLUMNS, else no limit)",
    )
    p.add_argument(
        "--timeout", type=_seconds, default=10.0, help="seconds to wait for the server (10)"
    )
    return p


def terminal_width(stream: TextIO) -> int:
    if stream.isatty():
        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = sys.stdout
    if isinstance(out, io.TextIOWrapper):
        out.reconfigure(errors="replace")  # a C locale must not crash on a message
    try:
        base = normalize_url(args.url)
    except ValueError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return UNKNOWN
    url = status_url(base, args.state, args.kind, args.ip)
    try:
        body, document = fetch(url, args.timeout)
    except StatusError as error:
        print(f"CRITICAL - {error}", file=out)
        print(f"{PROG}: {error}", file=sys.stderr)
        return CRITICAL
    checks: list[dict[str, Any]] = document["checks"]
    counts = count(checks)
    status = exit_status(counts, args.warn_unhealthy, args.crit_unhealthy)
    if args.json:
        out.write(body.decode("utf-8", errors="replace"))
        if not body.endswith(b"\n"):
            out.write("\n")
        return status
    now = parse_time(document.get("generated")) or _dt.datetime.now(_dt.UTC)
    width = terminal_width(out) if args.width is None else args.width
    checks = sorted(checks, key=lambda c: (SORT_KEYS[args.sort](c), SORT_KEYS["id"](c)))
    print(summary_line(status, counts), file=out)
    for line in server_lines(document.get("server"), now, width):
        print(line, file=out)
    if checks:
        print(file=out)
        for line in table(checks, now, width):
            print(line, file=out)
    return status


if __name__ == "__main__":
    sys.exit(main())
