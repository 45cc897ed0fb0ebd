"""RADIUS health check: one Access-Request over UDP, the reply verified (RFC 2865).

The request carries, in Seesaw's order: NAS-Identifier (this host's name), User-Name,
User-Password (hidden with the shared secret and the request authenticator, RFC 2865
section 5.2), NAS-IP-Address (the local IPv4 address the socket got, when there is one),
NAS-Port-Type virtual (5) and Service-Type login (1).

The reply must come from the target (the socket is connected), carry the request's
identifier and the response authenticator MD5(Code, Identifier, Length, Request
Authenticator, Attributes, Secret). ``Response`` then says which reply counts as healthy:
``accept``, ``reject``, ``challenge`` or ``any``; an empty ``Response`` means ``accept``,
the default Seesaw's constructor gives (Go sends whatever is configured, so an empty one
could never succeed there).

Differences from Seesaw, on purpose: Go never sends NAS-IP-Address (it parses the local
``ip:port`` string as a bare IP, which fails); we send the IPv4 address as the code meant.
A reply whose length field or attributes do not add up is rejected as undecodable.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
from dataclasses import dataclass

from seesaw_healthcheck.checkers.base import CheckError, Result, elapsed_ns, now_ns
from seesaw_healthcheck.checkers.dial import exchange_datagram, open_udp
from seesaw_healthcheck.model import RADIUSChecker

ACCESS_REQUEST = 1
ACCESS_ACCEPT = 2
ACCESS_REJECT = 3
ACCESS_CHALLENGE = 11

CODE_NAMES = {
    1: "Access-Request",
    2: "Access-Accept",
    3: "Access-Reject",
    4: "Accounting-Request",
    5: "Accounting-Response",
    11: "Access-Challenge",
    12: "Status-Server",
    13: "Status-Client",
    255: "Reserved",
}

ATTR_USER_NAME = 1
ATTR_USER_PASSWORD = 2
ATTR_NAS_IP_ADDRESS = 4
ATTR_SERVICE_TYPE = 6
ATTR_NAS_IDENTIFIER = 32
ATTR_NAS_PORT_TYPE = 61

SERVICE_TYPE_LOGIN = 1
NAS_PORT_TYPE_VIRTUAL = 5

HEADER_SIZE = 20
MAXIMUM_SIZE = 4096
_PASSWORD_MAX = 128  # RFC 2865 5.2: at most 128 octets once padded

# Which reply codes each configured Response accepts.
_WANTED = {
    "accept": (ACCESS_ACCEPT,),
    "reject": (ACCESS_REJECT,),
    "challenge": (ACCESS_CHALLENGE,),
    "any": None,
}

_HOSTNAME = socket.gethostname().encode("utf-8", "surrogateescape")


class RadiusDecodeError(ValueError):
    """A RADIUS packet that is too short, too long or whose attributes do not add up."""


def code_name(code: int) -> str:
    return CODE_NAMES.get(code, f"(unknown {code})")


def hide_password(password: bytes, secret: bytes, authenticator: bytes) -> bytes:
    """RFC 2865 5.2 User-Password hiding, padded to 16 octets and cut at 128 as Seesaw does.

    An empty password hides to an empty value, as in Seesaw.
    """
    length = min((len(password) + 15) & ~15, _PASSWORD_MAX)
    plain = password[:length].ljust(length, b"\x00")
    hidden = bytearray()
    previous = authenticator
    for offset in range(0, length, 16):
        pad = hashlib.md5(secret + previous).digest()
        block = bytes(p ^ k for p, k in zip(plain[offset : offset + 16], pad, strict=True))
        hidden += block
        previous = block
    return bytes(hidden)


def encode_attribute(attr_type: int, value: bytes) -> bytes:
    if len(value) > 253:
        raise ValueError(f"RADIUS attribute {attr_type} value too long: {len(value)} > 253")
    return bytes((attr_type, len(value) + 2)) + value


def build_access_request(
    identifier: int,
    authenticator: bytes,
    *,
    username: bytes,
    password: bytes,
    secret: bytes,
    nas_identifier: bytes,
    nas_ip: bytes | None,
) -> bytes:
    """An Access-Request with Seesaw's attributes in Seesaw's order."""
    attributes = [
        encode_attribute(ATTR_NAS_IDENTIFIER, nas_identifier),
        encode_attribute(ATTR_USER_NAME, username),
        encode_attribute(ATTR_USER_PASSWORD, hide_password(password, secret, authenticator)),
    ]
    if nas_ip is not None:
        attributes.append(encode_attribute(ATTR_NAS_IP_ADDRESS, nas_ip))
    attributes.append(
        encode_attribute(ATTR_NAS_PORT_TYPE, struct.pack("!I", NAS_PORT_TYPE_VIRTUAL))
    )
    attributes.append(encode_attribute(ATTR_SERVICE_TYPE, struct.pack("!I", SERVICE_TYPE_LOGIN)))
    body = b"".join(attributes)
    length = HEADER_SIZE + len(body)
    if length > MAXIMUM_SIZE:
        raise ValueError(f"RADIUS request too long: {length} > {MAXIMUM_SIZE}")
    return struct.pack("!BBH16s", ACCESS_REQUEST, identifier, length, authenticator) + body


@dataclass(frozen=True, slots=True)
class Packet:
    code: int
    identifier: int
    length: int
    authenticator: bytes
    attributes: list[tuple[int, bytes]]
    raw_attributes: bytes


def decode_packet(data: bytes) -> Packet:
    """Parse a RADIUS packet; octets past the Length field are padding and ignored."""
    if len(data) < HEADER_SIZE:
        raise RadiusDecodeError(f"packet of {len(data)} bytes is shorter than a header")
    code, identifier, length, authenticator = struct.unpack_from("!BBH16s", data)
    if length < HEADER_SIZE or length > MAXIMUM_SIZE:
        raise RadiusDecodeError(f"invalid length {length}")
    if length > len(data):
        raise RadiusDecodeError(f"length {length} exceeds the {len(data)} bytes received")
    raw = data[HEADER_SIZE:length]
    attributes: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(raw):
        if offset + 2 > len(raw):
            raise RadiusDecodeError(f"truncated attribute header at offset {HEADER_SIZE + offset}")
        attr_type, attr_len = raw[offset], raw[offset + 1]
        if attr_len < 2:
            raise RadiusDecodeError(f"invalid attribute length: {attr_len}")
        if offset + attr_len > len(raw):
            raise RadiusDecodeError(
                f"attribute {attr_type} of {attr_len} bytes overruns the packet "
                f"at offset {HEADER_SIZE + offset}"
            )
        attributes.append((attr_type, raw[offset + 2 : offset + attr_len]))
        offset += attr_len
    return Packet(code, identifier, length, authenticator, attributes, raw)


def response_authenticator(packet: Packet, request_authenticator: bytes, secret: bytes) -> bytes:
    """MD5(Code + Identifier + Length + RequestAuth + Attributes + Secret), RFC 2865 3."""
    header = struct.pack("!BBH", packet.code, packet.identifier, packet.length)
    return hashlib.md5(header + request_authenticator + packet.raw_attributes + secret).digest()


def evaluate_reply(
    data: bytes, identifier: int, request_authenticator: bytes, secret: bytes, response: str
) -> tuple[bool, str, Exception | None]:
    """Judge a reply: (success, message suffix starting with "; ", decode error or None)."""
    try:
        packet = decode_packet(data)
    except RadiusDecodeError as exc:
        return False, "; failed to decode response", exc
    if packet.identifier != identifier:
        return False, "; identifier mismatch", None
    if packet.authenticator != response_authenticator(packet, request_authenticator, secret):
        return False, "; response authenticator mismatch (incorrect secret?)", None
    suffix = f"; got RADIUS {code_name(packet.code)} response"
    wanted = _WANTED.get(response or "accept", ())
    if wanted is None or packet.code in wanted:
        return True, suffix, None
    if packet.code in (ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE):
        return False, f"{suffix}; want {response or 'accept'} response", None
    return False, f"{suffix}; unknown RADIUS response {packet.code}", None


def describe(checker: RADIUSChecker) -> str:
    return f"RADIUS {checker.target}"


async def check(checker: RADIUSChecker, timeout_s: float) -> Result:
    start = now_ns()
    msg = f"RADIUS {code_name(ACCESS_REQUEST)} to port {checker.target.port}"
    secret = checker.secret.encode("utf-8", "surrogateescape")
    try:
        sock, ep = open_udp(checker.target)
    except (OSError, CheckError) as error:
        return Result(False, msg, elapsed_ns(start), error)
    try:
        identifier = os.urandom(1)[0]
        authenticator = os.urandom(16)
        nas_ip = socket.inet_aton(sock.getsockname()[0]) if ep.version == 4 else None
        try:
            request = build_access_request(
                identifier,
                authenticator,
                username=checker.username.encode("utf-8", "surrogateescape"),
                password=checker.password.encode("utf-8", "surrogateescape"),
                secret=secret,
                nas_identifier=_HOSTNAME,
                nas_ip=nas_ip,
            )
        except ValueError as error:
            return Result(False, f"{msg}; failed to build request", elapsed_ns(start), error)
        reply, suffix, io_error = await exchange_datagram(sock, ep, request, MAXIMUM_SIZE)
        if reply is None:
            return Result(False, msg + suffix, elapsed_ns(start), io_error)
        success, suffix, decode_error = evaluate_reply(
            reply, identifier, authenticator, secret, checker.response
        )
        return Result(success, msg + suffix, elapsed_ns(start), decode_error)
    finally:
        sock.close()
