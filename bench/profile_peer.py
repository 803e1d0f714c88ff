#!/usr/bin/env python3
"""Where a pystatefun peer spends its CPU during one scenario: py-spy profiles of its processes.

    .venv/bin/python bench/profile_peer.py [--peer pystatefun-ours] [--scenario keys-1000]

Starts the peer, warms it up with the scenario once, then runs the scenario again while
``py-spy record --gil`` samples the server (``pystatefun run``) and the function server (only
samples holding the GIL: the Python work, not the time waiting for I/O). Writes
``<out>/profile-<scenario>-<UTC timestamp>.md`` (the scenario's figures and, per process, the
functions with the largest share of samples, inclusive and self) and each process's collapsed
stacks (``-<role>.txt``, for ``flamegraph.pl`` or speedscope). The suite (``python3 dev.py
bench``) says how fast; this says why. py-spy comes with the ``bench`` extra; it may need
``ptrace`` permission (``kernel.yama.ptrace_scope``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from harness.report import result_line
from harness.scenarios import SCENARIOS, Bench, Loader, Settings
from run import make_peer

ROOT = Path(__file__).resolve().parent.parent
PY_SPY = Path(sys.executable).parent / "py-spy"
TOP = 25
_TRUNK_SHARE = 0.75
_TRUNK = (
    "<module>",
    "main ",
    "run ",
    "run_event_loop ",
    "Runner.run ",
    "Command.",
    "Context.invoke ",
    "Group.invoke ",
    "Thread.",
    "_worker (thread.py)",
    "_WorkItem.run ",
)


def _frame(frame: str) -> str:
    """``function (path/to/file.py:12)`` -> ``function (file.py)``: lines vary within a function."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1].split(':')[0]})" if where else name


def _shares(raw: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Samples in total, and per function: samples it is on the stack of, and at the top of."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    return total, inclusive, own


def _table(title: str, raw: Path) -> list[str]:
    total, inclusive, own = _shares(raw)
    lines = [f"### {title}", "", f"{total:,} samples holding the GIL.", ""]
    for heading, counter in (("inclusive", inclusive), ("self", own)):
        lines += [f"| {heading} % | function |", "| ---: | --- |"]
        lines += [
            f"| {100 * n / max(total, 1):.1f} | `{name}` |"
            for name, n in counter.most_common(TOP + 20)
            # The trunk (start-up, the CLI, the event loop, threads) says nothing.
            if heading == "self" or (n < _TRUNK_SHARE * total and not name.startswith(_TRUNK))
        ][:TOP]
        lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", default="pystatefun-ours")
    parser.add_argument("--scenario", default="keys-1000", choices=sorted(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if not PY_SPY.exists():
        print(f"{PY_SPY} is missing: run `python3 dev.py bench --help` once", file=sys.stderr)
        return 2
    settings = Settings(seconds=args.seconds, warmup_s=1.0)
    peer = make_peer(args.peer)
    loader = Loader()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = args.out / f"profile-{args.scenario}-{stamp}"
    scratch = Path(tempfile.mkdtemp(prefix="pystatefun-profile-"))
    try:
        peer.start()
        bench = Bench(loader, settings)
        SCENARIOS[args.scenario](bench, peer)  # warm: caches, connections, the limit
        raws = {role: scratch / f"{role}.txt" for role in peer.processes()}
        spies = [
            subprocess.Popen(
                [
                    *(PY_SPY, "record", "--gil", "--nonblocking", "--format", "raw"),
                    *("-o", raw, "-p", str(peer.processes()[role])),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for role, raw in raws.items()
        ]
        result = SCENARIOS[args.scenario](bench, peer)
        for spy in spies:
            spy.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
            spy.wait(60)
        lines = [
            f"# Profile: {args.scenario} on {args.peer} ({stamp})",
            "",
            "```text",
            result_line(result),
            "```",
            "",
            "Made by `bench/profile_peer.py`: `py-spy record --gil` of each process during the "
            "measured run (only samples holding the GIL, i.e. Python work).",
            "",
        ]
        for role, raw in raws.items():
            if raw.exists() and raw.stat().st_size:
                lines += _table(f"{role} (pid {peer.processes()[role]})", raw)
                shutil.copy(raw, stem.with_name(f"{stem.name}-{role}.txt"))
            else:
                lines += [f"### {role}", "", "py-spy recorded nothing (ptrace permission?)", ""]
        args.out.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".md").write_text("\n".join(lines))
        print("\n".join(lines))
        print(f"wrote {stem.with_suffix('.md')}", file=sys.stderr)
    finally:
        loader.close()
        peer.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
