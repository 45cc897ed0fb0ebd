"""The two builds: compiled (mypyc, hatch_build.py) and plain Python, and how the package
picks and reports the one it runs (``seesaw_healthcheck/__init__.py``, ``build_info``).

Each case runs the package in a child process, from this checkout or from a copy of it
(with or without the compiled modules, a source edited after the build), or from a wheel
built here with hatchling.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import seesaw_healthcheck
from seesaw_healthcheck import build_info

PACKAGE_DIR = Path(seesaw_healthcheck.__file__).resolve().parent
ROOT = Path(__file__).resolve().parent.parent
PURE_ENV = seesaw_healthcheck.PURE_PYTHON_ENV
EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _extensions(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(EXTENSION_SUFFIXES)]


# Whether this checkout holds a compiled build whose sources are unchanged (`make compiled`).
COMPILED_HERE = (
    (PACKAGE_DIR / seesaw_healthcheck.MANIFEST_NAME).exists()
    and bool(_extensions(PACKAGE_DIR))
    and not seesaw_healthcheck.stale_module
)
needs_compiled = pytest.mark.skipif(
    not COMPILED_HERE, reason="no compiled build in this checkout (make compiled)"
)
SHORT_NAMES = [name.removeprefix("seesaw_healthcheck.") for name in build_info.COMPILED_MODULES]

PROBE = """
import importlib, sys
from seesaw_healthcheck import build_info
for name in build_info.COMPILED_MODULES:
    print(name, importlib.import_module(name).__file__)
print("describe", build_info.describe())
"""


def _env(pythonpath: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != PURE_ENV}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env.update(extra)
    return env


def _probe(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """(module -> the file it was loaded from, build_info.describe()) in a child."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    files: dict[str, str] = {}
    describe = ""
    for line in out.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key == "describe":
            describe = value
        else:
            files[key] = value
    return files, describe


def _version(env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "seesaw_healthcheck.cli.healthcheck", "-version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.fixture
def package_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the package (compiled modules included, if any) under tmp_path."""
    shutil.copytree(
        PACKAGE_DIR,
        tmp_path / "seesaw_healthcheck",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    yield tmp_path


def test_the_pure_python_switch_loads_every_module_from_source() -> None:
    files, describe = _probe(_env(**{PURE_ENV: "1"}))
    assert sorted(files) == sorted(build_info.COMPILED_MODULES)
    assert all(path.endswith(".py") for path in files.values()), files
    if COMPILED_HERE:
        assert describe == f"pure Python ({PURE_ENV} is set)"
    else:
        assert describe == "pure Python (no compiled modules)"


@needs_compiled
def test_the_compiled_build_runs_by_default_and_version_names_its_modules() -> None:
    files, describe = _probe(_env())
    assert all(path.endswith(EXTENSION_SUFFIXES) for path in files.values()), files
    version = (PACKAGE_DIR / seesaw_healthcheck.MANIFEST_NAME).read_text().split()[1]
    expected = f"compiled (mypyc {version}): {', '.join(SHORT_NAMES)}"
    assert describe == expected
    assert _version(_env()) == [
        f"seesaw-healthcheck {seesaw_healthcheck.__version__}",
        f"build: {expected}",
    ]
    assert _version(_env(**{PURE_ENV: "1"}))[1] == f"build: pure Python ({PURE_ENV} is set)"


@needs_compiled
def test_a_source_edited_after_the_build_makes_the_package_run_pure_python(
    package_copy: Path,
) -> None:
    reactor = package_copy / "seesaw_healthcheck" / "reactor.py"
    reactor.write_text(reactor.read_text() + "\n# edited after the build\n")
    files, describe = _probe(_env(package_copy))
    assert all(path.startswith(str(package_copy)) for path in files.values()), files
    assert all(path.endswith(".py") for path in files.values()), files
    reason = "compiled modules are stale: seesaw_healthcheck.reactor changed since the build"
    assert describe == f"pure Python ({reason})"
    log = _server_start_log(_env(package_copy))
    assert [line for line in log if "running pure Python" in line] == [
        next(line for line in log if reason in line)
    ]
    assert next(line for line in log if reason in line).startswith("W")  # a warning


def test_without_compiled_modules_the_server_says_so_once_at_start_up(
    package_copy: Path,
) -> None:
    package = package_copy / "seesaw_healthcheck"
    for path in [*_extensions(package), package / seesaw_healthcheck.MANIFEST_NAME]:
        path.unlink(missing_ok=True)
    log = _server_start_log(_env(package_copy))
    lines = [line for line in log if "running pure Python" in line]
    assert len(lines) == 1, log
    assert lines[0].startswith("I")
    assert lines[0].endswith("] running pure Python; no compiled modules")
    assert _version(_env(package_copy))[1] == "build: pure Python (no compiled modules)"


@needs_compiled
def test_the_compiled_server_says_so_once_at_start_up() -> None:
    log = _server_start_log(_env())
    lines = [line for line in log if "] running compiled (mypyc" in line]
    assert len(lines) == 1, log
    assert lines[0].startswith("I")
    assert lines[0].endswith(", ".join(SHORT_NAMES))


def _server_start_log(env: dict[str, str]) -> list[str]:
    """The server's log lines until its first failed fetch (no engine there)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "seesaw_healthcheck.cli.healthcheck",
            "-engine",
            "/nonexistent/engine.sock",
            "-logtostderr",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 20
        while not any("SeesawEngine.Healthchecks failed" in line for line in lines):
            assert time.monotonic() < deadline, lines
            line = proc.stderr.readline()
            assert line, lines  # the server exited
            lines.append(line.rstrip("\n"))
    finally:
        proc.kill()
        proc.wait()
    return lines


# --- wheels built by hatchling with hatch_build.py -------------------------------------


def _build_wheel(out: Path, **env: str) -> tuple[Path, str]:
    """A wheel of this checkout (no build isolation: hatchling, mypy and setuptools of this
    venv); (its path, pip's output)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-build-isolation",
            "--no-deps",
            "-v",
            "-w",
            str(out),
            str(ROOT),
        ],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (wheel,) = out.glob("seesaw_healthcheck-*.whl")
    return wheel, proc.stdout + proc.stderr


def _unpack(wheel: Path, into: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(into)
    return into


def test_without_a_c_compiler_the_wheel_is_pure_python(tmp_path: Path) -> None:
    wheel, output = _build_wheel(tmp_path / "dist", CC=str(tmp_path / "no-such-cc"))
    assert "building pure Python: no C compiler" in output
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "seesaw_healthcheck/reactor.py" in names
    assert not [n for n in names if n.endswith((".so", seesaw_healthcheck.MANIFEST_NAME))]
    site = _unpack(wheel, tmp_path / "site")
    assert _version(_env(site))[1] == "build: pure Python (no compiled modules)"


@pytest.mark.slow
def test_with_a_c_compiler_the_wheel_is_compiled(tmp_path: Path) -> None:
    if (reason := _why_not_compile()) is not None:
        pytest.skip(reason)
    wheel, output = _build_wheel(tmp_path / "dist", SEESAW_HEALTHCHECK_COMPILE="1")
    assert "compiling the check path with mypyc" in output
    assert "-py3-none-any" not in wheel.name  # a platform wheel
    site = _unpack(wheel, tmp_path / "site")
    files, describe = _probe(_env(site))
    assert all(p.startswith(str(site)) and p.endswith(EXTENSION_SUFFIXES) for p in files.values())
    assert describe.startswith("compiled (mypyc ")
    assert describe.endswith(", ".join(SHORT_NAMES))


def _why_not_compile() -> str | None:
    sys.path.insert(0, str(ROOT))
    try:
        import hatch_build
    finally:
        sys.path.remove(str(ROOT))
    return hatch_build.why_not_compile() or None
