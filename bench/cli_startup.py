#!/usr/bin/env python3
"""Benchmark: how long the ``pystatefun`` command takes to start and finish, per command.

A command that reads one value should not pay for importing the runtime, the HTTP stack or
pydantic. Each command runs as a whole process (the ``pystatefun`` console script of this
interpreter's environment), ``--warmup`` times untimed, then ``--runs`` times timed with
``time.perf_counter`` around the process; the table shows min/median/max wall milliseconds and
the largest peak RSS of the timed runs (``ru_maxrss`` of each child, from ``os.wait4``). Two floor
rows show what any command pays: a bare interpreter and ``import click``. ``pystatefun serve`` is
timed until it prints its URL (it listens: what a co-located endpoint waits for), then stopped.

The data dir for ``state``, ``sql`` and ``dead-letters`` is made in a temporary directory with
``pystatefun bootstrap`` from a small CSV. ``--importtime`` also prints, per command, the ten
imports with the largest cumulative time under ``python -X importtime``.

    .venv/bin/python bench/cli_startup.py [--runs 10] [--warmup 2] [--importtime]

Not part of CI's pass/fail: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
GREETER = ROOT / "examples" / "greeter" / "module.yaml"
FUNCTIONS = ROOT / "examples" / "greeter" / "functions.py"
#: Timed until the process prints its first line (the URL: it listens), then stopped.
UNTIL_READY = "serve (until its URL)"
CSV = "id,items\nalice,3\nbob,5\ncarol,0\n"
# Runs the command line in-process the way the console script does, for -X importtime.
AS_SCRIPT = "import sys; from pystatefun.cli import main; sys.argv[0] = 'pystatefun'; main()"


def _commands(data_dir: Path) -> dict[str, list[str]]:
    """Each benchmarked command's name and argv (the floors first)."""
    d = ["--data-dir", str(data_dir)]
    cli = [str(PYSTATEFUN)]
    return {
        "(python -c pass)": [sys.executable, "-c", "pass"],
        "(python -c 'import click')": [sys.executable, "-c", "import click"],
        "--help": [*cli, "--help"],
        "state ls": [*cli, "state", "ls", *d],
        "state get": [*cli, "state", "get", "shop/cart", "alice", *d],
        "module validate": [*cli, "module", "validate", str(GREETER)],
        "sql": [*cli, "sql", "SELECT 1", *d],
        "dead-letters list": [*cli, "dead-letters", "list", *d],
        "run --help": [*cli, "run", "--help"],
        UNTIL_READY: [*cli, "serve", f"{FUNCTIONS}:functions", "--port", "0"],
    }


def _once(argv: list[str], until_ready: bool) -> tuple[float, int]:
    """One whole-process run (``until_ready``: until its first line of output, then SIGTERM):
    wall seconds and peak RSS in KiB; a failure stops the benchmark."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, cwd=ROOT)
        assert process.stdout is not None
        with process.stdout:
            if until_ready:
                process.stdout.readline()
                elapsed = time.perf_counter() - started
                process.send_signal(signal.SIGTERM)
            else:  # read all the output, as a pipeline would, until the process closes it
                process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        if not until_ready:
            elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            sys.exit(f"{argv} exited {process.returncode}:\n{errors.read().decode()}")
    return elapsed, usage.ru_maxrss


def _measure(argv: list[str], runs: int, warmup: int, until_ready: bool) -> tuple[list[float], int]:
    for _ in range(warmup):
        _once(argv, until_ready)
    timed = [_once(argv, until_ready) for _ in range(runs)]
    return [seconds * 1000 for seconds, _ in timed], max(rss for _, rss in timed)


def _importtime(argv: list[str]) -> list[tuple[int, str]]:
    """The ten imports with the largest cumulative microseconds when ``argv`` runs."""
    if argv[0] == str(PYSTATEFUN):
        argv = [sys.executable, "-X", "importtime", "-c", AS_SCRIPT, *argv[1:]]
    else:
        argv = [argv[0], "-X", "importtime", *argv[1:]]
    result = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
    rows = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative, name = line.removeprefix("import time:").split("|")
            rows.append((int(cumulative), name.rstrip()))
    return sorted(rows, reverse=True)[:10]


def _bootstrap(scratch: Path) -> Path:
    source = scratch / "carts.csv"
    source.write_text(CSV)
    data_dir = scratch / "data"
    mapping = ["--type", "shop/cart", "--id-column", "id", "--state", "items=items:int"]
    subprocess.run(
        [PYSTATEFUN, "bootstrap", source, *mapping, "--data-dir", data_dir],
        check=True,
        capture_output=True,
    )
    return data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per command")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--importtime", action="store_true", help="top-10 imports per command")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pystatefun-cli-bench-") as scratch:
        commands = _commands(_bootstrap(Path(scratch)))
        print(f"{args.runs} runs after {args.warmup} warm-up(s), wall ms; {sys.version.split()[0]}")
        print(f"{'command':<28} {'min':>7} {'median':>7} {'max':>7} {'peak RSS':>9}")
        for name, argv in commands.items():
            wall, rss = _measure(argv, args.runs, args.warmup, name == UNTIL_READY)
            print(
                f"{name:<28} {min(wall):7.1f} {statistics.median(wall):7.1f} {max(wall):7.1f} "
                f"{rss / 1024:5.1f} MiB"
            )
        if args.importtime:
            for name, argv in commands.items():
                if name == UNTIL_READY:  # it serves until stopped: not run in-process here
                    continue
                print(f"\n-X importtime, {name}: cumulative us, top 10")
                for micros, module in _importtime(argv):
                    print(f"{micros:>9}  {module}")


if __name__ == "__main__":
    main()
