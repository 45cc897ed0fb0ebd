"""seesaw-healthcheck: a drop-in Python health-check server for Google Seesaw.

The hot modules may be installed compiled (mypyc; see ``build_info``). Importing the
package decides, once per process, which build runs: the compiled modules when they are
there and match their sources, else plain Python for every module of the package (also
when ``SEESAW_HEALTHCHECK_PURE_PYTHON=1`` asks for it). Stdlib only, and kept small: every
process of the server runs it.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

__version__ = "0.1.0"

PURE_PYTHON_ENV = "SEESAW_HEALTHCHECK_PURE_PYTHON"
# Written by the compiled build next to this file: "mypyc VERSION", then one
# "MODULE SHA256-OF-ITS-SOURCE" line per compiled module.
MANIFEST_NAME = "_compiled.txt"

# Why the plain-Python modules run although compiled ones are installed ("" otherwise).
pure_reason = ""
# The first compiled module whose source was edited after the build ("" if none).
stale_module = ""
# The compiled build's manifest: mypyc's version and {module: source sha256}.
manifest_mypyc = ""
manifest_modules: dict[str, str] = {}


class _SourceOnlyFinder:
    """Finds the package's modules as ``.py`` files only, ignoring compiled extensions
    beside them (the import system would otherwise prefer those)."""

    def __init__(self) -> None:
        self._finders: dict[str, importlib.machinery.FileFinder] = {}

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not name.startswith(__name__ + ".") or not path:
            return None
        for entry in path:
            finder = self._finders.get(entry)
            if finder is None:
                loader = (
                    importlib.machinery.SourceFileLoader,
                    importlib.machinery.SOURCE_SUFFIXES,
                )
                finder = self._finders[entry] = importlib.machinery.FileFinder(entry, loader)
            spec = finder.find_spec(name, target)
            if spec is not None:
                return spec
        return None


def _read_manifest(directory: str) -> None:
    global manifest_mypyc
    try:
        with open(os.path.join(directory, MANIFEST_NAME), encoding="utf-8") as file:
            lines = file.read().splitlines()
    except OSError:
        return  # no compiled build installed
    for line in lines:
        key, _, value = line.partition(" ")
        if key == "mypyc":
            manifest_mypyc = value
        elif key and value:
            manifest_modules[key] = value


def _stale_module(directory: str) -> str:
    """The first compiled module whose source differs from what was compiled ("" if
    none): an in-place build left behind by an edit must not shadow the edited source."""
    for module, digest in manifest_modules.items():
        parts = module.split(".")[1:]
        source = os.path.join(directory, *parts) + ".py"
        try:
            with open(source, "rb") as file:
                if hashlib.sha256(file.read()).hexdigest() != digest:
                    return module
        except OSError:
            return module
    return ""


def _select_build() -> None:
    global pure_reason, stale_module
    directory = os.path.dirname(os.path.abspath(__file__))
    _read_manifest(directory)
    if not manifest_modules:
        return
    if os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0"):
        pure_reason = f"{PURE_PYTHON_ENV} is set"
    else:
        stale_module = _stale_module(directory)
        if not stale_module:
            return
        pure_reason = f"compiled modules are stale: {stale_module} changed since the build"
    sys.meta_path.insert(0, _SourceOnlyFinder())


_select_build()
