"""Property tests: generated schemas and values survive encode -> decode, typed and
generically, whole or fed in arbitrary chunks."""

from __future__ import annotations

import itertools
import math
import struct
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    GoTime,
    Int,
    Interface,
    Map,
    Ptr,
    Registry,
    Slice,
    String,
    Struct,
    Uint,
    UnknownValue,
)


@dataclass
class Pair:
    A: int = 0
    B: str = ""


PAIR = Struct("Pair", [Field("A", Int()), Field("B", String())], Pair)
REGISTRY = Registry().register("int", Int(), int).register("string", String(), str)
REGISTRY.register("*main.Pair", Ptr(PAIR), Pair)
IFACE = Interface(REGISTRY)

_names = itertools.count()


def f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def leaf_types() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.just(Bool()),
        st.sampled_from([Int(b) for b in (8, 16, 32, 64)]),
        st.sampled_from([Uint(b) for b in (8, 16, 32, 64)]),
        st.sampled_from([Float(32), Float(64)]),
        st.sampled_from([Complex(64), Complex(128)]),
        st.just(String()),
        st.just(Bytes()),
        st.just(TIME),
        st.just(IFACE),
        st.just(IFACE),
        st.just(Slice(IFACE)),
    )


KEY_TYPES = st.sampled_from([Int(), Uint(16), String(), Bool(), Int(8)])


def make_struct(fields: list[Any]) -> Struct:
    return Struct(f"S{next(_names)}", [Field(f"F{k}", t) for k, t in enumerate(fields)])


def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        children.filter(lambda c: c != Uint(8)).map(Slice),
        st.tuples(children, st.integers(0, 3)).map(lambda a: Array(a[0], a[1])),
        st.tuples(KEY_TYPES, children).map(lambda a: Map(a[0], a[1])),
        children.map(Ptr),
        st.lists(children, min_size=0, max_size=5).map(make_struct),
    )


TYPES = st.recursive(leaf_types(), extend, max_leaves=12)


def value_of(t: Any) -> st.SearchStrategy[Any]:
    if isinstance(t, Bool):
        return st.booleans()
    if isinstance(t, Int):
        return st.integers(-(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1)
    if isinstance(t, Uint):
        return st.integers(0, (1 << t.bits) - 1)
    if isinstance(t, Float):
        f = st.floats(allow_nan=False, width=t.bits)
        return f
    if isinstance(t, Complex):
        w = 32 if t.bits == 64 else 64
        part = st.floats(allow_nan=False, width=w)
        return st.builds(complex, part, part)
    if isinstance(t, String):
        return st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
    if isinstance(t, Bytes):
        return st.binary(max_size=8)
    if isinstance(t, GobEncoded):
        return st.builds(
            GoTime,
            st.integers(0, 2**40),
            st.integers(0, 999_999_999),
            st.one_of(st.none(), st.integers(-12, 14).map(lambda h: h * 3600)),
        )
    if isinstance(t, Interface):
        return st.one_of(
            st.integers(-5, 5),
            st.text(max_size=3),
            st.builds(Pair, st.integers(-3, 3), st.text(max_size=2)),
            st.none(),
        )
    if isinstance(t, Slice):
        return st.lists(value_of(t.elem), max_size=3)
    if isinstance(t, Array):
        return st.lists(value_of(t.elem), min_size=t.length, max_size=t.length)
    if isinstance(t, Map):
        return st.dictionaries(value_of(t.key), value_of(t.elem), max_size=3)
    if isinstance(t, Ptr):
        inner = value_of(t.elem)
        return st.one_of(st.none(), inner)
    if isinstance(t, Struct):
        return st.fixed_dictionaries({f.name: value_of(f.type) for f in t.fields})
    raise AssertionError(t)


def no_nil_in_slices(t: Any, v: Any) -> bool:
    """Go cannot send a nil pointer inside a slice, array or map, nor at top level."""
    if isinstance(t, Ptr):
        return v is not None and no_nil_in_slices(t.elem, v)
    return _ok(t, v)


def _ok(t: Any, v: Any) -> bool:
    if isinstance(t, Ptr):
        return v is None or _ok(t.elem, v)
    if isinstance(t, (Slice, Array)):
        return all(no_nil_in_slices(t.elem, x) for x in v)
    if isinstance(t, Map):
        return all(no_nil_in_slices(t.elem, x) for x in v.values())
    if isinstance(t, Struct):
        return all(_ok(f.type, v[f.name]) for f in t.fields)
    return True


def base(t: Any) -> Any:
    while isinstance(t, Ptr):
        t = t.elem
    return t


def is_zero_sent_skipped(t: Any, v: Any) -> bool:
    """Whether a struct field holding v is left out of the stream (Go's rules)."""
    if v is None:
        return True
    b = base(t)
    if isinstance(b, (Struct, Array, Map)):
        return False
    if isinstance(b, GobEncoded):
        return not isinstance(t, Ptr) and b.is_zero(v)
    return not v


def expected(t: Any, v: Any) -> Any:
    """What the typed decoder returns for v (float32 rounding, omitted fields zeroed)."""
    if isinstance(t, Ptr):
        return expected(t.elem, v)
    if isinstance(t, Float) and t.bits == 32:
        return f32(v)
    if isinstance(t, Complex) and t.bits == 64:
        return complex(f32(v.real), f32(v.imag))
    if isinstance(t, (Slice, Array)):
        return [expected(t.elem, x) for x in v]
    if isinstance(t, Map):
        return {expected(t.key, k): expected(t.elem, x) for k, x in v.items()}
    if isinstance(t, Struct):
        out = {}
        for f in t.fields:
            x = v[f.name]
            if is_zero_sent_skipped(f.type, x):
                out[f.name] = zero(f.type)
            else:
                out[f.name] = expected(f.type, x)
        return out
    return v


def zero(t: Any) -> Any:
    if isinstance(t, (Ptr, Interface)):
        return None
    z = {Bool: False, Int: 0, Uint: 0, Float: 0.0, Complex: 0j, String: "", Bytes: b""}
    if type(t) in z:
        return z[type(t)]
    if isinstance(t, Slice):
        return []
    if isinstance(t, Map):
        return {}
    if isinstance(t, Array):
        return [zero(t.elem) for _ in range(t.length)]
    if isinstance(t, Struct):
        return {f.name: zero(f.type) for f in t.fields}
    if isinstance(t, GobEncoded):
        return GoTime()
    raise AssertionError(t)


def generic(t: Any, v: Any) -> Any:
    """What the generic decoder returns: only sent fields, interfaces and encoders wrapped."""
    if isinstance(t, Ptr):
        return generic(t.elem, v)
    if isinstance(t, Float) and t.bits == 32:
        return f32(v)
    if isinstance(t, Complex) and t.bits == 64:
        return complex(f32(v.real), f32(v.imag))
    if isinstance(t, (Slice, Array)):
        return [generic(t.elem, x) for x in v]
    if isinstance(t, Map):
        return {generic(t.key, k): generic(t.elem, x) for k, x in v.items()}
    if isinstance(t, Struct):
        return {
            f.name: generic(f.type, v[f.name])
            for f in t.fields
            if not is_zero_sent_skipped(f.type, v[f.name])
        }
    if isinstance(t, GobEncoded):
        return ("encoded", t.encode(v))
    if isinstance(t, Interface):
        if v is None:
            return None
        name, ctype = REGISTRY.by_cls[type(v)]
        return UnknownValue(
            name,
            generic(ctype, v)
            if not isinstance(v, Pair)
            else {k: x for k, x in (("A", v.A), ("B", v.B)) if x},
        )
    return v


def canon(v: Any) -> Any:
    """Comparable form: float bits, GobEncoded names dropped (they depend on context)."""
    if isinstance(v, UnknownValue) and v.encoded:
        return ("encoded", bytes(v.data))
    if isinstance(v, UnknownValue):
        return ("iface", v.name, canon(v.data))
    if isinstance(v, float):
        return ("f", struct.pack("<d", v)) if not math.isnan(v) else "nan"
    if isinstance(v, complex):
        return ("c", canon(v.real), canon(v.imag))
    if isinstance(v, list):
        return [canon(x) for x in v]
    if isinstance(v, tuple):
        return tuple(canon(x) for x in v)
    if isinstance(v, dict):
        return sorted(((canon(k), canon(x)) for k, x in v.items()), key=repr)
    return v


# Mostly structs at top level: that is what crosses Seesaw's socket.
TOP_TYPES = st.one_of(
    st.lists(TYPES, min_size=0, max_size=5)
    .flatmap(lambda fs: st.permutations([*fs, IFACE]))
    .map(make_struct),
    TYPES,
)
CASES = TOP_TYPES.flatmap(
    lambda t: st.tuples(st.just(t), st.lists(value_of(t), min_size=1, max_size=3))
)
SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def decode(data: bytes, t: Any, chunks: list[int] | None = None) -> list[Any]:
    dec = Decoder()
    out = []
    if chunks is None:
        dec.feed(data)
    else:
        pos = 0
        for size in itertools.cycle(chunks):
            if pos >= len(data):
                break
            dec.feed(data[pos : pos + size])
            pos += size
            while (v := dec.next(t)) is not NEED_DATA:
                out.append(v)
    while (v := dec.next(t)) is not NEED_DATA:
        out.append(v)
    dec.close()
    return out


@SETTINGS
@given(CASES)
def test_round_trip_typed_and_generic(case: tuple[Any, list[Any]]) -> None:
    t, values = case
    values = [v for v in values if no_nil_in_slices(t, v)]
    if isinstance(base(t), Interface):
        return  # Go has no top-level interface values
    enc = Encoder()
    data = b"".join(enc.encode(v, t) for v in values)
    assert canon(decode(data, t)) == canon([expected(t, v) for v in values])
    assert canon(decode(data, None)) == canon([generic(t, v) for v in values])


@SETTINGS
@given(CASES, st.lists(st.integers(1, 7), min_size=1, max_size=5))
def test_chunked_feeding_gives_the_same_values(
    case: tuple[Any, list[Any]], chunks: list[int]
) -> None:
    t, values = case
    values = [v for v in values if no_nil_in_slices(t, v)]
    if isinstance(base(t), Interface) or not values:
        return
    enc = Encoder()
    data = b"".join(enc.encode(v, t) for v in values)
    assert canon(decode(data, t, chunks)) == canon(decode(data, t))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64 - 1), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False))
def test_scalars_round_trip(u: int, i: int, f: float) -> None:
    enc = Encoder()
    data = enc.encode(u, Uint()) + enc.encode(i, Int()) + enc.encode(f, Float())
    got = decode(data, None)
    assert got[:2] == [u, i] and canon(got[2]) == canon(f)
