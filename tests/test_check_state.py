"""Seesaw's check state machine (core.go healthcheck()), the Status the control process
builds from a check's numbers, and the config checks."""

from __future__ import annotations

import pytest

from seesaw_healthcheck.control.config import ConfigError, ServerConfig
from seesaw_healthcheck.control.table import make_status
from seesaw_healthcheck.model import (
    Config,
    Mode,
    State,
    Status,
    Target,
    TCPChecker,
    UDPChecker,
    config_problem,
    ip_to_bytes,
)
from seesaw_healthcheck.worker.check import Check

H, U, K = State.HEALTHY, State.UNHEALTHY, State.UNKNOWN


def run_sequence(retries: int, outcomes: str) -> list[tuple[State, bool]]:
    """Feed 's'/'f' outcomes; return (state, transitioned) after each."""
    check = Check(1, retries)
    seen = []
    for n, outcome in enumerate(outcomes, 1):
        changed = check.record(outcome == "s", f"r{n}", n, 1_700_000_000_000_000_000 + n)
        seen.append((State(check.state), changed))
    return seen


@pytest.mark.parametrize(
    ("retries", "outcomes", "states", "notifies"),
    [
        # First failure of a never-healthy check is Unhealthy at once, whatever the retries.
        (3, "f", [U], [True]),
        (0, "s", [H], [True]),
        # Retries 0: the first failure after Healthy flips.
        (0, "sfs", [H, U, H], [True, True, True]),
        # Retries 2: two failures tolerated, the third flips; one success recovers.
        (2, "sfffs", [H, H, H, U, H], [True, False, False, True, True]),
        # A success in between resets the consecutive count.
        (2, "sffsfff", [H, H, H, H, H, H, U], [True, False, False, False, False, False, True]),
        # Once Unhealthy, failures keep it Unhealthy without notifying.
        (1, "sfff", [H, H, U, U], [True, False, True, False]),
    ],
)
def test_retries_table(retries: int, outcomes: str, states: list[State], notifies: list[bool]):
    seen = run_sequence(retries, outcomes)
    assert [s for s, _ in seen] == states
    assert [n for _, n in seen] == notifies


def status_of(check: Check) -> Status:
    return make_status(
        check.state,
        check.last_message,
        check.last_start_unix_ns,
        check.last_duration_ns,
        check.failures,
        check.successes,
    )


def test_counters_and_status():
    check = Check(7, retries=1)
    assert status_of(check).state == K
    assert status_of(check).last_check.is_zero
    check.record(True, "ok", 1500, 1_700_000_000_123_456_789)
    check.record(False, "refused", 2500, 1_700_000_001_000_000_000)
    status = status_of(check)
    assert (status.successes, status.failures, status.state) == (1, 1, H)
    assert status.message == "refused"
    assert status.duration == 2500
    assert status.last_check.unix_ns == 1_700_000_001_000_000_000
    # Local zone, as Go's time.Now(): never the UTC marker (None), even on a UTC machine.
    assert status.last_check.offset is not None
    assert check.retrying


def tcp_config(**overrides: object) -> Config:
    target = Target(ip=ip_to_bytes("127.0.0.1"), port=80, proto=6)
    config = Config(id=1, interval=10**9, timeout=10**8, retries=0, checker=TCPChecker(target))
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


class Unknown:
    name = "*healthcheck.FancyChecker"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (None, "nil"),
        (tcp_config(checker=None), "no checker"),
        (tcp_config(checker=Unknown()), "FancyChecker"),
        (tcp_config(interval=0), "interval"),
        (tcp_config(interval=-5), "interval"),
        (tcp_config(interval=2**63 - 1), "interval"),
        (tcp_config(timeout=-1), "timeout"),
        (tcp_config(retries=-1), "retries"),
        (tcp_config(checker=UDPChecker(Target(ip=b"\x01\x02\x03", port=53))), "IP of 3 bytes"),
        (tcp_config(checker=TCPChecker(Target(ip=ip_to_bytes("::1"), port=70000))), "port"),
        (
            tcp_config(checker=TCPChecker(Target(ip=ip_to_bytes("::1"), port=1, mode=Mode.DSR))),
            "host",
        ),
    ],
)
def test_bad_configs_are_named(config: Config | None, words: str):
    problem = config_problem(config)
    assert problem is not None
    assert words in problem


def test_good_config_has_no_problem():
    assert config_problem(tcp_config()) is None
    assert config_problem(tcp_config(timeout=0)) is None  # 0 = the type's default


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("batch_size", 0, "-batch_size"),
        ("batch_delay", -1, "-batch_delay"),
        ("max_failures", 0, "-max_failures"),
        ("notify_interval", 0, "-notify_interval"),
        ("fetch_interval", -(10**9), "-1s"),
        ("engine_socket", "", "-engine"),
    ],
)
def test_server_config_rejects(field: str, value: object, words: str):
    config = ServerConfig(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=words):
        config.validate()
    ServerConfig().validate()


def test_a_resumed_check_goes_on_from_its_state_without_a_transition():
    """A restarted worker resumes each check where the table says it was: a failure within
    the retries of a Healthy check does not flip it, the next one does."""
    check = Check(3, retries=1, resume=(int(H), 0, 4, 10, 1_700_000_000_000_000_000, 5, "ok"))
    assert not check.record(False, "refused", 1, 1_700_000_001_000_000_000)
    assert check.state == H and check.failures == 5 and check.successes == 10
    assert check.record(False, "refused", 1, 1_700_000_002_000_000_000)
    assert check.state == U
