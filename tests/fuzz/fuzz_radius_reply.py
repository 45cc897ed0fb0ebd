"""Fuzz target: the RADIUS checker's reply parser (``checkers/radius.py``
``evaluate_reply``, with ``decode_packet`` under it).

Input: one datagram as received. It is judged as the reply to a request with the
datagram's own identifier (so that check passes), ``REQUEST_AUTHENTICATOR`` and
``SECRET``, for every ``Response`` setting. ``evaluate_reply`` must never raise: a bad
packet is a failed verdict carrying a ``RadiusDecodeError``. A success needs a valid
response authenticator.
"""

from __future__ import annotations

from harness import fuzz, instrumented

with instrumented(__name__):
    from seesaw_healthcheck.checkers.radius import (
        RadiusDecodeError,
        decode_packet,
        evaluate_reply,
        response_authenticator,
    )

SECRET = b"s3cret"
REQUEST_AUTHENTICATOR = bytes(range(16))
RESPONSES = ("accept", "reject", "challenge", "any", "", "bogus")


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    identifier = data[1] if len(data) > 1 else 0
    for response in RESPONSES:
        success, suffix, error = evaluate_reply(
            data, identifier, REQUEST_AUTHENTICATOR, SECRET, response
        )
        assert suffix.startswith("; "), suffix
        assert error is None or isinstance(error, RadiusDecodeError), error
        if success:
            packet = decode_packet(data)
            want = response_authenticator(packet, REQUEST_AUTHENTICATOR, SECRET)
            assert packet.authenticator == want


if __name__ == "__main__":
    fuzz(TestOneInput)
