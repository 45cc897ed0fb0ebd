"""``seesaw-healthcheck-probe`` end to end: the real command against loopback responders."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import wait_for
from tests.responders.dns import DNSResponder
from tests.responders.http import HTTPResponder
from tests.responders.tcp import TCPResponder
from tests.responders.udp import UDPEchoResponder

from seesaw_healthcheck.cli.goflags import ErrorHandling
from seesaw_healthcheck.cli.probe import ProbeError, dns_type, flag_set, go_unquote

GO_DURATION = r"-?[0-9.]+(ns|µs|ms|s|m|h)[0-9.hms]*"
PROBE_TIMEOUT = 30.0


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seesaw_healthcheck.cli.probe", *args],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
    )


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on: bound, then closed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def check_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "(healthcheck " in line]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_tcp_success_exits_0_with_a_duration(host: str) -> None:
    with TCPResponder(host, greeting=b"hello\n") as peer:
        done = probe("-type", "tcp", "-ip", host, "-port", str(peer.port), "-receive", "hello")
    assert done.returncode == 0, done.stderr
    [line] = check_lines(done.stdout)
    assert re.search(rf"TCP .*{peer.port}.* - .*\(healthcheck success, {GO_DURATION}\)$", line)
    assert "success: 1, fail: 0" in done.stdout


def test_closed_port_exits_1_with_the_failure_line() -> None:
    port = free_tcp_port()
    done = probe("-type", "tcp", "-port", str(port))
    assert done.returncode == 1
    [line] = check_lines(done.stdout)
    assert "Error message: TCP 127.0.0.1:" in line
    assert "connection refused" in line
    assert "(healthcheck failure, " in line
    assert "success: 0, fail: 1" in done.stdout


def test_http_response_code_decides() -> None:
    with HTTPResponder("127.0.0.1") as web:
        port = str(web.port)
        ok = probe("-type", "http", "-port", port, "-request", "/healthz", "-response", "ok")
        wrong = probe("-type", "http", "-port", port, "-request", "/notfound")
        expected_404 = probe(
            "-type", "http", "-port", port, "-request", "/notfound", "-response_code", "404"
        )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert wrong.returncode == 1
    assert "404" in check_lines(wrong.stdout)[0]
    assert expected_404.returncode == 0, expected_404.stdout


def test_parallel_runs_one_check_per_worker() -> None:
    with TCPResponder("127.0.0.1") as peer:
        done = probe("-type", "tcp", "-port", str(peer.port), "-parallel", "5")
        # A connect completes in the kernel before the responder's thread accepts it.
        assert wait_for(lambda: peer.accepted == 5), peer.accepted
    assert done.returncode == 0, done.stderr
    assert len(check_lines(done.stdout)) == 5
    assert "Test done. 5 goroutines. success: 5, fail: 0" in done.stdout


def test_udp_with_go_quoted_send_and_receive() -> None:
    def answer(data: bytes) -> bytes:
        return b"pong\r\n" if data == b"ping\n" else b"?"

    with UDPEchoResponder("::1", reply=answer) as peer:
        done = probe("-type", "udp", "-ip", "::1", "-port", str(peer.port),
                     "-send", '"ping\\n"', "-receive", '"pong\\r"')  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_dns_query_type_by_name() -> None:
    zone = {("example.com.", "AAAA"): ["2001:db8::1"]}
    with DNSResponder("127.0.0.1", zone) as peer:
        ok = probe("-type", "dns", "-port", str(peer.port), "-query", "example.com",
                   "-query_type", "aaaa", "-answer", "2001:db8::1")  # fmt: skip
        missing = probe("-type", "dns", "-port", str(peer.port), "-query", "example.com",
                        "-query_type", "TXT", "-answer", "x", "-timeout", "500ms")  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert missing.returncode == 1


def test_timeout_flag_bounds_a_silent_peer() -> None:
    with TCPResponder("127.0.0.1", silent=True) as peer:
        start = time.monotonic()
        done = probe("-type", "tcp", "-port", str(peer.port), "-send", "x", "-receive", "y",
                     "-timeout", "300ms")  # fmt: skip
        elapsed = time.monotonic() - start
    assert done.returncode == 1
    assert "timeout" in check_lines(done.stdout)[0]
    assert elapsed < 10  # the process, not just the check, ends promptly


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-port", "x"], 'invalid value "x" for flag -port: parse error'),
        (["-timeout", "5"], 'invalid value "5" for flag -timeout: parse error'),
        (["-timeout", "-1s"], 'invalid value "-1s" for flag -timeout: negative timeout'),
        (["-nope"], "flag provided but not defined: -nope"),
        (
            ["-vmodule", "probe=x"],
            'invalid value "probe=x" for flag -vmodule: '
            "syntax error: expect comma-separated list of filename=N",
        ),
        (
            ["-vmodule", "probe=-1"],
            'invalid value "probe=-1" for flag -vmodule: negative value for vmodule level',
        ),
        (
            ["-log_backtrace_at", "probe:1"],
            'invalid value "probe:1" for flag -log_backtrace_at: syntax error: expect file.go:234',
        ),
        (
            ["-stderrthreshold", "LOUD"],
            'invalid value "LOUD" for flag -stderrthreshold: '
            "invalid severity 'LOUD': want 0-3 or one of ('INFO', 'WARNING', 'ERROR', 'FATAL')",
        ),
        (["-v", "x"], 'invalid value "x" for flag -v: parse error'),
        (
            ["-log_dir", "/nonexistent/dir", "-type", "tcp"],
            "-log_dir '/nonexistent/dir' is not a directory",
        ),
    ],
)
def test_bad_flag_exits_2(args: list[str], message: str) -> None:
    done = probe(*args)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == message
    assert "Usage of seesaw-healthcheck-probe:" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-ip", "1.2.3"], "Invalid IP address: 1.2.3"),
        (["-ip", "fe80::1%lo"], "Invalid IP address: fe80::1%lo"),
        (["-parallel", "0"], "Invalid value for parallel: 0"),
        (["-type", "smtp"], 'Unsupported healthcheck type: "smtp"'),
        (["-type", "dns", "-query_type", "BOGUS"], 'unknown DNS type "BOGUS"'),
        (
            ["-type", "dns", "-query", "example.com"],
            "-type dns needs -answer (the answer expected, e.g. 192.0.2.1)",
        ),
        (["-type", "tcp", "-send", '"\\q"'], 'Failed to unquote "\\"\\\\q\\"": invalid syntax'),
    ],
)
def test_bad_settings_exit_1_like_go_log_fatal(args: list[str], message: str) -> None:
    done = probe(*args)
    assert done.returncode == 1
    assert done.stderr.rstrip("\n").endswith(message), done.stderr
    assert done.stdout == ""


def test_help_exits_0_with_gos_usage() -> None:
    done = probe("-h")
    assert done.returncode == 0
    assert done.stderr.startswith(
        "Usage of seesaw-healthcheck-probe:\n  -alsologtostderr\n"
        "    \tlog to standard error as well as files\n  -answer string\n"
    )
    assert (
        "  -radius_response string\n    \tRADIUS response type (any, accept, challenge or"
        ' reject) (default "accept")\n' in done.stderr
    )
    # Go's tool prints no default for -timeout (it is 0); we say what 0 means.
    assert (
        "  -timeout duration\n    \thealthcheck timeout; 0 (the default) means the type's "
        "own: dns 3s, http 5s, ping 1s, radius 3s, tcp 10s, udp 5s\n" in done.stderr
    )
    assert "  -logtostderr\n    \tlog to standard error instead of files\n" in done.stderr
    assert "  -v int\n    \tlog level for V logs\n" in done.stderr
    assert "  -tls_verify\n    \tenable TLS verification for HTTPS and TCP TLS (default true)\n" \
        in done.stderr  # fmt: skip


def test_flags_and_defaults_are_those_of_gos_tool() -> None:
    flags = flag_set("probe", ErrorHandling.CONTINUE_ON_ERROR)
    assert flags.values() == {
        "type": "ping", "ip": "127.0.0.1", "port": 80, "mark": 0, "count": 3,
        "receive": "", "send": "", "method": "GET", "proxy": False, "request": "/",
        "response": "", "response_code": 200, "tls_verify": True, "parallel": 1,
        "answer": "", "query": "", "query_type": "A", "radius_user": "",
        "radius_password": "", "radius_response": "accept", "radius_secret": "",
        "timeout": 0,
        # glog's, which it registers in every Seesaw binary
        "alsologtostderr": False, "log_backtrace_at": "", "log_dir": "", "logtostderr": False,
        "stderrthreshold": "ERROR", "v": 0, "vmodule": "",
    }  # fmt: skip


def test_glog_flags_are_accepted_as_by_gos_tool(tmp_path: Path) -> None:
    """Scripts written for healthcheck_test_tool pass glog's flags; they must work."""
    with TCPResponder("127.0.0.1", greeting=b"hello\n") as peer:
        done = probe("-type", "tcp", "-port", str(peer.port), "-receive", "hello",
                     "-v", "2", "-logtostderr", "-alsologtostderr", "-stderrthreshold", "INFO",
                     "-vmodule", "tcp=3,http*=1,", "-log_backtrace_at", "tcp.go:42",
                     "--log_dir", str(tmp_path), "-timeout", "2s")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "success: 1, fail: 0" in done.stdout


def test_dns_without_answer_names_the_flag_not_an_empty_address() -> None:
    done = probe("-type", "dns", "-query", "example.com", "-port", "53")
    assert done.returncode == 1
    assert "-answer" in done.stderr.splitlines()[0]
    assert "is not a valid" not in done.stderr + done.stdout


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "seesaw-healthcheck-probe"
    if not script.exists():
        pytest.skip("package not installed as a console script in this environment")
    done = subprocess.run([str(script), "-h"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert done.stderr.startswith(f"Usage of {script}:")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("plain \\n", "plain \\n"),  # not quoted: taken as is, as Go's tool does
        ('"GET / HTTP/1.0\\r\\n\\r\\n"', "GET / HTTP/1.0\r\n\r\n"),
        ('"\\x41\\101\\u00e9\\U0001F600\\t\\""', 'AAé\U0001f600\t"'),
        ("`raw \\n`", "raw \\n"),
        ('"\\xff"', b"\xff".decode("utf-8", "surrogateescape")),
    ],
)
def test_go_unquote(text: str, value: str) -> None:
    assert go_unquote(text) == value


@pytest.mark.parametrize("text", ['"', '"abc', '"a"b"', '"\\400"', '"\\ud800"', "`a`b`", '"\\'])
def test_go_unquote_refuses(text: str) -> None:
    with pytest.raises(ProbeError, match="invalid syntax"):
        go_unquote(text)


def test_dns_type_names() -> None:
    assert [dns_type(n) for n in ("A", "aaaa", "CNAME", "NS", "MX", "SOA", "TXT", "PTR", "SRV")] \
        == [1, 28, 5, 2, 15, 6, 16, 12, 33]  # fmt: skip


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_ping_counts_replies(host: str) -> None:
    done = probe("-type", "ping", "-ip", host, "-count", "2", "-timeout", "1s")
    if "not permitted" in done.stdout:
        pytest.skip("ICMP sockets are not permitted here")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(f"Received reply from {host} in ") == 2
    assert "Sent 2 packets, received 2 replies" in done.stdout
