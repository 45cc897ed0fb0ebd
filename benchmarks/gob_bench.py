"""Gob speed: Go's encoding/gob against seesaw_healthcheck.gob on Seesaw's Checks reply.

Builds the Go peer, runs ``gopeer bench`` (medians over rounds, fresh encoder/decoder per
round as each Seesaw call is a fresh stream) and writes the encoded reply; then, in the
same run, times Python decoding those Go bytes (typed with ``schema.CHECKS``) and
encoding the decoded value, and prints µs per config for both and the Python/Go ratio.

    .venv/bin/python benchmarks/gob_bench.py [-n 10000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # for tests.gopeer when run as a script

from tests import gopeer  # noqa: E402

from seesaw_healthcheck import model, schema  # noqa: E402
from seesaw_healthcheck.gob import Decoder, Encoder, GobError  # noqa: E402


def time_decode(data: bytes, n: int, rounds: int) -> tuple[float, model.Checks]:
    """Median µs per config to decode ``data`` (a gob stream of Checks), and the value."""
    samples: list[float] = []
    checks: object = None
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        decoder = Decoder()
        decoder.feed(data)
        checks = decoder.next(schema.CHECKS)
        samples.append((time.perf_counter() - start) * 1e6 / n)
    if not isinstance(checks, model.Checks):
        raise SystemExit(f"Python decoded {checks!r}, not a Checks")
    return statistics.median(samples), checks


def time_encode(checks: model.Checks, n: int, rounds: int) -> float:
    """Median µs per config to encode ``checks`` on a fresh encoder."""
    samples: list[float] = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        Encoder().encode(checks, schema.CHECKS)
        samples.append((time.perf_counter() - start) * 1e6 / n)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="configs in the Checks reply")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per side (medians)")
    args = parser.parse_args()
    if args.n < 1 or args.rounds < 1:
        parser.error("-n and --rounds must be positive")

    gopeer.build()
    with tempfile.TemporaryDirectory() as tmp:
        stream = Path(tmp) / "checks.gob"
        proc = gopeer.run(
            ["bench", "-n", str(args.n), "-rounds", str(args.rounds), "-write", str(stream)],
            timeout=600,
        )
        go = json.loads(proc.stdout.strip().splitlines()[-1])
        data = stream.read_bytes()

    recipe = gopeer.recipe_checks(args.n)  # the value Go encoded, built in Python
    failure = ""
    py_decode: float | None = None
    try:
        py_decode, checks = time_decode(data, args.n, args.rounds)
    except GobError as err:
        failure = f"Python cannot decode Go's stream: {err}"
    else:
        # The decoded reply must be the recipe Go encoded, or the timing means nothing.
        if checks.configs != recipe.configs:
            failure = "Python's decoding differs from the recipe Go encoded"
    # Encode the same value (as a Python engine would send it).
    py_encode = time_encode(recipe, args.n, args.rounds)

    print(
        f"gob, healthcheck.Checks with {args.n} mixed configs ({len(data)} bytes), "
        f"medians of {args.rounds} rounds, fresh encoder/decoder per round"
    )
    print(f"{'':8} {'Go µs/config':>13} {'Python µs/config':>17} {'Python/Go':>10}")
    rows = (
        ("decode", go["decode_us_per_config"], py_decode),
        ("encode", go["encode_us_per_config"], py_encode),
    )
    for label, go_us, py_us in rows:
        if py_us is None:
            print(f"{label:8} {go_us:13.2f} {'failed':>17} {'-':>10}")
        else:
            print(f"{label:8} {go_us:13.2f} {py_us:17.2f} {py_us / go_us:9.1f}x")
    if py_decode is not None:
        print(
            f"whole reply: Python decode {py_decode * args.n / 1e3:.1f} ms, "
            f"encode {py_encode * args.n / 1e3:.1f} ms"
        )
    if failure:
        print(f"FAIL: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
