"""ICMP ping checker: message bytes, and real echoes from 127.0.0.1 and ::1 on the
shared socket (raw as root; the datagram-socket path in a private network namespace)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from seesaw_healthcheck import checkers
from seesaw_healthcheck.checkers import ping
from seesaw_healthcheck.checkers.base import Result
from seesaw_healthcheck.model import PingChecker, Proto, Target, ip_to_bytes
from seesaw_healthcheck.reactor import Reactor, sleep

HOSTS = ["127.0.0.1", "::1"]
# Silent targets live only inside network namespaces these tests create, never on the
# host's network: there a veth whose peer owns no address leaves ARP/ND unanswered.
SILENT_NET = {"127.0.0.1": ("192.0.2.1/24", "192.0.2.2"), "::1": ("2001:db8::1/64", "2001:db8::2")}
NETNS_PROCESS_TIMEOUT = 15.0


def icmp_unavailable() -> str | None:
    for family, proto in ((socket.AF_INET, socket.IPPROTO_ICMP), (socket.AF_INET6, 58)):
        for kind in (socket.SOCK_RAW, socket.SOCK_DGRAM):
            try:
                socket.socket(family, kind, proto).close()
                break
            except OSError as error:
                reason = f"no ICMP socket for {family.name}: {error}"
        else:
            return reason
    return None


pytestmark = pytest.mark.skipif(icmp_unavailable() is not None, reason=str(icmp_unavailable()))


def ping_checker(host: str, ident: int = 0x1234, seq: int = 7, mark: int = 0) -> PingChecker:
    proto = Proto.ICMPV6 if ":" in host else Proto.ICMP
    return PingChecker(
        target=Target(ip=ip_to_bytes(host), proto=proto, mark=mark), id=ident, seqnum=seq
    )


@pytest.fixture
def reactor() -> Iterator[Reactor]:
    with Reactor() as r:
        yield r
        ping.close_sockets(r)


def run_all(reactor: Reactor, cs: list[PingChecker], timeout_s: float) -> list[Result]:
    results: dict[int, Result] = {}

    async def main() -> None:
        for n, checker in enumerate(cs):
            reactor.spawn(
                checkers.run(checker, timeout_s), on_done=lambda r, n=n: results.__setitem__(n, r)
            )
        while len(results) < len(cs):
            await sleep(0.005)

    reactor.run(main(), timeout=timeout_s + 2)
    return [results[n] for n in range(len(cs))]


# --- Messages ------------------------------------------------------------------------


def go_echo_request(ipv6: bool, ident: int, seq: int) -> bytes:
    """Seesaw's newICMPEchoRequest, from its description: 64 bytes, 'Healthcheck' x4."""
    body = bytearray(64)
    filler = b"Healthcheck" * ((64 - 8) // 12)
    body[8 : 8 + len(filler)] = filler
    body[0] = 128 if ipv6 else 8
    body[4:8] = struct.pack("!HH", ident, seq)
    if not ipv6:
        total = sum(struct.unpack("!32H", bytes(body)))
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        body[2:4] = struct.pack("!H", ~total & 0xFFFF)
    return bytes(body)


@pytest.mark.parametrize("ipv6", [False, True])
def test_request_is_seesaws_with_the_token_in_its_zero_tail(ipv6: bool) -> None:
    zero_token = ping.build_echo_request(ipv6, 0xBEEF, 0x0102, b"\x00" * 8)
    assert zero_token == go_echo_request(ipv6, 0xBEEF, 0x0102)
    tokened = ping.build_echo_request(ipv6, 0xBEEF, 0x0102, b"12345678")
    assert tokened[-8:] == b"12345678" and tokened[8:52] == zero_token[8:52]
    if not ipv6:
        assert ping.icmp_checksum(tokened) == 0


def test_parse_reply_with_ip_header_and_checksum() -> None:
    request = ping.build_echo_request(False, 9, 10, b"abcdefgh")
    reply = bytearray(request)
    reply[0] = 0
    reply[2:4] = b"\x00\x00"
    reply[2:4] = struct.pack("!H", ping.icmp_checksum(bytes(reply)))
    header = bytes([0x45, 0, 0, 84]) + b"\x00" * 16
    parsed = ping.parse_echo_reply(header + bytes(reply), ipv6=False, ip_header=True)
    assert parsed == ping.EchoReply(9, 10, parsed.checksum if parsed else 0, True, b"abcdefgh")
    reply[20] ^= 0xFF  # corrupt the payload
    bad = ping.parse_echo_reply(bytes(reply), ipv6=False, ip_header=False)
    assert bad is not None and not bad.checksum_ok
    assert ping.parse_echo_reply(request, ipv6=False, ip_header=False) is None  # a request
    assert ping.parse_echo_reply(b"\x00" * 7, ipv6=False, ip_header=False) is None


# --- Live ----------------------------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
def test_ping_loopback(reactor: Reactor, host: str) -> None:
    checker = ping_checker(host, seq=0xFFFF)
    result = reactor.run(checkers.run(checker, 1.0))
    assert result.success, str(result)
    assert result.message == f"ICMP ping to host {host}" and result.error is None
    assert checker.seqnum == 0  # the next check uses the next sequence number, wrapping
    assert reactor.run(checkers.run(checker, 1.0)).success
    assert checker.seqnum == 1
    assert ping.describe(checker) == f"PING {host}"


def test_concurrent_pings_share_one_socket_and_keep_their_replies(reactor: Reactor) -> None:
    """Same target, same ID and Seqnum, 2x40 at once: each gets its own reply; one socket
    per family. (A silent target with the same ID/Seqnum: see the network-namespace test.)"""
    cs = [ping_checker(h, ident=1, seq=1) for h in HOSTS for _ in range(40)]
    results = run_all(reactor, cs, 0.5)
    assert all(r.success for r in results), [str(r) for r in results if not r.success]
    sockets = ping.open_sockets(reactor)
    assert sorted(s.family for s in sockets) == [socket.AF_INET, socket.AF_INET6]
    assert all(not s.waiters for s in sockets)


# --- Silent targets, inside network namespaces this module creates ------------------------

# Runs inside a test namespace: argv[1] is {"timeout": s, "checks": [[host, id, seq], ...]}.
# All checks run at once through checkers.run on one Reactor; prints one JSON list of
# results, each with the seconds from the common start to that check's end.
NETNS_PING_CODE = r"""
import json, sys, time
from seesaw_healthcheck import checkers
from seesaw_healthcheck.checkers import ping
from seesaw_healthcheck.model import PingChecker, Proto, Target, ip_to_bytes
from seesaw_healthcheck.reactor import Reactor, sleep

job = json.loads(sys.argv[1])
timeout_s, specs = job["timeout"], job["checks"]
done = {}
with Reactor() as reactor:
    async def main():
        start = time.monotonic()
        for n, (host, ident, seq) in enumerate(specs):
            proto = Proto.ICMPV6 if ":" in host else Proto.ICMP
            checker = PingChecker(target=Target(ip=ip_to_bytes(host), proto=proto),
                                  id=ident, seqnum=seq)
            def finished(result, n=n):
                done[n] = (result, time.monotonic() - start)
            reactor.spawn(checkers.run(checker, timeout_s), on_done=finished)
        while len(done) < len(specs):
            await sleep(0.002)
    reactor.run(main(), timeout=timeout_s + 5)
    ping.close_sockets(reactor)
print(json.dumps([
    {"host": specs[n][0], "success": r.success, "message": r.message,
     "error": None if r.error is None else str(r.error), "text": str(r), "elapsed_s": t}
    for n, (r, t) in sorted(done.items())
]))
"""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _netns_exec(ns: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        capture_output=True, text=True, timeout=NETNS_PROCESS_TIMEOUT, env=env,
    )  # fmt: skip


def _netns_ping(ns: str, timeout_s: float, checks: list[tuple[str, int, int]]) -> list[Any]:
    job = json.dumps({"timeout": timeout_s, "checks": checks})
    done = _netns_exec(ns, sys.executable, "-c", NETNS_PING_CODE, job)
    assert done.returncode == 0, f"in {ns}: {done.stderr.strip()}"
    results = json.loads(done.stdout)
    assert isinstance(results, list) and len(results) == len(checks), done.stdout
    return results


def _namespace(kind: str, setup: Callable[[str], None]) -> Iterator[str]:
    """A fresh namespace with lo up, prepared by ``setup``; always deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed")
    ns = f"ssw-ping-{kind}-{uuid.uuid4().hex[:8]}"
    try:
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        setup(ns)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def _ignore_echoes(ns: str) -> None:
    for knob in ("net.ipv4.icmp_echo_ignore_all", "net.ipv6.icmp.echo_ignore_all"):
        done = _netns_exec(ns, "sysctl", "-w", f"{knob}=1")
        assert done.returncode == 0, f"sysctl {knob} in {ns}: {done.stderr.strip()}"


def _add_silent_link(ns: str) -> None:
    # Both ends stay in the namespace; only silent0 has addresses, so nothing claims the
    # targets and their packets die waiting for ARP/ND (no dummy module needed).
    _ip("-n", ns, "link", "add", "silent0", "type", "veth", "peer", "name", "silent1")
    for local, _ in SILENT_NET.values():
        _ip("-n", ns, "addr", "add", local, "dev", "silent0", *(["nodad"] if ":" in local else []))
    for link in ("silent0", "silent1"):
        _ip("-n", ns, "link", "set", link, "up")


@pytest.fixture(scope="module")
def deaf_netns() -> Iterator[str]:
    """Loopback up, but the kernel answers no echo request, IPv4 or IPv6."""
    yield from _namespace("deaf", _ignore_echoes)


@pytest.fixture(scope="module")
def silent_link_netns() -> Iterator[str]:
    """Loopback answers; SILENT_NET's targets are on a link where nobody answers."""
    yield from _namespace("link", _add_silent_link)


@pytest.mark.parametrize("host", HOSTS)
def test_unanswered_echo_fails_by_timeout(deaf_netns: str, host: str) -> None:
    """The request goes out on loopback and no reply ever comes: a real read timeout."""
    timeout_s = 0.3
    (result,) = _netns_ping(deaf_netns, timeout_s, [(host, 0x1234, 7)])
    assert not result["success"], result
    assert result["message"] == f"ICMP ping to host {host}", result
    local = "::" if ":" in host else "0.0.0.0"
    assert result["error"] == f"read ip{6 if ':' in host else 4} {local}: i/o timeout", result
    assert timeout_s <= result["elapsed_s"] < timeout_s + 0.1, result


def test_silent_target_with_the_same_id_and_seq_gets_no_reply(silent_link_netns: str) -> None:
    """Loopback checks and checks of silent targets, all with the same ID and Seqnum, at
    once: the loopback replies go to their own checks only; the silent ones time out."""
    timeout_s = 0.3
    checks = [(h, 1, 1) for h in HOSTS for _ in range(5)]
    checks += [(SILENT_NET[h][1], 1, 1) for h in HOSTS]
    results = _netns_ping(silent_link_netns, timeout_s, checks)
    answered, silent = results[: 2 * 5], results[2 * 5 :]
    assert all(r["success"] for r in answered), [r["text"] for r in answered]
    assert not any(r["success"] for r in silent), silent
    assert all("i/o timeout" in str(r["error"]) for r in silent), silent
    assert all(r["elapsed_s"] < timeout_s + 0.1 for r in silent), silent


def test_mark_gets_its_own_socket(reactor: Reactor) -> None:
    result = reactor.run(checkers.run(ping_checker("127.0.0.1", mark=0x55), 1.0))
    if not result.success:
        assert "mark" in str(result.error)
        return
    (marked,) = [s for s in ping.open_sockets(reactor) if s.mark == 0x55]
    assert marked.sock.getsockopt(socket.SOL_SOCKET, socket.SO_MARK) == 0x55
    assert reactor.run(checkers.run(ping_checker("127.0.0.1"), 1.0)).success
    assert len(ping.open_sockets(reactor)) == 2


def test_idle_socket_is_closed(reactor: Reactor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ping, "IDLE_CLOSE_S", 0.05)
    assert reactor.run(checkers.run(ping_checker("127.0.0.1"), 1.0)).success
    (shared,) = ping.open_sockets(reactor)

    async def wait() -> None:
        await sleep(0.2)

    reactor.run(wait())
    assert shared.closed and shared.sock.fileno() == -1
    assert ping.open_sockets(reactor) == []


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_closing_the_reactor_closes_its_icmp_sockets() -> None:
    """Without ping.close_sockets: Reactor.close() closes them (and their fds)."""
    before = open_fds()
    reactor = Reactor()
    for host in HOSTS:
        assert reactor.run(checkers.run(ping_checker(host), 1.0)).success
    sockets = ping.open_sockets(reactor)
    assert len(sockets) == 2 and open_fds() - before
    reactor.close()
    assert all(s.closed and s.sock.fileno() == -1 for s in sockets)
    assert ping.open_sockets(reactor) == []
    assert open_fds() == before


def test_sockets_closed_before_the_reactor_leave_no_close_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Closed by the idle timer or close_sockets, a socket unregisters its close hook:
    a long-running reactor does not collect one per socket it ever opened."""
    monkeypatch.setattr(ping, "IDLE_CLOSE_S", 0.05)
    with Reactor() as reactor:
        assert reactor.run(checkers.run(ping_checker("127.0.0.1"), 1.0)).success
        assert reactor.run(checkers.run(ping_checker("::1"), 1.0)).success
        idle, other = sorted(ping.open_sockets(reactor), key=lambda s: s.ipv6)
        assert len(reactor._on_close) == 2
        idle.last_used = other.last_used = reactor.time()

        async def keep_one_busy() -> None:  # ::1 keeps pinging, 127.0.0.1 goes idle
            for _ in range(6):
                await sleep(0.04)
                other.last_used = reactor.time()

        reactor.run(keep_one_busy())
        assert idle.closed and not other.closed
        assert list(reactor._on_close) == [other.close]
        ping.close_sockets(reactor)
        assert other.closed and not reactor._on_close


DGRAM_SCRIPT = textwrap.dedent(
    """
    import socket
    from seesaw_healthcheck import checkers
    from seesaw_healthcheck.checkers import ping
    from seesaw_healthcheck.model import PingChecker, Target, ip_to_bytes
    from seesaw_healthcheck.reactor import Reactor
    with Reactor() as reactor:
        for host in ("127.0.0.1", "::1"):
            checker = PingChecker(target=Target(ip=ip_to_bytes(host)), id=4242, seqnum=3)
            result = reactor.run(checkers.run(checker, 1.0))
            (shared,) = [s for s in ping.open_sockets(reactor) if s.ipv6 == (":" in host)]
            own_id = shared.kernel_id == shared.sock.getsockname()[1]
            print(host, result.success, shared.raw, own_id, result)
        ping.close_sockets(reactor)
    """
)


@pytest.mark.skipif(
    not (shutil.which("unshare") and shutil.which("setpriv")), reason="no unshare/setpriv"
)
def test_unprivileged_datagram_socket(tmp_path: Path) -> None:
    """Without CAP_NET_RAW, in a fresh network namespace whose ping_group_range allows us."""
    script = tmp_path / "dgram.py"
    script.write_text(DGRAM_SCRIPT)
    shell = (
        "ip link set lo up && sysctl -qw net.ipv4.ping_group_range='0 2147483647' && "
        f"exec setpriv --inh-caps=-net_raw --bounding-set=-net_raw {sys.executable} {script}"
    )
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", shell], capture_output=True, text=True, timeout=30
    )
    if proc.returncode != 0 and "unshare" in proc.stderr:
        pytest.skip(f"cannot make a network namespace: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split()[:4] for line in lines] == [
        ["127.0.0.1", "True", "False", "True"],
        ["::1", "True", "False", "True"],
    ], proc.stdout


def run_check(checker: Any, timeout_s: float = 1.0) -> Result:
    with Reactor() as reactor:
        try:
            return reactor.run(checkers.run(checker, timeout_s))
        finally:
            ping.close_sockets(reactor)


def test_bad_target_fails_cleanly() -> None:
    result = run_check(PingChecker(target=Target(ip=b"")))
    assert not result.success and result.message == "ICMP ping to host <nil>"
    assert "invalid IP" in str(result.error)
