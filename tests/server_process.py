"""The real ``seesaw-healthcheck`` as a subprocess, for the tests of its gRPC API and of its
``-config_source file:PATH`` mode (tests/test_grpc_server*.py, tests/test_config_file.py).

``HealthcheckProcess(tmp, *flags)`` starts ``python -m seesaw_healthcheck.cli.healthcheck``
with ``-logtostderr``, ``-stats_file`` and no HTTP endpoint unless the flags give one,
logging into ``tmp``; ``stop()`` sends SIGTERM and asserts a clean exit. ``channel()``
opens a grpcio channel to its ``-grpc_listen`` address. Small builders make API checks.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import duration_pb2

from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb
from seesaw_healthcheck.grpcapi import healthcheck_pb2_grpc as pb_grpc

MAX_MESSAGE = 64 << 20  # a full ListStatus of tens of thousands of checks exceeds 4 MiB
START_TIMEOUT_S = 15.0


class HealthcheckProcess:
    """One server process; ``flags`` are its command-line flags."""

    def __init__(self, tmp: Path, *flags: str, name: str = "server") -> None:
        self.log_path = tmp / f"{name}.log"
        self.stats_path = tmp / f"{name}-stats.json"
        self.listen = ""
        for flag, value in itertools.pairwise(flags):
            if flag == "-grpc_listen":
                self.listen = value
        extra = [] if "-http_addr" in flags else ["-http_addr", ""]
        args = [
            sys.executable, "-m", "seesaw_healthcheck.cli.healthcheck",
            "-logtostderr", "-stats_file", str(self.stats_path), *extra, *flags,
        ]  # fmt: skip
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=self._log)
        self.pid = self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stats(self) -> dict[str, Any]:
        try:
            return json.loads(self.stats_path.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def rss_kib(self) -> int:
        """VmRSS of the control process (the one serving the gRPC API)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def channel(self, **options: Any) -> grpc.Channel:
        """A channel to ``-grpc_listen`` (plaintext), ready within START_TIMEOUT_S."""
        opts = [
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
            *options.items(),
        ]
        channel = grpc.insecure_channel(self.listen, options=opts)
        try:
            grpc.channel_ready_future(channel).result(timeout=START_TIMEOUT_S)
        except grpc.FutureTimeoutError:
            channel.close()
            raise AssertionError(
                f"no gRPC server on {self.listen}:\n{self.log()[-3000:]}"
            ) from None
        return channel

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> float:
        """SIGTERM; how long the exit took. Asserts exit status 0."""
        try:
            took = 0.0
            if self.proc.poll() is None:
                t0 = time.monotonic()
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    raise AssertionError("server ignored SIGTERM for 10 s") from None
                took = time.monotonic() - t0
            assert self.proc.returncode == 0, f"exit {self.proc.returncode}\n{self.log()[-3000:]}"
            return took
        finally:
            self._log.close()


@contextmanager
def healthcheck_process(
    tmp: Path, *flags: str, name: str = "server"
) -> Iterator[HealthcheckProcess]:
    """A running server; its log tail on stderr if the block fails; stopped cleanly."""
    server = HealthcheckProcess(tmp, *flags, name=name)
    try:
        yield server
    except BaseException:
        sys.stderr.write(server.log()[-4000:])
        raise
    finally:
        server.stop()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` every 100 ms until it returns something truthy (returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def stub(channel: grpc.Channel) -> pb_grpc.HealthcheckStub:
    return pb_grpc.HealthcheckStub(channel)


def _ms(ms: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def tcp_check(
    check_id: int,
    port: int,
    *,
    interval_ms: int = 200,
    timeout_ms: int = 300,
    ip: str = "127.0.0.1",
) -> pb.Check:
    return pb.Check(
        id=check_id,
        interval=_ms(interval_ms),
        timeout=_ms(timeout_ms),
        target=pb.Target(ip=ip, port=port),
        tcp=pb.TCPChecker(),
    )


def udp_check(
    check_id: int, port: int, *, interval_ms: int = 200, timeout_ms: int = 300
) -> pb.Check:
    return pb.Check(
        id=check_id,
        interval=_ms(interval_ms),
        timeout=_ms(timeout_ms),
        target=pb.Target(ip="127.0.0.1", port=port),
        udp=pb.UDPChecker(send=b"ping", receive=b"ok"),
    )


def list_status(channel: grpc.Channel, **filters: Any) -> dict[int, pb.Status]:
    reply = stub(channel).ListStatus(pb.ListStatusRequest(**filters), timeout=10)
    return {s.id: s for s in reply.statuses}
