"""``/metrics``: Prometheus text exposition, from ``prometheus-client``.

One custom collector reads the check table, the workers' shared counters, the updater and
the notifier at scrape time: no metric object per check, and nothing on the check path.
Per-check series (``check_up{id,type,ip,port,mode}``) only with ``-metrics_per_check``:
50,000 checks would otherwise make 50,000 series. The process metrics are the control
process's (the client's own collector).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from seesaw_healthcheck.channel import CHECKER_KINDS, DURATION_BOUNDS, LATENESS_BOUNDS
from seesaw_healthcheck.control.status import MODE_NAMES, STATE_NAMES, address_text
from seesaw_healthcheck.control.updater import FETCH_DURATION_BOUNDS
from seesaw_healthcheck.model import State

if TYPE_CHECKING:
    from seesaw_healthcheck.control.app import Control

__all__ = ["CONTENT_TYPE", "LATENESS_BUCKETS", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "seesaw_healthcheck_"
# The lateness histogram's buckets as exported (the workers keep a finer one).
LATENESS_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                    1.0, 2.5, 5.0, 10.0)  # fmt: skip


def _cumulative(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    """(le, cumulative count) pairs, +Inf last, for counts per bucket (the last: over)."""
    running = list(itertools.accumulate(counts))
    pairs = [(_le(bound), float(running[k])) for k, bound in enumerate(bounds)]
    pairs.append(("+Inf", float(running[-1])))
    return pairs


def _le(bound: float) -> str:
    return repr(float(bound))


def _coarse(
    fine_bounds: tuple[float, ...], fine: list[int], bounds: tuple[float, ...]
) -> list[int]:
    """A histogram's counts re-bucketed to ``bounds``: each fine bucket goes to the first
    coarse bucket whose bound is at least its own (so no count lands below its value)."""
    out = [0] * (len(bounds) + 1)
    k = 0
    for upper, count in zip((*fine_bounds, float("inf")), fine, strict=True):
        while k < len(bounds) and bounds[k] < upper:
            k += 1
        out[k] += count
    return out


class _Collector:
    def __init__(self, control: Control, per_check: bool) -> None:
        self.control = control
        self.per_check = per_check

    def describe(self) -> list[Metric]:
        return []  # described by collect() at scrape time (registry auto_describe off)

    def collect(self) -> Iterator[Metric]:
        control = self.control
        table = control.table
        checks = GaugeMetricFamily(
            PREFIX + "checks", "Checks by state and type.", labels=["state", "type"]
        )
        counts = table.counts
        for kind in (*CHECKER_KINDS, "unknown"):
            for state, name in STATE_NAMES.items():
                value = counts.get((kind, state), 0)
                if value or kind != "unknown":
                    checks.add_metric([name, kind], value)
        yield checks

        headers = control.worker_headers()
        results = CounterMetricFamily(
            PREFIX + "check_results", "Check results by type and result.", labels=["type", "result"]
        )
        durations = HistogramMetricFamily(
            PREFIX + "check_duration_seconds", "How long checks took, by type.", labels=["type"]
        )
        per_kind = len(DURATION_BOUNDS) + 1
        for k, kind in enumerate(CHECKER_KINDS):
            results.add_metric([kind, "success"], sum(h.results[2 * k] for h in headers))
            results.add_metric([kind, "failure"], sum(h.results[2 * k + 1] for h in headers))
            buckets = [sum(h.durations[per_kind * k + b] for h in headers) for b in range(per_kind)]
            durations.add_metric(
                [kind],
                _cumulative(DURATION_BOUNDS, buckets),
                sum(h.duration_sums[k] for h in headers),
            )
        yield results
        yield durations

        fine = [sum(column) for column in zip(*(h.lateness for h in headers), strict=True)]
        lateness = HistogramMetricFamily(
            PREFIX + "check_lateness_seconds",
            "How late checks started against their schedule.",
        )
        lateness.add_metric(
            [],
            _cumulative(LATENESS_BUCKETS, _coarse(LATENESS_BOUNDS, fine, LATENESS_BUCKETS)),
            sum(h.lateness_sum for h in headers),
        )
        yield lateness

        transitions = CounterMetricFamily(
            PREFIX + "check_transitions", "State changes by type.", labels=["type", "from", "to"]
        )
        for (kind, before, after), value in sorted(table.transitions.items()):
            transitions.add_metric(
                [kind, STATE_NAMES[State(before)], STATE_NAMES[State(after)]], value
            )
        yield transitions

        updater = control.updater
        if updater is not None:  # checks fetched (engine) or read (file); not for gRPC
            fetches = CounterMetricFamily(
                PREFIX + "engine_fetches", "SeesawEngine.Healthchecks calls.", labels=["result"]
            )
            fetches.add_metric(["success"], updater.fetches)
            fetches.add_metric(["error"], updater.failures)
            yield fetches
            fetch_time = HistogramMetricFamily(
                PREFIX + "engine_fetch_duration_seconds",
                "SeesawEngine.Healthchecks calls: request to decoded reply.",
            )
            fetch_time.add_metric(
                [],
                _cumulative(FETCH_DURATION_BOUNDS, updater.duration_counts),
                updater.duration_sum,
            )
            yield fetch_time
            yield GaugeMetricFamily(
                PREFIX + "engine_last_fetch_success_timestamp_seconds",
                "When a fetch last succeeded (Unix time; 0: never).",
                value=updater.last_success_wall,
            )
        notifier = control.notifier
        yield CounterMetricFamily(
            PREFIX + "engine_notifications_sent",
            "Notifications the engine took (SeesawEngine.HealthState).",
            value=notifier.notifications_sent,
        )
        yield CounterMetricFamily(
            PREFIX + "engine_notify_errors",
            "SeesawEngine.HealthState calls that failed.",
            value=notifier.send_failures,
        )
        yield GaugeMetricFamily(
            PREFIX + "engine_notifications_pending",
            "Notifications waiting to be sent (newest Status per check).",
            value=len(notifier.queue),
        )
        workers_up = GaugeMetricFamily(
            PREFIX + "worker_up", "Whether a check worker is running.", labels=["worker"]
        )
        starts = CounterMetricFamily(
            PREFIX + "worker_starts", "Times a check worker was started.", labels=["worker"]
        )
        for worker in control.workers:
            workers_up.add_metric([str(worker.index)], 1.0 if worker.alive else 0.0)
            starts.add_metric([str(worker.index)], worker.starts)
        yield workers_up
        yield starts

        if self.per_check:
            up = GaugeMetricFamily(
                PREFIX + "check_up",
                "1 when the check is Healthy, 0 when Unhealthy or Unknown.",
                labels=["id", "type", "ip", "port", "mode"],
            )
            for entry in table:
                target = getattr(entry.config.checker, "target", None)
                ip = port = mode = ""
                if target is not None:
                    ip = address_text(target.ip) or ""
                    port = str(target.port)
                    mode = MODE_NAMES.get(target.mode, str(target.mode))
                up.add_metric(
                    [str(entry.id), entry.kind, ip, port, mode],
                    1.0 if entry.state == State.HEALTHY else 0.0,
                )
            yield up


class Metrics:
    """The registry ``/metrics`` renders."""

    def __init__(self, control: Control, per_check: bool = False) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ProcessCollector(registry=None))
        self.registry.register(_Collector(control, per_check))

    def render(self) -> bytes:
        return generate_latest(self.registry)
