#!/usr/bin/env python3
"""Benchmark: embedded function-to-function messaging, durable (issue 5).

A ring of four embedded function types (``bench/functions/embedded_chain.py``): every hop
updates the address's state and sends the message to the next type with the same id, so each
hop is one invocation whose state change and outgoing message commit together (fsync by
default). Two measures:

- **throughput**: ``--ids`` addresses per type, ``--messages`` messages per id injected at
  once, each making ``--hops`` hops: invocations per second until the last hop, and the hop
  latency (send -> commit -> deliver -> invoke) under that load;
- **latency**: one message making ``--latency-hops`` hops alone: the hop latency at rest.

    .venv/bin/python bench/embedded.py [--ids 200] [--messages 10] [--hops 40]

Not part of CI's pass/fail: the figures depend on the machine (and its disk's fsync).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench" / "functions")]

import embedded_chain  # noqa: E402

from pystatefun.http import run_event_loop  # noqa: E402
from pystatefun.module import load_module  # noqa: E402
from pystatefun.runtime import Runtime, RuntimeOptions  # noqa: E402
from pystatefun.store import Step  # noqa: E402
from pystatefun.types import Address  # noqa: E402

MODULE = """\
kind: io.pystatefun.endpoints.v1/embedded
spec:
  functions: chain/*
  import: embedded_chain:functions
  execution: {execution}
"""


def _percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6


async def _run_until(runtime: Runtime, expected: int, timeout_s: float) -> float:
    started = time.perf_counter()
    deadline = started + timeout_s
    while embedded_chain.invocations[0] < expected:
        if time.perf_counter() > deadline:
            raise SystemExit(f"only {embedded_chain.invocations[0]} of {expected} hops in time")
        await asyncio.sleep(0.005)  # a benchmark's progress poll, not a test's synchronization
    return time.perf_counter() - started


async def _inject(runtime: Runtime, ids: int, messages: int, hops: int) -> None:
    value = embedded_chain.HOP.serializer().serialize((hops, 0))
    typename = embedded_chain.HOP.typename

    async def one(index: int) -> None:
        target = Address("chain", "f0", f"id-{index}")
        for _ in range(messages):
            await runtime.ingest(target, typename, value, None, False)

    await asyncio.gather(*(one(index) for index in range(ids)))


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT / "bench", prefix=".embedded-") as tmp:
        module_file = Path(tmp) / "module.yaml"
        module_file.write_text(MODULE.format(execution=args.execution))
        options = RuntimeOptions(data_dir=Path(tmp) / "data", durability=args.durability)
        async with Runtime(load_module(module_file), options) as runtime:
            # at rest: one message, hop after hop
            embedded_chain.sampling[0] = True
            embedded_chain.invocations[0] = 0
            await _inject(runtime, 1, 1, args.latency_hops)
            await _run_until(runtime, args.latency_hops + 1, 120)
            await runtime.engine.commit(Step())
            rest = list(embedded_chain.latencies_ns)
            # under load
            embedded_chain.latencies_ns.clear()
            embedded_chain.invocations[0] = 0
            expected = args.ids * args.messages * (args.hops + 1)
            commits_before = runtime.statistics()["commits"]
            cpu_before = time.process_time()
            started = time.perf_counter()
            injected: list[tuple[float, int]] = []
            injecting = asyncio.create_task(_inject(runtime, args.ids, args.messages, args.hops))
            injecting.add_done_callback(
                lambda _: injected.append((time.perf_counter(), embedded_chain.invocations[0]))
            )
            await _run_until(runtime, expected, 600)
            await injecting
            # Every hop so far is durable once a step queued after them is.
            await runtime.engine.commit(Step())
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_before
            stats = runtime.statistics()
            loaded = list(embedded_chain.latencies_ns)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    commits = stats["commits"] - commits_before
    print(f"embedded chain, durability {args.durability}, execution {args.execution}")
    print(
        f"  at rest ({args.latency_hops} hops, one message): hop p50 "
        f"{_percentile(rest, 0.5):.3f} ms, p99 {_percentile(rest, 0.99):.3f} ms"
    )
    print(
        f"  under load ({args.ids} ids x {args.messages} messages x {args.hops + 1} hops = "
        f"{expected:,} invocations): {expected / elapsed:,.0f} msgs/s in {elapsed:.2f} s; hop "
        f"p50 {_percentile(loaded, 0.5):.3f} ms, p99 {_percentile(loaded, 0.99):.3f} ms"
    )
    (injected_at, done_then), finished_at = injected[0], started + elapsed
    steady = (expected - done_then) / max(finished_at - injected_at, 1e-9)
    print(
        f"  after the last message was injected: {steady:,.0f} msgs/s "
        f"({expected - done_then:,} hops in {finished_at - injected_at:.2f} s)"
    )
    print(
        f"  CPU {cpu * 1e6 / expected:.1f} us per message; {commits:,} commits "
        f"({expected / max(commits, 1):.0f} hops per commit); batches "
        f"{stats['embedded_batches']:,}; peak RSS {rss:.0f} MiB; "
        f"mean hop {statistics.fmean(loaded) / 1e6:.3f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--hops", type=int, default=40)
    parser.add_argument("--latency-hops", type=int, default=2000)
    parser.add_argument("--durability", choices=["fsync", "os"], default="fsync")
    parser.add_argument("--execution", choices=["loop", "threads"], default="loop")
    run_event_loop(main(parser.parse_args()))
