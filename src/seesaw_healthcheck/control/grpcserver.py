"""The gRPC API (``proto/seesaw/healthcheck/v1/healthcheck.proto``) in the control process.

grpcio serves on its own threads; everything that reads or changes the checks runs on the
control process's reactor thread (``Control.call``), so the API sees exactly what the
engine notifications and the status page see, and no lock guards the table.

- ``SetChecks`` (``-config_source grpc`` only): the whole desired set, diffed like a fetch;
  checks that cannot run are answered one by one with the reason and not run.
- ``WatchStatus``: each watcher has its own coalescing queue (newest Status per check, so
  a slow watcher costs memory bounded by the number of checks and blocks nobody): first
  the full current set, then every change batched as the notifier batches them
  (``-batch_size``, ``-batch_delay``), and the full set again every notify interval.
- ``ListStatus``: the statuses that pass the filters, in id order.
- ``grpc.health.v1.Health`` (SERVING while ready, see ``/readyz``) and server reflection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from seesaw_healthcheck.control.notifier import CoalescingQueue
from seesaw_healthcheck.grpcapi import convert
from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb
from seesaw_healthcheck.grpcapi import healthcheck_pb2_grpc as pb_grpc
from seesaw_healthcheck.model import Status

if TYPE_CHECKING:
    from seesaw_healthcheck.control.app import Control

__all__ = ["GrpcServer", "WatchHub"]

log = logging.getLogger(__name__)

SERVICE = "seesaw.healthcheck.v1.Healthcheck"
FULL_BATCH = 1000  # statuses per StatusBatch of a full set (~80 KB)
MAX_MESSAGE = 256 << 20  # a SetChecks of 100,000 checks is ~7 MB
THREADS = 16


class Watcher:
    """One WatchStatus stream's pending changes and whether a full set is due."""

    def __init__(self, batch_size: int) -> None:
        self.wake = threading.Event()
        self.queue = CoalescingQueue(batch_size, clock=time.monotonic, wake=self.wake.set)
        self.full_due = True  # the stream begins with the full set
        self.closed = False

    def full(self) -> None:
        self.full_due = True
        self.wake.set()


class WatchHub:
    """What the control process publishes (reactor thread) reaches every watcher."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: set[Watcher] = set()

    def __len__(self) -> int:
        return len(self._watchers)

    def add(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.add(watcher)

    def remove(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)

    def _all(self) -> list[Watcher]:
        with self._lock:
            return list(self._watchers)

    def changed(self, items: list[tuple[int, Status]]) -> None:
        for watcher in self._all():
            watcher.queue.put_many(items)

    def full(self) -> None:
        """Every notify interval: the full set again, for every watcher."""
        for watcher in self._all():
            watcher.full()

    def discard(self, ids: list[int]) -> None:
        for watcher in self._all():
            watcher.queue.discard(ids)


class _Servicer(pb_grpc.HealthcheckServicer):
    def __init__(self, control: Control) -> None:
        self.control = control
        # One SetChecks at a time: each is the whole desired set, and the next one's
        # conversion starts from what the last one kept.
        self._set_lock = threading.Lock()
        self._reuse = convert.ConfigReuse()

    def SetChecks(
        self, request: pb.SetChecksRequest, context: grpc.ServicerContext
    ) -> pb.SetChecksResponse:
        control = self.control
        if control.source != "grpc":
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"checks come from {control.source} (-config_source grpc takes them here)",
            )
        with self._set_lock:
            configs, errors = convert.checks_from_proto(request.checks, self._reuse)
            control.call(lambda: control.apply(configs))
        return pb.SetChecksResponse(errors=errors)

    def ListStatus(
        self, request: pb.ListStatusRequest, context: grpc.ServicerContext
    ) -> pb.ListStatusResponse:
        try:
            wanted = convert.StatusFilter.from_proto(request)
        except ValueError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(err))
        control = self.control

        def listed() -> list[tuple[int, Status]]:
            return [
                (e.id, e.status())
                for e in sorted(control.table, key=lambda e: e.id)
                if wanted.matches(e.id, e.config, e.state)
            ]

        statuses = control.call(listed)
        return pb.ListStatusResponse(statuses=[convert.status_to_proto(i, s) for i, s in statuses])

    def WatchStatus(
        self, request: pb.WatchStatusRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.StatusBatch]:
        control = self.control
        config = control.config
        watcher = Watcher(config.batch_size)
        context.add_callback(watcher.wake.set)  # the client left: stop waiting
        control.hub.add(watcher)
        batch_delay = config.batch_delay / 1e9
        try:
            while context.is_active():
                if watcher.full_due:
                    watcher.full_due = False
                    # Newer than anything queued: what is queued is in it.
                    watcher.queue.take(len(watcher.queue) + 1)
                    statuses = control.call(lambda: [(e.id, e.status()) for e in control.table])
                    yield from _full_set(statuses)
                    continue
                if not len(watcher.queue):
                    watcher.wake.clear()
                    if not len(watcher.queue) and not watcher.full_due:
                        watcher.wake.wait(1.0)
                    continue
                # A full batch, or the delay after the first change.
                while len(watcher.queue) < config.batch_size and not watcher.full_due:
                    remaining = watcher.queue.first_put() + batch_delay - time.monotonic()
                    if remaining <= 0 or not context.is_active():
                        break
                    watcher.wake.clear()
                    watcher.wake.wait(remaining)
                batch = watcher.queue.take(config.batch_size)
                if batch:
                    yield pb.StatusBatch(
                        statuses=[convert.status_to_proto(n.id, n.status) for n in batch]
                    )
        finally:
            control.hub.remove(watcher)


def _full_set(statuses: list[tuple[int, Status]]) -> Iterator[pb.StatusBatch]:
    statuses.sort(key=lambda item: item[0])
    if not statuses:
        yield pb.StatusBatch(full=True, full_end=True)
        return
    for at in range(0, len(statuses), FULL_BATCH):
        chunk = statuses[at : at + FULL_BATCH]
        yield pb.StatusBatch(
            statuses=[convert.status_to_proto(i, s) for i, s in chunk],
            full=True,
            full_end=at + FULL_BATCH >= len(statuses),
        )


def _credentials(cert: str, key: str, client_ca: str) -> grpc.ServerCredentials:
    with open(key, "rb") as f:
        key_pem = f.read()
    with open(cert, "rb") as f:
        cert_pem = f.read()
    ca_pem = None
    if client_ca:
        with open(client_ca, "rb") as f:
            ca_pem = f.read()
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem)], root_certificates=ca_pem, require_client_auth=bool(ca_pem)
    )


class GrpcServer:
    """The API on ``listen`` (``unix:PATH`` or ``HOST:PORT``; TLS with ``cert``/``key``,
    client certificates required with ``client_ca``)."""

    def __init__(
        self,
        control: Control,
        listen: str,
        *,
        cert: str = "",
        key: str = "",
        client_ca: str = "",
    ) -> None:
        self.control = control
        self.server = grpc.server(
            futures.ThreadPoolExecutor(THREADS, thread_name_prefix="grpc"),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.so_reuseport", 0),
            ],
        )
        pb_grpc.add_HealthcheckServicer_to_server(_Servicer(control), self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (pb.DESCRIPTOR.services_by_name["Healthcheck"].full_name, health.SERVICE_NAME,
             reflection.SERVICE_NAME),
            self.server,
        )  # fmt: skip
        if listen.startswith("unix:"):
            port = self.server.add_insecure_port(listen)
        elif cert or key:
            if not (cert and key):
                raise ValueError("-grpc_cert and -grpc_key go together")
            port = self.server.add_secure_port(listen, _credentials(cert, key, client_ca))
        elif client_ca:
            raise ValueError("-grpc_client_ca needs -grpc_cert and -grpc_key")
        else:
            port = self.server.add_insecure_port(listen)
        if not port and not listen.startswith("unix:"):
            raise OSError(f"cannot listen on {listen}")
        self.port = port
        self.set_serving(False)
        self.server.start()

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE):
            self.health.set(name, status)

    def stop(self) -> None:
        self.server.stop(grace=0.2).wait(1.0)
