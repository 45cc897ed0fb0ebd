"""Regenerate ``docs/status-page.png``: the status page of the real server, in Debian's
headless chromium.

Runs ``python -m seesaw_healthcheck.cli.demo`` on ``docs/status-page.toml`` (loopback
services and the engine emulator, the real server with ``--http-addr`` on a free port),
waits until every check has run and the flapping one has been both up and down, takes the
screenshot of ``/#sort=state`` (unhealthy first) and stops the demo.

Usage: ``.venv/bin/python scripts/status_screenshot.py [--out PNG] [--checks TOML]
[--size 1280x560]``
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.peers import chromium  # noqa: E402

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def status(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/status", timeout=5) as response:
            document: dict[str, Any] = json.load(response)
            return document
    except OSError:
        return None


def settled(document: dict[str, Any] | None) -> bool:
    """Every runnable check has run, and one has been both healthy and unhealthy."""
    if not document or not document["checks"]:
        return False
    checks = document["checks"]
    ran = all(c["last_check"] for c in checks if not c["problem"])
    flapped = any(c["failures"] and c["successes"] for c in checks)
    return ran and flapped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "status-page.png")
    parser.add_argument("--checks", type=Path, default=REPO / "docs" / "status-page.toml")
    parser.add_argument("--size", default="1280x560", help="window, WIDTHxHEIGHT")
    args = parser.parse_args()
    width, _, height = args.size.partition("x")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "seesaw_healthcheck.cli.demo", "--duration", "300",
             "--http-addr", f"127.0.0.1:{port}", str(args.checks)],
            stdout=log, stderr=log, cwd=REPO,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not settled(status(url)):
                if demo.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    print(log.read().decode(errors="replace"), file=sys.stderr)
                    print("status_screenshot: the demo did not settle", file=sys.stderr)
                    return 1
                time.sleep(0.5)
            chromium.screenshot(
                f"{url}/#sort=state", args.out, window=(int(width), int(height)), budget_ms=3000
            )
        finally:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(15)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()
    print(f"{args.out}: {args.size}, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
