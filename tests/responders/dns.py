"""DNS responder on dnspython: a zone table served over UDP and TCP on one loopback port.

    zone = {("www.example.com.", "A"): ["192.0.2.1"], ("example.com.", "MX"): ["10 mx."]}
    with DNSResponder("::1", zone, truncate_udp=True) as dns_peer: ...

Names are looked up without regard to case. A name in the zone with no records of the
asked type gets NOERROR with no answers, an unknown name NXDOMAIN. ``truncate_udp`` answers
UDP with an empty TC reply (the full answer only over TCP); ``silent`` drops every query;
``stray_first`` sends a reply with the wrong id (and one for another question) before the
real one; a CNAME is followed within the zone, as a real server does; ``rcode``
forces a response code; ``not_response`` clears the QR bit.
"""

from __future__ import annotations

import socket
import struct
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from tests.responders.udp import DatagramServer

Zone = dict[tuple[str, str], list[str]]


class DNSResponder(DatagramServer):
    def __init__(
        self,
        host: str = "127.0.0.1",
        zone: Zone | None = None,
        *,
        truncate_udp: bool = False,
        silent: bool = False,
        stray_first: bool = False,
        rcode: int | None = None,
        not_response: bool = False,
        ttl: int = 60,
    ) -> None:
        # TCP on the same port number as UDP, as a DNS server listens; another socket may
        # hold that TCP port already, so pick again until both are free.
        for _ in range(100):
            super().__init__(host)
            self.listener = socket.socket(self.family, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.listener.bind((host, self.port))
                break
            except OSError:
                self.listener.close()
                self.close()
        else:
            raise OSError(f"no port free for both UDP and TCP on {host}")
        self.listener.listen(16)
        self.add_socket(self.listener, self._on_accept)
        self.zone: dict[tuple[dns.name.Name, int], list[str]] = {}
        for (name, rdtype), texts in (zone or {}).items():
            key = (dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
            self.zone[key] = list(texts)
        self.names = {name for name, _ in self.zone}
        self.truncate_udp = truncate_udp
        self.silent = silent
        self.stray_first = stray_first
        self.rcode = rcode
        self.not_response = not_response
        self.ttl = ttl
        self.silent_tcp = False  # accept TCP connections but never answer
        self.drop_real_reply = False  # with stray_first: send only the stray replies
        self.udp_queries = 0
        self.tcp_queries = 0

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        if self.not_response:
            response.flags &= ~dns.flags.QR
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        if self.rcode is not None:
            response.set_rcode(self.rcode)
            return response
        if question.name not in self.names:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        name = question.name
        texts = self.zone.get((name, question.rdtype), [])
        alias = self.zone.get((name, dns.rdatatype.CNAME), [])
        if not texts and alias:  # as a real server: the CNAME, then the target's records
            response.answer.append(
                dns.rrset.from_text_list(name, self.ttl, question.rdclass, "CNAME", alias)
            )
            name = dns.name.from_text(alias[0])
            texts = self.zone.get((name, question.rdtype), [])
        if texts:
            rrset = dns.rrset.from_text_list(
                name, self.ttl, question.rdclass, question.rdtype, texts
            )
            response.answer.append(rrset)
        return response

    def handle(self, data: bytes, peer: tuple[str, int]) -> list[bytes]:
        self.udp_queries += 1
        if self.silent:
            return []
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return []
        replies: list[bytes] = []
        if self.stray_first:
            stray = dns.message.make_response(query)
            stray.id = (query.id + 1) & 0xFFFF
            replies.append(stray.to_wire())
            other = dns.message.make_query("stray.invalid.", "A")
            other.id = query.id
            other.flags |= dns.flags.QR
            replies.append(other.to_wire())
        if self.drop_real_reply:
            return replies
        response = self.answer(query)
        if self.truncate_udp:
            response.answer.clear()
            response.flags |= dns.flags.TC
        replies.append(response.to_wire())
        return replies

    def _on_accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(2.0)
            self.tcp_queries += 1
            try:
                (length,) = struct.unpack("!H", _recv_exactly(conn, 2))
                query = dns.message.from_wire(_recv_exactly(conn, length))
                if self.silent or self.silent_tcp:
                    time.sleep(1.0)  # hold the connection open, answer nothing
                    return
                wire = self.answer(query).to_wire()
                conn.sendall(struct.pack("!H", len(wire)) + wire)
            except (OSError, ValueError, dns.exception.DNSException):
                return

    def __enter__(self) -> DNSResponder:
        super().__enter__()
        return self


def _recv_exactly(conn: socket.socket, count: int) -> bytes:
    buf = b""
    while len(buf) < count:
        chunk = conn.recv(count - len(buf))
        if not chunk:
            raise ValueError("connection closed mid-message")
        buf += chunk
    return buf
