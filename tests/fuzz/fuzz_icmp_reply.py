"""Fuzz target: the ping checker's reply matcher (``checkers/ping.py``: the shared
socket's ``_on_readable`` and ``parse_echo_reply`` under it).

Input: one flags byte, then packets, each as a 2-byte big-endian length and that many
bytes (the last one takes what is left). Flag bits: 1 = IPv6, 2 = a raw socket (IPv4
packets then start with an IP header), 4 = the packets come from another address than
the one pinged. An ``EchoSocket`` (built without a reactor or a real socket) reads them
from a fake socket for one waiting check with identifier ``IDENT``, sequence ``SEQUENCE``
and token ``TOKEN``. ``_on_readable`` must never raise (it is a reactor callback); the
check's future is resolved at most once, only by an echo reply carrying its token,
identifier and sequence from the pinged address, with None or a checksum error.
"""

from __future__ import annotations

import socket
import struct

from harness import fuzz, instrumented

with instrumented(__name__):
    from seesaw_healthcheck.checkers.ping import EchoSocket, _Waiter, parse_echo_reply
    from seesaw_healthcheck.reactor import Future

IDENT = 0x1234
SEQUENCE = 7
TOKEN = b"fuzztokn"
PEERS = {False: ("192.0.2.1", "192.0.2.2"), True: ("2001:db8::1", "2001:db8::2")}


class FakeIcmpSocket:
    """recvfrom hands out the packets in turn, then raises BlockingIOError."""

    def __init__(self, packets: list[bytes], sender: str) -> None:
        self.packets = packets
        self.sender = sender

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int]]:
        if not self.packets:
            raise BlockingIOError
        return self.packets.pop(0)[:size], (self.sender, 0)


def split_packets(data: bytes) -> list[bytes]:
    packets = []
    while data:
        length = struct.unpack_from("!H", data)[0] if len(data) >= 2 else len(data)
        packets.append(data[2 : 2 + length])
        data = data[2 + length :]
    return packets


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    if not data:
        return
    flags, packets = data[0], split_packets(data[1:])
    ipv6, raw, stranger = bool(flags & 1), bool(flags & 2), bool(flags & 4)
    pinged, other = PEERS[ipv6]
    shared = EchoSocket.__new__(EchoSocket)  # no reactor, no real socket: the matcher only
    shared.family = socket.AF_INET6 if ipv6 else socket.AF_INET
    shared.ipv6 = ipv6
    shared.raw = raw
    shared.kernel_id = None if raw else IDENT
    shared.sock = FakeIcmpSocket(packets, other if stranger else pinged)
    future: Future[str | None] = Future()
    source = socket.inet_pton(shared.family, pinged)
    shared.waiters = {TOKEN: _Waiter(source, IDENT, SEQUENCE, future)}
    expected = list(packets)
    shared._on_readable()
    if not future.done():
        return
    result = future.result()
    assert not stranger, "a reply from another address was taken"
    replies = [parse_echo_reply(p[:2048], ipv6=ipv6, ip_header=raw and not ipv6) for p in expected]
    assert any(
        r is not None and r.token == TOKEN and r.sequence == SEQUENCE and r.identifier == IDENT
        for r in replies
    ), replies
    assert result is None or result.startswith("Bad ICMP checksum: "), result


if __name__ == "__main__":
    fuzz(TestOneInput)
