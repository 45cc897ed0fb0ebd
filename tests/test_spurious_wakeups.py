"""Each guard against false verdicts from events that do not belong to the socket waiting.

A stale epoll registration is made the way it happened in production: a task waits on a
socket (a one-shot registration, armed), the socket is closed while another reference to
its file stays open (a forked child's copy did that), and a new socket takes its fd
number. When the old file becomes ready, the event arrives under that number and wakes
whoever waits on it now.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from tests.conftest import free_port, full_accept_queue

from seesaw_healthcheck import checkers
from seesaw_healthcheck.checkers import dial
from seesaw_healthcheck.model import HTTPChecker, Target, TCPChecker, ip_to_bytes
from seesaw_healthcheck.reactor import Reactor, current_reactor, readable, writable


class StaleRegistration:
    """An armed registration for fd number ``fd`` whose file this process no longer uses.

    ``direction`` "in": ``fire()`` makes the old file readable; "out": the old file's send
    buffer starts full and ``fire()`` drains it, making it writable.
    """

    def __init__(self, reactor: Reactor, direction: str) -> None:
        old, self.peer = socket.socketpair()
        old.setblocking(False)
        self.peer.setblocking(False)
        self.direction = direction
        if direction == "out":
            old.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                while True:
                    old.send(b"x" * 4096)
            except BlockingIOError:
                pass

        async def wait() -> None:
            await (readable(old) if direction == "in" else writable(old))

        reactor.spawn(wait()).cancel()  # registered and armed; nobody waits any more
        self.fd = old.fileno()
        self._other_reference = os.dup(self.fd)  # what the forked child held
        old.close()

    def fire(self) -> None:
        if self.direction == "in":
            self.peer.send(b"late")
        else:
            try:
                while self.peer.recv(65536):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        os.close(self._other_reference)
        self.peer.close()


@contextmanager
def stale_registration(reactor: Reactor, direction: str) -> Iterator[StaleRegistration]:
    stale = StaleRegistration(reactor, direction)
    try:
        # The next socket made here takes the stale number (the lowest free fd).
        probe = socket.socket()
        assert probe.fileno() == stale.fd
        probe.close()
        yield stale
    finally:
        stale.close()


def loopback(port: int) -> Target:
    return Target(ip=ip_to_bytes("127.0.0.1"), port=port, proto=6)


def test_a_spurious_writable_wakeup_does_not_end_a_connect() -> None:
    with Reactor() as reactor, full_accept_queue() as port:
        stale = StaleRegistration(reactor, "out")
        try:

            async def connect() -> int:
                sock = dial.tcp_socket(socket.AF_INET)
                try:
                    assert sock.fileno() == stale.fd
                    current_reactor().call_later(0.05, stale.fire)
                    return await dial.connect(sock, ("127.0.0.1", port))
                finally:
                    sock.close()

            started = time.monotonic()
            with pytest.raises(TimeoutError):
                reactor.run(connect(), timeout=0.5)
            # It waited for its deadline, past the wake-up at 50 ms.
            assert time.monotonic() - started >= 0.45
        finally:
            stale.close()


def test_a_tcp_check_of_a_dead_backend_stays_failed_through_a_spurious_wakeup() -> None:
    with (
        Reactor() as reactor,
        full_accept_queue() as port,
        stale_registration(reactor, "out") as stale,
    ):
        reactor.call_later(0.05, stale.fire)
        result = reactor.run(checkers.run(TCPChecker(loopback(port)), 0.5))
    assert not result.success, result
    assert str(result.error).endswith("i/o timeout"), result
    assert result.duration_ns >= 450_000_000


def test_a_spurious_readable_wakeup_does_not_end_a_receive() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    with Reactor() as reactor, listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        stale = StaleRegistration(reactor, "in")
        try:
            fd = os.dup2(client.fileno(), stale.fd)  # the receiving socket has the number
            client.close()
            receiving = socket.socket(fileno=fd)
            receiving.setblocking(False)

            async def receive() -> bytes:
                reactor = current_reactor()
                reactor.call_later(0.02, stale.fire)
                reactor.call_later(0.15, lambda: server.send(b"answer"))
                return await dial.recv_ready(receiving, 100)

            assert reactor.run(receive(), timeout=1.0) == b"answer"
            receiving.close()
        finally:
            stale.close()
            server.close()


class SlowHTTP:
    """Answers every request with 200 after ``delay_s``, one connection at a time."""

    def __init__(self, delay_s: float) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.delay_s = delay_s
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                time.sleep(self.delay_s)  # the target's own slowness, not a test wait
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    def __enter__(self) -> SlowHTTP:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self.thread.join(2)


def test_an_http_check_reads_its_answer_after_a_spurious_readable_wakeup() -> None:
    with (
        SlowHTTP(delay_s=0.15) as web,
        Reactor() as reactor,
        stale_registration(reactor, "in") as stale,
    ):
        reactor.call_later(0.05, stale.fire)
        checker = HTTPChecker(loopback(web.port), method="GET", request="/")
        result = reactor.run(checkers.run(checker, 1.0))
    assert result.success, result
    assert result.message.endswith("got 200 OK")


def test_a_tcp_check_reads_its_answer_after_a_spurious_readable_wakeup() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def answer_late() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(100)
            time.sleep(0.15)  # the target's own slowness, not a test wait
            conn.sendall(b"pong")

    thread = threading.Thread(target=answer_late, daemon=True)
    thread.start()
    with Reactor() as reactor, listener, stale_registration(reactor, "in") as stale:
        reactor.call_later(0.05, stale.fire)
        checker = TCPChecker(loopback(listener.getsockname()[1]), send="ping", receive="pong")
        result = reactor.run(checkers.run(checker, 1.0))
    thread.join(2)
    assert result.success, result


def test_call_soon_threadsafe_after_close_writes_to_no_fd() -> None:
    reactor = Reactor()
    number = reactor._wake_fd
    reactor.close()
    a, b = socket.socketpair()  # the lowest free numbers: one takes the eventfd's
    try:
        taker = a if a.fileno() == number else b
        other = b if taker is a else a
        assert taker.fileno() == number
        other.setblocking(False)
        reactor.call_soon_threadsafe(lambda: None)
        with pytest.raises(BlockingIOError):
            other.recv(100)
    finally:
        a.close()
        b.close()


def test_an_answer_the_loop_sees_only_after_the_deadline_is_a_timeout() -> None:
    """The loop stalls past a check's deadline, and the answer comes after the deadline but
    before the loop looks again: a timeout, as Go's deadline would have it, not a success
    that only the loop's own delay let through."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def answer_after_the_deadline() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(100)
            time.sleep(0.15)  # the target's own slowness: 50 ms past the check's timeout
            conn.sendall(b"pong")

    thread = threading.Thread(target=answer_after_the_deadline, daemon=True)
    thread.start()
    with Reactor() as reactor, listener:
        # A stall of the loop itself (a long callback), from 50 ms to 300 ms.
        reactor.call_later(0.05, lambda: time.sleep(0.25))
        checker = TCPChecker(loopback(listener.getsockname()[1]), send="ping", receive="pong")
        result = reactor.run(checkers.run(checker, 0.1))
    thread.join(2)
    assert not result.success, result
    assert str(result.error).endswith("i/o timeout"), result


def test_a_connect_to_itself_is_refused_as_go_refuses_it() -> None:
    """A connect to a local port nobody listens on, from that very port (the kernel can
    pick it as the source port: TCP simultaneous open), would "succeed"; Go's dialer
    refuses it (selfConnect), and so must we, or a dead backend looks alive."""
    port = free_port()
    sock = dial.tcp_socket(socket.AF_INET)
    try:
        sock.bind(("127.0.0.1", port))
        with Reactor() as reactor:
            code = reactor.run(dial.connect(sock, ("127.0.0.1", port)), timeout=2.0)
    finally:
        sock.close()
    assert code == errno.ECONNREFUSED
