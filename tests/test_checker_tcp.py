"""TCP checker against real loopback peers: Seesaw's own table, TLS, timeouts, fds."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from typing import Any

import pytest
import trustme
from tests.conftest import full_accept_queue, run_check
from tests.responders.http import tls_server_context
from tests.responders.tcp import TCPResponder

from seesaw_healthcheck import checkers
from seesaw_healthcheck.checkers.base import Result
from seesaw_healthcheck.model import Mode, Proto, Target, TCPChecker, ip_to_bytes
from seesaw_healthcheck.reactor import Reactor

HOSTS = ["127.0.0.1", "::1"]


def tcp_checker(host: str, port: int, **kwargs: Any) -> TCPChecker:
    return TCPChecker(target=Target(ip=ip_to_bytes(host), port=port, proto=Proto.TCP), **kwargs)


def free_port(host: str) -> int:
    """A port nothing listens on (bound then closed)."""
    with TCPResponder(host) as responder:
        port = responder.port
    return port


# Seesaw's healthcheck_test.go tcpTests: (send, receive, expected success).
SEESAW_TCP_TESTS = [
    ("", "", True),
    ("foo", "foo", True),
    ("foo\n", "foo", True),
    ("foo", "foo\n", False),
    ("foo", "foooo", False),
    ("", "foo", False),
]


@pytest.mark.parametrize("host", HOSTS)
def test_seesaw_tcp_table(host: str) -> None:
    with TCPResponder(host) as echo:
        for send, receive, expected in SEESAW_TCP_TESTS:
            result = run_check(tcp_checker(host, echo.port, send=send, receive=receive), 0.25)
            assert result.success is expected, (send, receive, str(result))
            addr = f"{host}:{echo.port}" if ":" not in host else f"[{host}]:{echo.port}"
            assert result.message.startswith(f"TCP connect to {addr}")
            assert result.duration_ns > 0


@pytest.mark.parametrize("host", HOSTS)
def test_closed_port_fails_to_connect(host: str) -> None:
    port = free_port(host)
    result = run_check(tcp_checker(host, port))
    assert not result.success
    assert result.message.endswith("; failed to connect")
    network = "tcp4" if ":" not in host else "tcp6"
    assert str(result).startswith(f"dial {network} ")
    assert str(result).endswith("connect: connection refused")


def test_messages_follow_seesaw_wording() -> None:
    with TCPResponder("127.0.0.1", reply=b"\x00bar\xff") as peer:
        result = run_check(tcp_checker("127.0.0.1", peer.port, send="x", receive="foooo"))
        assert not result.success
        assert result.message == (
            f'TCP connect to 127.0.0.1:{peer.port}; unexpected response - "\\x00bar\\xff"'
        )
        assert str(result) == result.message  # no error: the message is the text
    with TCPResponder("127.0.0.1", reply=b"ab") as peer:
        result = run_check(tcp_checker("127.0.0.1", peer.port, send="x", receive="abcd"), 0.3)
        assert result.message.endswith("; failed to read response")


def test_early_close_is_eof() -> None:
    with TCPResponder("127.0.0.1", close_on_accept=True) as peer:
        result = run_check(tcp_checker("127.0.0.1", peer.port, receive="foo"))
    assert not result.success
    assert result.message.endswith("; failed to read response")
    assert str(result) in ("EOF", "unexpected EOF") or "connection reset" in str(result)


def test_greeting_without_send() -> None:
    with TCPResponder("::1", greeting=b"220 ready\r\n") as peer:
        assert run_check(tcp_checker("::1", peer.port, receive="220 ")).success
        assert not run_check(tcp_checker("::1", peer.port, receive="500 ")).success


def test_silent_peer_times_out_within_timeout() -> None:
    with TCPResponder("127.0.0.1", silent=True) as peer:
        start = time.monotonic()
        result = run_check(tcp_checker("127.0.0.1", peer.port, send="hi", receive="x"), 0.2)
        took = time.monotonic() - start
    assert not result.success
    assert result.message.endswith("; failed to read response")
    assert str(result).endswith(": i/o timeout") and str(result).startswith("read tcp4 ")
    assert 0.15 <= took < 1.0


def test_connect_that_never_completes_times_out() -> None:
    # A loopback listener whose accept queue is full drops further SYNs: connect() hangs.
    with full_accept_queue() as port:
        start = time.monotonic()
        result = run_check(tcp_checker("127.0.0.1", port), 0.2)
        took = time.monotonic() - start
    assert not result.success
    assert result.message == f"TCP connect to 127.0.0.1:{port}; failed to connect"
    assert "i/o timeout" in str(result)
    assert 0.15 <= took < 1.0


@pytest.mark.parametrize("host", HOSTS)
def test_tls_verify_off_passes_and_untrusted_verify_fails(ca: trustme.CA, host: str) -> None:
    with TCPResponder(host, tls=tls_server_context(ca, host)) as peer:
        ok = run_check(tcp_checker(host, peer.port, secure=True, send="ping", receive="ping"))
        assert ok.success, str(ok)
        bad = run_check(tcp_checker(host, peer.port, secure=True, tls_verify=True))
        assert not bad.success
        assert str(bad) == "x509: certificate signed by unknown authority"


@pytest.mark.parametrize("host", HOSTS)
def test_tls_verify_on_with_trusted_ca(trusted_ca: trustme.CA, host: str) -> None:
    with TCPResponder(host, tls=tls_server_context(trusted_ca, host)) as peer:
        ok = run_check(
            tcp_checker(host, peer.port, secure=True, tls_verify=True, send="a", receive="a")
        )
        assert ok.success, str(ok)
    # A certificate for another name fails verification even from a trusted CA.
    with TCPResponder(host, tls=tls_server_context(trusted_ca, "other.example")) as peer:
        bad = run_check(tcp_checker(host, peer.port, secure=True, tls_verify=True))
        assert not bad.success
        assert str(bad).startswith("x509: certificate is not valid for")


def test_tls_against_plain_server_fails() -> None:
    with TCPResponder("127.0.0.1", reply=b"HTTP/1.0 400 Bad Request\r\n\r\n") as peer:
        result = run_check(tcp_checker("127.0.0.1", peer.port, secure=True), 0.5)
    assert not result.success
    assert result.message == f"TCP connect to 127.0.0.1:{peer.port}"


def test_sni_override(trusted_ca: trustme.CA) -> None:
    with TCPResponder("127.0.0.1", tls=tls_server_context(trusted_ca, "svc.example")) as peer:
        checker = tcp_checker("127.0.0.1", peer.port, secure=True, tls_verify=True)
        with Reactor() as reactor:
            from seesaw_healthcheck.checkers import tcp

            result = reactor.run(tcp.check(checker, 1.0, sni="svc.example"), timeout=2)
        assert result.success, str(result)


def test_mark_is_set_or_reported() -> None:
    with TCPResponder("127.0.0.1") as peer:
        checker = tcp_checker("127.0.0.1", peer.port)
        checker.target.mark = 7
        checker.target.mode = Mode.DSR
        result = run_check(checker)
    if os.geteuid() == 0:
        assert result.success, str(result)
    else:
        assert "failed to set mark" in str(result)


def test_describe_matches_go() -> None:
    checker = tcp_checker("10.0.0.1", 443, secure=True, tls_verify=True)
    assert checkers.describe(checker) == "TCP [secure; verify] 10.0.0.1:443 PLAIN"
    checker = tcp_checker("::1", 80)
    checker.target.mode = Mode.DSR
    checker.target.host = ip_to_bytes("10.1.1.1")
    checker.target.mark = 3
    assert checkers.describe(checker) == "TCP [::1]:80 DSR (via 10.1.1.1 mark 3)"


def fd_count() -> int:
    """Open sockets of this process (pytest's own capture files and pipes come and go)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
    return count


def client_sockets_to(ports: set[int]) -> int:
    """Open sockets of this process whose peer is one of ``ports`` (the checker side)."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if sock.getpeername()[1] in ports:
                count += 1
        except (OSError, IndexError, TypeError):
            pass
        finally:
            sock.close()
    return count


def test_no_fd_leaks_on_any_path(ca: trustme.CA) -> None:
    with (
        TCPResponder("127.0.0.1") as echo,
        TCPResponder("127.0.0.1", silent=True) as silent,
        TCPResponder("127.0.0.1", tls=tls_server_context(ca, "127.0.0.1")) as secure,
    ):
        closed = free_port("127.0.0.1")
        cases = [
            tcp_checker("127.0.0.1", echo.port, send="a", receive="a"),
            tcp_checker("127.0.0.1", echo.port, send="a", receive="b"),
            tcp_checker("127.0.0.1", silent.port, send="a", receive="b"),
            tcp_checker("127.0.0.1", closed),
            tcp_checker("127.0.0.1", secure.port, secure=True),
            tcp_checker("127.0.0.1", secure.port, secure=True, tls_verify=True),
        ]
        with Reactor() as reactor:
            reactor.run(checkers.run(cases[0], 1.0))  # warm up lazy imports and contexts
            before = fd_count()
            results: list[object] = []
            now = reactor.time()
            for _ in range(20):
                for checker in cases:
                    reactor.spawn(checkers.run(checker, 0.1), on_done=results.append)
            # Cancelled mid-flight: their finally blocks must close the sockets too.
            doomed = [reactor.spawn(checkers.run(cases[2], 5.0)) for _ in range(20)]
            reactor.call_at(now + 0.05, lambda: [task.cancel() for task in doomed])
            reactor.call_at(now + 0.5, reactor.stop)
            reactor.run_forever()
            assert len(results) == 20 * len(cases)
            assert all(isinstance(r, Result) for r in results)
            # The responders share this process: their fds come and go on their threads,
            # so count the checker's side precisely and the total loosely.
            assert client_sockets_to({echo.port, silent.port, secure.port}) == 0
            give_up = time.monotonic() + 3
            while fd_count() > before and time.monotonic() < give_up:
                time.sleep(0.02)  # responder threads closing their ends
            assert fd_count() <= before


def test_unknown_checker_type_is_a_failure_not_an_exception() -> None:
    result = run_check(object())
    assert not result.success
    assert "unsupported checker type" in str(result)


@pytest.mark.parametrize("host", HOSTS)
def test_silent_peer_during_tls_handshake_times_out(host: str) -> None:
    with TCPResponder(host, silent=True) as peer:
        start = time.monotonic()
        result = run_check(tcp_checker(host, peer.port, secure=True), 0.2)
        took = time.monotonic() - start
    assert not result.success
    assert str(result).endswith(": i/o timeout")
    assert 0.15 <= took < 1.0
