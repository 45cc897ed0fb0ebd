"""The real server's gRPC API from Python grpcio clients.

Each test runs ``seesaw-healthcheck`` as a subprocess (tests/server_process.py) with the
API on a Unix socket in a fresh directory (TLS tests: on 127.0.0.1) and real loopback
targets: per-check rejections, many watchers one of which never reads, a watcher joining
late, ListStatus filters, grpc.health.v1, reflection, the read-only API of the other
config sources, and TLS with client certificates.
"""

from __future__ import annotations

import contextlib
import random
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from tests.conftest import free_port
from tests.responders.dns import DNSResponder
from tests.responders.http import HTTPResponder
from tests.responders.tcp import TCPResponder
from tests.responders.udp import UDPEchoResponder
from tests.server_process import (
    HealthcheckProcess,
    healthcheck_process,
    list_status,
    stub,
    tcp_check,
    udp_check,
    wait_until,
)
from tests.test_server_integration import ToggleTarget

from seesaw_healthcheck.channel import percentile
from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb

SERVICE = "seesaw.healthcheck.v1.Healthcheck"
FAST = ["-batch_delay", "50ms"]
RSS_EVERY_S = 0.25


@pytest.fixture
def grpc_server(short_tmp: Path) -> Iterator[Any]:
    """grpc_server(*flags) -> a running ``-config_source grpc`` server on a Unix socket."""
    with contextlib.ExitStack() as stack:
        count = 0

        def start(*flags: str) -> HealthcheckProcess:
            nonlocal count
            count += 1
            sock = short_tmp / f"grpc{count}.sock"
            flags = ("-config_source", "grpc", "-grpc_listen", f"unix:{sock}", *FAST, *flags)
            return stack.enter_context(healthcheck_process(short_tmp, *flags, name=f"s{count}"))

        yield start


def states(channel: grpc.Channel) -> dict[int, int]:
    return {i: s.state for i, s in list_status(channel).items()}


# --- SetChecks: rejected one by one ------------------------------------------------------------


def test_invalid_checks_are_rejected_one_by_one_and_the_rest_run(grpc_server: Any) -> None:
    with TCPResponder("127.0.0.1") as tcp:
        good = [tcp_check(i, tcp.port) for i in (1, 2, 3)]
        no_checker = pb.Check(id=11, interval=good[0].interval, target=pb.Target(ip="127.0.0.1"))
        bad_ip = tcp_check(12, tcp.port, ip="300.1.2.3")
        zero_interval = tcp_check(13, tcp.port, interval_ms=0)
        negative_timeout = tcp_check(14, tcp.port)
        negative_timeout.timeout.CopyFrom(duration_pb2.Duration(seconds=-1))
        mixed_signs = tcp_check(18, tcp.port)
        mixed_signs.timeout.seconds = -1  # its nanos stay +300 ms
        dsr_without_host = tcp_check(15, tcp.port)
        dsr_without_host.target.mode = pb.MODE_DSR
        big_port = tcp_check(16, 70_000)
        no_id = tcp_check(0, tcp.port)
        twice = [tcp_check(17, tcp.port), tcp_check(17, tcp.port)]
        request = [
            good[0], no_checker, bad_ip, good[1], zero_interval, negative_timeout,
            dsr_without_host, big_port, no_id, twice[0], good[2], twice[1], mixed_signs,
        ]  # fmt: skip
        expected = [
            (11, 1, "no checker: set one of"),
            (12, 2, "target.ip '300.1.2.3' is not an IP address"),
            (13, 4, "interval 0s is out of range"),
            (14, 5, "timeout -1s is out of range"),
            (15, 6, "target host (needed in DSR mode)"),
            (16, 7, "target port 70000 is out of range"),
            (0, 8, "id 0 is not allowed"),
            (17, 9, "id 17 is not unique: 2 checks in the request have it"),
            (17, 11, "id 17 is not unique"),
            (18, 12, "timeout: seconds -1 and nanos 300000000 differ in sign"),
        ]
        server = grpc_server()
        with server.channel() as channel:
            reply = stub(channel).SetChecks(pb.SetChecksRequest(checks=request), timeout=10)
            got = [(e.id, e.index, e.reason) for e in reply.errors]
            assert [(i, index) for i, index, _ in got] == [(i, index) for i, index, _ in expected]
            for (_, _, reason), (_, _, want) in zip(got, expected, strict=True):
                assert want in reason, (reason, want)
            # The valid ones run (and only they are there).
            wait_until(lambda: states(channel) == {1: 2, 2: 2, 3: 2}, 10, "1-3 Healthy")
            # A set of nothing but invalid checks empties the server.
            reply = stub(channel).SetChecks(pb.SetChecksRequest(checks=[bad_ip]), timeout=10)
            assert [(e.id, e.index) for e in reply.errors] == [(12, 0)]
            assert list_status(channel) == {}
        assert "Traceback" not in server.log()


# --- WatchStatus: three watchers, one never reading ------------------------------------------


@dataclass
class Reader:
    """A watcher reading in a thread: every batch with the time it arrived."""

    channel: grpc.Channel
    batches: list[tuple[float, pb.StatusBatch]] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.call = stub(self.channel).WatchStatus(pb.WatchStatusRequest())
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for batch in self.call:
                self.batches.append((time.monotonic(), batch))
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                self.error = err

    def changes_between(self, start: float, end: float) -> int:
        return sum(len(b.statuses) for t, b in self.batches if start <= t < end and not b.full)

    def stop(self) -> None:
        self.call.cancel()
        self.thread.join(10)
        assert self.error is None, self.error


def lateness_p99(before: dict[str, Any], after: dict[str, Any]) -> float:
    counts = [
        b - a for a, b in zip(before["lateness_counts"], after["lateness_counts"], strict=True)
    ]
    return percentile(tuple(after["lateness_bounds_s"]), counts, 0.99)


def fresh_stats(server: HealthcheckProcess) -> dict[str, Any]:
    """The stats file once it has been rewritten (every second) after this call."""
    old = server.stats().get("now", 0.0)
    return wait_until(lambda: (s := server.stats()) and s["now"] > old and s, 3, "fresh stats")  # type: ignore[no-any-return]


def test_a_watcher_that_never_reads_holds_up_nothing(grpc_server: Any) -> None:
    """Two watchers read, a third never does: the checks, their lateness and the two
    readers go on as before, and the control process's memory stays flat while the stuck
    watcher's changes pile up (coalesced to the newest Status per check)."""
    n = 500
    coin = random.Random(12)
    flipping = threading.Event()
    flipping.set()
    size = 2000  # a mismatch costs a message this long: piling up would show

    def reply(data: bytes) -> bytes:
        # Either way at random: about every other run is a change of state.
        return b"x" * size if flipping.is_set() and coin.random() < 0.5 else expected

    expected = b"o" * size

    with UDPEchoResponder("127.0.0.1", reply=reply) as udp:
        server = grpc_server("-notify_interval", "3s")
        with server.channel() as channel:
            checks = []
            for i in range(1, n + 1):
                check = udp_check(i, udp.port, interval_ms=250, timeout_ms=200)
                check.udp.receive = expected
                checks.append(check)
            assert (
                not stub(channel).SetChecks(pb.SetChecksRequest(checks=checks), timeout=10).errors
            )
            readers = [Reader(channel), Reader(channel)]
            wait_until(lambda: server.stats().get("ran_once") == n, 10, "every check to run")
            phase = 5.0
            # Phase A: two watchers, both reading.
            a0, ta0 = fresh_stats(server), time.monotonic()
            time.sleep(phase)
            a1 = fresh_stats(server)
            # Phase B: a third watcher, on a connection of its own (no BDP probing, so
            # its window stays small), never reading.
            stuck_channel = server.channel(**{"grpc.http2.bdp_probe": 0})
            stuck = stub(stuck_channel).WatchStatus(pb.WatchStatusRequest())
            b0, tb0 = fresh_stats(server), time.monotonic()
            rss = []
            while time.monotonic() - tb0 < 2.4 * phase:
                time.sleep(RSS_EVERY_S)
                rss.append(server.rss_kib())
            b1, tb1 = fresh_stats(server), time.monotonic()
            flipping.clear()
            # What the stuck watcher gets once it reads: its first full set, what was in
            # flight, then the newest state of every check.
            time.sleep(1.0)  # every check has run since the flipping stopped
            got: list[pb.StatusBatch] = []
            try:
                for batch in stuck:
                    got.append(batch)
                    if batch.full_end and len(got) > 1:
                        break
                    assert time.monotonic() - tb1 < 15, "no full set for the stuck watcher"
            finally:
                stuck.cancel()
                stuck_channel.close()
                for reader in readers:
                    reader.stop()
        assert server.alive()

    def rate(s0: dict[str, Any], s1: dict[str, Any]) -> float:
        return (s1["checks_run"] - s0["checks_run"]) / (s1["now"] - s0["now"])

    piled_up = b1["transitions"] - b0["transitions"]
    piled_up = b1["transitions"] - b0["transitions"]
    assert piled_up > 3 * n, piled_up  # enough changes to notice them piling up
    # The checks go on as before.
    assert rate(b0, b1) > 0.75 * rate(a0, a1), (rate(a0, a1), rate(b0, b1))
    # Lateness: generous bounds, as this machine is shared (its p99 swings 10-fold between
    # runs on its own); a held-up server would be seconds late.
    p99_a, p99_b = lateness_p99(a0, a1), lateness_p99(b0, b1)
    assert p99_b < max(3 * p99_a, p99_a + 0.5), (p99_a, p99_b)
    # The two readers go on receiving every change as before.
    for reader in readers:
        assert reader.changes_between(ta0, tb0) > 0.8 * (a1["transitions"] - a0["transitions"])
        assert reader.changes_between(tb0, tb1) > 0.8 * piled_up
        assert max(t for t, _ in reader.batches if t < tb1) > tb1 - 1.0
    # The control process's memory stays flat. Kept, the piled-up Statuses would grow it
    # by their messages alone at `pile_rate` (~1 MB/s; measured with a queue that keeps
    # every Status: 1.4 MB/s, where coalescing gives -0.1 to +0.15 MB/s of noise).
    seconds = [RSS_EVERY_S * k for k in range(len(rss))]
    slope = statistics.linear_regression(seconds, rss).slope * 1024  # bytes/s
    pile_rate = piled_up / 2 * size / (tb1 - tb0)
    assert slope < pile_rate / 3, (slope, pile_rate, rss)
    # Coalesced: the stuck watcher gets a bounded few changes, not everything.
    assert got[0].full and len(got[0].statuses) == n
    changes = sum(len(b.statuses) for b in got if not b.full)
    assert changes < piled_up / 10, (changes, piled_up)
    last_full = [s for b in got[1:] if b.full for s in b.statuses]
    assert {s.id for s in last_full} == set(range(1, n + 1))
    assert all(s.state == pb.STATE_HEALTHY for s in last_full)


# --- WatchStatus: a watcher joining late ----------------------------------------------------


def test_a_late_watcher_gets_the_full_current_set_first(grpc_server: Any) -> None:
    n = 1200  # more than one StatusBatch of a full set (1,000)
    target = ToggleTarget()
    target.on()
    closed = free_port()
    try:
        server = grpc_server("-notify_interval", "3s")
        with server.channel() as channel:
            checks = [
                tcp_check(i, target.port if i % 2 == 0 else closed, interval_ms=2000)
                for i in range(1, n + 1)
            ]
            assert (
                not stub(channel).SetChecks(pb.SetChecksRequest(checks=checks), timeout=10).errors
            )
            want = {
                i: pb.STATE_HEALTHY if i % 2 == 0 else pb.STATE_UNHEALTHY for i in range(1, n + 1)
            }
            wait_until(lambda: states(channel) == want, 15, "a verdict for every check")
            call = stub(channel).WatchStatus(pb.WatchStatusRequest(), timeout=30)
            stream = iter(call)
            try:
                full = []
                while not full or not full[-1].full_end:
                    full.append(next(stream))
                # The full current set first, in id order, over two batches.
                assert [(b.full, b.full_end, len(b.statuses)) for b in full] == [
                    (True, False, 1000),
                    (True, True, 200),
                ]
                statuses = [s for b in full for s in b.statuses]
                assert [s.id for s in statuses] == list(range(1, n + 1))
                assert {s.id: s.state for s in statuses} == want
                assert all(s.HasField("last_check") and s.message for s in statuses)
                # Then changes: the target goes away, its checks turn Unhealthy.
                target.off()
                turned: set[int] = set()
                changes = []
                while len(turned) < n // 2:
                    batch = next(stream)
                    if batch.full:
                        continue  # the periodic full set
                    changes.append(batch)
                    turned |= {s.id for s in batch.statuses if s.state == pb.STATE_UNHEALTHY}
                assert turned == {i for i in range(1, n + 1) if i % 2 == 0}
                assert all(not b.full_end and len(b.statuses) <= 100 for b in changes)
                # And the full set again within the notify interval.
                again = next(b for b in stream if b.full)
                assert again.statuses[0].id == 1
            finally:
                call.cancel()
    finally:
        target.off()


# --- ListStatus ---------------------------------------------------------------------------------


def test_list_status_filters(grpc_server: Any) -> None:
    zone = {("www.example.com.", "A"): ["192.0.2.1"]}
    with (
        TCPResponder("127.0.0.1") as tcp,
        TCPResponder("127.0.0.2") as tcp2,
        UDPEchoResponder("127.0.0.1", reply=b"ok") as udp,
        DNSResponder("127.0.0.1", zone) as dns,
        HTTPResponder("::1") as web,
    ):
        every = tcp_check(1, 1).interval
        dns_check = pb.Check(
            id=4,
            interval=every,
            target=pb.Target(ip="127.0.0.1", port=dns.port),
            dns=pb.DNSChecker(query_name="www.example.com", query_type=1, answer="192.0.2.1"),
        )
        http_check = pb.Check(
            id=5,
            interval=every,
            target=pb.Target(ip="::1", port=web.port),
            http=pb.HTTPChecker(request="/healthz", response_code=200),
        )
        checks = [
            tcp_check(1, tcp.port),
            tcp_check(2, free_port()),
            udp_check(3, udp.port),
            dns_check,
            http_check,
            tcp_check(6, tcp2.port, ip="127.0.0.2"),
        ]
        server = grpc_server()
        with server.channel() as channel:
            assert (
                not stub(channel).SetChecks(pb.SetChecksRequest(checks=checks), timeout=10).errors
            )
            want = {1: 2, 2: 1, 3: 2, 4: 2, 5: 2, 6: 2}
            wait_until(lambda: states(channel) == want, 10, "every check's verdict")

            def ids(**filters: Any) -> list[int]:
                reply = stub(channel).ListStatus(pb.ListStatusRequest(**filters), timeout=10)
                return [s.id for s in reply.statuses]

            assert ids() == [1, 2, 3, 4, 5, 6]  # id order
            assert ids(states=[pb.STATE_UNHEALTHY]) == [2]
            assert ids(states=[pb.STATE_UNKNOWN]) == []
            assert ids(types=[pb.CHECKER_TYPE_TCP]) == [1, 2, 6]
            assert ids(types=[pb.CHECKER_TYPE_UDP, pb.CHECKER_TYPE_DNS]) == [3, 4]
            assert ids(ips=["127.0.0.2"]) == [6]
            assert ids(ips=["::1", "127.0.0.2"]) == [5, 6]
            assert ids(ips=["::ffff:127.0.0.1"]) == [1, 2, 3, 4]  # compared as addresses
            assert ids(ids=[5, 1, 99]) == [1, 5]
            assert ids(
                states=[pb.STATE_HEALTHY], types=[pb.CHECKER_TYPE_TCP], ips=["127.0.0.1"]
            ) == [1]
            with pytest.raises(grpc.RpcError) as err:
                ids(ips=["127.0.0.300"])
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details() == "ips: '127.0.0.300' is not an IP address"


# --- grpc.health.v1, reflection, the other config sources --------------------------------------


def test_health_serving_once_the_first_set_is_applied(grpc_server: Any) -> None:
    server = grpc_server()
    with server.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def status(service: str) -> int:
            request = health_pb2.HealthCheckRequest(service=service)
            return health.Check(request, timeout=10).status  # type: ignore[no-any-return]

        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        serving = health_pb2.HealthCheckResponse.SERVING
        assert status("") == status(SERVICE) == not_serving  # no checks yet
        with pytest.raises(grpc.RpcError) as err:
            status("no.such.Service")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        stub(channel).SetChecks(pb.SetChecksRequest(checks=[tcp_check(1, free_port())]), timeout=10)
        wait_until(lambda: status("") == status(SERVICE) == serving, 5, "SERVING")


def test_reflection_lists_the_service(grpc_server: Any) -> None:
    server = grpc_server()
    with server.channel() as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        assert set(db.get_services()) == {
            SERVICE,
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }
        found = db.FindFileContainingSymbol(SERVICE)
        assert found.name == "seesaw/healthcheck/v1/healthcheck.proto"
        assert [m.name for m in found.service[0].method] == [
            "SetChecks",
            "WatchStatus",
            "ListStatus",
        ]


def test_engine_source_serves_a_read_only_api(short_tmp: Path) -> None:
    sock = short_tmp / "grpc.sock"
    flags = ["-config_source", "engine", "-engine", str(short_tmp / "no-engine.sock"),
             "-grpc_listen", f"unix:{sock}", "-retry_delay", "200ms"]  # fmt: skip
    with healthcheck_process(short_tmp, *flags) as server, server.channel() as channel:
        api = stub(channel)
        with pytest.raises(grpc.RpcError) as err:
            api.SetChecks(pb.SetChecksRequest(checks=[tcp_check(1, 1)]), timeout=10)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.value.details() == (
            "checks come from engine (-config_source grpc takes them here)"
        )
        assert list_status(channel) == {}
        first = next(iter(api.WatchStatus(pb.WatchStatusRequest(), timeout=10)))
        assert (first.full, first.full_end, len(first.statuses)) == (True, True, 0)
        assert server.alive()


# --- TLS with client certificates ---------------------------------------------------------------


@pytest.fixture
def pki(short_tmp: Path) -> dict[str, Any]:
    """A server certificate for 127.0.0.1, a CA for client certificates, and clients."""
    server_ca, client_ca, stranger_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server_cert = server_ca.issue_cert("127.0.0.1")
    files = {
        "cert": short_tmp / "server.pem",
        "key": short_tmp / "server.key",
        "client_ca": short_tmp / "client-ca.pem",
    }
    server_cert.private_key_pem.write_to_path(str(files["key"]))
    files["cert"].write_bytes(b"".join(p.bytes() for p in server_cert.cert_chain_pems))
    client_ca.cert_pem.write_to_path(str(files["client_ca"]))

    def client(ca: trustme.CA) -> tuple[bytes, bytes]:
        cert = ca.issue_cert("watcher@example.test")
        return cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes()

    return {
        "files": {k: str(v) for k, v in files.items()},
        "server_ca": server_ca.cert_pem.bytes(),
        "client": client(client_ca),
        "stranger": client(stranger_ca),
    }


def test_tls_with_client_certificates(short_tmp: Path, pki: dict[str, Any]) -> None:
    port = free_port()
    f = pki["files"]
    flags = ["-config_source", "grpc", "-grpc_listen", f"127.0.0.1:{port}", "-grpc_cert",
             f["cert"], "-grpc_key", f["key"], "-grpc_client_ca", f["client_ca"]]  # fmt: skip
    target = f"127.0.0.1:{port}"

    def call(channel: grpc.Channel) -> dict[int, pb.Status]:
        stub(channel).SetChecks(pb.SetChecksRequest(checks=[tcp_check(1, free_port())]), timeout=5)
        return list_status(channel)

    def tls(client: tuple[bytes, bytes] | None) -> grpc.ChannelCredentials:
        key, cert = client if client else (None, None)
        return grpc.ssl_channel_credentials(pki["server_ca"], key, cert)

    with healthcheck_process(short_tmp, *flags) as server:
        wait_until(lambda: "Serving the gRPC API" in server.log(), 10, "the API to listen")
        with grpc.secure_channel(target, tls(pki["client"])) as channel:
            assert set(call(channel)) == {1}
        refusals = {
            "no client certificate": grpc.secure_channel(target, tls(None)),
            "a client certificate of another CA": grpc.secure_channel(target, tls(pki["stranger"])),
            "plaintext": grpc.insecure_channel(target),
        }
        for why, channel in refusals.items():
            with channel, pytest.raises(grpc.RpcError) as err:
                call(channel)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE, why
        assert server.alive()
