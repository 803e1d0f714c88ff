#!/usr/bin/env python3
"""Benchmark: what one function call costs, remote vs co-located vs embedded (issue 5).

The same function (``chain/f0`` of ``bench/functions/embedded_chain.py``: read a counter, write
it back, answer the caller) is deployed three ways under one runtime configuration:

- **remote**: ``pystatefun serve`` on 127.0.0.1 TCP, started by this script;
- **co-located**: ``io.pystatefun.endpoints.v1/colocated``: the runtime starts the same server
  on a Unix socket;
- **embedded**: ``io.pystatefun.endpoints.v1/embedded``, in the runtime's process.

The runtime runs in this process (``Runtime``, durability fsync), and calls go through
``Runtime.ingest`` in request-reply mode, so each call is: the invocation, its commit, the
reply. Two loads per mode: ``--calls`` sequential calls on one address (latency), and the same
number with 64 in flight over 1,000 addresses (throughput). CPU per call is measured for the
runtime (this process) and the function server (from /proc), so the table shows where the time
goes.

    .venv/bin/python bench/call_cost.py [--calls 3000]

Not part of CI's pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "bench" / "functions" / "embedded_chain.py"
sys.path[:0] = [str(ROOT / "bench" / "functions")]

import embedded_chain  # noqa: E402

from pystatefun.http import run_event_loop  # noqa: E402
from pystatefun.module import load_module  # noqa: E402
from pystatefun.runtime import Runtime, RuntimeOptions  # noqa: E402
from pystatefun.types import Address  # noqa: E402

PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
IO = """---
kind: io.statefun.playground.v1/ingress
spec:
  port: 0
"""
MODULES = {
    "remote": """kind: io.statefun.endpoints.v2/http
spec:
  functions: chain/*
  urlPathTemplate: {url}
""",
    "co-located": f"""kind: io.pystatefun.endpoints.v1/colocated
spec:
  functions: chain/*
  command: ["{PYSTATEFUN}", serve, "{FUNCTIONS}:functions", --unix-socket, "{{socket}}"]
""",
    "embedded": """kind: io.pystatefun.endpoints.v1/embedded
spec:
  functions: chain/*
  import: embedded_chain:functions
""",
}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def _serve_remote() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [str(PYSTATEFUN), "serve", f"{FUNCTIONS}:functions", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


async def _calls(runtime: Runtime, ids: int, calls: int, in_flight: int) -> list[float]:
    value = embedded_chain.HOP.serializer().serialize((0, 0))
    typename = embedded_chain.HOP.typename
    latencies: list[float] = []
    next_call = iter(range(calls))

    async def caller() -> None:
        for number in next_call:
            target = Address("chain", "f0", f"id-{number % ids}")
            started = time.perf_counter()
            result = await runtime.ingest(target, typename, value, None, True)
            latencies.append(time.perf_counter() - started)
            assert result.reply_value is not None, result

    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return latencies


async def _measure(mode: str, args: argparse.Namespace, url: str, server: int | None) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT / "bench", prefix=".calls-") as tmp:
        module_file = Path(tmp) / "module.yaml"
        module_file.write_text(MODULES[mode].replace("{url}", url) + IO)
        options = RuntimeOptions(data_dir=Path(tmp) / "data", durability="fsync")
        async with Runtime(load_module(module_file), options) as runtime:
            if mode == "co-located":
                (server,) = _children(os.getpid())
            await _calls(runtime, 1, 200, 1)  # warm up: handshake, connections, caches
            for label, ids, in_flight in (("sequential", 1, 1), ("64 in flight", 1000, 64)):
                cpu = time.process_time()
                server_cpu = _cpu_s(server) if server else 0.0
                started = time.perf_counter()
                latencies = await _calls(runtime, ids, args.calls, in_flight)
                elapsed = time.perf_counter() - started
                runtime_us = (time.process_time() - cpu) / args.calls * 1e6
                server_us = ((_cpu_s(server) - server_cpu) if server else 0.0) / args.calls * 1e6
                cuts = statistics.quantiles(latencies, n=100)
                print(
                    f"| {mode} | {label} | {args.calls / elapsed:,.0f} | "
                    f"{cuts[49] * 1e3:.2f} / {cuts[98] * 1e3:.2f} | {runtime_us:.0f} | "
                    f"{server_us:.0f} | {runtime_us + server_us:.0f} |",
                    flush=True,
                )


async def main(args: argparse.Namespace) -> None:
    print("| mode | load | calls/s | p50 / p99 ms | runtime CPU µs/call | "
          "function server CPU µs/call | total CPU µs/call |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    process, url = _serve_remote()
    try:
        await _measure("remote", args, url, process.pid)
    finally:
        process.terminate()
        process.wait(30)
    await _measure("co-located", args, "", None)
    await _measure("embedded", args, "", None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    run_event_loop(main(parser.parse_args()))
