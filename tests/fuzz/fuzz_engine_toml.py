"""Fuzz target: the engine emulator's checks-file loader (``cli/engine.py``
``parse_checks``, with tomllib under it).

Input: the file's bytes (not UTF-8: skipped, as ``load_checks`` refuses those with a
``ConfigError`` before parsing). The only exception allowed is ``ConfigError``; the
checks it returns must be keyed by their own ids and each have a checker.
"""

from __future__ import annotations

from harness import fuzz, instrumented

with instrumented(__name__, "tomllib"):
    from seesaw_healthcheck.cli.engine import ConfigError, parse_checks

DEMO_TARGETS = {"web": ("127.0.0.1", 8080), "dns": ("::1", 5353)}


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    try:
        checks = parse_checks(text, "fuzz.toml", targets=DEMO_TARGETS)
    except ConfigError as error:
        assert str(error).startswith("fuzz.toml"), error
        return
    for check_id, entry in checks.items():
        assert entry.config.id == check_id, (check_id, entry)
        assert entry.config.checker is not None, entry


if __name__ == "__main__":
    fuzz(TestOneInput)
