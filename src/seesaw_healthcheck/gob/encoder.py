"""Gob encoder: Python values + descriptors -> bytes Go's ``gob.Decoder`` reads.

Byte-exact with Go 1.19 where Go is deterministic (not map order): type ids are given
in the order Go builds types, definitions are sent in the order Go sends them, and a
value holding an interface whose concrete type is new on the stream is split into
messages exactly where Go splits it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, cast

from .types import (
    BASIC_IDS,
    Array,
    Bool,
    Bytes,
    Complex,
    Float,
    GobEncoded,
    GobError,
    GobType,
    Int,
    Interface,
    Map,
    Ptr,
    Slice,
    String,
    Struct,
    Uint,
)
from .wire import (
    ARRAY_T,
    BINARY_MARSHALER_T,
    GOB_ENCODER_T,
    MAP_T,
    SLICE_T,
    STRUCT_T,
    TEXT_MARSHALER_T,
    WireType,
    float_bits,
    put_int,
    put_uint,
)

# Go refuses to write a message of 1 GiB or more (tooBig on 64-bit).
MAX_MESSAGE = 1 << 30

Emit = Callable[["Encoder", bytearray, Any], None]
_F32 = struct.Struct("<f")

_ENCODER_KINDS = {"gob": GOB_ENCODER_T, "binary": BINARY_MARSHALER_T, "text": TEXT_MARSHALER_T}


def base_of(t: GobType) -> GobType:
    while isinstance(t, Ptr):
        t = t.elem
    return t


def _spelling(t: GobType) -> str:
    """Go's ``rt.String()`` for a base type, used to name unnamed field types."""
    if isinstance(t, (Slice, Map, Array)):
        return t.go_string
    return t.go_name


class TypeIds:
    """Go's process-wide table of built types and ids (first user id is 65).

    Each ``Encoder`` gets its own by default, which is what a fresh Go process sends;
    share one between encoders to mimic a long-lived Go process.
    """

    __slots__ = ("_built", "_next")

    def __init__(self) -> None:
        self._next = 64
        self._built: dict[GobType, WireType] = {}

    def _set_id(self, w: WireType) -> None:
        if w.id == 0:
            self._next += 1
            w.id = self._next

    def lookup(self, t: GobType) -> int:
        """The id of ``t``, building it (with its Go name) if this is its first use."""
        b = base_of(t)
        basic = BASIC_IDS.get(type(b))
        if basic is not None:
            return basic
        return self._get(b.go_name, b).id

    def wire(self, t: GobType) -> WireType:
        b = base_of(t)
        self._get(b.go_name, b)
        return self._built[b]

    def _ref(self, name: str, t: GobType) -> WireType | int:
        b = base_of(t)
        basic = BASIC_IDS.get(type(b))
        if basic is not None:
            return basic
        return self._get(name, b)

    def _get(self, name: str, b: GobType) -> WireType:
        # Mirrors Go's newTypeObject: which id a type gets depends on build order, and
        # its wire name on where it was first met (field, slice element, top level...).
        got = self._built.get(b)
        if got is not None:
            return got
        built = self._built
        if isinstance(b, GobEncoded):
            w = WireType(_ENCODER_KINDS[b.kind], name)
            self._set_id(w)
            built[b] = w
        elif isinstance(b, Struct):
            w = WireType(STRUCT_T, name)
            self._set_id(w)
            built[b] = w
            for f in b.fields:
                fb = base_of(f.type)
                ref = self._ref(fb.go_name or _spelling(fb), fb)
                if isinstance(ref, WireType):
                    self._set_id(ref)
                    ref_id = ref.id
                else:
                    ref_id = ref
                w.fields.append((f.name, ref_id))
        elif isinstance(b, Array):
            w = WireType(ARRAY_T, name, length=b.length)
            built[b] = w
            elem = self._ref("", b.elem)
            self._set_id(w)
            w.elem = elem if isinstance(elem, int) else elem.id
            if isinstance(elem, WireType) and elem.id == 0:
                w.elem = -1  # resolved below once the element has an id
                self._pending(w, elem, "elem")
        elif isinstance(b, Map):
            w = WireType(MAP_T, name)
            built[b] = w
            key = self._ref("", b.key)
            elem = self._ref("", b.elem)
            self._set_id(w)
            w.key = key if isinstance(key, int) else key.id
            w.elem = elem if isinstance(elem, int) else elem.id
            if isinstance(key, WireType) and key.id == 0:
                self._pending(w, key, "key")
            if isinstance(elem, WireType) and elem.id == 0:
                self._pending(w, elem, "elem")
        elif isinstance(b, Slice):
            w = WireType(SLICE_T, name)
            built[b] = w
            elem = self._ref(b.elem.go_name, b.elem)
            self._set_id(w)
            if isinstance(elem, WireType):
                self._set_id(elem)
                w.elem = elem.id
            else:
                w.elem = elem
        else:
            raise GobError(f"cannot describe {b!r} as a gob type")
        return w

    def _pending(self, w: WireType, ref: WireType, attr: str) -> None:
        # A recursive array/map whose element is still being built: Go gives the element
        # its id later; we only need the final number when the definition is written.
        self._set_id(ref)
        setattr(w, attr, ref.id)


class Encoder:
    """Encodes values onto one gob stream; remembers which type definitions it sent."""

    __slots__ = ("_sent", "_writers", "ids")

    def __init__(self, ids: TypeIds | None = None) -> None:
        self.ids = ids if ids is not None else TypeIds()
        self._sent: dict[GobType, int] = {}
        self._writers: list[bytearray] = []

    def encode(self, value: Any, type: GobType) -> bytes:
        """Type definitions not yet sent on this stream, then the value message."""
        out = bytearray()
        sent_before = dict(self._sent)
        self._writers = [out]
        try:
            b = base_of(type)
            if value is None and isinstance(type, Ptr):
                raise GobError(f"cannot encode nil pointer of type {type!r}")
            if isinstance(b, Interface):
                raise GobError("cannot encode an interface at top level; pass its concrete type")
            buf = bytearray()
            self._send_type_descriptor(out, buf, b)
            put_int(buf, self._sent[b])
            if isinstance(b, Struct):
                emit_for(b)(self, buf, value)
            else:
                buf.append(0)  # singleton: field delta 0
                emit_for(b)(self, buf, value)
            self._write_message(out, buf)
        except GobError:
            self._sent = sent_before
            raise
        except RecursionError:
            self._sent = sent_before
            raise GobError(f"cannot encode {type!r}: value nested too deeply") from None
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as e:
            self._sent = sent_before
            raise GobError(f"cannot encode {value!r:.200} as {type!r}: {e}") from e
        finally:
            self._writers = []
        return bytes(out)

    # -- type definitions (Go's sendTypeDescriptor / sendType / sendActualType) --

    @staticmethod
    def _write_message(w: bytearray, buf: bytearray) -> None:
        if len(buf) >= MAX_MESSAGE:
            raise GobError("gob: encoder: message too big")
        put_uint(w, len(buf))
        w += buf
        buf.clear()

    def _send_type_descriptor(self, w: bytearray, buf: bytearray, b: GobType) -> None:
        if b in self._sent:
            return
        if not self._send_type(w, buf, b):
            self._sent[b] = self.ids.lookup(b)

    def _send_type(self, w: bytearray, buf: bytearray, t: GobType) -> bool:
        b = base_of(t)
        if not isinstance(b, (Struct, Slice, Map, Array, GobEncoded)):
            return False  # basic types and interfaces are predefined
        if b in self._sent:
            return False
        wt = self.ids.wire(b)
        put_int(buf, -wt.id)
        buf += wt.encode()
        self._write_message(w, buf)
        self._sent[b] = wt.id
        if isinstance(b, Struct):
            for f in b.fields:
                self._send_type(w, buf, f.type)
        elif isinstance(b, (Slice, Array)):
            self._send_type(w, buf, b.elem)
        elif isinstance(b, Map):
            self._send_type(w, buf, b.key)
            self._send_type(w, buf, b.elem)
        return True

    def _emit_interface(self, buf: bytearray, value: Any, itype: Interface) -> None:
        if value is None:
            buf.append(0)
            return
        entry = itype.registry.by_cls.get(value.__class__)
        if entry is None:
            raise GobError(f"type not registered for interface: {value.__class__.__name__}")
        name, ctype = entry
        raw = name.encode("utf-8", "surrogateescape")
        put_uint(buf, len(raw))
        buf += raw
        b = base_of(ctype)
        # Definitions for a new concrete type go to the enclosing writer, flushing what
        # is in buf so far as a message: this is where Go splits the value.
        self._send_type_descriptor(self._writers[-1], buf, b)
        put_int(buf, self._sent[b])
        self._writers.append(buf)
        data = bytearray()
        try:
            if not isinstance(b, Struct):
                data.append(0)
            emit_for(b)(self, data, value)
        finally:
            self._writers.pop()
        put_uint(buf, len(data))
        buf += data


# -- value emitters, compiled once per descriptor --

_emitters: dict[GobType, Emit] = {}

# Field omission modes: Go skips zero values in struct fields.
_SKIP_FALSY, _SKIP_NONE, _SKIP_CUSTOM = 0, 1, 2


def emit_for(t: GobType) -> Emit:
    got = _emitters.get(t)
    if got is None:
        got = _compile(t)
    return got


def _compile(t: GobType) -> Emit:
    if isinstance(t, Ptr):
        inner_ptr = emit_for(base_of(t))

        def emit_ptr(enc: Encoder, buf: bytearray, v: Any) -> None:
            if v is None:
                raise GobError("cannot encode nil pointer here (nil element)")
            inner_ptr(enc, buf, v)

        _emitters[t] = emit_ptr
        return emit_ptr
    if isinstance(t, Bool):

        def emit_bool(enc: Encoder, buf: bytearray, v: Any) -> None:
            buf.append(1 if v else 0)

        fn: Emit = emit_bool
    elif isinstance(t, Int):
        lo, hi = -(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1

        def emit_int(enc: Encoder, buf: bytearray, v: Any) -> None:
            if not lo <= v <= hi:
                raise GobError(f"value {v} out of range for {t.go_name}")
            put_uint(buf, (v << 1) if v >= 0 else (((~v) << 1) | 1))

        fn = emit_int
    elif isinstance(t, Uint):
        uhi = (1 << t.bits) - 1

        def emit_uint(enc: Encoder, buf: bytearray, v: Any) -> None:
            if not 0 <= v <= uhi:
                raise GobError(f"value {v} out of range for {t.go_name}")
            if v < 128:
                buf.append(v)
            else:
                put_uint(buf, v)

        fn = emit_uint
    elif isinstance(t, Float):
        if t.bits == 32:

            def emit_f32(enc: Encoder, buf: bytearray, v: Any) -> None:
                put_uint(buf, float_bits(_F32.unpack(_F32.pack(v))[0]))

            fn = emit_f32
        else:

            def emit_f64(enc: Encoder, buf: bytearray, v: Any) -> None:
                put_uint(buf, float_bits(v))

            fn = emit_f64
    elif isinstance(t, Complex):
        if t.bits == 64:

            def emit_c64(enc: Encoder, buf: bytearray, v: Any) -> None:
                c = complex(v)
                put_uint(buf, float_bits(_F32.unpack(_F32.pack(c.real))[0]))
                put_uint(buf, float_bits(_F32.unpack(_F32.pack(c.imag))[0]))

            fn = emit_c64
        else:

            def emit_c128(enc: Encoder, buf: bytearray, v: Any) -> None:
                c = complex(v)
                put_uint(buf, float_bits(c.real))
                put_uint(buf, float_bits(c.imag))

            fn = emit_c128
    elif isinstance(t, String):

        def emit_string(enc: Encoder, buf: bytearray, v: Any) -> None:
            raw = v.encode("utf-8", "surrogateescape")
            put_uint(buf, len(raw))
            buf += raw

        fn = emit_string
    elif isinstance(t, Bytes):

        def emit_bytes(enc: Encoder, buf: bytearray, v: Any) -> None:
            if isinstance(v, str):
                raise GobError("[]byte value must be bytes, not str")
            put_uint(buf, len(v))
            buf += v

        fn = emit_bytes
    elif isinstance(t, GobEncoded):

        def emit_encoded(enc: Encoder, buf: bytearray, v: Any) -> None:
            raw = t.encode(v)
            put_uint(buf, len(raw))
            buf += raw

        fn = emit_encoded
    elif isinstance(t, Interface):

        def emit_iface(enc: Encoder, buf: bytearray, v: Any) -> None:
            enc._emit_interface(buf, v, t)

        fn = emit_iface
    elif isinstance(t, (Slice, Array)):
        fn = _compile_seq(t)
    elif isinstance(t, Map):
        fn = _compile_map(t)
    elif isinstance(t, Struct):
        fn = _compile_struct(t)
    else:
        raise GobError(f"not a gob type descriptor: {t!r}")
    _emitters[t] = fn
    return fn


def _lazy(t: GobType) -> Emit:
    """Emitter for a possibly recursive element: resolved on first use."""
    cell: list[Emit] = []

    def emit_lazy(enc: Encoder, buf: bytearray, v: Any) -> None:
        if not cell:
            cell.append(emit_for(t))
        cell[0](enc, buf, v)

    return emit_lazy


def _compile_seq(t: Slice | Array) -> Emit:
    elem = _lazy(t.elem)
    length = t.length if isinstance(t, Array) else -1

    def emit_seq(enc: Encoder, buf: bytearray, v: Any) -> None:
        if isinstance(v, (str, bytes, dict)):
            raise GobError(f"expected a list for {t!r}, got {v.__class__.__name__}")
        n = len(v)
        if length >= 0 and n != length:
            raise GobError(f"array of length {length} given {n} elements")
        put_uint(buf, n)
        for x in v:
            elem(enc, buf, x)

    return emit_seq


def _compile_map(t: Map) -> Emit:
    key, elem = _lazy(t.key), _lazy(t.elem)

    def emit_map(enc: Encoder, buf: bytearray, v: Any) -> None:
        put_uint(buf, len(v))
        for k, x in v.items():
            key(enc, buf, k)
            elem(enc, buf, x)

    return emit_map


def _skip_mode(t: GobType) -> int:
    b = base_of(t)
    if isinstance(b, (Struct, Array, Map)):
        # Go always sends a struct or array field, and a map unless it is nil.
        return _SKIP_NONE
    if isinstance(b, GobEncoded):
        # A non-nil pointer to a GobEncoder is sent even when it points at a zero value.
        return _SKIP_NONE if isinstance(t, Ptr) else _SKIP_CUSTOM
    return _SKIP_FALSY  # Python falsiness equals Go's zero for the rest


def _compile_struct(t: Struct) -> Emit:
    """A stub that generates the struct's emitter on first use (``t.fields`` may refer to
    types defined later, for recursive structs)."""
    cell: list[Emit] = []

    def emit_struct(enc: Encoder, buf: bytearray, v: Any) -> None:
        if not cell:
            cell.append(_generate_struct(t))
        cell[0](enc, buf, v)

    return emit_struct


# Struct emitters are generated as Python source: one straight-line block per field
# (fetch, zero test, delta, value), with ints and strings written inline. The source
# holds generated names only; field names and attributes are passed in as constants.
_CODE_CACHE: dict[str, Any] = {}


def _inline_emit(b: GobType, i: int, ns: dict[str, Any], pad: str) -> list[str]:
    if isinstance(b, Uint):
        ns[f"HI{i}"] = (1 << b.bits) - 1
        return [
            f"{pad}if x.__class__ is not int and not isinstance(x, int) or not 0 <= x <= HI{i}:",
            f"{pad}    RANGE(x, {i})",
            f"{pad}if x < 128:",
            f"{pad}    buf.append(x)",
            f"{pad}else:",
            f"{pad}    put_uint(buf, x)",
        ]
    if isinstance(b, Int):
        ns[f"LO{i}"], ns[f"HI{i}"] = -(1 << (b.bits - 1)), (1 << (b.bits - 1)) - 1
        return [
            f"{pad}if x.__class__ is not int and not isinstance(x, int) "
            f"or not LO{i} <= x <= HI{i}:",
            f"{pad}    RANGE(x, {i})",
            f"{pad}x = (x << 1) if x >= 0 else (((~x) << 1) | 1)",
            f"{pad}if x < 128:",
            f"{pad}    buf.append(x)",
            f"{pad}else:",
            f"{pad}    put_uint(buf, x)",
        ]
    if isinstance(b, String):
        return [
            f"{pad}x = x.encode('utf-8', 'surrogateescape')",
            f"{pad}n = len(x)",
            f"{pad}if n < 128:",
            f"{pad}    buf.append(n)",
            f"{pad}else:",
            f"{pad}    put_uint(buf, n)",
            f"{pad}buf += x",
        ]
    return [f"{pad}EMIT{i}(enc, buf, x)"]


def _generate_struct(t: Struct) -> Emit:
    by_dict = t.cls is None
    ns: dict[str, Any] = {"put_uint": put_uint, "GobError": GobError, "NAME": t.name}
    fields = t.fields

    def out_of_range(x: Any, i: int) -> None:
        f = fields[i]
        raise GobError(
            f"{t.name}.{f.name}: value {x!r:.80} out of range for {base_of(f.type).go_name}"
        )

    ns["RANGE"] = out_of_range
    lines = ["def emit(enc, buf, v):"]
    if by_dict:
        lines += [
            "    if not isinstance(v, dict):",
            "        raise GobError(NAME + ': expected a dict, got ' + v.__class__.__name__)",
            "    get = v.get",
        ]
    lines.append("    last = -1")
    for i, f in enumerate(fields):
        b = base_of(f.type)
        ns[f"K{i}"] = f.name if by_dict else f.key
        ns[f"EMIT{i}"] = _lazy(b)
        lines.append(f"    x = get(K{i})" if by_dict else f"    x = getattr(v, K{i})")
        mode = _skip_mode(f.type)
        if mode == _SKIP_FALSY:
            lines.append("    if x:")
        elif mode == _SKIP_NONE:
            lines.append("    if x is not None:")
        else:
            ns[f"ISZERO{i}"] = b.is_zero if isinstance(b, GobEncoded) else bool
            lines.append(f"    if x is not None and not ISZERO{i}(x):")
        if i < 127:
            lines.append(f"        buf.append({i} - last)")
        else:
            lines.append(f"        put_uint(buf, {i} - last)")
        lines.append(f"        last = {i}")
        lines += _inline_emit(b, i, ns, "        ")
    lines.append("    buf.append(0)")
    src = "\n".join(lines)
    code = _CODE_CACHE.get(src)
    if code is None:
        if len(_CODE_CACHE) >= 1024:
            _CODE_CACHE.clear()
        code = _CODE_CACHE[src] = compile(src, "<gob struct encoder>", "exec")
    exec(code, ns)
    return cast(Emit, ns["emit"])
