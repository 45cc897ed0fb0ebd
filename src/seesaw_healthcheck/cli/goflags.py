"""A small command-line parser that behaves like Go's ``flag`` package (Go 1.19).

Seesaw's binaries take Go flags, so scripts written for them must work unchanged:
``-x value``, ``-x=value``, ``--x``, ``--x=value``; bool flags as ``-x`` or ``-x=false``
(never ``-x false``); parsing stops at ``--`` or the first non-flag argument; ``-h`` and
``-help`` print Go's usage text and exit 0; a bad flag or value prints Go's one-line error
and the usage to stderr and exits 2.

Registration returns a typed :class:`Flag` whose ``.value`` holds the parsed value (Go's
pointer result); :meth:`FlagSet.parse` also returns every value by name.
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, NoReturn, TextIO, TypeVar

from seesaw_healthcheck.goduration import DurationError, format_duration, parse_duration
from seesaw_healthcheck.goquote import go_quote

__all__ = [
    "ErrorHandling",
    "Flag",
    "FlagError",
    "FlagSet",
    "HelpRequested",
    "go_quote",
    "parse_go_bool",
    "parse_go_int",
]

T = TypeVar("T")

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_MAX_UINT64 = (1 << 64) - 1


class ErrorHandling(Enum):
    """What :meth:`FlagSet.parse` does on an error (Go's flag.ErrorHandling)."""

    CONTINUE_ON_ERROR = "continue"  # raise FlagError / HelpRequested
    EXIT_ON_ERROR = "exit"  # exit 2, or 0 for -h/-help


class FlagError(ValueError):
    """A command line Go's flag package refuses; the message is Go's."""


class HelpRequested(FlagError):
    """``-h`` or ``-help`` was given and no such flag is defined (Go's ErrHelp)."""

    def __init__(self) -> None:
        super().__init__("flag: help requested")


class _ValueError(Exception):
    """A flag value that does not parse; the text is Go's reason ("parse error")."""


def parse_go_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _ValueError("parse error")


def _underscore_ok(s: str) -> bool:
    """strconv's rule: underscores only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if s[:1] in ("-", "+"):
        s = s[1:]
    hexadecimal = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i = 2
        saw = "0"
        hexadecimal = s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        i += 1
        if "0" <= c <= "9" or (hexadecimal and "a" <= c.lower() <= "f"):
            saw = "0"
            continue
        if c == "_":
            if saw != "0":
                return False
            saw = "_"
            continue
        if saw == "_":
            return False
        saw = "!"
    return saw != "_"


def parse_go_int(text: str, bits: int = 64) -> int:
    """strconv.ParseInt(text, 0, bits): Go's base prefixes (0x, 0o, 0b, leading 0) and _."""
    if not text:
        raise _ValueError("parse error")
    s = text
    negative = False
    if s[0] in "+-":
        negative = s[0] == "-"
        s = s[1:]
    if not s:
        raise _ValueError("parse error")
    base = 10
    if s[0] == "0":
        if len(s) >= 3 and s[1].lower() in "box":
            base = {"b": 2, "o": 8, "x": 16}[s[1].lower()]
            s = s[2:]
        else:
            base = 8
            s = s[1:]
    cutoff = _MAX_UINT64 // base + 1
    magnitude = 0
    saw_underscore = False
    for c in s:
        if c == "_":
            saw_underscore = True
            continue
        if "0" <= c <= "9":
            digit = ord(c) - 48
        elif "a" <= c.lower() <= "z":
            digit = ord(c.lower()) - ord("a") + 10
        else:
            raise _ValueError("parse error")
        if digit >= base:
            raise _ValueError("parse error")
        if magnitude >= cutoff:
            raise _ValueError("value out of range")
        magnitude = magnitude * base + digit
        if magnitude > _MAX_UINT64:
            raise _ValueError("value out of range")
    if saw_underscore and not _underscore_ok(text):
        raise _ValueError("parse error")
    limit = 1 << (bits - 1)
    if (not negative and magnitude >= limit) or (negative and magnitude > limit):
        raise _ValueError("value out of range")
    return -magnitude if negative else magnitude


def _parse_duration_value(text: str) -> int:
    try:
        return parse_duration(text)
    except DurationError:
        raise _ValueError("parse error") from None


@dataclass(slots=True)
class Flag(Generic[T]):
    """One defined flag; ``value`` is the default until parse sets it."""

    name: str
    usage: str
    value: T
    default_text: str  # Go's DefValue: the default as the flag's String() prints it
    type_name: str  # "string", "int", "duration" or "" for bool
    parse_text: Callable[[str], T] = field(repr=False)
    zero_text: str = ""
    is_bool: bool = False
    quote_default: bool = False

    def set(self, text: str) -> None:
        self.value = self.parse_text(text)


class FlagSet:
    """A set of Go-style flags for one program (Go's flag.FlagSet)."""

    def __init__(
        self,
        prog: str,
        error_handling: ErrorHandling = ErrorHandling.EXIT_ON_ERROR,
        output: TextIO | None = None,
    ) -> None:
        self.prog = prog
        self.error_handling = error_handling
        self._output = output
        self._flags: dict[str, Flag[object]] = {}
        self.args: list[str] = []  # what is left after the flags
        self.actual: set[str] = set()  # names of the flags given on the command line

    @property
    def output(self) -> TextIO:
        return self._output if self._output is not None else sys.stderr

    def _define(self, flag: Flag[T]) -> Flag[T]:
        if flag.name in self._flags:
            raise ValueError(f"{self.prog} flag redefined: {flag.name}")
        if not flag.name or flag.name.startswith("-") or "=" in flag.name:
            raise ValueError(f"flag {flag.name!r} begins with - or contains =")
        self._flags[flag.name] = flag  # type: ignore[assignment]
        return flag

    def string(self, name: str, default: str, usage: str) -> Flag[str]:
        return self._define(Flag(name, usage, default, default, "string", str, quote_default=True))

    def int(self, name: str, default: int, usage: str) -> Flag[int]:
        return self._define(Flag(name, usage, default, str(default), "int", parse_go_int, "0"))

    def bool(self, name: str, default: bool, usage: str) -> Flag[bool]:
        text = "true" if default else "false"
        return self._define(
            Flag(name, usage, default, text, "", parse_go_bool, "false", is_bool=True)
        )

    def duration(self, name: str, default: builtins.int, usage: str) -> Flag[builtins.int]:
        """A duration flag; ``default`` and the value are nanoseconds."""
        return self._define(
            Flag(name, usage, default, format_duration(default), "duration",
                 _parse_duration_value, "0s")
        )  # fmt: skip

    def var(
        self,
        name: str,
        default: T,
        usage: str,
        parse: Callable[[str], T],
        *,
        type_name: str = "value",
        default_text: str | None = None,
        zero_text: str = "",
    ) -> Flag[T]:
        """A flag of any type, as Go's ``flag.Var``.

        ``parse`` turns the text into the value, or raises ``ValueError`` whose message is
        the reason in Go's error (``invalid value "x" for flag -name: REASON``). The
        usage shows the default (``default_text``, else ``str(default)``) unless it is
        ``zero_text``.
        """

        def parse_text(text: str) -> T:
            try:
                return parse(text)
            except ValueError as error:
                raise _ValueError(str(error)) from None

        shown = str(default) if default_text is None else default_text
        return self._define(Flag(name, usage, default, shown, type_name, parse_text, zero_text))

    def values(self) -> dict[str, object]:
        return {name: flag.value for name, flag in self._flags.items()}

    def usage_text(self) -> str:
        """Go's default usage: "Usage of PROG:" then PrintDefaults, flags sorted by name."""
        lines = [f"Usage of {self.prog}:\n" if self.prog else "Usage:\n"]
        for name in sorted(self._flags):
            flag = self._flags[name]
            type_name, usage = _unquote_usage(flag)
            head = f"  -{name}" + (f" {type_name}" if type_name else "")
            # Go keeps one-letter bool flags on one line.
            head += "\t" if len(head.encode()) <= 4 else "\n    \t"
            text = head + usage.replace("\n", "\n    \t")
            if flag.default_text != flag.zero_text:
                shown = go_quote(flag.default_text) if flag.quote_default else flag.default_text
                text += f" (default {shown})"
            lines.append(text + "\n")
        return "".join(lines)

    def print_usage(self) -> None:
        self.output.write(self.usage_text())
        self.output.flush()

    def _fail(self, message: str) -> FlagError:
        self.output.write(message + "\n")
        self.print_usage()
        return FlagError(message)

    def _parse_one(self) -> builtins.bool:
        """Consume one flag from ``self.args``; False when the flags have ended."""
        if not self.args:
            return False
        arg = self.args[0]
        if len(arg) < 2 or arg[0] != "-":
            return False
        minuses = 1
        if arg[1] == "-":
            minuses = 2
            if len(arg) == 2:  # "--" ends the flags and is dropped
                del self.args[0]
                return False
        name = arg[minuses:]
        if not name or name[0] in "-=":
            raise self._fail(f"bad flag syntax: {arg}")
        del self.args[0]
        value: str | None = None
        eq = name.find("=", 1)
        if eq > 0:
            name, value = name[:eq], name[eq + 1 :]
        flag = self._flags.get(name)
        if flag is None:
            if name in ("help", "h"):
                self.print_usage()
                raise HelpRequested()
            raise self._fail(f"flag provided but not defined: -{name}")
        if flag.is_bool:
            try:
                flag.set("true" if value is None else value)
            except _ValueError as err:
                raise self._fail(
                    f"invalid boolean value {go_quote(value or '')} for -{name}: {err}"
                ) from None
        else:
            if value is None:
                if not self.args:
                    raise self._fail(f"flag needs an argument: -{name}")
                value = self.args.pop(0)
            try:
                flag.set(value)
            except _ValueError as err:
                raise self._fail(
                    f"invalid value {go_quote(value)} for flag -{name}: {err}"
                ) from None
        self.actual.add(name)
        return True

    def parse(self, argv: Sequence[str]) -> dict[str, object]:
        """Parse ``argv`` (without the program name); return every flag's value by name.

        The arguments left after the flags are in ``self.args``.
        """
        self.args = list(argv)
        try:
            while self._parse_one():
                pass
        except HelpRequested:
            if self.error_handling is ErrorHandling.EXIT_ON_ERROR:
                _exit(0)
            raise
        except FlagError:
            if self.error_handling is ErrorHandling.EXIT_ON_ERROR:
                _exit(2)
            raise
        return self.values()


def _exit(code: int) -> NoReturn:
    sys.exit(code)


def _unquote_usage(flag: Flag[object]) -> tuple[str, str]:
    """Go's UnquoteUsage: a `back-quoted` word in the usage names the value."""
    usage = flag.usage
    start = usage.find("`")
    if start >= 0:
        end = usage.find("`", start + 1)
        if end >= 0:
            name = usage[start + 1 : end]
            return name, usage[:start] + name + usage[end + 1 :]
    return flag.type_name, usage
