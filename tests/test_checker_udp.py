"""UDP checker against a real loopback echo peer: Seesaw's own table, silence, refusal."""

from __future__ import annotations

import _socket
import socket
import time
from typing import Any

import pytest
from tests.conftest import free_port, run_check
from tests.responders.udp import UDPEchoResponder

from seesaw_healthcheck.checkers import udp
from seesaw_healthcheck.model import Mode, Proto, Target, UDPChecker, ip_to_bytes

HOSTS = ["127.0.0.1", "::1"]

# Seesaw's healthcheck_test.go udpTests: (send, receive, expected success).
SEESAW_UDP_TESTS = [
    ("", "", True),
    ("foo", "foo", True),
    ("foo\n", "foo", True),
    ("foo", "foo\n", False),
    ("foo", "foooo", False),
    ("", "foo", False),
    ("\x00\x01\x02\x03", "\x00\x01\x02\x03", True),
    ("\x00\x01", "\x00\x01\x02\x03", False),
    ("\x00\x01", "\x02", False),
    ("\x00\x01", "", True),
]


def udp_checker(host: str, port: int, **kwargs: Any) -> UDPChecker:
    return UDPChecker(target=Target(ip=ip_to_bytes(host), port=port, proto=Proto.UDP), **kwargs)


@pytest.mark.parametrize("host", HOSTS)
def test_seesaw_udp_table(host: str) -> None:
    with UDPEchoResponder(host) as peer:
        for send, receive, expected in SEESAW_UDP_TESTS:
            result = run_check(udp_checker(host, peer.port, send=send, receive=receive))
            assert result.success is expected, (send, receive, str(result))
        assert len(peer.received) == len(SEESAW_UDP_TESTS)
    # Seesaw's last case: the peer is gone, so the check must fail (port unreachable).
    result = run_check(udp_checker(host, peer.port, send="foo", receive="foo"))
    assert not result.success
    assert "connection refused" in str(result.error)
    assert result.message.endswith("; failed to read response")


def test_messages_follow_seesaw_wording() -> None:
    with UDPEchoResponder("127.0.0.1", reply=b"bar\x00\xff") as peer:
        ok = run_check(udp_checker("127.0.0.1", peer.port, send="x", receive=""))
        assert ok.success and ok.error is None
        assert ok.message == f"UDP check to 127.0.0.1:{peer.port}"
        bad = run_check(udp_checker("127.0.0.1", peer.port, send="x", receive="foooo"))
    assert not bad.success and bad.error is None
    prefix = f"UDP check to 127.0.0.1:{peer.port}"
    assert bad.message == prefix + '; unexpected response - "bar\\x00\\xff"'
    assert str(bad) == bad.message
    assert udp.describe(udp_checker("::1", 53)) == "UDP [::1]:53 PLAIN"


@pytest.mark.parametrize("host", HOSTS)
def test_silent_peer_times_out_within_timeout(host: str) -> None:
    with UDPEchoResponder(host, silent=True) as peer:
        started = time.monotonic()
        result = run_check(udp_checker(host, peer.port, send="ping", receive="pong"), 0.3)
        elapsed = time.monotonic() - started
    assert not result.success
    assert 0.25 <= elapsed < 1.0
    assert str(result.error).endswith(": i/o timeout")
    assert result.message.endswith("; failed to read response")
    assert peer.received == [b"ping"]


def test_datagram_from_another_source_is_ignored() -> None:
    """The peer answers from another port: the connected socket never sees it."""
    with UDPEchoResponder("127.0.0.1", from_other_port=True) as peer:
        result = run_check(udp_checker("127.0.0.1", peer.port, send="x", receive="x"), 0.3)
    assert peer.received == [b"x"]
    assert not result.success
    assert "i/o timeout" in str(result.error)


def test_response_longer_than_receive_compares_prefix() -> None:
    with UDPEchoResponder("::1", reply=b"200 OK and more") as peer:
        assert run_check(udp_checker("::1", peer.port, send="?", receive="200 OK")).success


def test_bad_target_fails_cleanly() -> None:
    result = run_check(UDPChecker(target=Target(ip=b"\x01\x02", port=53)))
    assert not result.success
    assert result.message == "UDP check to <nil>; failed to create socket"
    assert "invalid IP" in str(result.error)


class _MarkSpySocket(_socket.socket):
    """A real socket that records the mark the kernel holds after each SO_MARK set."""

    marks: list[int] = []

    def setsockopt(self, *args: Any) -> None:
        super().setsockopt(*args)
        if args[:2] == (socket.SOL_SOCKET, socket.SO_MARK):
            self.marks.append(self.getsockopt(socket.SOL_SOCKET, socket.SO_MARK))


def test_mark_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """SO_MARK reaches the socket before the send (root here; else the error says so)."""
    # The check makes its sockets with ``_socket.socket`` (looked up at call time in the
    # compiled build too, unlike a function of ``dial``, which compiled code calls directly).
    seen: list[int] = []
    monkeypatch.setattr(_MarkSpySocket, "marks", seen)
    monkeypatch.setattr(_socket, "socket", _MarkSpySocket)
    checker = udp_checker("127.0.0.1", 9, send="x")
    checker.target.mark = 0x2A
    checker.target.mode = Mode.DSR
    result = run_check(checker, 0.3)
    if seen:
        assert seen == [0x2A]
    else:
        assert "failed to set mark" in str(result.error)


def test_a_udp_socket_given_its_own_destination_as_source_does_not_hear_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A local UDP port nobody uses can be given to our socket as its own source port: it
    would read back its own datagram and an echo check would pass. The first socket here
    is bound to the destination itself; the check must take another and fail."""
    port = free_port(socket.SOCK_DGRAM)
    made: list[_socket.socket] = []

    class FirstOneOnTheDestination(_socket.socket):
        # Patched in as ``_socket.socket``: looked up at call time in both builds.
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            if not made:
                self.bind(("127.0.0.1", port))
            made.append(self)

    monkeypatch.setattr(_socket, "socket", FirstOneOnTheDestination)
    result = run_check(udp_checker("127.0.0.1", port, send="ping", receive="ping"), 0.5)
    assert len(made) == 2
    assert not result.success, result
