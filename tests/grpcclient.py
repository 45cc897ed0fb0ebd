"""Build and drive the Go gRPC client (``tests/go_grpc``) from tests.

``build()`` generates the Go code of ``proto/seesaw/healthcheck/v1/healthcheck.proto`` with
Debian's ``protoc``, ``protoc-gen-go`` and ``protoc-gen-go-grpc`` into a GOPATH under
``build/go-grpc/``, then compiles ``tests/go_grpc`` against it and Debian's Go packages in
``/usr/share/gocode`` (GOPATH mode, offline) into ``build/grpcclient``: only when a Go
source or the .proto is newer than the binary, under a file lock so that concurrent
callers build once. ``run()`` runs one mode.

``config_to_json`` / ``config_from_json`` map a model Config to and from one entry of the
checks-file format the client's ``push`` reads (gopeer's ``-checks`` format, see
``tests/go/engine.go``), as the Go side reads it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seesaw_healthcheck import model
from seesaw_healthcheck.goduration import format_duration, parse_duration

REPO = Path(__file__).resolve().parent.parent
GO_DIR = REPO / "tests" / "go_grpc"
PROTO_ROOT = REPO / "proto"
PROTO = "seesaw/healthcheck/v1/healthcheck.proto"
GO_PACKAGE = "seesaw/healthcheck/v1;healthcheckv1"  # the import path in our GOPATH
BINARY = REPO / "build" / "grpcclient"
WORK = REPO / "build" / "go-grpc"
DEBIAN_GOCODE = Path("/usr/share/gocode")
TOOLS = ("go", "protoc", "protoc-gen-go", "protoc-gen-go-grpc")
BUILD_TIMEOUT_S = 600.0
MAKE_HINT = (
    "run `make go-grpc` (Debian's protobuf-compiler, protoc-gen-go, protoc-gen-go-grpc, "
    "golang-google-grpc-dev, golang-google-protobuf-dev)"
)


class GrpcClientError(RuntimeError):
    """A tool or package is missing, the build failed, or the client failed."""


def sources() -> list[Path]:
    return [*sorted(GO_DIR.glob("*.go")), PROTO_ROOT / PROTO]


def missing() -> list[str]:
    """What the build needs and this machine lacks (empty when it can build)."""
    lacking = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not (DEBIAN_GOCODE / "src" / "google.golang.org" / "grpc").is_dir():
        lacking.append(str(DEBIAN_GOCODE / "src" / "google.golang.org" / "grpc"))
    return lacking


def _stale() -> bool:
    if not BINARY.exists():
        return True
    built = BINARY.stat().st_mtime
    return any(src.stat().st_mtime > built for src in sources())


def _env(gopath: Path) -> dict[str, str]:
    env = dict(
        os.environ,
        GO111MODULE="off",
        GOPATH=f"{gopath}{os.pathsep}{DEBIAN_GOCODE}",
        GOFLAGS="",
        GOPROXY="off",
        GOTOOLCHAIN="local",
    )
    if "HOME" not in env and "GOCACHE" not in env:
        env["GOCACHE"] = str(REPO / "build" / "go-cache")  # go refuses to run without one
    return env


def _run_tool(cmd: list[str], what: str, **kwargs: Any) -> None:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False, **kwargs
    )
    if proc.returncode != 0:
        raise GrpcClientError(f"{what} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")


def build() -> Path:
    """Return the path of an up-to-date ``build/grpcclient``, building it if needed."""
    if not _stale():
        return BINARY
    lacking = missing()
    if lacking:
        raise GrpcClientError(f"cannot build the Go gRPC client: no {', '.join(lacking)}; "
                              f"{MAKE_HINT}")  # fmt: skip
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    with open(BINARY.parent / ".grpcclient.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _stale():  # another process built it while we waited
            return BINARY
        gopath = WORK / "gopath"
        shutil.rmtree(WORK, ignore_errors=True)
        (gopath / "src").mkdir(parents=True)
        mapping = f"M{PROTO}={GO_PACKAGE}"
        _run_tool(
            [
                "protoc",
                f"--proto_path={PROTO_ROOT}",
                f"--go_out={gopath / 'src'}",
                "--go_opt=paths=source_relative",
                f"--go_opt={mapping}",
                f"--go-grpc_out={gopath / 'src'}",
                "--go-grpc_opt=paths=source_relative",
                f"--go-grpc_opt={mapping}",
                PROTO,
            ],
            "protoc",
        )
        tmp = BINARY.with_name(f".grpcclient.{os.getpid()}")
        try:
            _run_tool(
                ["go", "build", "-o", str(tmp), "."], "go build", cwd=GO_DIR, env=_env(gopath)
            )
            os.replace(tmp, BINARY)
        finally:
            tmp.unlink(missing_ok=True)
    return BINARY


def run(
    args: Sequence[str], *, timeout: float = 60.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``grpcclient ARGS...``; with ``check`` raise GrpcClientError on failure."""
    proc = subprocess.run(
        [str(build()), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise GrpcClientError(
            f"grpcclient {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def run_json(args: Sequence[str], *, timeout: float = 60.0) -> Any:
    """Run a mode that prints one JSON document and return it."""
    return json.loads(run(args, timeout=timeout).stdout)


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The lines ``grpcclient watch -record`` wrote, one dict per Status."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line]


# --- The checks file (gopeer's -checks format) ----------------------------------------------


def _ip_text(raw: bytes) -> str:
    return str(model.ip_from_bytes(raw)) if raw else ""


def config_to_json(config: model.Config) -> dict[str, Any]:
    """One checks-file entry for ``config``. Its Target.proto is not written: the file's
    readers set it by type (so it must be the type's own), and DNS Qclass is always IN."""
    checker = config.checker
    entry: dict[str, Any] = {"id": config.id, "retries": config.retries}
    if config.interval:
        entry["interval"] = format_duration(config.interval)
    if config.timeout:
        entry["timeout"] = format_duration(config.timeout)
    if checker is None:
        return {**entry, "type": "none"}
    t = checker.target
    entry.update(ip=_ip_text(t.ip), host=_ip_text(t.host), port=t.port, mode=t.mode, mark=t.mark)
    if isinstance(checker, model.TCPChecker):
        entry.update(type="tcp_tls" if checker.secure else "tcp", send=checker.send,
                     receive=checker.receive, tls_verify=checker.tls_verify)  # fmt: skip
    elif isinstance(checker, model.HTTPChecker):
        entry.update(type="https" if checker.secure else "http", tls_verify=checker.tls_verify,
                     method=checker.method, proxy=checker.proxy, request=checker.request,
                     response=checker.response, response_code=checker.response_code)  # fmt: skip
    elif isinstance(checker, model.DNSChecker):
        entry.update(type="dns", query=checker.question.name, query_type=checker.question.qtype,
                     answer=checker.answer)  # fmt: skip
    elif isinstance(checker, model.UDPChecker):
        entry.update(type="udp", send=checker.send, receive=checker.receive)
    elif isinstance(checker, model.PingChecker):
        entry.update(type="ping", ping_id=checker.id, ping_seq=checker.seqnum)
    else:
        entry.update(type="radius", username=checker.username, password=checker.password,
                     secret=checker.secret, radius_response=checker.response)  # fmt: skip
    return entry


def config_from_json(entry: dict[str, Any]) -> model.Config:
    """The model Config that a checks-file entry means (IPs in net.ParseIP's 16 bytes)."""
    e: dict[str, Any] = {
        "retries": 0, "ip": "", "host": "", "port": 0, "mode": 0, "mark": 0, "send": "",
        "receive": "", "tls_verify": False, "method": "", "proxy": False, "request": "",
        "response": "", "response_code": 0, "query": "", "query_type": 0, "answer": "",
        "username": "", "password": "", "secret": "", "radius_response": "", "ping_id": 0,
        "ping_seq": 0, **entry,
    }  # fmt: skip
    target = model.Target(
        ip=model.ip_to_bytes(e["ip"]) if e["ip"] else b"",
        host=model.ip_to_bytes(e["host"]) if e["host"] else b"",
        mark=e["mark"],
        mode=e["mode"],
        port=e["port"],
    )
    kind = e["type"]
    checker: model.Checker | None
    if kind in ("tcp", "tcp_tls"):
        target.proto = model.Proto.TCP
        checker = model.TCPChecker(target, e["receive"], e["send"], kind == "tcp_tls",
                                   e["tls_verify"])  # fmt: skip
    elif kind in ("http", "https"):
        target.proto = model.Proto.TCP
        checker = model.HTTPChecker(target, kind == "https", e["tls_verify"], e["method"],
                                    e["proxy"], e["request"], e["response"],
                                    e["response_code"])  # fmt: skip
    elif kind == "dns":
        target.proto = model.Proto.UDP
        question = model.DNSQuestion(e["query"], e["query_type"], 1)
        checker = model.DNSChecker(target, question, e["answer"])
    elif kind == "udp":
        target.proto = model.Proto.UDP
        checker = model.UDPChecker(target, e["receive"], e["send"])
    elif kind == "ping":
        target.proto = model.Proto.ICMP if target.is_ipv4 else model.Proto.ICMPV6
        checker = model.PingChecker(target, e["ping_id"], e["ping_seq"])
    elif kind == "radius":
        target.proto = model.Proto.UDP
        checker = model.RADIUSChecker(target, e["username"], e["password"], e["secret"],
                                      e["radius_response"])  # fmt: skip
    elif kind == "none":
        checker = None
    else:
        raise ValueError(f"unknown type {kind!r}")
    return model.Config(
        id=e["id"],
        interval=parse_duration(e["interval"]) if e.get("interval") else 0,
        timeout=parse_duration(e["timeout"]) if e.get("timeout") else 0,
        retries=e["retries"],
        checker=checker,
    )


def write_checks_file(path: str | os.PathLike[str], entries: list[dict[str, Any]]) -> None:
    Path(path).write_text(json.dumps({"configs": entries}))
