"""The HTTP checker's request bytes, byte for byte against Go's net/http.

``gopeer httpreq`` (tests/go/httpreq.go) sends one request the way Seesaw's HTTPChecker
does; a raw loopback listener here captures what arrives. ``build_request`` must give the
same bytes, and a real check must send them. A second table holds the error text (Go's
``url.Error`` with the URL as net/http prints it) against ours when the server hangs up.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest
from tests.conftest import run_check

from seesaw_healthcheck.checkers.http import build_request
from seesaw_healthcheck.model import HTTPChecker, Mode, Proto, Target, ip_to_bytes

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Capture:
    """A loopback listener that takes one connection, reads one request (head and any
    Content-Length body), then answers ``ANSWER`` or, with ``hang_up``, just closes."""

    def __init__(self, host: str, hang_up: bool = False) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(4)
        self.sock.settimeout(10.0)
        self.port: int = self.sock.getsockname()[1]
        self.hang_up = hang_up
        self.received = b""
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(10.0)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head = data.partition(b"\r\n\r\n")[0]
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        want = len(head) + 4 + int(value)
                        while len(data) < want:
                            chunk = conn.recv(65536)
                            if not chunk:
                                break
                            data += chunk
                self.received = data
                if not self.hang_up:
                    conn.sendall(ANSWER)
        except BaseException as error:  # reported by the test, not lost in the thread
            self.error = error

    def __enter__(self) -> Capture:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.thread.join(15.0)
        self.sock.close()


@dataclass
class Case:
    request: str = "/"  # "{port}" becomes the listener's port
    method: str = "GET"
    proxy: bool = False
    host: str = "127.0.0.1"
    via_target: bool = False  # dial the target whatever the URL says (Seesaw's DSR/TUN)

    def checker(self, port: int) -> HTTPChecker:
        mode = Mode.DSR if self.via_target else Mode.PLAIN
        target = Target(ip=ip_to_bytes(self.host), port=port, proto=Proto.TCP, mode=mode)
        return HTTPChecker(
            target=target,
            method=self.method,
            request=self.request.format(port=port),
            proxy=self.proxy,
            response_code=0,
        )


def go_request(gopeer: Path, case: Case, capture: Capture) -> subprocess.CompletedProcess[str]:
    args = [
        str(gopeer), "httpreq", "-ip", case.host, "-port", str(capture.port),
        "-method", case.method, "-request", case.request.format(port=capture.port),
        "-timeout", "5s",
    ]  # fmt: skip
    if case.proxy:
        args.append("-proxy")
    if case.via_target:
        args.append("-via-target")
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


CASES = {
    "get-root": Case(),
    "get-query": Case("/healthz?x=1&y"),
    "head": Case("/healthz", "HEAD"),
    "post": Case("/submit", "POST"),
    "put": Case("/", "PUT"),
    "patch": Case("/", "PATCH"),
    "delete": Case("/", "DELETE"),
    "options": Case("/", "OPTIONS"),
    "token-method": Case("/", "X-Check_1"),
    "lowercase-method": Case("/", "get"),
    "empty-method": Case("/", ""),
    "absolute-ipv4": Case("http://127.0.0.1:{port}/abs?q=1"),
    "ipv6": Case("/healthz", host="::1"),
    "absolute-ipv6": Case("http://[::1]:{port}/v6", host="::1"),
    "absolute-ipv6-zone": Case("http://[::1%25lo]:{port}/zone", "POST", host="::1"),
    "proxy-path": Case("/p?x=1", proxy=True),
    "proxy-absolute": Case("http://127.0.0.1:{port}/abs", proxy=True),
    "proxy-ipv6": Case("/v6", "HEAD", proxy=True, host="::1"),
    "escape-space-unicode": Case("/a b/é?q=é"),
    "escape-kept-as-written": Case("/a[b]/~u/a;b,c=d/%2F/'()*"),
    "escape-redone": Case("/a!b c/%41"),
    "force-query-fragment": Case("/x?#frag"),
    "fragment-dropped": Case("/x#frag"),
    "relative-path": Case("foo", "POST", proxy=True),
    "asterisk": Case("*", "OPTIONS"),
    "opaque": Case("http:opaque"),
    "connect-no-path": Case("", "CONNECT"),
    "userinfo": Case("http://user:p%40ss@127.0.0.1:{port}/u"),
    "userinfo-proxy": Case("http://user@127.0.0.1:{port}/u", proxy=True),
    "host-name": Case("http://status.example/h", via_target=True),
    "host-name-proxy": Case("http://Status.Example:8080/h", proxy=True, via_target=True),
    "host-idna": Case("http://bücher.example/h", via_target=True),
    "host-empty-port": Case("http://127.0.0.1:/e", via_target=True),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_request_bytes_match_go(gopeer: Path, case: Case) -> None:
    with Capture(case.host) as go_side:
        proc = go_request(gopeer, case, go_side)
    assert go_side.error is None, go_side.error
    assert proc.returncode == 0, proc.stderr
    assert go_side.received, "gopeer sent nothing"
    go_bytes = go_side.received

    assert build_request(case.checker(go_side.port)).request == go_bytes

    # A real check sends the same (its own port in it): the plan is what goes out.
    with Capture(case.host) as our_side:
        result = run_check(case.checker(our_side.port), 5.0)
    assert our_side.error is None, our_side.error
    assert result.success, str(result)
    assert our_side.received == go_bytes.replace(
        str(go_side.port).encode(), str(our_side.port).encode()
    )


ERROR_CASES = {
    "plain": Case("/healthz"),
    "ipv6": Case("/", "HEAD", host="::1"),
    "password-hidden": Case("http://us%20er:secret@127.0.0.1:{port}/u"),
    "user-only": Case("http://user@127.0.0.1:{port}/u", "POST"),
    "fragment-kept": Case("/x#a%20b c"),
    "force-query": Case("/x?#"),
    "escaped-path": Case("/a b/é"),
    "relative-path": Case("foo"),
    "zone": Case("http://[::1%25lo]:{port}/z", host="::1"),
    "opaque": Case("http:opaque", "DELETE"),
}


@pytest.mark.parametrize("case", ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_hang_up_error_text_matches_go(gopeer: Path, case: Case) -> None:
    """The server closes without answering: Go's ``Op "URL": EOF`` and ours agree."""
    with Capture(case.host, hang_up=True) as go_side:
        proc = go_request(gopeer, case, go_side)
    assert proc.returncode == 1, proc.stdout
    go_error = proc.stderr.strip().removeprefix("gopeer httpreq: ")

    with Capture(case.host, hang_up=True) as our_side:
        result = run_check(case.checker(our_side.port), 5.0)
    assert not result.success
    assert str(result) == go_error.replace(str(go_side.port), str(our_side.port))
