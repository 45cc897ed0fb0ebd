"""Go-compatible durations and flags: fixed cases from Go 1.19, and a live cross-check
against Go's own time and flag packages when ``go`` is installed."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from seesaw_healthcheck.cli.goflags import (
    ErrorHandling,
    FlagError,
    FlagSet,
    HelpRequested,
    go_quote,
    parse_go_int,
)
from seesaw_healthcheck.goduration import DurationError, format_duration, parse_duration

# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("300ms", 300_000_000),
        ("-1.5h", -5_400_000_000_000),
        ("2h45m", 9_900_000_000_000),
        ("1µs", 1_000),
        ("1μs", 1_000),
        ("1us", 1_000),
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        (".5s", 500_000_000),
        ("5.s", 5_000_000_000),
        ("1h1h", 7_200_000_000_000),
        ("0.3333333333333333333h", 1_200_000_000_000),
        ("9223372036854775807ns", 2**63 - 1),
        ("-9223372036854775808ns", -(2**63)),
        ("2562047h47m16.854775807s", 2**63 - 1),
        ("1.0000000000000000001ns", 1),
        ("1.9999ns", 1),
        # Go adds in uint64 and wraps at exactly 2**64.
        ("9223372036854775808ns9223372036854775808ns", 0),
    ],
)
def test_parse_duration_accepts_what_go_accepts(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("1", 'time: missing unit in duration "1"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("1S", 'time: unknown unit "S" in duration "1S"'),
        ("+", 'time: invalid duration "+"'),
        (".s", 'time: invalid duration ".s"'),
        ("-.s", 'time: invalid duration "-.s"'),
        (" 1s", 'time: invalid duration " 1s"'),
        ("1h-1m", 'time: unknown unit "h-" in duration "1h-1m"'),
        ("1é", 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"'),
        ('1"s', 'time: unknown unit "\\"s" in duration "1\\"s"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("2562048h", 'time: invalid duration "2562048h"'),
        ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
        ("99999999999999999999s", 'time: invalid duration "99999999999999999999s"'),
    ],
)
def test_parse_duration_refuses_like_go(text: str, message: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


def test_parse_duration_reports_invalid_utf8_as_bytes() -> None:
    with pytest.raises(DurationError, match=r'"1\\xff"'):
        parse_duration(b"1\xff")


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (999, "999ns"),
        (1_000, "1µs"),
        (2_000, "2µs"),
        (1_500, "1.5µs"),
        (100_000_000, "100ms"),
        (1_500_000_000, "1.5s"),
        (60_000_000_000, "1m0s"),
        (3_600_000_000_000, "1h0m0s"),
        (-5_400_000_000_000, "-1h30m0s"),
        (9_900_000_000_001, "2h45m0.000000001s"),
        (2**63 - 1, "2562047h47m16.854775807s"),
        (-(2**63), "-2562047h47m16.854775808s"),
    ],
)
def test_format_duration_matches_go(ns: int, text: str) -> None:
    assert format_duration(ns) == text


def test_format_duration_refuses_values_outside_int64() -> None:
    with pytest.raises(OverflowError):
        format_duration(2**63)


def test_format_then_parse_round_trips() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        ns = rng.choice([rng.randint(-(2**63), 2**63 - 1), rng.randint(-(10**12), 10**12)])
        assert parse_duration(format_duration(ns)) == ns


# ---------------------------------------------------------------- flags


def make_flags(output: io.StringIO) -> FlagSet:
    flags = FlagSet("prog", ErrorHandling.CONTINUE_ON_ERROR, output)
    flags.string("type", "ping", "healthcheck type")
    flags.string("send", "", "string to send\nsecond line")
    flags.int("batch_size", 100, "batch `size` of notifications")
    flags.int("count", 0, "count")
    flags.bool("tls_verify", True, "verify")
    flags.bool("v", False, "verbose")
    flags.duration("timeout", 0, "healthcheck timeout")
    flags.duration("batch_delay", 100_000_000, "delay")
    return flags


USAGE = """Usage of prog:
  -batch_delay duration
    \tdelay (default 100ms)
  -batch_size size
    \tbatch size of notifications (default 100)
  -count int
    \tcount
  -send string
    \tstring to send
    \tsecond line
  -timeout duration
    \thealthcheck timeout
  -tls_verify
    \tverify (default true)
  -type string
    \thealthcheck type (default "ping")
  -v\tverbose
"""


def test_usage_text_is_gos() -> None:
    assert make_flags(io.StringIO()).usage_text() == USAGE


@pytest.mark.parametrize(
    ("argv", "name", "value", "rest"),
    [
        (["-type", "http"], "type", "http", []),
        (["-type=http"], "type", "http", []),
        (["--type", "http"], "type", "http", []),
        (["--type=http", "x"], "type", "http", ["x"]),
        (["-type="], "type", "", []),
        (["-type", "-v"], "type", "-v", []),
        (["-v"], "v", True, []),
        (["-tls_verify=F"], "tls_verify", False, []),
        # A bool flag never takes the next argument: "false" ends the flags.
        (["-v", "false"], "v", True, ["false"]),
        (["--v=T", "rest", "-type", "x"], "v", True, ["rest", "-type", "x"]),
        (["-batch_size", "0x10"], "batch_size", 16, []),
        (["-batch_size=010"], "batch_size", 8, []),
        (["-batch_size=0b101"], "batch_size", 5, []),
        (["-batch_size=1_000"], "batch_size", 1000, []),
        (["-batch_size", "-1"], "batch_size", -1, []),
        (["-timeout=1.5s"], "timeout", 1_500_000_000, []),
        (["--", "-v"], "v", False, ["-v"]),
        (["-", "-v"], "v", False, ["-", "-v"]),
        (["x", "-v"], "v", False, ["x", "-v"]),
    ],
)
def test_parse_accepts_go_syntax(
    argv: list[str], name: str, value: object, rest: list[str]
) -> None:
    flags = make_flags(io.StringIO())
    values = flags.parse(argv)
    assert values[name] == value
    assert flags.args == rest


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-type"], "flag needs an argument: -type"),
        (["-v=x"], 'invalid boolean value "x" for -v: parse error'),
        (["-batch_size=x"], 'invalid value "x" for flag -batch_size: parse error'),
        (["-batch_size=08"], 'invalid value "08" for flag -batch_size: parse error'),
        (["-batch_size=1__0"], 'invalid value "1__0" for flag -batch_size: parse error'),
        (
            ["-batch_size=9223372036854775808"],
            'invalid value "9223372036854775808" for flag -batch_size: value out of range',
        ),
        (["-timeout", "1x"], 'invalid value "1x" for flag -timeout: parse error'),
        (["-timeout=5"], 'invalid value "5" for flag -timeout: parse error'),
        (["---v"], "bad flag syntax: ---v"),
        (["-=x"], "bad flag syntax: -=x"),
        (["-nope"], "flag provided but not defined: -nope"),
        (["-send", "a\x01\t"], None),  # a string flag takes anything
    ],
)
def test_parse_refuses_like_go(argv: list[str], message: str | None) -> None:
    output = io.StringIO()
    flags = make_flags(output)
    if message is None:
        flags.parse(argv)
        assert output.getvalue() == ""
        return
    with pytest.raises(FlagError) as caught:
        flags.parse(argv)
    assert str(caught.value) == message
    assert output.getvalue() == message + "\n" + USAGE


@pytest.mark.parametrize("argv", [["-h"], ["-help"], ["--help"], ["-h=1"]])
def test_help_prints_usage(argv: list[str]) -> None:
    output = io.StringIO()
    with pytest.raises(HelpRequested):
        make_flags(output).parse(argv)
    assert output.getvalue() == USAGE


def test_exit_codes_are_gos() -> None:
    for argv, code in ((["-h"], 0), (["-nope"], 2), (["-count=x"], 2)):
        flags = FlagSet("prog", ErrorHandling.EXIT_ON_ERROR, io.StringIO())
        flags.int("count", 0, "count")
        with pytest.raises(SystemExit) as caught:
            flags.parse(argv)
        assert caught.value.code == code


def test_typed_flag_handles_and_redefinition() -> None:
    flags = FlagSet("prog", ErrorHandling.CONTINUE_ON_ERROR, io.StringIO())
    port = flags.int("port", 80, "port")
    timeout = flags.duration("timeout", 0, "timeout")
    flags.parse(["-port", "8080", "-timeout", "250ms"])
    assert (port.value, timeout.value) == (8080, 250_000_000)
    assert flags.actual == {"port", "timeout"}
    with pytest.raises(ValueError, match="redefined"):
        flags.int("port", 1, "again")


def test_var_flag_parses_its_own_way_and_fails_with_its_reason() -> None:
    def even(text: str) -> int:
        value = parse_go_int(text)
        if value % 2:
            raise ValueError("odd number")
        return value

    out = io.StringIO()
    flags = FlagSet("prog", ErrorHandling.CONTINUE_ON_ERROR, out)
    pairs = flags.var("pairs", 2, "how many `pairs`", even)
    flags.var("mode", "", "mode", str.upper, zero_text="")
    assert "  -pairs pairs\n    \thow many pairs (default 2)\n" in flags.usage_text()
    assert "  -mode value\n    \tmode\n" in flags.usage_text()
    flags.parse(["-pairs", "0x10"])
    assert pairs.value == 16
    with pytest.raises(FlagError, match=r'^invalid value "3" for flag -pairs: odd number$'):
        flags.parse(["-pairs=3"])
    assert out.getvalue().startswith('invalid value "3" for flag -pairs: odd number\nUsage of')


def test_go_quote_escapes_like_strconv() -> None:
    assert go_quote('a"b\\c\né\x01\u200b') == '"a\\"b\\\\c\\né\\x01\\u200b"'
    assert go_quote(b"\xff".decode("utf-8", "surrogateescape")) == '"\\xff"'


def test_parse_go_int_limits() -> None:
    assert parse_go_int("-9223372036854775808") == -(2**63)
    assert parse_go_int("0o17") == 15
    assert parse_go_int("0") == 0


# ------------------------------------------------- live cross-check against Go

GO_PROGRAM = r"""
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var req struct{ Duration *string; Argv []string }
		json.Unmarshal(sc.Bytes(), &req)
		if req.Duration != nil {
			d, err := time.ParseDuration(*req.Duration)
			e := ""
			if err != nil {
				e = err.Error()
			}
			r, _ := json.Marshal([]any{int64(d), e, d.String()})
			fmt.Println(string(r))
			continue
		}
		fs := flag.NewFlagSet("prog", flag.ContinueOnError)
		var out bytes.Buffer
		fs.SetOutput(&out)
		s := fs.String("type", "ping", "healthcheck type")
		e := fs.String("send", "", "string to send\nsecond line")
		n := fs.Int("batch_size", 100, "batch `size` of notifications")
		z := fs.Int("count", 0, "count")
		b := fs.Bool("tls_verify", true, "verify")
		v := fs.Bool("v", false, "verbose")
		d := fs.Duration("timeout", 0, "healthcheck timeout")
		d2 := fs.Duration("batch_delay", 100*time.Millisecond, "delay")
		err := fs.Parse(req.Argv)
		es := ""
		if err != nil {
			es = err.Error()
		}
		r, _ := json.Marshal(map[string]any{
			"err": es, "out": out.String(), "args": append([]string{}, fs.Args()...),
			"values": map[string]any{"type": *s, "send": *e, "batch_size": *n, "count": *z,
				"tls_verify": *b, "v": *v, "timeout": int64(*d), "batch_delay": int64(*d2)},
		})
		fmt.Println(string(r))
	}
}
"""


def _duration_cases() -> list[str]:
    rng = random.Random(5)
    cases = ["", "0", "1", "1x", "1.5.5s", "1ns ", "1sec", "3.7e1s", "0x10s", "1_000s"]
    for _ in range(400):
        whole = rng.choice([rng.randint(0, 10**19), rng.randint(0, 10**12), rng.randint(0, 999)])
        frac = rng.choice(["", "." + str(rng.randint(0, 10 ** rng.randint(1, 25)))])
        unit = rng.choice(["ns", "us", "µs", "ms", "s", "m", "h"])
        cases.append(rng.choice(["", "-", "+"]) + f"{whole}{frac}{unit}" * rng.randint(1, 2))
    return cases


FLAG_CASES: list[list[str]] = [
    [], ["-type", "http"], ["-type"], ["-v", "false"], ["-v=1"], ["-v=x"],
    ["-batch_size", "0x10"], ["-batch_size=_1"], ["-batch_size=0_7"], ["-batch_size=0x_1f"],
    ["-batch_size=99999999999999999999x"], ["-batch_size=+5"], ["-batch_size=-"],
    ["-batch_size= 1"], ["-timeout=-0"], ["--"], ["---v"], ["--=x"], ["-h"], ["-help"],
    ["-send", "a\"b\\c\né\x01\u200b"], ["-v=é"], ["-count", "1", "-count", "2", "x", "-v"],
]  # fmt: skip


@pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")
def test_against_go_itself(tmp_path: Path) -> None:
    source = tmp_path / "main.go"
    source.write_text(GO_PROGRAM)
    durations = _duration_cases()
    requests = [json.dumps({"Duration": d}) for d in durations]
    requests += [json.dumps({"Argv": argv}) for argv in FLAG_CASES]
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", GO111MODULE="off")
    env.setdefault("GOCACHE", str(tmp_path / "gocache"))
    done = subprocess.run(
        ["go", "run", str(source)],
        input="\n".join(requests) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    answers = done.stdout.splitlines()
    assert len(answers) == len(requests)
    for text, answer in zip(durations, answers[: len(durations)], strict=True):
        want_ns, want_err, want_text = json.loads(answer)
        try:
            got_ns, got_err = parse_duration(text), ""
        except DurationError as err:
            got_ns, got_err = 0, str(err)
        assert (got_ns, got_err) == (want_ns, want_err), text
        assert format_duration(want_ns) == want_text
    for argv, answer in zip(FLAG_CASES, answers[len(durations) :], strict=True):
        want = json.loads(answer)
        output = io.StringIO()
        flags = make_flags(output)
        try:
            values, error = flags.parse(argv), ""
        except FlagError as err:
            values, error = flags.values(), str(err)
        assert error == want["err"], argv
        assert output.getvalue() == want["out"], argv
        assert flags.args == want["args"], argv
        if not error:  # Go half-sets a value on error; we leave it alone
            assert values == want["values"], argv
