"""Hostile and broken gob input: every failure is a GobError with a message, in bounded
time and memory; truncation is NEED_DATA until the stream ends."""

from __future__ import annotations

import random
import time
import tracemalloc
from typing import Any

import pytest
from tests.test_gob_codec import CHECKS, GO_CHECKS_1, GO_CHECKS_2, GO_NOTE

from seesaw_healthcheck.gob import (
    NEED_DATA,
    Decoder,
    Encoder,
    Field,
    GobError,
    Int,
    Interface,
    Ptr,
    Registry,
    Slice,
    String,
    Struct,
)
from seesaw_healthcheck.gob.wire import (
    ARRAY_T,
    MAP_T,
    SLICE_T,
    STRUCT_T,
    WireType,
    put_int,
    put_uint,
)


def u(x: int) -> bytes:
    b = bytearray()
    put_uint(b, x)
    return bytes(b)


def i(x: int) -> bytes:
    b = bytearray()
    put_int(b, x)
    return bytes(b)


def msg(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return u(len(body)) + body


def typedef(w: WireType) -> bytes:
    return msg(i(-w.id), w.encode())


def drain(dec: Decoder, type: Any = None) -> list[Any]:
    out = []
    while (v := dec.next(type)) is not NEED_DATA:
        out.append(v)
    return out


def decode_bytes(data: bytes, type: Any = None) -> list[Any]:
    dec = Decoder()
    dec.feed(data)
    out = drain(dec, type)
    dec.close()
    return out


STREAM = GO_CHECKS_1 + GO_CHECKS_2


@pytest.mark.parametrize(("data", "type"), [(STREAM, CHECKS), (STREAM, None), (GO_NOTE, None)])
def test_truncated_at_every_offset(data: bytes, type: Any) -> None:
    full = decode_bytes(data, type)
    for cut in range(len(data)):
        dec = Decoder()
        dec.feed(data[:cut])
        got = drain(dec, type)  # never raises: a prefix is only incomplete
        assert got == full[: len(got)]
        if dec.buffered:
            with pytest.raises(GobError, match="unexpected end of stream"):
                dec.close()
        dec.feed(data[cut:])
        assert got + drain(dec, type) == full


def test_random_corruption_is_gob_error_or_values() -> None:
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    deadline = time.monotonic() + 20
    for _ in range(1500):
        data = bytearray(STREAM)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        for type in (None, CHECKS):
            dec = Decoder(max_message=1 << 16)
            dec.feed(bytes(data))
            try:
                drain(dec, type)
                outcomes["ok"] += 1
            except GobError as e:
                assert str(e)
                outcomes["error"] += 1
        assert time.monotonic() < deadline, "corruption cases took too long"
    assert outcomes["error"] > 50 and outcomes["ok"] > 50


def test_random_garbage_streams() -> None:
    rng = random.Random(99)
    for _ in range(2000):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        dec = Decoder(max_message=1 << 12)
        dec.feed(data)
        try:
            drain(dec)
            drain(dec, CHECKS)
        except GobError as e:
            assert str(e)


def test_huge_length_prefix_allocates_nothing() -> None:
    header = b"\xf8" + (1 << 60).to_bytes(8, "big")
    tracemalloc.start()
    try:
        dec = Decoder()
        dec.feed(header + b"\x01\x02")
        with pytest.raises(GobError, match="exceeds the limit") as err:
            dec.next()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "offset 0" in str(err.value)
    assert peak < 256 * 1024
    with pytest.raises(GobError):  # the error is sticky: the stream is unusable
        dec.next()


def test_length_under_the_limit_waits_without_allocating() -> None:
    tracemalloc.start()
    try:
        dec = Decoder(max_message=1 << 30)
        dec.feed(u((1 << 30) - 1) + b"\x02")
        assert dec.next() is NEED_DATA
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def test_bad_uint_byte_count() -> None:
    with pytest.raises(GobError, match="length header"):
        decode_bytes(b"\xf0" + b"\x00" * 20)
    with pytest.raises(GobError, match="invalid uint"):
        decode_bytes(msg(b"\x04", b"\x00", b"\xf0" + b"\x00" * 16))


def test_absurd_slice_length_in_a_small_message() -> None:
    strings = Slice(String())
    w = WireType(SLICE_T, "", 65, elem=6)
    data = typedef(w) + msg(i(65), b"\x00", u(1 << 62), b"\x01a")
    tracemalloc.start()
    try:
        with pytest.raises(GobError, match="exceeds the message"):
            decode_bytes(data, strings)
        with pytest.raises(GobError, match="exceeds the message"):
            decode_bytes(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_absurd_string_and_map_lengths() -> None:
    with pytest.raises(GobError, match="exceeds the message"):
        decode_bytes(msg(i(6), b"\x00", u(1 << 40), b"abc"), String())
    w = WireType(MAP_T, "", 65, key=6, elem=2)
    with pytest.raises(GobError, match="exceeds the message"):
        decode_bytes(typedef(w) + msg(i(65), b"\x00", u(10**12), b"\x01a\x02"))


@pytest.mark.parametrize(
    "wire",
    [
        WireType(SLICE_T, "loop", 65, elem=65),
        WireType(MAP_T, "loop", 65, key=2, elem=65),
        WireType(ARRAY_T, "loop", 65, elem=65, length=1),
        WireType(STRUCT_T, "loop", 65, fields=[("Next", 65), ("V", 2)]),
    ],
)
def test_self_referencing_type_definitions_terminate(wire: WireType) -> None:
    # A value nesting one level per byte, far deeper than we follow.
    if wire.kind == STRUCT_T:
        value = b"\x01" * 5000 + b"\x00" * 5001
    elif wire.kind == MAP_T:
        value = b"\x01\x02" * 5000 + b"\x00"
    else:
        value = b"\x01" * 5000 + b"\x00"
    data = typedef(wire) + msg(i(65), b"" if wire.kind == STRUCT_T else b"\x00", value)
    start = time.monotonic()
    with pytest.raises(GobError, match="nested"):
        decode_bytes(data)
    assert time.monotonic() - start < 5
    # Shallow values of the same loop decode fine.
    shallow = {
        STRUCT_T: b"\x01\x00\x00",
        MAP_T: b"\x01\x02\x00",
        SLICE_T: b"\x01\x00",
        ARRAY_T: b"\x01\x01\x00",
    }[wire.kind]
    if wire.kind == ARRAY_T:
        with pytest.raises(GobError):  # an array of length 1 cannot end
            decode_bytes(typedef(wire) + msg(i(65), b"\x00", shallow))
    else:
        (v,) = decode_bytes(
            typedef(wire) + msg(i(65), b"" if wire.kind == STRUCT_T else b"\x00", shallow)
        )
        assert v is not None


def test_mutually_referencing_and_undefined_types() -> None:
    a = WireType(SLICE_T, "A", 65, elem=66)
    b = WireType(STRUCT_T, "B", 66, fields=[("As", 65)])
    (v,) = decode_bytes(typedef(a) + typedef(b) + msg(i(66), b"\x01\x01\x00\x00"))
    assert v == {"As": [{}]}
    undefined = WireType(SLICE_T, "U", 65, elem=99)
    with pytest.raises(GobError, match="undefined type id 99"):
        decode_bytes(typedef(undefined) + msg(i(65), b"\x00\x00"))
    with pytest.raises(GobError, match="undefined type id 70"):
        decode_bytes(msg(i(70), b"\x00"))


def test_long_chain_of_type_definitions_is_bounded() -> None:
    defs = [WireType(SLICE_T, "", 65, elem=2)]
    defs += [WireType(SLICE_T, "", 65 + k, elem=64 + k) for k in range(1, 2000)]
    data = b"".join(typedef(w) for w in defs) + msg(i(65 + 1999), b"\x00\x00")
    start = time.monotonic()
    with pytest.raises(GobError, match="nested"):
        decode_bytes(data)
    assert time.monotonic() - start < 5


def test_duplicate_and_reserved_type_ids() -> None:
    w = WireType(SLICE_T, "", 65, elem=2)
    with pytest.raises(GobError, match="duplicate"):
        decode_bytes(typedef(w) + typedef(w))
    with pytest.raises(GobError, match="reserved"):
        decode_bytes(typedef(WireType(SLICE_T, "", 20, elem=2)))


def test_malformed_type_definitions() -> None:
    for body in (b"\x09\x00", b"\x03\x01\x05\x00\x00", b"\x03\x01\x01\x7f", b"\x01\x00\x00\x01"):
        with pytest.raises(GobError):
            decode_bytes(msg(i(-65), body))


def test_extra_data_after_type_definition() -> None:
    w = WireType(SLICE_T, "", 65, elem=2)
    with pytest.raises(GobError, match="extra data"):
        decode_bytes(msg(i(-65), w.encode(), b"\x00"))


def test_deeply_nested_interfaces() -> None:
    reg = Registry()
    box = Struct("Box", [Field("I", Interface(reg))])
    reg.register("Box", box, dict)
    value: Any = None
    for _ in range(60):
        value = {"I": value}
    assert decode_bytes(Encoder().encode(value, box), box) == [value]
    for _ in range(60):  # 120 levels: past the decoder's limit of 100
        value = {"I": value}
    data = Encoder().encode(value, box)
    with pytest.raises(GobError, match="nested"):
        decode_bytes(data, box)
    with pytest.raises(GobError, match="nested"):
        decode_bytes(data)


def test_value_spanning_messages_cannot_exceed_the_limit() -> None:
    # An interface whose concrete type definitions keep coming: each message is small,
    # but the value may not grow beyond max_message in total.
    reg = Registry(lenient=True)
    holder = Struct("H", [Field("I", Interface(reg))])
    head = typedef(WireType(STRUCT_T, "H", 65, fields=[("I", 8)]))
    parts = [i(65), b"\x01", u(1), b"x"]
    defs = b"".join(typedef(WireType(SLICE_T, "", 66 + k, elem=2)) for k in range(3000))
    data = head + msg(*parts) + defs
    dec = Decoder(max_message=4096)
    dec.feed(data)
    with pytest.raises(GobError, match="limit"):
        drain(dec, holder)


def test_encoder_reports_runaway_nesting() -> None:
    node = Struct("Node", lambda: [Field("Next", Ptr(node))])
    value: Any = None
    for _ in range(5000):
        value = {"Next": value}
    with pytest.raises(GobError, match="nested"):
        Encoder().encode(value, node)


def test_nil_pointer_and_bad_values_do_not_leak_other_exceptions() -> None:
    node = Struct("Node", lambda: [Field("V", Int()), Field("Next", Ptr(node))])
    for bad in ({"V": "x"}, {"V": 1, "Next": 5}, [1], "s", {"V": 2**70}):
        with pytest.raises(GobError):
            Encoder().encode(bad, node)


def test_huge_struct_definition_decodes_in_bounded_time() -> None:
    fields = [(f"F{k}", 2) for k in range(20000)]
    w = WireType(STRUCT_T, "Wide", 65, fields=fields)
    value = b"\x01\x02" * 3 + b"\x00"  # F0..F2 = 1
    start = time.monotonic()
    (v,) = decode_bytes(typedef(w) + msg(i(65), value))
    assert v == {"F0": 1, "F1": 1, "F2": 1}
    narrow = Struct("Wide", [Field("F1", Int()), Field("F19999", Int())])
    assert decode_bytes(typedef(w) + msg(i(65), value), narrow) == [{"F1": 1, "F19999": 0}]
    assert time.monotonic() - start < 5


def test_wide_schema_struct_round_trips() -> None:
    wide = Struct("W", [Field(f"F{k}", Int()) for k in range(200)])
    v = {f"F{k}": k for k in range(200)}
    assert decode_bytes(Encoder().encode(v, wide), wide) == [v]
