"""Soak: the real server (control process and check workers) against the Go engine for
``--minutes`` (default 10), with 2,000 checks of every kind and 10% of the set edited
every 10 s; does anything grow?

Kinds: TCP, TCP+TLS, HTTP, HTTPS, DNS, UDP, RADIUS, ping to 127.0.0.1 (when this process
may open an ICMP socket), and two that never answer: TCP to a listener whose accept queue
is full, UDP to a port bound by nobody who reads. Intervals 2, 3 and 5 s, timeout 1 s.
Every 10 s a third of the 10% is removed, a third changed (timeout and retries), and a
third added under new ids with the kinds and intervals of the removed ones, so the
expected rate stays the same. The server fetches every 2 s.

Every 30 s it prints, for all of the server's processes together (the control process and
its workers, pids from the ``-stats_file`` JSON): RSS, open fds (the mean of a sample a
second: checks in flight hold fds), threads, child processes of the control process, and
the check rate over the 30 s; at the end, the slope of each after the first minute. Exit
status 1 when RSS grows more than 0.1 MB/min, fds more than 1 a minute, threads or child
processes at all, the rate drops more than 2% over the run, a worker restarts, or the
server dies.

Targets: the C floor's serve modes (benchmarks/floor) for TCP, HTTP, UDP and DNS when a C
compiler is there (else tests/responders in Python); tests/responders for TLS, HTTPS and
RADIUS, in a process of their own (``--serve-targets``), as are the never-answering ones.

Usage: .venv/bin/python benchmarks/soak.py [--minutes 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

from tests import gopeer  # noqa: E402
from tests.conftest import free_port  # noqa: E402

PY = sys.executable
CHECKS = 2_000
EDIT_EVERY_S = 10.0
SAMPLE_EVERY_S = 30.0
INTERVALS = ("2s", "3s", "5s")
# How many of the 2,000 each kind gets (ping's share goes to TCP without ICMP sockets).
MIX = {
    "tcp": 300,
    "tcp_tls": 150,
    "http": 300,
    "https": 150,
    "dns": 250,
    "udp": 250,
    "radius": 150,
    "ping": 150,
    "tcp_hang": 150,
    "udp_silent": 150,
}
RADIUS_SECRET = "soak-secret"
LIMITS = {"rss_mb_per_min": 0.1, "fds_per_min": 1.0, "rate_drop": 0.02}

# --- targets -----------------------------------------------------------------------------


def icmp_works() -> bool:
    for kind in (socket.SOCK_RAW, socket.SOCK_DGRAM):
        try:
            socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
            return True
        except OSError:
            continue
    return False


def serve_targets(python_for: list[str]) -> int:
    """``--serve-targets``: the Python targets in this process; one JSON line of ports on
    stdout, then serve until stdin closes."""
    import trustme
    from tests.responders.dns import DNSResponder
    from tests.responders.http import HTTPResponder, Route, tls_server_context
    from tests.responders.radius import RADIUSResponder
    from tests.responders.tcp import DelayedReplyResponder, TCPResponder
    from tests.responders.udp import UDPEchoResponder

    ca = trustme.CA()
    ports: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        tls = tls_server_context(ca, "127.0.0.1")
        ports["tcp_tls"] = stack.enter_context(TCPResponder("127.0.0.1", tls=tls)).port
        https = HTTPResponder("127.0.0.1", routes={"*": Route(200, b"ok\n")}, tls=tls)
        ports["https"] = stack.enter_context(https).port
        users = {"soak": ("soak-password", "accept")}
        radius = RADIUSResponder("127.0.0.1", secret=RADIUS_SECRET.encode(), users=users)
        ports["radius"] = stack.enter_context(radius).port
        # Never answering: a full accept queue (SYNs dropped), a UDP port nobody reads.
        full = socket.socket()
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        stack.callback(full.close)
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(full.getsockname())
            stack.callback(filler.close)
        ports["tcp_hang"] = full.getsockname()[1]
        mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        mute.bind(("127.0.0.1", 0))
        stack.callback(mute.close)
        ports["udp_silent"] = mute.getsockname()[1]
        # The floor's kinds, when there is no floor.
        if "tcp" in python_for:
            ports["tcp"] = stack.enter_context(DelayedReplyResponder("127.0.0.1")).port
        if "http" in python_for:
            web = HTTPResponder("127.0.0.1", routes={"*": Route(200, b"ok\n")})
            ports["http"] = stack.enter_context(web).port
        if "udp" in python_for:
            ports["udp"] = stack.enter_context(UDPEchoResponder("127.0.0.1")).port
        if "dns" in python_for:
            zone = {("www.example.com.", "A"): ["127.0.0.1"]}
            ports["dns"] = stack.enter_context(DNSResponder("127.0.0.1", zone)).port
        print(json.dumps(ports), flush=True)
        sys.stdin.read()  # until the soak closes our stdin
    return 0


class Targets:
    """The floor's servers and the ``--serve-targets`` process."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self.ports: dict[str, int] = {}
        floor = None
        try:
            from checkers_bench import build_floor, start_target

            floor = build_floor()
        except (ImportError, OSError, subprocess.CalledProcessError) as err:
            print(f"note: C floor unavailable ({err}); Python targets instead")
        python_for = ["tcp", "http", "udp", "dns"]
        if floor is not None:
            for kind in list(python_for):
                proc, port = start_target(floor, kind)
                self.procs.append(proc)
                self.ports[kind] = port
            python_for = []
        self.kind = "C floor for tcp/http/udp/dns" if floor else "Python responders only"
        targets = subprocess.Popen(
            [PY, __file__, "--serve-targets", ",".join(python_for)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(targets)
        assert targets.stdout is not None
        line = targets.stdout.readline()
        if not line.startswith("{"):
            self.close()
            raise RuntimeError(f"the targets process did not start: {line!r}")
        self.ports.update(json.loads(line))

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def close(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            else:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- the set of checks -------------------------------------------------------------------


def check(check_id: int, kind: str, interval: str, ports: dict[str, int]) -> dict[str, Any]:
    """One config of gopeer's checks file."""
    base: dict[str, Any] = {"id": check_id, "interval": interval, "timeout": "1s"}
    ip = {"ip": "127.0.0.1"}
    port = ports.get(kind, 0)
    if kind in ("tcp", "tcp_tls", "tcp_hang"):
        spec = {"type": "tcp_tls" if kind == "tcp_tls" else "tcp", **ip, "port": port}
    elif kind in ("http", "https"):
        spec = {"type": kind, **ip, "port": port, "method": "GET", "request": "/healthz",
                "response_code": 200, "response": "ok"}  # fmt: skip
    elif kind == "dns":
        spec = {"type": "dns", **ip, "port": port, "query": "www.example.com.",
                "query_type": 1, "answer": "127.0.0.1"}  # fmt: skip
    elif kind in ("udp", "udp_silent"):
        spec = {"type": "udp", **ip, "port": port, "send": "soak", "receive": "soak"}
    elif kind == "radius":
        spec = {"type": "radius", **ip, "port": port, "username": "soak",
                "password": "soak-password", "secret": RADIUS_SECRET,
                "radius_response": "accept"}  # fmt: skip
    elif kind == "ping":
        spec = {"type": "ping", **ip, "ping_id": check_id & 0xFFFF, "ping_seq": 1}
    else:
        raise ValueError(kind)
    return {**base, **spec}


class CheckSet:
    """The 2,000 configs and their edits; ``kinds[id]`` and ``intervals[id]`` say what each
    is, so an added check replaces a removed one like for like."""

    def __init__(self, ports: dict[str, int], mix: dict[str, int]) -> None:
        self.ports = ports
        self.next_id = 1
        self.configs: dict[int, dict[str, Any]] = {}
        self.kinds: dict[int, tuple[str, str]] = {}
        intervals = itertools.cycle(INTERVALS)
        for kind, count in mix.items():
            for _ in range(count):
                self._add(kind, next(intervals))
        self.edits = 0

    def _add(self, kind: str, interval: str) -> None:
        check_id = self.next_id
        self.next_id += 1
        self.configs[check_id] = check(check_id, kind, interval, self.ports)
        self.kinds[check_id] = (kind, interval)

    def edit(self) -> None:
        """10%: the oldest third removed and replaced like for like under new ids, the
        next third changed (timeout and retries), kept in place."""
        share = len(self.configs) // 30
        ids = list(self.configs)
        for check_id in ids[:share]:
            del self.configs[check_id]
            kind, interval = self.kinds.pop(check_id)
            self._add(kind, interval)
        for check_id in ids[share : 2 * share]:
            config = self.configs[check_id]
            config["timeout"] = "900ms" if config["timeout"] == "1s" else "1s"
            config["retries"] = 1 - config.get("retries", 0)
        self.edits += 1

    def never_answering(self) -> int:
        return sum(kind in ("tcp_hang", "udp_silent") for kind, _ in self.kinds.values())

    def expected_rate(self) -> float:
        return sum(1.0 / float(interval[:-1]) for _, interval in self.kinds.values())

    def write(self, path: Path) -> None:
        gopeer.write_checks_file(path, list(self.configs.values()))


# --- the server's processes ----------------------------------------------------------------


def proc_status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def rss_kb(pid: int) -> int:
    value = proc_status(pid).get("VmRSS", "0 kB")
    return int(value.split()[0])


def threads(pid: int) -> int:
    return int(proc_status(pid).get("Threads", "0"))


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def children(pid: int) -> int:
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (task / "children").read_text().split()}
    return len(found)


class Server:
    def __init__(self, tmp: Path, checks_file: Path, workers: int) -> None:
        self.sock = tmp / "engine.sock"
        self.stats_file = tmp / "stats.json"
        self.http_port = free_port()
        self.engine = gopeer.GoEngine(self.sock, checks_file=checks_file).start()
        self._log = open(tmp / "server.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [PY, "-m", "seesaw_healthcheck.cli.healthcheck", "-engine", str(self.sock),
             "-stats_file", str(self.stats_file), "-logtostderr",
             "-http_addr", f"127.0.0.1:{self.http_port}",
             "-fetch_interval", "2s", "-workers", str(workers)],
            stdout=self._log, stderr=self._log,
        )  # fmt: skip

    def stats(self) -> dict[str, Any]:
        try:
            return json.loads(self.stats_file.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def pids(self) -> list[int]:
        return [self.proc.pid, *(p for p in self.stats().get("worker_pids", []) if p)]

    def totals(self) -> dict[str, Any]:
        """The checks by state, from /status."""
        url = f"http://127.0.0.1:{self.http_port}/status"
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return json.loads(reply.read())["totals"]  # type: ignore[no-any-return]
        except (OSError, ValueError, KeyError):
            return {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.engine.stop()
        self._log.close()


@contextlib.contextmanager
def running_server(tmp: Path, checks_file: Path, workers: int) -> Iterator[Server]:
    server = Server(tmp, checks_file, workers)
    try:
        yield server
    finally:
        server.stop()


# --- the soak ----------------------------------------------------------------------------


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 for fewer than 2)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


class Sampler:
    """fds sampled every second between the 30-s samples (their mean is reported)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.fd_samples: list[int] = []
        self.max_threads = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            pids = self.server.pids()
            with self._lock:
                self.fd_samples.append(sum(fds(p) for p in pids))
                self.max_threads = max(self.max_threads, sum(threads(p) for p in pids))

    def take(self) -> tuple[float, int]:
        """The mean fds and the most threads since the last call."""
        with self._lock:
            samples, self.fd_samples = self.fd_samples, []
            most, self.max_threads = self.max_threads, 0
        return (sum(samples) / len(samples) if samples else 0.0), most

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def wait_for(server: Server, what: str, ready: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = server.stats()
        if stats and ready(stats):
            return stats
        if server.proc.poll() is not None:
            raise RuntimeError(f"the server exited with {server.proc.returncode}")
        time.sleep(0.5)
    raise RuntimeError(f"{what} not within {timeout:g} s: {server.stats()}")


def soak(minutes: float, workers: int, tmp: Path) -> int:
    mix = dict(MIX)
    if not icmp_works():
        print("note: no ICMP socket here; the ping checks become TCP ones")
        mix["tcp"] += mix.pop("ping")
    targets = Targets()
    try:
        checks = CheckSet(targets.ports, mix)
        checks_file = tmp / "checks.json"
        checks.write(checks_file)
        print(
            f"soak: {len(checks.configs)} checks ({', '.join(f'{k} {n}' for k, n in mix.items())})"
            f", intervals {'/'.join(INTERVALS)}, 10% edited every {EDIT_EVERY_S:g} s, "
            f"{minutes:g} min; targets: {targets.kind}; expected {checks.expected_rate():.0f}"
            " checks/s",
            flush=True,
        )
        with running_server(tmp, checks_file, workers) as server:
            wait_for(server, "the first checks", lambda s: s.get("ran_once", 0) > 0, 60)
            return measure(server, checks, checks_file, minutes, workers)
    finally:
        targets.close()


def measure(
    server: Server, checks: CheckSet, checks_file: Path, minutes: float, workers: int
) -> int:
    sampler = Sampler(server)
    start = time.monotonic()
    last = server.stats()
    next_edit = start + EDIT_EVERY_S
    next_sample = start + SAMPLE_EVERY_S
    rows: list[dict[str, float]] = []
    print(
        f"{'min':>5} {'RSS MB':>8} {'fds':>7} {'threads':>7} {'children':>8} {'checks/s':>9} "
        f"{'expected':>8} {'edits':>5} healthy/unhealthy/unknown (never-answering: "
        f"{checks.never_answering()})",
        flush=True,
    )
    try:
        while time.monotonic() - start < minutes * 60:
            now = time.monotonic()
            time.sleep(max(0.0, min(next_edit, next_sample) - now))
            if server.proc.poll() is not None:
                print(f"FAIL: the server exited with {server.proc.returncode}")
                return 1
            if time.monotonic() >= next_edit:
                checks.edit()
                checks.write(checks_file)
                next_edit += EDIT_EVERY_S
            if time.monotonic() >= next_sample:
                next_sample += SAMPLE_EVERY_S
                stats = server.stats()
                pids = server.pids()
                mean_fds, most_threads = sampler.take()
                row = {
                    "t": time.monotonic() - start,
                    "rss_mb": sum(rss_kb(p) for p in pids) * 1024 / 1e6,
                    "fds": mean_fds,
                    "threads": float(most_threads),
                    "children": float(children(server.proc.pid)),
                    "rate": (stats["checks_run"] - last["checks_run"])
                    / (stats["now"] - last["now"]),
                }
                last = stats
                rows.append(row)
                totals = server.totals()
                print(
                    f"{row['t'] / 60:5.1f} {row['rss_mb']:8.2f} {row['fds']:7.1f} "
                    f"{row['threads']:7.0f} {row['children']:8.0f} {row['rate']:9.1f} "
                    f"{checks.expected_rate():8.1f} {checks.edits:5d} "
                    f"{totals.get('healthy', -1):5d}/{totals.get('unhealthy', -1)}"
                    f"/{totals.get('unknown', -1)}",
                    flush=True,
                )
    finally:
        sampler.stop()
    final = server.stats()
    return verdict(rows, final, workers)


def verdict(rows: list[dict[str, float]], final: dict[str, Any], workers: int) -> int:
    late = [r for r in rows if r["t"] >= 60.0 - 1.0]
    if len(late) < 2:
        print("FAIL: too short to judge (run at least 2 minutes)")
        return 1
    span_min = (late[-1]["t"] - late[0]["t"]) / 60
    per_min = {key: slope([(r["t"] / 60, r[key]) for r in late]) for key in rows[0] if key != "t"}
    mean_rate = sum(r["rate"] for r in late) / len(late)
    rate_drop = -per_min["rate"] * span_min / mean_rate if mean_rate else 0.0
    print(
        f"slopes after the first minute (per minute, over {span_min:.1f} min): "
        f"RSS {per_min['rss_mb']:+.3f} MB, fds {per_min['fds']:+.2f}, "
        f"threads {per_min['threads']:+.2f}, children {per_min['children']:+.2f}, "
        f"rate {per_min['rate']:+.2f}/s ({-rate_drop:+.2%} over the run)"
    )
    failures = []
    if per_min["rss_mb"] > LIMITS["rss_mb_per_min"]:
        failures.append(f"RSS grows {per_min['rss_mb']:.3f} MB/min")
    if per_min["fds"] > LIMITS["fds_per_min"]:
        failures.append(f"fds grow {per_min['fds']:.2f}/min")
    if max(r["threads"] for r in late) > late[0]["threads"]:
        failures.append(f"threads grew from {late[0]['threads']:.0f}")
    if any(r["children"] != workers for r in rows):
        failures.append(f"child processes other than the {workers} workers")
    if rate_drop > LIMITS["rate_drop"]:
        failures.append(f"the rate dropped {rate_drop:.1%}")
    if any(starts != 1 for starts in final.get("worker_starts", [])):
        failures.append(f"a worker restarted: {final.get('worker_starts')}")
    for failure in failures:
        print(f"FAIL: {failure}")
    if not failures:
        print("PASS")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--serve-targets", metavar="KINDS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_targets is not None:
        return serve_targets([k for k in args.serve_targets.split(",") if k])
    if shutil.which("go") is None and not gopeer.BINARY.exists():
        print("soak: Go is not installed; skipping (run `make go`)")
        return 0
    gopeer.build()
    tmp = Path(tempfile.mkdtemp(prefix="ssw-soak-", dir="/tmp"))
    try:
        return soak(args.minutes, args.workers, tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
