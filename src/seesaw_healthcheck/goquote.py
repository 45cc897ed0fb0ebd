"""Go's ``%q`` (``strconv.Quote``) of a Go string, for error texts that must read as Go's."""

from __future__ import annotations

__all__ = ["go_quote"]

_ESCAPES = {
    0x07: "\\a",
    0x08: "\\b",
    0x0C: "\\f",
    0x0A: "\\n",
    0x0D: "\\r",
    0x09: "\\t",
    0x0B: "\\v",
    0x5C: "\\\\",
    0x22: '\\"',
}


def go_quote(data: bytes | str) -> str:
    """Go's ``%q`` of a string: double-quoted, escapes as ``strconv.Quote`` writes them.

    Invalid UTF-8 bytes become ``\\xNN``; printable runes stay as they are.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    out = ['"']
    text = data.decode("utf-8", "surrogateescape")
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code in _ESCAPES:
            out.append(_ESCAPES[code])
        elif ch.isprintable():  # Python's printable is Go's IsPrint: space, no other Z/C
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
