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


class DelayedReplyResponder:
    """A TCP server on one selector thread: accepts every connection, reads the request,
    and sends ``reply`` ``delay_s`` after the first byte arrived, then closes. With
    ``delay_s=None`` it closes at once after accepting (a plain connect target).

    Light enough for hundreds of connections a second over a whole test (no thread or
    record per connection); ``served`` counts the replies sent.
    """

    def __init__(
        self, host: str = "127.0.0.1", *, reply: bytes = b"", delay_s: float | None = None
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(4096)
        self.listener.setblocking(False)
        self.port: int = self.listener.getsockname()[1]
        self.reply = reply
        self.delay_s = delay_s
        self.accepted = 0
        self.served = 0
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="delayed-reply", daemon=True)

    def __enter__(self) -> DelayedReplyResponder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _serve(self) -> None:
        import heapq
        import selectors
        import time

        due: list[tuple[float, int, socket.socket]] = []
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ, "stop")
            sel.register(self.listener, selectors.EVENT_READ, "accept")
            while True:
                timeout = max(0.0, due[0][0] - time.monotonic()) if due else None
                for key, _ in sel.select(timeout):
                    if key.data == "stop":
                        for _, _, conn in due:
                            conn.close()
                        for key2 in list(sel.get_map().values()):
                            if isinstance(key2.data, socket.socket):
                                key2.data.close()
                        return
                    if key.data == "accept":
                        while True:
                            try:
                                conn, _ = self.listener.accept()
                            except BlockingIOError:
                                break
                            self.accepted += 1
                            if self.delay_s is None:
                                conn.close()
                                continue
                            conn.setblocking(False)
                            sel.register(conn, selectors.EVENT_READ, conn)
                        continue
                    conn = key.data
                    try:
                        data = conn.recv(4096)
                    except OSError:
                        data = b""
                    sel.unregister(conn)
                    if not data:
                        conn.close()
                        continue
                    assert self.delay_s is not None
                    heapq.heappush(due, (time.monotonic() + self.delay_s, conn.fileno(), conn))
                now = time.monotonic()
                while due and due[0][0] <= now:
                    _, _, conn = heapq.heappop(due)
                    with contextlib.suppress(OSError):
                        conn.send(self.reply)
                        self.served += 1
                    conn.close()
