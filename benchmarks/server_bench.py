"""Server benchmark: the real `seesaw-healthcheck` (control process and check workers)
against the Go engine stand-in, every figure measured in one run, for all of the server's
processes together (CPU: /proc/PID/stat of the control process and each live worker, plus
what they reaped; memory: the sum of their RSS).

Cases (each bounded; `--cases` picks some):
  10k     10,000 TCP checks at 1 s, for each build of the package (`--builds`: the plain
          Python one, SEESAW_HEALTHCHECK_PURE_PYTHON=1, and the compiled one, when `make
          compiled` has built it) and for the C floor doing the same checks at the same
          pace (`floor pace`), run alternately `--rounds` times (medians): user and kernel
          CPU per check of each, compiled/pure user CPU, and each against the floor. With
          `--baseline REV` (default: the commit before the control/worker split, checked
          out into a temporary git worktree) that revision runs too. A fetch in the middle
          of the window changes 10% of the set (p99 lateness includes it).
  http    1,000 HTTP checks at 1 s, the same way (target: the C floor's HTTP server).
  udp     10,000 UDP checks at 1 s, the same way (target: the C floor's UDP echo).
  50k     50,000 at 5 s (the default build, and the baseline).
  100k    100,000 at 10 s with one worker: the rate, how long after the first fetch was
          answered every check had run, total RSS, and how long the first fetch took from
          the engine's answer to every check being scheduled in the workers.
  rate    the highest sustained rate (p99 lateness <= 20 ms) with -workers 1 and 2: checks
          at 1 s, stepping the count up until p99 or the rate gives. The targets are closed
          loopback ports (every check is refused by the kernel): no target process and no
          TIME_WAIT competing with the workers for the machine's two cores.
  churn   2,000 checks, 10% of the set edited every 10 s (`--churn-minutes`, default 5):
          RSS every 10 s and its slope after the first minute (MB/min).
  shrink  100,000 checks, then 10: total RSS 60 s after the shrink, against a fresh server
          with the same 10 checks.
  scrape  50,000 at 5 s, one server, two windows: plain, then with `/metrics` and `/status`
          each fetched every second by the bench: p99 lateness of both, the CPU per check
          ratio, and how long each fetch took (median and max; per check).
  grpc    50,000 at 5 s pushed with SetChecks (`-config_source grpc`, a grpcio client in
          this process) with one watcher reading every Status, measured as `50k` (run too,
          without its baseline, if not asked for): CPU per check against the gob path of
          the same run, and the time from the SetChecks reply until every check had run.

Targets: the C floor's multi-port serve mode (benchmarks/floor) when a C compiler is
present, else a Python accept loop. Caveat, measured here: every check closes first and
leaves a TIME_WAIT socket for 60 s; on one target address and port the ~28,000 ephemeral
ports run out at 10,000 connects/s and runs go bistable, so the target listens on 16 ports
and each case first waits (up to 65 s) for the machine's TIME_WAIT count to drop.

Usage: .venv/bin/python benchmarks/server_bench.py [--cases 10k,50k,...] [--window 30]
       (e.g. --cases scrape --baseline none: only the scrape case)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests import gopeer  # noqa: E402

import seesaw_healthcheck  # noqa: E402
from seesaw_healthcheck.channel import LATENESS_BOUNDS, percentile  # noqa: E402

PURE_ENV = seesaw_healthcheck.PURE_PYTHON_ENV
BUILDS = ("pure", "compiled")

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGESIZE") // 1024
PY = sys.executable
SERVER_ARGS: list[str] = []  # extra server flags (--server-arg), to isolate a cause

ACCEPT_LOOP = """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(4096)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""


# --- processes ---------------------------------------------------------------------------


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process and of the children it reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    user = int(fields[11]) + int(fields[13])
    system = int(fields[12]) + int(fields[14])
    return user / CLK_TCK, system / CLK_TCK


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def time_wait_count() -> int:
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("tw") + 1])
    return 0


def wait_for_time_wait_to_drain(limit: int = 5_000, max_wait_s: float = 65.0) -> None:
    deadline = time.monotonic() + max_wait_s
    count = time_wait_count()
    if count > limit:
        print(f"  waiting for {count} TIME_WAIT sockets to expire ...", flush=True)
    while count > limit and time.monotonic() < deadline:
        time.sleep(1.0)
        count = time_wait_count()


def floor_binary() -> Path | None:
    try:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from checkers_bench import build_floor

        return build_floor()
    except (ImportError, OSError, subprocess.CalledProcessError) as err:
        print(f"note: C floor unavailable: {err}")
        return None


TARGET_PORTS = 16


class Target:
    """TCP accept-and-close on TARGET_PORTS ports in a process of its own; or, with
    ``kind`` http or udp, the C floor's HTTP server or UDP echo on one port."""

    def __init__(self, floor: Path | None, kind: str = "tcp") -> None:
        if kind != "tcp":
            assert floor is not None
            self.proc = subprocess.Popen(
                [str(floor), "serve", kind, "127.0.0.1", "0"], stdout=subprocess.PIPE, text=True
            )
            assert self.proc.stdout is not None
            self.ports = [int(self.proc.stdout.readline().strip().partition("=")[2])]
            self.kind = f"C floor serve {kind}"
        elif floor is not None:
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


def closed_ports(count: int) -> list[int]:
    """Loopback ports nobody listens on (bound, then released)."""
    import socket

    socks = [socket.socket() for _ in range(count)]
    ports = []
    for s in socks:
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


# --- one server run ----------------------------------------------------------------------


def tcp_checks(n: int, interval: str, ports: list[int], first_id: int = 1) -> list[dict[str, Any]]:
    return [
        {"id": i, "interval": interval, "timeout": "1s", "type": "tcp", "ip": "127.0.0.1",
         "port": ports[i % len(ports)]}
        for i in range(first_id, first_id + n)
    ]  # fmt: skip


def kind_checks(kind: str, n: int, interval: str, ports: list[int]) -> list[dict[str, Any]]:
    """n checks of one type (tcp, http: GET / expecting 200, udp: "ping" echoed)."""
    if kind == "tcp":
        return tcp_checks(n, interval, ports)
    extra: dict[str, Any] = (
        {"method": "GET", "request": "/", "response_code": 200}
        if kind == "http"
        else {"send": "ping", "receive": "ping"}
    )
    return [
        {"id": i, "interval": interval, "timeout": "1s", "type": kind, "ip": "127.0.0.1",
         "port": ports[i % len(ports)], **extra}
        for i in range(1, n + 1)
    ]  # fmt: skip


class Server:
    """The Go engine serving a checks file, and the server against it, in ``tmp``."""

    def __init__(
        self,
        tmp: Path,
        name: str,
        checks: list[dict[str, Any]] | None,
        flags: list[str],
        source: Path | None = None,
        build: str | None = None,
    ) -> None:
        """``checks`` None: no engine; the flags say where checks come from (gRPC)."""
        self.tmp = tmp
        self.name = name
        self.build = build
        self.checks_file = tmp / f"checks-{name}.json"
        self.stats_file = tmp / f"stats-{name}.json"
        self.log_path = tmp / f"server-{name}.log"
        self.engine: gopeer.GoEngine | None = None
        source_flags: list[str] = []
        if checks is not None:
            sock = tmp / f"engine-{name}.sock"
            gopeer.write_checks_file(self.checks_file, checks)
            self.engine = gopeer.GoEngine(sock, checks_file=self.checks_file).start()
            source_flags = ["-engine", str(sock)]
        env = {k: v for k, v in os.environ.items() if k != PURE_ENV}
        if source is not None:  # another checkout's sources (the baseline)
            env["PYTHONPATH"] = str(source / "src")
        if build == "pure":
            env[PURE_ENV] = "1"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [PY, "-m", "seesaw_healthcheck.cli.healthcheck", *source_flags,
             "-stats_file", str(self.stats_file), "-logtostderr", *flags, *SERVER_ARGS],
            stdout=self._log, stderr=self._log, env=env,
        )  # fmt: skip

    def write_checks(self, checks: list[dict[str, Any]]) -> None:
        gopeer.write_checks_file(self.checks_file, checks)

    def stats(self) -> dict[str, Any]:
        try:
            return json.loads(self.stats_file.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def pids(self) -> list[int]:
        workers = [p for p in self.stats().get("worker_pids", []) if p]
        return [self.proc.pid, *workers]

    def cpu(self) -> tuple[float, float]:
        """User and system CPU seconds of every process of the server so far."""
        user = system = 0.0
        for pid in self.pids():
            u, s = cpu_split(pid)
            user += u
            system += s
        return user, system

    def rss(self) -> float:
        return sum(rss_mib(pid) for pid in self.pids())

    def wait(self, what: str, ready: Callable[[dict[str, Any]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = self.stats()
            if stats and ready(stats):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: server exited with {self.proc.returncode}")
            time.sleep(0.25)
        raise RuntimeError(f"{self.name}: {what} not within {timeout:g} s: {self.stats()}")

    def wait_all_ran(self, n: int, timeout: float = 180.0) -> None:
        self.wait(f"all {n} checks ran", lambda s: s["all_ran_at"] and s["ran_once"] >= n, timeout)
        if self.build is not None:  # the server says which build it runs: the one asked for
            want = "running compiled" if self.build == "compiled" else "running pure Python"
            log = self.log_path.read_text()
            if want not in log:
                line = next((x for x in log.splitlines() if "] running " in x), "(no line)")
                raise RuntimeError(f"{self.name}: asked for the {self.build} build; {line}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.engine is not None:
            self.engine.stop()
        self._log.close()


@contextlib.contextmanager
def server(
    tmp: Path,
    name: str,
    checks: list[dict[str, Any]] | None,
    flags: list[str],
    source: Path | None = None,
    build: str | None = None,
) -> Iterator[Server]:
    running = Server(tmp, name, checks, flags, source, build)
    try:
        yield running
    finally:
        running.stop()


def window(srv: Server, seconds: float, midway: Callable[[], None] | None = None) -> dict[str, Any]:
    """Measure ``seconds``: rate, CPU per check (all processes), RSS, lateness."""
    s0, (u0, y0), t0 = srv.stats(), srv.cpu(), time.monotonic()
    rss = []
    done_midway = False
    while time.monotonic() - t0 < seconds:
        time.sleep(1.0)
        rss.append(srv.rss())
        if midway is not None and not done_midway and time.monotonic() - t0 >= seconds / 3:
            midway()
            done_midway = True
    time.sleep(1.1)  # the stats file is rewritten every second
    s1, (u1, y1) = srv.stats(), srv.cpu()
    checks = s1["checks_run"] - s0["checks_run"]
    elapsed = s1["now"] - s0["now"]
    counts = [b - a for a, b in zip(s0["lateness_counts"], s1["lateness_counts"], strict=True)]
    cpu = (u1 - u0) + (y1 - y0)
    return {
        "checks_per_s": checks / elapsed,
        "cpu_us": cpu / checks * 1e6 if checks else float("nan"),
        "user_us": (u1 - u0) / checks * 1e6 if checks else float("nan"),
        "kernel_us": (y1 - y0) / checks * 1e6 if checks else float("nan"),
        "rss_mib": max(rss),
        "p50_ms": percentile(LATENESS_BOUNDS, counts, 0.50) * 1e3,
        "p99_ms": percentile(LATENESS_BOUNDS, counts, 0.99) * 1e3,
        "skipped": (s1["skipped_busy"] - s0["skipped_busy"])
        + (s1["skipped_late"] - s0["skipped_late"]),
    }


# --- cases -------------------------------------------------------------------------------


def steady_case(
    tmp: Path,
    name: str,
    n: int,
    interval: str,
    ports: list[int],
    seconds: float,
    source: Path | None = None,
    build: str | None = None,
    kind: str = "tcp",
) -> dict[str, Any]:
    """n checks; once all ran, a window in which a fetch changes 10% of the set."""
    checks = kind_checks(kind, n, interval, ports)
    changed = [dict(c, timeout="900ms") if c["id"] % 10 == 0 else c for c in checks]
    # TCP: the checks leave TIME_WAIT sockets on this side (see the module docstring).
    wait_for_time_wait_to_drain(5_000 if kind == "tcp" else 100_000)
    with server(tmp, name, checks, [], source, build) as srv:
        srv.wait_all_ran(n)
        time.sleep(3.0)  # the start-up logging and the first re-notify settle
        result = window(srv, seconds, midway=lambda: srv.write_checks(changed))
        result["all_ran_after_s"] = srv.stats()["all_ran_after_s"]
    return {"case": name, "checks": n, "interval": interval, **result}


def floor_pace(
    floor: Path, kind: str, rate: int, ports: list[int], seconds: float
) -> dict[str, Any]:
    """The C floor doing the same checks at the same pace (``floor pace``)."""
    wait_for_time_wait_to_drain(5_000 if kind == "tcp" else 100_000)
    out = subprocess.run(
        [str(floor), "pace", kind, "127.0.0.1", str(rate), str(seconds), *map(str, ports)],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    fields = dict(part.split("=") for part in out.split())
    return {
        "cpu_us": float(fields["cpu_us_per_check"]),
        "user_us": float(fields["user_us_per_check"]),
        "kernel_us": float(fields["sys_us_per_check"]),
        "failed": int(fields["fail"]),
    }


# (case, check type, checks at 1 s, target kind)
BUILD_CASES = {"10k": ("tcp", 10_000), "http": ("http", 1_000), "udp": ("udp", 10_000)}


def builds_case(
    tmp: Path,
    case: str,
    targets: dict[str, Target],
    floor: Path | None,
    builds: list[str],
    seconds: float,
    rounds: int,
    source: Path | None,
) -> dict[str, Any]:
    """The case with every build, the C floor and the baseline (if any), alternately
    ``rounds`` times: medians of user, kernel and total CPU per check for each."""
    kind, n = BUILD_CASES[case]
    ports = targets[kind].ports
    variants = [*(["floor"] if floor is not None else []), *builds]
    if source is not None:
        variants.append("baseline")
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for round_number in range(rounds):
        shift = round_number % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            print(f"  {case} round {round_number + 1}: {variant} ...", flush=True)
            if variant == "floor":
                assert floor is not None
                runs[variant].append(floor_pace(floor, kind, n, ports, seconds))
            else:
                runs[variant].append(
                    steady_case(
                        tmp, f"{case}-{variant}-{round_number}", n, "1s", ports, seconds,
                        source=source if variant == "baseline" else None,
                        build=None if variant == "baseline" else variant,
                        kind=kind,
                    )
                )  # fmt: skip
    medians = {
        v: {key: statistics.median(x[key] for x in r) for key in ("cpu_us", "user_us", "kernel_us")}
        for v, r in runs.items()
    }
    for v, r in runs.items():
        if v != "floor":
            medians[v]["p99_ms"] = statistics.median(x["p99_ms"] for x in r)
            medians[v]["checks_per_s"] = statistics.median(x["checks_per_s"] for x in r)
            medians[v]["rss_mib"] = statistics.median(x["rss_mib"] for x in r)
    return {
        "case": f"{case}-builds",
        "kind": kind,
        "checks": n,
        "rounds": rounds,
        "medians": medians,
        "runs": runs,
    }


def print_builds(result: dict[str, Any], window_s: float) -> None:
    med = result["medians"]
    floor = med.get("floor")
    print(
        f"\n{result['checks']:,} {result['kind'].upper()} checks at 1 s, all processes of "
        f"the server; window {window_s:g} s; medians of {result['rounds']} alternating runs"
    )
    print(
        f"{'':>10} {'user us':>8} {'kernel us':>9} {'total us':>8} {'x floor':>8} "
        f"{'checks/s':>9} {'p99 ms':>7} {'RSS MiB':>8}"
    )
    for variant, m in med.items():
        ratio = f"{m['cpu_us'] / floor['cpu_us']:.2f}x" if floor else "-"
        extra = (
            f"{m['checks_per_s']:9.0f} {m['p99_ms']:7.2f} {m['rss_mib']:8.1f}"
            if "p99_ms" in m
            else f"{'':>9} {'':>7} {'':>8}"
        )
        print(
            f"{variant:>10} {m['user_us']:8.1f} {m['kernel_us']:9.1f} {m['cpu_us']:8.1f} "
            f"{ratio:>8} {extra}"
        )
    if "pure" in med and "compiled" in med:
        pure, compiled = med["pure"], med["compiled"]
        print(
            f"compiled/pure: user CPU {compiled['user_us'] / pure['user_us']:.2f}x "
            f"(target <= 0.5), total {compiled['cpu_us'] / pure['cpu_us']:.2f}x"
        )
    if floor and "compiled" in med:
        print(
            f"compiled/floor: total CPU {med['compiled']['cpu_us'] / floor['cpu_us']:.2f}x "
            f"(target <= 1.4); the floor's kernel part alone is "
            f"{floor['kernel_us']:.1f} us, the compiled server's {med['compiled']['kernel_us']:.1f}"
        )


def api_checks(checks: list[dict[str, Any]]) -> Any:
    """The SetChecksRequest of ``tcp_checks`` entries."""
    from google.protobuf import duration_pb2

    from seesaw_healthcheck.goduration import parse_duration
    from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb

    def duration(text: str) -> duration_pb2.Duration:
        d = duration_pb2.Duration()
        d.FromNanoseconds(parse_duration(text))
        return d

    return pb.SetChecksRequest(
        checks=[
            pb.Check(
                id=c["id"],
                interval=duration(c["interval"]),
                timeout=duration(c["timeout"]),
                target=pb.Target(ip=c["ip"], port=c["port"]),
                tcp=pb.TCPChecker(),
            )
            for c in checks
        ]
    )


class Watcher:
    """One WatchStatus stream read to the end in a thread: statuses and batches counted."""

    def __init__(self, channel: Any) -> None:
        import threading

        from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb
        from seesaw_healthcheck.grpcapi import healthcheck_pb2_grpc as pb_grpc

        self.statuses = 0
        self.batches = 0
        self.call = pb_grpc.HealthcheckStub(channel).WatchStatus(pb.WatchStatusRequest())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        import grpc

        try:
            for batch in self.call:
                self.batches += 1
                self.statuses += len(batch.statuses)
        except grpc.RpcError:
            pass  # cancelled at the end

    def stop(self) -> None:
        self.call.cancel()
        self.thread.join(10)


def grpc_case(tmp: Path, ports: list[int], seconds: float) -> dict[str, Any]:
    """50,000 checks at 5 s pushed with SetChecks (grpcio, as a controller would), one
    watcher reading every Status; the same window and 10% change as ``steady_case``."""
    import grpc

    from seesaw_healthcheck.grpcapi import healthcheck_pb2_grpc as pb_grpc

    n = 50_000
    checks = tcp_checks(n, "5s", ports)
    changed = [dict(c, timeout="900ms") if c["id"] % 10 == 0 else c for c in checks]
    request, changed_request = api_checks(checks), api_checks(changed)
    address = f"unix:{tmp / 'grpc.sock'}"
    wait_for_time_wait_to_drain()
    flags = ["-config_source", "grpc", "-grpc_listen", address]
    with server(tmp, "grpc", None, flags) as srv:
        channel = grpc.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 256 << 20)]
        )
        grpc.channel_ready_future(channel).result(timeout=30)
        api = pb_grpc.HealthcheckStub(channel)
        watcher = Watcher(channel)
        try:
            sent = time.monotonic()  # the server's reactor runs on the same clock
            reply = api.SetChecks(request, timeout=120)
            answered = time.monotonic()
            assert not reply.errors, reply.errors[:3]
            srv.wait_all_ran(n)
            first = srv.stats()
            time.sleep(3.0)
            result = window(
                srv, seconds, midway=lambda: api.SetChecks(changed_request, timeout=120)
            )
            result["all_ran_after_s"] = first["all_ran_after_s"]
        finally:
            watcher.stop()
            channel.close()
    return {
        "case": "grpc",
        "checks": n,
        "interval": "5s",
        **result,
        "set_checks_s": answered - sent,
        "all_ran_after_reply_s": first["all_ran_at"] - answered,
        "applied_after_send_s": first["first_config_at"] - sent,
        "watched_statuses": watcher.statuses,
        "watched_batches": watcher.batches,
    }


def big_case(tmp: Path, ports: list[int], seconds: float) -> dict[str, Any]:
    n = 100_000
    wait_for_time_wait_to_drain()
    with server(tmp, "100k", tcp_checks(n, "10s", ports), ["-workers", "1"]) as srv:
        srv.wait_all_ran(n, timeout=240)
        stats = srv.stats()
        time.sleep(3.0)
        result = window(srv, seconds)
    return {
        "case": "100k",
        "checks": n,
        "interval": "10s",
        **result,
        "all_ran_after_answer_s": stats["all_ran_at"] - stats["first_answered_at"],
        "first_fetch_answered_s": stats["first_answered_at"] - stats["first_config_at"],
        "first_fetch_scheduled_s": stats["first_applied_at"] - stats["first_answered_at"],
    }


def rate_case(tmp: Path, workers: int, start: int, step: int, seconds: float) -> dict[str, Any]:
    """Step the number of checks at 1 s up until p99 lateness passes 20 ms or the rate falls
    behind; the highest count that held."""
    ports = closed_ports(64)
    best: dict[str, Any] = {}
    n = start
    while True:
        name = f"rate-w{workers}-{n}"
        with server(tmp, name, tcp_checks(n, "1s", ports), ["-workers", str(workers)]) as srv:
            srv.wait_all_ran(n, timeout=60)
            time.sleep(2.0)
            result = window(srv, seconds)
        held = result["p99_ms"] <= 20.0 and result["checks_per_s"] >= 0.98 * n
        print(
            f"  workers {workers}, {n} checks/s: {result['checks_per_s']:.0f}/s, "
            f"p99 {result['p99_ms']:.2f} ms, {result['cpu_us']:.1f} CPU-us/check"
            f" -> {'held' if held else 'gave'}",
            flush=True,
        )
        if not held:
            return {"case": f"rate-w{workers}", "workers": workers, **best}
        best = {"max_rate": n, **result}
        n += step


def churn_case(tmp: Path, ports: list[int], minutes: float) -> dict[str, Any]:
    """2,000 checks; every 10 s, 10% edited (a third removed, a third re-timed, a third
    added under new ids). RSS every 10 s; its slope after the first minute."""
    checks = tcp_checks(2_000, "1s", ports)
    next_id = 1_000_000
    samples: list[tuple[float, float]] = []
    wait_for_time_wait_to_drain()
    with server(tmp, "churn", checks, ["-fetch_interval", "2s"]) as srv:
        srv.wait_all_ran(len(checks))
        started = time.monotonic()
        rounds = 0
        while time.monotonic() - started < minutes * 60:
            time.sleep(10.0)
            rounds += 1
            edited = len(checks) // 30
            checks = checks[edited:]  # the oldest third of the 10%: removed
            for c in checks[:edited]:
                c["interval"] = "900ms" if c["interval"] == "1s" else "1s"
            checks = checks[edited:] + checks[:edited]  # re-timed ones go to the back
            checks += tcp_checks(edited, "1s", ports, next_id)
            next_id += edited
            srv.write_checks(checks)
            samples.append((time.monotonic() - started, srv.rss()))
        final = srv.stats()
    late = [(t, r) for t, r in samples if t >= 60.0]
    slope = _slope(late) * 60.0 if len(late) >= 3 else float("nan")
    return {
        "case": "churn",
        "checks": 2_000,
        "rounds": rounds,
        "rss_first_mib": samples[0][1],
        "rss_last_mib": samples[-1][1],
        "rss_slope_mb_per_min": slope * 1.048576,  # MiB/min -> MB/min
        "checks_run": final.get("checks_run"),
    }


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    num = sum((x - mx) * (y - my) for x, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return num / den if den else 0.0


def shrink_case(tmp: Path, ports: list[int]) -> dict[str, Any]:
    small = tcp_checks(10, "1s", ports)
    wait_for_time_wait_to_drain()
    with server(tmp, "shrink", tcp_checks(100_000, "10s", ports), ["-fetch_interval", "5s"]) as srv:
        srv.wait_all_ran(100_000, timeout=240)
        peak = srv.rss()
        srv.write_checks(small)
        srv.wait("the shrink", lambda s: s["checks"] == 10, 30)
        time.sleep(60.0)
        after = srv.rss()
    with server(tmp, "fresh10", small, ["-fetch_interval", "5s"]) as fresh:
        fresh.wait_all_ran(10)
        time.sleep(10.0)
        baseline = fresh.rss()
    return {
        "case": "shrink",
        "rss_at_100k_mib": peak,
        "rss_60s_after_shrink_mib": after,
        "rss_fresh_10_mib": baseline,
        "over_fresh_mib": after - baseline,
    }


class Scraper:
    """Fetches `/metrics`, then `/status`, at the start of every second (a thread); the
    time of each from request to last byte, and the sizes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.times: dict[str, list[float]] = {"/metrics": [], "/status": []}
        self.sizes: dict[str, int] = {}
        self.late_ticks = 0  # seconds whose fetches started after the next second began
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def fetch(self, path: str) -> bytes:
        t0 = time.perf_counter()
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            body: bytes = response.read()
        self.times[path].append(time.perf_counter() - t0)
        self.sizes[path] = len(body)
        return body

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            for path in self.times:
                try:
                    self.fetch(path)
                except OSError as err:
                    self.errors.append(f"{path}: {err}")
            next_tick += 1.0
            now = time.monotonic()
            if next_tick < now:
                self.late_ticks += 1
                next_tick = now
            self._stop.wait(next_tick - now)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def summary(self, checks: int) -> dict[str, Any]:
        out: dict[str, Any] = {"late_ticks": self.late_ticks, "errors": len(self.errors)}
        for path, times in self.times.items():
            name = path.strip("/")
            times_ms = sorted(t * 1e3 for t in times)
            out[f"{name}_fetches"] = len(times_ms)
            out[f"{name}_median_ms"] = statistics.median(times_ms) if times_ms else math.nan
            out[f"{name}_max_ms"] = times_ms[-1] if times_ms else math.nan
            out[f"{name}_us_per_check"] = out[f"{name}_median_ms"] * 1e3 / checks
            out[f"{name}_bytes"] = self.sizes.get(path, 0)
        return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape_case(tmp: Path, ports: list[int], seconds: float) -> list[dict[str, Any]]:
    """50,000 checks at 5 s; a plain window, then one with /metrics and /status fetched
    every second, on the same server."""
    n = 50_000
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    wait_for_time_wait_to_drain()
    flags = ["-http_addr", f"127.0.0.1:{port}"]
    with server(tmp, "scrape", tcp_checks(n, "5s", ports), flags) as srv:
        srv.wait_all_ran(n)
        time.sleep(3.0)  # the start-up logging and the first re-notify settle
        plain = window(srv, seconds)
        scraper = Scraper(url)
        listed = len(json.loads(scraper.fetch("/status"))["checks"])
        if listed != n:
            raise RuntimeError(f"/status listed {listed} checks, want {n}")
        scraper.times["/status"].clear()
        with scraper:
            scraped = window(srv, seconds)
        if scraper.errors:
            print(f"  scrape errors: {scraper.errors[:3]}", flush=True)
    common = {"checks": n, "interval": "5s"}
    return [
        {"case": "scrape-plain", **common, **plain},
        {"case": "scrape-fetched", **common, **scraped, **scraper.summary(n)},
    ]


# --- baseline checkout -------------------------------------------------------------------


def default_baseline() -> str | None:
    """The last single-process server: the parent of the commit that removed it."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "log", "--diff-filter=D", "--format=%H", "-1", "--",
         "src/seesaw_healthcheck/server/app.py"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    return f"{out}^" if out else None


@contextlib.contextmanager
def checkout(rev: str, tmp: Path) -> Iterator[Path]:
    path = tmp / "baseline-src"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), rev], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)], check=False
        )


# --- report ------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'case':>14} {'checks/s':>9} {'CPU-us':>7} {'user':>6} {'kernel':>6} {'RSS MiB':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'skipped':>7}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['case']:>14} {r['checks_per_s']:9.0f} {r['cpu_us']:7.1f} {r['user_us']:6.1f} "
            f"{r['kernel_us']:6.1f} {r['rss_mib']:8.1f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} "
            f"{r['skipped']:7d}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="10k,http,udp,50k,100k,rate,churn,shrink,scrape,grpc")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured per case")
    parser.add_argument("--baseline", default="default", help="git rev, or none")
    parser.add_argument(
        "--builds", default=",".join(BUILDS), help="builds for 10k, http, udp: pure,compiled"
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs (10k, http, udp)")
    parser.add_argument("--churn-minutes", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--server-arg", action="append", default=[], help="extra server flag")
    args = parser.parse_args()
    SERVER_ARGS.extend(args.server_arg)
    cases = set(args.cases.split(","))
    if shutil.which("go") is None and not gopeer.BINARY.exists():
        print("server_bench: Go is not installed; skipping (run `make go`)")
        return 0
    gopeer.build()
    baseline = default_baseline() if args.baseline == "default" else args.baseline
    if baseline == "none":
        baseline = None
    builds = [b for b in args.builds.split(",") if b]
    compiled_there = seesaw_healthcheck.manifest_modules and not seesaw_healthcheck.stale_module
    if "compiled" in builds and not compiled_there:
        print("note: no compiled build here (run `make compiled`); plain Python only")
        builds.remove("compiled")
    tmp = Path(tempfile.mkdtemp(prefix="ssw-bench-", dir="/tmp"))
    floor = floor_binary()
    target = Target(floor)
    targets = {"tcp": target}
    if floor is not None:
        for kind in ("http", "udp"):
            if kind in cases:
                targets[kind] = Target(floor, kind)
    results: list[dict[str, Any]] = []
    try:
        with contextlib.ExitStack() as stack:
            source = stack.enter_context(checkout(baseline, tmp)) if baseline else None
            for name in BUILD_CASES:
                if name not in cases:
                    continue
                if BUILD_CASES[name][0] not in targets:
                    print(f"skip {name}: needs the C floor's target (gcc)")
                    continue
                print(f"running {name} with {', '.join(builds)} and the C floor ...", flush=True)
                results.append(
                    builds_case(tmp, name, targets, floor, builds, args.window, args.rounds, source)
                )
            for name, n, interval in (("50k", 50_000, "5s"),):
                if name not in cases:
                    continue
                print(f"running {name}: {n} TCP checks every {interval} ...", flush=True)
                results.append(steady_case(tmp, name, n, interval, target.ports, args.window))
                if source is not None:
                    print(f"running {name} with the baseline ({baseline}) ...", flush=True)
                    results.append(
                        steady_case(
                            tmp, f"{name}-baseline", n, interval, target.ports, args.window, source
                        )
                    )
        if "grpc" in cases:
            if not any(r["case"] == "50k" for r in results):
                print("running 50k (the gob path, for grpc): 50000 TCP checks every 5s ...")
                results.append(steady_case(tmp, "50k", 50_000, "5s", target.ports, args.window))
            print("running grpc: 50000 TCP checks every 5s pushed by SetChecks ...", flush=True)
            results.append(grpc_case(tmp, target.ports, args.window))
        if "100k" in cases:
            print("running 100k: 100,000 TCP checks every 10 s, one worker ...", flush=True)
            results.append(big_case(tmp, target.ports, args.window))
        if "rate" in cases:
            print("running rate: the highest sustained rate, -workers 1 and 2 ...", flush=True)
            one = rate_case(tmp, 1, 10_000, 5_000, 15.0)
            results.append(one)
            results.append(rate_case(tmp, 2, max(10_000, one.get("max_rate", 10_000)), 5_000, 15.0))
        if "churn" in cases:
            print(f"running churn for {args.churn_minutes:g} min ...", flush=True)
            results.append(churn_case(tmp, target.ports, args.churn_minutes))
        if "shrink" in cases:
            print("running shrink: 100,000 checks, then 10 ...", flush=True)
            results.append(shrink_case(tmp, target.ports))
        if "scrape" in cases:
            print(
                "running scrape: 50,000 TCP checks every 5s, plain, then /metrics and /status "
                "fetched every second ...",
                flush=True,
            )
            results.extend(scrape_case(tmp, target.ports, args.window))
    finally:
        for running in targets.values():
            running.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    for r in results:
        if r["case"].endswith("-builds"):
            print_builds(r, args.window)
    print(f"\ntarget: {target.kind}; window {args.window:g} s; all processes of the server")
    steady = [r for r in results if "checks_per_s" in r and not r["case"].startswith("rate")]
    if steady:
        print_table(steady)
    by_case = {r["case"]: r for r in results}
    for name in ("50k",):
        if name in by_case and f"{name}-baseline" in by_case:
            now, before = by_case[name], by_case[f"{name}-baseline"]
            print(
                f"{name}: CPU per check {now['cpu_us'] / before['cpu_us']:.3f}x the single-process"
                f" baseline ({now['cpu_us']:.1f} vs {before['cpu_us']:.1f} us)"
            )
    if "grpc" in by_case and "50k" in by_case:
        r, gob = by_case["grpc"], by_case["50k"]
        print(
            f"grpc: CPU per check {r['cpu_us'] / gob['cpu_us']:.3f}x the gob path "
            f"({r['cpu_us']:.1f} vs {gob['cpu_us']:.1f} us, all processes of the server); "
            f"SetChecks of {r['checks']} answered in {r['set_checks_s']:.2f} s, every check "
            f"had run {r['all_ran_after_reply_s']:.2f} s after the reply (gob: "
            f"{gob['all_ran_after_s']:.2f} s after the first fetch was sent); the watcher "
            f"read {r['watched_statuses']} statuses in {r['watched_batches']} batches"
        )
    if "100k" in by_case:
        r = by_case["100k"]
        print(
            f"100k: every check ran {r['all_ran_after_answer_s']:.2f} s after the first fetch "
            f"was answered (interval 10 s); the fetch took {r['first_fetch_answered_s']:.2f} s "
            f"to be answered and {r['first_fetch_scheduled_s']:.2f} s more until every check "
            f"was scheduled; total RSS {r['rss_mib']:.1f} MiB"
        )
    rates = [by_case.get("rate-w1", {}), by_case.get("rate-w2", {})]
    if all(r.get("max_rate") for r in rates):
        one, two = rates[0]["max_rate"], rates[1]["max_rate"]
        print(
            f"rate: highest sustained (p99 <= 20 ms): -workers 1 {one}/s, -workers 2 {two}/s: "
            f"{two / one:.2f}x"
        )
    if "churn" in by_case:
        r = by_case["churn"]
        print(
            f"churn: {r['rounds']} edits; RSS {r['rss_first_mib']:.1f} -> {r['rss_last_mib']:.1f}"
            f" MiB; slope after the first minute {r['rss_slope_mb_per_min']:+.3f} MB/min"
        )
    if "shrink" in by_case:
        r = by_case["shrink"]
        print(
            f"shrink: {r['rss_at_100k_mib']:.1f} MiB at 100,000 checks; 60 s after shrinking to "
            f"10: {r['rss_60s_after_shrink_mib']:.1f} MiB; a fresh server with 10: "
            f"{r['rss_fresh_10_mib']:.1f} MiB ({r['over_fresh_mib']:+.1f} MiB)"
        )
    if "scrape-plain" in by_case and "scrape-fetched" in by_case:
        plain, fetched = by_case["scrape-plain"], by_case["scrape-fetched"]
        print(
            f"scrape: p99 lateness {plain['p99_ms']:.2f} ms plain, {fetched['p99_ms']:.2f} ms "
            f"with /metrics and /status every second; CPU per check (all processes) "
            f"{fetched['cpu_us'] / plain['cpu_us']:.3f}x ({fetched['cpu_us']:.1f} vs "
            f"{plain['cpu_us']:.1f} us)"
        )
        for name in ("metrics", "status"):
            print(
                f"  /{name} of 50,000 checks: median {fetched[f'{name}_median_ms']:.1f} ms, "
                f"max {fetched[f'{name}_max_ms']:.1f} ms "
                f"({fetched[f'{name}_us_per_check']:.2f} us per check), "
                f"{fetched[f'{name}_bytes'] / 1024:,.0f} KiB, "
                f"{fetched[f'{name}_fetches']} fetches"
            )
        if fetched["late_ticks"] or fetched["errors"]:
            print(
                f"  {fetched['late_ticks']} seconds whose fetches overran into the next, "
                f"{fetched['errors']} failed fetches"
            )
    for r in results:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
