"""Fuzz target: the gob decoder decoding into the schema's types (what the server and the
engine emulator read off the engine socket).

Input: one selector byte, then a gob stream. The low 4 bits of the selector pick the type
to decode into (``TYPES``), the high 4 bits where to cut the stream in two. The stream is
decoded twice with fresh ``Decoder``s, fed whole and fed in those two pieces: both must
give the same values and end the same way. The only exception the decoder may raise is
``GobError``; anything else, or a difference between the two feedings, is a bug.
"""

from __future__ import annotations

from harness import fuzz, instrumented

with instrumented(__name__):
    from seesaw_healthcheck import schema
    from seesaw_healthcheck.gob import NEED_DATA, Decoder, GobError, GobType
    from seesaw_healthcheck.rpc.framing import REQUEST_TYPE, RESPONSE_TYPE

TYPES: tuple[GobType, ...] = (
    schema.CHECKS,
    schema.HEALTH_STATE,
    schema.HEALTH_STATE_ARG,
    schema.CONTEXT_ARG,
    schema.CONFIG,
    schema.NOTIFICATION,
    schema.STATUS,
    schema.INT_REPLY,
    REQUEST_TYPE,
    RESPONSE_TYPE,
)


def selector(type_index: int, cut_sixteenths: int = 8) -> bytes:
    """The selector byte for ``TYPES[type_index]`` (make_corpus.py writes it)."""
    return bytes(((cut_sixteenths & 15) << 4 | type_index,))


def decode(pieces: list[bytes], type: GobType | None) -> tuple[list[str], str | None]:
    """The values (as repr: NaN != NaN) decoded from ``pieces`` fed in turn, and the class
    name of the error that ended the stream (None if none did)."""
    decoder = Decoder()
    values: list[str] = []
    try:
        for piece in pieces:
            decoder.feed(piece)
            while (value := decoder.next(type)) is not NEED_DATA:
                values.append(repr(value))
        decoder.close()
    except GobError as error:
        return values, error.__class__.__name__
    return values, None


def check_stream(stream: bytes, type: GobType | None, cut: int) -> None:
    """Decode whole and in two pieces; the two must agree."""
    whole = decode([stream], type)
    split = decode([stream[:cut], stream[cut:]], type)
    if whole != split:
        raise AssertionError(f"fed {cut} then {len(stream) - cut} bytes: {split} != {whole}")


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    if not data:
        return
    type = TYPES[(data[0] & 15) % len(TYPES)]
    stream = data[1:]
    check_stream(stream, type, (data[0] >> 4) * len(stream) // 16)


if __name__ == "__main__":
    fuzz(TestOneInput)
