"""HTTP and HTTPS checks, as Seesaw's ``HTTPChecker``, with a hand-written HTTP/1.1 client.

Writing the request bytes and parsing the response here (instead of an HTTP library) keeps
a check to a connect, one send and usually one recv, and lets the check read only what its
verdict needs: the status line and headers, then at most ``len(response)`` body bytes.

What Go does, and so do we:
- ``request`` is a path (``/healthz?x=1``) or an absolute URL; the scheme is forced to
  ``http``/``https`` by ``secure``; the URL's host, when given, is the ``Host`` header and
  the TLS server name, else the target's ``ip:port`` is.
- ``proxy``: the request line carries the absolute URL (the target is the proxy).
- ``response_code`` 0 accepts any status; ``response`` must be a prefix of the body.
- Redirects are never followed: a 3xx is judged as received. Go closes a redirect's body
  before the check reads it, so a 3xx with a ``Location`` and a ``response`` to match fails
  with "failed to read HTTP response", as Go's does.
- Messages: ``HTTP GET to 127.0.0.1:80; got 200 OK``, ``...; unexpected response - "..."``,
  ``...; failed to read HTTP response``; transport errors read as Go's
  ``Get "http://127.0.0.1:80/": dial tcp 127.0.0.1:80: connect: connection refused``.

Where we differ: with a host *name* in an absolute ``request`` Go resolves and dials that
name in PLAIN mode; we always dial the target (no blocking DNS on the reactor), and dial
an IP-literal URL host as Go does. With ``proxy`` and ``secure`` Go tunnels with CONNECT
through a TLS proxy; we speak TLS to the target and send the absolute URL. We do not send
``Accept-Encoding: gzip`` but do decode a gzip body if a server sends one anyway.
"""

from __future__ import annotations

import _socket
import ipaddress
import socket
import ssl
import string
import zlib
from errno import EINPROGRESS
from socket import SO_ERROR, SOL_SOCKET
from urllib.parse import quote, urlsplit

from seesaw_healthcheck.checkers import tls
from seesaw_healthcheck.checkers.base import (
    CheckError,
    Endpoint,
    Result,
    dial_tcp_bare,
    endpoint,
    errno_text,
    go_quote,
    internal_error,
    now_ns,
    timed_out,
)
from seesaw_healthcheck.checkers.tcp import send_all
from seesaw_healthcheck.model import HTTPChecker, Mode, Target, ip_to_bytes
from seesaw_healthcheck.reactor import limit_deadline, readable, writable

__all__ = ["GUARDED", "Response", "build_request", "check", "describe", "parse_head"]

MAX_HEAD_BYTES = 1 << 20  # status line + headers; far beyond any health endpoint's
RECV_SIZE = 65536
_TOKEN_CHARS = frozenset((string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~").encode())
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_WANT_READ = (BlockingIOError, ssl.SSLWantReadError)
_STREAM = socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC

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

    __slots__ = ("dial", "host_header", "message", "request", "server_name", "url", "url_error")

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
        self.request = request


def _split_host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        end = hostport.find("]")
        host, rest = hostport[1:end], hostport[end + 1 :]
        return host, rest[1:] if rest.startswith(":") else ""
    host, _, port = hostport.partition(":")
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
    scheme = "https" if secure else "http"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise CheckError(f'parse "{raw}": net/url: invalid control character in URL')
    try:
        parts = urlsplit(raw)
    except ValueError as error:
        raise CheckError(f'parse "{raw}": {error}') from None
    url_host = parts.netloc.rpartition("@")[2] if parts.scheme or raw.startswith("//") else ""
    hostport = url_host or ep.addr
    path = quote(parts.path, safe=_PATH_SAFE, encoding="utf-8", errors="surrogateescape")
    request_uri = path or "/"
    if parts.query or raw.endswith("?"):
        request_uri += "?" + parts.query
    absolute = f"{scheme}://{hostport}{request_uri if path else '/' + request_uri[1:]}"

    raw_method = method
    method = method or "GET"
    if not all(b in _TOKEN_CHARS for b in method.encode("utf-8", "surrogateescape")):
        raise CheckError(f"net/http: invalid method {go_quote(method)}")

    dial = ep
    url_ip, url_port = _split_host_port(url_host)
    if url_host and plain:
        try:
            literal = ipaddress.ip_address(url_ip.partition("%")[0])
        except ValueError:
            literal = None  # a name: we dial the target, see the module docstring
        if literal is not None:
            url_port_number = int(url_port) if url_port.isdigit() else (443 if secure else 80)
            dial = endpoint(Target(ip=ip_to_bytes(literal), port=url_port_number))
    server_name = url_ip if url_host else ep.host

    target_uri = absolute if proxy else request_uri
    lines = [
        f"{method} {target_uri} HTTP/1.1",
        f"Host: {hostport.partition('%25')[0] if hostport.startswith('[') else hostport}",
        "User-Agent: Go-http-client/1.1",
    ]
    if method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Length: 0")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")
    op = method[:1] + method[1:].lower()  # Go's url.Error Op: "Get", "Head"
    return _Plan(
        absolute,
        hostport,
        server_name,
        dial,
        request,
        f"{op} {go_quote(absolute)}: ",
        f"HTTP {raw_method} to {ep.addr}",
    )


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
    if len(code_text) != 3 or not code_text.isdigit() or (status[3:4] not in ("", " ")):
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
            if not value.isdigit():
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
        sock = self.sock
        while True:
            try:
                data: bytes = sock.recv(RECV_SIZE)  # type: ignore[attr-defined]
            except _WANT_READ:
                await readable(sock)  # type: ignore[arg-type]
                continue
            except ssl.SSLWantWriteError:
                await writable(sock)  # type: ignore[arg-type]
                continue
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                data = b""
            if data:
                self.buf += data
            else:
                self.eof = True
            return

    async def read_head(self) -> bytes:
        """Up to the blank line after the headers (consumed); b"" on EOF before any byte."""
        start = 0
        while True:
            end = self.buf.find(b"\r\n\r\n", start)
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[: end + 4]
                return head
            end = self.buf.find(b"\n\n", start)
            if end >= 0:
                head = bytes(self.buf[:end])
                del self.buf[: end + 2]
                return head
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
    """The first ``size`` bytes of the (decoded) body, fewer if it is shorter."""
    out = bytearray()
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if response.gzip else None
    remaining = response.content_length
    chunk_left = 0
    while len(out) < size:
        if response.chunked:
            if chunk_left == 0:
                line = (await stream.read_line()).split(b";")[0].strip()
                try:
                    chunk_left = int(line, 16)
                except ValueError:
                    raise CheckError("malformed chunked encoding") from None
                if chunk_left == 0:
                    break
            piece = await stream.read_some(chunk_left)
            if not piece:
                raise CheckError("unexpected EOF")
            chunk_left -= len(piece)
            if chunk_left == 0:
                await stream.read_line()  # the CRLF after the chunk
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
        if inflate is not None:
            try:
                piece = inflate.decompress(piece, size - len(out) + 1)
            except zlib.error as error:
                raise CheckError(f"gzip: {error}") from None
        out += piece
    return bytes(out[:size])


def _dial_error(checker: HTTPChecker, ep: Endpoint, url_error: str, reason: str) -> str:
    """Go's text: PLAIN mode dials through http.Transport ("tcp", wrapped in a url.Error);
    DSR/TUN dial first with dialTCP ("tcp4"/"tcp6", unwrapped)."""
    if checker.target.mode == Mode.PLAIN:
        return f"{url_error}dial tcp {ep.addr}: {reason}"
    return f"dial tcp{ep.version} {ep.addr}: {reason}"


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

        dial_ep = plan.dial
        sock: _socket.socket
        try:
            if checker.target.mark:
                sock = await dial_tcp_bare(dial_ep, checker.target.mark)
            else:
                # dial_tcp_bare inlined: one coroutine level less on the hot path.
                sock = _socket.socket(dial_ep.family, _STREAM)
                try:
                    code = sock.connect_ex(dial_ep.sockaddr)
                    if code == EINPROGRESS:
                        await writable(sock)
                        code = sock.getsockopt(SOL_SOCKET, SO_ERROR)
                except BaseException:
                    sock.close()
                    raise
                if code:
                    sock.close()
                    text = _dial_error(checker, dial_ep, url_error, f"connect: {errno_text(code)}")
                    return Result(False, msg + "; failed to connect", now_ns() - start, text)
        except CheckError as error:
            text = str(error)
            if checker.target.mode == Mode.PLAIN:  # Go's Transport dials "tcp", not "tcp4"
                text = url_error + text.replace("dial tcp4 ", "dial tcp ", 1).replace(
                    "dial tcp6 ", "dial tcp ", 1
                )
            return Result(False, msg + "; failed to connect", now_ns() - start, text)
        except TimeoutError:  # before OSError, which it is a subclass of
            return Result(
                False, msg + "; failed to connect", now_ns() - start, url_error + _TIMEOUT
            )
        except OSError as error:  # no socket
            text = _dial_error(
                checker, dial_ep, url_error, f"socket: {errno_text(error.errno or 0)}"
            )
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
                    # The answer is not there yet: waiting first saves a failed recv.
                    await readable(conn)
                    data = conn.recv(RECV_SIZE)
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
            except OSError as error:
                reason = tls.ssl_error_text(error, plan.server_name)
                if error.errno is not None and not isinstance(error, ssl.SSLError):
                    reason = errno_text(error.errno)
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
    except Exception as error:
        return internal_error(checker, start, error)


_TIMEOUT = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
