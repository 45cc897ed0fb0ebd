"""``seesaw-healthcheck-status`` against the fixture server of the /status contract
(tests/peers/status_fixture.py) over real loopback HTTP: the Nagios summary and exit
statuses, the table fitted to a width, filters, --json, and every way the server can fail."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import free_port
from tests.peers.status_fixture import StatusFixture

from seesaw_healthcheck.cli import status as cli


@pytest.fixture
def fixture() -> Iterator[StatusFixture]:
    with StatusFixture(20, seed=3) as server:
        # At least two unhealthy checks, whatever the seed drew.
        for check_id in random.Random().sample(server.ids(), 2):
            server.set_state(check_id, "unhealthy", f"dial tcp4: refused ({check_id % 1000})")
        yield server


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def expected_summary(fixture: StatusFixture, word: str = "OK") -> str:
    h, u, k = (fixture.count(s) for s in ("healthy", "unhealthy", "unknown"))
    return f"{word} - {h + u + k} checks: {h} healthy, {u} unhealthy, {k} unknown"


def table_rows(lines: list[str]) -> tuple[str, dict[str, str]]:
    """The table's header line and its rows keyed by check id."""
    start = next(i for i, line in enumerate(lines) if line.startswith("ID "))
    return lines[start], {line.split()[0]: line for line in lines[start + 1 :]}


def test_summary_line_and_a_row_per_check_aligned(
    fixture: StatusFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = run(capsys, "--url", fixture.url, "--width", "0")
    assert code == cli.OK
    assert lines[0] == expected_summary(fixture)
    assert lines[1].startswith("server 0.1.0, pid 4242, config engine, 1 worker; last fetch ")
    header, rows = table_rows(lines)
    assert set(rows) == {str(i) for i in fixture.checks}  # uint64 ids, exact
    state_at = header.index("STATE")
    message_at = header.index("MESSAGE")
    for check_id, check in fixture.checks.items():
        row = rows[str(check_id)]
        assert row[state_at:].split()[0] == check["state"]
        assert row[message_at:] == check["message"]
    assert err == ""


def test_table_fits_the_width(fixture: StatusFixture, capsys: pytest.CaptureFixture[str]) -> None:
    code, narrow, _ = run(capsys, "--url", fixture.url, "--width", "80")
    assert code == cli.OK
    assert max(len(line) for line in narrow) <= 80
    header, rows = table_rows(narrow)
    assert header.split() == ["ID", "TYPE", "TARGET", "STATE", "MESSAGE"]
    assert set(rows) == {str(i) for i in fixture.checks}
    assert any(row.endswith("...") for row in rows.values())  # long messages are cut

    _, wide, _ = run(capsys, "--url", fixture.url, "--width", "250")
    assert max(len(line) for line in wide) <= 250
    header, rows = table_rows(wide)
    assert "DESCRIPTION" in header and "CONSEC" in header
    desc_at = header.index("DESCRIPTION")
    for check_id, check in fixture.checks.items():
        assert rows[str(check_id)][desc_at:].startswith(check["description"])


@pytest.mark.parametrize(
    ("warn", "crit", "want"),
    [
        (None, None, cli.OK),
        (0, None, cli.WARNING),  # 0: the number of unhealthy checks
        (1, None, cli.OK),  # 1: one more than that
        (None, 0, cli.CRITICAL),
        (-1, 0, cli.CRITICAL),  # critical wins over warning
        (-1, 1, cli.WARNING),
    ],
)
def test_nagios_exit_status(
    fixture: StatusFixture,
    capsys: pytest.CaptureFixture[str],
    warn: int | None,
    crit: int | None,
    want: int,
) -> None:
    unhealthy = fixture.count("unhealthy")
    argv = ["--url", fixture.url]
    if warn is not None:
        argv += ["--warn-unhealthy", str(unhealthy + warn)]
    if crit is not None:
        argv += ["--crit-unhealthy", str(unhealthy + crit)]
    code, lines, _ = run(capsys, *argv)
    assert code == want
    assert lines[0] == expected_summary(fixture, cli.STATUS_NAMES[want])


def test_filters_select_checks_on_the_server(
    fixture: StatusFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    unhealthy = {str(i) for i, c in fixture.checks.items() if c["state"] == "unhealthy"}
    code, lines, _ = run(
        capsys, "--url", fixture.url, "--state", "unhealthy", "--warn-unhealthy", "2"
    )
    assert code == cli.WARNING
    n = len(unhealthy)
    assert lines[0] == f"WARNING - {n} checks: 0 healthy, {n} unhealthy, 0 unknown"
    assert set(table_rows(lines)[1]) == unhealthy

    dns = {str(i) for i, c in fixture.checks.items() if c["type"] == "dns"}
    _, lines, _ = run(capsys, "--url", fixture.url, "--type", "dns")
    assert set(table_rows(lines)[1]) == dns

    check_id, check = random.Random().choice(list(fixture.checks.items()))
    _, lines, _ = run(capsys, "--url", fixture.url, "--ip", check["target"]["ip"])
    assert list(table_rows(lines)[1]) == [str(check_id)]


def test_json_prints_the_answer_as_is(
    fixture: StatusFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = run(capsys, "--url", fixture.url, "--json", "--crit-unhealthy", "1")
    assert code == cli.CRITICAL  # the thresholds still decide the exit status
    document = json.loads("\n".join(lines))
    assert [c["id"] for c in document["checks"]] == fixture.ids()
    assert {c["id"]: c["state"] for c in document["checks"]} == {
        i: c["state"] for i, c in fixture.checks.items()
    }


def test_sort_by_state_puts_unhealthy_first(
    fixture: StatusFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines, _ = run(capsys, "--url", fixture.url, "--sort", "state", "--width", "0")
    order = {"unhealthy": 0, "unknown": 1, "healthy": 2}
    want = sorted(fixture.checks.values(), key=lambda c: (order[c["state"]], c["id"]))
    assert list(table_rows(lines)[1]) == [str(c["id"]) for c in want]


def test_control_characters_in_a_message_are_escaped(
    fixture: StatusFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    check_id = fixture.ids()[0]
    fixture.set_state(check_id, "unhealthy", "got \x1b[31mred\x1b[0m\r\nbanner")
    _, lines, _ = run(capsys, "--url", fixture.url, "--width", "0")
    row = table_rows(lines)[1][str(check_id)]
    assert row.endswith("got \\x1b[31mred\\x1b[0m\\r\\nbanner")
    assert not any("\x1b" in line or "\r" in line for line in lines)


def test_unreachable_server_is_critical_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    code, lines, err = run(capsys, "--url", f"127.0.0.1:{port}")
    assert code == cli.CRITICAL
    assert lines == [f"CRITICAL - cannot reach http://127.0.0.1:{port}/status: connection refused"]
    assert err.count("\n") == 1 and "connection refused" in err


def test_silent_server_is_critical_after_the_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as listener:  # accepts connections (the kernel does) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        code, lines, err = run(capsys, "--url", f"http://127.0.0.1:{port}", "--timeout", "0.3")
    assert code == cli.CRITICAL
    assert lines == [f"CRITICAL - cannot reach http://127.0.0.1:{port}/status: timed out"]
    assert "timed out" in err


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ((200, b"<html>not json</html>"), "is not JSON"),
        ((200, b'{"checks": 5}'), "is not a /status document"),
        ((200, b'{"checks": [1]}'), "is not a /status document"),
        ((500, b'{"error": "status table locked"}'), "HTTP 500 from "),
        ((503, b"overloaded"), "HTTP 503 from "),
    ],
)
def test_bad_answer_is_critical(
    fixture: StatusFixture,
    capsys: pytest.CaptureFixture[str],
    answer: tuple[int, bytes],
    reason: str,
) -> None:
    fixture.broken = answer
    code, lines, err = run(capsys, "--url", fixture.url)
    assert code == cli.CRITICAL
    assert len(lines) == 1 and lines[0].startswith("CRITICAL - ") and reason in lines[0]
    if b"error" in answer[1]:
        assert lines[0].endswith(": status table locked")
    assert reason in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--state", "sick"],
        ["--type", "smtp"],
        ["--ip", "10.0.0"],
        ["--warn-unhealthy", "0"],
        ["--crit-unhealthy", "many"],
        ["--timeout", "-1"],
        ["--url", "ftp://127.0.0.1/"],
        ["--width", "-5"],
    ],
)
def test_bad_command_line_is_unknown(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    try:
        code = cli.main(argv)
    except SystemExit as exited:  # argparse's errors
        code = exited.code
    assert code == cli.UNKNOWN
    assert "error:" in capsys.readouterr().err


def test_console_script(fixture: StatusFixture) -> None:
    script = Path(sys.executable).parent / "seesaw-healthcheck-status"
    done = subprocess.run(
        [str(script), "--url", fixture.url, "--warn-unhealthy", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C", "COLUMNS": "100"},
        check=False,
    )
    assert done.returncode == cli.WARNING, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == expected_summary(fixture, "WARNING")
    assert max(len(line) for line in lines) <= 100  # $COLUMNS when not on a terminal
    assert set(table_rows(lines)[1]) == {str(i) for i in fixture.checks}
