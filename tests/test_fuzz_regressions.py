"""Inputs the fuzz targets (``tests/fuzz/``) found to break something, kept as tests.

Each test holds the input inline and says what the code must do with it; the HTTP ones
also run the real check against a loopback server that sends those bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tests.conftest import run_check
from tests.responders.tcp import TCPResponder

from seesaw_healthcheck.checkers.base import CheckError
from seesaw_healthcheck.checkers.http import parse_head
from seesaw_healthcheck.model import HTTPChecker, Proto, Target, ip_to_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent / "fuzz"))

import fuzz_http_response  # tests/fuzz/fuzz_http_response.py, found through sys.path


def http_check(reply: bytes, response: str = "", code: int = 200) -> tuple[bool, str]:
    """One HTTP check of a loopback server that answers ``reply`` to any request."""
    with TCPResponder("127.0.0.1", reply=reply) as peer:
        checker = HTTPChecker(
            target=Target(ip=ip_to_bytes("127.0.0.1"), port=peer.port, proto=Proto.TCP),
            method="GET",
            request="/",
            response=response,
            response_code=code,
        )
        result = run_check(checker, 2.0)
    return result.success, str(result)


# The head ends at the first empty line. With "\n\n" before a later "\r\n\r\n", reading all
# bytes at once took the later one (and the blank line inside the head became a header
# error), while reading them a few at a time took the first: two verdicts for one reply.
HEAD_ENDS_TWICE = b"HTTP/1.1 200 OK\r\nX: 1\n\nok, then more\r\n\r\n"


def test_head_ends_at_the_first_empty_line_however_it_arrives() -> None:
    fuzz_http_response.TestOneInput(HEAD_ENDS_TWICE)
    whole = fuzz_http_response.outcome(HEAD_ENDS_TWICE, len(HEAD_ENDS_TWICE), headers=True)
    assert whole == (200, "200 OK", b"ok, then more\r\n\r\n")
    success, text = http_check(HEAD_ENDS_TWICE, response="ok, then")
    assert success, text
    assert text.endswith("; got 200 OK")


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\n\r\nok",  # LF, then an empty CRLF line
        b"HTTP/1.1 200 OK\r\n\nok",  # CRLF, then an empty LF line
    ],
)
def test_a_head_ending_in_mixed_line_ends_is_read(reply: bytes) -> None:
    fuzz_http_response.TestOneInput(reply)
    assert fuzz_http_response.outcome(reply, 1, headers=True) == (200, "200 OK", b"ok")


# str.isdigit() is true for "²" (latin-1 0xB2) and other digits int() refuses: the status
# code and Content-Length raised ValueError, an internal error of the check.
@pytest.mark.parametrize(
    ("head", "error"),
    [
        (b"HTTP/1.1 \xb200 OK", 'malformed HTTP status code "\xb200"'),
        (b"HTTP/1.1 200 OK\r\nContent-Length: \xb9", 'bad Content-Length "\xb9"'),
    ],
)
def test_non_ascii_digits_are_malformed_not_a_crash(head: bytes, error: str) -> None:
    with pytest.raises(CheckError) as info:
        parse_head(head)
    assert str(info.value) == error
    fuzz_http_response.TestOneInput(head + b"\r\n\r\n")
    success, text = http_check(head + b"\r\n\r\n", response="x")
    assert not success
    assert "internal error" not in text and error.split(" ")[1] in text


# A chunk longer than the prefix to match: the reader took the whole chunk when it was all
# there and then wanted the CRLF after it (EOF here), but only the prefix when the bytes
# came a few at a time. Go's reader stops once it has the prefix: success either way.
LONG_CHUNK = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"28\r\n" + b"ok" + b"." * 38  # the whole 40-byte chunk, then EOF instead of CRLF
)


def test_a_chunk_longer_than_the_prefix_is_read_only_as_far_as_needed() -> None:
    fuzz_http_response.TestOneInput(LONG_CHUNK)
    for step in (1, 5, len(LONG_CHUNK)):
        outcome = fuzz_http_response.outcome(LONG_CHUNK, step, headers=True)
        assert outcome == (200, "200 OK", b"ok" + b"." * 30), step


@pytest.mark.parametrize("size", [b"-1", b"+2", b"0x2", b"1_0", b" "])
def test_chunk_sizes_are_hex_digits_only(size: bytes) -> None:
    # int(x, 16) takes a sign, "0x" and underscores; Go's chunked reader does not.
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nok\r\n0\r\n\r\n"
    fuzz_http_response.TestOneInput(reply)
    assert fuzz_http_response.outcome(reply, len(reply), headers=True) == (
        "CheckError: malformed chunked encoding"
    )


# A gzip body that decodes to 32 good bytes, then an invalid code. zlib reads a symbol
# ahead: fed the body whole it failed, fed a few bytes at a time it matched the prefix.
# The body is now decoded in one go, a flate window past the prefix, as Go decodes a
# window before returning a byte: a read failure however the bytes arrive.
CORRUPT_GZIP_BODY = (
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcb\xcf\xd6QH\xcc\xc9QH\xcf\xcf\x00\x02\x03"
    b"\xcb\xcf\xd6QH\xcc\xc9QHO\xe1\x02\x003\x1b"
)
CORRUPT_GZIP = (
    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 39\r\n\r\n" + CORRUPT_GZIP_BODY
)


def test_corrupt_gzip_after_the_prefix_fails_however_it_arrives() -> None:
    fuzz_http_response.TestOneInput(CORRUPT_GZIP)
    for step in (1, 12, len(CORRUPT_GZIP)):
        outcome = fuzz_http_response.outcome(CORRUPT_GZIP, step, headers=True)
        assert (
            outcome == "CheckError: gzip: Error -3 while decompressing data: invalid distance code"
        )
    success, text = http_check(CORRUPT_GZIP, response="ok, all go")
    assert not success and text.endswith("; failed to read HTTP response"), text
