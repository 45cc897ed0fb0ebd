"""The Go client (tests/go_grpc, built from the same .proto with Debian's protoc and Go gRPC)
and our generated Python code agree on the API, on a Unix socket, on 127.0.0.1, and over
TLS with client certificates.

The server here is a STAND-IN written for this test, not the real servicer: it records
what SetChecks receives (and answers with grpcapi.convert's per-check errors), streams the
StatusBatch messages the test hands it, answers ListStatus from a table the test fills,
and serves the standard grpc.health.v1.Health and server reflection.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from google.protobuf import duration_pb2, timestamp_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from tests import gopeer, grpcclient

from seesaw_healthcheck import model
from seesaw_healthcheck.grpcapi import convert
from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb
from seesaw_healthcheck.grpcapi import healthcheck_pb2_grpc as pb_grpc

SERVICE = "seesaw.healthcheck.v1.Healthcheck"
HOLD_OPEN_LIMIT_S = 30.0  # a held-open watch ends by itself after this, whatever happens


@pytest.fixture(scope="module")
def client() -> Path:
    lacking = grpcclient.missing()
    if lacking and not grpcclient.BINARY.exists():
        pytest.skip(f"no {', '.join(lacking)}: {grpcclient.MAKE_HINT}")
    return grpcclient.build()


@dataclass
class StandIn(pb_grpc.HealthcheckServicer):
    """Test stand-in for the real servicer (see the module docstring)."""

    batches: list[pb.StatusBatch] = field(default_factory=list)
    hold_open: bool = False  # after the batches, keep the stream until the client leaves
    table: dict[int, tuple[model.Config | None, pb.Status]] = field(default_factory=dict)
    set_requests: list[pb.SetChecksRequest] = field(default_factory=list)
    list_requests: list[pb.ListStatusRequest] = field(default_factory=list)
    watch_cancelled: threading.Event = field(default_factory=threading.Event)

    def SetChecks(
        self, request: pb.SetChecksRequest, context: grpc.ServicerContext
    ) -> pb.SetChecksResponse:
        self.set_requests.append(request)
        _, errors = convert.checks_from_proto(request.checks)
        return pb.SetChecksResponse(errors=errors)

    def WatchStatus(
        self, request: pb.WatchStatusRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StatusBatch]:
        context.add_callback(self.watch_cancelled.set)
        yield from self.batches
        if self.hold_open:
            self.watch_cancelled.wait(HOLD_OPEN_LIMIT_S)

    def ListStatus(
        self, request: pb.ListStatusRequest, context: grpc.ServicerContext
    ) -> pb.ListStatusResponse:
        self.list_requests.append(request)
        try:
            wanted = convert.StatusFilter.from_proto(request)
        except ValueError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        return pb.ListStatusResponse(
            statuses=[
                status
                for check_id, (config, status) in sorted(self.table.items())
                if wanted.matches(check_id, config, status.state)
            ]
        )


@dataclass
class Served:
    servicer: StandIn
    health: health.HealthServicer
    addr: str  # as the Go client takes it
    target: str  # as a Python grpc channel takes it


@pytest.fixture
def serve(short_tmp: Path) -> Iterator[Any]:
    """serve(kind, tls=None) -> Served: a stand-in server on a Unix socket or 127.0.0.1."""
    servers: list[grpc.Server] = []

    def start(kind: str, tls: dict[str, bytes] | None = None) -> Served:
        servicer = StandIn()
        health_servicer = health.HealthServicer()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_HealthcheckServicer_to_server(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        reflection.enable_server_reflection(
            (SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        creds = None
        if tls is not None:
            creds = grpc.ssl_server_credentials(
                [(tls["key"], tls["cert"])], root_certificates=tls["ca"], require_client_auth=True
            )
        if kind == "unix":
            sock = short_tmp / f"grpc{len(servers)}.sock"
            bound = f"unix:{sock}"
            port = server.add_insecure_port(bound)
            addr = target = bound
        else:
            bind = "127.0.0.1:0"
            port = server.add_secure_port(bind, creds) if creds else server.add_insecure_port(bind)
            addr = target = f"127.0.0.1:{port}"
        assert port != 0
        server.start()
        servers.append(server)
        health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        return Served(servicer, health_servicer, addr, target)

    yield start
    for server in servers:
        server.stop(grace=None).wait(10)


def go(*args: str, timeout: float = 120.0) -> Any:
    return grpcclient.run_json(args, timeout=timeout)


# --- push -----------------------------------------------------------------------------------

INVALID_ENTRIES: dict[int, tuple[dict[str, Any], str]] = {
    # id: (changes to the entry, what the reason says)
    100: ({"type": "none"}, "no checker: set one of"),
    200: ({"ip": "300.1.2.3"}, "target.ip '300.1.2.3' is not an IP address"),
    300: ({"port": 70000}, "target port 70000 is out of range"),
    400: ({"interval": ""}, "interval 0s is out of range"),
    500: ({"mode": model.Mode.DSR, "host": ""}, "target host (needed in DSR mode)"),
    600: ({"ip": "fe80::1%lo"}, "an IPv6 zone is not allowed"),
}


def mixed_entries(n: int) -> list[dict[str, Any]]:
    """n checks-file entries: all six checker types (gopeer's recipe), some in DSR or TUN
    mode, some IPv6, and the INVALID_ENTRIES."""
    entries = []
    for i in range(1, n + 1):
        config = gopeer.recipe_config(i)
        assert config.checker is not None
        target = config.checker.target
        if i % 11 == 0:
            target.ip = model.ip_to_bytes(f"2001:db8::{i:x}")
            if isinstance(config.checker, model.PingChecker):
                target.proto = model.Proto.ICMPV6
        if i % 7 == 0:
            target.mode = model.Mode.DSR if i % 14 else model.Mode.TUN
            target.host = model.ip_to_bytes(f"10.{i % 256}.0.1")
            target.mark = i
        entry = grpcclient.config_to_json(config)
        if i in INVALID_ENTRIES:
            entry.update(INVALID_ENTRIES[i][0])
        entries.append(entry)
    return entries


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_push_1000_mixed_checks_arrive_intact(
    client: Path, serve: Any, kind: str, short_tmp: Path
) -> None:
    served = serve(kind)
    entries = mixed_entries(1000)
    checks_file = short_tmp / "checks.json"
    grpcclient.write_checks_file(checks_file, entries)
    out = go("push", "-addr", served.addr, "-checks", str(checks_file))

    [request] = served.servicer.set_requests
    assert len(request.checks) == out["sent"] == 1000
    kinds = set()
    for index, (entry, check) in enumerate(zip(entries, request.checks, strict=True)):
        assert check.id == entry["id"]
        if entry["id"] in INVALID_ENTRIES:
            continue
        kinds.add(check.WhichOneof("checker"))
        # Every field the Go client sent means what the file says, both ways round.
        expected = grpcclient.config_from_json(entry)
        assert convert.check_from_proto(check) == expected, f"check #{index}"
        assert convert.check_to_proto(expected) == check, f"check #{index}"
    assert kinds == set(convert.CHECKER_FIELDS)

    # The per-check errors came back through the Go client exactly, in request order.
    got = [(e["id"], e["index"], e["reason"]) for e in out["errors"]]
    _, errors = convert.checks_from_proto(request.checks)
    assert got == [(e.id, e.index, e.reason) for e in errors]
    assert [(i, idx) for i, idx, _ in got] == [(i, i - 1) for i in sorted(INVALID_ENTRIES)]
    for check_id, _, reason in got:
        assert INVALID_ENTRIES[check_id][1] in reason


# --- watch ----------------------------------------------------------------------------------


def streamed_batches() -> list[pb.StatusBatch]:
    """A full set of 250 checks in three batches, an empty full set, then changes."""
    statuses = []
    for i in range(1, 251):
        status = pb.Status(
            id=i,
            state=pb.State.ValueType(i % 3),
            duration=duration_pb2.Duration(nanos=i * 1000),
            failures=i % 7,
            successes=i,
            message=f"check {i}",
        )
        if i % 5:  # every 5th has never run: no last_check
            status.last_check.CopyFrom(timestamp_pb2.Timestamp(seconds=1_700_000_000 + i, nanos=i))
        statuses.append(status)
    full = [
        pb.StatusBatch(statuses=statuses[:100], full=True),
        pb.StatusBatch(statuses=statuses[100:200], full=True),
        pb.StatusBatch(statuses=statuses[200:], full=True, full_end=True),
    ]
    extremes = pb.Status(
        id=2**64 - 1,
        state=pb.STATE_UNHEALTHY,
        last_check=timestamp_pb2.Timestamp(seconds=-62135596800),  # 0001-01-01, the minimum
        duration=duration_pb2.Duration(seconds=3600, nanos=999_999_999),
        failures=2**64 - 1,
        successes=0,
        message='dial tcp6 [2001:db8::1]:80: ünïcode "quoted" \\ \n newline',
    )
    changes = [
        pb.StatusBatch(statuses=[statuses[4]]),
        pb.StatusBatch(statuses=[extremes, statuses[0]]),
    ]
    empty_full = [pb.StatusBatch(full=True, full_end=True)]
    return full + empty_full + changes


def expected_records(batches: list[pb.StatusBatch]) -> list[dict[str, Any]]:
    records = []
    for number, batch in enumerate(batches, 1):
        for s in batch.statuses:
            record: dict[str, Any] = {
                "batch": number,
                "id": s.id,
                "state": s.state,
                "state_name": pb.State.Name(s.state),
                "message": s.message,
                "failures": s.failures,
                "successes": s.successes,
                "last_check_unix_ns": (
                    s.last_check.seconds * 10**9 + s.last_check.nanos
                    if s.HasField("last_check")
                    else None
                ),
                "duration_ns": s.duration.seconds * 10**9 + s.duration.nanos,
            }
            if batch.full:
                record["full"] = True
            if batch.full_end:
                record["full_end"] = True
            records.append(record)
    return records


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_watch_records_exactly_what_was_streamed(
    client: Path, serve: Any, kind: str, short_tmp: Path
) -> None:
    served = serve(kind)
    served.servicer.batches = streamed_batches()
    record = short_tmp / "watch.jsonl"
    out = go("watch", "-addr", served.addr, "-record", str(record))
    assert out == {"batches": 6, "statuses": 253, "ended": "stream end"}
    assert grpcclient.read_records(record) == expected_records(served.servicer.batches)


def test_watch_for_stops_a_stream_that_stays_open(
    client: Path, serve: Any, short_tmp: Path
) -> None:
    served = serve("unix")
    served.servicer.batches = streamed_batches()[:3]
    served.servicer.hold_open = True
    record = short_tmp / "watch.jsonl"
    out = go("watch", "-addr", served.addr, "-record", str(record), "-for", "1s")
    assert out == {"batches": 3, "statuses": 250, "ended": "-for passed"}
    assert grpcclient.read_records(record) == expected_records(served.servicer.batches)
    # The client's leaving reached the server: a real servicer can drop the watcher.
    assert served.servicer.watch_cancelled.wait(10)


# --- list -------------------------------------------------------------------------------------


def test_list_sends_the_filters_and_prints_the_statuses(client: Path, serve: Any) -> None:
    served = serve("tcp")
    for i in range(1, 61):
        config = gopeer.recipe_config(i)
        status = pb.Status(id=i, state=pb.State.ValueType(i % 3), successes=i, message=f"c{i}")
        served.servicer.table[i] = (config, status)
    out = go(
        "list",
        "-addr",
        served.addr,
        "-state",
        "unhealthy,STATE_HEALTHY",
        "-type",
        "tcp,dns",
        "-ip",
        "127.0.0.1,::ffff:127.0.0.3",
        "-id",
        "1,3,19,4",
    )
    assert served.servicer.list_requests == [
        pb.ListStatusRequest(
            states=[pb.STATE_UNHEALTHY, pb.STATE_HEALTHY],
            types=[pb.CHECKER_TYPE_TCP, pb.CHECKER_TYPE_DNS],
            ips=["127.0.0.1", "::ffff:127.0.0.3"],
            ids=[1, 3, 19, 4],
        )
    ]
    # recipe: id 1 tcp at 127.0.0.1 (state 1), id 3 dns at 127.0.0.3 (state 0: filtered
    # out), id 19 tcp at 127.0.0.19 (ip filtered out), id 4 udp (type filtered out).
    assert [(s["id"], s["state_name"], s["message"]) for s in out["statuses"]] == [
        (1, "STATE_UNHEALTHY", "c1")
    ]
    everything = go("list", "-addr", served.addr)
    assert [s["id"] for s in everything["statuses"]] == list(range(1, 61))


def test_list_bad_filter_is_invalid_argument(client: Path, serve: Any) -> None:
    served = serve("unix")
    proc = grpcclient.run(["list", "-addr", served.addr, "-ip", "nope"], check=False)
    assert proc.returncode == 1
    assert "ListStatus: InvalidArgument: ips: 'nope' is not an IP address" in proc.stderr


# --- health, reflection, bad usage ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_health(client: Path, serve: Any, kind: str) -> None:
    served = serve(kind)
    assert go("health", "-addr", served.addr) == {"status": "SERVING"}
    assert go("health", "-addr", served.addr, "-service", SERVICE) == {"status": "SERVING"}
    served.health.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    proc = grpcclient.run(["health", "-addr", served.addr, "-service", SERVICE], check=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout) == {"status": "NOT_SERVING"}
    proc = grpcclient.run(["health", "-addr", served.addr, "-service", "nope"], check=False)
    assert proc.returncode == 1 and "Health.Check: NotFound" in proc.stderr


def test_reflection_serves_the_proto(serve: Any) -> None:
    served = serve("unix")
    with grpc.insecure_channel(served.target) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        assert SERVICE in db.get_services()
        found = db.FindFileContainingSymbol(SERVICE)
        assert found.name == "seesaw/healthcheck/v1/healthcheck.proto"
        assert list(found.dependency) == [
            "google/protobuf/duration.proto",
            "google/protobuf/timestamp.proto",
        ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["health", "-addr", "192.0.2.1:50051"], "only loopback addresses"),
        (["health", "-addr", "unix:"], "unix: needs a socket path"),
        (["push", "-addr", "127.0.0.1:1"], "-checks is required"),
        (["watch", "-addr", "127.0.0.1:1"], "-record is required"),
        (["list", "-addr", "127.0.0.1:1", "-type", "smtp"], '"smtp" is not one of dns, http'),
        (["health", "-addr", "127.0.0.1:1", "-cert", "c.pem", "-key", "k.pem"], "give -ca"),
    ],
)
def test_bad_usage_exits_2(client: Path, args: list[str], message: str) -> None:
    proc = grpcclient.run(args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr


# --- TLS with client certificates -------------------------------------------------------------


@pytest.fixture
def pki(short_tmp: Path) -> dict[str, Any]:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("grpc-client@example.test")
    other_ca = trustme.CA()
    files = {
        "ca": short_tmp / "ca.pem",
        "other_ca": short_tmp / "other-ca.pem",
        "cert": short_tmp / "client.pem",
        "key": short_tmp / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    other_ca.cert_pem.write_to_path(str(files["other_ca"]))
    client_cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    client_cert.private_key_pem.write_to_path(str(files["key"]))
    server = {
        "ca": ca.cert_pem.bytes(),
        "cert": b"".join(p.bytes() for p in server_cert.cert_chain_pems),
        "key": server_cert.private_key_pem.bytes(),
    }
    return {"files": {k: str(v) for k, v in files.items()}, "server": server}


def test_tls_with_client_certificate(client: Path, serve: Any, pki: dict[str, Any]) -> None:
    served = serve("tcp", tls=pki["server"])
    f = pki["files"]
    tls_args = ["-ca", f["ca"], "-cert", f["cert"], "-key", f["key"]]
    assert go("health", "-addr", served.addr, *tls_args) == {"status": "SERVING"}
    served.servicer.batches = streamed_batches()[:3]
    record = Path(f["ca"]).with_name("tls.jsonl")
    out = go("watch", "-addr", served.addr, "-record", str(record), *tls_args)
    assert out["statuses"] == 250
    assert grpcclient.read_records(record) == expected_records(served.servicer.batches)


@pytest.mark.parametrize(
    ("which", "args"),
    [
        ("no client certificate", ["-ca", "{ca}"]),
        ("server not trusted", ["-ca", "{other_ca}", "-cert", "{cert}", "-key", "{key}"]),
        ("plaintext to a TLS port", []),
    ],
)
def test_tls_refusals(
    client: Path, serve: Any, pki: dict[str, Any], which: str, args: list[str]
) -> None:
    served = serve("tcp", tls=pki["server"])
    args = [a.format(**pki["files"]) for a in args]
    proc = grpcclient.run(
        ["health", "-addr", served.addr, "-timeout", "5s", *args], check=False, timeout=60
    )
    assert proc.returncode == 1, which
    assert proc.stdout == ""
    assert "grpcclient health:" in proc.stderr
