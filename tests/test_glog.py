"""glog-style logging: line format, file names, symlinks, levels, rotation."""

from __future__ import annotations

import io
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seesaw_healthcheck.cli import glog

LINE = re.compile(
    r"^([IWEF])(\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6}) +(\d+) ([^:]+):(\d+)\] (.*)$"
)
FILE_NAME = re.compile(
    r"^(?P<prog>[^.]+)\.(?P<host>[^.]+)\.(?P<user>[^.]+)\.log\."
    r"(?P<level>INFO|WARNING|ERROR)\.(?P<stamp>\d{8}-\d{6})\.(?P<pid>\d+)$"
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    glog.shutdown()
    root.setLevel(level)


def _files(log_dir: Path, level: str) -> list[Path]:
    return sorted(p for p in log_dir.iterdir() if f".log.{level}." in p.name)


def test_line_format_on_stderr() -> None:
    out = io.StringIO()
    glog.setup("prog", stderr=out)
    logging.getLogger("x").warning("hello %s", "world")
    line = out.getvalue().rstrip("\n")
    m = LINE.match(line)
    assert m, line
    assert m.group(1) == "W"
    assert int(m.group(8)) == os.getpid()
    assert m.group(9) == "test_glog.py"
    assert m.group(11) == "hello world"


def test_files_named_like_glog_with_symlinks(tmp_path: Path) -> None:
    err = io.StringIO()
    glog.setup("/usr/local/seesaw/seesaw_healthcheck", str(tmp_path), stderr=err)
    log = logging.getLogger("t")
    log.info("just info")
    # glog creates a severity's file on its first message only.
    assert _files(tmp_path, "INFO") and not _files(tmp_path, "WARNING")
    log.warning("a warning")
    log.error("an error")
    for level in ("INFO", "WARNING", "ERROR"):
        (path,) = _files(tmp_path, level)
        m = FILE_NAME.match(path.name)
        assert m, path.name
        assert m.group("prog") == "seesaw_healthcheck"
        assert int(m.group("pid")) == os.getpid()
        link = tmp_path / f"seesaw_healthcheck.{level}"
        assert link.is_symlink() and os.readlink(link) == path.name
    info = (tmp_path / "seesaw_healthcheck.INFO").read_text()
    warning = (tmp_path / "seesaw_healthcheck.WARNING").read_text()
    error = (tmp_path / "seesaw_healthcheck.ERROR").read_text()
    assert info.startswith("Log file created at: ")
    assert "just info" in info and "a warning" in info and "an error" in info
    assert "just info" not in warning and "a warning" in warning and "an error" in warning
    assert "a warning" not in error and "an error" in error
    # stderrthreshold defaults to ERROR when logging to files.
    assert "an error" in err.getvalue() and "a warning" not in err.getvalue()


def test_alsologtostderr_and_logtostderr(tmp_path: Path) -> None:
    err = io.StringIO()
    glog.setup("p", str(tmp_path), alsologtostderr=True, stderr=err)
    logging.getLogger().info("both places")
    glog.flush()  # INFO lines are buffered (see the next test)
    assert "both places" in err.getvalue()
    assert "both places" in (tmp_path / "p.INFO").read_text()
    glog.shutdown()

    only = tmp_path / "only"
    only.mkdir()
    err2 = io.StringIO()
    glog.setup("p", str(only), logtostderr=True, stderr=err2)
    logging.getLogger().info("stderr only")
    assert "stderr only" in err2.getvalue()
    assert list(only.iterdir()) == []


def test_info_is_written_within_the_flush_interval_warnings_at_once(tmp_path: Path) -> None:
    """INFO lines go to a buffer a background thread flushes every FLUSH_INTERVAL_S (a
    write per line was the server's largest start-up cost); WARNING and above at once."""
    glog.setup("p", str(tmp_path), stderr=io.StringIO())
    log = logging.getLogger()
    log.info("buffered line")
    started = time.monotonic()
    log.warning("urgent line")
    text = (tmp_path / "p.INFO").read_text()
    assert "urgent line" in text and "buffered line" in text  # a warning flushes all
    log.info("later line")
    deadline = started + glog.FLUSH_INTERVAL_S * 3 + 1.0
    while "later line" not in (tmp_path / "p.INFO").read_text():
        assert time.monotonic() < deadline, "the INFO line was never flushed"
        time.sleep(0.02)


def test_buffered_lines_are_written_at_shutdown(tmp_path: Path) -> None:
    glog.setup("p", str(tmp_path), stderr=io.StringIO())
    logging.getLogger().info("last words")
    glog.shutdown()
    assert "last words" in (tmp_path / "p.INFO").read_text()


def test_verbosity_levels() -> None:
    out = io.StringIO()
    glog.setup("p", verbosity=2, stderr=out)
    glog.vlog(1, "v one")
    glog.vlog(2, "v two")
    glog.vlog(3, "v three")
    logging.getLogger().debug("debug is v1")
    text = out.getvalue()
    assert "v one" in text and "v two" in text and "debug is v1" in text
    assert "v three" not in text
    assert all(line.startswith("I") for line in text.splitlines())

    glog.shutdown()
    quiet = io.StringIO()
    glog.setup("p", verbosity=0, stderr=quiet)
    glog.vlog(1, "hidden")
    logging.getLogger().info("shown")
    assert "hidden" not in quiet.getvalue() and "shown" in quiet.getvalue()


def test_rotation_bounds_files(tmp_path: Path) -> None:
    glog.setup("rot", str(tmp_path), max_size=2000, keep=2, stderr=io.StringIO())
    log = logging.getLogger()
    for i in range(200):  # ~100 bytes a line: about ten rotations
        log.info("line %04d %s", i, "x" * 60)
    glog.flush()
    files = _files(tmp_path, "INFO")
    assert len(files) == 3  # the current one plus two old ones
    for path in files:
        assert path.stat().st_size <= 2000
    newest = (tmp_path / "rot.INFO").resolve()
    assert newest == max(files, key=lambda p: p.name)
    assert "line 0199" in newest.read_text()


@pytest.mark.parametrize("bad", ["LOUD", 7, "-1"])
def test_bad_threshold_is_a_clear_error(bad: str | int) -> None:
    with pytest.raises(ValueError, match="invalid severity"):
        glog.setup("p", stderrthreshold=bad)


def test_bad_log_dir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="not a directory"):
        glog.setup("p", str(tmp_path / "missing"))
    assert glog.parse_severity("warning") == logging.WARNING
    assert glog.parse_severity(0) == logging.INFO


@pytest.mark.parametrize(
    ("text", "levels"),
    [("", {}), ("probe=2", {"probe": 2}), ("a*=1,,b=0,", {"a*": 1, "b": 0}), ("x=+3", {"x": 3})],
)
def test_vmodule_syntax_is_glogs(text: str, levels: dict[str, int]) -> None:
    assert glog.parse_vmodule(text) == levels


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("probe", "syntax error: expect comma-separated list of filename=N"),
        ("=1", "syntax error: expect comma-separated list of filename=N"),
        ("a=1=2", "syntax error: expect comma-separated list of filename=N"),
        ("a= 1", "syntax error: expect comma-separated list of filename=N"),
        ("a=1_0", "syntax error: expect comma-separated list of filename=N"),
        ("a=-1", "negative value for vmodule level"),
    ],
)
def test_vmodule_refusals(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        glog.parse_vmodule(text)


def test_backtrace_at_syntax_is_glogs() -> None:
    assert glog.parse_backtrace_at("") is None
    assert glog.parse_backtrace_at("probe.go:12") == ("probe.go", 12)
    for bad in ("probe:12", "probe.go", "a.go:1:2", "a.go:x"):
        with pytest.raises(ValueError, match=r"^syntax error: expect file\.go:234$"):
            glog.parse_backtrace_at(bad)
    with pytest.raises(ValueError, match=r"^negative or zero value for level$"):
        glog.parse_backtrace_at("a.go:0")
