"""The Prometheus harness (tests/peers/prometheus.py) against a tiny stdlib HTTP server
exposing a counter in the text format: Debian's prometheus scrapes it every second and a
PromQL query through the HTTP API returns the counter's value, before and after a change."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.peers.prometheus import Prometheus


class CounterTarget:
    """Serves ``/metrics`` with one counter, ``peer_test_events_total{kind="x"}``."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.scrapes = 0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                target.scrapes += 1
                body = (
                    "# HELP peer_test_events_total Events seen by the test.\n"
                    "# TYPE peer_test_events_total counter\n"
                    f'peer_test_events_total{{kind="x"}} {target.value}\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def address(self) -> str:
        host, port = self.http.server_address[:2]
        return f"{host!s}:{port}"


@pytest.fixture
def counter_target() -> Iterator[CounterTarget]:
    target = CounterTarget(random.randrange(1, 10**6))
    thread = threading.Thread(target=target.http.serve_forever, daemon=True)
    thread.start()
    try:
        yield target
    finally:
        target.http.shutdown()
        target.http.server_close()
        thread.join(timeout=5)


def test_prometheus_scrapes_a_counter_and_answers_promql(
    counter_target: CounterTarget, tmp_path: Path
) -> None:
    query = 'peer_test_events_total{kind="x"}'
    with Prometheus([counter_target.address], tmp_path / "prom") as prom:
        first = counter_target.value
        assert prom.wait_for_value(query, lambda v: v is not None) == first
        counter_target.value += random.randrange(1, 1000)
        assert prom.wait_for_value(query, lambda v: v != first) == counter_target.value
        # A rate over the scrapes is positive: the samples are a real series over time.
        rate = prom.wait_for_value(f"increase({query}[1m])", lambda v: v is not None and v > 0)
        health = prom.targets_health()
    assert rate is not None and rate > 0
    assert counter_target.scrapes >= 2
    assert [t["health"] for t in health] == ["up"]
    assert health[0]["scrapeUrl"] == f"http://{counter_target.address}/metrics"
