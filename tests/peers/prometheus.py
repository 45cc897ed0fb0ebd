"""Debian's ``prometheus`` server on loopback, scraping given targets, for tests of
``/metrics``: a free port, storage in a temporary directory, a generated configuration
(JSON, which is YAML) scraping every second, readiness awaited, queries through the HTTP
API (``/api/v1/query``), a clean stop. Every wait is bounded.

    with Prometheus(["127.0.0.1:10258"], tmp_path) as prom:
        prom.wait_for_value('sum(seesaw_healthcheck_checks{state="healthy"})', lambda v: v == 3)
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

PACKAGE = "prometheus"


class PrometheusError(RuntimeError):
    """Prometheus is missing, did not start, or a query failed or timed out."""


def binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        raise PrometheusError(
            "prometheus not found: install Debian's prometheus package "
            "(make test does: apt-get install prometheus)"
        )
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Prometheus:
    """A Prometheus server scraping ``targets`` (``host:port``) at ``metrics_path``."""

    def __init__(
        self,
        targets: Sequence[str],
        workdir: Path,
        *,
        metrics_path: str = "/metrics",
        scrape_interval: str = "1s",
        job: str = "target",
        start_timeout: float = 60.0,
    ) -> None:
        self.targets = list(targets)
        self.workdir = Path(workdir)
        self.metrics_path = metrics_path
        self.scrape_interval = scrape_interval
        self.job = job
        self.start_timeout = start_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Prometheus:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        exe = binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {
                        "scrape_interval": self.scrape_interval,
                        "scrape_timeout": self.scrape_interval,
                        "evaluation_interval": self.scrape_interval,
                    },
                    "scrape_configs": [
                        {
                            "job_name": self.job,
                            "metrics_path": self.metrics_path,
                            "static_configs": [{"targets": self.targets}],
                        }
                    ],
                },
                indent=2,
            )
        )
        self.port = _free_port()
        self._log = self.workdir / "prometheus.log"
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(
                [
                    exe,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                raise PrometheusError(
                    f"prometheus exited with {self._proc.returncode}: {self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() >= deadline:
                raise PrometheusError(
                    f"prometheus not ready within {self.start_timeout:g}s: {self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> None:
        proc = self._proc
        self._proc = None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)

    def log_tail(self) -> str:
        try:
            return self._log.read_bytes()[-2000:].decode(errors="replace")
        except (OSError, AttributeError):
            return ""

    # ---- HTTP API ---------------------------------------------------------------------

    def api(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The ``data`` of a successful API answer (PrometheusError otherwise)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise PrometheusError(
                f"{path} {params}: HTTP {exc.code}: {exc.read()[:500]!r}"
            ) from exc
        except OSError as exc:
            raise PrometheusError(f"{path} {params}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The samples of an instant query: ``[{"metric": {labels}, "value": [t, "v"]}]``."""
        data = self.api("query", {"query": promql})
        if data["resultType"] != "vector":
            raise PrometheusError(f"{promql}: a {data['resultType']}, not a vector")
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, promql: str) -> float | None:
        """The value of a query giving one sample, None when it gives none."""
        samples = self.query(promql)
        if not samples:
            return None
        if len(samples) > 1:
            raise PrometheusError(f"{promql}: {len(samples)} samples, want one: {samples}")
        return float(samples[0]["value"][1])

    def wait_for_value(
        self, promql: str, predicate: Callable[[float | None], bool], timeout: float = 20.0
    ) -> float | None:
        """Query until ``predicate(value)`` holds, at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.value(promql)
            if predicate(value):
                return value
            if time.monotonic() >= deadline:
                targets = self.targets_health()
                raise PrometheusError(f"{promql} is {value} after {timeout:g}s; targets: {targets}")
            time.sleep(0.2)

    def targets_health(self) -> list[dict[str, Any]]:
        """Each scraped target's health, last error and last scrape time."""
        active = self.api("targets")["activeTargets"]
        return [
            {k: t.get(k) for k in ("scrapeUrl", "health", "lastError", "lastScrape")}
            for t in active
        ]
