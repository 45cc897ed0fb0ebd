"""The operator's endpoints of a control process in virtual time (tests/inprocess.py):
/status (and the incremental renderer against the plain one), /metrics parsed by
prometheus-client's own parser, /healthz and /readyz, and the request parser."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.inprocess import SECOND, FakeEngine, ScriptedChecks, control_in_virtual_time, run_for
from tests.inprocess import tcp_config as tcp

from seesaw_healthcheck.control.endpoints import Endpoints
from seesaw_healthcheck.control.http import HttpError, Request, parse_request
from seesaw_healthcheck.control.status import Filters, document
from seesaw_healthcheck.model import Config, Mode, Target, UDPChecker, ip_to_bytes


def get(endpoints: Endpoints, target: str) -> tuple[int, bytes]:
    head = f"GET {target} HTTP/1.1\r\nHost: x".encode()
    try:
        response = endpoints(parse_request(head))
    except HttpError as err:
        return err.status, str(err).encode()
    return response.status, response.body


@pytest.fixture
def running() -> Any:
    engine = FakeEngine()
    checks = ScriptedChecks(up={9002: False})
    dsr = UDPChecker(
        Target(ip=ip_to_bytes("::1"), host=ip_to_bytes("127.0.0.2"), port=53, proto=17,
               mode=Mode.DSR, mark=7),
        send="x", receive="y",
    )  # fmt: skip
    engine.configs = {
        **{i: tcp(i, 9001 if i % 3 else 9002) for i in range(1, 31)},
        31: Config(31, SECOND, 0, 0, dsr),
        32: Config(32, 0, 0, 0, None),
    }
    control, _clock, _ = control_in_virtual_time(
        engine, checks, workers=2, fetch_interval=SECOND, notify_interval=3600 * SECOND
    )
    run_for(control, 3.0)
    try:
        yield control, Endpoints(control), checks, engine
    finally:
        control.close()


def test_status_lists_every_check_as_the_contract_says(running: Any) -> None:
    _control, endpoints, _, _ = running
    status, body = get(endpoints, "/status")
    assert status == 200
    doc = json.loads(body)
    assert [c["id"] for c in doc["checks"]] == list(range(1, 33))
    assert doc["totals"] == {
        "checks": 32, "healthy": 21, "unhealthy": 10, "unknown": 1,
        "by_type": {"tcp": {"healthy": 20, "unhealthy": 10, "unknown": 0},
                    "udp": {"healthy": 1, "unhealthy": 0, "unknown": 0},
                    "unknown": {"healthy": 0, "unhealthy": 0, "unknown": 1}},
    }  # fmt: skip
    first = doc["checks"][0]
    assert first["state"] == "healthy" and first["type"] == "tcp"
    assert first["target"] == {"ip": "127.0.0.1", "host": None, "port": 9001, "proto": "tcp",
                               "mode": "plain", "mark": 0}  # fmt: skip
    assert first["interval"] == 1.0 and first["timeout"] == 0.5 and first["retries"] == 0
    assert first["last_check"].endswith("Z") and first["since"].endswith("Z")
    assert first["successes"] >= 2 and first["failures"] == 0
    assert first["message"] == "TCP connect to 127.0.0.1:9001"
    third = doc["checks"][2]
    assert third["state"] == "unhealthy" and third["consecutive_failures"] >= 2
    udp = doc["checks"][30]
    assert udp["target"] == {"ip": "::1", "host": "127.0.0.2", "port": 53, "proto": "udp",
                             "mode": "dsr", "mark": 7}  # fmt: skip
    bad = doc["checks"][31]
    assert bad["state"] == "unknown" and "no checker" in bad["problem"]
    assert bad["last_check"] is None and bad["since"] is None
    assert doc["server"]["workers"] == 2 and doc["server"]["last_fetch"]


def test_the_incremental_status_is_the_plain_one_byte_for_byte(running: Any) -> None:
    control, endpoints, checks, engine = running
    renderer = endpoints.renderer

    def same(filters: Filters) -> None:
        info = endpoints.server_info()
        fast = renderer.render(info, filters)
        plain = document(control.table, info, filters)
        generated = re.compile(rb'^\{"generated":"[^"]*"')
        assert generated.sub(b"", fast) == generated.sub(b"", plain)

    same(Filters())
    run_for(control, 1.5)  # every check ran again: only their numbers changed
    same(Filters())
    checks.up[9001] = False  # twenty checks change state and message
    run_for(control, 2.0)
    same(Filters())
    same(Filters.parse({"state": ["unhealthy"], "type": ["tcp"]}))
    same(Filters.parse({"ip": ["127.0.0.2"]}))
    same(Filters.parse({"ip": ["10.9.9.9"]}))  # none listed
    # A changed config, a config that cannot run, one gone, one new
    engine.configs[4] = tcp(4, 9001, retries=3)
    engine.configs[5] = Config(5, SECOND, 0, 0, None)
    del engine.configs[7]
    engine.configs[40] = tcp(40, 9002)
    run_for(control, 2.0)
    same(Filters())
    doc = json.loads(renderer.render(endpoints.server_info(), Filters()))
    by_id = {c["id"]: c for c in doc["checks"]}
    assert by_id[4]["retries"] == 3 and "no checker" in by_id[5]["problem"]
    assert 7 not in by_id and by_id[40]["state"] == "unhealthy"
    engine.configs[5] = tcp(5, 9002)  # runnable again
    run_for(control, 2.0)
    same(Filters())
    assert json.loads(get(endpoints, "/status/5")[1])["problem"] is None
    checks.took_s[9002] = 1.0  # still down, another reason: a new message, no transition
    run_for(control, 2.0)
    same(Filters())
    assert "timeout" in json.loads(get(endpoints, "/status/3")[1])["message"]


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("state=unhealthy", [i for i in range(1, 31) if i % 3 == 0]),
        ("state=unknown", [32]),
        ("type=udp", [31]),
        ("ip=127.0.0.2", [31]),  # a DSR check matches its host too
        ("ip=::1&type=tcp", []),
        ("state=healthy&state=unknown&type=udp", [31]),
    ],
)
def test_status_filters(running: Any, query: str, ids: list[int]) -> None:
    _, endpoints, _, _ = running
    status, body = get(endpoints, "/status?" + query)
    assert status == 200
    assert [c["id"] for c in json.loads(body)["checks"]] == ids


@pytest.mark.parametrize(
    ("target", "status", "words"),
    [
        ("/status?state=sick", 400, "state must be one of"),
        ("/status?type=smtp", 400, "type must be one of"),
        ("/status?ip=300.1.1.1", 400, "ip must be an IP address"),
        ("/status?colour=red", 400, "unknown parameter"),
        ("/status/abc", 400, "a check id is a number"),
        ("/status/99", 404, "no check 99"),
        ("/nothing", 404, "nothing at /nothing"),
    ],
)
def test_bad_requests_say_why(running: Any, target: str, status: int, words: str) -> None:
    _, endpoints, _, _ = running
    got, body = get(endpoints, target)
    assert got == status and words in body.decode()


def test_one_check(running: Any) -> None:
    _, endpoints, _, _ = running
    status, body = get(endpoints, "/status/3")
    assert status == 200 and json.loads(body)["state"] == "unhealthy"


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_metrics_count_checks_results_transitions_and_engine_calls(running: Any) -> None:
    control, endpoints, checks, _ = running
    status, body = get(endpoints, "/metrics")
    assert status == 200
    got = samples(body)
    prefix = "seesaw_healthcheck_"
    assert got[prefix + "checks", (("state", "healthy"), ("type", "tcp"))] == 20
    assert got[prefix + "checks", (("state", "unhealthy"), ("type", "tcp"))] == 10
    assert got[prefix + "check_results_total", (("result", "failure"), ("type", "tcp"))] >= 10
    assert got[prefix + "engine_fetches_total", (("result", "success"),)] >= 3
    assert got[prefix + "engine_notifications_sent_total", ()] == 31
    assert got[prefix + "engine_notifications_pending", ()] == 0
    assert got[prefix + "check_lateness_seconds_count", ()] > 0
    assert got[prefix + "check_duration_seconds_count", (("type", "tcp"),)] > 0
    assert got[prefix + "worker_up", (("worker", "0"),)] == 1
    key = (
        prefix + "check_transitions_total",
        (("from", "healthy"), ("to", "unhealthy"), ("type", "tcp")),
    )
    assert key not in got  # none yet
    checks.up[9001] = False
    run_for(control, 2.0)
    assert samples(get(endpoints, "/metrics")[1])[key] == 20
    assert not [name for name, _ in got if name.startswith(prefix + "check_up")]


def test_healthz_and_readyz(running: Any) -> None:
    control, endpoints, _, _ = running
    assert get(endpoints, "/healthz")[0] == 200
    assert get(endpoints, "/readyz")[0] == 200
    control.workers[1].kill()
    run_for(control, 0.01)  # the control loop sees the channel close
    status, _body = get(endpoints, "/readyz")
    assert status == 200  # still ready: the engine answers and the table is there


def test_readyz_before_the_first_fetch_and_after_the_engine_goes_quiet() -> None:
    engine = FakeEngine({1: tcp(1, 9101)})
    engine.down = True
    control, _clock, _ = control_in_virtual_time(engine, ScriptedChecks(), fetch_interval=SECOND)
    try:
        endpoints = Endpoints(control)
        run_for(control, 1.0)
        status, body = get(endpoints, "/readyz")
        assert status == 503 and b"first set of checks" in body
        engine.down = False
        run_for(control, 6.0)  # the updater retries after 5 s
        assert get(endpoints, "/readyz")[0] == 200
        engine.down = True
        run_for(control, 3.5)
        status, body = get(endpoints, "/readyz")
        assert status == 503 and b"not answered" in body
    finally:
        control.close()


def test_parse_request() -> None:
    request = parse_request(b"GET /status/12?state=healthy&ip=%3A%3A1 HTTP/1.1\r\nHost: a")
    assert request == Request(
        "GET", "/status/12", {"state": ["healthy"], "ip": ["::1"]}, {"host": "a"}
    )
    for bad in (b"GET /", b"GET / SPDY/3", b"GET x HTTP/1.1", b"GET / HTTP/1.1\r\nNo"):
        with pytest.raises(HttpError):
            parse_request(bad)


def test_an_engine_with_no_checks_makes_the_server_ready() -> None:
    """A Seesaw node with no vservers: its first (empty) set is applied, so it is ready."""
    control, _, _ = control_in_virtual_time(FakeEngine({}), ScriptedChecks())
    try:
        endpoints = Endpoints(control)
        run_for(control, 1.0)
        assert get(endpoints, "/readyz") == (200, b"ok: 0 checks\n")
        assert get(endpoints, "/healthz")[0] == 200
    finally:
        control.close()
