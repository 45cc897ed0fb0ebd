"""The control process's HTTP server on a real loopback socket: a body far larger than the
socket takes at once arrives whole, HEAD gets the head alone, errors are JSON."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from seesaw_healthcheck.control.http import HttpServer, Request, Response
from seesaw_healthcheck.reactor import Reactor

BIG = bytes(range(256)) * (128 << 10)  # 32 MiB: more than one send takes on loopback here


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    reactor = Reactor()

    def handler(request: Request) -> Response:
        return Response(200, BIG if request.path == "/big" else b"small\n")

    http = HttpServer(reactor, ("127.0.0.1", 0), handler)
    thread = threading.Thread(target=reactor.run_forever, daemon=True)
    thread.start()
    try:
        yield http.address
    finally:
        reactor.call_soon_threadsafe(reactor.stop)
        thread.join(10)
        http.close()
        reactor.close()


def exchange(address: tuple[str, int], request: bytes) -> tuple[bytes, bytes]:
    with socket.socket() as client:
        # A small receive window (set before the connect): the server's first send cannot
        # take the whole body.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        client.settimeout(10)
        client.connect(address)
        client.sendall(request)
        received = bytearray()
        while chunk := client.recv(65536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    return head, body


def test_a_body_bigger_than_the_socket_takes_arrives_whole(server: tuple[str, int]) -> None:
    head, body = exchange(server, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Length: {len(BIG)}".encode() in head
    assert body == BIG


def test_head_gets_the_head_alone(server: tuple[str, int]) -> None:
    head, body = exchange(server, b"HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n")
    assert f"Content-Length: {len(BIG)}".encode() in head
    assert body == b""


def test_a_method_not_served_is_a_json_405(server: tuple[str, int]) -> None:
    head, body = exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    assert b"Allow: GET, HEAD" in head
    assert body == b'{"error": "POST is not served here"}\n'
