"""SO_MARK really steers a check: network namespaces with policy routing on the mark.

Topology (all addresses TEST-NET, all inside namespaces this test creates and deletes)::

    client ns                                  backend A ns            backend B ns
    vA 198.51.100.1/30  <-- veth -->  198.51.100.2/30 vC   VIP 192.0.2.10 on lo (answers "A")
    vB 198.51.100.5/30  <-- veth -->  198.51.100.6/30 vC   VIP 192.0.2.10 on lo (answers "B")
    (and the same over IPv6: 2001:db8:a::/64, 2001:db8:b::/64, VIP 2001:db8:ff::10)

In the client namespace the main table sends the VIP to backend B, while
``ip rule add fwmark 7 table 107`` sends packets marked 7 to backend A, as a Seesaw load
balancer steers a DSR/TUN check to one backend by its mark. Both backends serve the VIP
with TCP, HTTP and UDP listeners that answer with their own name, so a check shows which
backend it reached. The checkers run in a child process inside the client namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

VIP4 = "192.0.2.10"
VIP6 = "2001:db8:ff::10"
MARK = 7
TABLE = 107
TCP_PORT, HTTP_PORT, UDP_PORT = 7001, 7080, 7053
PROCESS_TIMEOUT = 15.0

# Runs inside a backend namespace: TCP, HTTP and UDP listeners on both VIPs that answer
# with the backend's name. Prints "ready" once every socket is bound.
BACKEND_CODE = r"""
import socket, sys, threading
name, vips = sys.argv[1], sys.argv[2].split(",")
tcp_port, http_port, udp_port = map(int, sys.argv[3:6])

def listen(vip, port, kind):
    family = socket.AF_INET6 if ":" in vip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((vip, port))
    if kind != "udp":
        sock.listen(64)
    return sock

def serve_tcp(sock):
    while True:
        conn, _ = sock.accept()
        with conn:
            conn.settimeout(2)
            conn.sendall(name.encode() + b"\n")

def serve_http(sock):
    body = name.encode()
    while True:
        conn, _ = sock.accept()
        with conn:
            conn.settimeout(2)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass

def serve_udp(sock):
    while True:
        _, peer = sock.recvfrom(2048)
        sock.sendto(name.encode(), peer)

for vip in vips:
    for port, kind, serve in ((tcp_port, "tcp", serve_tcp), (http_port, "http", serve_http),
                              (udp_port, "udp", serve_udp)):
        threading.Thread(target=serve, args=(listen(vip, port, kind),), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()  # until the test closes our stdin
"""

# Runs inside the client namespace: each spec becomes a model checker in DSR mode and runs
# through seesaw_healthcheck.checkers.run on a reactor; one JSON list of results comes back.
CLIENT_CODE = r"""
import json, sys
from seesaw_healthcheck import checkers
from seesaw_healthcheck.model import (HTTPChecker, Mode, Proto, TCPChecker, Target,
                                      UDPChecker, ip_to_bytes)
from seesaw_healthcheck.reactor import Reactor

kinds = {"tcp": (TCPChecker, Proto.TCP), "http": (HTTPChecker, Proto.TCP),
         "udp": (UDPChecker, Proto.UDP)}
results = []
reactor = Reactor()
try:
    for spec in json.loads(sys.argv[1]):
        cls, proto = kinds[spec["kind"]]
        target = Target(ip=ip_to_bytes(spec["vip"]), host=ip_to_bytes(spec["host"]),
                        mark=spec["mark"], mode=Mode.DSR, port=spec["port"], proto=proto)
        checker = cls(target=target, **spec["fields"])
        result = reactor.run(checkers.run(checker, 2.0), timeout=5.0)
        results.append({"success": result.success, "text": str(result)})
finally:
    reactor.close()
print(json.dumps(results))
"""

# A control that needs nothing of ours: plain sockets show the routing itself works.
RAW_CLIENT_CODE = r"""
import json, socket, sys
out = []
for vip, port, mark in json.loads(sys.argv[1]):
    family = socket.AF_INET6 if ":" in vip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)
        sock.connect((vip, port))
        out.append(sock.recv(16).decode().strip())
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Topology:
    client: str
    backend_a: str
    backend_b: str


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _build(topo: Topology) -> None:
    c, a, b = topo.client, topo.backend_a, topo.backend_b
    for ns in (c, a, b):
        _ip("-n", ns, "link", "set", "lo", "up")
    # Each veth is created inside the client namespace, its peer moved straight into the
    # backend's, so the names never meet the host's (or a parallel run's) interfaces.
    links = (
        ("vA", a, "198.51.100.1/30", "198.51.100.2/30", "2001:db8:a::1/64", "2001:db8:a::2/64"),
        ("vB", b, "198.51.100.5/30", "198.51.100.6/30", "2001:db8:b::1/64", "2001:db8:b::2/64"),
    )
    for link, peer_ns, near4, far4, near6, far6 in links:
        _ip("-n", c, "link", "add", link, "type", "veth", "peer", "name", "vC", "netns", peer_ns)
        _ip("-n", c, "addr", "add", near4, "dev", link)
        _ip("-n", peer_ns, "addr", "add", far4, "dev", "vC")
        _ip("-n", c, "-6", "addr", "add", near6, "dev", link, "nodad")
        _ip("-n", peer_ns, "-6", "addr", "add", far6, "dev", "vC", "nodad")
        _ip("-n", c, "link", "set", link, "up")
        _ip("-n", peer_ns, "link", "set", "vC", "up")
        _ip("-n", peer_ns, "addr", "add", f"{VIP4}/32", "dev", "lo")
        _ip("-n", peer_ns, "-6", "addr", "add", f"{VIP6}/128", "dev", "lo", "nodad")
    # Unmarked: main table, to backend B. Marked 7: table 107, to backend A.
    _ip("-n", c, "route", "add", f"{VIP4}/32", "via", "198.51.100.6", "dev", "vB")
    _ip("-n", c, "route", "add", f"{VIP4}/32", "via", "198.51.100.2", "dev", "vA",
        "table", str(TABLE))  # fmt: skip
    _ip("-n", c, "-6", "route", "add", f"{VIP6}/128", "via", "2001:db8:b::2", "dev", "vB")
    _ip("-n", c, "-6", "route", "add", f"{VIP6}/128", "via", "2001:db8:a::2", "dev", "vA",
        "table", str(TABLE))  # fmt: skip
    _ip("-n", c, "rule", "add", "fwmark", str(MARK), "table", str(TABLE))
    _ip("-n", c, "-6", "rule", "add", "fwmark", str(MARK), "table", str(TABLE))
    # Replies from A come back on vA although unmarked lookups point the VIP at vB: turn
    # off reverse-path filtering in the client namespace so they are not dropped.
    for conf in ("all", "default", "vA", "vB"):
        subprocess.run(
            ["ip", "netns", "exec", c, "sysctl", "-q", "-w", f"net.ipv4.conf.{conf}.rp_filter=0"],
            capture_output=True, timeout=10, check=False,
        )  # fmt: skip


def _netns_run(ns: str, code: str, arg: str) -> object:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", code, arg],
        capture_output=True, text=True, timeout=PROCESS_TIMEOUT, env=env,
    )  # fmt: skip
    assert done.returncode == 0, f"in {ns}: {done.stderr.strip()}"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed")
    tag = uuid.uuid4().hex[:8]
    topo = Topology(f"ssw-{tag}-c", f"ssw-{tag}-a", f"ssw-{tag}-b")
    created: list[str] = []
    servers: list[subprocess.Popen[str]] = []
    try:
        for ns in (topo.client, topo.backend_a, topo.backend_b):
            try:
                _ip("netns", "add", ns)
            except RuntimeError as err:
                pytest.skip(f"cannot create network namespaces: {err}")
            created.append(ns)
        _build(topo)
        for ns, name in ((topo.backend_a, "A"), (topo.backend_b, "B")):
            server = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-c", BACKEND_CODE, name,
                 f"{VIP4},{VIP6}", str(TCP_PORT), str(HTTP_PORT), str(UDP_PORT)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            servers.append(server)
            assert server.stdout is not None
            line = server.stdout.readline()
            if line.strip() != "ready":
                _, err = server.communicate(timeout=5)
                raise RuntimeError(f"backend {name} did not start: {err.strip()}")
        yield topo
    finally:
        for server in servers:
            if server.stdin is not None:
                server.stdin.close()
            server.kill()
            server.wait(timeout=5)
            for stream in (server.stdout, server.stderr):
                if stream is not None:
                    stream.close()
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


@pytest.mark.parametrize("vip", [VIP4, VIP6])
def test_kernel_routes_by_mark(topology: Topology, vip: str) -> None:
    """Control: with plain sockets, mark 7 reaches A and no mark reaches B."""
    got = _netns_run(
        topology.client, RAW_CLIENT_CODE, json.dumps([[vip, TCP_PORT, MARK], [vip, TCP_PORT, 0]])
    )
    assert got == ["A", "B"]


def _spec(kind: str, vip: str, mark: int, **fields: object) -> dict[str, object]:
    port = {"tcp": TCP_PORT, "http": HTTP_PORT, "udp": UDP_PORT}[kind]
    host = "198.51.100.2" if ":" not in vip else "2001:db8:a::2"
    return {"kind": kind, "vip": vip, "host": host, "mark": mark, "port": port,
            "fields": fields}  # fmt: skip


@pytest.mark.parametrize("vip", [VIP4, VIP6])
def test_marked_checks_reach_backend_a_and_unmarked_reach_b(topology: Topology, vip: str) -> None:
    specs = [
        _spec("tcp", vip, MARK, receive="A"),
        _spec("tcp", vip, 0, receive="A"),
        _spec("tcp", vip, 0, receive="B"),
        _spec("http", vip, MARK, method="GET", request="/", response="A", response_code=200),
        _spec("http", vip, 0, method="GET", request="/", response="A", response_code=200),
        _spec("udp", vip, MARK, send="ping", receive="A"),
        _spec("udp", vip, 0, send="ping", receive="A"),
    ]
    results = _netns_run(topology.client, CLIENT_CODE, json.dumps(specs))
    assert isinstance(results, list)
    verdicts = [r["success"] for r in results]
    texts = [r["text"] for r in results]
    assert verdicts == [True, False, True, True, False, True, False], texts


def test_probe_mark_flag_steers(topology: Topology) -> None:
    """``seesaw-healthcheck-probe -mark 7`` inside the client namespace reaches A."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    codes = []
    for mark in (MARK, 0):
        done = subprocess.run(
            ["ip", "netns", "exec", topology.client, sys.executable, "-m",
             "seesaw_healthcheck.cli.probe", "-type", "tcp", "-ip", VIP4,
             "-port", str(TCP_PORT), "-mark", str(mark), "-receive", "A", "-timeout", "2s"],
            capture_output=True, text=True, timeout=PROCESS_TIMEOUT, env=env,
        )  # fmt: skip
        codes.append((done.returncode, done.stdout.strip().splitlines()[0]))
    assert [code for code, _ in codes] == [0, 1], codes
    assert 'unexpected response - "B"' in codes[1][1]
