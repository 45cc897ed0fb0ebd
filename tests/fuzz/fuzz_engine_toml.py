"""Fuzz target: the engine emulator's checks-file loader (``cli/engine.py``
``parse_checks``, with tomllib under it), as it loads files and with ``-allow_invalid``.

Input: the file's bytes (not UTF-8: skipped, as ``load_checks`` refuses those with a
``ConfigError`` before parsing). The only exception allowed is ``ConfigError``. The checks
returned must be keyed by their own ids; a file that loads as it is must load the same
with ``allow_invalid``, with no rule broken; with ``allow_invalid`` only a check that
broke a rule may lack a checker.
"""

from __future__ import annotations

from harness import fuzz, instrumented

with instrumented(__name__, "tomllib"):
    from seesaw_healthcheck.checkfile import CheckEntry, ConfigError, parse_checks

DEMO_TARGETS = {
    name: ("127.0.0.1", 8000 + i)
    for i, name in enumerate(("web", "api", "smtp", "resolver", "syslog", "gone"))
}


def load(text: str, allow_invalid: bool) -> dict[int, CheckEntry] | None:
    try:
        checks = parse_checks(text, "fuzz.toml", targets=DEMO_TARGETS, allow_invalid=allow_invalid)
    except ConfigError as error:
        assert str(error).startswith("fuzz.toml"), error
        return None
    for check_id, entry in checks.items():
        assert entry.config.id == check_id, (check_id, entry)
        assert entry.config.checker is not None or entry.invalid, entry
    return checks


def TestOneInput(data: bytes) -> None:  # atheris calls it by this name
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    strict = load(text, allow_invalid=False)
    lenient = load(text, allow_invalid=True)
    if strict is not None:  # (both loads number their checks alike: same pid, fresh ids)
        assert lenient == strict, (lenient, strict)


if __name__ == "__main__":
    fuzz(TestOneInput)
