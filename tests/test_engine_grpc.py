"""``seesaw-healthcheck-engine -grpc ADDR``: the emulator as a controller of the real
server's gRPC API (``-config_source grpc``), both as subprocesses: it pushes its TOML
checks with SetChecks (again on an edit, on SIGHUP and after the server restarted) and
records every streamed Status in the gob mode's JSON lines."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from tests.conftest import free_port
from tests.responders.tcp import TCPResponder
from tests.server_process import HealthcheckProcess, healthcheck_process, list_status, wait_until

from seesaw_healthcheck import model
from seesaw_healthcheck.cli.engine import Received, record_json
from seesaw_healthcheck.grpcapi import convert
from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb

ENGINE = [sys.executable, "-m", "seesaw_healthcheck.cli.engine"]


def check_toml(check_id: int, name: str, port: int, interval: str = "300ms") -> str:
    return (
        f'[[check]]\nid = {check_id}\nname = "{name}"\ntype = "tcp"\nip = "127.0.0.1"\n'
        f'port = {port}\ninterval = "{interval}"\ntimeout = "200ms"\n\n'
    )


class Controller:
    """``seesaw-healthcheck-engine -grpc ADDR -config FILE -record FILE`` as a subprocess."""

    def __init__(self, tmp: Path, addr: str, config: Path, *flags: str) -> None:
        self.log_path = tmp / "controller.log"
        self.record = tmp / "record.jsonl"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*ENGINE, "-grpc", addr, "-config", str(config), "-record", str(self.record),
             "-logtostderr", *flags],
            stdout=self._log, stderr=self._log,
        )  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line]

    def latest(self) -> dict[str, str]:
        """The state last recorded for each check, by name."""
        return {r["name"]: r["state"] for r in self.records()}

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def controller(short_tmp: Path) -> Iterator[Any]:
    """controller(addr, config, *flags) -> a running Controller, stopped after the test
    (its exit status must then be 0)."""
    started: list[Controller] = []

    def start(addr: str, config: Path, *flags: str) -> Controller:
        started.append(Controller(short_tmp, addr, config, *flags))
        return started[-1]

    yield start
    for c in started:
        log = c.log()
        assert c.stop() == 0, log
        assert "Traceback" not in log, log


def grpc_server(tmp: Path, sock: Path, name: str = "server") -> Any:
    flags = ["-config_source", "grpc", "-grpc_listen", f"unix:{sock}", "-batch_delay", "50ms"]
    return healthcheck_process(tmp, *flags, "-notify_interval", "2s", name=name)


def ids(server: HealthcheckProcess) -> set[int]:
    with server.channel() as channel:
        return set(list_status(channel))


def test_pushes_watches_records_and_follows_edits_sighup_and_restarts(
    short_tmp: Path, controller: Any
) -> None:
    sock = short_tmp / "grpc.sock"
    config = short_tmp / "checks.toml"
    with TCPResponder("127.0.0.1") as tcp:
        closed = free_port()
        config.write_text(
            check_toml(1, "web", tcp.port)
            + check_toml(2, "gone", closed)
            + check_toml(3, "zero", tcp.port, interval="0s")
        )
        # The controller first: it waits for the server.
        ctl = controller(f"unix:{sock}", config, "-allow_invalid")
        with grpc_server(short_tmp, sock) as server:
            wait_until(
                lambda: ctl.latest() == {"web": "Healthy", "gone": "Unhealthy"},
                15,
                "web Healthy and gone Unhealthy in the record",
            )
            assert ids(server) == {1, 2}
            # The server's reason for rejecting check 3 is logged.
            wait_until(
                lambda: "the server rejected check 3 (zero): interval 0s" in ctl.log(), 3, ""
            )

            # An edit: gone goes, web2 comes; pushed within the file poll (1 s).
            config.write_text(check_toml(1, "web", tcp.port) + check_toml(4, "web2", tcp.port))
            edited = time.monotonic()
            wait_until(lambda: ids(server) == {1, 4}, 5, "the edit pushed")
            assert time.monotonic() - edited < 2.5
            wait_until(lambda: ctl.latest().get("web2") == "Healthy", 5, "web2 in the record")

            # SIGHUP: read and pushed again (nothing changes for the server).
            pushes = ctl.log().count("pushed 2 checks to")
            ctl.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: ctl.log().count("pushed 2 checks to") > pushes, 5, "a push")
            assert ids(server) == {1, 4}

        # The server goes away and comes back empty: the controller pushes again.
        with grpc_server(short_tmp, sock, name="again") as server:
            wait_until(lambda: ids(server) == {1, 4}, 10, "the checks pushed to the new server")
            before = len(ctl.records())
            wait_until(
                lambda: {"web", "web2"} <= {r["name"] for r in ctl.records()[before:]},
                10,
                "statuses from the new server",
            )
    records = ctl.records()
    # The gob mode's JSON lines, field for field.
    sample = record_json(Received(1, "web", model.State.UNKNOWN, model.Status()))
    assert all(list(r) == list(sample) for r in records)
    web = [r for r in records if r["name"] == "web"]
    first_healthy = next(r for r in web if r["state"] == "Healthy")
    assert first_healthy["old_state"] == "Unknown"
    assert first_healthy["message"] == f"TCP connect to 127.0.0.1:{tcp.port}"
    assert first_healthy["last_check"].endswith("Z") and first_healthy["last_check"][:4] >= "2024"
    assert first_healthy["successes"] >= 1 and first_healthy["failures"] == 0
    gone = [r["state"] for r in records if r["id"] == 2]
    assert "Unhealthy" in gone and set(gone) <= {"Unknown", "Unhealthy"}
    assert not [r for r in records if r["id"] == 3]  # rejected: never run, never streamed
    log = ctl.log()
    assert "WatchStatus on unix:" in log and "watching" in log  # the restart was noticed


def test_a_server_that_takes_no_checks_is_reported_once(short_tmp: Path, controller: Any) -> None:
    sock = short_tmp / "grpc.sock"
    config = short_tmp / "checks.toml"
    config.write_text(check_toml(1, "web", free_port()))
    flags = ["-config_source", "engine", "-engine", str(short_tmp / "none.sock"),
             "-grpc_listen", f"unix:{sock}"]  # fmt: skip
    with healthcheck_process(short_tmp, *flags) as server:
        server.channel().close()
        ctl = controller(f"unix:{sock}", config)
        why = "SetChecks to unix:{} failed (FAILED_PRECONDITION: checks come from engine"
        wait_until(lambda: why.format(sock) in ctl.log(), 10, "the refusal logged")
        time.sleep(2.5)  # tried again meanwhile, every second
        assert ctl.log().count(why.format(sock)) == 1
        assert ctl.proc.poll() is None


@pytest.mark.parametrize(
    ("addr", "message"),
    [
        ("unix:", "-grpc unix: needs a socket path"),
        ("127.0.0.1", "is not unix:PATH or HOST:PORT"),
        ("localhost:http", "is not unix:PATH or HOST:PORT"),
        ("127.0.0.1:70000", "is not unix:PATH or HOST:PORT"),
    ],
)
def test_a_bad_address_is_a_usage_error(short_tmp: Path, addr: str, message: str) -> None:
    config = short_tmp / "checks.toml"
    config.write_text(check_toml(1, "web", 1))
    proc = subprocess.run(
        [*ENGINE, "-grpc", addr, "-config", str(config)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr


def test_a_bad_file_at_start_is_fatal(short_tmp: Path) -> None:
    config = short_tmp / "checks.toml"
    config.write_text("[[check]\n")
    proc = subprocess.run(
        [*ENGINE, "-grpc", f"unix:{short_tmp}/g.sock", "-config", str(config), "-logtostderr"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "not valid TOML" in proc.stderr


def test_a_streamed_status_is_recorded_as_the_gob_mode_records_a_notification() -> None:
    """The record of a Status from the stream: the API's times are UTC (ending in Z, as Go
    writes a time.UTC), durations in Go's form, a never-run check at Go's zero time."""
    seconds, nanos = 1_796_287_649, 23_763_371
    ran = pb.Status(id=7, state=pb.STATE_UNHEALTHY, message="dial tcp4: refused",
                    failures=3, successes=2, duration=duration_pb2.Duration(nanos=255_207),
                    last_check=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos))  # fmt: skip
    check_id, status = convert.status_from_proto(ran)
    record = record_json(Received(check_id, "web", model.State.HEALTHY, status))
    when = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert {k: v for k, v in record.items() if k != "received"} == {
        "id": 7,
        "name": "web",
        "old_state": "Healthy",
        "state": "Unhealthy",
        "message": "dial tcp4: refused",
        "failures": 3,
        "successes": 2,
        "duration": "255.207\u00b5s",
        "last_check": f"{when}.{nanos:09d}Z",
    }
    _, never = convert.status_from_proto(pb.Status(id=8))
    assert record_json(Received(8, "x", 0, never))["last_check"] == (
        "0001-01-01T00:00:00.000000000Z"
    )
