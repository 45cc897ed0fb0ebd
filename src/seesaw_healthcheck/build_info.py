"""Which build runs: the compiled modules (mypyc) or plain Python.

The installed package may hold compiled versions of the check path's modules (the list
below; ``hatch_build.py`` compiles them at install time when a C compiler and the Python
headers are there). The package's ``__init__`` picks the build once per process; this
module reports what it picked, for ``seesaw-healthcheck -version`` and the start-up log.
Stdlib only; importing it loads nothing else of the package.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

import seesaw_healthcheck

__all__ = ["COMPILED_MODULES", "compiled_modules", "describe", "log_line"]

# The modules the compiled build compiles (one mypyc group): the check worker's loop, the
# TCP, HTTP and UDP checks and what they share, the schedule and the result handling.
COMPILED_MODULES = (
    "seesaw_healthcheck.channel",
    "seesaw_healthcheck.checkers.base",
    "seesaw_healthcheck.checkers.dial",
    "seesaw_healthcheck.checkers.dispatch",
    "seesaw_healthcheck.checkers.http",
    "seesaw_healthcheck.checkers.tcp",
    "seesaw_healthcheck.checkers.udp",
    "seesaw_healthcheck.goquote",
    "seesaw_healthcheck.reactor",
    "seesaw_healthcheck.worker.check",
    "seesaw_healthcheck.worker.schedule",
    "seesaw_healthcheck.worker.worker",
)


def _is_compiled(name: str) -> bool:
    module = sys.modules.get(name)
    if module is not None:
        origin = getattr(module, "__file__", None) or ""
    else:
        try:
            spec = importlib.util.find_spec(name)
        except ImportError:
            return False
        origin = (spec.origin or "") if spec is not None else ""
    return origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def compiled_modules() -> list[str]:
    """The package's modules that run compiled in this process (may import them)."""
    return [name for name in COMPILED_MODULES if _is_compiled(name)]


def describe() -> str:
    """One line: ``compiled (mypyc 1.x): reactor, ...`` or ``pure Python (why)``."""
    compiled = compiled_modules()
    if compiled:
        prefix = seesaw_healthcheck.__name__ + "."
        names = ", ".join(name.removeprefix(prefix) for name in compiled)
        version = seesaw_healthcheck.manifest_mypyc or "unknown version"
        return f"compiled (mypyc {version}): {names}"
    return f"pure Python ({seesaw_healthcheck.pure_reason or 'no compiled modules'})"


def log_line() -> tuple[bool, str]:
    """What the server logs once at start-up about its build: (a warning?, the line).
    A warning when compiled modules are installed but stale."""
    compiled = compiled_modules()
    if compiled:
        return False, f"running {describe()}"
    reason = seesaw_healthcheck.pure_reason or "no compiled modules"
    return bool(seesaw_healthcheck.stale_module), f"running pure Python; {reason}"
