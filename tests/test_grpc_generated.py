"""The checked-in gRPC Python code is what scripts/gen_proto.py makes of proto/ today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from seesaw_healthcheck.grpcapi import healthcheck_pb2 as pb
from seesaw_healthcheck.grpcapi import healthcheck_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parent.parent


def test_generated_code_matches_the_proto() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_proto.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_descriptor_keeps_the_proto_file_name() -> None:
    """Reflection and other languages know the file as seesaw/healthcheck/v1/..."""
    assert pb.DESCRIPTOR.name == "seesaw/healthcheck/v1/healthcheck.proto"
    assert pb.DESCRIPTOR.package == "seesaw.healthcheck.v1"
    service = pb.DESCRIPTOR.services_by_name["Healthcheck"]
    assert [m.name for m in service.methods] == ["SetChecks", "WatchStatus", "ListStatus"]
    assert service.methods_by_name["WatchStatus"].server_streaming
    assert pb.Check.__module__ == "seesaw_healthcheck.grpcapi.healthcheck_pb2"
    assert pb_grpc.HealthcheckStub.__module__ == "seesaw_healthcheck.grpcapi.healthcheck_pb2_grpc"
