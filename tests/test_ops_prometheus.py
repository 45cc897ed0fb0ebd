"""``/metrics`` of the real server as Debian's ``prometheus`` sees it: it scrapes the server
every second while the server runs loopback checks of every kind (tests/live_server.py);
PromQL through Prometheus's HTTP API gives the healthy and unhealthy checks by type, and
after targets flip, the transition counter and the per-check series
(``-metrics_per_check``) move."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from tests.live_server import Fleet, running_fleet
from tests.peers.prometheus import Prometheus, PrometheusError

CHECKS = "sum by (type, state) (seesaw_healthcheck_checks)"
DOWN = 'seesaw_healthcheck_check_transitions_total{from="healthy",to="unhealthy",type="tcp"}'
UP = 'seesaw_healthcheck_check_transitions_total{from="unhealthy",to="healthy",type="tcp"}'


def by_type_and_state(prom: Prometheus) -> dict[tuple[str, str], int]:
    """(type, state) -> checks, as Prometheus last scraped them (zero series left out)."""
    out = {}
    for sample in prom.query(CHECKS):
        value = int(float(sample["value"][1]))
        if value:
            out[sample["metric"]["type"], sample["metric"]["state"]] = value
    return out


def wait_for_counts(prom: Prometheus, fleet: Fleet, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := by_type_and_state(prom)) != fleet.counts():
        if time.monotonic() > deadline:
            raise PrometheusError(f"{CHECKS}: {got}, want {fleet.counts()}")
        time.sleep(0.2)


@pytest.mark.slow
def test_prometheus_scrapes_checks_by_type_and_state_and_transitions(short_tmp: Path) -> None:
    rng = random.Random()
    with (
        running_fleet(short_tmp, "-metrics_per_check") as (fleet, server),
        Prometheus([f"127.0.0.1:{server.port}"], short_tmp / "prom") as prom,
    ):
        wait_for_counts(prom, fleet)
        assert by_type_and_state(prom)[("tcp", "healthy")] == 3  # a non-empty comparison
        on = [i for i in fleet.toggles if fleet.is_on(i)]
        off = [i for i in fleet.toggles if not fleet.is_on(i)]
        # No TCP check has gone from Healthy to Unhealthy yet: no such series at all.
        assert prom.value(DOWN) is None
        ups = prom.value(UP) or 0.0

        going_down = rng.sample(on, rng.randint(1, len(on)))
        going_up = rng.sample(off, 1)
        for check_id in [*going_down, *going_up]:
            fleet.flip(check_id)
        assert prom.wait_for_value(DOWN, lambda v: v is not None and v >= len(going_down)) == len(
            going_down
        )
        assert prom.wait_for_value(UP, lambda v: v is not None and v > ups) == ups + 1
        wait_for_counts(prom, fleet)

        # One series per check with -metrics_per_check, 1 for Healthy, labelled by target.
        expected = fleet.expected()
        assert prom.value("count(seesaw_healthcheck_check_up)") == len(fleet.ids)
        assert prom.value("sum(seesaw_healthcheck_check_up)") == list(expected.values()).count(
            "healthy"
        )
        for check_id in [*going_down, *going_up]:
            config = next(c for c in fleet.configs if c["id"] == check_id)
            labels = f'id="{check_id}",type="tcp",ip="127.0.0.1",port="{config["port"]}"'
            value = prom.value(f'seesaw_healthcheck_check_up{{{labels},mode="plain"}}')
            assert value == (1.0 if expected[check_id] == "healthy" else 0.0), check_id

        # The rest of the families are there and make sense.
        assert (prom.value('seesaw_healthcheck_engine_fetches_total{result="success"}') or 0) > 0
        assert prom.value('seesaw_healthcheck_engine_fetches_total{result="error"}') == 0
        assert (prom.value("seesaw_healthcheck_engine_notifications_sent_total") or 0) >= len(
            fleet.ids
        )
        last_fetch = prom.value("seesaw_healthcheck_engine_last_fetch_success_timestamp_seconds")
        assert last_fetch is not None and abs(last_fetch - time.time()) < 30
        results = 'sum(seesaw_healthcheck_check_results_total{type="dns",result="failure"})'
        assert (prom.value(results) or 0) > 0
        late = "seesaw_healthcheck_check_lateness_seconds_count"
        assert (prom.value(late) or 0) > 0
        took = 'seesaw_healthcheck_check_duration_seconds_count{type="http"}'
        assert (prom.value(took) or 0) > 0
        assert prom.value('seesaw_healthcheck_worker_up{worker="0"}') == 1
        assert (prom.value("process_resident_memory_bytes") or 0) > 0
        health = prom.targets_health()
    assert [t["health"] for t in health] == ["up"], health
    assert health[0]["scrapeUrl"] == f"{server.url}/metrics"
