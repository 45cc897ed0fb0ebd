"""The fuzz targets of ``tests/fuzz/`` in the normal test run.

Replaying the seed corpus through every target is fast and always runs. Then every target
runs under atheris (coverage-guided) for ``FUZZ_CI_SECONDS`` (default 10) each, two at a
time, in subprocesses: any crash fails the test and leaves its input in
``tests/fuzz/crashes/<target>/``. ``make fuzz`` runs longer (README: "Fuzzing").
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

FUZZ_DIR = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ_DIR))

import run as fuzz_run  # noqa: E402  (tests/fuzz/run.py)

TARGETS = fuzz_run.targets()
CI_SECONDS = int(os.environ.get("FUZZ_CI_SECONDS", "10"))


def target(name: str) -> Callable[[bytes], None]:
    module = importlib.import_module(f"fuzz_{name}")
    test_one_input: Callable[[bytes], None] = module.TestOneInput
    return test_one_input


def test_every_target_has_a_seed_corpus_and_every_corpus_a_target() -> None:
    corpora = sorted(p.name for p in fuzz_run.CORPUS.iterdir() if p.is_dir())
    assert corpora == TARGETS
    assert len(TARGETS) >= 9
    total = sum(f.stat().st_size for f in fuzz_run.CORPUS.rglob("*") if f.is_file())
    assert total < 512 * 1024, f"the seed corpus is {total} bytes: keep it small"


@pytest.mark.parametrize("name", TARGETS)
def test_corpus_replays_cleanly(name: str) -> None:
    test_one_input = target(name)
    files = sorted((fuzz_run.CORPUS / name).iterdir())
    assert files, f"no seed inputs for {name}"
    for path in files:
        try:
            test_one_input(path.read_bytes())
        except Exception as error:
            raise AssertionError(f"{path.name}: {error!r}") from error


@pytest.mark.timeout(300)  # 9 targets x 10 s, 2 at a time: about a minute
def test_each_target_fuzzes_without_a_crash(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    outcomes = fuzz_run.run_all(TARGETS, CI_SECONDS, jobs=2, work_dir=tmp_path)
    report = "\n".join(o.line() for o in outcomes)
    assert [o.target for o in outcomes] == TARGETS
    crashed = [o for o in outcomes if not o.ok]
    assert not crashed, (
        report + "\n\n" + "\n\n".join(o.log.read_text(errors="replace")[-3000:] for o in crashed)
    )
    # Each target really ran inputs (a broken harness would run none and "pass").
    assert all(o.runs > 100 for o in outcomes), report
