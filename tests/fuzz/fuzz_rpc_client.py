"""Fuzz target: net/rpc framing, client side: ``ClientCodec`` fed what a server sends.

Input: the bytes of the reply stream. The codec has three calls pending first (seq 0
``SeesawEngine.Healthchecks`` wanting ``Checks``, seq 1 ``SeesawEngine.HealthState``
wanting an int, seq 2 wanting a generic value), as the server's client would. The stream
is fed in pieces (cut where its first byte says) and ``next_reply`` is read until it
returns None. Only ``GobError`` (``RpcProtocolError``, ``ReplyBodyError``) may come out;
after one, ``next_reply`` must raise it again (the codec reads no more), and every reply
must answer a pending call, once.
"""

from __future__ import annotations

from harness import fuzz, instrumented

with instrumented(__name__):
    from seesaw_healthcheck import model, schema
    from seesaw_healthcheck.gob import GobError
    from seesaw_healthcheck.rpc.framing import ClientCodec, Reply, ReplyBodyError

CONTEXT = model.Context(auth_type=model.AuthType.TRUSTED)


def new_codec() -> ClientCodec:
    codec = ClientCodec()
    codec.request(schema.HEALTHCHECKS, CONTEXT, schema.CONTEXT_ARG, schema.CHECKS)
    codec.request(
        schema.HEALTH_STATE_METHOD,
        model.HealthState(ctx=CONTEXT),
        schema.HEALTH_STATE_ARG,
        schema.INT_REPLY,
    )
    codec.request("Other.Method", 7, schema.INT_REPLY, None)
    return codec


def read_replies(codec: ClientCodec, answered: set[int]) -> GobError | None:
    """Every complete reply; the error that ended the stream, if any."""
    while True:
        try:
            reply = codec.next_reply()
        except ReplyBodyError as error:  # that call's answer is the error
            assert error.seq in (0, 1, 2) and error.seq not in answered, error
            answered.add(error.seq)
            return error
        except GobError as error:
            return error
        if reply is None:
            return None
        assert isinstance(reply, Reply), reply
        assert reply.seq in (0, 1, 2) and reply.seq not in answered, reply
        assert reply.body is None or not reply.error, reply
        answered.add(reply.seq)


def again(codec: ClientCodec) -> str:
    try:
        codec.next_reply()
    except GobError as error:
        return str(error)
    raise AssertionError("next_reply returned after an error")


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    codec = new_codec()
    answered: set[int] = set()
    cut = data[0] * len(data) // 256 if data else 0
    error = None
    for piece in (data[:cut], data[cut:]):
        codec.feed(piece)
        error = read_replies(codec, answered)
        if error is not None:
            break
    if error is not None:  # the codec is done: the same error from now on
        assert again(codec) == again(codec), error
    assert codec.pending == 3 - len(answered), (codec.pending, answered)


if __name__ == "__main__":
    fuzz(TestOneInput)
