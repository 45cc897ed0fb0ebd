"""A stand-alone stand-in for the control process's HTTP endpoint, for the status page and
``seesaw-healthcheck-status`` tests: a stdlib ``http.server`` on 127.0.0.1 that serves the
package's web files (``seesaw_healthcheck.control.webfiles``) at ``/`` and a generated
``/status`` (and ``/status/<id>``) of N checks in the JSON contract of the real server,
filters and errors included.

Ids start at ``(0xFFFF << 48) + 1``, as Seesaw's engine numbers checks for a pid ending in
0xFFFF: beyond 2^53, so a page that parses them as JavaScript numbers shows them wrong.
``set_state`` changes a check as a transition would; the body is cached until then.

For working on the page by hand::

    .venv/bin/python -m tests.peers.status_fixture --checks 5000 --port 8000 --flap 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import random
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from seesaw_healthcheck import checkers, model
from seesaw_healthcheck.control import webfiles

FIRST_ID = (0xFFFF << 48) + 1
STATES = ("healthy", "unhealthy", "unknown")
TYPES = ("tcp", "http", "dns", "udp", "ping", "radius", "unknown")
PROTO_NAMES = {model.Proto.TCP: "tcp", model.Proto.UDP: "udp", model.Proto.ICMP: "icmp"}


def rfc3339(seconds: float) -> str:
    return (
        dt.datetime.fromtimestamp(seconds, dt.UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


def _checker(kind: str, target: model.Target) -> Any:
    if kind == "tcp":
        return model.TCPChecker(target=target)
    if kind == "http":
        return model.HTTPChecker(target=target, method="GET", request="/healthz", response_code=200)
    if kind == "dns":
        question = model.DNSQuestion(name="www.example.com.", qtype=1, qclass=1)
        return model.DNSChecker(target=target, question=question, answer="192.0.2.10")
    if kind == "udp":
        return model.UDPChecker(target=target, send="ping", receive="pong")
    if kind == "radius":
        return model.RADIUSChecker(target=target, username="probe", response="accept")
    return model.PingChecker(target=target)


def make_check(index: int, rng: random.Random, now: float) -> dict[str, Any]:
    """The ``index``-th check of a fixture: types in turn, most healthy, some not."""
    kind = ("tcp", "http", "dns", "udp", "ping", "radius")[index % 6]
    n = index + 1
    ip = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    port = {"tcp": 443, "http": 80, "dns": 53, "udp": 5000, "ping": 0, "radius": 1812}[kind]
    proto = {"dns": model.Proto.UDP, "udp": model.Proto.UDP, "radius": model.Proto.UDP,
             "ping": model.Proto.ICMP}.get(kind, model.Proto.TCP)  # fmt: skip
    mode = model.Mode.DSR if index % 7 == 3 else model.Mode.PLAIN
    host = f"192.168.{index // 256 % 256}.{index % 256}" if mode != model.Mode.PLAIN else None
    target = model.Target(
        ip=model.ip_to_bytes(ip),
        host=model.ip_to_bytes(host) if host else b"",
        port=port,
        proto=proto,
        mode=mode,
        mark=index % 100 if host else 0,
    )
    draw = rng.random()
    state = "healthy" if draw < 0.8 else "unhealthy" if draw < 0.9 else "unknown"
    interval = (1.0, 5.0, 10.0)[index % 3]
    ran = state != "unknown"
    successes = rng.randrange(1, 5000) if ran else 0
    failures = rng.randrange(0, 50) + (1 if state == "unhealthy" else 0)
    where = f"{ip}:{port}" if port else ip
    message = {
        "healthy": f"{kind.upper()} check to {where} succeeded",
        "unhealthy": f"dial tcp4 {where}: connect: connection refused",
        "unknown": "",
    }[state]
    return {
        "id": FIRST_ID + index,
        "type": kind,
        "description": checkers.describe(_checker(kind, target)),
        "target": {
            "ip": ip,
            "host": host,
            "port": port,
            "proto": PROTO_NAMES[proto],
            "mode": model.Mode(mode).name.lower(),
            "mark": target.mark,
        },
        "interval": interval,
        "timeout": interval / 2,
        "retries": index % 3,
        "state": state,
        "since": rfc3339(now - rng.uniform(1, 90_000)) if ran else None,
        "last_check": rfc3339(now - rng.uniform(0, interval)) if ran else None,
        "duration": round(rng.uniform(0.0002, 0.05), 6) if ran else 0.0,
        "failures": failures if ran else 0,
        "successes": successes,
        "consecutive_failures": rng.randrange(1, 9) if state == "unhealthy" else 0,
        "message": message,
        "problem": None,
    }


def totals(checks: Iterable[dict[str, Any]]) -> dict[str, Any]:
    counts = dict.fromkeys(STATES, 0)
    by_type: dict[str, dict[str, int]] = {}
    n = 0
    for check in checks:
        n += 1
        counts[check["state"]] += 1
        by_type.setdefault(check["type"], dict.fromkeys(STATES, 0))[check["state"]] += 1
    return {"checks": n, **counts, "by_type": by_type}


class StatusFixture:
    """The fixture server; a context manager. ``url`` is its base URL (ends with ``/``)."""

    def __init__(self, checks: int = 20, *, seed: int = 1, port: int = 0) -> None:
        now = time.time()
        rng = random.Random(seed)
        self.started = now - 3600
        self.checks: dict[int, dict[str, Any]] = {}
        for i in range(checks):
            check = make_check(i, rng, now)
            self.checks[check["id"]] = check
        self.server_info: dict[str, Any] = {
            "version": "0.1.0",
            "pid": 4242,
            "started": rfc3339(self.started),
            "config_source": "engine",
            "workers": 1,
            "fetch_interval": 15.0,
            "notify_interval": 15.0,
            "last_fetch": rfc3339(now - 4),
            "last_fetch_error": None,
            "last_notification": rfc3339(now - 2),
            "pending_notifications": 0,
        }
        self.status_requests = 0
        # When set, /status answers with this (status code, body) instead: a broken server.
        self.broken: tuple[int, bytes] | None = None
        self._lock = threading.Lock()
        self._version = 0
        self._cache: dict[str, tuple[int, bytes]] = {}
        self._http = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._http.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/"

    def __enter__(self) -> StatusFixture:
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ---- the data -------------------------------------------------------------------

    def ids(self) -> list[int]:
        return sorted(self.checks)

    def count(self, state: str) -> int:
        with self._lock:
            return sum(1 for c in self.checks.values() if c["state"] == state)

    def set_state(self, check_id: int, state: str, message: str) -> None:
        """Change one check's state as a transition does (since, counters, message)."""
        if state not in STATES:
            raise ValueError(f"bad state {state!r}")
        with self._lock:
            check = self.checks[check_id]
            now = rfc3339(time.time())
            if check["state"] != state:
                check["since"] = now
            check["state"] = state
            check["message"] = message
            check["last_check"] = now
            check["duration"] = round(random.uniform(0.0002, 0.05), 6)
            if state == "unhealthy":
                check["failures"] += 1
                check["consecutive_failures"] += 1
            else:
                check["successes"] += 1
                check["consecutive_failures"] = 0
            self._version += 1
            self._cache.clear()

    def update_server(self, **fields: Any) -> None:
        with self._lock:
            self.server_info.update(fields)
            self._cache.clear()

    # ---- the endpoint ---------------------------------------------------------------

    def status(self, query: str) -> tuple[int, bytes]:
        """The answer (HTTP status, JSON body) to ``GET /status?<query>``."""
        with self._lock:
            self.status_requests += 1
            if self.broken is not None:
                return self.broken
            cached = self._cache.get(query)
            if cached is None:
                cached = self._status(query)
                self._cache[query] = cached
            return cached

    def _status(self, query: str) -> tuple[int, bytes]:
        try:
            params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
        except ValueError:
            return error(400, f"bad query string {query!r}")
        selected = list(self.checks.values())
        for name, values in params.items():
            value = values[-1]
            if name == "state":
                if value not in STATES:
                    return error(400, f"bad state {value!r}: want one of {', '.join(STATES)}")
                selected = [c for c in selected if c["state"] == value]
            elif name == "type":
                if value not in TYPES:
                    return error(400, f"bad type {value!r}: want one of {', '.join(TYPES)}")
                selected = [c for c in selected if c["type"] == value]
            elif name == "ip":
                try:
                    ip = ipaddress.ip_address(value)
                except ValueError:
                    return error(400, f"bad ip {value!r}")
                selected = [c for c in selected if ipaddress.ip_address(c["target"]["ip"]) == ip]
            else:
                return error(400, f"unknown parameter {name!r}: want state, type or ip")
        selected.sort(key=lambda c: int(c["id"]))
        doc = {
            "generated": rfc3339(time.time()),
            "server": self.server_info,
            "totals": totals(selected),
            "checks": selected,
        }
        return 200, json.dumps(doc, separators=(",", ":")).encode()

    def one(self, raw_id: str) -> tuple[int, bytes]:
        with self._lock:
            if not raw_id.isdigit() or int(raw_id) not in self.checks:
                return error(404, f"no check with id {raw_id!r}")
            return 200, json.dumps(self.checks[int(raw_id)]).encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/status":
                    code, body = fixture.status(url.query)
                    self._send(code, body, "application/json")
                elif url.path.startswith("/status/"):
                    code, body = fixture.one(url.path.removeprefix("/status/"))
                    self._send(code, body, "application/json")
                elif (page := webfiles.lookup(url.path)) is not None:
                    self._send(200, page.body, page.content_type, webfiles.HEADERS)
                else:
                    self._send(*error(404, f"no such page {url.path!r}"), "application/json")

            def _send(
                self,
                code: int,
                body: bytes,
                content_type: str,
                headers: tuple[tuple[str, str], ...] = (("Cache-Control", "no-store"),),
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def error(code: int, text: str) -> tuple[int, bytes]:
    return code, json.dumps({"error": text}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--flap", type=float, default=0.0, help="flip a random check every S s")
    args = parser.parse_args()
    with StatusFixture(args.checks, port=args.port) as fixture:
        print(f"serving {args.checks} checks at {fixture.url} (Ctrl-C to stop)")
        rng = random.Random(2)
        ids = fixture.ids()
        try:
            while True:
                time.sleep(args.flap or 3600)
                if args.flap and ids:
                    check_id = rng.choice(ids)
                    state = rng.choice(STATES)
                    fixture.set_state(check_id, state, f"flipped to {state} by hand")
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
