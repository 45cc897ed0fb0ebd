"""Run the fuzz targets under atheris (libFuzzer), each for a bounded time.

    .venv/bin/python tests/fuzz/run.py [--seconds 60] [--jobs 1] [TARGET...]

``make fuzz`` calls this with ``FUZZ_SECONDS`` (default 60). A target is a
``tests/fuzz/fuzz_<name>.py``; without names every target runs. Each one starts from its
seed corpus ``tests/fuzz/corpus/<name>/`` plus what earlier runs found, kept in
``build/fuzz/corpus/<name>/`` (libFuzzer adds new inputs there, never to the seeds). An
input that raises what the target does not allow, or runs longer than 60 s, is a crash:
libFuzzer writes it to ``tests/fuzz/crashes/<name>/`` and stops that target. The full
libFuzzer output of each target is in ``build/fuzz/<name>.log``.

One line per target: executions, executions per second, inputs in its work corpus, and
ok or CRASH with the input's path. Exit status 1 if any target crashed or failed to run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"
WORK = REPO / "build" / "fuzz"
STARTUP_ALLOWANCE_S = 120.0  # imports and instrumentation, before the clock of -max_total_time
MAX_LEN = 16384
RSS_LIMIT_MB = 1024

_RUNS = re.compile(r"^Done (\d+) runs in (\d+) second", re.M)
_STAT = re.compile(r"^stat::(\w+):\s*(\d+)", re.M)
# crash-, timeout-, oom-: a failure; slow-unit- is not one (a busy machine makes them).
_ARTIFACT = re.compile(r"Test unit written to (\S*/(?:crash|timeout|oom|leak)-\S+)")
# An input running this long is a hang. Generous: on a loaded 2-core machine a process can
# stall for seconds (one input took 12 s there, and 0.13 s when run again).
INPUT_TIMEOUT_S = 60


def targets() -> list[str]:
    return sorted(p.stem.removeprefix("fuzz_") for p in HERE.glob("fuzz_*.py"))


@dataclass(slots=True)
class Outcome:
    target: str
    runs: int
    rate: float  # executions per second
    corpus: int  # inputs in the work corpus afterwards
    crash: str | None  # path of the crashing input, or why the target failed
    log: Path

    @property
    def ok(self) -> bool:
        return self.crash is None

    def line(self) -> str:
        verdict = "ok" if self.ok else f"CRASH {self.crash}"
        return (
            f"{self.target:15} {self.runs:10,} runs {self.rate:9,.0f} exec/s "
            f"{self.corpus:6} inputs  {verdict}"
        )


def command(target: str, seconds: int, input_timeout: int, work: Path) -> list[str]:
    """The libFuzzer command line for one target; new inputs go to ``work``."""
    return [
        sys.executable,
        str(HERE / f"fuzz_{target}.py"),
        f"-max_total_time={seconds}",
        f"-timeout={input_timeout}",
        f"-report_slow_units={input_timeout}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-max_len={MAX_LEN}",
        f"-artifact_prefix={CRASHES / target}/",
        "-print_final_stats=1",
        str(work),
        str(CORPUS / target),
    ]


def run_target(
    target: str, seconds: int, input_timeout: int = INPUT_TIMEOUT_S, work_dir: Path = WORK
) -> Outcome:
    """Fuzz one target for ``seconds``; never raises for what the target does.

    ``work_dir`` holds the corpus libFuzzer grows (``corpus/<target>``) and the log.
    """
    work = work_dir / "corpus" / target
    work.mkdir(parents=True, exist_ok=True)
    (CRASHES / target).mkdir(parents=True, exist_ok=True)
    log = work_dir / f"{target}.log"
    started = time.monotonic()
    with open(log, "w") as out:
        try:
            proc = subprocess.run(
                command(target, seconds, input_timeout, work),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                timeout=seconds + input_timeout + STARTUP_ALLOWANCE_S,
                check=False,
            )
            returncode: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            returncode = None
    text = log.read_text(errors="replace")
    stats = {k: int(v) for k, v in _STAT.findall(text)}
    done = _RUNS.search(text)
    runs = stats.get("number_of_executed_units", int(done.group(1)) if done else 0)
    # libFuzzer's own rate when it gave one (it counts whole seconds), else ours
    elapsed = float(done.group(2)) if done else time.monotonic() - started
    rate = stats.get("average_exec_per_sec") or runs / max(elapsed, 1.0)
    crash: str | None = None
    artifact = _ARTIFACT.search(text)
    if artifact:
        crash = str(Path(artifact.group(1)).resolve().relative_to(REPO))
    elif returncode is None:
        crash = f"no result within {seconds + input_timeout + STARTUP_ALLOWANCE_S:.0f} s"
    elif returncode != 0:
        crash = f"exit status {returncode} (see {log})"
    corpus = sum(1 for _ in work.iterdir())
    return Outcome(target, runs, rate, corpus, crash, log)


def run_all(names: list[str], seconds: int, jobs: int = 1, work_dir: Path = WORK) -> list[Outcome]:
    """Fuzz ``names``, ``jobs`` at a time; one line per target, in order."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        outcomes = []
        runs = pool.map(lambda name: run_target(name, seconds, work_dir=work_dir), names)
        for outcome in runs:
            print(outcome.line(), flush=True)
            outcomes.append(outcome)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"default: all of {', '.join(targets())}")
    parser.add_argument("--seconds", type=int, default=60, help="fuzzing time per target")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at once")
    args = parser.parse_args(argv)
    names = args.targets or targets()
    unknown = sorted(set(names) - set(targets()))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; have {', '.join(targets())}")
    if args.seconds < 1:
        parser.error("--seconds must be at least 1")
    print(f"fuzzing {len(names)} target(s) for {args.seconds} s each, {args.jobs} at a time")
    outcomes = run_all(names, args.seconds, args.jobs)
    total = sum(o.runs for o in outcomes)
    crashed = [o for o in outcomes if not o.ok]
    print(f"{'total':15} {total:10,} runs; {len(crashed)} target(s) crashed")
    for outcome in crashed:
        print(f"\n== {outcome.target}: {outcome.crash}; the end of {outcome.log}:")
        print("\n".join(outcome.log.read_text(errors="replace").splitlines()[-25:]))
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
