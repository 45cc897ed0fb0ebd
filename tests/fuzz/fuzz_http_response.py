"""Fuzz target: the HTTP checker's response reader (``checkers/http.py``).

Input: the bytes a server sends back. A fake socket hands them to ``_Stream`` (its
``recv`` returns slices of the input and b"" at the end, never blocking, so the reader's
coroutines run to their end without a reactor). As the check does after sending its
request: heads are read (1xx ones skipped) and parsed with ``parse_head``, then
``_read_body_prefix`` reads up to 32 body bytes (Content-Length, chunked, gzip or to EOF).

Only ``CheckError`` may come out (the check reports it as its error). The outcome must not
depend on how the bytes are sliced (whole, or 1 to 16 bytes per recv), and reading the
status line alone (``headers=False``, the check without a body to match) must agree with
reading the whole head whenever that succeeds.
"""

from __future__ import annotations

from harness import fuzz, instrumented, run_to_end

with instrumented(__name__):
    from seesaw_healthcheck.checkers.base import CheckError
    from seesaw_healthcheck.checkers.http import _read_body_prefix, _Stream, parse_head

BODY_PREFIX = 32


class SlicingSocket:
    """recv returns the next ``step`` bytes of ``data`` (b"" once all are read)."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.step = step
        self.pos = 0

    def recv(self, size: int) -> bytes:
        piece = self.data[self.pos : self.pos + min(size, self.step)]
        self.pos += len(piece)
        return piece


async def read_response(stream: _Stream, headers: bool) -> tuple[int, str, bytes | None]:
    """(code, status, body prefix or None without headers), as the check reads them."""
    while True:
        head = await stream.read_head()
        if not head:
            raise CheckError("EOF")
        response = parse_head(head, headers)
        if response.code >= 200 or response.code == 101:
            break
    assert 0 <= response.code <= 999, response.code
    if not headers:
        return response.code, response.status, None
    body = await _read_body_prefix(stream, response, BODY_PREFIX)
    assert len(body) <= BODY_PREFIX, len(body)
    return response.code, response.status, body


def outcome(data: bytes, step: int, headers: bool) -> tuple[int, str, bytes | None] | str:
    """What the reader makes of ``data`` received ``step`` bytes at a time, or its error."""
    try:
        return run_to_end(read_response(_Stream(SlicingSocket(data, step)), headers))
    except CheckError as error:
        return f"CheckError: {error}"


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    whole = outcome(data, len(data) + 1, headers=True)
    step = 1 + (data[-1] % 16 if data else 0)
    sliced = outcome(data, step, headers=True)
    assert sliced == whole, (step, sliced, whole)
    status_only = outcome(data, len(data) + 1, headers=False)
    if not isinstance(whole, str):
        assert status_only == (whole[0], whole[1], None), (status_only, whole)


if __name__ == "__main__":
    fuzz(TestOneInput)
