"""A sans-IO codec for Go's encoding/gob wire format, byte-exact with Go 1.19.

Describe Go types with descriptors (``Struct``, ``Slice``, ``Map``, ``Interface`` ...),
then::

    enc = Encoder()                       # one per stream: remembers sent definitions
    sock.sendall(enc.encode(value, CHECKS))

    dec = Decoder()                       # one per stream
    dec.feed(chunk)                       # any chunking, even a byte at a time
    while (v := dec.next(CHECKS)) is not NEED_DATA:
        handle(v)
    dec.close()                           # at EOF: GobError if a message is unfinished

``dec.next()`` without a type decodes by the stream's own definitions (structs as dicts
of the fields that travelled, interfaces and GobEncoder values as ``UnknownValue``).
Every malformed input raises ``GobError``, with the stream offset where known.
"""

from .decoder import Decoder, ReuseMap, zero_value
from .encoder import Encoder, TypeIds
from .gotime import GoTime, GoTimeError
from .types import (
    NEED_DATA,
    TIME,
    Array,
    Bool,
    Bytes,
    Complex,
    Field,
    Float,
    GobEncoded,
    GobError,
    GobType,
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

__all__ = [
    "NEED_DATA",
    "TIME",
    "Array",
    "Bool",
    "Bytes",
    "Complex",
    "Decoder",
    "Encoder",
    "Field",
    "Float",
    "GoTime",
    "GoTimeError",
    "GobEncoded",
    "GobError",
    "GobType",
    "Int",
    "Interface",
    "Map",
    "Ptr",
    "Registry",
    "ReuseMap",
    "Slice",
    "String",
    "Struct",
    "TypeIds",
    "Uint",
    "UnknownValue",
    "zero_value",
]
