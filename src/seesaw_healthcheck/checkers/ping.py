"""ICMP echo health check (IPv4 and IPv6) on one shared socket per reactor, family and mark.

The request is Seesaw's: 64 bytes, identifier ``ID`` and sequence ``Seqnum`` from the
checker (the sequence then counts up, as Go's checker does), payload "Healthcheck" four
times then zeros. We put a per-check token in the last 8 payload bytes (zeros in Seesaw),
which an echo reply carries back: replies are matched by source address, identifier,
sequence *and* token, so concurrent checks of one target with the same ID and Seqnum never
take each other's replies. An IPv4 reply must have a valid checksum (the kernel checks
ICMPv6 ones).

Sockets: a raw ICMP/ICMPv6 socket when we may (root or CAP_NET_RAW), else an unprivileged
ICMP datagram socket where net.ipv4.ping_group_range allows it; the kernel then replaces
the identifier with the socket's own, which is what replies carry and what we match. One
socket serves every ping check of a reactor with the same address family and mark (SO_MARK
is per socket); its reader is registered with ``Reactor.add_reader`` and wakes each
waiting check through a ``Future``. A socket nobody used for ``IDLE_CLOSE_S`` is closed,
and so is every one still open when its reactor closes (``Reactor.on_close``).
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import os
import socket
import struct
from dataclasses import dataclass
from typing import Final, cast

from seesaw_healthcheck.checkers.base import CheckError, Result, elapsed_ns, now_ns
from seesaw_healthcheck.checkers.dial import endpoint, errno_text, set_mark
from seesaw_healthcheck.model import PingChecker, ip_from_bytes
from seesaw_healthcheck.reactor import Future, Reactor, current_reactor, sleep

ICMP4_ECHO_REQUEST = 8
ICMP4_ECHO_REPLY = 0
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129

MESSAGE_LENGTH = 64  # Seesaw's echo size, header included
_FILLER = b"Healthcheck"
_TOKEN_LENGTH = 8
# Seesaw copies the filler (len+1) bytes at a time: floor(56 / 12) = 4 copies, then zeros.
_PAYLOAD_HEAD = _FILLER * ((MESSAGE_LENGTH - 8) // (len(_FILLER) + 1))
_PAYLOAD_PAD = b"\x00" * (MESSAGE_LENGTH - 8 - len(_PAYLOAD_HEAD) - _TOKEN_LENGTH)

IDLE_CLOSE_S = 30.0
_RCVBUF = 4 << 20
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_READS_PER_WAKE = 256  # bounded so a flood of ICMP cannot starve the other checks

# ICMP_FILTER (SOL_RAW) and ICMP6_FILTER (IPPROTO_ICMPV6) option numbers, from
# <linux/icmp.h> and <linux/icmpv6.h>; Python's socket module does not name them.
_SOL_RAW = 255
_ICMP_FILTER = 1
_ICMP6_FILTER = 1

# Makes tokens differ between processes sharing a host, so another process's replies
# cannot match ours even with the same identifier and sequence.
_TOKEN_SALT = os.urandom(4)
_token_counter = itertools.count(1)


# --- Messages (sans-IO) -----------------------------------------------------------------


def icmp_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) over ``data``, as a big-endian 16-bit value."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def build_echo_request(ipv6: bool, identifier: int, sequence: int, token: bytes) -> bytes:
    """A 64-byte echo request; IPv4 carries its checksum, the kernel fills in ICMPv6's."""
    if len(token) != _TOKEN_LENGTH:
        raise ValueError(f"token must be {_TOKEN_LENGTH} bytes, not {len(token)}")
    kind = ICMP6_ECHO_REQUEST if ipv6 else ICMP4_ECHO_REQUEST
    payload = _PAYLOAD_HEAD + _PAYLOAD_PAD + token
    header = struct.pack("!BBHHH", kind, 0, 0, identifier & 0xFFFF, sequence & 0xFFFF)
    if ipv6:
        return header + payload
    checksum = icmp_checksum(header + payload)
    return header[:2] + struct.pack("!H", checksum) + header[4:] + payload


@dataclass(frozen=True, slots=True)
class EchoReply:
    identifier: int
    sequence: int
    checksum: int  # as carried
    checksum_ok: bool
    token: bytes


def parse_echo_reply(packet: bytes, *, ipv6: bool, ip_header: bool) -> EchoReply | None:
    """An echo reply's fields, or None for anything else (other types, runts).

    ``ip_header``: the packet starts with an IPv4 header (raw IPv4 sockets deliver one).
    """
    if ip_header:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return None
        header_length = (packet[0] & 0x0F) * 4
        total_length = struct.unpack_from("!H", packet, 2)[0]
        packet = packet[header_length : max(total_length, header_length)]
    if len(packet) < 8:
        return None
    kind, code, checksum, identifier, sequence = struct.unpack_from("!BBHHH", packet)
    if kind != (ICMP6_ECHO_REPLY if ipv6 else ICMP4_ECHO_REPLY) or code != 0:
        return None
    checksum_ok = ipv6 or icmp_checksum(packet) == 0
    token = packet[-_TOKEN_LENGTH:] if len(packet) >= 8 + _TOKEN_LENGTH else b""
    return EchoReply(identifier, sequence, checksum, checksum_ok, token)


def next_token() -> bytes:
    return _TOKEN_SALT + (next(_token_counter) & 0xFFFFFFFF).to_bytes(4, "big")


# --- The shared socket -----------------------------------------------------------------


@dataclass(slots=True)
class _Waiter:
    source: bytes  # packed address the reply must come from
    identifier: int
    sequence: int
    future: Future[str | None]  # None: a good reply; a text: the error


class EchoSocket:
    """One ICMP socket shared by the ping checks of a reactor, address family and mark."""

    def __init__(self, reactor: Reactor, family: socket.AddressFamily, mark: int) -> None:
        self.reactor = reactor
        self.family = family
        self.mark = mark
        self.ipv6 = family == socket.AF_INET6
        self.waiters: dict[bytes, _Waiter] = {}
        self.last_used = reactor.time()
        self.closed = False
        self.sock, self.raw = _open_icmp_socket(family, mark)
        # A datagram ICMP socket gets its identifier from the kernel (its "port").
        self.kernel_id: int | None = None
        try:
            reactor.on_close(self.close)  # closing the reactor closes the socket
        except RuntimeError:  # the reactor is closed already
            self.sock.close()
            raise
        reactor.add_reader(self.sock, self._on_readable)
        self._idle_timer = reactor.call_later(IDLE_CLOSE_S, self._close_if_idle)

    def send(self, packet: bytes, host: str) -> None:
        self.sock.sendto(packet, (host, 0))
        if not self.raw and self.kernel_id is None:
            self.kernel_id = self.sock.getsockname()[1]

    def expected_id(self, configured: int) -> int:
        return configured if self.raw or self.kernel_id is None else self.kernel_id

    def _on_readable(self) -> None:
        for _ in range(_READS_PER_WAKE):
            try:
                packet, sender = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. an ICMP error queued on the socket: nothing to match
            reply = parse_echo_reply(packet, ipv6=self.ipv6, ip_header=self.raw and not self.ipv6)
            if reply is None:
                continue
            waiter = self.waiters.get(reply.token)
            if waiter is None or waiter.future.done():
                continue
            if (
                reply.sequence != waiter.sequence
                or reply.identifier != self.expected_id(waiter.identifier)
                or _packed(sender[0]) != waiter.source
            ):
                continue
            if reply.checksum_ok:
                waiter.future.set_result(None)
            else:
                waiter.future.set_result(f"Bad ICMP checksum: {reply.checksum:x}")

    def _close_if_idle(self) -> None:
        if self.closed:
            return
        idle = self.reactor.time() - self.last_used
        if self.waiters or idle < IDLE_CLOSE_S:
            delay = IDLE_CLOSE_S if self.waiters else IDLE_CLOSE_S - idle
            self._idle_timer = self.reactor.call_later(delay, self._close_if_idle)
            return
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.reactor.remove_on_close(self.close)
        self._idle_timer.cancel()
        self.reactor.remove_reader(self.sock)
        self.sock.close()
        sockets = _sockets(self.reactor)
        if sockets.get((self.family, self.mark)) is self:
            del sockets[(self.family, self.mark)]


def _open_icmp_socket(family: socket.AddressFamily, mark: int) -> tuple[socket.socket, bool]:
    """A raw ICMP socket, or failing permission a datagram one; (socket, is_raw)."""
    proto = socket.IPPROTO_ICMPV6 if family == socket.AF_INET6 else socket.IPPROTO_ICMP
    flags = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
    try:
        sock = socket.socket(family, socket.SOCK_RAW | flags, proto)
        raw = True
    except PermissionError as raw_error:
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM | flags, proto)
        except OSError:
            raise raw_error from None
        raw = False
    try:
        if raw:
            _install_filter(sock, family)
        _grow_receive_buffer(sock)
        if mark:
            set_mark(sock, mark)
    except BaseException:
        sock.close()
        raise
    return sock, raw


def _grow_receive_buffer(sock: socket.socket) -> None:
    """Room for a burst of replies: 1,000 pings in flight overflow the default buffer.

    SO_RCVBUFFORCE (root) goes past net.core.rmem_max; SO_RCVBUF is capped by it.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RCVBUF)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)


def _install_filter(sock: socket.socket, family: socket.AddressFamily) -> None:
    """Let only echo replies reach the raw socket (a bit set blocks that type)."""
    if family == socket.AF_INET6:
        words = [0xFFFFFFFF] * 8
        words[ICMP6_ECHO_REPLY >> 5] &= ~(1 << (ICMP6_ECHO_REPLY & 31)) & 0xFFFFFFFF
        sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("8I", *words))
    else:
        mask = ~(1 << ICMP4_ECHO_REPLY) & 0xFFFFFFFF
        sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("I", mask))


_SOCKETS: Final = object()  # the key of a reactor's open shared sockets in its run_vars


def _sockets(reactor: Reactor) -> dict[tuple[int, int], EchoSocket]:
    """The reactor's open shared sockets by (family, mark)."""
    sockets = reactor.run_vars.get(_SOCKETS)
    if sockets is None:
        sockets = reactor.run_vars[_SOCKETS] = {}
    return cast("dict[tuple[int, int], EchoSocket]", sockets)


def echo_socket(reactor: Reactor, family: socket.AddressFamily, mark: int) -> EchoSocket:
    sockets = _sockets(reactor)
    shared = sockets.get((family, mark))
    if shared is None or shared.closed:
        shared = sockets[(family, mark)] = EchoSocket(reactor, family, mark)
    return shared


def close_sockets(reactor: Reactor) -> None:
    """Close the reactor's shared ICMP sockets now (``Reactor.close()`` does it too)."""
    for shared in list(_sockets(reactor).values()):
        shared.close()


def open_sockets(reactor: Reactor) -> list[EchoSocket]:
    return list(_sockets(reactor).values())


@functools.lru_cache(maxsize=4096)
def _packed(host: str) -> bytes:
    """An address as the kernel wrote it (``fe80::1%eth0`` too), packed."""
    return ipaddress.ip_address(host.partition("%")[0]).packed


# --- The check -------------------------------------------------------------------------


def describe(checker: PingChecker) -> str:
    return f"PING {_ip_text(checker.target.ip)}"


def _ip_text(ip: bytes) -> str:
    """Go's net.IP String(): ``<nil>`` when empty, ``?`` + hex when of a bad length."""
    if not ip:
        return "<nil>"
    try:
        return str(ip_from_bytes(ip))
    except ValueError:
        return "?" + ip.hex()


async def check(checker: PingChecker, timeout_s: float) -> Result:
    """One echo over the shared socket. The caller (``checkers.run``) bounds the time."""
    start = now_ns()
    sequence = checker.seqnum & 0xFFFF
    checker.seqnum = (sequence + 1) & 0xFFFF  # as Go's checker: the next check, the next seq
    try:
        ep = endpoint(checker.target)
    except CheckError as error:
        msg = f"ICMP ping to host {_ip_text(checker.target.ip)}"
        return Result(False, msg, elapsed_ns(start), error)
    msg = "ICMP ping to host " + ep.host
    network = "ip6:ipv6-icmp" if ep.version == 6 else "ip4:icmp"
    try:
        shared = echo_socket(current_reactor(), ep.family, checker.target.mark)
    except CheckError as error:
        return Result(False, msg, elapsed_ns(start), error)
    except OSError as error:
        text = errno_text(error.errno) if error.errno else str(error)
        return Result(
            False, msg, elapsed_ns(start), CheckError(f"listen {network}: socket: {text}")
        )

    token = next_token()
    packet = build_echo_request(ep.version == 6, checker.id, sequence, token)
    future: Future[str | None] = Future()
    shared.waiters[token] = _Waiter(_packed(ep.host), checker.id, sequence, future)
    try:
        while True:
            try:
                shared.send(packet, ep.host)
                break
            except BlockingIOError:  # send buffer full under load: wait a moment
                await sleep(0.001)
            except OSError as error:
                text = errno_text(error.errno) if error.errno else str(error)
                failure = CheckError(f"write {network} {ep.host}: {text}")
                return Result(False, msg, elapsed_ns(start), failure)
        try:
            problem = await future
        except TimeoutError:
            local = "::" if ep.version == 6 else "0.0.0.0"
            failure = CheckError(f"read ip{ep.version} {local}: i/o timeout")
            return Result(False, msg, elapsed_ns(start), failure)
        if problem is not None:
            return Result(False, msg, elapsed_ns(start), CheckError(problem))
        return Result(True, msg, elapsed_ns(start))
    finally:
        del shared.waiters[token]
        shared.last_used = shared.reactor.time()
