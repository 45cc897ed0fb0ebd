"""Go's ``time.Duration`` text forms: ``time.ParseDuration`` and ``Duration.String()``.

Durations are ``int`` nanoseconds, as everywhere in this package. Parsing follows Go 1.19
byte for byte, including its uint64 arithmetic, its float64 rounding of fractions and the
wording of its errors, so a value Go accepts (or refuses) is accepted (or refused) here.
"""

from __future__ import annotations

__all__ = ["DurationError", "format_duration", "parse_duration"]

_MAX_INT64 = (1 << 63) - 1
_MIN_INT64 = -(1 << 63)
_UINT64_MASK = (1 << 64) - 1
_HEX = "0123456789abcdef"
_RUNE_ERROR = "\ufffd".encode()

_UNITS: dict[bytes, int] = {
    b"ns": 1,
    b"us": 1_000,
    "µs".encode(): 1_000,  # U+00B5 micro sign
    "μs".encode(): 1_000,  # U+03BC Greek small letter mu
    b"ms": 1_000_000,
    b"s": 1_000_000_000,
    b"m": 60_000_000_000,
    b"h": 3_600_000_000_000,
}


class DurationError(ValueError):
    """A string Go's time.ParseDuration refuses; the message is Go's."""


def _rune_width(raw: bytes, i: int) -> tuple[int, bool]:
    """Width of the UTF-8 rune at ``raw[i]`` and whether it decoded (Go's range loop)."""
    for width in (1, 2, 3, 4):
        try:
            raw[i : i + width].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return width, True
    return 1, False


def _quote(raw: bytes) -> str:
    """Go's time.quote: ASCII kept, quote and backslash escaped, the rest as \\xNN bytes."""
    out = ['"']
    i = 0
    while i < len(raw):
        c = raw[i]
        if 0x20 <= c < 0x80:
            ch = chr(c)
            out.append("\\" + ch if ch in '"\\' else ch)
            i += 1
            continue
        width, valid = _rune_width(raw, i)
        if not valid and raw[i : i + 3] == _RUNE_ERROR:
            width = 3
        out.extend("\\x" + _HEX[b >> 4] + _HEX[b & 0xF] for b in raw[i : i + width])
        i += width
    out.append('"')
    return "".join(out)


def _leading_int(s: bytes, i: int) -> tuple[int, int] | None:
    """Consume [0-9]* from ``s[i:]``; None on overflow past 1<<63 (as Go's leadingInt)."""
    x = 0
    while i < len(s) and 0x30 <= s[i] <= 0x39:
        if x > (1 << 63) // 10:
            return None
        x = x * 10 + s[i] - 0x30
        if x > 1 << 63:
            return None
        i += 1
    return x, i


def _leading_fraction(s: bytes, i: int) -> tuple[int, float, int]:
    """Consume [0-9]* after a period; stops gaining precision instead of overflowing."""
    x = 0
    scale = 1.0
    overflow = False
    while i < len(s) and 0x30 <= s[i] <= 0x39:
        c = s[i]
        i += 1
        if overflow:
            continue
        if x > _MAX_INT64 // 10:
            overflow = True
            continue
        y = x * 10 + c - 0x30
        if y > 1 << 63:
            overflow = True
            continue
        x = y
        scale *= 10
    return x, scale, i


def parse_duration(text: str | bytes) -> int:
    """Nanoseconds for a Go duration string such as ``"300ms"``, ``"-1.5h"``, ``"2h45m"``.

    Raises DurationError with Go's message (``time: invalid duration "1x"`` ...).
    """
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")

    def invalid() -> DurationError:
        return DurationError("time: invalid duration " + _quote(raw))

    s = raw
    neg = False
    if s[:1] in (b"-", b"+"):
        neg = s[:1] == b"-"
        s = s[1:]
    if s == b"0":
        return 0
    if not s:
        raise invalid()
    total = 0
    i = 0
    while i < len(s):
        c = s[i]
        if not (c == 0x2E or 0x30 <= c <= 0x39):
            raise invalid()
        start = i
        leading = _leading_int(s, i)
        if leading is None:
            raise invalid()
        whole, i = leading
        has_whole = i != start
        frac, scale, has_frac = 0, 1.0, False
        if i < len(s) and s[i] == 0x2E:
            i += 1
            frac_start = i
            frac, scale, i = _leading_fraction(s, i)
            has_frac = i != frac_start
        if not has_whole and not has_frac:
            raise invalid()
        unit_start = i
        while i < len(s) and not (s[i] == 0x2E or 0x30 <= s[i] <= 0x39):
            i += 1
        if i == unit_start:
            raise DurationError("time: missing unit in duration " + _quote(raw))
        unit_text = s[unit_start:i]
        unit = _UNITS.get(unit_text)
        if unit is None:
            raise DurationError(
                "time: unknown unit " + _quote(unit_text) + " in duration " + _quote(raw)
            )
        if whole > (1 << 63) // unit:
            raise invalid()
        value = whole * unit
        if frac > 0:
            # Go converts through float64 here; Python floats are IEEE doubles too.
            value += int(float(frac) * (float(unit) / scale))
            if value > 1 << 63:
                raise invalid()
        # Go adds in uint64, which can wrap at exactly 2**64; keep that quirk.
        total = (total + value) & _UINT64_MASK
        if total > 1 << 63:
            raise invalid()
    if neg:
        return -total if total <= 1 << 63 else _MIN_INT64
    if total > _MAX_INT64:
        raise invalid()
    return total


def _frac(v: int, prec: int) -> tuple[str, int]:
    """Go's fmtFrac: the fraction of ``v`` over 10**prec, trailing zeros dropped."""
    digits: list[str] = []
    printing = False
    for _ in range(prec):
        digit = v % 10
        printing = printing or digit != 0
        if printing:
            digits.append(str(digit))
        v //= 10
    if printing:
        digits.append(".")
    return "".join(reversed(digits)), v


def format_duration(ns: int) -> str:
    """Go's Duration.String(): ``"1.5s"``, ``"100ms"``, ``"0s"``, ``"1h0m0s"``, ``"2µs"``."""
    if not _MIN_INT64 <= ns <= _MAX_INT64:
        raise OverflowError(f"duration {ns} ns does not fit in Go's int64")
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            frac, whole = _frac(u, 3)
            return f"{sign}{whole}{frac}µs"
        frac, whole = _frac(u, 6)
        return f"{sign}{whole}{frac}ms"
    frac, secs = _frac(u, 9)
    text = f"{secs % 60}{frac}s"
    minutes = secs // 60
    if minutes > 0:
        text = f"{minutes % 60}m{text}"
        hours = minutes // 60
        if hours > 0:
            text = f"{hours}h{text}"
    return sign + text
