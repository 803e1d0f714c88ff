#!/usr/bin/env python3
"""Benchmark: the database round trip of issue 6, at 1,000,000 entities.

1. ``pystatefun bootstrap`` 1,000,000 users (one ``visits`` int each) from CSV into a data dir;
2. ``pystatefun run`` it, with traffic through the ingress: each visit increments a user and
   sends a message to ``audit/log``, whose endpoint is down, so pending work piles up;
3. ``pystatefun savepoint create`` while the traffic flows (the ingress latency is measured
   before and during, to see whether the runtime paused);
4. after the traffic, stop the runtime and take a second savepoint;
5. restore each into a new data dir with another number of key groups, and check address by
   address: the live savepoint against its restore, the stopped data dir against its restore.

    .venv/bin/python bench/database_round_trip.py [--users 1000000] [--visits 5000]

Prints the times. Not part of CI's pass/fail (the tests check the same at small scale).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from support.runtime_process import start_runtime  # noqa: E402

from pystatefun.savepoint.format import read_savepoint  # noqa: E402
from pystatefun.store import DataDir, TimerRecord  # noqa: E402

PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
MODULE = f"""\
kind: io.pystatefun.endpoints.v1/embedded
spec:
  functions: example/*
  import: {ROOT / "bench" / "functions" / "round_trip.py"}:functions
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: audit/*
  urlPathTemplate: http://127.0.0.1:9/statefun
  transport:
    call: 200ms
---
kind: io.statefun.playground.v1/ingress
spec:
  port: 0
---
kind: io.statefun.playground.v1/egress
spec:
  port: 0
  topics: [unused]
"""


def _timed(argv: list[str | Path]) -> float:
    started = time.perf_counter()
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{argv[1]} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def _comparable(contents: object) -> list[object]:
    return [
        dataclasses.replace(c, timer_id=0) if isinstance(c, TimerRecord) else c
        for c in contents  # type: ignore[attr-defined]
    ]


def _visit(ingress: str, user: int) -> float:
    started = time.perf_counter()
    url = f"{ingress}/example/user/u{user}"  # the runtime's ingress on 127.0.0.1
    request = urllib.request.Request(url, data=b"v", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        assert response.status == 202
    return time.perf_counter() - started


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT / "bench", prefix=".round-trip-") as tmp:
        work = Path(tmp)
        source = work / "users.csv"
        with source.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["user_id", "visits"])
            writer.writerows((f"u{n}", n % 100) for n in range(args.users))
        data_dir = work / "data"
        mapping = ["--id-column", "user_id", "--state", "visits=visits:int"]
        took = _timed([PYSTATEFUN, "bootstrap", source, "--type", "example/user", *mapping,
                       "--data-dir", data_dir])  # fmt: skip
        print(f"bootstrap {args.users:,} users from CSV into a data dir: {took:.1f} s")
        module = work / "module.yaml"
        module.write_text(MODULE)
        runtime = start_runtime(module, data_dir, "--dead-letter-after", "1000")
        try:
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                before = list(pool.map(lambda n: _visit(runtime.ingress, n), range(args.visits)))
                live = work / "live.psfsp"
                during: list[float] = []
                done = threading.Event()

                def traffic() -> None:
                    n = 0
                    while not done.is_set():
                        during.append(_visit(runtime.ingress, n * 7919 % args.users))
                        n += 1

                feeders = [pool.submit(traffic) for _ in range(4)]
                took = _timed([PYSTATEFUN, "savepoint", "create", live, "--data-dir", data_dir])
                done.set()
                for feeder in feeders:
                    feeder.result()
            print(f"savepoint of the live runtime under traffic: {took:.1f} s, "
                  f"{live.stat().st_size / 2**20:.0f} MiB")  # fmt: skip
            for label, sample in (("before", before), ("during the savepoint", during)):
                cuts = statistics.quantiles(sample, n=100)
                print(f"  ingress latency {label}: p50 {cuts[49] * 1e3:.1f} ms, p99 "
                      f"{cuts[98] * 1e3:.1f} ms, max {max(sample) * 1e3:.1f} ms "
                      f"({len(sample):,} requests)")  # fmt: skip
        finally:
            assert runtime.terminate() == 0
        _restore_and_compare(work, data_dir, live)


def _restore_and_compare(work: Path, data_dir: Path, live: Path) -> None:
    stopped = work / "stopped.psfsp"
    took = _timed([PYSTATEFUN, "savepoint", "create", stopped, "--data-dir", data_dir])
    print(f"savepoint of the stopped data dir: {took:.1f} s")
    for name, saved, groups in (("live", live, 64), ("stopped", stopped, 7)):
        target = work / f"restored-{name}"
        took = _timed([PYSTATEFUN, "savepoint", "restore", saved, "--data-dir", target,
                       "--key-groups", str(groups)])  # fmt: skip
        restored = _comparable(DataDir(target).contents().records)
        if name == "live":
            expected = _comparable(read_savepoint(saved)[1])
        else:
            expected = _comparable(DataDir(data_dir).contents().records)
        same = restored == expected
        print(f"restore of the {name} savepoint with {groups} key groups: {took:.1f} s; "
              f"{len(restored):,} records, identical address by address: {same}")  # fmt: skip
        pending = sum(1 for c in restored if type(c).__name__ == "MessageContent")
        print(f"  pending messages in it: {pending:,}")
        if not same:
            raise SystemExit("the restored data dir differs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--visits", type=int, default=5_000)
    main(parser.parse_args())
