"""``python -m seesaw_healthcheck.gob FILE...``: dump gob streams as JSON lines.

Every top-level value is printed using only the stream's own type definitions: structs
as objects keyed by Go field name (zero fields are absent, as on the wire), map keys as
strings, ``[]byte`` as hex, interface values as ``{"$type": NAME, "$value": ...}``, and
GobEncoder/BinaryMarshaler/TextMarshaler values as ``{"$type": NAME, "$hex": ...}``.
A malformed file prints one line naming the byte offset to stderr; the exit status is 1.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from .decoder import Decoder
from .types import NEED_DATA, GobError, UnknownValue


def to_json(value: Any) -> Any:
    """A generically decoded gob value as JSON-compatible data."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, complex):
        return [to_json(value.real), to_json(value.imag)]
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {_key(k): to_json(v) for k, v in value.items()}
    if isinstance(value, UnknownValue):
        if value.encoded:
            return {"$type": value.name, "$hex": bytes(value.data).hex()}
        return {"$type": value.name, "$value": to_json(value.data)}
    raise TypeError(f"unexpected decoded value {value!r:.80}")


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, bool):
        return "true" if k else "false"
    if isinstance(k, bytes):
        return k.hex()
    return json.dumps(to_json(k))


def dump(path: str, out: Any) -> None:
    """Print every value of one gob file; raises GobError or OSError."""
    with open(path, "rb") as f:
        data = f.read()
    dec = Decoder(max_message=1 << 30)
    dec.feed(data)
    while True:
        value = dec.next()
        if value is NEED_DATA:
            break
        out.write(json.dumps(to_json(value), ensure_ascii=False) + "\n")
    dec.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m seesaw_healthcheck.gob FILE...", file=sys.stderr)
        return 2 if not args else 0
    status = 0
    for path in args:
        try:
            dump(path, sys.stdout)
        except GobError as e:
            print(f"{path}: {e}", file=sys.stderr)
            status = 1
        except OSError as e:
            print(f"{path}: {e.strerror or e}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
