"""Go's ``time.Time`` as a value, and its ``MarshalBinary`` form (versions 1 and 2).

``time.Time`` crosses gob as a GobEncoder whose bytes are ``MarshalBinary``'s:
version byte, 8-byte seconds since 0001-01-01 UTC, 4-byte nanoseconds, 2-byte zone offset
in minutes (-1 means the UTC location), and in version 2 one more byte of offset seconds.
Python's ``datetime`` cannot hold nanoseconds nor tell "UTC" from "a zone at offset 0",
so the value is kept exactly as Go has it.
"""

from __future__ import annotations

import datetime as _dt
import struct
import time as _time
from dataclasses import dataclass

# Seconds from 0001-01-01 to 1970-01-01 (Go's unixToInternal).
UNIX_TO_INTERNAL = (1969 * 365 + 1969 // 4 - 1969 // 100 + 1969 // 400) * 86400

_V1 = struct.Struct(">BqiH")


class GoTimeError(ValueError):
    """Bytes that are not a valid ``time.Time`` binary form."""


@dataclass(frozen=True, slots=True)
class GoTime:
    """A Go ``time.Time``: an instant plus the zone offset it was written in.

    ``offset`` is the zone offset in seconds east of UTC, or ``None`` for Go's UTC
    location (which marshals as -1; a Local zone at offset 0 marshals as 0).
    """

    sec: int = 0  # seconds since 0001-01-01 00:00:00 UTC
    nsec: int = 0  # 0 <= nsec < 1e9
    offset: int | None = None

    @classmethod
    def from_unix_ns(cls, unix_ns: int, offset: int | None = None) -> GoTime:
        s, ns = divmod(unix_ns, 1_000_000_000)
        return cls(s + UNIX_TO_INTERNAL, ns, offset)

    @classmethod
    def now(cls) -> GoTime:
        """The current time in the local zone, as Go's ``time.Now()`` carries it."""
        t = _time.time_ns()
        return cls.from_unix_ns(t, _time.localtime(t // 1_000_000_000).tm_gmtoff)

    @property
    def is_zero(self) -> bool:
        return self.sec == 0 and self.nsec == 0

    @property
    def unix_ns(self) -> int:
        return (self.sec - UNIX_TO_INTERNAL) * 1_000_000_000 + self.nsec

    def to_datetime(self) -> _dt.datetime:
        """Aware datetime (microsecond precision) in the value's own offset."""
        tz = _dt.UTC if self.offset is None else _dt.timezone(_dt.timedelta(seconds=self.offset))
        base = _dt.datetime(1, 1, 1, tzinfo=_dt.UTC)
        return (base + _dt.timedelta(seconds=self.sec, microseconds=self.nsec // 1000)).astimezone(
            tz
        )

    def isoformat(self) -> str:
        if self.is_zero:
            return "0001-01-01T00:00:00Z"
        return self.to_datetime().isoformat()

    def marshal_binary(self) -> bytes:
        """Go 1.19's ``Time.MarshalBinary``."""
        if self.offset is None:
            offset_min, offset_sec, version = -1, 0, 1
        else:
            # Go's / and % truncate toward zero.
            sign = -1 if self.offset < 0 else 1
            offset_min, offset_sec = sign * (abs(self.offset) // 60), sign * (abs(self.offset) % 60)
            version = 2 if offset_sec else 1
            if offset_min < -32768 or offset_min == -1 or offset_min > 32767:
                raise GoTimeError(f"unexpected zone offset {self.offset}s")
        out = _V1.pack(version, self.sec, self.nsec, offset_min & 0xFFFF)
        return out + bytes([offset_sec & 0xFF]) if version == 2 else out

    @classmethod
    def unmarshal_binary(cls, data: bytes) -> GoTime:
        """Go's ``Time.UnmarshalBinary`` for versions 1 and 2."""
        if not data:
            raise GoTimeError("time: no data")
        version = data[0]
        if version not in (1, 2):
            raise GoTimeError(f"time: unsupported version {version}")
        want = _V1.size + (1 if version == 2 else 0)
        if len(data) != want:
            raise GoTimeError(f"time: invalid length {len(data)}, want {want}")
        _, sec, nsec, raw_min = _V1.unpack_from(data)
        offset_min = raw_min - 0x10000 if raw_min & 0x8000 else raw_min
        if not 0 <= nsec < 1_000_000_000:
            raise GoTimeError(f"time: nanoseconds {nsec} out of range")
        if offset_min == -1:
            return cls(sec, nsec, None)
        offset = offset_min * 60
        if version == 2:
            s = data[-1]
            offset += s - 0x100 if s & 0x80 else s
        return cls(sec, nsec, offset)
