"""The operator's HTTP endpoints, served by the control process (``-http_addr``):

- ``/``: the status page (``web/``), ``/status`` and ``/status/<id>``: every check as JSON;
- ``/metrics``: Prometheus;
- ``/healthz``: 200 while every worker's loop turns (its heartbeat is under 1 s old), else
  503 with the reason; ``/readyz``: 200 once the first fetch is applied and the engine
  answered within the last 3 fetch intervals, else 503 with the reason.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from seesaw_healthcheck import __version__
from seesaw_healthcheck.control import webfiles
from seesaw_healthcheck.control.http import HttpError, Request, Response
from seesaw_healthcheck.control.metrics import CONTENT_TYPE, Metrics
from seesaw_healthcheck.control.status import Filters, ServerInfo, StatusRenderer, check_json

if TYPE_CHECKING:
    from seesaw_healthcheck.control.app import Control

__all__ = ["Endpoints"]

_JSON = "application/json"


class Endpoints:
    """The HTTP handler: ``Endpoints(control)(request) -> Response``."""

    def __init__(self, control: Control) -> None:
        self.control = control
        self.metrics = Metrics(control, control.config.metrics_per_check)
        self.renderer = StatusRenderer(control.table)

    def __call__(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == "/metrics":
            return Response(200, self.metrics.render(), CONTENT_TYPE)
        if path == "/status":
            filters = Filters.parse(request.query)
            return Response(200, self.renderer.render(self.server_info(), filters), _JSON)
        if path.startswith("/status/"):
            return self._one(path.removeprefix("/status/"))
        if path in ("/healthz", "/readyz"):
            ok, reason = self.control.liveness() if path == "/healthz" else self.control.readiness()
            return Response(200 if ok else 503, (reason + "\n").encode())
        found = webfiles.lookup(path)
        if found is not None:
            return Response(200, found.body, found.content_type, webfiles.HEADERS)
        raise HttpError(404, f"nothing at {request.path}")

    def _one(self, text: str) -> Response:
        # Digits only: int() would also take " 12", "+12", "1_2" and "-1" (and refuse more
        # than 4,300 digits with a ValueError).
        if not (len(text) <= 20 and text.isascii() and text.isdigit()) or int(text) >= 1 << 64:
            raise HttpError(400, f"a check id is a number from 0 to 2^64-1: {text!r}")
        check_id = int(text)
        entry = self.control.table.get(check_id)
        if entry is None:
            raise HttpError(404, f"no check {check_id}")
        return Response(200, json.dumps(check_json(entry)).encode() + b"\n", _JSON)

    def server_info(self) -> ServerInfo:
        control = self.control
        return ServerInfo(
            version=__version__,
            pid=os.getpid(),
            started=control.started_ns,
            config_source=control.config.config_source,
            workers=len(control.workers),
            fetch_interval=control.fetch_interval_s,
            notify_interval=control.config.notify_interval / 1e9,
            last_fetch=int(control.last_applied_wall * 1e9),
            last_fetch_error=control.updater.last_error if control.updater else None,
            last_notification=int(control.notifier.last_sent_wall * 1e9),
            pending_notifications=len(control.notifier.queue),
        )
