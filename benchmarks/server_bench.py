"""Server benchmark: the real `seesaw-healthcheck` process against the Go engine stand-in.

Runs (each bounded, stops by itself):
  1. `gopeer engine -configs 10000 -port P`: 10,000 TCP checks at a 1 s interval;
  2. 50,000 TCP checks at a 5 s interval (a -checks file);
against a local TCP target in another process (the C floor's serve mode when built,
else a lean Python accept-and-close loop). Once every check has run, it measures over a
window of WINDOW_S seconds (default 30): checks per second, CPU-µs per check of the server
process (/proc/PID/stat utime+stime), RSS (/proc/PID/status VmRSS), p50/p99 lateness of
each run against its scheduled slot (the server's histogram, via -stats_file), and the time
until every check had run once. If the C floor (benchmarks/floor) is built, it also measures
the floor's CPU-µs per TCP check in the same run and prints the ratio.

Usage: .venv/bin/python benchmarks/server_bench.py [--window 30] [--only 10k|50k]

Caveat, measured here: every check closes first and leaves a TIME_WAIT socket for 60 s.
On one target address and port the client has ~28,000 ephemeral ports; at 10,000
connects/s they run out and runs go bistable: the port search in connect() eats the CPU
(system time ~97%) and the server collapses to ~4,000 checks/s. A real pool has many
backends, so the target listens on 16 ports (one process, one epoll loop; 8 or 32 processes
instead cost the server 60% more CPU per check by waking idle processes), and each case
first waits (up to 65 s) for the machine's TIME_WAIT count to drop below 5,000.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests import gopeer  # noqa: E402

from seesaw_healthcheck.channel import LATENESS_BOUNDS, percentile  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_ARGS: list[str] = []  # extra server flags (--server-arg), to isolate a cause
PY = sys.executable

ACCEPT_LOOP = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(4096)
print(s.getsockname()[1], flush=True)
accept = s.accept
while True:
    c, _ = accept()
    c.close()
"""


def cpu_seconds(pid: int) -> float:
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and of its children it has waited for
    (utime + cutime, stime + cstime): the server forks a child per fetch, and its CPU is
    the server's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user = int(fields[11]) + int(fields[13])
    system = int(fields[12]) + int(fields[14])
    return user / CLK_TCK, system / CLK_TCK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


TIME_WAIT_OK = 5_000  # below this, the ephemeral ports to one target are mostly free
TIME_WAIT_MAX_WAIT_S = 65.0  # TIME_WAIT lasts 60 s on Linux


def time_wait_count() -> int:
    """TCP sockets in TIME_WAIT on this machine (from /proc/net/sockstat)."""
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("tw") + 1])
    return 0


def wait_for_time_wait_to_drain() -> None:
    """Let the previous case's TIME_WAIT sockets expire (see the caveat above)."""
    deadline = time.monotonic() + TIME_WAIT_MAX_WAIT_S
    count = time_wait_count()
    if count > TIME_WAIT_OK:
        print(f"waiting for {count} TIME_WAIT sockets to expire ...", flush=True)
    while count > TIME_WAIT_OK and time.monotonic() < deadline:
        time.sleep(1.0)
        count = time_wait_count()
    if count > TIME_WAIT_OK:
        print(f"note: still {count} sockets in TIME_WAIT; figures may be skewed", flush=True)


def read_stats(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def floor_binary() -> Path | None:
    """The C floor (benchmarks/floor/floor.c), built with gcc if needed; None without one."""
    try:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from checkers_bench import build_floor

        return build_floor()
    except (ImportError, OSError, subprocess.CalledProcessError) as err:
        print(f"note: C floor unavailable: {err}")
        return None


TARGET_PORTS = 16  # see the caveat above


class Target:
    """A TCP accept-and-close target in its own process, on TARGET_PORTS ports: the C floor's
    multi-port serve mode, or a Python accept loop on one port without a C compiler."""

    def __init__(self, floor: Path | None) -> None:
        if floor is not None:
            self.proc = subprocess.Popen(
                [str(floor), "serve", "tcp", "127.0.0.1", "0", str(TARGET_PORTS)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.proc.stdout is not None
            self.ports = [
                int(self.proc.stdout.readline().strip().partition("=")[2])
                for _ in range(TARGET_PORTS)
            ]
            self.kind = f"C floor serve tcp, {TARGET_PORTS} ports"
        else:
            self.proc = subprocess.Popen([PY, "-c", ACCEPT_LOOP], stdout=subprocess.PIPE, text=True)
            assert self.proc.stdout is not None
            self.ports = [int(self.proc.stdout.readline())]
            self.kind = "python accept loop, 1 port"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


FLOOR_CHECKS = 20_000
# The server at 10,000 checks/s has about one check in flight at a time, so the floor with
# 1 in flight is the like-for-like one; 10 in flight (amortised epoll wake-ups) is shown too.
FLOOR_IN_FLIGHT = (1, 10)


def floor_tcp_us(
    floor: Path | None, target_ports: list[int], in_flight: int
) -> tuple[float, float] | None:
    """The C floor's CPU-µs and user-µs per TCP check against the same target (medians of
    3 runs, each on a port of its own)."""
    if floor is None:
        return None
    runs = []
    users = []
    for run in range(3):
        port = target_ports[(in_flight + run) % len(target_ports)]
        out = subprocess.run(
            [str(floor), "check", "tcp", "127.0.0.1", str(port),
             str(FLOOR_CHECKS), str(in_flight)],
            capture_output=True, text=True, timeout=120, check=True,
        ).stdout  # fmt: skip
        fields = dict(part.split("=") for part in out.split())
        runs.append(float(fields["cpu_us_per_check"]))
        users.append(float(fields["user_us_per_check"]))
    return statistics.median(runs), statistics.median(users)


def run_case(
    name: str, n: int, interval: str, window_s: float, target: Target, tmp: Path
) -> dict[str, Any]:
    sock = tmp / f"engine-{name}.sock"
    stats_file = tmp / f"stats-{name}.json"
    checks = tmp / f"checks-{name}.json"
    ports = target.ports
    gopeer.write_checks_file(
        checks,
        [
            {"id": i, "interval": interval, "timeout": "1s", "type": "tcp",
             "ip": "127.0.0.1", "port": ports[i % len(ports)]}
            for i in range(1, n + 1)
        ],
    )  # fmt: skip
    engine = gopeer.GoEngine(sock, checks_file=checks)
    log_path = tmp / f"server-{name}.log"
    with engine, open(log_path, "w") as log:
        server = subprocess.Popen(
            [PY, "-m", "seesaw_healthcheck.cli.healthcheck", "-engine", str(sock),
             "-stats_file", str(stats_file), "-logtostderr", *SERVER_ARGS],
            stderr=log,
            stdout=log,
        )  # fmt: skip
        try:
            return measure(name, n, interval, window_s, server, stats_file)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def measure(
    name: str,
    n: int,
    interval: str,
    window_s: float,
    server: subprocess.Popen[bytes],
    stats_file: Path,
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    stats = None
    while time.monotonic() < deadline:
        stats = read_stats(stats_file)
        if stats and stats["all_ran_at"] and stats["ran_once"] >= n:
            break
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        time.sleep(0.5)
    else:
        raise RuntimeError(f"{name}: not every check ran within 120 s: {stats}")
    assert stats is not None
    all_ran_after = stats["all_ran_after_s"]
    time.sleep(2.0)  # let the startup logging and the first full fetch settle
    sys0 = cpu_split(server.pid)[1]
    s0, c0, t0 = read_stats(stats_file), cpu_seconds(server.pid), time.monotonic()
    rss_samples = []
    while time.monotonic() - t0 < window_s:
        time.sleep(1.0)
        rss_samples.append(rss_mib(server.pid))
    time.sleep(1.1)  # the stats file is rewritten every second
    s1, c1, t1 = read_stats(stats_file), cpu_seconds(server.pid), time.monotonic()
    sys1 = cpu_split(server.pid)[1]
    assert s0 and s1
    checks = s1["checks_run"] - s0["checks_run"]
    elapsed = s1["now"] - s0["now"]
    counts = [b - a for a, b in zip(s0["lateness_counts"], s1["lateness_counts"], strict=True)]
    return {
        "case": name,
        "checks": n,
        "interval": interval,
        "window_s": round(elapsed, 1),
        "checks_per_s": checks / elapsed,
        "cpu_us_per_check": (c1 - c0) / checks * 1e6 if checks else float("nan"),
        "user_us_per_check": (c1 - c0 - (sys1 - sys0)) / checks * 1e6 if checks else float("nan"),
        "cpu_percent": (c1 - c0) / (t1 - t0) * 100,
        "system_share": (sys1 - sys0) / (c1 - c0) if c1 > c0 else float("nan"),
        "rss_mib_median": statistics.median(rss_samples),
        "rss_mib_max": max(rss_samples),
        "lateness_p50_ms": percentile(LATENESS_BOUNDS, counts, 0.50) * 1e3,
        "lateness_p99_ms": percentile(LATENESS_BOUNDS, counts, 0.99) * 1e3,
        "skipped_busy": s1["skipped_busy"] - s0["skipped_busy"],
        "skipped_late": s1["skipped_late"] - s0["skipped_late"],
        "all_ran_once_after_s": all_ran_after,
        "send_failures": s1["send_failures"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured per case")
    parser.add_argument("--only", choices=("10k", "50k"), default=None)
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (server logs, stats)"
    )
    parser.add_argument(
        "--server-arg", action="append", default=[], help="extra server flag (repeatable)"
    )
    args = parser.parse_args()
    SERVER_ARGS.extend(args.server_arg)
    if shutil.which("go") is None and not gopeer.BINARY.exists():
        print("server_bench: Go is not installed; skipping (run `make go`)")
        return 0
    gopeer.build()
    tmp = Path(tempfile.mkdtemp(prefix="ssw-bench-", dir="/tmp"))
    floor = floor_binary()
    target = Target(floor)
    results = []
    try:
        cases = [("10k", 10_000, "1s"), ("50k", 50_000, "5s")]
        for name, n, interval in cases:
            if args.only in (None, name):
                wait_for_time_wait_to_drain()
                print(f"running {name}: {n} TCP checks every {interval} ...", flush=True)
                results.append(run_case(name, n, interval, args.window, target, tmp))
        floors = {k: floor_tcp_us(floor, target.ports, k) for k in FLOOR_IN_FLIGHT}
    finally:
        target.close()
        if args.keep:
            print(f"kept {tmp} (server-<case>.log, stats-<case>.json)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"target: {target.kind}; window {args.window:g} s per case")
    header = (
        f"{'case':>5} {'checks/s':>9} {'CPU-us/check':>12} {'CPU%':>6} {'sys%':>5} {'RSS MiB':>8} "
        f"{'late p50 ms':>11} {'late p99 ms':>11} {'all ran (s)':>11} {'skipped':>8}"
    )
    print(header)
    for r in results:
        print(
            f"{r['case']:>5} {r['checks_per_s']:9.0f} {r['cpu_us_per_check']:12.1f} "
            f"{r['cpu_percent']:6.1f} {r['system_share'] * 100:5.0f} {r['rss_mib_max']:8.1f} "
            f"{r['lateness_p50_ms']:11.3f} "
            f"{r['lateness_p99_ms']:11.3f} {r['all_ran_once_after_s']:11.2f} "
            f"{r['skipped_busy'] + r['skipped_late']:8d}"
        )
    for in_flight, floor_cpu in floors.items():
        if floor_cpu is None:
            print("C floor: not built (benchmarks/floor); no ratio")
            break
        floor_us, floor_user = floor_cpu
        ratios = ", ".join(f"{r['case']} {r['cpu_us_per_check'] / floor_us:.2f}x" for r in results)
        print(
            f"C floor TCP check, {in_flight} in flight: {floor_us:.1f} CPU-us "
            f"({floor_user:.1f} user); server/floor: {ratios}"
        )
    # The kernel's share of a check is the same exchange for both; the user part is ours.
    for r in results:
        print(
            f"{r['case']}: server user {r['user_us_per_check']:.1f} us/check, kernel "
            f"{r['cpu_us_per_check'] - r['user_us_per_check']:.1f} us/check"
        )
    for r in results:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
