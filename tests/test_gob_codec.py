"""Byte-level tests of the gob codec against bytes written by Go 1.19's encoding/gob."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest

from seesaw_healthcheck.gob import (
    NEED_DATA,
    TIME,
    Array,
    Bool,
    Bytes,
    Complex,
    Decoder,
    Encoder,
    Field,
    Float,
    GobError,
    GoTime,
    Int,
    Interface,
    Map,
    Ptr,
    Registry,
    Slice,
    String,
    Struct,
    TypeIds,
    Uint,
    UnknownValue,
)
from seesaw_healthcheck.gob.wire import put_int, put_uint


def uint_bytes(x: int) -> bytes:
    b = bytearray()
    put_uint(b, x)
    return bytes(b)


def int_bytes(x: int) -> bytes:
    b = bytearray()
    put_int(b, x)
    return bytes(b)


def decode_all(data: bytes, type: Any = None) -> list[Any]:
    dec = Decoder()
    dec.feed(data)
    out = []
    while (v := dec.next(type)) is not NEED_DATA:
        out.append(v)
    dec.close()
    return out


# -- primitives (doc.go's examples) --


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, "00"),
        (7, "07"),
        (127, "7f"),
        (128, "ff80"),
        (256, "fe0100"),
        (2**64 - 1, "f8" + "ff" * 8),
    ],
)
def test_uint_encoding(value: int, wire: str) -> None:
    assert uint_bytes(value).hex() == wire


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, "00"),
        (1, "02"),
        (-1, "01"),
        (-129, "fe0101"),
        (2**63 - 1, "f8" + "ff" * 7 + "fe"),
        (-(2**63), "f8" + "ff" * 8),
    ],
)
def test_int_encoding(value: int, wire: str) -> None:
    assert int_bytes(value).hex() == wire


def singleton(value: Any, t: Any) -> str:
    return Encoder().encode(value, t).hex()


def test_singletons_match_go() -> None:
    # Go: enc.Encode(42), enc.Encode("s"): length, type id, 0 delta, value.
    assert singleton(42, Int()) == "03040054"
    assert singleton("s", String()) == "040c000173"
    assert singleton(True, Bool()) == "03020001"
    assert singleton(0, Uint()) == "03060000"  # top level: zero is still sent
    # doc.go: 17.0 is float bits 0x4031000000000000, reversed -> 0x3140 -> fe 31 40
    assert singleton(17.0, Float()) == "050800fe3140"
    assert singleton(b"\x01\x02", Bytes()) == "050a00020102"
    assert singleton(complex(1.5, 0), Complex()) == "060e00fef83f00"


def test_floats_round_trip_exactly() -> None:
    for f in (0.0, -0.0, 1e-310, 1.7976931348623157e308, float("inf"), float("-inf")):
        (back,) = decode_all(Encoder().encode(f, Float()))
        assert math.copysign(1, back) == math.copysign(1, f) and back == f
    (nan,) = decode_all(Encoder().encode(float("nan"), Float()))
    assert math.isnan(nan)


# -- doc.go's worked example: type Point struct{X, Y int} --

POINT = Struct("Point", [Field("X", Int()), Field("Y", Int())])
POINT_STREAM = bytes.fromhex(
    "1fff810301010550 6f696e7401ff8200 0102010158010400 0101590104000000"
    "07ff82012c014200"
    "05ff82012b00".replace(" ", "")
)


def test_doc_go_point_example() -> None:
    enc = Encoder()
    out = enc.encode({"X": 22, "Y": 33}, POINT) + enc.encode({"X": -22, "Y": 0}, POINT)
    assert out == POINT_STREAM
    assert decode_all(out, POINT) == [{"X": 22, "Y": 33}, {"X": -22, "Y": 0}]
    # Generic decoding keeps only what travelled (zero fields are omitted on the wire).
    assert decode_all(out) == [{"X": 22, "Y": 33}, {"X": -22}]


def test_type_definition_sent_once_per_stream() -> None:
    enc = Encoder()
    first = enc.encode({"X": 1, "Y": 2}, POINT)
    second = enc.encode({"X": 1, "Y": 2}, POINT)
    assert len(first) > len(second)
    assert Encoder().encode({"X": 1, "Y": 2}, POINT) == first


# -- a Seesaw-shaped stream written by Go 1.19 (see tests: /tmp/gobcheck in the report) --


@dataclass
class Tcp:
    Target: dict[str, Any]
    Send: str = ""
    Secure: bool = False


@dataclass
class Udp:
    Target: dict[str, Any]
    Receive: str = ""


TARGET = Struct("Target", [Field("IP", Bytes()), Field("Port", Int()), Field("Mode", Int())])
TCP = Struct(
    "TCPChecker", [Field("Target", TARGET), Field("Send", String()), Field("Secure", Bool())], Tcp
)
UDP = Struct("UDPChecker", [Field("Target", TARGET), Field("Receive", String())], Udp)
REGISTRY = (
    Registry()
    .register("*main.TCPChecker", Ptr(TCP), Tcp)
    .register("*main.UDPChecker", Ptr(UDP), Udp)
)
CONFIG = Struct(
    "Config",
    [
        Field("Id", Uint()),
        Field("Checker", Interface(REGISTRY)),
        Field("Interval", Int()),
        Field("Retries", Int()),
    ],
)
CHECKS = Struct(
    "Checks", [Field("Configs", Map(Uint(), Ptr(CONFIG), name="map[main.Id]*main.Config"))]
)

# Go: enc.Encode(&Checks{map[Id]*Config{7: {7, &TCPChecker{Target{[]byte{1,2,3,4}, 80, 0},
# "hi", true}, 5 * time.Second, 2}}}) then a second value with a UDPChecker.
GO_CHECKS_1 = bytes.fromhex(
    "21ff8103010106436865636b7301ff820001010107436f6e6669677301ff8600000029ff850401"
    "01186d61705b6d61696e2e49645d2a6d61696e2e436f6e66696701ff8600010601ff84000038ff"
    "83030102ff84000104010249640106000107436865636b65720110000108496e74657276616c01"
    "0400010752657472696573010400000051ff82010107010701102a6d61696e2e54435043686563"
    "6b6572ff870301010a544350436865636b657201ff88000103010654617267657401ff8a000104"
    "53656e64010c00010653656375726501020000002dff890301010654617267657401ff8a000103"
    "01024950010a000104506f727401040001044d6f6465010400000020ff88120101040102030401"
    "ffa0000102686901010001fb02540be40001040000"
)
GO_CHECKS_2 = bytes.fromhex(
    "49ff82010108010801102a6d61696e2e554450436865636b6572ff8b0301010a55445043686563"
    "6b657201ff8c000102010654617267657401ff8a00010752656365697665010c0000000fff8c0a"
    "01026a010200010178000000"
)
CHECKS_1 = {
    "Configs": {
        7: {
            "Id": 7,
            "Checker": Tcp({"IP": b"\1\2\3\4", "Port": 80, "Mode": 0}, "hi", True),
            "Interval": 5_000_000_000,
            "Retries": 2,
        }
    }
}
CHECKS_2 = {
    "Configs": {
        8: {
            "Id": 8,
            "Checker": Udp({"IP": b"", "Port": 53, "Mode": 1}, "x"),
            "Interval": 0,
            "Retries": 0,
        }
    }
}


def test_interface_stream_matches_go_bytes() -> None:
    # Go builds Config while building the map, so Config's wire name is empty, and the
    # new concrete type's definitions split the value into several messages.
    enc = Encoder()
    assert enc.encode(CHECKS_1, Ptr(CHECKS)) == GO_CHECKS_1
    assert enc.encode(CHECKS_2, Ptr(CHECKS)) == GO_CHECKS_2


def test_interface_stream_decodes() -> None:
    assert decode_all(GO_CHECKS_1 + GO_CHECKS_2, CHECKS) == [CHECKS_1, CHECKS_2]
    generic = decode_all(GO_CHECKS_1)
    checker = generic[0]["Configs"][7]["Checker"]
    assert checker == UnknownValue(
        "*main.TCPChecker",
        {"Target": {"IP": b"\1\2\3\4", "Port": 80}, "Send": "hi", "Secure": True},
    )


def test_chunked_feeding_one_byte_at_a_time() -> None:
    stream = GO_CHECKS_1 + GO_CHECKS_2
    dec = Decoder()
    got = []
    for i in range(len(stream)):
        dec.feed(stream[i : i + 1])
        while (v := dec.next(CHECKS)) is not NEED_DATA:
            got.append((i, v))
    dec.close()
    assert got == [(len(GO_CHECKS_1) - 1, CHECKS_1), (len(stream) - 1, CHECKS_2)]


def test_next_before_any_data() -> None:
    dec = Decoder()
    assert dec.next() is NEED_DATA
    dec.close()  # nothing pending: fine


# Go: a struct with time.Time, []string, []*Target, [2]int8, float64, complex128, then
# singletons 42, "s", []int{1, 2}; encoded by a process that had already built ids 65-70.
GO_NOTE = bytes.fromhex(
    "4bff8d030101044e6f746501ff8e0001070102496401060001045768656e01ff90000104546167"
    "7301ff9200010353756201ff9400010341727201ff9600010146010800010143010e00000010ff"
    "8f0501010454696d6501ff9000000016ff91020101085b5d737472696e6701ff9200010c00001d"
    "ff930201010e5b5d2a6d61696e2e54617267657401ff940001ff8a00002dff8903010106546172"
    "67657401ff8a00010301024950010a000104506f727401040001044d6f64650104000000"
    "17ff95010101075b325d696e743801ff96000104010400002eff8e0103010f010000000edce5e8"
    "0000000005ffff010201610001010202000102000101fef83f01fef03fffc00003040054040c00"
    "01730cff97020102ff98000104000006ff9800020204"
)
NOTE = Struct(
    "Note",
    [
        Field("Id", Uint()),
        Field("When", TIME),
        Field("Tags", Slice(String())),
        Field("Sub", Slice(Ptr(TARGET), name="[]*main.Target")),
        Field("Arr", Array(Int(8), 2)),
        Field("F", Float()),
        Field("C", Complex()),
    ],
)
NOTE_VALUE = {
    "Id": 3,
    "When": GoTime.from_unix_ns(1_700_000_000_000_000_005),
    "Tags": ["a", ""],
    "Sub": [{"IP": b"", "Port": 1, "Mode": 0}],
    "Arr": [0, -1],
    "F": 1.5,
    "C": complex(1, -2),
}


def test_time_arrays_slices_match_go_bytes() -> None:
    ids = TypeIds()
    first = Encoder(ids)  # the Go process had built these types first
    first.encode(CHECKS_1, Ptr(CHECKS))
    first.encode(CHECKS_2, Ptr(CHECKS))
    enc = Encoder(ids)
    out = (
        enc.encode(NOTE_VALUE, NOTE)
        + enc.encode(42, Int())
        + enc.encode("s", String())
        + enc.encode([1, 2], Slice(Int()))
    )
    assert out == GO_NOTE
    dec = Decoder()
    dec.feed(GO_NOTE)
    assert dec.next(NOTE) == NOTE_VALUE
    assert dec.next(Int()) == 42
    assert dec.next(String()) == "s"
    assert dec.next(Slice(Int())) == [1, 2]
    assert dec.next() is NEED_DATA


def test_zero_time_is_omitted_but_local_zero_instant_is_not() -> None:
    t = Struct("T", [Field("When", TIME)])
    assert decode_all(Encoder().encode({"When": GoTime()}, t), t) == [{"When": GoTime()}]
    zero_struct = Encoder().encode({"When": GoTime()}, t)
    assert zero_struct.endswith(bytes.fromhex("ff8200"))  # id, then an empty struct
    local = GoTime(0, 0, 0)
    assert decode_all(Encoder().encode({"When": local}, t), t) == [{"When": local}]


# -- struct field rules --


@dataclass
class Inner:
    A: int = 0


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    ptr: Inner | None = None
    name: str = ""
    tags: list[str] = field(default_factory=list)


INNER = Struct("Inner", [Field("A", Int())], Inner)
OUTER = Struct(
    "Outer",
    [
        Field("Inner", INNER, "inner"),
        Field("Ptr", Ptr(INNER), "ptr"),
        Field("Name", String(), "name"),
        Field("Tags", Slice(String()), "tags"),
    ],
    Outer,
)


def test_nested_struct_always_sent_nil_pointer_omitted() -> None:
    enc = Encoder()
    enc.encode(Outer(), OUTER)
    value_msg = enc.encode(Outer(), OUTER)
    # id 65, field 0 (Inner) as an empty struct, end of Outer; Ptr/Name/Tags omitted.
    assert value_msg.hex() == "05ff82010000"
    assert decode_all(Encoder().encode(Outer(), OUTER), OUTER) == [Outer()]
    v = Outer(Inner(5), Inner(0), "n", ["a"])
    (back,) = decode_all(Encoder().encode(v, OUTER), OUTER)
    assert back == v


def test_schema_matching_by_name_skips_unknown_and_zero_fills_missing() -> None:
    wide = Struct(
        "S",
        [
            Field("A", Int()),
            Field("Extra", Slice(Map(String(), Int()))),
            Field("B", String()),
            Field("C", Interface(Registry())),
        ],
    )
    narrow = Struct("S", [Field("B", String()), Field("Missing", Slice(Int())), Field("A", Int())])
    data = Encoder().encode({"A": 1, "Extra": [{"x": 1}], "B": "b", "C": None}, wide)
    assert decode_all(data, narrow) == [{"B": "b", "Missing": [], "A": 1}]


def test_no_fields_matched_is_an_error() -> None:
    a = Struct("A", [Field("X", Int())])
    b = Struct("B", [Field("Y", Int())])
    with pytest.raises(GobError, match="no fields matched"):
        decode_all(Encoder().encode({"X": 1}, a), b)


@pytest.mark.parametrize(
    ("bits", "ok", "bad"), [(8, 127, 128), (16, -32768, -32769), (32, 2**31 - 1, 2**31)]
)
def test_int_out_of_range_for_declared_width(bits: int, ok: int, bad: int) -> None:
    narrow = Struct("S", [Field("V", Int(bits))])
    wide = Struct("S", [Field("V", Int())])
    assert decode_all(Encoder().encode({"V": ok}, wide), narrow) == [{"V": ok}]
    with pytest.raises(GobError, match="out of range"):
        decode_all(Encoder().encode({"V": bad}, wide), narrow)
    with pytest.raises(GobError, match="out of range"):
        Encoder().encode({"V": bad}, narrow)


def test_uint_out_of_range() -> None:
    with pytest.raises(GobError, match="out of range"):
        decode_all(Encoder().encode(256, Uint()), Uint(8))


@pytest.mark.parametrize(
    ("sent", "declared"),
    [
        (Int(), Uint()),
        (String(), Bytes()),
        (Int(), Float()),
        (Slice(Int()), Slice(String())),
        (Map(String(), Int()), Map(Int(), Int())),
        (Array(Int(), 2), Array(Int(), 3)),
        (Int(), POINT),
        (POINT, Int()),
        (TIME, Int()),
        (Int(), TIME),
    ],
)
def test_incompatible_types_are_rejected(sent: Any, declared: Any) -> None:
    value = {Int: 1, String: "x", Slice: [1], Map: {"a": 1}, Array: [1, 2]}.get(type(sent))
    if sent is POINT:
        value = {"X": 1, "Y": 1}
    if sent is TIME:
        value = GoTime(5)
    data = Encoder().encode(value, sent)
    with pytest.raises(GobError, match="mismatch"):
        decode_all(data, declared)


def test_dataclass_struct_and_recursive_type() -> None:
    node = Struct("Node", lambda: [Field("V", Int()), Field("Next", Ptr(node))])
    value = {"V": 1, "Next": {"V": 2, "Next": {"V": 3, "Next": None}}}
    assert decode_all(Encoder().encode(value, node), node) == [value]


def test_map_and_array_round_trip() -> None:
    t = Map(String(), Array(Uint(16), 2))
    v = {"a": [1, 65535], "": [0, 0]}
    assert decode_all(Encoder().encode(v, t), t) == [v]


def test_interface_nil_and_unknown_names() -> None:
    strict = Struct("S", [Field("I", Interface(Registry()))])
    lenient_reg = Registry(lenient=True)
    lenient = Struct("S", [Field("I", Interface(lenient_reg))])
    data = GO_CHECKS_1
    checks_strict = Struct(
        "Checks",
        [
            Field(
                "Configs",
                Map(Uint(), Ptr(Struct("Config", [Field("Checker", Interface(Registry()))]))),
            )
        ],
    )
    with pytest.raises(GobError, match="not registered"):
        decode_all(data, checks_strict)
    checks_lenient = Struct(
        "Checks",
        [
            Field(
                "Configs",
                Map(Uint(), Ptr(Struct("Config", [Field("Checker", Interface(lenient_reg))]))),
            )
        ],
    )
    (v,) = decode_all(data, checks_lenient)
    assert isinstance(v["Configs"][7]["Checker"], UnknownValue)
    assert decode_all(Encoder().encode({"I": None}, strict), lenient) == [{"I": None}]


def test_interface_holding_basic_and_nested_interfaces() -> None:
    reg = Registry()
    box = Struct("Box", [Field("I", Interface(reg))])
    reg.register("int", Int(), int).register("[]string", Slice(String()), list)
    reg.register("main.Box", box, dict)
    v = {"I": {"I": {"I": 7}}}
    data = Encoder().encode(v, box)
    assert decode_all(data, box) == [v]
    assert decode_all(Encoder().encode({"I": ["x"]}, box), box) == [{"I": ["x"]}]


def test_encoder_rejects_bad_values_with_gob_error() -> None:
    with pytest.raises(GobError):
        Encoder().encode("x", Int())
    with pytest.raises(GobError):
        Encoder().encode(None, Ptr(POINT))
    with pytest.raises(GobError, match="not registered"):
        Encoder().encode({"I": 3.5}, Struct("S", [Field("I", Interface(Registry()))]))
    with pytest.raises(GobError):
        Encoder().encode([1], Array(Int(), 2))
    with pytest.raises(GobError):
        Encoder().encode([None], Slice(Ptr(Int())))


def test_encoder_failure_does_not_mark_types_sent() -> None:
    enc = Encoder()
    with pytest.raises(GobError):
        enc.encode({"X": "bad", "Y": 1}, POINT)
    assert enc.encode({"X": 22, "Y": 33}, POINT) == POINT_STREAM[:40]


def test_strings_keep_invalid_utf8() -> None:
    raw = "caf\udce9"  # surrogateescape of a lone 0xE9 byte
    data = Encoder().encode(raw, String())
    assert data.endswith(b"caf\xe9")
    assert decode_all(data, String()) == [raw]


def test_leftover_bytes_in_a_message_are_ignored_like_go() -> None:
    data = bytearray(Encoder().encode(5, Int()))
    data[0] += 2
    data += b"\x01\x02"
    assert decode_all(bytes(data), Int()) == [5]


def test_generic_decoding_of_all_kinds() -> None:
    t = Struct(
        "All",
        [
            Field("B", Bool()),
            Field("U", Uint(8)),
            Field("F", Float(32)),
            Field("C", Complex(64)),
            Field("Y", Bytes()),
            Field("M", Map(Int(), Bool())),
            Field("T", TIME),
        ],
    )
    v = {
        "B": True,
        "U": 200,
        "F": 0.5,
        "C": 1j,
        "Y": b"\0",
        "M": {-1: True},
        "T": GoTime(63_000_000_000, 1, 3600),
    }
    data = Encoder().encode(v, t)
    assert decode_all(data, t) == [v]
    (g,) = decode_all(data)
    assert g["T"] == UnknownValue("Time", v["T"].marshal_binary(), True)
    assert {k: g[k] for k in "BUFCYM"} == {k: v[k] for k in "BUFCYM"}


def test_nil_map_omitted_empty_map_sent() -> None:
    t = Struct("M", [Field("M", Map(String(), Int()))])
    enc = Encoder()
    enc.encode({"M": None}, t)
    assert enc.encode({"M": None}, t).hex() == "03ff8200"
    assert enc.encode({"M": {}}, t).hex() == "05ff82010000"
    assert decode_all(Encoder().encode({"M": {}}, t)) == [{"M": {}}]
    assert decode_all(Encoder().encode({"M": None}, t)) == [{}]


def test_pointer_to_zero_gob_encoder_is_sent() -> None:
    t = Struct("P", [Field("T", Ptr(TIME)), Field("U", TIME)])
    (g,) = decode_all(Encoder().encode({"T": GoTime(), "U": GoTime()}, t))
    assert set(g) == {"T"}


# Go: type Box struct{I interface{}; N string}; Inner struct{V int}; gob.Register(Box{}),
# gob.Register(&Inner{}); then Box{Box{Box{[]string{"x"}, "c"}, "b"}, "a"}, Box{I: 7},
# Box{I: Box{I: &Inner{3}}}, Box{I: Box{I: &Inner{4}}}, map[string][]Inner{"k": {{1}, {2}}},
# [2]Inner{{5}, {}}. Nested new concrete types put their definitions inside the outer
# interface's bytes.
GO_NESTED = bytes.fromhex(
    "1dff8103010103426f7801ff8200010201014901100001014e010c00000046ff8201086d61696e2e"
    "426f78ff823301086d61696e2e426f78ff821601085b5d737472696e67ff83020102ff8400010c00"
    "000bff8404000101780101630001016200010161000cff820103696e740402000e003eff8201086d"
    "61696e2e426f78ff8226010b2a6d61696e2e496e6e6572ff8503010105496e6e657201ff86000101"
    "010156010400000007ff8603010600000024ff8201086d61696e2e426f78ff8214010b2a6d61696e"
    "2e496e6e6572ff860301080000000fff89040102ff8a00010c01ff8800000dff87020102ff880001"
    "ff8600000dff8a0001016b020102000104000fff8b010102ff8c0001ff860104000008ff8c000201"
    "0a0000"
)


class BoxValue(dict[str, Any]):
    pass


class InnerValue(dict[str, Any]):
    pass


def test_nested_interfaces_match_go_bytes() -> None:
    reg = Registry()
    box = Struct("Box", [Field("I", Interface(reg)), Field("N", String())])
    inner = Struct("Inner", [Field("V", Int())])
    reg.register("main.Box", box, BoxValue).register("[]string", Slice(String()), list)
    reg.register("int", Int(), int).register("*main.Inner", Ptr(inner), InnerValue)
    values: list[tuple[Any, Any]] = [
        (BoxValue(I=BoxValue(I=BoxValue(I=["x"], N="c"), N="b"), N="a"), box),
        ({"I": 7, "N": ""}, box),
        ({"I": BoxValue(I=InnerValue(V=3), N=""), "N": ""}, box),
        ({"I": BoxValue(I=InnerValue(V=4), N=""), "N": ""}, box),
        ({"k": [{"V": 1}, {"V": 2}]}, Map(String(), Slice(inner))),
        ([{"V": 5}, {"V": 0}], Array(inner, 2)),
    ]
    enc = Encoder()
    assert b"".join(enc.encode(v, t) for v, t in values) == GO_NESTED
    dec = Decoder()
    dec.feed(GO_NESTED)
    for v, t in values:
        assert dec.next(t) == v
    assert dec.next() is NEED_DATA


@dataclass
class Reordered:
    b: str = ""
    a: int = 0


@dataclass(kw_only=True)
class KwOnly:
    a: int = 0
    b: str = ""


@pytest.mark.parametrize("cls", [Reordered, KwOnly])
def test_dataclass_field_order_does_not_matter(cls: type) -> None:
    t = Struct("AB", [Field("A", Int(), "a"), Field("B", String(), "b")], cls)
    v = cls(a=3, b="x")
    assert decode_all(Encoder().encode(v, t), t) == [v]
