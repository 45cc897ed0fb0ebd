"""HTTP/HTTPS checker against real loopback servers: Seesaw's own table and more."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from typing import Any

import pytest
import trustme
from tests.conftest import free_port, full_accept_queue, run_check, wait_for
from tests.responders.http import HTTPResponder, Route, tls_server_context
from tests.responders.tcp import TCPResponder

from seesaw_healthcheck import checkers
from seesaw_healthcheck.checkers import resolve
from seesaw_healthcheck.checkers.base import CheckError
from seesaw_healthcheck.checkers.http import parse_head
from seesaw_healthcheck.model import HTTPChecker, Mode, Proto, Target, ip_to_bytes
from seesaw_healthcheck.reactor import Reactor

HOSTS = ["127.0.0.1", "::1"]


def addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def http_checker(host: str, port: int, **kwargs: Any) -> HTTPChecker:
    """As Go's NewHTTPChecker: GET /, code 200, verify on (tests turn it off)."""
    fields: dict[str, Any] = {
        "method": "GET",
        "request": "/",
        "response_code": 200,
        "tls_verify": True,
    }
    fields.update(kwargs)
    target = Target(ip=ip_to_bytes(host), port=port, proto=Proto.TCP)
    return HTTPChecker(target=target, **fields)


# Seesaw's healthcheck_test.go httpTests: (method, request, response, code, expected).
SEESAW_HTTP_TESTS = [
    ("GET", "/", "", 0, True),
    ("GET", "/", "", 200, True),
    ("GET", "/", "", 404, False),
    ("GET", "/healthz", "", 0, True),
    ("GET", "/healthz", "", 200, True),
    ("GET", "/healthz", "ok\n", 200, True),
    ("GET", "/healthz", "notok", 200, False),
    ("GET", "/healthz", "ok\n", 503, False),
    ("GET", "/notfound", "", 0, True),
    ("GET", "/notfound", "", 200, False),
    ("GET", "/notfound", "", 404, True),
    ("HEAD", "/healthz", "", 0, True),
    ("HEAD", "/healthz", "", 200, True),
    ("HEAD", "/notfound", "", 0, True),
    ("HEAD", "/notfound", "", 200, False),
    ("HEAD", "/notfound", "", 404, True),
]


@pytest.mark.parametrize("secure", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("host", HOSTS)
def test_seesaw_http_table(ca: trustme.CA, host: str, secure: bool) -> None:
    context = tls_server_context(ca, host) if secure else None
    with HTTPResponder(host, tls=context) as web:
        for method, request, response, code, expected in SEESAW_HTTP_TESTS:
            checker = http_checker(
                host,
                web.port,
                method=method,
                request=request,
                response=response,
                response_code=code,
                secure=secure,
                tls_verify=False,
            )
            result = run_check(checker)
            assert result.success is expected, (method, request, response, code, str(result))
            assert result.message.startswith(f"HTTP {method} to {addr(host, web.port)}; got ")

        # TLS inverted: the other scheme against this server fails.
        inverted = http_checker(host, web.port, secure=not secure, tls_verify=False)
        assert not run_check(inverted).success

        port = web.port
    # Closed server.
    closed = run_check(http_checker(host, port, secure=secure, tls_verify=False, response_code=0))
    assert not closed.success
    scheme = "https" if secure else "http"
    assert str(closed) == (
        f'Get "{scheme}://{addr(host, port)}/": dial tcp {addr(host, port)}: '
        "connect: connection refused"
    )


def test_messages_and_request_bytes_as_go_sends_them() -> None:
    with HTTPResponder("127.0.0.1") as web:
        ok = run_check(http_checker("127.0.0.1", web.port, request="/healthz", response="ok"))
        assert ok.success
        assert str(ok) == f"HTTP GET to 127.0.0.1:{web.port}; got 200 OK"
        seen = web.seen[-1]
        assert seen.request_line == "GET /healthz HTTP/1.1"
        assert seen.host == f"127.0.0.1:{web.port}"
        assert ("User-Agent", "Go-http-client/1.1") in seen.headers

        bad = run_check(http_checker("127.0.0.1", web.port, request="/", response="<html><X"))
        assert not bad.success
        assert str(bad) == (
            f'HTTP GET to 127.0.0.1:{web.port}; got 200 OK; unexpected response - "<html><b"'
        )
        wrong_code = run_check(http_checker("127.0.0.1", web.port, request="/notfound"))
        assert not wrong_code.success
        assert str(wrong_code) == f"HTTP GET to 127.0.0.1:{web.port}; got 404 Not Found"


def test_absolute_url_host_wins_and_query_is_kept() -> None:
    with HTTPResponder("::1") as web:
        checker = http_checker(
            "::1", web.port, request=f"http://[::1]:{web.port}/healthz?full=1", response="ok"
        )
        assert run_check(checker).success
        assert web.seen[-1].request_line == "GET /healthz?full=1 HTTP/1.1"
        assert web.seen[-1].host == f"[::1]:{web.port}"


def test_a_host_name_in_the_url_is_resolved_and_dialled_as_go_does() -> None:
    """PLAIN mode: Go's Transport dials the URL's host, here "localhost" (from /etc/hosts:
    no query leaves the machine), not the target, which is a closed port."""
    dead = free_port()
    with HTTPResponder("127.0.0.1") as web:
        checker = http_checker("127.0.0.1", dead, request=f"http://localhost:{web.port}/healthz")
        result = run_check(checker)
        assert result.success, result
        assert result.message == f"HTTP GET to 127.0.0.1:{dead}; got 200 OK"
        assert web.seen[-1].host == f"localhost:{web.port}"
    refused = run_check(http_checker("127.0.0.1", dead, request=f"http://localhost:{dead}/"))
    assert not refused.success
    assert refused.message == f"HTTP GET to 127.0.0.1:{dead}; failed to connect"
    assert refused.error == (
        f'Get "http://localhost:{dead}/": dial tcp 127.0.0.1:{dead}: connect: connection refused'
    )


def test_a_name_that_does_not_resolve_fails_with_gos_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def no_such_host(name: str, *args: Any) -> Any:
        calls.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(resolve.socket, "getaddrinfo", no_such_host)
    checker = http_checker("127.0.0.1", 80, request="http://status.invalid:8080/")
    with Reactor() as reactor:
        for _ in range(2):
            result = reactor.run(checkers.run(checker, 1.0))
            assert not result.success
            assert result.message == "HTTP GET to 127.0.0.1:80; failed to connect"
            assert result.error == (
                'Get "http://status.invalid:8080/": dial tcp: lookup status.invalid: no such host'
            )
        assert calls == ["status.invalid"]  # the answer is kept for resolve.TTL_S
        assert any(t.name.startswith("resolve") for t in threading.enumerate())
    # The lookup threads belong to the reactor: they end when it closes.
    assert wait_for(lambda: not any(t.name.startswith("resolve") for t in threading.enumerate()))


def test_proxy_mode_sends_absolute_uri() -> None:
    with HTTPResponder("127.0.0.1", routes={"*": Route(200, b"proxied")}) as proxy:
        # A path: the target is the proxy, and gets the absolute URI.
        checker = http_checker(
            "127.0.0.1", proxy.port, proxy=True, request="/x?y=1", response="prox"
        )
        result = run_check(checker)
        assert result.success, str(result)
        assert proxy.seen[-1].request_line == f"GET http://127.0.0.1:{proxy.port}/x?y=1 HTTP/1.1"
        # An absolute URL: Seesaw makes the URL itself the proxy (http.ProxyURL(u)), so Go
        # dials the URL's host, here localhost (from /etc/hosts), not the target.
        named = http_checker(
            "127.0.0.1", free_port(), proxy=True, request=f"http://localhost:{proxy.port}/z"
        )
        result = run_check(named)
        assert result.success, str(result)
        assert proxy.seen[-1].request_line == f"GET http://localhost:{proxy.port}/z HTTP/1.1"
        assert proxy.seen[-1].host == f"localhost:{proxy.port}"


def test_redirect_is_judged_not_followed() -> None:
    routes = {
        "/old": Route(302, b"moved", (("Location", "/new"),)),
        "/new": Route(200, b"new"),
    }
    with HTTPResponder("127.0.0.1", routes=routes) as web:
        moved = http_checker("127.0.0.1", web.port, request="/old", response_code=302)
        assert run_check(moved).success
        assert not run_check(http_checker("127.0.0.1", web.port, request="/old")).success
        with_body = run_check(
            http_checker("127.0.0.1", web.port, request="/old", response_code=302, response="mo")
        )
        assert not with_body.success  # Go closes a redirect's body before reading it
        assert str(with_body).endswith("; got 302 Found; failed to read HTTP response")
        assert [s.request_line for s in web.seen] == ["GET /old HTTP/1.1"] * 3


@pytest.mark.parametrize(
    "route",
    [
        Route(200, b"hello world", chunked=True),
        Route(200, b"hello world", close_delimited=True),
        Route(200, b"hello world"),
    ],
    ids=["chunked", "close-delimited", "content-length"],
)
def test_body_framings(route: Route) -> None:
    with HTTPResponder("127.0.0.1", routes={"/": route}) as web:
        assert run_check(http_checker("127.0.0.1", web.port, response="hello wor")).success
        exact = run_check(http_checker("127.0.0.1", web.port, response="hello world"))
        assert exact.success, str(exact)
        longer = run_check(http_checker("127.0.0.1", web.port, response="hello world!!"))
        assert not longer.success
        assert str(longer).endswith('unexpected response - "hello world"')


GZIPPED = gzip.compress(b"healthy and compressed " * 50)


@pytest.mark.parametrize(
    "route",
    [
        Route(200, GZIPPED, (("Content-Encoding", "gzip"),)),
        Route(200, GZIPPED, (("Content-Encoding", "GZIP"),), chunked=True),
        Route(200, GZIPPED, (("Content-Encoding", "gzip"),), close_delimited=True),
    ],
    ids=["content-length", "chunked", "close-delimited"],
)
def test_gzip_body_is_decoded_as_go_does(route: Route) -> None:
    """We ask for gzip as Go's Transport does, and match ``response`` on the decoded body."""
    with HTTPResponder("127.0.0.1", routes={"/": route}) as web:
        ok = run_check(http_checker("127.0.0.1", web.port, response="healthy and compressed he"))
        assert ok.success, str(ok)
        assert ("Accept-Encoding", "gzip") in web.seen[-1].headers
        bad = run_check(http_checker("127.0.0.1", web.port, response="healthy and sound"))
        assert not bad.success
        assert str(bad).endswith('; got 200 OK; unexpected response - "healthy and compr"')
        head = run_check(http_checker("127.0.0.1", web.port, method="HEAD"))
        assert head.success, str(head)
        assert "Accept-Encoding" not in dict(web.seen[-1].headers)


def test_corrupt_gzip_body_is_a_read_failure() -> None:
    route = Route(200, b"\x1f\x8b not really gzip", (("Content-Encoding", "gzip"),))
    with HTTPResponder("127.0.0.1", routes={"/": route}) as web:
        result = run_check(http_checker("127.0.0.1", web.port, response="x"))
    assert not result.success
    assert str(result).endswith("; got 200 OK; failed to read HTTP response")


def test_empty_body_with_expected_response_is_a_read_failure() -> None:
    with HTTPResponder("127.0.0.1", routes={"/": Route(200, b"")}) as web:
        result = run_check(http_checker("127.0.0.1", web.port, response="x"))
    assert not result.success
    assert str(result).endswith("; got 200 OK; failed to read HTTP response")


def test_huge_body_is_not_buffered() -> None:
    routes = {"/big": Route(200, body_size=1 << 30, chunked=False)}
    with HTTPResponder("127.0.0.1", routes=routes) as web:
        start = time.monotonic()
        result = run_check(http_checker("127.0.0.1", web.port, request="/big", response="xxxx"))
        assert result.success, str(result)
        assert time.monotonic() - start < 2.0


@pytest.mark.parametrize("host", HOSTS)
def test_https_verify(ca: trustme.CA, host: str) -> None:
    with HTTPResponder(host, tls=tls_server_context(ca, host)) as web:
        result = run_check(http_checker(host, web.port, secure=True))
        assert not result.success
        assert str(result) == (
            f'Get "https://{addr(host, web.port)}/": x509: certificate signed by unknown authority'
        )


def test_https_verify_with_trusted_ca(trusted_ca: trustme.CA) -> None:
    with HTTPResponder("::1", tls=tls_server_context(trusted_ca, "::1")) as web:
        result = run_check(http_checker("::1", web.port, secure=True, response="<html>"))
        assert result.success, str(result)


def test_silent_server_times_out_in_time() -> None:
    with TCPResponder("127.0.0.1", silent=True) as peer:
        start = time.monotonic()
        result = run_check(http_checker("127.0.0.1", peer.port), 0.2)
        took = time.monotonic() - start
    assert not result.success
    assert "Client.Timeout exceeded" in str(result)
    assert 0.15 <= took < 1.0


def test_garbage_response_is_malformed() -> None:
    with TCPResponder("127.0.0.1", reply=b"SSH-2.0-OpenSSH\r\n\r\n") as peer:
        result = run_check(http_checker("127.0.0.1", peer.port))
    assert not result.success
    assert "malformed HTTP response" in str(result)


def test_bad_method_and_url_are_failures() -> None:
    with HTTPResponder("127.0.0.1") as web:
        bad_method = run_check(http_checker("127.0.0.1", web.port, method="GE T"))
        assert not bad_method.success
        assert str(bad_method) == 'net/http: invalid method "GE T"'
        bad_url = run_check(http_checker("127.0.0.1", web.port, request="/\x7f"))
        assert not bad_url.success
        assert "invalid control character" in str(bad_url)
        empty_method = run_check(http_checker("127.0.0.1", web.port, method="", response_code=0))
        assert empty_method.success
        assert web.seen[-1].request_line == "GET / HTTP/1.1"


def test_post_sends_zero_length() -> None:
    with HTTPResponder("127.0.0.1") as web:
        assert run_check(http_checker("127.0.0.1", web.port, method="POST")).success
        assert ("Content-Length", "0") in web.seen[-1].headers


def test_parse_head_cases() -> None:
    head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked")
    assert (head.code, head.status, head.content_length, head.chunked) == (200, "200 OK", 5, True)
    assert parse_head(b"HTTP/1.0 204").status == "204"
    with pytest.raises(CheckError, match="malformed HTTP status code"):
        parse_head(b"HTTP/1.1 2x0 OK")
    with pytest.raises(CheckError, match="malformed HTTP response"):
        parse_head(b"hello")


def test_describe_matches_go() -> None:
    checker = http_checker("10.0.0.1", 80, request="/healthz", proxy=True, secure=True)
    assert checkers.describe(checker) == (
        "HTTP GET /healthz [code 200; proxy; secure; verify] 10.0.0.1:80 PLAIN"
    )
    checker = http_checker("::1", 8080, tls_verify=False, response_code=0)
    checker.target.mode = Mode.TUN
    checker.target.host = ip_to_bytes("::2")
    assert checkers.describe(checker) == "HTTP GET / [code 0] [::1]:8080 TUN (via ::2 mark 0)"


def test_silent_peer_during_tls_handshake_times_out() -> None:
    with TCPResponder("::1", silent=True) as peer:
        start = time.monotonic()
        result = run_check(http_checker("::1", peer.port, secure=True, tls_verify=False), 0.2)
        took = time.monotonic() - start
    assert not result.success
    assert "Client.Timeout exceeded" in str(result)
    assert 0.15 <= took < 1.0


def test_connect_that_never_completes_times_out() -> None:
    # A listener with a full accept queue drops further SYNs: connect() hangs.
    with full_accept_queue() as port:
        start = time.monotonic()
        result = run_check(http_checker("127.0.0.1", port), 0.2)
        took = time.monotonic() - start
    assert not result.success
    assert str(result) == (
        f'Get "http://127.0.0.1:{port}/": '
        "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    )
    assert 0.15 <= took < 1.0
