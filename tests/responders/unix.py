"""A Unix-socket server for tests: each connection is handed to a behaviour function
(answer with fixed bytes, hang up, stay silent), to stand in for a misbehaving engine."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def unix_server(path: str, behave: Callable[[socket.socket], None]) -> Iterator[None]:
    """A thread accepting on ``path``; each connection is handed to ``behave``."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                behave(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def read_request_then(reply: bytes | None, hold_s: float = 0.0) -> Callable[[socket.socket], None]:
    """Read the request, send ``reply`` (None: nothing; b"": hang up), wait ``hold_s``."""

    def behave(conn: socket.socket) -> None:
        conn.settimeout(2)
        with contextlib.suppress(OSError):
            conn.recv(65536)
            if reply is not None:
                conn.sendall(reply)
            time.sleep(hold_s)

    return behave
