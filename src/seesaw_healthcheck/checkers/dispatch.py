"""Checker dispatch: ``run(checker, timeout_s)`` and ``describe(checker)`` (re-exported
by ``seesaw_healthcheck.checkers``), loading each checker module on first use."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Coroutine
from typing import Any, Final

from seesaw_healthcheck.checkers.base import (
    DEFAULT_TIMEOUT_S,
    Result,
    elapsed_ns,
    internal_error,
    now_ns,
    timed_out,
)
from seesaw_healthcheck.model import CHECKER_KINDS
from seesaw_healthcheck.reactor import limit_deadline

__all__ = ["describe", "run"]

# Each checker type's module is named after its kind (model.CHECKER_KINDS).
_MODULE_NAMES: Final = CHECKER_KINDS

CheckFunction = Callable[[Any, float], Coroutine[Any, Any, Result]]
# What run() calls per type: the module's check itself when the module declares GUARDED
# (its check bounds itself and never raises), else a _guarded wrapper around it.
_check_functions: dict[type, CheckFunction] = {}
_describe_functions: dict[type, Callable[[Any], str]] = {}


class _Unavailable(Exception):
    pass


def _load(kind: type) -> None:
    name = _MODULE_NAMES.get(kind)
    if name is None:
        raise _Unavailable(f"unsupported checker type {kind.__name__}")
    try:
        module = importlib.import_module(f"seesaw_healthcheck.checkers.{name}")
    except ImportError as error:
        raise _Unavailable(f"{name} checker not available: {error}") from None
    check: CheckFunction = module.check
    if not getattr(module, "GUARDED", False):
        check = functools.partial(_guarded, check)
    _check_functions[kind] = check
    _describe_functions[kind] = module.describe


def run(checker: Any, timeout_s: float) -> Coroutine[Any, Any, Result]:
    """Run one check within ``timeout_s`` seconds (<= 0: the type's default).

    Returns the coroutine to await (or spawn) in a task on a ``Reactor``. Never raises: an
    unknown type or a bug in a checker becomes a failed ``Result`` whose error says so.
    A plain function, not a coroutine: the TCP, HTTP and UDP checks bound themselves and
    catch everything, so their coroutine is handed out as it is (one frame less per check).
    """
    kind = checker.__class__
    check = _check_functions.get(kind)
    if check is None:
        start = now_ns()
        try:
            _load(kind)
        except _Unavailable as error:
            return _failed(start, str(error))
        check = _check_functions[kind]
    if not timeout_s > 0:  # also catches NaN
        timeout_s = DEFAULT_TIMEOUT_S.get(kind, 10.0)
    return check(checker, timeout_s)


async def _failed(start: int, error: str) -> Result:
    return Result(False, "", elapsed_ns(start), error=error)


async def _guarded(check: CheckFunction, checker: Any, timeout_s: float) -> Result:
    """Bound ``check`` to ``timeout_s`` and turn what it raises into a failed Result."""
    start = now_ns()
    limit_deadline(timeout_s)
    try:
        return await check(checker, timeout_s)
    except TimeoutError:
        # A checker lets the deadline through only when it has nothing better to say.
        return timed_out(start, timeout_s)
    except Exception as error:
        return internal_error(checker, start, error)


def describe(checker: Any) -> str:
    """Go's ``String()`` of the checker, e.g. ``TCP 127.0.0.1:80 PLAIN``."""
    kind = type(checker)
    fn = _describe_functions.get(kind)
    if fn is None:
        try:
            _load(kind)
        except _Unavailable:
            return f"(unsupported checker {kind.__name__})"
        fn = _describe_functions[kind]
    try:
        return fn(checker)
    except Exception as error:
        return f"({kind.__name__}: {error})"
