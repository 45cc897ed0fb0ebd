"""Checker dispatch: ``await run(checker, timeout_s)`` on a reactor task, never raising.

Each checker type lives in its own module (``tcp``, ``http``, ``dns``, ``udp``, ``ping``,
``radius``) with ``async def check(checker, timeout_s) -> Result`` and
``describe(checker) -> str``; modules are imported on first use. ``run`` and ``describe``
live in ``dispatch`` (a module the compiled build compiles; a package's ``__init__`` is
not compiled).
"""

from __future__ import annotations

from seesaw_healthcheck.checkers.base import Result, timeout_for
from seesaw_healthcheck.checkers.dispatch import describe, run

__all__ = ["Result", "describe", "run", "timeout_for"]
