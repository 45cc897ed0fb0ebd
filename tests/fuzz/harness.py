"""What every fuzz target shares: instrumentation when run under atheris, and its main.

A target (``fuzz_<name>.py`` next to this file) imports the code under test inside
``with instrumented(__name__):``: run as a script, that is atheris' import hook, so
libFuzzer gets coverage of ``seesaw_healthcheck`` (and of any extra package named);
imported (by ``tests/test_fuzz.py`` to replay the corpus) it does nothing, so replaying
needs no atheris and costs nothing extra. ``fuzz(test_one_input)`` then hands the
command line to libFuzzer (``-max_total_time=60 CORPUS_DIR...``; see ``run.py``).

The drivers below run the checkers' coroutines without a reactor: the fake sockets the
targets give them never block, so a coroutine runs to its end on the first ``send``.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def instrumented(module_name: str, *extra: str) -> Iterator[None]:
    """Instrument the imports inside the block when ``module_name`` is ``"__main__"``."""
    if module_name != "__main__":
        yield
        return
    import atheris

    with atheris.instrument_imports(include=["seesaw_healthcheck", *extra]):
        yield


def fuzz(test_one_input: Callable[[bytes], None]) -> None:
    """Run libFuzzer on ``test_one_input`` with this process's command line."""
    import atheris

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


def run_to_end(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine that never suspends; AssertionError if it does (it would be
    waiting for a reactor that is not there)."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise AssertionError("the coroutine waited for I/O: the fake socket should never block")
