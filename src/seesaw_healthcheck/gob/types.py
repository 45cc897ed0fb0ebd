"""Type descriptors: how a Python value maps onto a Go type on the gob wire.

A descriptor names the Go type (for byte-exact type definitions) and says how Python
values look (plain ints/strs/lists/dicts, or dataclass instances for structs).
Containers compare structurally, so two ``Slice(String())`` are the same Go type;
``Struct``, ``Interface`` and ``GobEncoded`` compare by identity, as Go named types do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from .gotime import GoTime


class GobError(Exception):
    """Malformed, truncated, hostile or unencodable gob data (the message says what)."""


class _NeedData:
    """Sentinel type of ``NEED_DATA``."""

    _instance: _NeedData | None = None

    def __new__(cls) -> _NeedData:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NEED_DATA"

    def __bool__(self) -> bool:
        return False


NEED_DATA = _NeedData()

# Predefined gob type ids (Go's type.go).
BOOL_ID, INT_ID, UINT_ID, FLOAT_ID, BYTES_ID, STRING_ID, COMPLEX_ID, INTERFACE_ID = range(1, 9)
WIRETYPE_ID = 16
FIRST_USER_ID = 65


@dataclass(frozen=True, slots=True)
class Bool:
    go_name = "bool"


@dataclass(frozen=True, slots=True)
class Int:
    bits: int = 64

    def __post_init__(self) -> None:
        if self.bits not in (8, 16, 32, 64):
            raise ValueError(f"Int bits must be 8, 16, 32 or 64, not {self.bits}")

    @property
    def go_name(self) -> str:
        return "int" if self.bits == 64 else f"int{self.bits}"


@dataclass(frozen=True, slots=True)
class Uint:
    bits: int = 64

    def __post_init__(self) -> None:
        if self.bits not in (8, 16, 32, 64):
            raise ValueError(f"Uint bits must be 8, 16, 32 or 64, not {self.bits}")

    @property
    def go_name(self) -> str:
        return "uint" if self.bits == 64 else f"uint{self.bits}"


@dataclass(frozen=True, slots=True)
class Float:
    bits: int = 64

    def __post_init__(self) -> None:
        if self.bits not in (32, 64):
            raise ValueError(f"Float bits must be 32 or 64, not {self.bits}")

    @property
    def go_name(self) -> str:
        return f"float{self.bits}"


@dataclass(frozen=True, slots=True)
class Complex:
    bits: int = 128

    def __post_init__(self) -> None:
        if self.bits not in (64, 128):
            raise ValueError(f"Complex bits must be 64 or 128, not {self.bits}")

    @property
    def go_name(self) -> str:
        return f"complex{self.bits}"


@dataclass(frozen=True, slots=True)
class String:
    go_name = "string"


@dataclass(frozen=True, slots=True)
class Bytes:
    go_name = "[]uint8"


def _spell(t: GobType) -> str:
    """Go's ``reflect.Type.String()`` spelling of a descriptor (best effort)."""
    if isinstance(t, Ptr):
        return "*" + _spell(t.elem)
    if isinstance(t, (Slice, Map, Array)):
        return t.go_string
    if isinstance(t, Interface):
        return t.go_name
    return t.go_name


@dataclass(frozen=True, slots=True)
class Array:
    """Go ``[length]elem``. ``name`` spells the Go type; ``named`` marks a declared type."""

    elem: GobType
    length: int
    name: str | None = None
    named: bool = False

    def __post_init__(self) -> None:
        if self.length < 0:
            raise ValueError("Array length must be >= 0")

    @property
    def go_string(self) -> str:
        return self.name if self.name is not None else f"[{self.length}]{_spell(self.elem)}"

    @property
    def go_name(self) -> str:
        return self.go_string if self.named else ""


@dataclass(frozen=True, slots=True)
class Slice:
    """Go ``[]elem``. ``name`` spells the Go type; ``named`` marks a declared type."""

    elem: GobType
    name: str | None = None
    named: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.elem, Uint) and self.elem.bits == 8:
            # Go's []uint8 is []byte, which gob sends as a basic type.
            raise ValueError("Slice(Uint(8)) is Go's []byte: use Bytes()")

    @property
    def go_string(self) -> str:
        return self.name if self.name is not None else f"[]{_spell(self.elem)}"

    @property
    def go_name(self) -> str:
        return self.go_string if self.named else ""


@dataclass(frozen=True, slots=True)
class Map:
    """Go ``map[key]elem``. ``name`` spells the Go type; ``named`` marks a declared type."""

    key: GobType
    elem: GobType
    name: str | None = None
    named: bool = False

    @property
    def go_string(self) -> str:
        if self.name is not None:
            return self.name
        return f"map[{_spell(self.key)}]{_spell(self.elem)}"

    @property
    def go_name(self) -> str:
        return self.go_string if self.named else ""


@dataclass(frozen=True, slots=True)
class Ptr:
    """Go pointer: ``None`` is nil; gob flattens pointers, so only the pointee travels."""

    elem: GobType

    @property
    def go_name(self) -> str:
        return ""  # pointer types are unnamed in Go


@dataclass(frozen=True, slots=True)
class Field:
    """A struct field: Go name, type, and the Python attribute (default: the Go name)."""

    name: str
    type: GobType
    attr: str | None = None

    @property
    def key(self) -> str:
        return self.attr if self.attr is not None else self.name


class Struct:
    """Go struct named ``name`` (Go's ``Type.Name()``, e.g. ``"Config"``).

    ``fields`` may be a zero-argument callable returning the fields, for recursive types.
    With ``cls=None`` values are dicts keyed by Go field name; otherwise instances built
    as ``cls(**{attr: value})`` for every field (missing fields zero-filled).
    """

    __slots__ = ("_fields", "_fields_src", "cls", "name")

    def __init__(
        self,
        name: str,
        fields: Sequence[Field] | Callable[[], Iterable[Field]],
        cls: Callable[..., Any] | None = None,
    ) -> None:
        self.name = name
        self.cls = cls
        self._fields_src = fields
        self._fields: tuple[Field, ...] | None = None

    @property
    def fields(self) -> tuple[Field, ...]:
        if self._fields is None:
            src = self._fields_src
            got = tuple(src() if callable(src) else src)
            for f in got:
                if not isinstance(f, Field):
                    raise TypeError(f"Struct {self.name}: {f!r} is not a Field")
            names = [f.name for f in got]
            if len(set(names)) != len(names):
                raise TypeError(f"Struct {self.name}: duplicate field names")
            self._fields = got
        return self._fields

    @property
    def go_name(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Struct({self.name!r})"


class Registry:
    """Concrete types that may travel inside interfaces, by their ``gob.Register`` name.

    A lenient registry decodes an unknown name to ``UnknownValue`` instead of raising.
    """

    __slots__ = ("by_cls", "by_name", "lenient")

    def __init__(self, lenient: bool = False) -> None:
        self.lenient = lenient
        self.by_name: dict[str, tuple[GobType, type]] = {}
        self.by_cls: dict[type, tuple[str, GobType]] = {}

    def register(self, name: str, type: GobType, cls: type | None = None) -> Registry:
        if not name:
            raise ValueError("interface names must not be empty (empty means nil)")
        if cls is None:
            cls = _default_cls(type)
        if name in self.by_name and self.by_name[name] != (type, cls):
            raise ValueError(f"name {name!r} registered twice")
        self.by_name[name] = (type, cls)
        self.by_cls[cls] = (name, type)
        return self


def _default_cls(t: GobType) -> type:
    base = t
    while isinstance(base, Ptr):
        base = base.elem
    if isinstance(base, Struct) and isinstance(base.cls, type):
        return base.cls
    simple: dict[type, type] = {
        Bool: bool,
        Int: int,
        Uint: int,
        Float: float,
        Complex: complex,
        String: str,
        Bytes: bytes,
        Slice: list,
        Array: list,
        Map: dict,
    }
    if type(base) in simple:
        return simple[type(base)]
    if isinstance(base, GobEncoded):
        return base.cls
    raise ValueError(f"register: give the Python class for {t!r}")


class Interface:
    """Go interface value: ``None`` (nil) or an instance of a class in ``registry``."""

    __slots__ = ("go_name", "registry")

    def __init__(self, registry: Registry, go_name: str = "interface {}") -> None:
        self.registry = registry
        self.go_name = go_name

    def __repr__(self) -> str:
        return f"Interface({self.go_name!r})"


@dataclass(frozen=True, slots=True)
class UnknownValue:
    """A value the schema cannot place: an interface under an unregistered name (``data``
    is then the value decoded by the stream's own types), or, when decoding generically,
    a GobEncoder/BinaryMarshaler/TextMarshaler payload (``encoded=True``, ``data`` bytes)."""

    name: str
    data: Any
    encoded: bool = False


class GobEncoded:
    """A Go type with its own byte encoding (GobEncoder, BinaryMarshaler or TextMarshaler)."""

    __slots__ = ("cls", "decode", "encode", "is_zero", "kind", "name")

    def __init__(
        self,
        name: str,
        cls: type,
        encode: Callable[[Any], bytes],
        decode: Callable[[bytes], Any],
        is_zero: Callable[[Any], bool],
        kind: Literal["gob", "binary", "text"] = "gob",
    ) -> None:
        if kind not in ("gob", "binary", "text"):
            raise ValueError(f"kind must be gob, binary or text, not {kind!r}")
        self.name = name
        self.cls = cls
        self.encode = encode
        self.decode = decode
        self.is_zero = is_zero
        self.kind = kind

    @property
    def go_name(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"GobEncoded({self.name!r})"


def _time_is_zero(t: GoTime) -> bool:
    # Go omits a time.Time field only when the whole struct is zero: instant 0 and UTC.
    return t.sec == 0 and t.nsec == 0 and t.offset is None


TIME = GobEncoded(
    "Time", GoTime, GoTime.marshal_binary, GoTime.unmarshal_binary, _time_is_zero, "gob"
)

GobType = Union[  # noqa: UP007 - a runtime alias of many classes reads better so
    Bool,
    Int,
    Uint,
    Float,
    Complex,
    String,
    Bytes,
    Array,
    Slice,
    Map,
    Ptr,
    Struct,
    Interface,
    GobEncoded,
]

# The type of each of Go's predefined type ids.
BASIC_IDS: dict[type, int] = {
    Bool: BOOL_ID,
    Int: INT_ID,
    Uint: UINT_ID,
    Float: FLOAT_ID,
    Bytes: BYTES_ID,
    String: STRING_ID,
    Complex: COMPLEX_ID,
    Interface: INTERFACE_ID,
}

__all__ = [
    "BASIC_IDS",
    "NEED_DATA",
    "TIME",
    "Array",
    "Bool",
    "Bytes",
    "Complex",
    "Field",
    "Float",
    "GobEncoded",
    "GobError",
    "GobType",
    "Int",
    "Interface",
    "Map",
    "Ptr",
    "Registry",
    "Slice",
    "String",
    "Struct",
    "Uint",
    "UnknownValue",
]
