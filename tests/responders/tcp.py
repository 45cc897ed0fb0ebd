"""A TCP (optionally TLS) echo responder on loopback, in background threads."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from types import TracebackType


class TCPResponder:
    """Echoes what it receives, or answers with fixed bytes.

    ``greeting``: sent on accept. ``reply``: sent once after the first read instead of
    echoing. ``silent``: accept and read but never answer. ``close_on_accept``: close at
    once. ``tls``: a server ``SSLContext`` (handshake done in the connection's thread).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        greeting: bytes = b"",
        reply: bytes | None = None,
        silent: bool = False,
        close_on_accept: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.greeting = greeting
        self.reply = reply
        self.silent = silent
        self.close_on_accept = close_on_accept
        self.tls = tls
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(128)
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self.received: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> TCPResponder:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
            if self.close_on_accept:
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        conn: socket.socket = raw
        try:
            raw.settimeout(10)
            if self.tls is not None:
                conn = self.tls.wrap_socket(raw, server_side=True)
            if self.greeting:
                conn.sendall(self.greeting)
            replied = False
            while not self._stop.is_set():
                data = conn.recv(4096)
                if not data:
                    return
                with self._lock:
                    self.received.append(data)
                if self.silent:
                    continue
                if self.reply is not None:
                    if not replied:
                        conn.sendall(self.reply)
                        replied = True
                else:
                    conn.sendall(data)
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()
