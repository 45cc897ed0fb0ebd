"""Fuzz target: the gob decoder without a type (``next(None)``), decoding by the stream's
own definitions only: what ``python -m seesaw_healthcheck.gob`` does, and the rpc layer
for bodies nobody waits for.

Input: a gob stream. As in ``fuzz_gob_typed``, only ``GobError`` may come out, and feeding
the stream in two pieces (cut where its first byte says) must give what feeding it whole
gives.
"""

from __future__ import annotations

from harness import fuzz, instrumented

with instrumented(__name__):
    import seesaw_healthcheck.gob  # noqa: F401 (instrumented before fuzz_gob_typed uses it)

from fuzz_gob_typed import check_stream


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    if data:
        check_stream(data, None, data[0] * len(data) // 256)


if __name__ == "__main__":
    fuzz(TestOneInput)
