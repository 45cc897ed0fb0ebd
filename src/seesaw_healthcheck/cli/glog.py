"""glog-style logging on top of the standard library's ``logging``.

Seesaw's binaries log with glog, and operators grep for glog's line format and file names,
so we produce both:

- Line format: ``I1127 01:52:03.123456   12345 file.py:123] message`` -- severity letter
  (I, W, E, F), month and day, local time with microseconds, the process id right-aligned
  in 7 columns (Go's glog prints the pid there), the source file's base name and line.
- ``-log_dir DIR``: one file per severity, named as glog names them,
  ``<program>.<host>.<user>.log.<LEVEL>.<yyyymmdd-hhmmss>.<pid>``, created on the first
  message of that severity. A file gets the messages of its severity and above (the INFO
  file has everything). The symlink ``<program>.<LEVEL>`` points at the newest file.
  Files rotate once over ``max_size`` bytes (default 64 MiB; glog's is 1800 MiB, which is a
  lot of /var/log on a load balancer) and at most ``keep`` old files (default 5) per level
  are kept; older ones this process made are deleted.
- Without ``-log_dir`` we log to stderr. (glog would write files in $TMPDIR, which nobody
  reads on a load balancer and which grows without bound.)
- ``-logtostderr``: stderr only, no files. ``-alsologtostderr``: files and every message
  on stderr. Otherwise, with files, messages at or above ``-stderrthreshold`` (default
  ERROR, as glog) are copied to stderr.
- ``-v N``: glog's verbose logging. ``V(n)`` messages (``vlog(n, ...)`` or
  ``logger.log(v_level(n), ...)``) are shown when ``n <= N``. ``V(1)`` is Python's DEBUG,
  so ``logger.debug`` is shown from ``-v 1``; ``V(n)`` is level ``DEBUG - (n - 1)``
  (down to 1). Verbose messages print with the letter ``I``, as in glog.
- ``-vmodule`` and ``-log_backtrace_at`` are checked as glog checks them
  (``parse_vmodule``, ``parse_backtrace_at``) so command lines written for Seesaw's tools
  work, but they change nothing: logging here has one V level.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import getpass
import logging
import os
import re
import socket
import sys
import threading
import time
from typing import TextIO

__all__ = [
    "DEFAULT_KEEP",
    "DEFAULT_MAX_SIZE",
    "GlogFileHandler",
    "GlogFormatter",
    "flush",
    "parse_backtrace_at",
    "parse_severity",
    "parse_vmodule",
    "setup",
    "shutdown",
    "v_level",
    "vlog",
]

DEFAULT_MAX_SIZE = 64 * 1024 * 1024
RETRY_FAILED_WRITE_S = 1.0
DEFAULT_KEEP = 5
# Lines below WARNING are written to a buffer that a background thread flushes this often
# (and at exit); WARNING and above are flushed at once. A write(2) per line was the largest
# cost of a server's first round: 10,000 "Starting" and 10,000 transition lines. (glog
# buffers its files too, and flushes them every 30 s.)
FLUSH_INTERVAL_S = 0.2
_FLUSH_AT = logging.WARNING

# glog's severities, in glog's numbering (INFO=0 ... FATAL=3).
SEVERITIES = ("INFO", "WARNING", "ERROR", "FATAL")
_PY_LEVEL = {
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
}

_installed: list[logging.Handler] = []
_lock = threading.Lock()


def v_level(n: int) -> int:
    """The Python logging level of glog's ``V(n)``: V(1) is DEBUG, V(2) is DEBUG-1, ..."""
    if n < 1:
        return logging.INFO
    return max(1, logging.DEBUG - (n - 1))


def vlog(n: int, msg: str, *args: object, logger: logging.Logger | None = None) -> None:
    """glog's ``V(n).Infof``: logged only when ``-v`` is at least ``n``."""
    log = logger or logging.getLogger()
    log.log(v_level(n), msg, *args, stacklevel=2)


def parse_severity(value: str | int) -> int:
    """A glog severity (name, any case, or 0-3) as a Python logging level."""
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        index = int(value)
        if not 0 <= index < len(SEVERITIES):
            raise ValueError(f"invalid severity {value!r}: want 0-3 or one of {SEVERITIES}")
        return _PY_LEVEL[SEVERITIES[index]]
    name = value.strip().upper()
    if name not in _PY_LEVEL:
        raise ValueError(f"invalid severity {value!r}: want 0-3 or one of {SEVERITIES}")
    return _PY_LEVEL[name]


def _letter(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "F"
    if levelno >= logging.ERROR:
        return "E"
    if levelno >= logging.WARNING:
        return "W"
    return "I"


# The process id, for every line: asking the kernel per record (as logging does) costs a
# third of a record at the server's start, when it logs a line per new check.
_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


class GlogFormatter(logging.Formatter):
    """``Lmmdd hh:mm:ss.uuuuuu pid file:line] msg``, in local time as glog."""

    # (second, "mmdd hh:mm:ss"): one localtime() per second, not per line. A tuple swapped
    # whole, so handlers on other threads sharing this formatter never see half of it.
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        created = record.created
        second = int(created)
        cached = self._second
        if cached[0] != second:
            t = time.localtime(second)
            cached = (
                second,
                f"{t.tm_mon:02d}{t.tm_mday:02d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}",
            )
            self._second = cached
        micros = int((created - second) * 1_000_000)
        header = (
            f"{_letter(record.levelno)}{cached[1]}.{micros:06d} "
            f"{_pid:7d} {record.filename}:{record.lineno}] "
        )
        text = record.getMessage()
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            text = f"{text}\n{self.formatStack(record.stack_info)}"
        return header + text


def _short_hostname() -> str:
    try:
        name = socket.gethostname()
    except OSError:
        return "unknownhost"
    return name.split(".", 1)[0] or "unknownhost"


def _username() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        return "unknownuser"
    # glog replaces path separators so the name stays one path component.
    return name.replace("\\", "_").replace("/", "_") or "unknownuser"


class GlogFileHandler(logging.Handler):
    """Writes one glog severity's file in ``log_dir``, rotating by size.

    The file is created lazily, on the first record, as glog does; each new file starts
    with glog's four header lines and re-points the ``<program>.<LEVEL>`` symlink.
    """

    def __init__(
        self,
        log_dir: str,
        program: str,
        severity: str,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        super().__init__(_PY_LEVEL[severity])
        if max_size <= 0:
            raise ValueError(f"max_size must be positive, got {max_size}")
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        self.log_dir = log_dir
        self.program = program
        self.severity = severity
        self.max_size = max_size
        self.keep = keep
        self._stream: TextIO | None = None
        self._written = 0
        self._last_stamp = 0
        self.paths: list[str] = []  # files this handler created, oldest first
        self.failing: OSError | None = None  # why the last write failed, until one works
        self._retry_at = 0.0

    def _file_name(self, stamp: int) -> str:
        when = _dt.datetime.fromtimestamp(stamp).strftime("%Y%m%d-%H%M%S")
        return (
            f"{self.program}.{_short_hostname()}.{_username()}.log."
            f"{self.severity}.{when}.{os.getpid()}"
        )

    def _open_new(self) -> TextIO:
        # Two rotations in the same second must not reuse a name.
        stamp = max(int(time.time()), self._last_stamp + 1 if self._last_stamp else 0)
        self._last_stamp = stamp
        name = self._file_name(stamp)
        path = os.path.join(self.log_dir, name)
        stream = open(path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        created = _dt.datetime.fromtimestamp(stamp).strftime("%Y/%m/%d %H:%M:%S")
        header = (
            f"Log file created at: {created}\n"
            f"Running on machine: {_short_hostname()}\n"
            f"Binary: Python {sys.version.split()[0]} for {sys.platform}\n"
            "Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg\n"
        )
        stream.write(header)
        self._written = len(header.encode("utf-8"))
        link = os.path.join(self.log_dir, f"{self.program}.{self.severity}")
        try:
            tmp = f"{link}.{os.getpid()}.tmp"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(name, tmp)
            os.replace(tmp, link)  # atomic: readers never see the link missing
        except OSError:
            pass  # glog also ignores a failed symlink: the log file itself is what matters
        self.paths.append(path)
        while len(self.paths) > self.keep + 1:
            old = self.paths.pop(0)
            with contextlib.suppress(OSError):
                os.unlink(old)
        return stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            size = len(line.encode("utf-8", "backslashreplace"))
            with _lock_for(self):
                if self.failing is not None and time.monotonic() < self._retry_at:
                    return  # the disk is full (or gone): drop, and try again in a while
                try:
                    if self._stream is not None and self._written + size > self.max_size:
                        self._stream.close()
                        self._stream = None
                    if self._stream is None:
                        self._stream = self._open_new()
                    self._stream.write(line)
                    # A retry counts only once its bytes are in the file: buffered, a full
                    # disk would fail only at the next flush, after "again" was said.
                    if record.levelno >= _FLUSH_AT or self.failing is not None:
                        self._stream.flush()
                except OSError as err:
                    self._failed(err)
                    return
                self._written += size
                if self.failing is not None:
                    self.failing = None
                    _say(f"writing {self.severity} log files in {self.log_dir} again")
        except Exception:
            self.handleError(record)

    def _failed(self, err: OSError) -> None:
        """A write failed: say so once (on stderr: the log is what failed), drop the
        stream, and drop lines until a retry a second later works. Checks go on."""
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.close()
        self._retry_at = time.monotonic() + RETRY_FAILED_WRITE_S
        if self.failing is None:
            self.failing = err
            _say(
                f"cannot write the {self.severity} log in {self.log_dir}: "
                f"{err.strerror or err}; dropping its lines until it can"
            )

    def reopen(self) -> None:
        """Start a new file with the next line (SIGHUP: logrotate moved the old one)."""
        with _lock_for(self):
            stream, self._stream = self._stream, None
            if stream is not None:
                try:
                    stream.close()
                except OSError as err:
                    self._failed(err)

    def flush(self) -> None:
        with _lock_for(self):
            if self._stream is not None:
                try:
                    self._stream.flush()
                except OSError as err:
                    self._failed(err)

    def close(self) -> None:
        with _lock_for(self):
            if self._stream is not None:
                with contextlib.suppress(OSError):
                    self._stream.close()
                self._stream = None
        super().close()


def _say(text: str) -> None:
    """A line about logging itself, straight to stderr."""
    with contextlib.suppress(OSError, ValueError):
        sys.__stderr__.write(f"seesaw_healthcheck: {text}\n")  # type: ignore[union-attr]
        sys.__stderr__.flush()  # type: ignore[union-attr]


def reopen() -> None:
    """Every log file ``setup`` opened starts anew with its next line (SIGHUP)."""
    with _lock:
        handlers = [h for h in _installed if isinstance(h, GlogFileHandler)]
    for handler in handlers:
        handler.reopen()


class _StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Like logging's, but a write per record, not a flush: see ``FLUSH_INTERVAL_S``."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + "\n")  # handle() holds our lock
            if record.levelno >= _FLUSH_AT:
                self.stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _buffered_stderr() -> TextIO:
    """A block-buffered writer on fd 2 (sys.stderr is line-buffered: a write per line),
    or sys.stderr itself where it has no fd (a test capturing it)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return sys.stderr
    # Lives as long as the handler; closefd=False leaves fd 2 open.
    return open(
        fd, "w", buffering=1 << 16, encoding="utf-8", errors="backslashreplace", closefd=False
    )


def flush() -> None:
    """Write out what the handlers ``setup`` installed have buffered."""
    with _lock:
        handlers = list(_installed)
    for handler in handlers:
        with contextlib.suppress(Exception):
            handler.flush()


def _flush_installed() -> None:
    while True:
        time.sleep(FLUSH_INTERVAL_S)
        flush()


_flusher: threading.Thread | None = None


def _lock_for(handler: logging.Handler) -> threading.RLock:
    lock = handler.lock
    assert lock is not None  # created by Handler.__init__
    return lock


def shutdown() -> None:
    """Remove and close the handlers ``setup`` installed (for tests and clean exits)."""
    root = logging.getLogger()
    with _lock:
        for handler in _installed:
            root.removeHandler(handler)
            with contextlib.suppress(Exception):
                handler.flush()
            handler.close()
        _installed.clear()


def setup(
    program: str,
    log_dir: str | None = None,
    logtostderr: bool = False,
    alsologtostderr: bool = False,
    verbosity: int = 0,
    stderrthreshold: str | int = "ERROR",
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    keep: int = DEFAULT_KEEP,
    stderr: TextIO | None = None,
) -> None:
    """Configure the root logger like glog's flags do (see the module docstring).

    Raises ``ValueError`` with a clear message for a bad severity or verbosity, and
    ``OSError`` if ``log_dir`` is not a writable directory. Calling it again replaces
    the previous configuration.
    """
    if verbosity < 0:
        raise ValueError(f"invalid -v {verbosity}: must be >= 0")
    threshold = parse_severity(stderrthreshold)
    program = os.path.basename(program) or "python"
    if log_dir and not logtostderr:
        if not os.path.isdir(log_dir):
            raise OSError(f"-log_dir {log_dir!r} is not a directory")
        if not os.access(log_dir, os.W_OK | os.X_OK):
            raise OSError(f"-log_dir {log_dir!r} is not writable")
    shutdown()
    # Nothing we print uses them, and each costs a call per record.
    logging.logProcesses = False
    logging.logThreads = False
    logging.logMultiprocessing = False
    formatter = GlogFormatter()
    handlers: list[logging.Handler] = []
    to_stderr = _StreamHandler(stderr if stderr is not None else _buffered_stderr())
    to_stderr.setFormatter(formatter)
    if log_dir and not logtostderr:
        for severity in ("INFO", "WARNING", "ERROR"):
            file_handler = GlogFileHandler(log_dir, program, severity, max_size=max_size, keep=keep)
            if severity == "INFO":
                file_handler.setLevel(1)  # V(n) messages go to the INFO file too
            file_handler.setFormatter(formatter)
            handlers.append(file_handler)
        if not alsologtostderr:
            to_stderr.setLevel(threshold)
    handlers.append(to_stderr)
    root = logging.getLogger()
    root.setLevel(v_level(verbosity) if verbosity >= 1 else logging.INFO)
    with _lock:
        for handler in handlers:
            root.addHandler(handler)
            _installed.append(handler)
    global _flusher
    if _flusher is None:
        _flusher = threading.Thread(target=_flush_installed, name="glog-flush", daemon=True)
        _flusher.start()


# --- glog's two flags that take a syntax of their own --------------------------------

_ATOI = re.compile(r"[+-]?[0-9]+")  # strconv.Atoi's syntax (no spaces, no underscores)
_VMODULE_SYNTAX = "syntax error: expect comma-separated list of filename=N"
_TRACE_SYNTAX = "syntax error: expect file.go:234"


def parse_vmodule(value: str) -> dict[str, int]:
    """glog's ``-vmodule``: ``pattern=N,...`` (empty items skipped, N >= 0) as a dict.

    ``ValueError`` with glog's reason, which Go's flag package prints after the value.
    """
    levels: dict[str, int] = {}
    for item in value.split(","):
        if not item:
            continue
        pattern, *rest = item.split("=")
        if len(rest) != 1 or not pattern or not _ATOI.fullmatch(rest[0]):
            raise ValueError(_VMODULE_SYNTAX)
        level = int(rest[0])
        if level < 0:
            raise ValueError("negative value for vmodule level")
        levels[pattern] = level
    return levels


def parse_backtrace_at(value: str) -> tuple[str, int] | None:
    """glog's ``-log_backtrace_at``: ``file.go:N`` (N > 0), or None for ""."""
    if not value:
        return None
    fields = value.split(":")
    if len(fields) != 2 or "." not in fields[0] or not _ATOI.fullmatch(fields[1]):
        raise ValueError(_TRACE_SYNTAX)
    line = int(fields[1])
    if line <= 0:
        raise ValueError("negative or zero value for level")
    return fields[0], line
