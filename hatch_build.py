"""Build hook: compile the check path's modules with mypyc when a C compiler is present.

hatchling runs this at every wheel build (``pip install .``, ``pip install -e .``):

- ``SEESAW_HEALTHCHECK_COMPILE=auto`` (the default): compile when a C compiler and the
  Python headers are there, else build the plain-Python package and say why;
- ``=1``: compile, and fail the build when that is not possible;
- ``=0``: never compile.

The modules are those of ``seesaw_healthcheck.build_info.COMPILED_MODULES``, in one mypyc
group (calls between them stay native). A wheel gets the compiled extensions next to their
sources, plus ``_compiled.txt`` (mypyc's version and each source's SHA-256, which the
package checks at import: see ``seesaw_healthcheck/__init__.py``). An editable install
gets them in place, in ``src/seesaw_healthcheck`` (git ignores them).

``python hatch_build.py`` does the in-place build with the running interpreter's mypy
(``make compiled`` calls it when a compiled module's source changed); ``--clean`` removes
the in-place build; ``--sources`` lists the compiled modules' sources.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script (in-place build): hatchling is not needed

    class BuildHookInterface:  # type: ignore[no-redef]
        pass


ROOT = Path(__file__).resolve().parent
SRC = ROOT / "src"
PACKAGE = "seesaw_healthcheck"
GROUP = f"{PACKAGE}._compiled"  # the shared library: seesaw_healthcheck/_compiled__mypyc.so
MANIFEST = "_compiled.txt"
ENV = "SEESAW_HEALTHCHECK_COMPILE"
# The compiler of the build: the version the compiled build is tested with.
BUILD_REQUIREMENTS = ["mypy==2.4.1", "setuptools>=70"]


def compiled_modules() -> list[str]:
    """The modules to compile: ``COMPILED_MODULES`` of build_info.py, read without
    importing the package (its dependencies may not be installed where this runs)."""
    tree = ast.parse((SRC / PACKAGE / "build_info.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "COMPILED_MODULES" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise RuntimeError("build_info.py has no COMPILED_MODULES")


def compiled_sources() -> list[Path]:
    return [SRC.joinpath(*m.split(".")).with_suffix(".py") for m in compiled_modules()]


def mode() -> str:
    value = os.environ.get(ENV, "auto").strip().lower()
    if value in ("", "auto"):
        return "auto"
    if value in ("1", "yes", "true", "on"):
        return "yes"
    if value in ("0", "no", "false", "off"):
        return "no"
    raise ValueError(f"{ENV} must be auto, 1 or 0, not {value!r}")


def why_not_compile() -> str:
    """Why this machine cannot build the compiled modules ("" if it can)."""
    compiler = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    program = compiler.split()[0]
    if shutil.which(program) is None:
        return f"no C compiler ({program} not found)"
    include = sysconfig.get_paths()["include"]
    if not os.path.exists(os.path.join(include, "Python.h")):
        return f"no Python headers ({include}/Python.h not found; Debian: python3-dev)"
    return ""


def should_compile() -> tuple[bool, str]:
    """(compile?, the reason when not); raises when compiling is required but impossible."""
    wanted = mode()
    if wanted == "no":
        return False, f"{ENV}=0"
    reason = why_not_compile()
    if reason and wanted == "yes":
        raise RuntimeError(f"{ENV}=1 but the compiled build cannot be made here: {reason}")
    return not reason, reason


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_text(modules: list[str], mypyc_version: str) -> str:
    lines = [f"mypyc {mypyc_version}"]
    for module in modules:
        source = SRC.joinpath(*module.split(".")).with_suffix(".py")
        lines.append(f"{module} {_sha256(source)}")
    return "\n".join(lines) + "\n"


def build(out_dir: Path, work_dir: Path) -> list[Path]:
    """Compile into ``out_dir`` (``seesaw_healthcheck/...`` below it, and the manifest);
    the extension files written, relative to ``out_dir``."""
    # Imported here: hatchling installs them (dependencies()) only when compiling.
    from mypy.version import __version__ as mypy_version
    from mypyc.build import mypycify
    from setuptools import Distribution
    from setuptools.command.build_ext import build_ext

    modules = compiled_modules()
    paths = [str(path) for path in compiled_sources()]
    cwd = os.getcwd()
    os.chdir(SRC)  # mypy names the modules from the paths below src/
    try:
        extensions = mypycify(
            [
                "--cache-dir",
                str(work_dir / "mypy_cache"),
                # Third-party packages (not needed by the compiled modules) may be missing
                # from the build environment; what they are stays Any.
                "--ignore-missing-imports",
                *[os.path.relpath(p, SRC) for p in paths],
            ],
            opt_level="3",
            group_name=GROUP,
            target_dir=str(work_dir / "c"),
        )
        dist = Distribution({"name": PACKAGE, "ext_modules": extensions})
        command = build_ext(dist)
        command.build_lib = str(out_dir)
        command.build_temp = str(work_dir / "temp")
        command.parallel = os.cpu_count() or 1
        command.ensure_finalized()
        command.run()
        built = [Path(p).relative_to(out_dir) for p in command.get_outputs()]
    finally:
        os.chdir(cwd)
    (out_dir / PACKAGE / MANIFEST).write_text(manifest_text(modules, mypy_version))
    return built


def in_place_files() -> list[Path]:
    """What an in-place build left in the source tree."""
    package = SRC / PACKAGE
    suffixes = tuple(s for s in (sysconfig.get_config_var("EXT_SUFFIX"), ".so") if s)
    found = [p for p in package.rglob("*") if p.name.endswith(suffixes)]
    manifest = package / MANIFEST
    return found + ([manifest] if manifest.exists() else [])


def clean_in_place() -> None:
    for path in in_place_files():
        path.unlink()


def build_in_place() -> list[Path]:
    """Compile into the source tree (replacing an earlier in-place build)."""
    clean_in_place()
    with tempfile.TemporaryDirectory(prefix="seesaw-mypyc-") as tmp:
        out = Path(tmp) / "out"
        built = build(out, Path(tmp))
        for relative in [*built, Path(PACKAGE) / MANIFEST]:
            target = SRC / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(out / relative, target)
    return built


class CompileHook(BuildHookInterface):  # type: ignore[misc]
    """The hatchling build hook (``[tool.hatch.build.targets.wheel.hooks.custom]``)."""

    def dependencies(self) -> list[str]:
        try:
            compile_now, _ = should_compile()
        except (ValueError, RuntimeError):
            return []  # initialize() reports it
        return list(BUILD_REQUIREMENTS) if compile_now else []

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        compile_now, reason = should_compile()
        if version == "editable":
            clean_in_place()
        if not compile_now:
            self.app.display_info(f"seesaw-healthcheck: building pure Python: {reason}")
            return
        self.app.display_info("seesaw-healthcheck: compiling the check path with mypyc")
        if version == "editable":
            build_in_place()
        else:
            # Kept until finalize(): the wheel is written from these files.
            self._work: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
                prefix="seesaw-mypyc-"
            )
            work = Path(self._work.name)
            built = build(work / "out", work)
            for relative in [*built, Path(PACKAGE) / MANIFEST]:
                build_data["force_include"][str(work / "out" / relative)] = str(relative)
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        work = getattr(self, "_work", None)
        if work is not None:
            work.cleanup()
            self._work = None


def main(argv: list[str]) -> int:
    if argv[1:] == ["--clean"]:
        clean_in_place()
        return 0
    if argv[1:] == ["--sources"]:  # for make: what the in-place build depends on
        print(" ".join(str(path.relative_to(ROOT)) for path in compiled_sources()))
        return 0
    if argv[1:]:
        print("usage: python hatch_build.py [--clean | --sources]", file=sys.stderr)
        return 2
    compile_now, reason = should_compile()
    if not compile_now:
        clean_in_place()
        print(f"not compiling: {reason}; the package runs as plain Python")
        return 0
    built = build_in_place()
    print(f"compiled {len(built)} extensions into {SRC / PACKAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
