"""``contrib/seesaw-healthcheck.service``: its key settings (parsed with configparser), its
ExecStart flags as the server parses them, Debian's ``systemd-analyze verify`` and
``security`` on it, and the real server running with exactly the unit's capabilities
(``setpriv``, util-linux): ping (raw ICMP) and a marked TCP check work with them and fail
without them."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.live_server import LiveServer, states_of, wait_until
from tests.responders.tcp import TCPResponder
from tests.test_server_integration import tcp_config

from seesaw_healthcheck import __version__

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "contrib" / "seesaw-healthcheck.service"
BINARY = "/opt/seesaw-healthcheck/bin/seesaw-healthcheck"
CAPABILITIES = {"CAP_NET_RAW", "CAP_NET_ADMIN"}
# The most systemd-analyze may rate the unit's exposure, in tenths (0 safe .. 100 exposed;
# the unit rates 2.6 "OK", the unhardened default 9.6 "UNSAFE").
MAX_EXPOSURE_TENTHS = 35


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def test_unit_key_settings() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    watchdog = service["WatchdogSec"]
    assert watchdog.endswith("s") and int(watchdog[:-1]) >= 5  # pings every half of it
    command = shlex.split(service["ExecStart"])
    assert command[0] == BINARY
    assert "-log_dir=/var/log/seesaw" in command[1:]
    # Read-only everywhere but the log directory (LogsDirectory= makes /var/log/seesaw).
    assert service["ProtectSystem"] == "strict"
    assert service["LogsDirectory"] == "seesaw"
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert service[key] == "yes", key
    # Raw ICMP sockets and SO_MARK, nothing more.
    assert set(service["CapabilityBoundingSet"].split()) == CAPABILITIES
    assert set(service["AmbientCapabilities"].split()) == CAPABILITIES
    assert set(service["RestrictAddressFamilies"].split()) == {
        "AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"
    }  # fmt: skip
    assert int(service["LimitNOFILE"]) >= 65536
    # Nothing keeps the engine's socket (under /var/run) from being reached.
    for key in ("InaccessiblePaths", "PrivateNetwork", "IPAddressDeny", "User", "DynamicUser"):
        assert key not in service, key
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def test_exec_start_flags_are_the_servers() -> None:
    command = shlex.split(unit()["Service"]["ExecStart"])
    script = Path(sys.executable).parent / Path(BINARY).name
    done = subprocess.run(
        [str(script), *command[1:], "-version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines()[0] == f"seesaw-healthcheck {__version__}"


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        raise AssertionError(
            "systemd-analyze not found: install Debian's systemd package (make test does)"
        )
    return path


def local_copy(tmp: Path) -> Path:
    """The unit with ExecStart naming this virtualenv's command (verify wants it to exist)."""
    script = Path(sys.executable).parent / Path(BINARY).name
    copy = tmp / UNIT.name
    copy.write_text(UNIT.read_text().replace(BINARY, str(script)))
    return copy


def test_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    analyze = systemd_analyze()
    copy = local_copy(tmp_path)
    done = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    # Any warning (an unknown or misspelt key, a bad value) counts as a failure.
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    done = subprocess.run(
        [analyze, "security", "--offline=yes", f"--threshold={MAX_EXPOSURE_TENTHS}", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "Overall exposure level" in done.stdout


def effective_capabilities(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no CapEff in /proc/{pid}/status")


CAP_NET_ADMIN, CAP_NET_RAW = 12, 13


@pytest.mark.slow
@pytest.mark.parametrize("allowed", [True, False], ids=["unit-capabilities", "none"])
def test_checks_run_with_the_units_capabilities(short_tmp: Path, allowed: bool) -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv is not None, "setpriv not found: Debian's util-linux has it"
    if effective_capabilities(os.getpid()) & (1 << CAP_NET_RAW | 1 << CAP_NET_ADMIN) != (
        1 << CAP_NET_RAW | 1 << CAP_NET_ADMIN
    ):
        raise AssertionError("the tests need CAP_NET_RAW and CAP_NET_ADMIN themselves")
    bounding = "-all,+net_raw,+net_admin" if allowed else "-all"
    prefix = [setpriv, f"--bounding-set={bounding}", "--no-new-privs", "--"]
    with TCPResponder("127.0.0.1") as tcp:
        configs = [
            {"id": 1, "interval": "200ms", "timeout": "300ms", "type": "ping", "ip": "127.0.0.1"},
            tcp_config(2, tcp.port, mark=7),
            tcp_config(3, tcp.port),
        ]
        with LiveServer(short_tmp, configs, prefix=prefix) as server:
            wait_until(lambda: len(server.engine_view()) == 3, 10, "three checks reported")
            want = "healthy" if allowed else "unhealthy"
            wait_until(
                lambda: states_of(server.engine_view()) == {1: want, 2: want, 3: "healthy"},
                10,
                f"ping and the marked check {want}",
            )
            view = server.engine_view()
            pids = [server.pid, *server.stats()["worker_pids"]]
            capabilities = {effective_capabilities(pid) for pid in pids}
    expected = (1 << CAP_NET_RAW | 1 << CAP_NET_ADMIN) if allowed else 0
    assert capabilities == {expected}
    if not allowed:
        assert "operation not permitted" in view[1][1].lower(), view[1]
        assert "failed to set mark" in view[2][1], view[2]
