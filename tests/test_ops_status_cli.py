"""``seesaw-healthcheck-status`` against the real server (tests/live_server.py): the table
holds every check with its state and message, the filters select on the server, the exit
status is a Nagios plugin's (0/1/2 on ``--warn-unhealthy`` / ``--crit-unhealthy``, also
after a target flips), and 2 once the server is gone."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.live_server import Fleet, running_fleet, states_of, status_view, wait_until

from seesaw_healthcheck.cli import status as cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def table(lines: list[str]) -> tuple[str, dict[int, str]]:
    """The header line and the rows by check id."""
    start = next(i for i, line in enumerate(lines) if line.startswith("ID "))
    return lines[start], {int(line.split()[0]): line for line in lines[start + 1 :]}


def summary(word: str, states: list[str]) -> str:
    h, u, k = (states.count(s) for s in ("healthy", "unhealthy", "unknown"))
    return f"{word} - {len(states)} checks: {h} healthy, {u} unhealthy, {k} unknown"


def selected(fleet: Fleet, state: str | None = None, kind: str | None = None) -> set[int]:
    return {
        i
        for i, s in fleet.expected().items()
        if (state is None or s == state) and (kind is None or fleet.kinds[i] == kind)
    }


def test_status_command_against_the_real_server(
    short_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_fleet(short_tmp) as (fleet, server):
        url = server.url
        wait_until(lambda: status_view(server.status()) == server.engine_view(), 5, "agreement")
        document = server.status()
        expected = fleet.expected()
        states = list(expected.values())

        code, lines, err = run(capsys, "--url", url, "--width", "0")
        assert (code, err) == (cli.OK, "")
        assert lines[0] == summary("OK", states)
        assert lines[1].startswith(f"server 0.1.0, pid {server.pid}, config engine, 1 worker; ")
        assert re.search(r"; last fetch \d+s ago; last notification \d+s ago; ", lines[1])
        header, rows = table(lines)
        assert list(rows) == sorted(fleet.ids)
        state_at, message_at = header.index("STATE"), header.index("MESSAGE")
        for check in document["checks"]:
            row = rows[check["id"]]
            assert row[state_at:].split()[0] == expected[check["id"]]
            problem = check["problem"]
            assert row[message_at:] == (
                f"config problem: {problem}" if problem else check["message"]
            )

        # Filters, applied by the server.
        unhealthy = selected(fleet, "unhealthy")
        code, lines, _ = run(capsys, "--url", url, "--state", "unhealthy")
        assert code == cli.OK and lines[0] == summary("OK", ["unhealthy"] * len(unhealthy))
        assert set(table(lines)[1]) == unhealthy
        assert set(table(run(capsys, "--url", url, "--type", "dns")[1])[1]) == selected(
            fleet, kind="dns"
        )
        v6 = {c["id"] for c in fleet.configs if c.get("ip") == "::1"}
        assert set(table(run(capsys, "--url", url, "--ip", "::1")[1])[1]) == v6
        both = run(capsys, "--url", url, "--state", "healthy", "--type", "tcp")[1]
        assert set(table(both)[1]) == selected(fleet, "healthy", "tcp")

        # Exit statuses: thresholds count the unhealthy checks selected.
        u = len(unhealthy)
        for argv, want in [
            (["--warn-unhealthy", str(u)], cli.WARNING),
            (["--warn-unhealthy", str(u + 1)], cli.OK),
            (["--crit-unhealthy", str(u)], cli.CRITICAL),
            (["--warn-unhealthy", "1", "--crit-unhealthy", str(u + 1)], cli.WARNING),
            (["--state", "healthy", "--crit-unhealthy", "1"], cli.OK),
            (["--type", "dns", "--warn-unhealthy", "1", "--crit-unhealthy", "2"], cli.WARNING),
        ]:
            code, lines, _ = run(capsys, "--url", url, *argv)
            assert code == want, (argv, lines[0])
            assert lines[0].startswith(cli.STATUS_NAMES[want] + " - "), (argv, lines[0])

        # A target goes down: one more unhealthy check, and the plugin goes critical.
        healthy_toggle = next(i for i in fleet.toggles if fleet.is_on(i))
        fleet.flip(healthy_toggle)
        wait_until(
            lambda: states_of(status_view(server.status())) == fleet.expected(), 5, "the flip"
        )
        code, lines, _ = run(capsys, "--url", url, "--crit-unhealthy", str(u + 1))
        assert code == cli.CRITICAL
        assert lines[0] == summary("CRITICAL", list(fleet.expected().values()))
        row = table(run(capsys, "--url", url, "--width", "0")[1])[1][healthy_toggle]
        assert "unhealthy" in row.split() and row.endswith("connect: connection refused")

        code, lines, _ = run(capsys, "--url", url, "--json", "--warn-unhealthy", "1")
        assert code == cli.WARNING
        answer = json.loads("\n".join(lines))
        assert {c["id"]: c["state"] for c in answer["checks"]} == fleet.expected()

        # The installed command, as a monitoring system runs it.
        script = Path(sys.executable).parent / "seesaw-healthcheck-status"
        done = subprocess.run(
            [str(script), "--url", url, "--warn-unhealthy", "1", "--crit-unhealthy", "100"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "LANG": "C", "COLUMNS": "100"},
            check=False,
        )
        assert done.returncode == cli.WARNING, done.stderr
        assert done.stdout.splitlines()[0] == summary("WARNING", list(fleet.expected().values()))
        assert max(len(line) for line in done.stdout.splitlines()) <= 100

    # The server is gone: critical, with the reason.
    code, lines, err = run(capsys, "--url", url)
    assert code == cli.CRITICAL
    assert lines == [f"CRITICAL - cannot reach {url}/status: connection refused"]
    assert "connection refused" in err
