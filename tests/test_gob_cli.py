"""``python -m seesaw_healthcheck.gob``: gob files to JSON lines, errors with offsets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_gob_codec import GO_CHECKS_1, GO_CHECKS_2, GO_NOTE, NOTE, NOTE_VALUE

from seesaw_healthcheck.gob import Encoder, Float, GoTime, Int, String


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seesaw_healthcheck.gob", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dumps_every_value_as_json(tmp_path: Path) -> None:
    checks = tmp_path / "checks.gob"
    checks.write_bytes(GO_CHECKS_1 + GO_CHECKS_2)
    enc = Encoder()
    mine = tmp_path / "mine.gob"
    mine.write_bytes(
        enc.encode(NOTE_VALUE, NOTE)
        + enc.encode(7, Int())
        + enc.encode(float("inf"), Float())
        + enc.encode("é", String())
    )
    done = run(str(checks), str(mine))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {
        "Configs": {
            "7": {
                "Id": 7,
                "Interval": 5_000_000_000,
                "Retries": 2,
                "Checker": {
                    "$type": "*main.TCPChecker",
                    "$value": {
                        "Target": {"IP": "01020304", "Port": 80},
                        "Send": "hi",
                        "Secure": True,
                    },
                },
            }
        }
    }
    assert lines[1]["Configs"]["8"]["Checker"]["$type"] == "*main.UDPChecker"
    note = lines[2]
    assert note["When"] == {"$type": "Time", "$hex": NOTE_VALUE["When"].marshal_binary().hex()}
    assert note["Tags"] == ["a", ""] and note["Arr"] == [0, -1] and note["C"] == [1.0, -2.0]
    assert note["Sub"] == [{"Port": 1}]
    assert lines[3:] == [7, "+Inf", "é"]
    assert GoTime.unmarshal_binary(bytes.fromhex(note["When"]["$hex"])) == NOTE_VALUE["When"]


def test_go_written_file(tmp_path: Path) -> None:
    path = tmp_path / "note.gob"
    path.write_bytes(GO_NOTE)
    done = run(str(path))
    assert done.returncode == 0, done.stderr
    assert [json.loads(x) for x in done.stdout.splitlines()][1:] == [42, "s", [1, 2]]


def test_corrupted_file_reports_offset(tmp_path: Path) -> None:
    data = bytearray(GO_CHECKS_1)
    data[40] = 0x7F  # inside the map type's definition: its name length becomes absurd
    bad = tmp_path / "bad.gob"
    bad.write_bytes(bytes(data))
    done = run(str(bad))
    assert done.returncode == 1
    err = done.stderr.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"{bad}: gob: ") and "offset" in err


def test_truncated_file_and_missing_file(tmp_path: Path) -> None:
    cut = tmp_path / "cut.gob"
    cut.write_bytes(GO_CHECKS_1[:-5])
    done = run(str(cut))
    assert done.returncode == 1
    assert "unexpected end of stream" in done.stderr
    assert "offset 133" in done.stderr  # where the unfinished value starts
    done = run(str(tmp_path / "nope.gob"))
    assert done.returncode == 1 and "nope.gob" in done.stderr
    assert run().returncode == 2
