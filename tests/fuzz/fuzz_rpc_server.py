"""Fuzz target: net/rpc framing, server side: ``ServerCodec`` fed what a client sends.

Input: the bytes of the request stream, fed in pieces (cut where its first byte says).
``next_call`` is read until it returns None, then ``eof()``, as the engine emulator's
server does; the two engine methods are known (with their schema types), any other is
not. Only ``GobError`` may come out of ``next_call`` (the header did not decode: the
connection ends), and ``eof`` raises nothing. A call with an error has no args.
"""

from __future__ import annotations

from harness import fuzz, instrumented

with instrumented(__name__):
    from seesaw_healthcheck import schema
    from seesaw_healthcheck.gob import GobError, GobType
    from seesaw_healthcheck.rpc.framing import IncomingCall, Request, ServerCodec

ARGS_TYPES: dict[str, GobType] = {
    schema.HEALTHCHECKS: schema.CONTEXT_ARG,
    schema.HEALTH_STATE_METHOD: schema.HEALTH_STATE_ARG,
}


def check_call(call: IncomingCall) -> None:
    assert isinstance(call.request, Request), call
    assert call.known == (call.request.service_method in ARGS_TYPES), call
    assert not (call.error and call.args is not None), call
    assert call.known or (call.args is None and not call.error), call


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    codec = ServerCodec()
    cut = data[0] * len(data) // 256 if data else 0
    for piece in (data[:cut], data[cut:]):
        codec.feed(piece)
        while True:
            try:
                call = codec.next_call(ARGS_TYPES.get)
            except GobError:
                return  # the connection ends here
            if call is None:
                break
            check_call(call)
    last = codec.eof()
    if last is not None:
        check_call(last)


if __name__ == "__main__":
    fuzz(TestOneInput)
