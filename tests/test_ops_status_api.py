"""``/status`` of the real server (control process and check worker, against the Go engine
stand-in, loopback targets of every kind; tests/live_server.py): at every sampled moment
while targets flip it agrees with what the engine received, once the batch has gone out;
its filters; ``/status/<id>``; bad query strings and ids get a 400 with the reason, unknown
ids a 404."""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tests.live_server import (
    Fleet,
    LiveServer,
    running_fleet,
    states_of,
    status_view,
    wait_until,
)

STABLE_KEYS = ("id", "type", "description", "target", "interval", "timeout", "retries",
               "state", "since", "message", "problem")  # fmt: skip
CHECK_KEYS = {*STABLE_KEYS, "last_check", "duration", "failures", "successes",
              "consecutive_failures"}  # fmt: skip


def parse_time(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text[:-1] + "+00:00")


def agreement(fleet: Fleet, server: LiveServer) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The engine's records and /status, read in that order, once both agree with each
    other and with the toggles (the notifications of a flip take a batch delay to go out)."""
    sample: list[Any] = []

    def agree() -> bool:
        records = server.records()
        engine = server.engine_view()
        document = server.status()
        sample[:] = [records, document]
        view = status_view(document)
        return view == engine and states_of(view) == fleet.expected()

    try:
        wait_until(agree, 5, "/status and the engine to agree")
    except AssertionError:
        document = sample[1]
        view, engine = status_view(document), server.engine_view()
        diff = {i: (view.get(i), engine.get(i)) for i in fleet.ids if view.get(i) != engine.get(i)}
        raise AssertionError(f"/status vs engine: {diff}; expected {fleet.expected()}") from None
    return sample[0], sample[1]


@pytest.mark.slow
def test_status_agrees_with_the_engine_while_targets_flip(short_tmp: Path) -> None:
    rng = random.Random()
    with running_fleet(short_tmp) as (fleet, server):
        toggled = list(fleet.toggles)
        for _ in range(6):
            flipped = rng.sample(toggled, rng.randint(1, len(toggled)))
            flipped_at = time.time()
            for check_id in flipped:
                fleet.flip(check_id)
            records, document = agreement(fleet, server)

            checks = {c["id"]: c for c in document["checks"]}
            assert list(checks) == sorted(fleet.ids)  # every check, in id order
            by_engine: dict[int, dict[str, Any]] = {r["id"]: r for r in records}
            for check_id, check in checks.items():
                assert set(check) == CHECK_KEYS
                # The records were read first: the counters only grew since.
                engine = by_engine[check_id]
                assert check["failures"] >= engine["failures"], (check, engine)
                assert check["successes"] >= engine["successes"], (check, engine)
            for check_id in flipped:
                # The transition happened after the flip, and /status says when.
                since = parse_time(checks[check_id]["since"]).timestamp()
                assert since >= flipped_at - 0.001, (checks[check_id], flipped_at)
                state = checks[check_id]["state"]
                consecutive = checks[check_id]["consecutive_failures"]
                assert (consecutive > 0) == (state == "unhealthy"), checks[check_id]
            totals = document["totals"]
            counts = fleet.counts()
            for state in ("healthy", "unhealthy", "unknown"):
                assert totals[state] == sum(n for (_, s), n in counts.items() if s == state)
            for (kind, state), n in counts.items():
                assert totals["by_type"][kind][state] == n, (kind, state, totals)


def test_status_fields_filters_and_single_checks(short_tmp: Path) -> None:
    with running_fleet(short_tmp) as (fleet, server):
        _, document = agreement(fleet, server)
        expected = fleet.expected()
        configs = {c["id"]: c for c in fleet.configs}
        for check in document["checks"]:
            config = configs[check["id"]]
            assert check["type"] == fleet.kinds[check["id"]]
            assert check["interval"] == 0.2
            assert check["timeout"] == 0.3 and check["retries"] == 0
            if check["type"] == "unknown":
                assert check["target"] is None and check["problem"] == "no checker (nil)"
                assert check["description"].startswith("not running: ")
                assert check["last_check"] is None and check["successes"] == 0
                continue
            assert check["problem"] is None
            target = check["target"]
            assert (target["ip"], target["port"]) == (config["ip"], config["port"])
            assert target["proto"] == ("tcp" if config["type"] in ("tcp", "http") else "udp")
            assert (target["mode"], target["mark"], target["host"]) == ("plain", 0, None)
            assert parse_time(check["last_check"]) <= parse_time(document["generated"])
            assert check["duration"] > 0
        server_info = document["server"]
        assert server_info["pid"] == server.pid
        assert server_info["fetch_interval"] == 0.5 and server_info["workers"] == 1
        assert server_info["last_fetch"] is not None and server_info["last_fetch_error"] is None

        def ids(query: str) -> list[int]:
            doc = server.status(query)
            listed = [c["id"] for c in doc["checks"]]
            assert doc["totals"]["checks"] == len(listed)
            for state in ("healthy", "unhealthy", "unknown"):
                assert doc["totals"][state] == [c["state"] for c in doc["checks"]].count(state)
            return listed

        def where(keep: Any) -> list[int]:
            return sorted(i for i in fleet.ids if keep(i))

        v6 = [c["id"] for c in fleet.configs if c.get("ip") == "::1"]
        assert len(v6) == 1
        for state in ("healthy", "unhealthy", "unknown"):
            assert ids(f"?state={state}") == where(lambda i, s=state: expected[i] == s)
        for kind in ("tcp", "http", "udp", "dns", "unknown"):
            assert ids(f"?type={kind}") == where(lambda i, k=kind: fleet.kinds[i] == k)
        assert ids("?type=ping") == []
        assert ids("?ip=::1") == ids("?ip=0:0:0:0:0:0:0:1") == v6
        assert ids("?ip=127.0.0.1") == where(lambda i: configs[i].get("ip") == "127.0.0.1")
        assert ids("?ip=127.0.0.2") == []
        assert ids("?state=healthy&type=tcp") == where(
            lambda i: expected[i] == "healthy" and fleet.kinds[i] == "tcp"
        )
        assert ids("?type=dns&type=udp") == where(lambda i: fleet.kinds[i] in ("dns", "udp"))
        assert ids("?state=unhealthy&ip=127.0.0.1&type=http") == where(
            lambda i: expected[i] == "unhealthy" and fleet.kinds[i] == "http"
        )

        listed = {c["id"]: c for c in server.status()["checks"]}
        for check_id in fleet.ids:
            code, kind, body = server.get(f"/status/{check_id}")
            assert (code, kind) == (200, "application/json"), body
            one = json.loads(body)
            assert set(one) == CHECK_KEYS
            assert {k: one[k] for k in STABLE_KEYS} == {k: listed[check_id][k] for k in STABLE_KEYS}


BAD_REQUESTS = [
    ("/status?state=sideways", "state must be one of"),
    ("/status?state=", "state must be one of"),
    ("/status?type=smtp", "type must be one of"),
    ("/status?ip=300.1.2.3", "ip must be an IP address"),
    ("/status?ip=127.0.0.1/8", "ip must be an IP address"),
    ("/status?colour=red", "unknown parameter 'colour'"),
    ("/status?state", "malformed query string"),
    ("/status?state=healthy&&type=tcp", "malformed query string"),
    ("/status/abc", "a check id is a number"),
    ("/status/-1", "a check id is a number"),
    ("/status/+1", "a check id is a number"),
    ("/status/1_0", "a check id is a number"),
    ("/status/%201", "a check id is a number"),
    ("/status/1e3", "a check id is a number"),
    (f"/status/{1 << 64}", "a check id is a number"),
    ("/status/" + "9" * 5000, "a check id is a number"),
]


def test_bad_queries_and_ids_get_400_with_the_reason_unknown_ids_404(short_tmp: Path) -> None:
    with Fleet() as fleet, LiveServer(short_tmp, fleet.configs) as server:
        for path, reason in BAD_REQUESTS:
            code, kind, body = server.get(path)
            assert (code, kind) == (400, "application/json"), (path, code, body[:200])
            assert reason in json.loads(body)["error"], (path, body[:200])
        unknown = max(fleet.ids) + 1
        for path in (f"/status/{unknown}", f"/status/{(1 << 64) - 1}", "/status/0", "/nothing"):
            code, _, body = server.get(path)
            assert code == 404, (path, code, body)
            assert json.loads(body)["error"]
        # Only GET and HEAD.
        request = urllib.request.Request(server.url + "/status", data=b"{}", method="POST")
        try:
            urllib.request.urlopen(request, timeout=10)
            raise AssertionError("POST /status was served")
        except urllib.error.HTTPError as error:
            assert error.code == 405 and error.headers["Allow"] == "GET, HEAD"
        # The server is none the worse.
        assert server.get("/healthz")[0] == 200
        assert "Traceback" not in server.log()
