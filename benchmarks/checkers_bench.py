"""CPU cost of one check: our reactor + checkers vs a C epoll floor, measured in one run.

Builds ``benchmarks/floor/floor.c`` with gcc into ``build/floor/``, starts its ``serve``
targets in separate processes (so the targets' CPU is not counted), then for each checker
type runs N checks with K in flight: with the C ``floor check`` client, with a bare Python
epoll loop, and through ``seesaw_healthcheck.checkers.run`` on one ``Reactor`` in a child
process, once for each build of the package: plain Python (``SEESAW_HEALTHCHECK_PURE_PYTHON
=1``) and compiled (when ``make compiled`` has built it). It compares the checking
process's CPU time (user + system, getrusage) per check; the runs rotate their order each
round, medians of the rounds.

    .venv/bin/python benchmarks/checkers_bench.py [--rounds 3] [--inflight 1000] [--scale 1]

Types whose checker module is missing (or that cannot run here, e.g. ping without ICMP
sockets) are skipped with a note. Exit status 0 unless the bench itself breaks.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import seesaw_healthcheck  # noqa: E402
from seesaw_healthcheck import build_info, checkers  # noqa: E402
from seesaw_healthcheck.checkers.http import build_request  # noqa: E402
from seesaw_healthcheck.model import (  # noqa: E402
    DNSChecker,
    DNSQuestion,
    HTTPChecker,
    PingChecker,
    Proto,
    Target,
    TCPChecker,
    UDPChecker,
    ip_to_bytes,
)
from seesaw_healthcheck.reactor import Reactor  # noqa: E402

FLOOR_SOURCE = ROOT / "benchmarks" / "floor" / "floor.c"
FLOOR_BINARY = ROOT / "build" / "floor" / "floor"
HOST = "127.0.0.1"


@dataclass
class Case:
    kind: str  # also the floor's mode, when it has one
    count: int
    make: Callable[[int], Any]  # port -> checker
    module: str
    floor: bool = True
    target: bool = True


CASES = [
    Case("tcp", 20000, lambda port: TCPChecker(target=_target(port, Proto.TCP)), "tcp"),
    Case(
        "http",
        10000,
        lambda port: HTTPChecker(
            target=_target(port, Proto.TCP), method="GET", request="/", response_code=200
        ),
        "http",
    ),
    Case(
        "udp",
        20000,
        lambda port: UDPChecker(target=_target(port, Proto.UDP), send="ping", receive="ping"),
        "udp",
    ),
    Case(
        "dns",
        10000,
        lambda port: DNSChecker(
            target=_target(port, Proto.UDP),
            question=DNSQuestion("example.com.", 1, 1),
            answer="127.0.0.1",
        ),
        "dns",
    ),
    Case(
        "ping",
        5000,
        lambda port: PingChecker(target=_target(0, Proto.ICMP)),
        "ping",
        floor=False,
        target=False,
    ),
]


def _target(port: int, proto: int) -> Target:
    return Target(ip=ip_to_bytes(HOST), port=port, proto=proto)


def build_floor() -> Path | None:
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        print("note: no C compiler; the C floor column is left empty")
        return None
    FLOOR_BINARY.parent.mkdir(parents=True, exist_ok=True)
    if not FLOOR_BINARY.exists() or FLOOR_BINARY.stat().st_mtime < FLOOR_SOURCE.stat().st_mtime:
        subprocess.run(
            [gcc, "-O2", "-Wall", "-o", str(FLOOR_BINARY), str(FLOOR_SOURCE)], check=True
        )
    return FLOOR_BINARY


def start_target(floor: Path, kind: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [str(floor), "serve", kind, HOST, "0"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("port="):
        proc.kill()
        raise RuntimeError(f"floor serve {kind} did not start: {line!r}")
    return proc, int(line.partition("=")[2])


def run_floor(floor: Path, kind: str, port: int, count: int, inflight: int) -> tuple[float, float]:
    out = subprocess.run(
        [str(floor), "check", kind, HOST, str(port), str(count), str(inflight)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    fields = dict(part.split("=") for part in out.split())
    if int(fields["fail"]):
        print(f"  note: C floor {kind}: {fields['fail']} of {count} checks failed")
    return float(fields["cpu_us_per_check"]), float(fields["user_us_per_check"])


def check_floor_request(floor: Path, make: Callable[[int], Any]) -> None:
    """The C floor's HTTP check must send our checker's bytes (``make(port)``'s request):
    one ``floor check http`` against a loopback listener here, its request compared."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((HOST, 0))
        listener.listen(1)
        listener.settimeout(10)
        port = listener.getsockname()[1]
        proc = subprocess.Popen(
            [str(floor), "check", "http", HOST, str(port), "1", "1"], stdout=subprocess.DEVNULL
        )
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                got = b""
                while b"\r\n\r\n" not in got and (chunk := conn.recv(4096)):
                    got += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    want = build_request(make(port)).request
    if got != want:
        raise RuntimeError(
            f"the C floor's HTTP request differs from our checker's:\n  C:    {got!r}\n"
            f"  ours: {want!r}\n(edit benchmarks/floor/floor.c)"
        )


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of another process (the target), from /proc (clock ticks)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def user_seconds() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_utime


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_python(
    checker: Any, count: int, inflight: int, timeout_s: float
) -> tuple[float, float, int, str]:
    """CPU-µs per check, of it user CPU, failures, and the first failure's text."""
    reactor = Reactor()
    started = finished = failed = 0
    pumping = False
    first_failure = ""
    run = checkers.run
    spawn = reactor.spawn

    def pump() -> None:
        # Spawning from on_done can nest when a check ends at once: loop, don't recurse.
        nonlocal started, pumping
        if pumping:
            return
        pumping = True
        while started < count and started - finished < inflight:
            started += 1
            spawn(run(checker, timeout_s), on_done=on_done)
        pumping = False

    def on_done(result: Any) -> None:
        nonlocal finished, failed, first_failure
        finished += 1
        if not result.success:
            failed += 1
            first_failure = first_failure or str(result)
        if finished == count:
            reactor.stop()
        else:
            pump()

    reactor.call_later(120, reactor.stop)  # a bound, should anything hang
    cpu0, user0 = cpu_seconds(), user_seconds()
    pump()
    if finished < count:
        reactor.run_forever()
    cpu, user = cpu_seconds() - cpu0, user_seconds() - user0
    reactor.close()
    if finished < count:
        print(f"  note: only {finished} of {count} checks finished in time")
    return cpu * 1e6 / max(1, finished), user * 1e6 / max(1, finished), failed, first_failure


BUILDS = ("pure", "compiled")


def compiled_available() -> bool:
    """Whether the compiled build is there (built and not stale) for the child runs."""
    return bool(seesaw_healthcheck.manifest_modules) and not seesaw_healthcheck.stale_module


def run_build(
    build: str, kind: str, port: int, count: int, inflight: int, timeout_s: float
) -> tuple[float, float, int, str]:
    """``run_python`` in a child process on one build of the package ("pure" or
    "compiled"), after a warm-up there: (CPU-µs per check, of it user, failures, first
    failure)."""
    env = {k: v for k, v in os.environ.items() if k != seesaw_healthcheck.PURE_PYTHON_ENV}
    if build == "pure":
        env[seesaw_healthcheck.PURE_PYTHON_ENV] = "1"
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(port), str(count), str(inflight),
         str(timeout_s), build],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    ).stdout  # fmt: skip
    answer = json.loads(out.splitlines()[-1])
    return answer["us"], answer["user_us"], answer["failed"], answer["first_failure"]


def child(kind: str, port: int, count: int, inflight: int, timeout_s: float, build: str) -> int:
    """The child of ``run_build``: checks the build is the one asked for, warms up, runs."""
    running = "compiled" if build_info.compiled_modules() else "pure"
    if running != build:
        raise SystemExit(f"asked for the {build} build, got: {build_info.describe()}")
    (case,) = [c for c in CASES if c.kind == kind]
    checker = case.make(port)
    run_python(checker, 200, 100, 2.0)
    us, user_us, failed, first_failure = run_python(checker, count, inflight, timeout_s)
    print(
        json.dumps({"us": us, "user_us": user_us, "failed": failed, "first_failure": first_failure})
    )
    return 0


def run_hand_python(
    kind: str, port: int, count: int, inflight: int, request: bytes = b""
) -> tuple[float, float] | None:
    """A hand-written Python epoll loop doing the same syscalls as the C floor, without
    our reactor, tasks or Results: what any Python framework on top of it starts from.
    ``request``: for http, the bytes to send (our checker's, from ``build_request``)."""
    if kind not in ("tcp", "http", "udp"):
        return None
    ep = select.epoll()
    addr = (HOST, port)
    stream = kind != "udp"
    kind_flags = (socket.SOCK_STREAM if stream else socket.SOCK_DGRAM) | socket.SOCK_NONBLOCK
    socks: dict[int, socket.socket] = {}
    sent: set[int] = set()
    started = finished = 0

    def start() -> None:
        nonlocal started
        sock = socket.socket(socket.AF_INET, kind_flags)
        fd = sock.fileno()
        socks[fd] = sock
        started += 1
        if stream:
            sock.connect_ex(addr)
            ep.register(fd, select.EPOLLOUT | select.EPOLLONESHOT)
        else:
            sock.connect(addr)
            sock.send(b"ping")
            ep.register(fd, select.EPOLLIN | select.EPOLLONESHOT)

    cpu0, user0 = cpu_seconds(), user_seconds()
    while started < min(inflight, count):
        start()
    while finished < count:
        for fd, _ in ep.poll(5.0):
            sock = socks[fd]
            if kind == "http" and fd not in sent:
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                sock.send(request)
                sent.add(fd)
                ep.modify(fd, select.EPOLLIN | select.EPOLLONESHOT)
                continue
            if kind == "tcp":
                sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            else:
                sock.recv(65536)
            sent.discard(fd)
            del socks[fd]
            sock.close()
            finished += 1
            if started < count:
                start()
    cpu, user = cpu_seconds() - cpu0, user_seconds() - user0
    ep.close()
    return cpu * 1e6 / count, user * 1e6 / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inflight", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply check counts")
    parser.add_argument("--only", nargs="*", help="checker types to run (default: all)")
    parser.add_argument("--builds", default=",".join(BUILDS), help="pure, compiled or both")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, port, count, inflight, timeout_s, build = args.child
        return child(kind, int(port), int(count), int(inflight), float(timeout_s), build)
    builds = [b for b in args.builds.split(",") if b]
    if "compiled" in builds and not compiled_available():
        print(f"note: no compiled build ({build_info.describe()}); run `make compiled`")
        builds.remove("compiled")

    floor = build_floor()
    rows: list[list[str]] = []
    user_rows: list[list[str]] = []
    exchange_rows: list[list[str]] = []
    for case in CASES:
        if args.only and case.kind not in args.only:
            continue
        if importlib.util.find_spec(f"seesaw_healthcheck.checkers.{case.module}") is None:
            print(f"skip {case.kind}: checker module not there yet")
            continue
        proc = None
        port = 0
        if case.target:
            if floor is None:
                print(f"skip {case.kind}: needs the C target")
                continue
            proc, port = start_target(floor, case.kind)
        try:
            count = max(100, int(case.count * args.scale))
            checker = case.make(port)
            # HTTP: all of them send our checker's request bytes (Go's, Accept-Encoding too).
            request = b""
            if case.kind == "http":
                request = build_request(checker).request
                if case.floor and floor is not None:
                    check_floor_request(floor, case.make)
            # See that the check passes here (each build's child warms up on its own).
            _, _, warm_failed, warm_text = run_python(checker, 200, 100, 2.0)
            if warm_failed == 200:
                print(f"skip {case.kind}: every check fails here: {warm_text}")
                continue
            order = ["c", "hand", *builds]
            runs: dict[str, list[float]] = {which: [] for which in order}
            user_runs: dict[str, list[float]] = {which: [] for which in order}
            # The target's CPU per check during each run: the other half of the exchange.
            target_us: dict[str, list[float]] = {which: [] for which in order}
            failures = 0

            # Rotate the order each round: a run leaves ~N sockets in TIME_WAIT and warm
            # (or cold) kernel caches behind, so whoever always ran last would pay for it.
            for round_number in range(args.rounds):
                shift = round_number % len(order)
                for which in order[shift:] + order[:shift]:
                    target_cpu0 = process_cpu_seconds(proc.pid) if proc is not None else 0.0
                    ran = True
                    if which == "c" and case.floor and floor is not None:
                        total, user = run_floor(floor, case.kind, port, count, args.inflight)
                        runs[which].append(total)
                        user_runs[which].append(user)
                    elif which == "hand" and case.target:
                        hand = run_hand_python(case.kind, port, count, args.inflight, request)
                        if hand is not None:
                            runs[which].append(hand[0])
                            user_runs[which].append(hand[1])
                        else:
                            ran = False
                    elif which in BUILDS:
                        us, user, failed, text = run_build(
                            which, case.kind, port, count, args.inflight, 5.0
                        )
                        runs[which].append(us)
                        user_runs[which].append(user)
                        if failed and not failures:
                            print(f"  note: {case.kind} ({which}): {failed} failed, first: {text}")
                        failures += failed
                    else:
                        ran = False
                    if ran and proc is not None:
                        spent = process_cpu_seconds(proc.pid) - target_cpu0
                        target_us[which].append(spent * 1e6 / count)
            med = {w: statistics.median(v) for w, v in runs.items() if v}
            c = med.get("c")

            def cell(value: float | None, base: float | None) -> str:
                if value is None:
                    return "-"
                return f"{value:.1f} ({value / base:.2f}x)" if base else f"{value:.1f}"

            pure, compiled = med.get("pure"), med.get("compiled")
            user_med = {w: statistics.median(v) for w, v in user_runs.items() if v}
            user_pure, user_compiled = user_med.get("pure"), user_med.get("compiled")
            user_rows.append(
                [
                    case.kind,
                    cell(user_med.get("c"), None),
                    cell(user_med.get("hand"), None),
                    cell(user_pure, None),
                    cell(user_compiled, None),
                    f"{user_compiled / user_pure:.2f}x" if user_pure and user_compiled else "-",
                ]
            )
            rows.append(
                [
                    case.kind,
                    cell(c, None),
                    cell(med.get("hand"), c),
                    cell(pure, c),
                    cell(compiled, c),
                    f"{compiled / pure:.2f}x" if pure and compiled else "-",
                    f"{count} x {args.rounds}, {args.inflight} in flight, {failures} failed",
                ]
            )
            if proc is not None and c and target_us["c"]:
                whole = {w: med[w] + statistics.median(target_us[w]) for w in med}
                exchange_rows.append(
                    [
                        case.kind,
                        cell(whole["c"], None),
                        cell(whole.get("hand"), whole["c"]),
                        cell(whole.get("pure"), whole["c"]),
                        cell(whole.get("compiled"), whole["c"]),
                    ]
                )
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()

    print()
    print("CPU per check of the checking process, µs (medians; x: of the C floor):")
    _print_table(
        ["type", "C floor", "bare Python epoll", "pure Python", "compiled", "compiled/pure",
         "runs"],
        rows,
    )  # fmt: skip
    print()
    print("Of it user CPU (the rest is the kernel's), µs (medians):")
    _print_table(
        ["type", "C floor", "bare Python epoll", "pure Python", "compiled", "compiled/pure"],
        user_rows,
    )
    if exchange_rows:
        # On loopback the kernel's work for a packet is charged partly to the sender and
        # partly to the receiver, so the whole exchange is the checker plus the target
        # (the same C target for all of them).
        print()
        print("CPU per check of the checking process + the target process, µs (medians):")
        _print_table(
            ["type", "C floor", "bare Python epoll", "pure Python", "compiled"], exchange_rows
        )
    return 0


def _print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
