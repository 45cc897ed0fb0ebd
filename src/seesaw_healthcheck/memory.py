"""Giving freed memory back to the system after a big shrink of the set of checks.

CPython frees objects into its own pools and glibc's heap keeps freed pages; after
100,000 checks are removed, both processes would otherwise stay at their peak. A full
collection, then glibc's ``malloc_trim``, returns what is free. Costly (a full collection
walks every object), so only after a shrink that is worth it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

__all__ = ["SHRINK_RELEASE", "release"]

log = logging.getLogger(__name__)

# Release after removing at least this many checks at once.
SHRINK_RELEASE = 1000

_trim: object = None


def release() -> None:
    """Collect cycles and hand free heap pages back to the system (glibc only)."""
    global _trim
    gc.collect()
    if _trim is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _trim = libc.malloc_trim
        except (OSError, AttributeError):
            _trim = False  # not glibc: the collection is all we can do
    if _trim:
        _trim(0)  # type: ignore[operator]
