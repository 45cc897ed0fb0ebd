"""Sans-IO net/rpc framing, byte for byte against Go.

The golden messages below were captured from Go 1.19's net/rpc for a service ``Arith``
with ``Mul(args *Args{A, B int}, reply *int)`` and ``Fail`` (always errors "boom: bad"),
making seven calls on one connection: Mul(7,8), Mul(2,3), Arith.Nope, Nope.Nope, Fail,
"ArithFail" (no dot), Mul(0,0). Each string is one gob message (length prefix included).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.responders.unix import read_request_then, unix_server

from seesaw_healthcheck import model, schema
from seesaw_healthcheck.gob import Encoder, Field, GobError, Int, String, Struct
from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.reactor import Reactor
from seesaw_healthcheck.rpc import (
    ClientCodec,
    IncomingCall,
    Request,
    RpcError,
    RpcProtocolError,
    RpcServer,
    ServerCodec,
    reactor_call,
)
from seesaw_healthcheck.rpc.framing import (
    EMPTY_STRUCT,
    MAX_REPLAY,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    ReplyBodyError,
    Response,
)

ARGS = Struct("Args", [Field("A", Int(64)), Field("B", Int(64))])
INT = Int(64)

GO_CLIENT = [
    # call 0: Request type definition, header, Args type definition, args
    "2fff81030101075265717565737401ff82000102010d536572766963654d6574686f64010c00"
    "01035365710106000000",
    "0eff82010941726974682e4d756c00",
    "1eff83030101044172677301ff840001020101410104000101420104000000",
    "07ff84010e011000",
    # call 1: no type definitions any more
    "10ff82010941726974682e4d756c010100",
    "07ff840104010600",
    "11ff82010a41726974682e4e6f7065010200",
    "07ff840104010600",
    "10ff8201094e6f70652e4e6f7065010300",
    "07ff840104010600",
    "11ff82010a41726974682e4661696c010400",
    "07ff840104010600",
    "10ff82010941726974684661696c010500",
    "07ff840104010600",
    "10ff82010941726974682e4d756c010600",
    "03ff8400",
]
GO_SERVER = [
    # Captured from a Go process that served only (gob type ids are per process in Go,
    # so Response is 65 here, and the empty struct 66).
    # reply 0: Response type definition, header, int 56
    "3aff8103010108526573706f6e736501ff82000103010d536572766963654d6574686f64010c"
    "00010353657101060001054572726f72010c000000",
    "0eff82010941726974682e4d756c00",
    "03040070",
    # reply 1: int 6
    "10ff82010941726974682e4d756c010100",
    "0304000c",
    # reply 2: "can't find method", then the empty struct's definition and value
    "34ff82010a41726974682e4e6f7065010201217270633a2063616e27742066696e64206d6574"
    "686f642041726974682e4e6f706500",
    "0aff83030102ff84000000",
    "03ff8400",
    "33ff8201094e6f70652e4e6f7065010301217270633a2063616e27742066696e642073657276"
    "696365204e6f70652e4e6f706500",
    "03ff8400",
    "1cff82010a41726974682e4661696c01040109626f6f6d3a2062616400",
    "03ff8400",
    "43ff82010941726974684661696c010501317270633a20736572766963652f6d6574686f6420"
    "7265717565737420696c6c2d666f726d65643a2041726974684661696c00",
    "03ff8400",
    "10ff82010941726974682e4d756c010600",
    "03040000",
]
CALLS: list[tuple[str, dict[str, int]]] = [
    ("Arith.Mul", {"A": 7, "B": 8}),
    ("Arith.Mul", {"A": 2, "B": 3}),
    ("Arith.Nope", {"A": 2, "B": 3}),
    ("Nope.Nope", {"A": 2, "B": 3}),
    ("Arith.Fail", {"A": 2, "B": 3}),
    ("ArithFail", {"A": 2, "B": 3}),
    ("Arith.Mul", {"A": 0, "B": 0}),
]
REPLIES: list[tuple[str, Any]] = [
    ("", 56),
    ("", 6),
    ("rpc: can't find method Arith.Nope", None),
    ("rpc: can't find service Nope.Nope", None),
    ("boom: bad", None),
    ("rpc: service/method request ill-formed: ArithFail", None),
    ("", 0),
]


def _join(messages: list[str]) -> bytes:
    return b"".join(bytes.fromhex(m) for m in messages)


def _arith_server() -> RpcServer:
    """Only for its Go-worded lookup errors; never started."""

    async def mul(args: dict[str, int]) -> int:
        return args["A"] * args["B"]

    server = RpcServer()
    server.register("Arith.Mul", ARGS, INT, mul)
    server.register("Arith.Fail", ARGS, INT, mul)
    return server


def test_client_requests_match_go_bytes() -> None:
    codec = ClientCodec()
    out = b""
    for want_seq, (method, args) in enumerate(CALLS):
        seq, data = codec.request(method, args, ARGS, INT)
        assert seq == want_seq  # Go's client numbers calls from 0
        out += data
    assert out == _join(GO_CLIENT)


def test_second_call_sends_no_type_definitions() -> None:
    codec = ClientCodec()
    _, first = codec.request("Arith.Mul", {"A": 7, "B": 8}, ARGS, INT)
    _, second = codec.request("Arith.Mul", {"A": 2, "B": 3}, ARGS, INT)
    assert first == _join(GO_CLIENT[:4])
    assert second == _join(GO_CLIENT[4:6])
    # A fresh codec is a fresh gob stream: the definitions go out again.
    _, again = ClientCodec().request("Arith.Mul", {"A": 7, "B": 8}, ARGS, INT)
    assert again == first


def _read_replies(codec: ClientCodec, data: bytes, chunk: int) -> list[tuple[str, Any]]:
    got = []
    for i in range(0, len(data), chunk):
        codec.feed(data[i : i + chunk])
        while (reply := codec.next_reply()) is not None:
            got.append((reply.seq, reply.service_method, reply.error, reply.body))
    assert codec.pending == 0
    assert not codec.mid_message
    assert [g[0] for g in got] == list(range(len(CALLS)))
    assert [g[1] for g in got] == [c[0] for c in CALLS]
    return [(g[2], g[3]) for g in got]


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 100_000])
def test_client_reads_go_replies_in_any_chunking(chunk: int) -> None:
    codec = ClientCodec()
    for method, args in CALLS:
        codec.request(method, args, ARGS, INT)
    assert _read_replies(codec, _join(GO_SERVER), chunk) == REPLIES


def test_client_waits_for_body_after_header() -> None:
    codec = ClientCodec()
    codec.request("Arith.Mul", {"A": 7, "B": 8}, ARGS, INT)
    codec.feed(_join(GO_SERVER[:2]))  # type definition and header, no body yet
    assert codec.next_reply() is None
    assert codec.mid_message
    codec.feed(bytes.fromhex(GO_SERVER[2]))
    reply = codec.next_reply()
    assert reply is not None and (reply.seq, reply.error, reply.body) == (0, "", 56)


def test_reply_to_no_pending_call_is_dropped_and_reading_goes_on() -> None:
    """As Go's client: a reply whose seq is not pending is read and dropped."""
    codec = ClientCodec()
    codec.request("Arith.Mul", {"A": 7, "B": 8}, ARGS, INT)
    # Go's reply 1 (seq 1, nobody asked) then a reply 0 assembled from Go's bytes.
    codec.feed(_join([GO_SERVER[0], *GO_SERVER[3:5], GO_SERVER[1], GO_SERVER[2]]))
    reply = codec.next_reply()
    assert reply is not None and (reply.seq, reply.error, reply.body) == (0, "", 56)
    assert codec.pending == 0 and not codec.mid_message and codec.next_reply() is None
    assert issubclass(RpcProtocolError, GobError)


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4,  # "G": a 71-byte message of junk
        b"\xff" * 300,
        bytes.fromhex("05ff81ffffff"),
        bytes.fromhex("0eff82010941726974682e4d756c00"),  # a value of an undefined type
    ],
)
def test_client_rejects_garbage(garbage: bytes) -> None:
    codec = ClientCodec()
    codec.request("Arith.Mul", {"A": 7, "B": 8}, ARGS, INT)
    codec.feed(garbage)
    with pytest.raises(GobError):
        while codec.next_reply() is not None:
            pass


def test_server_reads_go_requests_and_answers_like_go() -> None:
    server = _arith_server()
    codec = ServerCodec()
    data = _join(GO_CLIENT)
    calls: list[IncomingCall] = []
    for i in range(0, len(data), 3):
        codec.feed(data[i : i + 3])
        while (incoming := codec.next_call(server.args_type_for)) is not None:
            calls.append(incoming)
    assert not codec.mid_message
    assert [(c.request.service_method, c.request.seq) for c in calls] == [
        (m, i) for i, (m, _) in enumerate(CALLS)
    ]
    assert [c.known for c in calls] == [True, True, False, False, True, False, True]
    assert [c.args for c in calls if c.known] == [CALLS[i][1] for i in (0, 1, 4, 6)]
    assert all(c.args is None for c in calls if not c.known)

    out = b""
    for incoming in calls:
        request = incoming.request
        if not incoming.known:
            out += codec.response(request, None, None, server.method_error(request.service_method))
        elif request.service_method == "Arith.Fail":
            out += codec.response(request, None, None, "boom: bad")
        else:
            out += codec.response(request, incoming.args["A"] * incoming.args["B"], INT)
    assert out == _join(GO_SERVER)


def test_server_rejects_garbage() -> None:
    codec = ServerCodec()
    codec.feed(b"\x00\x01\x02garbage garbage garbage")
    with pytest.raises(GobError):
        while codec.next_call(_arith_server().args_type_for) is not None:
            pass


def test_request_header_type_is_named_like_go() -> None:
    assert Request("X.Y", 3) == Request(service_method="X.Y", seq=3)
    # The definition carries the names "Request", "ServiceMethod", "Seq".
    first = bytes.fromhex(GO_CLIENT[0])
    assert b"Request" in first and b"ServiceMethod" in first and b"Seq" in first


def test_seesaw_types_round_trip_through_both_codecs() -> None:
    """HealthState and Healthchecks calls, client codec -> server codec -> client codec."""
    client, server = ClientCodec(), ServerCodec()
    types = {
        schema.HEALTH_STATE_METHOD: (schema.HEALTH_STATE_ARG, schema.INT_REPLY),
        schema.HEALTHCHECKS: (schema.CONTEXT_ARG, schema.CHECKS),
    }
    ctx = model.Context.trusted()
    state = model.HealthState(
        ctx=ctx,
        notifications=[
            model.Notification(
                id=i,
                status=model.Status(
                    last_check=GoTime.from_unix_ns(1_700_000_000_000_000_000 + i, 3600),
                    duration=i * 1000,
                    failures=i % 3,
                    successes=i % 5,
                    state=i % 3,
                    message=f"check {i} \u00e9",
                ),
            )
            for i in range(1, 51)
        ],
    )
    checks = model.Checks(
        configs={
            7: model.Config(
                id=7,
                interval=5_000_000_000,
                timeout=1_000_000_000,
                retries=2,
                checker=model.TCPChecker(
                    target=model.Target(
                        ip=model.ip_to_bytes("127.0.0.1"), port=80, proto=model.Proto.TCP
                    )
                ),
            )
        }
    )
    wire = b""
    for method, args in ((schema.HEALTH_STATE_METHOD, state), (schema.HEALTHCHECKS, ctx)):
        _, data = client.request(method, args, *types[method])
        wire += data
    server.feed(wire)
    out = b""
    got = []
    while incoming := server.next_call(lambda m: types[m][0] if m in types else None):
        got.append(incoming.args)
        method = incoming.request.service_method
        reply = len(incoming.args.notifications) if method == schema.HEALTH_STATE_METHOD else checks
        out += server.response(incoming.request, reply, types[method][1])
    assert got == [state, ctx]
    client.feed(out)
    replies = []
    while (reply := client.next_reply()) is not None:
        replies.append(reply.body)
    assert replies == [50, checks]


def test_unencodable_args_leave_the_client_codec_usable() -> None:
    codec = ClientCodec()
    with pytest.raises(GobError):
        codec.request("Arith.Mul", {"A": "not an int"}, ARGS, INT)
    assert codec.pending == 0
    # The failed first call left no trace: the next one is Go's first call, definitions
    # and seq 0 included; and a failure later on changes nothing either.
    seq, data = codec.request("Arith.Mul", {"A": 7, "B": 8}, ARGS, INT)
    assert (seq, data) == (0, _join(GO_CLIENT[:4]))
    with pytest.raises(GobError):
        codec.request("Arith.Mul", {"A": 2**70}, ARGS, INT)
    assert codec.request("Arith.Mul", {"A": 2, "B": 3}, ARGS, INT) == (1, _join(GO_CLIENT[4:6]))


def test_unencodable_reply_leaves_the_server_codec_usable() -> None:
    codec = ServerCodec()
    codec.feed(_join(GO_CLIENT[:4]))
    incoming = codec.next_call(_arith_server().args_type_for)
    assert incoming is not None
    with pytest.raises(GobError):
        codec.response(incoming.request, "fifty-six", INT)
    # An error reply instead, then a good one: the client reads both.
    data = codec.response(incoming.request, None, None, "rpc: cannot encode reply")
    data += codec.response(Request("Arith.Mul", 1), 6, INT)
    client = ClientCodec()
    client.request("Arith.Mul", {}, ARGS, INT)
    client.request("Arith.Mul", {}, ARGS, INT)
    client.feed(data)
    first, second = client.next_reply(), client.next_reply()
    assert first is not None and first.error == "rpc: cannot encode reply"
    assert second is not None and (second.seq, second.error, second.body) == (1, "", 6)


# --- bad requests: read on as Go's server does (tests/test_rpc_errors_go.py vs Go) -------


def _bad_requests() -> bytes:
    """Arith calls with bad args between good ones, on one encoder (one connection)."""
    enc = Encoder()

    def header(method: str, seq: int) -> bytes:
        return enc.encode(Request(method, seq), REQUEST_TYPE)

    other = Struct("Other", [Field("C", Int(64))])
    return b"".join(
        [
            header("Arith.Mul", 0) + enc.encode({"A": 7, "B": 8}, ARGS),
            header("Arith.Mul", 1) + enc.encode("seven", String()),  # another type
            header("Arith.Mul", 2) + enc.encode({"C": 1}, other),  # no field in common
            header("Arith.Mul", 3) + b"\x03\xff\xc6\x00",  # an undefined type id
            header("Arith.Mul", 4) + b"\xf0",  # a length prefix of 16 bytes
            header("Arith.Mul", 5) + b"\x00",  # a zero-length message
            header("Nope.Nope", 6) + b"\x03\xff\xc6\x00",  # unknown, args dropped anyway
            header("Arith.Mul", 7) + enc.encode({"A": 2, "B": 3}, ARGS),
            header("Arith.Mul", 8),  # then EOF
        ]
    )


BAD_REQUESTS = [
    (0, True, ""),
    (1, True, r"gob: type mismatch: .*"),
    (2, True, r"gob: type mismatch: no fields matched compiling decoder for Args"),
    (3, True, r"gob: value of undefined type id 99"),
    (4, True, r"gob: encoded unsigned integer out of range"),
    (5, True, r"EOF"),
    (6, False, r""),
    (7, True, r""),
]


@pytest.mark.parametrize("chunk", [1, 5, 100_000])
def test_server_answers_bad_args_and_reads_on(chunk: int) -> None:
    codec = ServerCodec()
    data = _bad_requests()
    calls: list[IncomingCall] = []
    for i in range(0, len(data), chunk):
        codec.feed(data[i : i + chunk])
        while (incoming := codec.next_call(_arith_server().args_type_for)) is not None:
            calls.append(incoming)
    assert [(c.request.seq, c.known) for c in calls] == [(s, k) for s, k, _ in BAD_REQUESTS]
    for call, (_, _, error) in zip(calls, BAD_REQUESTS, strict=True):
        assert re.fullmatch(error, call.error), call.error
    assert [c.args for c in calls if c.known and not c.error] == [
        {"A": 7, "B": 8},
        {"A": 2, "B": 3},
    ]
    # EOF after seq 8's header: Go answers "EOF"; nothing is left after that.
    last = codec.eof()
    assert last is not None and (last.request.seq, last.known, last.error) == (8, True, "EOF")
    assert codec.eof() is None


@pytest.mark.parametrize(
    ("tail", "want"),
    [
        (b"", (True, "EOF")),  # no byte of the args
        (b"\x05\x04", (True, "unexpected EOF")),  # part of a message
        (b"\xfe\x01", (True, "unexpected EOF")),  # part of a length prefix
        (bytes.fromhex(GO_CLIENT[2]), (True, "unexpected EOF")),  # a definition, no value
    ],
)
def test_server_answers_a_request_cut_short_by_eof(tail: bytes, want: tuple[bool, str]) -> None:
    codec = ServerCodec()
    codec.feed(_join(GO_CLIENT[:2]) + tail)  # Request definition and header of Arith.Mul
    assert codec.next_call(_arith_server().args_type_for) is None
    last = codec.eof()
    assert last is not None and (last.known, last.error) == want


def test_server_eof_mid_header_or_for_an_unknown_method() -> None:
    codec = ServerCodec()
    codec.feed(_join(GO_CLIENT[:2])[:-3])
    assert codec.next_call(_arith_server().args_type_for) is None
    assert codec.eof() is None  # no header, no answer
    codec = ServerCodec()
    codec.feed(_join(GO_CLIENT[:1]) + bytes.fromhex(GO_CLIENT[8]))  # Nope.Nope's header
    assert codec.next_call(_arith_server().args_type_for) is None
    last = codec.eof()
    assert last is not None and not last.known and last.error == ""


@pytest.mark.parametrize("where", ["header", "args"])
def test_server_refuses_a_message_over_its_limit(where: str) -> None:
    """Go would wait for (and allocate) up to 8 GiB; we close the connection instead."""
    codec = ServerCodec(max_message=1000)
    if where == "args":
        codec.feed(_join(GO_CLIENT[:2]))
    codec.feed(b"\xfe\x03\xe9")  # 1001 bytes to come
    with pytest.raises(GobError, match="exceeds the limit of 1000"):
        codec.next_call(_arith_server().args_type_for)


def test_server_keeps_a_bounded_record_of_type_definitions() -> None:
    """Recovering from bad args rebuilds the decoder from the connection's definitions;
    past MAX_REPLAY bytes of them a bad request closes the connection instead."""
    enc = Encoder()
    server = _arith_server()
    codec = ServerCodec()
    bad = enc.encode(Request("Arith.Mul", 0), REQUEST_TYPE) + b"\x03\xff\xc6\x00"
    codec.feed(bad)
    first = codec.next_call(server.args_type_for)
    assert first is not None and first.error
    # Many definitions, sent as an unknown method's args (read and dropped).
    kinds = [Struct(f"T{i}", [Field("F" * 60, Int(64))]) for i in range(MAX_REPLAY // 60)]
    for i, kind in enumerate(kinds):
        codec.feed(enc.encode(Request("Nope.Nope", i), REQUEST_TYPE) + enc.encode({}, kind))
        incoming = codec.next_call(server.args_type_for)
        assert incoming is not None and not incoming.known
    codec.feed(bad)
    with pytest.raises(GobError, match="cannot recover"):
        codec.next_call(server.args_type_for)


# --- bad replies: read as Go's client reads them ------------------------------------------

# What Go 1.19's client (net/rpc/client.go ``input``) did with these replies, recorded by
# making the calls with rpc.NewClient over a net.Pipe whose other end wrote these bytes:
# a body that does not decode ends the reading. That call gets "reading body <err>" (an
# error reply keeps its ServerError and the others get "reading error body: <err>"),
# every other pending call gets <err>, later calls "connection is shut down". A reply to
# a seq not pending has its body read (Decode(nil)) and dropped, and reading goes on.
UNDEFINED = b"\x03\xff\xc6\x00"  # a value of type id 99, never defined
GO_CLIENT_OUTCOMES = {
    # case: [outcome of each call], Go's words
    "wrong type": [
        "reading body gob: decoding into local type *int, received remote type string",
        "gob: decoding into local type *int, received remote type string",
        "gob: decoding into local type *int, received remote type string",
    ],
    "undefined type": [
        "reading body gob: decoding into local type *int, received remote type unknown type",
        "gob: decoding into local type *int, received remote type unknown type",
        "gob: decoding into local type *int, received remote type unknown type",
    ],
    "error reply, bad body": [
        "server error: boom",
        "reading error body: gob: bad data: undefined type <nil>",
        "reading error body: gob: bad data: undefined type <nil>",
    ],
    "error reply, int body": ["server error: boom", 6, 4],
    "no such call": [6, 4],
    "no such call, error": [6, 4],
    "no such call, bad body": [
        "reading error body: gob: bad data: undefined type <nil>",
        "reading error body: gob: bad data: undefined type <nil>",
    ],
    "seq twice": [7, 4],
}
# Ours, where our decoder words the gob error differently (Go names Go types).
OUR_CLIENT_OUTCOMES = {
    "wrong type": [
        r"reading body gob: type mismatch: cannot decode string into Int\(bits=64\)",
        r"gob: type mismatch: cannot decode string into Int\(bits=64\)",
        r"gob: type mismatch: cannot decode string into Int\(bits=64\)",
    ],
    "undefined type": [
        r"reading body gob: value of undefined type id 99",
        r"gob: value of undefined type id 99",
        r"gob: value of undefined type id 99",
    ],
    "error reply, bad body": [
        r"server error: boom",
        r"reading error body: gob: value of undefined type id 99",
        r"reading error body: gob: value of undefined type id 99",
    ],
    "no such call, bad body": [
        r"reading error body: gob: value of undefined type id 99",
        r"reading error body: gob: value of undefined type id 99",
    ],
}


def _replies(*items: tuple[int, str, Any, Any]) -> bytes:
    """Replies (seq, error, body, body type or None for raw bytes) on one encoder."""
    enc = Encoder()
    out = b""
    for seq, error, body, body_type in items:
        out += enc.encode(Response("Arith.Mul", seq, error), RESPONSE_TYPE)
        out += body if body_type is None else enc.encode(body, body_type)
    return out


BAD_REPLIES = {
    "wrong type": (3, _replies((0, "", "x", String()), (1, "", 6, INT), (2, "", 4, INT))),
    "undefined type": (3, _replies((0, "", UNDEFINED, None), (1, "", 6, INT), (2, "", 4, INT))),
    "error reply, bad body": (
        3,
        _replies((0, "boom", UNDEFINED, None), (1, "", 6, INT), (2, "", 4, INT)),
    ),
    "error reply, int body": (3, _replies((0, "boom", 5, INT), (1, "", 6, INT), (2, "", 4, INT))),
    "no such call": (2, _replies((99, "", 7, INT), (0, "", 6, INT), (1, "", 4, INT))),
    "no such call, error": (
        2,
        _replies((99, "nope", {}, EMPTY_STRUCT), (0, "", 6, INT), (1, "", 4, INT)),
    ),
    "no such call, bad body": (
        2,
        _replies((99, "", UNDEFINED, None), (0, "", 6, INT), (1, "", 4, INT)),
    ),
    "seq twice": (2, _replies((0, "", 7, INT), (0, "", 6, INT), (1, "", 4, INT))),
}


def _client_outcomes(calls: int, data: bytes, chunk: int) -> tuple[list[Any], ClientCodec]:
    """Each call's outcome as Go's client hands it out (``server error: X`` for a
    ServerError), driving the codec as a client with several calls in flight does."""
    codec = ClientCodec()
    for n in range(calls):
        codec.request("Arith.Mul", {"A": n, "B": 2}, ARGS, INT)
    outcomes: dict[int, Any] = {}
    try:
        for i in range(0, len(data), chunk):
            codec.feed(data[i : i + chunk])
            while (reply := codec.next_reply()) is not None:
                outcomes[reply.seq] = f"server error: {reply.error}" if reply.error else reply.body
    except ReplyBodyError as exc:
        outcomes[exc.seq] = str(exc)
        rest = exc.stream_error
    except GobError as exc:
        rest = str(exc)
    else:
        rest = "pending"
    return [outcomes.get(seq, rest) for seq in range(calls)], codec


@pytest.mark.parametrize("chunk", [1, 3, 100_000])
@pytest.mark.parametrize("case", list(BAD_REPLIES))
def test_client_reads_bad_replies_as_go_does(case: str, chunk: int) -> None:
    calls, data = BAD_REPLIES[case]
    got, codec = _client_outcomes(calls, data, chunk)
    want = OUR_CLIENT_OUTCOMES.get(case, GO_CLIENT_OUTCOMES[case])
    assert len(got) == len(want) == calls
    for outcome, expected, go in zip(got, want, GO_CLIENT_OUTCOMES[case], strict=True):
        if isinstance(expected, str):
            assert isinstance(outcome, str) and re.fullmatch(expected, outcome), outcome
            assert outcome.split("gob: ")[0] == go.split("gob: ")[0]  # the same prefix
        else:
            assert outcome == expected
    if any(isinstance(outcome, str) and "gob: " in outcome for outcome in got):
        # No more replies once a body failed: the same error again, whatever comes.
        codec.feed(_replies((1, "", 6, INT)))
        with pytest.raises(GobError) as again:
            codec.next_reply()
        assert str(again.value) in got
    else:
        assert codec.pending == 0 and not codec.mid_message


def test_client_body_error_names_its_call_and_leaves_the_others_pending() -> None:
    calls, data = BAD_REPLIES["wrong type"]
    codec = ClientCodec()
    for n in range(calls):
        codec.request("Arith.Mul", {"A": n, "B": 2}, ARGS, INT)
    codec.feed(data)
    with pytest.raises(ReplyBodyError) as caught:
        codec.next_reply()
    assert caught.value.seq == 0 and isinstance(caught.value, GobError)
    assert " at offset" not in str(caught.value)  # Go's errors carry no offset
    assert codec.pending == 2  # for the caller to fail, with stream_error


def test_client_header_garbage_fails_the_rest() -> None:
    """Go: the reply before it is delivered; the others get the decoder's error."""
    got, _ = _client_outcomes(2, _replies((0, "", 7, INT)) + b"\x05hello", 100_000)
    assert got[0] == 7
    assert isinstance(got[1], str) and got[1].startswith("gob: "), got[1]


@pytest.mark.parametrize("case", list(BAD_REPLIES))
def test_reactor_call_gets_what_go_gives_its_call(case: str, short_tmp: Path) -> None:
    """Our client makes one call (seq 0) per connection; a server answering it with Go's
    bad-reply cases gives that call what Go's client gives its first call."""
    _, data = BAD_REPLIES[case]
    path = str(short_tmp / "rpc.sock")
    outcome: Any
    with unix_server(path, read_request_then(data)), Reactor() as reactor:
        try:
            outcome = reactor.run(
                reactor_call.call(path, "Arith.Mul", {"A": 0, "B": 2}, ARGS, INT, 2), 5
            )
        except RpcError as exc:
            outcome = f"server error: {exc}"
        except GobError as exc:
            outcome = str(exc)
    expected = OUR_CLIENT_OUTCOMES.get(case, GO_CLIENT_OUTCOMES[case])[0]
    if isinstance(expected, str):
        assert isinstance(outcome, str) and re.fullmatch(expected, outcome), outcome
    else:
        assert outcome == expected
