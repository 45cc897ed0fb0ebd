"""What 100,000 checks must cost in memory before any design choice: each process's
imports, and 100,000 TCP configs held as the model's objects (the control process keeps
every config to diff the next fetch against; a worker keeps the configs of the checks it
runs). Set against the 100,000-check target (total RSS <= 200 MiB), in one run.

Each figure is measured in a fresh interpreter (RSS from /proc, no tracemalloc, whose own
bookkeeping would double it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

_RSS = """
def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
"""

_IMPORTS = {
    "control process": "import seesaw_healthcheck.cli.healthcheck, seesaw_healthcheck.control.app",
    "check worker": "import seesaw_healthcheck.worker.__main__",
}

_CONFIGS = """
from seesaw_healthcheck.model import Config, Mode, Target, TCPChecker
before = rss()
configs = {}
for i in range(N):
    ip = bytes((10, (i >> 16) & 255, (i >> 8) & 255, i & 255))
    target = Target(ip=ip, port=1000 + i % 512, proto=6, mode=Mode.PLAIN)
    configs[i + 1] = Config(i + 1, 10_000_000_000, 1_000_000_000, 0, TCPChecker(target))
print(rss() - before)
"""


def measure(code: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _RSS + code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.split()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=100_000)
    parser.add_argument("--target-mib", type=float, default=200.0)
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    for name, imports in _IMPORTS.items():
        rows.append((f"{name}: interpreter and imports", measure(f"{imports}\nprint(rss())")))
    configs = measure(f"N = {args.checks}\n{_CONFIGS}")
    rows.append((f"{args.checks:,} TCP configs as model objects, in the control process", configs))
    rows.append(("the same configs in the check worker", configs))
    width = max(len(name) for name, _ in rows)
    for name, mib in rows:
        print(f"{name:<{width}} {mib:7.1f} MiB")
    total = sum(mib for _, mib in rows)
    print(f"{'floor (sum)':<{width}} {total:7.1f} MiB")
    print(
        f"{'left for everything else':<{width}} {args.target_mib - total:7.1f} MiB of the "
        f"{args.target_mib:g} MiB target ({(args.target_mib - total) * 2**20 / args.checks:.0f} "
        "bytes per check for both processes' tables, schedules, sockets and buffers)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
