"""Golden-file tests: our gob codec against Go's encoding/gob, byte for byte.

``gopeer golden`` (tests/go/golden.go) writes one file per case of its table; the table
below mirrors it: a gob descriptor and the expected Python value(s) per case. For every
case we decode Go's bytes and compare, re-encode the expected value and compare bytes
(where Go's output is deterministic, i.e. no multi-entry map), and hand all our encodings
back to ``gopeer verify``, which decodes them with Go and compares with its own table.
"""

from __future__ import annotations

import calendar
import random
import struct
import subprocess
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.gopeer import recipe_checks

from seesaw_healthcheck import model, schema
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
    GobEncoded,
    GobError,
    Int,
    Interface,
    Map,
    Ptr,
    Registry,
    Slice,
    String,
    Struct,
    Uint,
)
from seesaw_healthcheck.gob.gotime import GoTime
from seesaw_healthcheck.rpc.framing import (
    EMPTY_STRUCT,
    REQUEST_TYPE,
    RESPONSE_TYPE,
    Request,
    Response,
)

# --- the Go test types (tests/go/types.go), as dataclasses and descriptors ---------------


@dataclass
class Point:
    x: int = 0
    y: int = 0


@dataclass
class Inner:
    a: int = 0
    b: str = ""


@dataclass
class Outer:
    name: str = ""
    in_: Inner = field(default_factory=Inner)
    in_ptr: Inner | None = None
    tags: list[str] = field(default_factory=list)
    score: float = 0.0


@dataclass
class Sparse:
    a: int = 0
    b: str = ""
    c: bool = False
    d: float = 0.0
    e: list[int] = field(default_factory=list)
    f: dict[str, int] | None = None  # Go: a nil map is omitted, an empty one is sent
    g: Inner | None = None
    h: int = 0
    i: list[int] = field(default_factory=lambda: [0, 0])


@dataclass
class Node:
    val: int = 0
    next: Node | None = None


@dataclass
class Tree:
    val: str = ""
    left: Tree | None = None
    right: Tree | None = None


@dataclass
class Base:
    id: int = 0
    tag: str = ""


@dataclass
class Derived:
    base: Base = field(default_factory=Base)
    extra: str = ""


@dataclass
class Ptrs:
    p: int | None = None
    pp: str | None = None
    ppp: Point | None = None
    nil: Inner | None = None


@dataclass
class Circle:
    r: float = 0.0


@dataclass
class Square:
    side: int = 0


@dataclass
class Holder:
    label: str = ""
    shape: Any = None
    empty: Any = None
    many: list[Any] = field(default_factory=list)
    any: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Celsius:
    deg: int = 0


@dataclass(frozen=True)
class Version:
    major: int = 0
    minor: int = 0


@dataclass
class Color:
    r: int = 0
    g: int = 0
    b: int = 0


@dataclass
class Weather:
    city: str = ""
    temp: Celsius = field(default_factory=Celsius)
    temp_ptr: Celsius | None = None
    ver: Version = field(default_factory=Version)
    no_ver: Version = field(default_factory=Version)
    col: Color = field(default_factory=Color)


@dataclass
class Event:
    name: str = ""
    at: GoTime = field(default_factory=GoTime)
    zero: GoTime = field(default_factory=GoTime)


class GoUint8(int):
    """A Python int that travels in an interface as Go's uint8 (not int)."""


def _celsius_decode(data: bytes) -> Celsius:
    if len(data) < 2 or not data.endswith(b"C"):
        raise ValueError(f"bad Celsius {data!r}")
    return Celsius(int(data[:-1]))


def _version_decode(data: bytes) -> Version:
    if len(data) != 2:
        raise ValueError(f"bad Version {data.hex()}")
    return Version(data[0], data[1])


INT = Int(64)
POINT = Struct("Point", [Field("X", INT, "x"), Field("Y", INT, "y")], Point)
INNER = Struct("Inner", [Field("A", INT, "a"), Field("B", String(), "b")], Inner)
OUTER = Struct(
    "Outer",
    [
        Field("Name", String(), "name"),
        Field("In", INNER, "in_"),
        Field("InPtr", Ptr(INNER), "in_ptr"),
        Field("Tags", Slice(String()), "tags"),
        Field("Score", Float(), "score"),
    ],
    Outer,
)
SPARSE = Struct(
    "Sparse",
    [
        Field("A", INT, "a"),
        Field("B", String(), "b"),
        Field("C", Bool(), "c"),
        Field("D", Float(), "d"),
        Field("E", Slice(INT), "e"),
        Field("F", Map(String(), INT), "f"),
        Field("G", Ptr(INNER), "g"),
        Field("H", Uint(), "h"),
        Field("I", Array(INT, 2), "i"),
    ],
    Sparse,
)
NODE: Struct = Struct(
    "Node", lambda: [Field("Val", INT, "val"), Field("Next", Ptr(NODE), "next")], Node
)
TREE: Struct = Struct(
    "Tree",
    lambda: [
        Field("Val", String(), "val"),
        Field("Left", Ptr(TREE), "left"),
        Field("Right", Ptr(TREE), "right"),
    ],
    Tree,
)
BASE = Struct("Base", [Field("ID", INT, "id"), Field("Tag", String(), "tag")], Base)
DERIVED = Struct(
    "Derived", [Field("Base", BASE, "base"), Field("Extra", String(), "extra")], Derived
)
PTRS = Struct(
    "Ptrs",
    [
        Field("P", Ptr(INT), "p"),
        Field("PP", Ptr(Ptr(String())), "pp"),
        Field("PPP", Ptr(Ptr(Ptr(POINT))), "ppp"),
        Field("Nil", Ptr(INNER), "nil"),
    ],
    Ptrs,
)
CIRCLE = Struct("Circle", [Field("R", Float(), "r")], Circle)
SQUARE = Struct("Square", [Field("Side", INT, "side")], Square)
SHAPES = (
    Registry().register("golden.Circle", CIRCLE, Circle).register("*main.Square", SQUARE, Square)
)
SHAPE = Interface(SHAPES, "main.Shape")
# Go's pre-registered basic types, as an interface{} in the golden table carries them.
ANYTHING = (
    Registry()
    .register("int", INT, int)
    .register("string", String(), str)
    .register("[]uint8", Bytes(), bytes)
    .register("[]string", Slice(String()), list)
    .register("uint8", Uint(8), GoUint8)
    .register("float64", Float(), float)
    .register("bool", Bool(), bool)
    .register("golden.Circle", CIRCLE, Circle)
)
ANY = Interface(ANYTHING)
HOLDER = Struct(
    "Holder",
    [
        Field("Label", String(), "label"),
        Field("Shape", SHAPE, "shape"),
        Field("Empty", SHAPE, "empty"),
        Field("Many", Slice(SHAPE), "many"),
        Field("Any", Slice(ANY), "any"),
    ],
    Holder,
)
CELSIUS = GobEncoded(
    "Celsius",
    Celsius,
    lambda c: f"{c.deg}C".encode(),
    _celsius_decode,
    lambda c: c.deg == 0,
    "gob",
)
VERSION = GobEncoded(
    "Version",
    Version,
    lambda v: bytes([v.major, v.minor]),
    _version_decode,
    lambda v: v == Version(),
    "binary",
)
# Go's gob ignores TextMarshaler (golang.org/issue/6760): Color is a plain struct.
COLOR = Struct(
    "Color",
    [Field("R", Uint(8), "r"), Field("G", Uint(8), "g"), Field("B", Uint(8), "b")],
    Color,
)
WEATHER = Struct(
    "Weather",
    [
        Field("City", String(), "city"),
        Field("Temp", CELSIUS, "temp"),
        Field("TempPtr", Ptr(CELSIUS), "temp_ptr"),
        Field("Ver", VERSION, "ver"),
        Field("NoVer", VERSION, "no_ver"),
        Field("Col", COLOR, "col"),
    ],
    Weather,
)
EVENT = Struct(
    "Event",
    [Field("Name", String(), "name"), Field("At", TIME, "at"), Field("Zero", TIME, "zero")],
    Event,
)


# --- helpers --------------------------------------------------------------------------


def go_str(raw: bytes) -> str:
    """A Go string holding arbitrary bytes, as the codec represents it."""
    return raw.decode("utf-8", "surrogateescape")


def f32(x: float) -> float:
    """``x`` rounded to float32, as a Go float32 holds it."""
    value: float = struct.unpack("<f", struct.pack("<f", x))[0]
    return value


def gotime(y: int, mo: int, d: int, h: int, mi: int, s: int, ns: int, offset: int | None) -> GoTime:
    """time.Date(y, mo, d, h, mi, s, ns, zone): wall clock in a zone at ``offset`` s
    (None: Go's UTC location)."""
    wall = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    return GoTime.from_unix_ns((wall - (offset or 0)) * 1_000_000_000 + ns, offset)


def ip16(text: str) -> bytes:
    return model.ip_to_bytes(text)


def ip4(text: str) -> bytes:
    return model.ip_to_bytes(text, four=True)


def canon(value: Any) -> Any:
    """A comparable form of a value as gob can carry it: empty and nil containers are the
    same (gob sends neither), floats compare bit for bit, enums as their ints."""
    if is_dataclass(value) and not isinstance(value, (type, GoTime)):
        return (type(value).__name__, tuple(canon(getattr(value, f.name)) for f in fields(value)))
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return ("float", struct.pack("<d", value).hex())
    if isinstance(value, complex):
        return ("complex", canon(value.real), canon(value.imag))
    if isinstance(value, (bytes, bytearray)):
        return bytes(value) or None
    if isinstance(value, (list, tuple)):
        return [canon(v) for v in value] or None
    if isinstance(value, dict):
        return {canon(k): canon(v) for k, v in value.items()} or None
    return value


# --- the table, mirroring goldenCases() in tests/go/golden.go -----------------------------


@dataclass
class Case:
    name: str
    type: Any
    values: list[Any]
    deterministic: bool = True


def one(name: str, gob_type: Any, value: Any) -> Case:
    return Case(name, gob_type, [value])


def unordered(name: str, gob_type: Any, value: Any) -> Case:
    return Case(name, gob_type, [value], deterministic=False)


BIG_ID = 0x1234 << 48 | 3
SECOND = model.SECOND


def golden_context() -> model.Context:
    return model.Context(
        auth_type=model.AuthType.TRUSTED,
        peer=model.Peer(model.Component.HEALTHCHECK, "healthcheck [pid 4242]"),
        user=model.User(uid="1000", username="seesaw"),
    )


def golden_checkers() -> dict[str, model.Checker]:
    return {
        "dns": model.DNSChecker(
            model.Target(ip=ip16("2001:db8::53"), port=53, proto=17),
            model.DNSQuestion("www.example.com.", 28, 1),
            "2001:db8::80",
        ),
        "http": model.HTTPChecker(
            model.Target(
                ip=ip16("192.0.2.10"), host=ip16("10.0.0.5"), mark=7, mode=1, port=443, proto=6
            ),
            secure=True,
            tls_verify=True,
            method="HEAD",
            proxy=True,
            request="http://example.com/healthz",
            response="OK",
            response_code=204,
        ),
        "ping": model.PingChecker(model.Target(ip=ip16("::1"), proto=58), id=0xBEEF, seqnum=42),
        "radius": model.RADIUSChecker(
            model.Target(ip=ip4("127.0.0.1"), port=1812, proto=17),
            username="probe",
            password=go_str(b"p\xe4ss"),
            secret="s3cret",
            response="accept",
        ),
        "tcp": model.TCPChecker(
            model.Target(
                ip=ip16("192.0.2.20"),
                host=ip16("2001:db8::20"),
                mark=100,
                mode=2,
                port=8443,
                proto=6,
            ),
            receive="+OK",
            send="PING\r\n",
            secure=True,
        ),
        "udp": model.UDPChecker(
            model.Target(ip=ip4("10.1.2.3"), port=5353, proto=17), receive="pong", send="ping"
        ),
    }


def golden_config(config_id: int, retries: int, checker: model.Checker) -> model.Config:
    return model.Config(config_id, 5 * SECOND, 1500 * model.MILLISECOND, retries, checker)


CHECKER_ORDER = ("dns", "http", "ping", "radius", "tcp", "udp")


def golden_cases() -> list[Case]:
    checkers = golden_checkers()
    cases = [
        one("bool_true", Bool(), True),
        one("bool_false", Bool(), False),
        one("int8", Int(8), -128),
        one("int16", Int(16), -12345),
        one("int32", Int(32), 2**31 - 1),
        one("int64_min", Int(64), -(2**63)),
        one("int64_max", Int(64), 2**63 - 1),
        one("int_neg", INT, -1),
        one("int_zero", INT, 0),
        one("uint8", Uint(8), 255),
        one("uint16", Uint(16), 65535),
        one("uint32", Uint(32), 2**32 - 1),
        one("uint64_max", Uint(64), 2**64 - 1),
        one("uint", Uint(), 1234567),
        one("float32", Float(32), -1.5),
        one("float32_tenth", Float(32), f32(0.1)),
        one("float64_pi", Float(), 3.141592653589793),
        one("float64_tiny_neg", Float(), -2.5e-300),
        one("float64_inf", Float(), float("inf")),
        one("float64_neg_inf", Float(), float("-inf")),
        one("float64_neg_zero", Float(), -0.0),
        one("complex64", Complex(64), complex(1.5, -2)),
        one("complex128", Complex(), complex(1e10, -0.25)),
        one("string_ascii", String(), "hello, gob"),
        one("string_utf8", String(), "h\u00e9llo w\u00f6rld \u2713"),
        one("string_non_utf8", String(), go_str(b"\xff\xfeab\x80")),
        one("string_empty", String(), ""),
        one("bytes", Bytes(), b"\x00\x01\x02\xff"),
        one("array_int", Array(INT, 3), [1, -2, 3]),
        one("array_string", Array(String(), 2), ["a", "bc"]),
        one("array_bytes", Array(Uint(8), 4), [9, 8, 7, 0]),
        one("slice_int", Slice(INT), [1, 2, -3, 1 << 40]),
        one("slice_string", Slice(String()), ["x", "", "z\u00ff"]),
        one("slice_struct", Slice(POINT), [Point(1, 2), Point(0, 0), Point(-3, 4)]),
        one("slice_ptr_struct", Slice(Ptr(POINT)), [Point(5, 6), Point(7, 8)]),
        one("slice_slice", Slice(Slice(INT)), [[1], [], [2, 3]]),
        one("map_int_string", Map(INT, String()), {7: "seven"}),
        unordered(
            "map_int_string_multi",
            Map(INT, String()),
            {1: "one", -2: "minus two", 300: "three hundred"},
        ),
        one("map_string_struct", Map(String(), POINT), {"origin": Point()}),
        unordered(
            "map_string_struct_multi",
            Map(String(), POINT),
            {"a": Point(1, 1), "b": Point(2, -2), "c": Point(0, 3)},
        ),
        unordered(
            "map_interface",
            Map(String(), ANY),
            {"n": 42, "s": "str", "b": b"raw", "c": Circle(2.0)},
        ),
        one("struct_point", POINT, Point(3, -4)),
        one("struct_all_zero", SPARSE, Sparse()),
        one("struct_sparse", SPARSE, Sparse(b="only b", h=9, i=[0, 5])),
        one(
            "struct_nested",
            OUTER,
            Outer("outer", Inner(1, "in"), Inner(b="ptr"), ["t1", "t2"], 0.5),
        ),
        one("struct_list", Ptr(NODE), Node(1, Node(2, Node(3)))),
        one("struct_tree", TREE, Tree("root", Tree("l", right=Tree("lr")), Tree("r"))),
        one("struct_embedded", DERIVED, Derived(Base(11, "base"), "more")),
        one("struct_pointers", PTRS, Ptrs(p=7, pp="two", ppp=Point(-1, 1))),
        one("ptr_int", Ptr(INT), 7),
        one(
            "interface_values",
            HOLDER,
            Holder(
                label="shapes",
                shape=Circle(1.5),
                many=[Square(3), None, Circle(0.0)],
                any=[-5, "text", ["a", "b"], GoUint8(200), 2.5, True],
            ),
        ),
        one("interface_nil_only", HOLDER, Holder(label="empty")),
        one("gob_encoder", CELSIUS, Celsius(-40)),
        one("binary_marshaler", VERSION, Version(1, 19)),
        one("text_marshaler", COLOR, Color(255, 128, 0)),
        one(
            "marshalers_in_struct",
            WEATHER,
            Weather(
                go_str("Z\u00fcrich".encode()),
                Celsius(21),
                Celsius(0),
                Version(2, 0),
                Version(),
                Color(0, 0, 1),
            ),
        ),
        one("time_utc", TIME, gotime(2024, 2, 29, 23, 59, 58, 123456789, None)),
        one("time_plus1", TIME, gotime(2024, 7, 1, 12, 0, 0, 5, 3600)),
        one("time_seconds_offset", TIME, gotime(1883, 11, 18, 12, 3, 58, 0, 19 * 60 + 32)),
        one("time_local_like", TIME, gotime(2025, 1, 2, 3, 4, 5, 6, 0)),
        one("time_before_1970", TIME, gotime(1969, 12, 31, 23, 59, 59, 999999999, None)),
        one("time_in_struct", EVENT, Event("deploy", gotime(2024, 1, 1, 0, 0, 0, 0, 3600))),
        one("time_zero_in_struct", EVENT, Event("never")),
        Case("stream_points", POINT, [Point(1, 2), Point(), Point(-5, 5)]),
        Case(
            "stream_mixed_after_types",
            POINT,
            [Point(9, 9), Point(8, 8), Point(7, 7), Point(6, 6)],
        ),
        one(
            "ipc_context",
            schema.CONTEXT,
            model.Context(
                auth_token="tok\u00e9n",
                auth_type=model.AuthType.SSO,
                groups=["admins", "ops"],
                peer=model.Peer(model.Component.LOCAL_CLI, "local-cli [pid 1]"),
                proxy=model.Peer(model.Component.NCC, "ncc [pid 2]"),
                user=model.User(["wheel"], "0", "root"),
            ),
        ),
        one("ipc_context_trusted", schema.CONTEXT_ARG, golden_context()),
        one("rpc_request", REQUEST_TYPE, Request("SeesawEngine.Healthchecks")),
        one("rpc_request_seq", REQUEST_TYPE, Request("SeesawEngine.HealthState", 12345)),
        # net/rpc's invalidRequest, the body of every error reply: an unnamed empty struct.
        one("rpc_empty_struct", EMPTY_STRUCT, {}),
        one(
            "rpc_response",
            RESPONSE_TYPE,
            Response("SeesawEngine.Healthchecks", 1, "permission denied"),
        ),
        one("checks_empty", schema.CHECKS, model.Checks({})),
        one("checks_nil", schema.CHECKS, model.Checks(None)),
        one(
            "checks_nil_checker",
            schema.CHECKS,
            model.Checks({9: model.Config(id=9, interval=SECOND)}),
        ),
        one(
            "health_state",
            schema.HEALTH_STATE,
            model.HealthState(
                golden_context(),
                [
                    model.Notification(
                        1,
                        model.Status(
                            gotime(2025, 1, 2, 3, 4, 5, 123456789, None),
                            1500 * model.MICROSECOND,
                            0,
                            10,
                            model.State.HEALTHY,
                            "TCP connect to 127.0.0.1:80",
                        ),
                    ),
                    model.Notification(
                        2,
                        model.Status(
                            gotime(2025, 1, 2, 4, 4, 5, 0, 3600),
                            10 * SECOND,
                            3,
                            0,
                            model.State.UNHEALTHY,
                            "TCP connect to 127.0.0.1:81; failed to connect",
                        ),
                    ),
                    model.Notification(BIG_ID, model.Status(gotime(2025, 1, 2, 3, 4, 5, 999, 0))),
                    # Never run yet: Seesaw re-notifies such checks with a zero time.
                    model.Notification(4),
                ],
            ),
        ),
        one("health_state_empty", schema.HEALTH_STATE, model.HealthState(golden_context(), [])),
    ]
    full: dict[int, model.Config] = {}
    for i, kind in enumerate(CHECKER_ORDER):
        config = golden_config(i + 1, i % 4, checkers[kind])
        full[i + 1] = config
        cases.append(one(f"checks_{kind}", schema.CHECKS, model.Checks({i + 1: config})))
    full[BIG_ID] = golden_config(
        BIG_ID, 0, model.TCPChecker(model.Target(ip=ip16("::1"), port=22, proto=6))
    )
    cases.append(unordered("checks_full", schema.CHECKS, model.Checks(full)))
    # Go splits this value's message where each checker type is first defined, so the
    # map's count arrives in a message much shorter than the map (tests/go/golden.go).
    cases.append(unordered("checks_recipe_300", schema.CHECKS, recipe_checks(300)))
    return cases


CASES = {case.name: case for case in golden_cases()}
BY_BYTES = sorted(name for name, case in CASES.items() if case.deterministic)


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden_dir(gopeer: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("golden")
    subprocess.run([str(gopeer), "golden", str(out)], check=True, timeout=120)
    return out


def golden_bytes(golden_dir: Path, name: str) -> bytes:
    return (golden_dir / f"{name}.gob").read_bytes()


def encode_case(case: Case) -> bytes:
    encoder = Encoder()
    return b"".join(encoder.encode(value, case.type) for value in case.values)


def decode_all(data: bytes, gob_type: Any) -> list[Any]:
    """Every value of a stream, decoded with ``gob_type`` (None: generically)."""
    decoder = Decoder()
    decoder.feed(data)
    values = []
    while (value := decoder.next(gob_type)) is not NEED_DATA:
        values.append(value)
    return values


# --- tests ----------------------------------------------------------------------------


def test_tables_match(golden_dir: Path) -> None:
    """The Python table has exactly Go's cases, with the same determinism."""
    go_names = (golden_dir / "cases.txt").read_text().split()
    assert sorted(go_names) == sorted(CASES)
    go_unordered = set((golden_dir / "nondeterministic.txt").read_text().split())
    assert go_unordered == {name for name, case in CASES.items() if not case.deterministic}


@pytest.mark.parametrize("name", sorted(CASES))
def test_decode_golden(golden_dir: Path, name: str) -> None:
    case = CASES[name]
    got = decode_all(golden_bytes(golden_dir, name), case.type)
    assert canon(got) == canon(case.values)


@pytest.mark.parametrize("name", BY_BYTES)
def test_encode_matches_go_bytes(golden_dir: Path, name: str) -> None:
    want = golden_bytes(golden_dir, name)
    got = encode_case(CASES[name])
    assert got.hex(" ") == want.hex(" ")


@pytest.mark.parametrize("name", sorted(CASES))
def test_decode_golden_generically(golden_dir: Path, name: str) -> None:
    values = decode_all(golden_bytes(golden_dir, name), None)
    assert len(values) == len(CASES[name].values)


def test_go_verifies_python_encodings(gopeer: Path, tmp_path: Path) -> None:
    for case in CASES.values():
        (tmp_path / f"{case.name}.gob").write_bytes(encode_case(case))
    proc = subprocess.run(
        [str(gopeer), "verify", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    failures = [line for line in proc.stdout.splitlines() if not line.startswith("ok ")]
    assert failures == [], proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr
    verified = {line.split()[1] for line in proc.stdout.splitlines()}
    assert verified == set(CASES)


def test_go_verify_catches_a_wrong_value(gopeer: Path, tmp_path: Path) -> None:
    """The Go side really compares: a value that differs from its table fails."""
    (tmp_path / "struct_point.gob").write_bytes(Encoder().encode(Point(3, 4), POINT))
    (tmp_path / "no_such_case.gob").write_bytes(Encoder().encode(1, INT))
    proc = subprocess.run(
        [str(gopeer), "verify", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "FAIL struct_point: " in proc.stdout
    assert "FAIL no_such_case: " in proc.stdout


def _decode_or_gob_error(data: bytes, gob_type: Any) -> None:
    """Decoding ``data`` may yield values, NEED_DATA or GobError, and nothing else."""
    decoder = Decoder()
    decoder.feed(data)
    try:
        for _ in range(64):  # bounded: no stream here holds more than a few values
            if decoder.next(gob_type) is NEED_DATA:
                return
    except GobError:
        return
    pytest.fail("decoder kept producing values from a short input")


@pytest.mark.parametrize("name", sorted(CASES))
def test_truncated_and_corrupt_golden_files(golden_dir: Path, name: str) -> None:
    """Every prefix of a golden file is NEED_DATA (or GobError), and random byte damage
    gives a value or a GobError: never another exception, never a hang."""
    case = CASES[name]
    data = golden_bytes(golden_dir, name)
    step = max(1, len(data) // 200)
    for cut in range(0, len(data), step):
        decoder = Decoder()
        decoder.feed(data[:cut])
        try:
            values = []
            while (value := decoder.next(case.type)) is not NEED_DATA:
                values.append(value)
        except GobError:
            continue
        assert len(values) < len(case.values), f"a {cut}-byte prefix decoded everything"
    rng = random.Random(name)
    for _ in range(40):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        _decode_or_gob_error(bytes(damaged), case.type)
        _decode_or_gob_error(bytes(damaged), None)
