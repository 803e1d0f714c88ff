#!/usr/bin/env python3
"""Benchmark: the embedded runtime end to end, ``pystatefun run`` + a function server.

N ingress messages (each ``increment`` on a smoke command interpreter) spread over M addresses,
sent with bounded concurrency. Reports the ingress acknowledgement latency (p50/p99: a message
is acknowledged once durable), the end-to-end throughput until every message is processed (no
message left in any mailbox), and the runtime's peak RSS; once per durability mode.

    .venv/bin/python bench/runtime_throughput.py [--messages 5000] [--addresses 100]

Not part of CI's pass/fail: figures depend on the machine. The peer comparison (Restate) is
the job of a separate benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from support.function_servers import endpoint, start_function_server  # noqa: E402
from support.runtime_process import start_runtime, write_module  # noqa: E402

from pystatefun.store import DataDir  # noqa: E402

BODY = json.dumps({"commands": [{"increment": {}}]}).encode()
HEADERS = {"Content-Type": "application/vnd.smoke/Commands"}


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _pending(data_dir: Path) -> int:
    db = DataDir(data_dir).snapshot_connection()
    try:
        return int(db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])
    finally:
        db.close()


async def _drive(ingress: str, messages: int, addresses: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(messages):
        queue.put_nowait(n)

    async def sender(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            start = time.perf_counter()
            url = f"{ingress}/smoke/command-interpreter/{n % addresses}"
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                assert response.status == 202, await response.text()
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))
    return sorted(latencies)


def run_once(durability: str, args: argparse.Namespace, function_url: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="pystatefun-bench-") as scratch:
        module = write_module(Path(scratch) / "module.yaml", function_url)
        data_dir = Path(scratch) / "data"
        runtime = start_runtime(
            module, data_dir, "--durability", durability, "--log-level", "WARNING"
        )
        try:
            start = time.perf_counter()
            latencies = asyncio.run(
                _drive(runtime.ingress, args.messages, args.addresses, args.concurrency)
            )
            acked = time.perf_counter()
            deadline = acked + args.timeout
            while _pending(data_dir) and time.perf_counter() < deadline:
                time.sleep(0.01)
            done = time.perf_counter()
            rss = _peak_rss_mib(runtime.process.pid)
        finally:
            runtime.terminate()
    return {
        "ingress_msgs_per_s": args.messages / (acked - start),
        "end_to_end_msgs_per_s": args.messages / (done - start),
        "ack_p50_ms": latencies[len(latencies) // 2] * 1000,
        "ack_p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "rss_mib": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--addresses", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    server = start_function_server("ours")
    try:
        print(
            f"{args.messages} messages over {args.addresses} addresses, "
            f"{args.concurrency} concurrent ingress requests; function server: pystatefun.sdk"
        )
        print(
            f"{'durability':10} {'ingress/s':>10} {'end-to-end/s':>13} {'ack p50 ms':>11} "
            f"{'ack p99 ms':>11} {'RSS MiB':>8}"
        )
        for durability in ("fsync", "os"):
            r = run_once(durability, args, endpoint(server))
            print(
                f"{durability:10} {r['ingress_msgs_per_s']:10.0f} "
                f"{r['end_to_end_msgs_per_s']:13.0f} {r['ack_p50_ms']:11.1f} "
                f"{r['ack_p99_ms']:11.1f} {r['rss_mib']:8.1f}"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
