"""Sans-IO gob decoder: feed bytes, take values out.

Decoding plans are compiled once per (wire type id, descriptor) and cached, so the hot
loop is a chain of closures over bytes with integer positions. Type definitions are
consumed as they come. A value that holds interfaces may span several messages (Go
flushes type definitions for a new concrete type mid-value); ``next()`` only returns a
value once all of its messages are in, and otherwise rolls back and asks for more.
"""

from __future__ import annotations

import dataclasses
import keyword
import struct
from collections.abc import Callable
from typing import Any, cast

from .types import (
    BASIC_IDS,
    BOOL_ID,
    BYTES_ID,
    COMPLEX_ID,
    FLOAT_ID,
    INT_ID,
    INTERFACE_ID,
    NEED_DATA,
    STRING_ID,
    UINT_ID,
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
    UnknownValue,
)
from .wire import (
    ARRAY_T,
    BINARY_MARSHALER_T,
    GOB_ENCODER_T,
    KIND_NAMES,
    MAP_T,
    SLICE_T,
    STRUCT_T,
    TEXT_MARSHALER_T,
    WireType,
    bits_float,
)

Op = Callable[[bytes, int], tuple[Any, int]]

DEFAULT_MAX_MESSAGE = 64 << 20
MAX_TYPE_DEPTH = 100  # nesting of type definitions / recursive values we follow
MAX_GENERATED_FIELDS = 64  # larger structs decode through a table, not generated code
MAX_TYPES = 100_000  # type definitions one stream may make
MAX_NAME = 1024  # Go's limit on an interface's concrete type name
FIRST_DEFINABLE_ID = 64  # Go refuses definitions below firstUserId

_F32 = struct.Struct("<f")
_MAX_F32 = 3.4028234663852886e38

_BASIC_NAMES = {
    BOOL_ID: "bool",
    INT_ID: "int",
    UINT_ID: "uint",
    FLOAT_ID: "float",
    BYTES_ID: "[]byte",
    STRING_ID: "string",
    COMPLEX_ID: "complex",
    INTERFACE_ID: "interface",
}
_GENERIC_BASICS: dict[int, GobType | None] = {
    BOOL_ID: Bool(),
    INT_ID: Int(),
    UINT_ID: Uint(),
    FLOAT_ID: Float(),
    BYTES_ID: Bytes(),
    STRING_ID: String(),
    COMPLEX_ID: Complex(),
    INTERFACE_ID: None,
}
_ENCODED_KIND = {"gob": GOB_ENCODER_T, "binary": BINARY_MARSHALER_T, "text": TEXT_MARSHALER_T}


class _Corrupt(Exception):
    """Internal: bad data at a position in the current snapshot."""

    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.pos = pos


class _Incomplete(Exception):
    """Internal: a value continues in a message that has not fully arrived."""

    def __init__(self, need: int) -> None:
        super().__init__(need)
        self.need = need  # bytes needed from the value's start


def _uint_slow(data: bytes, pos: int) -> tuple[int, int]:
    n = 256 - data[pos]
    if n > 8:
        raise _Corrupt(f"invalid uint: {n}-byte count", pos)
    e = pos + 1 + n
    if e > len(data):
        raise IndexError
    return int.from_bytes(data[pos + 1 : e], "big"), e


def read_uint(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    if b < 128:
        return b, pos + 1
    return _uint_slow(data, pos)


def read_int(data: bytes, pos: int) -> tuple[int, int]:
    b = data[pos]
    if b < 128:
        x = b
        pos += 1
    else:
        x, pos = _uint_slow(data, pos)
    return (~(x >> 1) if x & 1 else x >> 1), pos


def _to_f32(f: float, pos: int) -> float:
    if _MAX_F32 < abs(f) < float("inf"):
        raise _Corrupt(f"value out of range: {f} does not fit float32", pos)
    return float(_F32.unpack(_F32.pack(f))[0])


def _zero_factory(t: GobType) -> tuple[bool, Any]:
    """(is_mutable, value-or-factory) for a descriptor's Go zero value."""
    if isinstance(t, Ptr | Interface):
        return False, None
    if isinstance(t, Bool):
        return False, False
    if isinstance(t, Int | Uint):
        return False, 0
    if isinstance(t, Float):
        return False, 0.0
    if isinstance(t, Complex):
        return False, 0j
    if isinstance(t, String):
        return False, ""
    if isinstance(t, Bytes):
        return False, b""
    if isinstance(t, Slice):
        return True, list
    if isinstance(t, Map):
        return True, dict
    if isinstance(t, Array):
        mut, z = _zero_factory(t.elem)
        n = t.length
        if mut:
            return True, lambda: [z() for _ in range(n)]
        return True, lambda: [z] * n
    if isinstance(t, Struct):
        return True, lambda: zero_value(t)
    if isinstance(t, GobEncoded):
        cls = t.cls

        def make_zero() -> Any:
            try:
                return cls()
            except Exception:
                return None

        return True, make_zero
    raise GobError(f"not a gob type descriptor: {t!r}")


def zero_value(t: GobType) -> Any:
    """Go's zero value of ``t`` as a Python value (fresh containers every call)."""
    if isinstance(t, Struct):
        kw = {}
        for f in t.fields:
            mut, z = _zero_factory(f.type)
            kw[f.key if t.cls is not None else f.name] = z() if mut else z
        return t.cls(**kw) if t.cls is not None else kw
    mut, z = _zero_factory(t)
    return z() if mut else z


class ReuseMap:
    """Carried from one stream's decoder to the next (``Decoder(reuse=...)``): the bytes
    and decoded value of every entry of the last uint-keyed map decoded, so an entry whose
    bytes are unchanged in the next stream keeps its very object instead of being decoded
    again. For a reply that sends the same 100,000 configs every fetch, that is a byte
    comparison each instead of a decode and seven new objects.

    Sound because a gob value is prefix-free (its bytes end where its decoding ends), as
    long as the bytes mean the same: entries are taken over only while the streams define
    the same types under the same ids (``fingerprint``).

    This class keeps the entries in a dict; a subclass may keep them elsewhere (the
    caller's own table) by overriding ``begin``, ``previous``, ``decoded`` and ``finish``.
    """

    __slots__ = ("_next", "entries", "fingerprint", "reused")

    def __init__(self) -> None:
        self.fingerprint: object = None
        self.entries: dict[int, tuple[bytes, Any]] = {}
        self._next: dict[int, tuple[bytes, Any]] = {}
        self.reused = 0  # entries the last map took over unchanged

    def begin(self) -> None:
        """A map starts."""
        self._next = {}

    def previous(self, key: int) -> tuple[bytes, Any] | None:
        """The bytes and value of ``key`` in the last map, if kept."""
        return self.entries.get(key)

    def decoded(self, key: int, raw: bytes, value: Any) -> None:
        """``key`` was decoded from ``raw`` (bytes that define no type)."""
        self._next[key] = (raw, value)

    def finish(self, taken: list[int]) -> None:
        """The map is done; the entries of ``taken`` were taken over from the last one."""
        entries = self.entries
        for key in taken:
            self._next[key] = entries[key]
        self.entries, self._next = self._next, {}


class Decoder:
    """Decodes one gob stream. ``feed(bytes)`` then ``next(type)`` until ``NEED_DATA``."""

    def __init__(
        self, max_message: int = DEFAULT_MAX_MESSAGE, reuse: ReuseMap | None = None
    ) -> None:
        if max_message <= 0:
            raise ValueError("max_message must be positive")
        self.max_message = max_message
        self._reuse = reuse
        self._buf = bytearray()
        self._off = 0  # start of unconsumed bytes in _buf
        self._abs = 0  # stream offset of _buf[0]
        self._snap: bytes | None = None  # bytes(_buf[_snap_base:]) while _buf is unchanged
        self._snap_base = 0
        self._need = 1  # unconsumed bytes needed before trying again
        self._end = 0  # end of the current message, in snapshot positions
        self._wire: dict[int, WireType] = {}
        self._added: list[int] = []
        self._ops: dict[tuple[int, Any], Op] = {}
        self._error: GobError | None = None
        self._depth = 0
        self._compile_depth = 0
        self._iface_plans: list[dict[bytes, tuple[int, Op, bool, str | None, bool]]] = []
        self._split_memo: dict[int, bool] = {}
        self._value_start = 0  # snapshot position where the current value's frames begin
        self._avail = 0  # snapshot length

    # -- input --

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            self._buf += data
            self._snap = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet consumed by a whole value or type definition."""
        return len(self._buf) - self._off

    @property
    def offset(self) -> int:
        """Stream offset of the first unconsumed byte."""
        return self._abs + self._off

    def close(self) -> None:
        """Declare end of stream: raises ``GobError`` if a partial message is pending."""
        if self._error is not None:
            raise self._error
        if self.buffered:
            raise GobError(
                f"gob: unexpected end of stream: {self.buffered} bytes of an incomplete message "
                f"at offset {self.offset}"
            )

    def _compact(self) -> None:
        if self._off > 65536 and self._off * 2 > len(self._buf):
            del self._buf[: self._off]
            self._abs += self._off
            self._off = 0
            self._snap = None

    def _snapshot(self) -> bytes:
        if self._snap is None:
            self._snap = bytes(self._buf[self._off :])
            self._snap_base = self._off
        return self._snap

    # -- output --

    def next(self, type: GobType | None = None) -> Any:
        """The next top-level value (decoded into ``type``, or generically), or NEED_DATA."""
        if self._error is not None:
            raise self._error
        try:
            return self._next(type)
        except GobError as e:
            self._error = e
            raise

    def _next(self, type: GobType | None) -> Any:
        while True:
            avail = len(self._buf) - self._off
            if avail < self._need:
                return NEED_DATA
            n, hl = self._peek_frame()
            if n < 0:
                self._need = avail + 1
                return NEED_DATA
            if avail < hl + n:
                self._need = hl + n
                return NEED_DATA
            self._need = 1
            data = self._snapshot()
            base = self._off - self._snap_base
            start = base + hl
            self._end = start + n
            self._value_start = base
            self._avail = len(data)
            self._added = []
            self._depth = 0
            try:
                tid, pos = read_int(data, start)
                if tid < 0:
                    pos = self._recv_type(-tid, data, pos)
                    if pos != self._end:
                        raise _Corrupt("extra data after type definition", pos)
                    self._off = self._snap_base + self._end
                    self._compact()
                    continue
                value, pos = self._decode_value(tid, type, data, pos)
                if pos > self._end:
                    raise _Corrupt("value overruns its message", self._end)
            except _Incomplete as inc:
                if self._added:
                    dropped = set(self._added)
                    for tid in dropped:
                        del self._wire[tid]
                    # Compiled plans may refer to the dropped definitions: forget them all
                    # (the same bytes will define the same types again).
                    self._ops = {k: op for k, op in self._ops.items() if k[0] not in dropped}
                    for plans in self._iface_plans:
                        plans.clear()
                    self._split_memo.clear()
                self._need = inc.need - base
                if self._need > self.max_message:
                    raise GobError(
                        f"gob: value at offset {self.offset} spans more than the limit of "
                        f"{self.max_message} bytes"
                    ) from None
                return NEED_DATA
            except _Corrupt as c:
                raise GobError(
                    f"gob: {c.msg} at offset {self._abs + self._snap_base + c.pos}"
                ) from None
            except IndexError:
                raise GobError(
                    "gob: truncated or corrupt value: data ends early in message at offset "
                    f"{self._abs + self._off}"
                ) from None
            except RecursionError:
                raise GobError(
                    f"gob: value nested too deeply in message at offset {self._abs + self._off}"
                ) from None
            except (TypeError, ValueError, OverflowError, KeyError, AttributeError) as e:
                # Last resort (e.g. a schema class refusing its fields): still a GobError.
                raise GobError(
                    f"gob: cannot decode message at offset {self._abs + self._off}: "
                    f"{e.__class__.__name__}: {e}"
                ) from e
            # Go discards whatever follows the value in its message.
            self._off = self._snap_base + self._end
            self._compact()
            return value

    def _peek_frame(self) -> tuple[int, int]:
        """(length, header size) of the message at _off; (-1, 0) if the header is partial."""
        buf, off = self._buf, self._off
        b = buf[off]
        if b < 128:
            n, hl = b, 1
        else:
            cnt = 256 - b
            if cnt > 8:
                raise GobError(f"gob: invalid message length header at offset {self.offset}")
            if len(buf) - off < 1 + cnt:
                return -1, 0
            n, hl = int.from_bytes(buf[off + 1 : off + 1 + cnt], "big"), 1 + cnt
        if n > self.max_message:
            raise GobError(
                f"gob: message length {n} at offset {self.offset} exceeds the limit of "
                f"{self.max_message} bytes"
            )
        if n == 0:
            raise GobError(f"gob: empty message at offset {self.offset}")
        return n, hl

    def _next_frame(self, data: bytes, pos: int) -> int:
        """Move into the message starting at pos (inside a value); returns its start."""
        if pos >= len(data):
            raise _Incomplete(pos + 1)
        b = data[pos]
        if b < 128:
            n, hl = b, 1
        else:
            cnt = 256 - b
            if cnt > 8:
                raise _Corrupt("invalid message length header", pos)
            if len(data) < pos + 1 + cnt:
                raise _Incomplete(pos + 1 + cnt)
            n, hl = int.from_bytes(data[pos + 1 : pos + 1 + cnt], "big"), 1 + cnt
        if n > self.max_message:
            raise _Corrupt(f"message length {n} exceeds the limit of {self.max_message}", pos)
        if n == 0:
            raise _Corrupt("empty message", pos)
        if len(data) < pos + hl + n:
            raise _Incomplete(pos + hl + n)
        self._end = pos + hl + n
        return pos + hl

    # -- type definitions --

    def _recv_type(self, tid: int, data: bytes, pos: int) -> int:
        if tid < FIRST_DEFINABLE_ID or tid in self._wire:
            raise _Corrupt(f"duplicate or reserved type id {tid} defined", pos)
        if len(self._wire) >= MAX_TYPES:
            raise _Corrupt(f"more than {MAX_TYPES} type definitions in one stream", pos)
        wt, pos = self._parse_wire_type(tid, data, pos)
        self._wire[tid] = wt
        self._added.append(tid)
        return pos

    def _parse_wire_type(self, tid: int, data: bytes, pos: int) -> tuple[WireType, int]:
        start = pos
        delta, pos = read_uint(data, pos)
        kind = delta - 1
        if not 0 <= kind <= TEXT_MARSHALER_T:
            raise _Corrupt(f"bad type definition for id {tid}: unknown kind field {delta}", start)
        wt = WireType(kind, "", tid)
        field = -1
        while True:  # the inner type's fields
            delta, pos = read_uint(data, pos)
            if delta == 0:
                break
            field += delta
            if field == 0:  # CommonType{Name, Id}
                pos = self._parse_common(wt, data, pos)
            elif kind == STRUCT_T and field == 1:
                count, pos = read_uint(data, pos)
                if count > self._end - pos:
                    raise _Corrupt(f"type {tid}: {count} fields exceed the message", pos)
                for _ in range(count):
                    pos = self._parse_field(wt, data, pos)
            elif kind in (ARRAY_T, SLICE_T, MAP_T) and field <= (2 if kind != SLICE_T else 1):
                v, pos = read_int(data, pos)
                if kind == ARRAY_T:
                    if field == 1:
                        wt.elem = v
                    else:
                        if v < 0:
                            raise _Corrupt(f"type {tid}: negative array length {v}", pos)
                        wt.length = v
                elif kind == MAP_T:
                    if field == 1:
                        wt.key = v
                    else:
                        wt.elem = v
                else:
                    wt.elem = v
            else:
                raise _Corrupt(f"bad type definition for id {tid}: unexpected field {field}", pos)
        end_delta, pos = read_uint(data, pos)
        if end_delta != 0:
            raise _Corrupt(f"bad type definition for id {tid}: more than one kind", pos)
        if pos > self._end:
            raise _Corrupt(f"type definition {tid} overruns its message", self._end)
        return wt, pos

    def _parse_common(self, wt: WireType, data: bytes, pos: int) -> int:
        field = -1
        while True:
            delta, pos = read_uint(data, pos)
            if delta == 0:
                return pos
            field += delta
            if field == 0:
                wt.name, pos = self._read_str(data, pos)
            elif field == 1:
                _, pos = read_int(data, pos)  # Go ignores the id inside the definition
            else:
                raise _Corrupt(f"bad type definition: CommonType field {field}", pos)

    def _parse_field(self, wt: WireType, data: bytes, pos: int) -> int:
        name, fid, field = "", 0, -1
        while True:
            delta, pos = read_uint(data, pos)
            if delta == 0:
                break
            field += delta
            if field == 0:
                name, pos = self._read_str(data, pos)
            elif field == 1:
                fid, pos = read_int(data, pos)
            else:
                raise _Corrupt(f"bad struct field definition: field {field}", pos)
        wt.fields.append((name, fid))
        return pos

    def _read_str(self, data: bytes, pos: int) -> tuple[str, int]:
        n, pos = read_uint(data, pos)
        if n > self._end - pos:
            raise _Corrupt(f"string length {n} exceeds the message", pos)
        return data[pos : pos + n].decode("utf-8", "surrogateescape"), pos + n

    # -- values --

    def _type_name(self, tid: int) -> str:
        if tid in _BASIC_NAMES:
            return _BASIC_NAMES[tid]
        wt = self._wire.get(tid)
        if wt is None:
            return f"unknown type id {tid}"
        return f"{KIND_NAMES[wt.kind]} {wt.name or '(unnamed)'} (id {tid})"

    def _decode_value(self, tid: int, t: GobType | None, data: bytes, pos: int) -> tuple[Any, int]:
        """A value as sent at top level or inside an interface: a struct, or a singleton."""
        b = _base(t) if t is not None else None
        wt = self._wire.get(tid)
        if tid not in _BASIC_NAMES and wt is None:
            raise _Corrupt(f"value of undefined type id {tid}", pos)
        op = self._op(tid, b, pos)
        if isinstance(b, Struct) or (b is None and wt is not None and wt.kind == STRUCT_T):
            if isinstance(b, Struct):
                self._check_fields_match(wt, b, pos)
            return op(data, pos)
        delta, pos = read_uint(data, pos)
        if delta != 0:
            raise _Corrupt("corrupted data: non-zero delta for singleton", pos)
        return op(data, pos)

    @staticmethod
    def _check_fields_match(wt: WireType | None, t: Struct, pos: int) -> None:
        if wt is not None and wt.fields and t.fields:
            names = {f.name for f in t.fields}
            if not any(name in names for name, _ in wt.fields):
                raise _Corrupt(
                    f"type mismatch: no fields matched compiling decoder for {t.name}", pos
                )

    def _op(self, tid: int, t: GobType | None, pos: int) -> Op:
        key = (tid, t)
        op = self._ops.get(key)
        if op is not None:
            return op
        if self._compile_depth > MAX_TYPE_DEPTH:
            raise _Corrupt(f"types nested more than {MAX_TYPE_DEPTH} deep", pos)
        # Placeholder first, so recursive types compile to a loop of closures; the
        # placeholder also bounds how deep a recursive value may nest.
        cell: list[Op] = []

        def recursive(data: bytes, p: int) -> tuple[Any, int]:
            self._depth += 1
            if self._depth > MAX_TYPE_DEPTH:
                raise _Corrupt(f"value nested more than {MAX_TYPE_DEPTH} deep", p)
            try:
                return cell[0](data, p)
            finally:
                self._depth -= 1

        self._ops[key] = recursive
        self._compile_depth += 1
        try:
            compiled = self._compile(tid, t, pos)
        except BaseException:
            del self._ops[key]
            raise
        finally:
            self._compile_depth -= 1
        cell.append(compiled)
        self._ops[key] = compiled
        return compiled

    def _mismatch(self, tid: int, t: GobType, pos: int) -> _Corrupt:
        return _Corrupt(f"type mismatch: cannot decode {self._type_name(tid)} into {t!r}", pos)

    def _compile(self, tid: int, t: GobType | None, pos: int) -> Op:
        if t is not None:
            t = _base(t)
        wt = self._wire.get(tid)
        if wt is None and tid not in _BASIC_NAMES:
            raise _Corrupt(f"reference to undefined type id {tid}", pos)
        if t is None:
            return self._compile_generic(tid, wt, pos)
        if isinstance(t, GobEncoded):
            if wt is None or wt.kind != _ENCODED_KIND[t.kind]:
                raise self._mismatch(tid, t, pos)
            return self._encoded_op(t)
        if wt is not None and wt.kind in (GOB_ENCODER_T, BINARY_MARSHALER_T, TEXT_MARSHALER_T):
            raise self._mismatch(tid, t, pos)
        want = BASIC_IDS.get(type(t))
        if want is not None:
            if tid != want:
                raise self._mismatch(tid, t, pos)
            return self._basic_op(t)
        if wt is None:
            raise self._mismatch(tid, t, pos)
        if isinstance(t, Struct):
            if wt.kind != STRUCT_T:
                raise _Corrupt(
                    f"type mismatch: want struct type {t.name}; got {self._type_name(tid)}", pos
                )
            return self._struct_op(wt, t, pos)
        if isinstance(t, Slice):
            if wt.kind != SLICE_T:
                raise self._mismatch(tid, t, pos)
            return self._seq_op(self._op(wt.elem, t.elem, pos), -1, wt.elem)
        if isinstance(t, Array):
            if wt.kind != ARRAY_T or wt.length != t.length:
                raise self._mismatch(tid, t, pos)
            return self._seq_op(self._op(wt.elem, t.elem, pos), t.length, wt.elem)
        if isinstance(t, Map):
            if wt.kind != MAP_T:
                raise self._mismatch(tid, t, pos)
            return self._map_op(self._op(wt.key, t.key, pos), self._op(wt.elem, t.elem, pos), tid)
        raise self._mismatch(tid, t, pos)

    def _compile_generic(self, tid: int, wt: WireType | None, pos: int) -> Op:
        if wt is None:
            return self._basic_op(_GENERIC_BASICS[tid])
        k = wt.kind
        if k == STRUCT_T:
            return self._struct_op(wt, None, pos)
        if k == SLICE_T:
            return self._seq_op(self._op(wt.elem, None, pos), -1, wt.elem)
        if k == ARRAY_T:
            return self._seq_op(self._op(wt.elem, None, pos), wt.length, wt.elem)
        if k == MAP_T:
            return self._map_op(self._op(wt.key, None, pos), self._op(wt.elem, None, pos), tid)
        return self._encoded_op(None, wt.name)

    def _basic_op(self, t: GobType | None) -> Op:
        if t is None or isinstance(t, Interface):
            return self._interface_op(t)
        if isinstance(t, Bool):

            def op_bool(data: bytes, pos: int) -> tuple[Any, int]:
                v, pos = read_uint(data, pos)
                return v != 0, pos  # Go: any non-zero value is true

            return op_bool
        if isinstance(t, Int):
            if t.bits == 64:

                def op_int(data: bytes, pos: int) -> tuple[Any, int]:
                    b = data[pos]
                    if b < 128:
                        x = b
                        pos += 1
                    else:
                        x, pos = _uint_slow(data, pos)
                    return (~(x >> 1) if x & 1 else x >> 1), pos

                return op_int
            lo, hi = -(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1

            def op_int_n(data: bytes, pos: int) -> tuple[Any, int]:
                x, p = read_uint(data, pos)
                v = ~(x >> 1) if x & 1 else x >> 1
                if not lo <= v <= hi:
                    raise _Corrupt(f"value out of range: {v} does not fit int{t.bits}", pos)
                return v, p

            return op_int_n
        if isinstance(t, Uint):
            if t.bits == 64:
                return read_uint
            hi = (1 << t.bits) - 1

            def op_uint_n(data: bytes, pos: int) -> tuple[Any, int]:
                v, p = read_uint(data, pos)
                if v > hi:
                    raise _Corrupt(f"value out of range: {v} does not fit uint{t.bits}", pos)
                return v, p

            return op_uint_n
        if isinstance(t, Float):
            f32 = t.bits == 32

            def op_float(data: bytes, pos: int) -> tuple[Any, int]:
                x, p = read_uint(data, pos)
                f = bits_float(x)
                return (_to_f32(f, pos) if f32 else f), p

            return op_float
        if isinstance(t, Complex):
            c64 = t.bits == 64

            def op_complex(data: bytes, pos: int) -> tuple[Any, int]:
                x, p = read_uint(data, pos)
                y, p = read_uint(data, p)
                re, im = bits_float(x), bits_float(y)
                if c64:
                    re, im = _to_f32(re, pos), _to_f32(im, pos)
                return complex(re, im), p

            return op_complex
        if isinstance(t, String):

            def op_string(data: bytes, pos: int) -> tuple[Any, int]:
                b = data[pos]
                if b < 128:
                    n = b
                    pos += 1
                else:
                    n, pos = _uint_slow(data, pos)
                e = pos + n
                if e > self._end:
                    raise _Corrupt(f"string length {n} exceeds the message", pos)
                return data[pos:e].decode("utf-8", "surrogateescape"), e

            return op_string
        if isinstance(t, Bytes):

            def op_bytes(data: bytes, pos: int) -> tuple[Any, int]:
                n, pos = read_uint(data, pos)
                e = pos + n
                if e > self._end:
                    raise _Corrupt(f"byte slice length {n} exceeds the message", pos)
                return data[pos:e], e

            return op_bytes
        raise GobError(f"not a basic type: {t!r}")

    def _encoded_op(self, t: GobEncoded | None, wire_name: str = "") -> Op:
        def op_encoded(data: bytes, pos: int) -> tuple[Any, int]:
            n, p = read_uint(data, pos)
            e = p + n
            if e > self._end:
                raise _Corrupt(f"encoded value length {n} exceeds the message", pos)
            raw = data[p:e]
            if t is None:
                return UnknownValue(wire_name, raw, True), e
            try:
                return t.decode(raw), e
            except Exception as exc:
                raise _Corrupt(f"cannot decode {t.name}: {exc}", pos) from None

        return op_encoded

    def _may_split(self, tid: int) -> bool:
        """Whether a value of wire type ``tid`` can hold an interface, and so continue
        in later messages (Go flushes new type definitions mid-value)."""
        memo = self._split_memo.get(tid)
        if memo is not None:
            return memo
        seen: set[int] = set()
        todo = [tid]
        while todo:
            t = todo.pop()
            if t == INTERFACE_ID or self._split_memo.get(t):
                self._split_memo[tid] = True
                return True
            if t in seen or self._split_memo.get(t) is False:
                continue
            seen.add(t)
            wt = self._wire.get(t)
            if wt is None:
                continue
            todo.extend(fid for _, fid in wt.fields)
            todo.extend((wt.elem, wt.key))
        for t in seen:  # nothing reachable from here can hold an interface
            self._split_memo[t] = False
        return False

    def _check_count(self, n: int, per_item: int, pos: int, may_split: bool) -> None:
        """A count that does not fit the current message is corrupt unless the value can
        continue in messages still to come; nothing is ever allocated from it."""
        if not may_split:
            raise _Corrupt(f"count {n} exceeds the message", pos)
        need = pos + n * per_item
        if need - self._value_start > self.max_message:
            raise _Corrupt(f"count {n} exceeds the message size limit", pos)
        if need > self._avail:
            raise _Incomplete(need)

    def _seq_op(self, elem: Op, length: int, elem_id: int) -> Op:
        may_split = self._may_split(elem_id)

        def op_seq(data: bytes, pos: int) -> tuple[Any, int]:
            b = data[pos]
            if b < 128:
                n = b
                pos += 1
            else:
                n, pos = _uint_slow(data, pos)
            if n > self._end - pos:
                self._check_count(n, 1, pos, may_split)
            if length >= 0 and n != length:
                raise _Corrupt(f"array length {n} does not match declared {length}", pos)
            out: list[Any] = []
            append = out.append
            for _ in range(n):
                v, pos = elem(data, pos)
                append(v)
            return out, pos

        return op_seq

    def _map_op(self, key: Op, elem: Op, tid: int) -> Op:
        may_split = self._may_split(tid)

        if key is read_uint:  # uint keys (Seesaw's Id): read inline

            def op_map_uint(data: bytes, pos: int) -> tuple[Any, int]:
                n, pos = read_uint(data, pos)
                if 2 * n > self._end - pos:
                    self._check_count(n, 2, pos, may_split)
                reuse = self._reuse
                if reuse is not None:
                    return self._map_uint_reusing(reuse, elem, n, data, pos)
                out = {}
                size = len(data)
                for _ in range(n):
                    b = data[pos]
                    if b < 128:
                        k = b
                        pos += 1
                    else:
                        e = pos + 257 - b
                        if b < 248 or e > size:
                            k, pos = _uint_slow(data, pos)
                        else:
                            k = int.from_bytes(data[pos + 1 : e], "big")
                            pos = e
                    out[k], pos = elem(data, pos)
                return out, pos

            return op_map_uint

        def op_map(data: bytes, pos: int) -> tuple[Any, int]:
            n, pos = read_uint(data, pos)
            if 2 * n > self._end - pos:
                self._check_count(n, 2, pos, may_split)
            out = {}
            for _ in range(n):
                kp = pos
                k, pos = key(data, pos)
                v, pos = elem(data, pos)
                try:
                    out[k] = v
                except TypeError:
                    raise _Corrupt("map key is not hashable in Python", kp) from None
            return out, pos

        return op_map

    def _map_uint_reusing(
        self, reuse: ReuseMap, elem: Op, n: int, data: bytes, pos: int
    ) -> tuple[Any, int]:
        """``op_map_uint``'s loop, taking unchanged entries over from ``reuse``.

        An entry whose bytes define a type (Go writes an interface's concrete type inline,
        in the first value that needs it) is never kept: skipping it would skip the
        definition. And if the stream's types turn out to differ from the last stream's,
        the entries taken over are decoded after all.
        """
        out = {}
        taken: list[int] = []
        where: list[int] = []  # their positions
        wire = self._wire
        previous = reuse.previous
        reuse.begin()
        for _ in range(n):
            k, pos = read_uint(data, pos)
            known = previous(k)
            if known is not None and data.startswith(known[0], pos):
                taken.append(k)
                where.append(pos)
                out[k] = known[1]
                pos += len(known[0])
                continue
            start, types = pos, len(wire)
            out[k], pos = elem(data, pos)
            if len(wire) == types:
                reuse.decoded(k, data[start:pos], out[k])
        fingerprint = tuple(
            (tid, wt.kind, wt.name, tuple(wt.fields), wt.key, wt.elem, wt.length)
            for tid, wt in sorted(wire.items())
        )
        if taken and fingerprint != reuse.fingerprint:
            for k, start in zip(taken, where, strict=True):  # other types: decode after all
                out[k], end = elem(data, start)
                reuse.decoded(k, data[start:end], out[k])
            taken = []
        reuse.fingerprint = fingerprint
        reuse.reused = len(taken)
        reuse.finish(taken)
        return out, pos

    def _interface_op(self, t: Interface | None) -> Op:
        registry = t.registry if t is not None else None
        # name bytes -> (concrete type id, op, is singleton, name to wrap unknown values)
        plans: dict[bytes, tuple[int, Op, bool, str | None, bool]] = {}
        self._iface_plans.append(plans)

        def plan(raw: bytes, cid: int, pos: int) -> tuple[int, Op, bool, str | None, bool]:
            name = raw.decode("utf-8", "surrogateescape")
            entry = registry.by_name.get(name) if registry is not None else None
            if entry is None and registry is not None and not registry.lenient:
                raise _Corrupt(f"name not registered for interface: {name!r}", pos)
            ctype = entry[0] if entry is not None else None
            wt = self._wire.get(cid)
            if cid not in _BASIC_NAMES and wt is None:
                raise _Corrupt(f"interface value of undefined type id {cid}", pos)
            op = self._op(cid, ctype, pos)
            b = _base(ctype) if ctype is not None else None
            if isinstance(b, Struct) or (b is None and wt is not None and wt.kind == STRUCT_T):
                if isinstance(b, Struct):
                    self._check_fields_match(wt, b, pos)
                single = False
            else:
                single = True
            wrap = None if entry is not None else name
            return cid, op, single, wrap, self._may_split(cid)

        def op_iface(data: bytes, pos: int) -> tuple[Any, int]:
            start = pos
            n = data[pos]
            if n == 0:
                return None, pos + 1
            if n < 128:
                pos += 1
            else:
                n, pos = _uint_slow(data, pos)
            if n > MAX_NAME or pos + n > self._end:
                raise _Corrupt(f"invalid interface type name length {n}", start)
            raw = data[pos : pos + n]
            pos += n
            b = data[pos]
            if b == 0xFF and pos + 1 < self._end and not data[pos + 1] & 1:
                cid = data[pos + 1] >> 1  # ids 64-127: the usual user types
                pos += 2
            elif pos < self._end and not b & 0x81:  # ids 0-63
                cid = b >> 1
                pos += 1
            else:
                cid, pos = self._type_sequence(data, pos)
            b = data[pos]  # byte count of the value; not needed
            if b < 128:
                pos += 1
            else:
                _, pos = _uint_slow(data, pos)
            got = plans.get(raw)
            if got is None or got[0] != cid:
                got = plans[raw] = plan(raw, cid, pos)
            _, op, single, wrap, nests = got
            if single:
                if data[pos] != 0:
                    raise _Corrupt("corrupted data: non-zero delta for singleton", pos)
                pos += 1
            if nests:  # only values that can hold interfaces can nest without bound
                self._depth += 1
                if self._depth > MAX_TYPE_DEPTH:
                    raise _Corrupt(f"interfaces nested more than {MAX_TYPE_DEPTH} deep", pos)
                v, pos = op(data, pos)
                self._depth -= 1
            else:
                v, pos = op(data, pos)
            if wrap is not None:
                return UnknownValue(wrap, v), pos
            return v, pos

        return op_iface

    def _type_sequence(self, data: bytes, pos: int) -> tuple[int, int]:
        """Type definitions that may precede an interface's concrete type id (Go's
        decodeTypeSequence): they may continue into following messages."""
        while True:
            if pos == self._end:
                pos = self._next_frame(data, pos)
            elif pos > self._end:
                raise _Corrupt("value overruns its message", self._end)
            tid, pos = read_int(data, pos)
            if tid >= 0:
                return tid, pos
            pos = self._recv_type(-tid, data, pos)
            if pos < self._end:
                _, pos = read_uint(data, pos)  # count of the value that follows

    def _struct_op_plain(self, wt: WireType, t: Struct | None, pos: int) -> Op:
        """A table-driven struct decoder (for structs too large to generate code for)."""
        nwire = len(wt.fields)
        plan: list[tuple[Op, str | None]] = []
        zeros: dict[str, Any] = {}
        mutables: list[tuple[str, Callable[[], Any]]] = []
        make = t.cls if t is not None else None
        sname = wt.name
        if t is not None:
            by_name = {f.name: f for f in t.fields}
            for fname, fid in wt.fields:
                f = by_name.get(fname)
                if f is None or not fname[:1].isupper():
                    plan.append((self._op(fid, None, pos), None))
                else:
                    plan.append((self._op(fid, f.type, pos), f.key if make else f.name))
            for f in t.fields:
                mut, z = _zero_factory(f.type)
                k = f.key if make else f.name
                if mut:
                    mutables.append((k, z))
                else:
                    zeros[k] = z
        else:
            for fname, fid in wt.fields:
                if not fname:
                    raise _Corrupt(f"empty name for remote field of type {sname}", pos)
                plan.append((self._op(fid, None, pos), fname))

        def op_struct(data: bytes, pos: int) -> tuple[Any, int]:
            kw = zeros.copy()
            fieldnum = -1
            while True:
                d, pos = read_uint(data, pos)
                if d == 0:
                    break
                fieldnum += d
                if fieldnum >= nwire:
                    raise _Corrupt(f"field number {fieldnum} out of range for struct {sname}", pos)
                op, k = plan[fieldnum]
                v, pos = op(data, pos)
                if k is not None:
                    kw[k] = v
            for k, z in mutables:
                if k not in kw:
                    kw[k] = z()
            return (make(**kw) if make is not None else kw), pos

        return op_struct

    def _struct_op(self, wt: WireType, t: Struct | None, pos: int) -> Op:
        """A struct decoder generated as Python source for this (wire type, schema) pair.

        The loop over field deltas dispatches on the field number and reads ints,
        strings and bytes inline; other fields call their compiled ops. Only generated
        names appear in the source: every name from the stream or the schema is passed
        in as a constant.
        """
        if len(wt.fields) > MAX_GENERATED_FIELDS or (
            t is not None and len(t.fields) > MAX_GENERATED_FIELDS
        ):
            return self._struct_op_plain(wt, t, pos)  # bounded compile cost for huge structs
        ns: dict[str, Any] = {
            "_uint_slow": _uint_slow,
            "_Corrupt": _Corrupt,
            "dec": self,
            "_MISSING": _MISSING,
        }
        sname = wt.name
        ns["OUT_OF_RANGE"] = f"field number out of range for struct {sname or '(unnamed)'}: "
        head: list[str] = []
        branches: list[str] = []
        tail: list[str] = []
        make = t.cls if t is not None else None
        slot_of: dict[str, int] = {}
        if t is not None:
            for j, f in enumerate(t.fields):
                slot_of[f.name] = j
                mut, z = _zero_factory(f.type)
                if mut:
                    ns[f"F{j}"] = z
                    head.append(f"    s{j} = _MISSING")
                    tail.append(f"    if s{j} is _MISSING:\n        s{j} = F{j}()")
                else:
                    ns[f"Z{j}"] = z
                    head.append(f"    s{j} = Z{j}")
        else:
            head.append("    kw = {}")
        for i, (fname, fid) in enumerate(wt.fields):
            if t is None:
                if not fname:
                    raise _Corrupt(f"empty name for remote field of type {sname}", pos)
                ftype: GobType | None = None
                store = f"kw[K{i}] = v"
                ns[f"K{i}"] = fname
            elif fname in slot_of and fname[:1].isupper():
                ftype = t.fields[slot_of[fname]].type
                store = f"s{slot_of[fname]} = v"
            else:
                ftype, store = None, ""
            ns[f"OP{i}"] = self._op(fid, ftype, pos)  # also checks compatibility
            body = _inline_read(fid, _base(ftype) if ftype is not None else None, i, ns)
            kw_ = "if" if i == 0 else "elif"
            branches.append(f"        {kw_} fieldnum == {i}:\n{body}")
            if store:
                branches.append(f"            {store}")
        if not branches:
            branches.append("        if False:\n            pass")
        if t is None:
            result = "kw"
        elif make is None:
            ns.update({f"K{j}": f.name for j, f in enumerate(t.fields)})
            result = "{" + ", ".join(f"K{j}: s{j}" for j in range(len(t.fields))) + "}"
        else:
            ns["MAKE"] = make
            keys = [f.key for f in t.fields]
            order = _positional_order(make, keys)
            if order is not None:  # a dataclass taking exactly these fields: positional
                slot_by_key = {k: j for j, k in enumerate(keys)}
                result = "MAKE(" + ", ".join(f"s{slot_by_key[k]}" for k in order) + ")"
            elif all(k.isidentifier() and not keyword.iskeyword(k) for k in keys):
                result = "MAKE(" + ", ".join(f"{k}=s{j}" for j, k in enumerate(keys)) + ")"
            else:
                ns.update({f"K{j}": k for j, k in enumerate(keys)})
                result = "MAKE(**{" + ", ".join(f"K{j}: s{j}" for j in range(len(keys))) + "})"
        src = "\n".join(
            [
                "def op_struct(data, pos):",
                *head,
                "    fieldnum = -1",
                "    while True:",
                "        b = data[pos]",
                "        if b < 128:",
                "            pos += 1",
                "            if b == 0:",
                "                break",
                "            fieldnum += b",
                "        else:",
                "            d, pos = _uint_slow(data, pos)",
                "            fieldnum += d",
                *branches,
                "        else:",
                "            raise _Corrupt(OUT_OF_RANGE + str(fieldnum), pos)",
                *tail,
                f"    return {result}, pos",
            ]
        )
        code = _CODE_CACHE.get(src)
        if code is None:
            if len(_CODE_CACHE) >= 1024:
                _CODE_CACHE.clear()
            code = _CODE_CACHE[src] = compile(src, "<gob struct decoder>", "exec")
        exec(code, ns)
        return cast(Op, ns["op_struct"])


def _positional_order(cls: Any, keys: list[str]) -> list[str] | None:
    """The dataclass's __init__ parameter order, if it takes exactly ``keys``."""
    if not dataclasses.is_dataclass(cls) or not isinstance(cls, type):
        return None
    init_fields = [f for f in dataclasses.fields(cls) if f.init]
    params = [f.name for f in init_fields]
    if sorted(params) != sorted(keys) or any(f.kw_only for f in init_fields):
        return None
    return params


_MISSING = object()
# Generated source -> code object: every stream (each RPC call) has its own decoder, and
# compiling is the slow part; the source holds generated names only.
_CODE_CACHE: dict[str, Any] = {}
_INLINE_GENERIC: dict[int, GobType] = {
    UINT_ID: Uint(),
    INT_ID: Int(),
    STRING_ID: String(),
    BYTES_ID: Bytes(),
}

_READ_UINT = """\
            b = data[pos]
            if b < 128:
                v = b
                pos += 1
            else:
                e = pos + 257 - b
                if b < 248 or e > len(data):
                    v, pos = _uint_slow(data, pos)
                else:
                    v = int.from_bytes(data[pos + 1 : e], "big")
                    pos = e
"""


def _inline_read(tid: int, t: GobType | None, i: int, ns: dict[str, Any]) -> str:
    """Source that reads field i into ``v`` (inline for the common basic types)."""
    if t is None:
        t = _INLINE_GENERIC.get(tid)
    if isinstance(t, Uint) and tid == UINT_ID:
        if t.bits == 64:
            return _READ_UINT
        ns[f"HI{i}"] = (1 << t.bits) - 1
        ns[f"RANGE{i}"] = f"value out of range for uint{t.bits}: "
        return _READ_UINT + (
            f"            if v > HI{i}:\n                raise _Corrupt(RANGE{i} + str(v), pos)\n"
        )
    if isinstance(t, Int) and tid == INT_ID:
        code = _READ_UINT + "            v = ~(v >> 1) if v & 1 else v >> 1\n"
        if t.bits == 64:
            return code
        ns[f"LO{i}"], ns[f"HI{i}"] = -(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1
        ns[f"RANGE{i}"] = f"value out of range for int{t.bits}: "
        return code + (
            f"            if not LO{i} <= v <= HI{i}:\n"
            f"                raise _Corrupt(RANGE{i} + str(v), pos)\n"
        )
    if (isinstance(t, String) and tid == STRING_ID) or (isinstance(t, Bytes) and tid == BYTES_ID):
        conv = ".decode('utf-8', 'surrogateescape')" if isinstance(t, String) else ""
        return (
            _READ_UINT
            + "            e = pos + v\n"
            + "            if e > dec._end:\n"
            + "                raise _Corrupt('string or bytes length exceeds the message', pos)\n"
            + f"            v = data[pos:e]{conv}\n"
            + "            pos = e\n"
        )
    return f"            v, pos = OP{i}(data, pos)\n"


def _base(t: GobType) -> GobType:
    while isinstance(t, Ptr):
        t = t.elem
    return t
