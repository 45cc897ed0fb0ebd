"""DNS health check: one query over UDP (TCP when the reply is truncated), one answer sought.

The query asks ``Question.Name`` (made fully qualified), ``Qtype`` and ``Qclass`` with
recursion desired and no EDNS, as Seesaw does. A reply counts only if it carries the
query's id, has the response bit and repeats the question (name compared without regard
to case); anything else arriving on the socket is ignored, and the kernel drops datagrams
from other sources since the socket is connected. A reply with the truncation bit set
makes the check ask again over TCP, on a fresh connection to the same address and port.

Success needs rcode NOERROR and an answer record with the asked name, class and type
whose data matches ``Answer``:

- A: ``Answer`` must be an IPv4 address; records compare by address.
- AAAA: ``Answer`` must be an IP address (an IPv4 one means its IPv4-mapped form, as
  Go's net.IP.Equal has it); records compare by address.
- TXT and SPF: the record's character-strings joined without separators equal ``Answer``,
  or its presentation form (``"a" "b"``) does.
- Every other type (CNAME, NS, PTR, MX, SOA, SRV, ...): ``Answer`` is read as the record
  data's presentation form, names in it taken as fully qualified (``10 mail.example.com``
  for MX), and compared with each record as DNS compares data: names without regard to
  case, numbers by value. An ``Answer`` that does not parse fails the check before any
  packet is sent.

Seesaw compares only A and AAAA (its CNAME/NS/SOA cases are TODOs that never succeed)
and does not retry over TCP; CNAME chains are not followed by either.
"""

from __future__ import annotations

import _socket
import functools
import ipaddress
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from seesaw_healthcheck.checkers.base import (
    CheckError,
    Result,
    elapsed_ns,
    internal_error,
    now_ns,
    timed_out,
)
from seesaw_healthcheck.checkers.dial import (
    Endpoint,
    conn_name,
    dial_tcp,
    dial_timeout_text,
    endpoint,
    io_error_text,
    open_udp,
    receive_datagram,
    recv_exactly,
    send_all,
    send_datagram,
)
from seesaw_healthcheck.goquote import go_quote
from seesaw_healthcheck.model import DNSChecker, DNSQuestion
from seesaw_healthcheck.reactor import limit_deadline

_UDP_BUFSIZE = 65535

# check() sets its own deadline and turns every exception into a Result, so checkers.run
# hands its coroutine out directly instead of wrapping it in one more.
GUARDED = True
_FLAG_QR = 0x8000
_FLAG_TC = 0x0200

# miekg/dns names these classes differently from dnspython (or dnspython lacks them).
_CLASS_NAMES = {1: "IN", 2: "CS", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
_TEXT_TYPES = (dns.rdatatype.TXT, dns.rdatatype.SPF)


def class_name(qclass: int) -> str:
    return _CLASS_NAMES.get(qclass, f"CLASS{qclass}")


@functools.lru_cache(maxsize=1024)
def type_name(qtype: int) -> str:
    if qtype == 0:
        return "None"  # miekg/dns's name for type 0
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(qtype))


def fully_qualified(name: str) -> str:
    return name if name.endswith(".") else name + "."


def question_text(name: str, qtype: int, qclass: int) -> str:
    """Go's questionToString: ``example.com. IN A``."""
    return f"{name} {class_name(qclass)} {type_name(qtype)}"


def describe(checker: DNSChecker) -> str:
    q = checker.question
    return f"DNS {question_text(q.name, q.qtype, q.qclass)} {checker.target}"


# --- Expected answer -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expected:
    """What ``Answer`` means for the asked type: an address, text, or record data."""

    address: bytes | None = None  # A: 4 bytes, AAAA: 16 bytes
    text: bytes | None = None  # TXT/SPF: the raw Answer
    rdata: dns.rdata.Rdata | None = None

    def matches(self, rdata: dns.rdata.Rdata) -> bool:
        if self.address is not None:
            text: str = rdata.address  # type: ignore[attr-defined]
            return ipaddress.ip_address(text).packed == self.address
        if self.text is not None:
            strings: tuple[bytes, ...] = rdata.strings  # type: ignore[attr-defined]
            return bool(b"".join(strings) == self.text or rdata.to_text().encode() == self.text)
        return bool(rdata == self.rdata)


@functools.lru_cache(maxsize=4096)
def parse_answer(qtype: int, qclass: int, answer: str) -> Expected:
    """Read ``Answer`` for the asked type; ValueError with Go's wording when it cannot be.

    Cached: a check asks the same thing every interval.
    """
    if qtype == dns.rdatatype.A:
        address = _parse_ip(answer)
        if address is None or address.version != 4:
            raise ValueError(f"{go_quote(answer)} is not a valid IPv4 address")
        return Expected(address=address.packed)
    if qtype == dns.rdatatype.AAAA:
        address = _parse_ip(answer)
        if address is None:
            raise ValueError(f"{go_quote(answer)} is not a valid IPv6 address")
        if address.version == 4:
            address = ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + address.packed)
        return Expected(address=address.packed)
    if qtype in _TEXT_TYPES:
        return Expected(text=answer.encode("utf-8", "surrogateescape"))
    try:
        rdata = dns.rdata.from_text(
            dns.rdataclass.RdataClass.make(qclass),
            dns.rdatatype.RdataType.make(qtype),
            answer,
            origin=dns.name.root,
            relativize=False,
        )
    except (dns.exception.DNSException, ValueError, UnicodeError) as exc:
        raise ValueError(
            f"{go_quote(answer)} is not a valid {type_name(qtype)} answer ({exc})"
        ) from None
    return Expected(rdata=rdata)


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """As Go's net.ParseIP: an IPv4-mapped IPv6 address is the IPv4 address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


# --- Query and reply (sans-IO) ---------------------------------------------------------

_query_cache: dict[tuple[str, int, int], bytes] = {}
_QUERY_CACHE_MAX = 4096


def build_query(name: str, qtype: int, qclass: int, query_id: int) -> bytes:
    """The wire query (RD set, no EDNS); built once per question, the id patched in."""
    key = (name, qtype, qclass)
    wire = _query_cache.get(key)
    if wire is None:
        qname = dns.name.from_text(name)
        query = dns.message.make_query(
            qname, dns.rdatatype.RdataType.make(qtype), dns.rdataclass.RdataClass.make(qclass)
        )
        query.id = 0
        wire = query.to_wire()
        if len(_query_cache) >= _QUERY_CACHE_MAX:
            _query_cache.clear()
        _query_cache[key] = wire
    return struct.pack("!H", query_id) + wire[2:]


class Ignored(Exception):
    """A datagram that is not the reply to our query (a runt, another id, another
    question, undecodable); the check keeps waiting for the real one."""


@dataclass(frozen=True, slots=True)
class Verdict:
    truncated: bool
    success: bool = False
    suffix: str = ""
    error: Exception | None = None


_TRUNCATED = Verdict(truncated=True)


def evaluate_reply(
    wire: bytes, query_id: int, question: DNSQuestion, expected: Expected, *, over_tcp: bool
) -> Verdict:
    """Judge a reply. ``question.name`` must be fully qualified. Raises Ignored for a
    message that is not the answer to this query.

    The header, question and record headers are read here (owner names compared in wire
    form, lower-cased); only a candidate record of a type other than A/AAAA has its data
    decoded by dnspython. Reading whole messages with dnspython cost ~10x the syscalls.
    """
    try:
        return _evaluate(wire, query_id, question, expected, over_tcp)
    except (IndexError, struct.error, dns.exception.DNSException) as error:
        raise Ignored(f"undecodable reply: {error or type(error).__name__}") from None


def _evaluate(
    wire: bytes, query_id: int, question: DNSQuestion, expected: Expected, over_tcp: bool
) -> Verdict:
    if len(wire) < 12:
        raise Ignored(f"{len(wire)}-byte message shorter than a DNS header")
    reply_id, flags, qdcount, ancount = struct.unpack_from("!HHHH", wire)
    if reply_id != query_id:
        raise Ignored(f"reply id {reply_id} is not query id {query_id}")
    rcode = flags & 0x000F
    qname = qname_wire(question.name)
    offset = 12
    echoed = question_wire(question.name, question.qtype, question.qclass)
    if qdcount == 1 and wire.startswith(echoed, 12):
        # The usual reply repeats our question byte for byte: no name to parse.
        offset += len(echoed)
    elif qdcount or rcode == dns.rcode.NOERROR or flags & _FLAG_TC:
        if qdcount != 1:
            raise Ignored(f"reply has {qdcount} questions")
        name, offset = read_name(wire, offset)
        qtype, qclass = struct.unpack_from("!HH", wire, offset)
        offset += 4
        if name != qname or qtype != question.qtype or qclass != question.qclass:
            shown = dns.name.from_wire(wire, 12)[0].to_text()
            raise Ignored(f"reply is for another question: {question_text(shown, qtype, qclass)}")
    if flags & _FLAG_TC and not over_tcp:
        return _TRUNCATED
    if not flags & _FLAG_QR:
        return Verdict(False, False, "; not a query response")
    if rcode != dns.rcode.NOERROR:
        return Verdict(False, False, f"; non-zero response code - {rcode}")
    if not ancount:
        q = question_text(question.name, question.qtype, question.qclass)
        return Verdict(False, False, f"; no answers received for query {q}")
    for _ in range(ancount):
        if wire.startswith(_POINTER_TO_QUESTION, offset) and offset > 12:
            # The usual owner name: a pointer to the question's name, which matched ours.
            name, offset = qname, offset + 2
        else:
            name, offset = read_name(wire, offset)
        rrtype, rrclass, _ttl, rdlength = struct.unpack_from("!HHIH", wire, offset)
        offset += 10
        rdata_end = offset + rdlength
        if rdata_end > len(wire):
            raise Ignored("undecodable reply: record data runs past the end")
        if name == qname and rrclass == question.qclass and rrtype == question.qtype:
            if expected.address is not None:
                raw = wire[offset:rdata_end]
                if raw == expected.address:
                    return Verdict(False, True, f"; received answer {_address_text(raw)}")
            else:
                rdata = dns.rdata.from_wire(
                    dns.rdataclass.RdataClass.make(rrclass),
                    dns.rdatatype.RdataType.make(rrtype),
                    wire,
                    offset,
                    rdlength,
                )
                if expected.matches(rdata):
                    return Verdict(False, True, f"; received answer {rdata.to_text()}")
        offset = rdata_end
    return Verdict(False, False, "; failed to match answer")


_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"


def _address_text(raw: bytes) -> str:
    """Go's net.IP String() of an A/AAAA record (an IPv4-mapped one prints as IPv4)."""
    if len(raw) == 16 and raw.startswith(_V4_MAPPED):
        raw = raw[12:]
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


_POINTER_TO_QUESTION = b"\xc0\x0c"  # a compression pointer to offset 12


@functools.lru_cache(maxsize=4096)
def question_wire(name: str, qtype: int, qclass: int) -> bytes:
    """Our question section as sent (the name's case kept), to spot an exact echo."""
    wire: bytes = dns.name.from_text(name).to_wire()  # type: ignore[assignment]
    return wire + struct.pack("!HH", qtype, qclass)


@functools.lru_cache(maxsize=4096)
def qname_wire(name: str) -> bytes:
    """The name in uncompressed wire form, lower-cased: how owner names are compared."""
    return dns.name.from_text(name).to_wire().lower()  # type: ignore[union-attr]


def read_name(wire: bytes, offset: int) -> tuple[bytes, int]:
    """The (possibly compressed) name at ``offset``, uncompressed and lower-cased, and the
    offset just after it; a malformed name raises Ignored."""
    labels: list[bytes] = []
    after = -1
    hops = 0
    size = len(wire)
    while True:
        if offset >= size:
            raise Ignored("undecodable reply: name runs past the end")
        length = wire[offset]
        if length >= 0xC0:  # a compression pointer
            if offset + 1 >= size:
                raise Ignored("undecodable reply: truncated compression pointer")
            if after < 0:
                after = offset + 2
            offset = ((length & 0x3F) << 8) | wire[offset + 1]
            hops += 1
            if hops > 64:
                raise Ignored("undecodable reply: compression pointer loop")
            continue
        if length > 63:
            raise Ignored(f"undecodable reply: bad label type {length:#x}")
        if length == 0:
            offset += 1
            break
        end = offset + 1 + length
        if end > size:
            raise Ignored("undecodable reply: label runs past the end")
        labels.append(wire[offset:end])
        offset = end
    # Label lengths are < 64, so lower() only touches the letters.
    return b"".join(labels).lower() + b"\x00", (after if after >= 0 else offset)


# --- I/O -------------------------------------------------------------------------------


async def check(checker: DNSChecker, timeout_s: float) -> Result:
    """One DNS check, bounded to ``timeout_s`` (> 0); never raises (see ``GUARDED``)."""
    start = now_ns()
    if timeout_s > 0:
        limit_deadline(timeout_s)
    try:
        q = checker.question
        question = DNSQuestion(fully_qualified(q.name), q.qtype, q.qclass)
        asked = question_text(question.name, question.qtype, question.qclass)
        msg = f"DNS {asked} query to port {checker.target.port}"

        def done(success: bool, suffix: str, error: Exception | None) -> Result:
            return Result(success, msg + suffix, elapsed_ns(start), error)

        try:
            expected = parse_answer(question.qtype, question.qclass, checker.answer)
        except ValueError as error:
            return done(False, f"; {error}", None)
        query_id = _random_id()
        try:
            query = build_query(question.name, question.qtype, question.qclass, query_id)
        except (dns.exception.DNSException, ValueError) as error:
            return done(False, "; invalid query", error)
        try:
            sock, ep = open_udp(checker.target)
        except (OSError, CheckError) as error:
            return done(False, "", error)
        try:
            try:
                send_datagram(sock, ep, query)
            except CheckError as error:
                return done(False, "; failed to send request", error)
            ignored: list[str] = []
            while True:
                try:
                    wire = await receive_datagram(sock, ep, _UDP_BUFSIZE)
                except CheckError as error:
                    if ignored:  # say why the replies that came did not count
                        error = CheckError(f"{error} (ignored {len(ignored)}: {ignored[-1]})")
                    return done(False, "; failed to read response", error)
                try:
                    verdict = evaluate_reply(wire, query_id, question, expected, over_tcp=False)
                except Ignored as why:
                    ignored.append(str(why))
                    continue
                break
        finally:
            sock.close()
        if not verdict.truncated:
            return done(verdict.success, verdict.suffix, verdict.error)
        return await _check_over_tcp(checker, question, expected, done)
    except TimeoutError:
        return timed_out(start, timeout_s)
    except Exception as error:
        return internal_error(checker, start, error)


async def _check_over_tcp(
    checker: DNSChecker,
    question: DNSQuestion,
    expected: Expected,
    done: Callable[[bool, str, Exception | None], Result],
) -> Result:
    """The UDP reply was truncated: ask again over TCP (RFC 7766, length-prefixed)."""
    note = "; reply truncated, retried over TCP"
    query_id = _random_id()
    query = build_query(question.name, question.qtype, question.qclass, query_id)
    ep = endpoint(checker.target)
    try:
        sock = await dial_tcp(ep, checker.target.mark)
    except CheckError as error:
        return done(False, f"{note}; failed to connect", error)
    except TimeoutError:
        return done(False, f"{note}; failed to connect", CheckError(dial_timeout_text(ep)))
    try:
        try:
            await send_all(sock, struct.pack("!H", len(query)) + query)
        except OSError as error:  # TimeoutError too
            failure = CheckError(io_error_text("write", sock, ep, error))
            return done(False, f"{note}; failed to send request", failure)
        try:
            (length,) = struct.unpack("!H", await _read_exactly(sock, ep, 2))
            wire = await _read_exactly(sock, ep, length)
        except CheckError as error:
            return done(False, f"{note}; failed to read response", error)
        except OSError as error:
            failure = CheckError(io_error_text("read", sock, ep, error))
            return done(False, f"{note}; failed to read response", failure)
        try:
            verdict = evaluate_reply(wire, query_id, question, expected, over_tcp=True)
        except Ignored as why:
            return done(False, f"{note}; bad response", CheckError(str(why)))
        return done(verdict.success, note + verdict.suffix, verdict.error)
    finally:
        sock.close()


def _random_id() -> int:
    return int.from_bytes(os.urandom(2), "big")


async def _read_exactly(sock: _socket.socket, ep: Endpoint, count: int) -> bytes:
    data, eof = await recv_exactly(sock, count)
    if eof:
        raise CheckError(f"read {conn_name(sock, ep)}: EOF")
    return data
