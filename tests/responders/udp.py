"""UDP echo responder: echoes each datagram, or answers with a fixed reply, or stays silent.

A context manager serving on loopback (IPv4 or IPv6) from a background thread::

    with UDPEchoResponder("::1") as peer:
        ... peer.host, peer.port, peer.received ...
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Callable
from types import TracebackType

Reply = bytes | Callable[[bytes], bytes | None] | None


class DatagramServer:
    """A UDP socket on loopback served by ``handle(data, peer)`` in a background thread.

    ``handle`` returns the datagrams to send back to ``peer`` (possibly none).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(self.family, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)
        self._extra: list[tuple[socket.socket, Callable[[], None]]] = []
        self.reply_socket: socket.socket | None = None  # replies from another port if set

    def handle(self, data: bytes, peer: tuple[str, int]) -> list[bytes]:  # pragma: no cover
        raise NotImplementedError

    def add_socket(self, sock: socket.socket, on_readable: Callable[[], None]) -> None:
        """Serve one more socket (e.g. a TCP listener) in the same thread; before start."""
        self._extra.append((sock, on_readable))

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._wake_r, selectors.EVENT_READ, None)
            sel.register(self.sock, selectors.EVENT_READ, self._on_datagram)
            for sock, callback in self._extra:
                sel.register(sock, selectors.EVENT_READ, callback)
            while True:
                for key, _ in sel.select():
                    if key.data is None:
                        return
                    key.data()

    def _on_datagram(self) -> None:
        try:
            data, peer = self.sock.recvfrom(65535)
        except OSError:
            return
        self.received.append(data)
        for reply in self.handle(data, peer):
            with contextlib.suppress(OSError):
                (self.reply_socket or self.sock).sendto(reply, peer)

    def __enter__(self) -> DatagramServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self._wake_w.send(b"x")
            self._thread.join(5)
        for sock in (self.sock, self._wake_r, self._wake_w, *(s for s, _ in self._extra)):
            sock.close()
        if self.reply_socket is not None:
            self.reply_socket.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class UDPEchoResponder(DatagramServer):
    """Echoes each datagram (``reply=None``), sends ``reply`` instead (bytes), or the
    callable's answer; ``silent=True`` answers nothing. ``from_other_port=True`` sends the
    replies from a second socket, as a stray source would."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        reply: Reply = None,
        silent: bool = False,
        from_other_port: bool = False,
    ) -> None:
        super().__init__(host)
        self.reply = reply
        self.silent = silent
        if from_other_port:
            self.reply_socket = socket.socket(self.family, socket.SOCK_DGRAM)
            self.reply_socket.bind((host, 0))

    def handle(self, data: bytes, peer: tuple[str, int]) -> list[bytes]:
        if self.silent:
            return []
        if self.reply is None:
            return [data]
        if isinstance(self.reply, bytes):
            return [self.reply]
        answer = self.reply(data)
        return [] if answer is None else [answer]

    def __enter__(self) -> UDPEchoResponder:
        super().__enter__()
        return self
