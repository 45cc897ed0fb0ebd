"""HTTP and HTTPS checks, as Seesaw's ``HTTPChecker``, with a hand-written HTTP/1.1 client.

Writing the request bytes and parsing the response here (instead of an HTTP library) keeps
a check to a connect, one send and usually one recv, and lets the check read only what its
verdict needs: the status line and headers, then at most ``len(response)`` body bytes.

What Go does, and so do we:
- ``request`` is a path (``/healthz?x=1``) or an absolute URL; the scheme is forced to
  ``http``/``https`` by ``secure``; the URL's host, when given, is the ``Host`` header and
  the TLS server name, else the target's ``ip:port`` is.
- ``proxy``: the request line carries the absolute URL (the target is the proxy).
- The request bytes are net/http's, header for header (tests/test_http_wire_go.py holds
  them against Go's): ``request`` parsed as ``url.Parse`` does (its errors, the path's
  escaping), Host cleaned as Go cleans it (IPv6 zone dropped), URL userinfo sent as
  ``Authorization: Basic`` (and ``Proxy-Authorization`` with ``proxy``), and
  ``Accept-Encoding: gzip`` for every method but HEAD; a gzip body is decoded.
- ``response_code`` 0 accepts any status; ``response`` must be a prefix of the body.
- Redirects are never followed: a 3xx is judged as received. Go closes a redirect's body
  before the check reads it, so a 3xx with a ``Location`` and a ``response`` to match fails
  with "failed to read HTTP response", as Go's does.
- Messages: ``HTTP GET to 127.0.0.1:80; got 200 OK``, ``...; unexpected response - "..."``,
  ``...; failed to read HTTP response``; transport errors read as Go's
  ``Get "http://127.0.0.1:80/": dial tcp 127.0.0.1:80: connect: connection refused``.

- In PLAIN mode an absolute ``request`` naming a host is dialled there, not at the
  target: an IP literal directly, a name through ``resolve.resolve_tcp`` (getaddrinfo on a
  thread pool, answers kept 5 s), each address in turn until one connects, as Go's dialer.
  DSR and TUN dial the target (the VIP) with the mark, whatever the URL names.

Where we differ: with ``proxy`` and ``secure`` Go tunnels with CONNECT
through a TLS proxy; we speak TLS to the target and send the absolute URL. A non-ASCII
host name becomes the Host header through Python's IDNA 2003 codec, not Go's UTS #46
(``ß`` differs).
"""

from __future__ import annotations

import _socket
import base64
import ipaddress
import socket
import ssl
import string
import zlib

from seesaw_healthcheck.checkers import tls
from seesaw_healthcheck.checkers.base import CheckError, Result, internal_error, now_ns, timed_out
from seesaw_healthcheck.checkers.dial import (
    Endpoint,
    dial_tcp,
    endpoint,
    errno_text,
    recv_ready,
    recv_some,
    send_all,
)
from seesaw_healthcheck.checkers.resolve import resolve_tcp
from seesaw_healthcheck.goquote import go_quote
from seesaw_healthcheck.model import HTTPChecker, Mode, Target, ip_to_bytes
from seesaw_healthcheck.reactor import limit_deadline

__all__ = ["GUARDED", "Response", "build_request", "check", "describe", "parse_head"]

MAX_HEAD_BYTES = 1 << 20  # status line + headers; far beyond any health endpoint's
RECV_SIZE = 65536
_TOKEN_CHARS = frozenset((string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~").encode())
_REDIRECTS = frozenset((301, 302, 303, 307, 308))

# check() sets its own deadline and turns every exception into a Result, so checkers.run
# hands its coroutine out directly instead of wrapping it in one more.
GUARDED = True


def describe(checker: HTTPChecker) -> str:
    attrs = [f"code {checker.response_code}"]
    if checker.proxy:
        attrs.append("proxy")
    if checker.secure:
        attrs.append("secure")
        if checker.tls_verify:
            attrs.append("verify")
    return f"HTTP {checker.method} {checker.request} [{'; '.join(attrs)}] {checker.target}"


class _Plan:
    """What to send and where, derived from the checker (Go's URL handling)."""

    __slots__ = (
        "dial",
        "dial_name",
        "dials",
        "host_header",
        "message",
        "request",
        "server_name",
        "url",
        "url_error",
    )

    def __init__(
        self,
        url: str,
        host_header: str,
        server_name: str,
        dial: Endpoint,
        request: bytes,
        url_error: str,
        message: str,
    ) -> None:
        self.message = message  # "HTTP GET to 127.0.0.1:80"
        self.url = url
        self.url_error = url_error  # Go's url.Error prefix: 'Get "http://...": '
        self.host_header = host_header
        self.server_name = server_name
        self.dial = dial
        self.dials: tuple[Endpoint, ...] = (dial,)  # what a check connects to, in order
        self.dial_name: tuple[str, int] | None = None  # a URL host name to resolve first
        self.request = request


# --- Go's net/url, as far as a request needs it (bytes, as Go's strings are) ---

_LETTERS = frozenset(string.ascii_letters.encode())
_ALNUM = frozenset((string.ascii_letters + string.digits).encode())
_SCHEME_CHARS = _ALNUM | frozenset(b"+-.")
_LDH = _ALNUM | frozenset(b"-")
_HEXDIGITS = frozenset(string.hexdigits.encode())
_HOST_OK = frozenset(b"!$&'()*+,;=:[]<>\"")  # also left alone in a host (and zone)
_RESERVED = frozenset(b"$&+,/:;=?@")
_PATH_RAW_OK = frozenset(b"!$&'()*+,;=:@[]%")  # validEncoded's list: a raw path kept as is
_USERINFO_OK = _ALNUM | frozenset(b"-._:~!$&'()*+,;=%@")
_PATH, _HOST, _ZONE, _USERPASS, _FRAGMENT = range(5)


def _should_escape(c: int, mode: int) -> bool:
    """net/url's shouldEscape for the modes a request uses."""
    if c in _ALNUM or c in b"-_.~" or (mode in (_HOST, _ZONE) and c in _HOST_OK):
        return False
    if c in _RESERVED:
        if mode == _PATH:
            return c == 0x3F  # ?
        if mode == _USERPASS:
            return c in b"@/?:"
        if mode == _FRAGMENT:
            return False
    return not (mode == _FRAGMENT and c in b"!()*")


def _escape(s: bytes, mode: int) -> bytes:
    return b"".join(b"%%%02X" % c if _should_escape(c, mode) else bytes((c,)) for c in s)


def _unescape(s: bytes, mode: int) -> bytes:
    """net/url's unescape; ``ValueError`` carries Go's text."""
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x25:  # %
            escape = s[i : i + 3]
            if len(escape) < 3 or not (escape[1] in _HEXDIGITS and escape[2] in _HEXDIGITS):
                raise ValueError(f"invalid URL escape {go_quote(escape)}")
            # A host may escape only non-ASCII bytes; a zone what a host could hold as is.
            value = int(escape[1:], 16)
            if escape != b"%25" and (
                (mode == _HOST and value < 0x80)
                or (mode == _ZONE and value != 0x20 and _should_escape(value, _HOST))
            ):
                raise ValueError(f"invalid URL escape {go_quote(escape)}")
            i += 3
            continue
        if mode in (_HOST, _ZONE) and c < 0x80 and _should_escape(c, mode):
            raise ValueError(f"invalid character {go_quote(bytes((c,)))} in host name")
        i += 1
    if b"%" not in s:
        return s
    parts = s.split(b"%")
    return parts[0] + b"".join(bytes((int(p[:2], 16),)) + p[2:] for p in parts[1:])


def _valid_encoded(s: bytes, mode: int) -> bool:
    """net/url's validEncoded: may ``s`` (a path or fragment) go out as it is written?"""
    return all(c in _PATH_RAW_OK or not _should_escape(c, mode) for c in s)


def _valid_port(colon_port: bytes) -> bool:
    """net/url's validOptionalPort: empty, or a colon and digits (maybe none)."""
    return colon_port == b"" or (
        colon_port[:1] == b":" and all(0x30 <= c <= 0x39 for c in colon_port[1:])
    )


class _URL:
    """What Go's ``url.Parse`` makes of a string (the fields a request uses)."""

    __slots__ = ("force_query", "fragment", "host", "opaque", "path", "query", "user")

    def __init__(self) -> None:
        self.opaque = b""
        self.user: tuple[bytes, bytes | None] | None = None  # (name, password or None)
        self.host = b""  # unescaped, with the port: 127.0.0.1:80, [fe80::1%eth0]:80
        self.path = b""  # as written (escaped), see escaped_path
        self.force_query = False
        self.query = b""
        self.fragment = b""  # as written

    @classmethod
    def parse(cls, raw: bytes) -> _URL:
        """``url.Parse``; ``CheckError`` with Go's text."""
        before, hash_sign, fragment = raw.partition(b"#")
        url = cls()
        try:
            url._parse(before)
        except ValueError as error:
            raise CheckError(f"parse {go_quote(before)}: {error}") from None
        if hash_sign:
            try:
                _unescape(fragment, _FRAGMENT)
            except ValueError as error:
                raise CheckError(f"parse {go_quote(raw)}: {error}") from None
            url.fragment = fragment
        return url

    def _parse(self, raw: bytes) -> None:
        if any(c < 0x20 or c == 0x7F for c in raw):
            raise ValueError("net/url: invalid control character in URL")
        if raw == b"*":
            self.path = raw
            return
        rest = raw
        scheme = b""
        for i, c in enumerate(raw):  # getScheme: a letter, then letters, digits, "+-."
            if c == 0x3A:  # :
                if i == 0:
                    raise ValueError("missing protocol scheme")
                scheme, rest = raw[:i], raw[i + 1 :]
                break
            if c not in (_SCHEME_CHARS if i else _LETTERS):
                break
        if rest.endswith(b"?") and rest.count(b"?") == 1:
            self.force_query, rest = True, rest[:-1]
        else:
            rest, _, self.query = rest.partition(b"?")
        if not rest.startswith(b"/"):
            if scheme:
                self.opaque = rest
                return
            if b":" in rest.partition(b"/")[0]:
                raise ValueError("first path segment in URL cannot contain colon")
        if rest.startswith(b"//") and (scheme or not rest.startswith(b"///")):
            authority, slash, path = rest[2:].partition(b"/")
            rest = slash + path
            userinfo, at, hostport = authority.rpartition(b"@")
            self.host = _parse_host(hostport)
            if at:
                if not all(c in _USERINFO_OK for c in userinfo):
                    raise ValueError("net/url: invalid userinfo")
                name, colon, password = userinfo.partition(b":")
                self.user = (
                    _unescape(name, _USERPASS),
                    _unescape(password, _USERPASS) if colon else None,
                )
        _unescape(rest, _PATH)
        self.path = rest

    def escaped_path(self) -> bytes:
        """Go's EscapedPath: the path as written when that is a valid encoding, else the
        decoded path escaped afresh."""
        if _valid_encoded(self.path, _PATH):
            return self.path
        return _escape(_unescape(self.path, _PATH), _PATH)

    def request_uri(self, scheme: bytes) -> bytes:
        uri = self.opaque
        if not uri:
            uri = self.escaped_path() or b"/"
        elif uri.startswith(b"//"):
            uri = scheme + b":" + uri
        if self.force_query or self.query:
            uri += b"?" + self.query
        return uri

    def text(self, scheme: bytes) -> str:
        """Go's ``URL.String`` with the password shown as ``***`` (as net/http's errors do)."""
        out = scheme + b":"
        if self.opaque:
            out += self.opaque
        else:
            out += b"//"
            if self.user is not None:
                name, password = self.user
                if password is None:
                    out += _escape(name, _USERPASS) + b"@"
                else:  # net/http's stripPassword: the name as it is, the password hidden
                    out += name + b":***@"
            out += _escape(self.host, _HOST)
            path = self.escaped_path()
            if path and not path.startswith(b"/"):
                out += b"/"
            out += path
        if self.force_query or self.query:
            out += b"?" + self.query
        fragment = _unescape(self.fragment, _FRAGMENT)
        if fragment:
            valid = _valid_encoded(self.fragment, _FRAGMENT)
            out += b"#" + (self.fragment if valid else _escape(fragment, _FRAGMENT))
        return out.decode("utf-8", "surrogateescape")


def _parse_host(host: bytes) -> bytes:
    """net/url's parseHost: ``host[:port]`` unescaped; ``ValueError`` with Go's text."""
    if host.startswith(b"["):
        end = host.rfind(b"]")
        if end < 0:
            raise ValueError("missing ']' in host")
        if not _valid_port(host[end + 1 :]):
            raise ValueError(f"invalid port {go_quote(host[end + 1 :])} after host")
        zone = host.find(b"%25", 0, end)
        if zone >= 0:
            return (
                _unescape(host[:zone], _HOST)
                + _unescape(host[zone:end], _ZONE)
                + _unescape(host[end:], _HOST)
            )
    elif b":" in host and not _valid_port(host[host.rfind(b":") :]):
        raise ValueError(f"invalid port {go_quote(host[host.rfind(b':') :])} after host")
    return _unescape(host, _HOST)


def _split_host_port(hostport: bytes) -> tuple[bytes, bytes] | None:
    """net.SplitHostPort; None where it fails."""
    colon = hostport.rfind(b":")
    if colon < 0:
        return None
    if hostport.startswith(b"["):
        end = hostport.find(b"]")
        if end < 0 or end + 1 != colon:
            return None
        host, j, k = hostport[1:end], 1, end + 1
    else:
        host, j, k = hostport[:colon], 0, 0
        if b":" in host:
            return None
    if b"[" in hostport[j:] or b"]" in hostport[k:]:
        return None
    return host, hostport[colon + 1 :]


def _idna_ascii(name: bytes) -> bytes:
    """Go's idnaASCII (IDNA's Lookup profile), approximated with Python's IDNA 2003 codec:
    lower-cased first, as UTS #46 maps, and only letters, digits and inner hyphens allowed
    in a label (STD3 rules). ``ValueError`` where it fails."""
    if name.isascii():
        return name
    try:
        encoded = name.decode("utf-8").lower().encode("idna")
    except UnicodeError as error:
        raise ValueError(str(error)) from None
    for label in encoded.split(b"."):
        if not all(c in _LDH for c in label) or label.startswith(b"-") or label.endswith(b"-"):
            raise ValueError(f"idna: disallowed label {label!r}")
    return encoded


def _header_host(hostport: bytes) -> bytes:
    """The ``Host`` header Go writes: cleanHost (cut at a space or slash, IDNA), then the
    IPv6 zone removed (removeZone)."""
    for stop in (b" ", b"/"):
        hostport = hostport.partition(stop)[0]
    split = _split_host_port(hostport)
    try:
        if split is None:
            hostport = _idna_ascii(hostport)
        else:
            host, port = split
            host = _idna_ascii(host)
            hostport = (b"[" + host + b"]" if b":" in host else host) + b":" + port
    except ValueError:
        pass  # Go sends it as it is
    if hostport.startswith(b"["):
        end = hostport.rfind(b"]")
        zone = hostport.rfind(b"%", 0, end)
        if end >= 0 and zone >= 0:
            hostport = hostport[:zone] + hostport[end:]
    return hostport


def _hostname_port(hostport: bytes) -> tuple[bytes, bytes]:
    """Go's URL.Hostname and URL.Port."""
    host, port = hostport, b""
    colon = host.rfind(b":")
    if colon >= 0 and _valid_port(host[colon:]):
        host, port = host[:colon], host[colon + 1 :]
    if host.startswith(b"[") and host.endswith(b"]"):
        host = host[1:-1]
    return host, port


# Plans by the checker's plain values (request, method, secure, proxy, mode, ip, port): a
# check indexes this inline (cheaper than a call and an lru_cache); cleared past the limit.
_PLANS: dict[tuple[str, str, bool, bool, int, bytes, int], _Plan] = {}
_MAX_PLANS = 16384


def build_request(checker: HTTPChecker) -> _Plan:
    """Parse ``checker.request`` as Go's ``url.Parse`` would and build the request bytes.

    Raises ``CheckError`` with Go's text for a bad target, URL or method. Cached (keyed by
    plain values, cheap to hash): a check of the same configuration reuses the bytes.
    """
    target = checker.target
    ip = bytes(target.ip)
    key = (
        checker.request, checker.method, checker.secure, checker.proxy, target.mode, ip,
        target.port,
    )  # fmt: skip
    plan = _PLANS.get(key)
    if plan is None:
        plan = _build(*key[:4], key[4] == Mode.PLAIN, ip, target.port)
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        _PLANS[key] = plan
    return plan


def _build(
    raw: str, method: str, secure: bool, proxy: bool, plain: bool, ip: bytes, port: int
) -> _Plan:
    ep = endpoint(Target(ip=ip, port=port))
    scheme = b"https" if secure else b"http"
    url = _URL.parse(raw.encode("utf-8", "surrogateescape"))
    raw_method = method
    method = method or "GET"
    if not all(b in _TOKEN_CHARS for b in method.encode("utf-8", "surrogateescape")):
        raise CheckError(f"net/http: invalid method {go_quote(method)}")

    # Seesaw fills in the target when the request names no host; http.NewRequest's Host is
    # the request's own host (an empty port dropped), and the header falls back to the URL's.
    own_host = url.host
    if own_host.rfind(b":") > own_host.rfind(b"]"):
        own_host = own_host.removesuffix(b":")
    if not url.host:
        url.host = ep.addr.encode()
    host = _header_host(own_host) or _header_host(url.host)

    dial = ep
    dial_name = None
    url_ip, url_port = _hostname_port(url.host)
    if own_host and plain:
        url_port_number = int(url_port) if url_port else (443 if secure else 80)
        try:
            literal = ipaddress.ip_address(url_ip.partition(b"%")[0].decode("latin-1"))
        except ValueError:
            literal = None
        if literal is not None:
            dial = endpoint(Target(ip=ip_to_bytes(literal), port=url_port_number))
        else:
            dial_name = (url_ip.decode("utf-8", "surrogateescape"), url_port_number)
    try:
        server_name = _idna_ascii(url_ip).decode("utf-8", "surrogateescape")
    except ValueError:
        server_name = url_ip.decode("utf-8", "surrogateescape")

    # Request.write: the request target, then Host, User-Agent, Content-Length (only these
    # methods get one for a nil body), the request's headers, the Transport's.
    target_uri = url.request_uri(scheme)
    if proxy and not url.opaque:
        target_uri = scheme + b"://" + host + target_uri
    elif method == "CONNECT" and not url.path:
        target_uri = url.opaque or host
    lines = [
        method.encode("utf-8", "surrogateescape") + b" " + target_uri + b" HTTP/1.1",
        b"Host: " + host,
        b"User-Agent: Go-http-client/1.1",
    ]
    if method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: 0")
    auth = b""
    if url.user is not None:  # http.Client turns a URL's userinfo into Basic auth
        name, password = url.user
        auth = b"Basic " + base64.b64encode(name + b":" + (password or b""))
        lines.append(b"Authorization: " + auth)
    if method != "HEAD":  # the Transport asks for gzip itself (and then decodes it)
        lines.append(b"Accept-Encoding: gzip")
    if auth and proxy and not secure:  # the proxy is the same URL, with the same userinfo
        lines.append(b"Proxy-Authorization: " + auth)
    request = b"\r\n".join(lines) + b"\r\n\r\n"

    text = url.text(scheme)
    op = method[:1] + method[1:].lower()  # Go's url.Error Op: "Get", "Head"
    plan = _Plan(
        text,
        host.decode("utf-8", "surrogateescape"),
        server_name,
        dial,
        request,
        f"{op} {go_quote(text)}: ",
        f"HTTP {raw_method} to {ep.addr}",
    )
    plan.dial_name = dial_name
    return plan


class Response:
    """A parsed status line and the headers the verdict needs."""

    __slots__ = ("chunked", "code", "content_length", "gzip", "location", "status")

    def __init__(self) -> None:
        self.status = ""
        self.code = 0
        self.content_length: int | None = None
        self.chunked = False
        self.gzip = False
        self.location = False


def _is_ascii_digits(text: str) -> bool:
    """str.isdigit() also takes "²" and other Unicode digits, which int() refuses."""
    return text.isascii() and text.isdigit()


def parse_head(head: bytes, headers: bool = True) -> Response:
    """Parse a status line and header block (without the blank line). ``CheckError``s
    carry Go's ``malformed HTTP ...`` texts. ``headers=False`` reads the status line only
    (all a check without a body to match needs)."""
    text = head.decode("latin-1")
    lines = text.split("\n") if headers else [text[: text.find("\n")] if "\n" in text else text]
    status_line = lines[0].rstrip("\r")
    proto, sep, status = status_line.partition(" ")
    if not sep or not proto.startswith("HTTP/"):
        raise CheckError(f"malformed HTTP response {go_quote(status_line)}")
    status = status.lstrip(" ")
    code_text = status[:3]
    if len(code_text) != 3 or not _is_ascii_digits(code_text) or (status[3:4] not in ("", " ")):
        raise CheckError(f"malformed HTTP status code {go_quote(code_text)}")
    response = Response()
    response.status = status
    response.code = int(code_text)
    for line in lines[1:]:
        name, colon, value = line.rstrip("\r").partition(":")
        if not colon:
            raise CheckError(f"malformed MIME header line: {line.rstrip()}")
        name = name.strip().lower()
        value = value.strip()
        if name == "content-length":
            if not _is_ascii_digits(value):
                raise CheckError(f"bad Content-Length {go_quote(value)}")
            response.content_length = int(value)
        elif name == "transfer-encoding":
            response.chunked = value.lower() == "chunked"
        elif name == "content-encoding":
            response.gzip = value.lower() == "gzip"
        elif name == "location":
            response.location = True
    return response


class _Stream:
    """Buffered reads from a non-blocking (TLS) socket on the reactor."""

    __slots__ = ("buf", "eof", "sock")

    def __init__(self, sock: object) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    async def fill(self) -> None:
        data = await recv_some(self.sock, RECV_SIZE)  # type: ignore[arg-type]
        if data:
            self.buf += data
        else:
            self.eof = True

    async def read_head(self) -> bytes:
        """Up to the blank line after the headers (consumed); b"" on EOF before any byte.

        Lines end in LF or CRLF (as Go's textproto reads them), so the head ends at the
        first LF followed by LF or CRLF: the earliest one, whatever the recv sizes were.
        """
        start = 0
        while True:
            end = self.buf.find(b"\n\r\n", start)
            lf_lf = self.buf.find(b"\n\n", start, len(self.buf) if end < 0 else end + 1)
            if lf_lf >= 0 or end >= 0:
                end, size = (lf_lf, 2) if lf_lf >= 0 else (end, 3)
                head = bytes(self.buf[:end])
                del self.buf[: end + size]
                return head.removesuffix(b"\r")
            if self.eof:
                if self.buf:
                    raise CheckError("unexpected EOF")
                return b""
            if len(self.buf) > MAX_HEAD_BYTES:
                raise CheckError("net/http: server response headers exceeded limit")
            start = max(0, len(self.buf) - 3)
            await self.fill()

    async def read_line(self) -> bytes:
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 1]
                return line
            if self.eof:
                raise CheckError("unexpected EOF")
            if len(self.buf) > 4096:
                raise CheckError("http chunk length too large")
            await self.fill()

    async def read_some(self, limit: int) -> bytes:
        """At most ``limit`` bytes; b"" only at EOF."""
        if not self.buf and not self.eof:
            await self.fill()
        data = bytes(self.buf[:limit])
        del self.buf[:limit]
        return data


async def _read_body_prefix(stream: _Stream, response: Response, size: int) -> bytes:
    """The first ``size`` bytes of the (decoded) body, fewer if it is shorter.

    A gzip body is read to its end (at most ``GZIP_INPUT_LIMIT`` bytes of it) and decoded
    in one go, a flate window past the prefix: Go's reader decodes a whole window before
    it returns a byte, so corrupt data there fails the read as in Go, and the verdict does
    not depend on how the compressed bytes were split across recvs.
    """
    if not response.gzip:
        return await _read_body(stream, response, size)
    compressed = await _read_body(stream, response, GZIP_INPUT_LIMIT)
    try:
        decoded = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(
            compressed, size + _FLATE_WINDOW
        )
    except zlib.error as error:
        raise CheckError(f"gzip: {error}") from None
    return decoded[:size]


GZIP_INPUT_LIMIT = 65536
_FLATE_WINDOW = 32768


async def _read_body(stream: _Stream, response: Response, size: int) -> bytes:
    """The first ``size`` bytes of the body as sent (chunks joined), fewer if shorter.

    As Go's reader: no more than that is read, so a body cut short after it still counts.
    """
    out = bytearray()
    remaining = response.content_length
    chunk_left = 0
    chunk_ended = False  # a chunk's data is all read: its CRLF comes before the next size
    while len(out) < size:
        if response.chunked:
            if chunk_left == 0:
                if chunk_ended:
                    await stream.read_line()  # the CRLF after the chunk
                    chunk_ended = False
                line = (await stream.read_line()).split(b";")[0].strip()
                # Hex digits only: int() would also take a sign, "0x" and underscores.
                if not line or not all(c in _HEXDIGITS for c in line):
                    raise CheckError("malformed chunked encoding")
                chunk_left = int(line, 16)
                if chunk_left == 0:
                    break
            piece = await stream.read_some(min(chunk_left, size - len(out)))
            if not piece:
                raise CheckError("unexpected EOF")
            chunk_left -= len(piece)
            chunk_ended = chunk_left == 0
        elif remaining is not None:
            if remaining == 0:
                break
            piece = await stream.read_some(remaining)
            if not piece:
                raise CheckError("unexpected EOF")
            remaining -= len(piece)
        else:
            piece = await stream.read_some(RECV_SIZE)
            if not piece:
                break
        out += piece
    return bytes(out[:size])


async def check(checker: HTTPChecker, timeout_s: float, sni: str | None = None) -> Result:
    """One HTTP check, bounded to ``timeout_s`` (> 0); never raises (see ``GUARDED``)."""
    start = now_ns()
    if timeout_s > 0:
        limit_deadline(timeout_s)
    try:
        target = checker.target
        try:
            plan = _PLANS[
                checker.request, checker.method, checker.secure, checker.proxy, target.mode,
                target.ip, target.port,
            ]  # fmt: skip
        except (KeyError, TypeError):  # first use (or an odd ip type): build, validate
            try:
                plan = build_request(checker)
            except CheckError as error:
                return Result(False, "", now_ns() - start, str(error))
        msg = plan.message
        url_error = plan.url_error

        # PLAIN mode dials through Go's Transport (network "tcp" in its texts); DSR and TUN
        # dial the VIP with the mark first (dialTCP: "tcp4"/"tcp6", no url.Error prefix).
        plain = target.mode == Mode.PLAIN
        network = "tcp" if plain else None
        prefix = url_error if plain else ""
        dials = plan.dials
        if plan.dial_name is not None:
            try:
                dials = await resolve_tcp(*plan.dial_name)
            except CheckError as error:
                text = f"{url_error}dial tcp: {error}"
                return Result(False, msg + "; failed to connect", now_ns() - start, text)
        # Each address in turn; Go reports the first one's error when all fail.
        first_failure: CheckError | None = None
        for dial_ep in dials:
            try:
                sock = await dial_tcp(dial_ep, target.mark, network)
                break
            except CheckError as error:
                if first_failure is None:
                    first_failure = error
            except TimeoutError:
                return Result(
                    False, msg + "; failed to connect", now_ns() - start, url_error + _TIMEOUT
                )
        else:
            text = prefix + str(first_failure)
            return Result(False, msg + "; failed to connect", now_ns() - start, text)

        conn: _socket.socket = sock
        try:
            try:
                stream = _Stream(conn)  # reads past the first recv, and all of TLS
                if checker.secure:
                    if not isinstance(sock, socket.socket):  # ssl wants the full socket class
                        sock = socket.socket(fileno=sock.detach())
                    conn = await tls.handshake(sock, checker.tls_verify, sni or plan.server_name)
                    stream.sock = conn
                    await send_all(conn, plan.request)
                else:
                    request = plan.request
                    try:
                        sent = conn.send(request)
                    except BlockingIOError:
                        sent = 0
                    if sent < len(request):
                        await send_all(conn, request[sent:])
                    data = await recv_ready(conn, RECV_SIZE)
                    if not checker.response and data.startswith(b"HTTP/1.1 2"):
                        # Fast path for the usual health answer, no body to match: the status
                        # line is all the verdict needs (a whole, well-formed 2xx line).
                        line_end = data.find(b"\r\n")
                        if line_end >= 12 and data[12:13] in (b" ", b"\r") and data[9:12].isdigit():
                            code = int(data[9:12])
                            ok = checker.response_code == 0 or code == checker.response_code
                            status = data[9:line_end].decode("latin-1")
                            return Result(ok, f"{msg}; got {status}", now_ns() - start)
                    if data:
                        stream.buf += data
                    else:
                        stream.eof = True
                while True:
                    head = await stream.read_head()
                    if not head:
                        raise CheckError("EOF")
                    response = parse_head(head, bool(checker.response))
                    if response.code >= 200 or response.code == 101:
                        break  # 1xx informational responses precede the real one
            except CheckError as error:
                return Result(False, msg, now_ns() - start, url_error + str(error))
            except TimeoutError:
                return Result(False, msg, now_ns() - start, url_error + _TIMEOUT)
            except OSError as tls_error:
                reason = tls.ssl_error_text(tls_error, plan.server_name)
                if tls_error.errno is not None and not isinstance(tls_error, ssl.SSLError):
                    reason = errno_text(tls_error.errno)
                return Result(False, msg, now_ns() - start, url_error + reason)

            code_ok = checker.response_code == 0 or response.code == checker.response_code
            msg = f"{msg}; got {response.status}"
            want = checker.response
            if not want:
                return Result(code_ok, msg, now_ns() - start)
            no_body = (
                checker.method == "HEAD"
                or response.code in (204, 304)
                or 100 <= response.code < 200
                or (response.code in _REDIRECTS and response.location)  # Go closed it
            )
            want_bytes = want.encode("utf-8", "surrogateescape")
            if no_body:
                return Result(False, msg + "; failed to read HTTP response", now_ns() - start)
            try:
                body = await _read_body_prefix(stream, response, len(want_bytes))
            except (CheckError, OSError, TimeoutError):
                return Result(False, msg + "; failed to read HTTP response", now_ns() - start)
            if not body:
                # Go's io.ReadFull reports EOF for an empty body: a read failure, not a mismatch.
                return Result(False, msg + "; failed to read HTTP response", now_ns() - start)
            if body != want_bytes:
                return Result(
                    False, f"{msg}; unexpected response - {go_quote(body)}", now_ns() - start
                )
            return Result(code_ok, msg, now_ns() - start)
        finally:
            conn.close()
            if conn is not sock:
                sock.close()
    except TimeoutError:
        return timed_out(start, timeout_s)
    except Exception as bug:
        return internal_error(checker, start, bug)


_TIMEOUT = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
