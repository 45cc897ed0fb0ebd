"""Gob's primitive encodings and the type-definition records (Go's ``wireType``)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

_F64 = struct.Struct("<d")


def put_uint(buf: bytearray, x: int) -> None:
    """Unsigned int: < 128 in one byte, else the negated byte count then big-endian bytes."""
    if x < 128:
        buf.append(x)
    else:
        n = (x.bit_length() + 7) >> 3
        buf.append(256 - n)
        buf += x.to_bytes(n, "big")


def put_int(buf: bytearray, v: int) -> None:
    """Signed int: shifted left one bit; bit 0 set means the value was complemented."""
    put_uint(buf, (v << 1) if v >= 0 else (((~v) << 1) | 1))


def float_bits(v: float) -> int:
    """IEEE bits, byte-reversed so small exponents/whole numbers take few bytes."""
    return int.from_bytes(_F64.pack(v), "big")


def bits_float(x: int) -> float:
    return float(_F64.unpack(x.to_bytes(8, "big"))[0])


def put_string(buf: bytearray, s: bytes) -> None:
    put_uint(buf, len(s))
    buf += s


# wireType field numbers (Go's type.go; the order is part of the wire format).
ARRAY_T, SLICE_T, STRUCT_T, MAP_T, GOB_ENCODER_T, BINARY_MARSHALER_T, TEXT_MARSHALER_T = range(7)
KIND_NAMES = ("array", "slice", "struct", "map", "gob", "binary", "text")


@dataclass(slots=True)
class WireType:
    """One received (or sent) type definition."""

    kind: int  # one of ARRAY_T ... TEXT_MARSHALER_T
    name: str
    id: int = 0
    elem: int = 0  # array, slice, map
    key: int = 0  # map
    length: int = 0  # array
    fields: list[tuple[str, int]] = field(default_factory=list)  # struct

    def encode(self) -> bytes:
        """The wireType struct as Go's encoder writes it (zero fields omitted)."""
        out = bytearray()
        put_uint(out, self.kind + 1)  # field delta from -1
        # CommonType{Name, Id} is the first field of every inner type.
        out.append(1)
        if self.name:
            out.append(1)
            put_string(out, self.name.encode("utf-8", "surrogateescape"))
            delta = 1
        else:
            delta = 2
        if self.id:
            out.append(delta)
            put_int(out, self.id)
        out.append(0)
        k = self.kind
        if k == ARRAY_T:
            last = 0
            if self.elem:
                out.append(1)
                put_int(out, self.elem)
                last = 1
            if self.length:
                out.append(2 - last)
                put_int(out, self.length)
        elif k == SLICE_T:
            if self.elem:
                out.append(1)
                put_int(out, self.elem)
        elif k == STRUCT_T:
            if self.fields:
                out.append(1)
                put_uint(out, len(self.fields))
                for name, fid in self.fields:
                    d = 1
                    if name:
                        out.append(1)
                        put_string(out, name.encode("utf-8", "surrogateescape"))
                    else:
                        d = 2
                    if fid:
                        out.append(d)
                        put_int(out, fid)
                    out.append(0)
        elif k == MAP_T:
            last = 0
            if self.key:
                out.append(1)
                put_int(out, self.key)
                last = 1
            if self.elem:
                out.append(2 - last)
                put_int(out, self.elem)
        out.append(0)  # end of the inner type
        out.append(0)  # end of wireType
        return bytes(out)
