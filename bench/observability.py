#!/usr/bin/env python3
"""Benchmark: what metrics and traces cost, ``pystatefun run`` end to end, in one run.

Three set-ups of the same runtime, taken in turn (round-robin, so a slow minute of the machine
falls on all of them), each on a fresh data dir with ``fsync``:

- **off**: no admin port, no ``OTEL_*`` variables;
- **metrics**: ``--admin-port`` with ``/metrics`` scraped every second (Prometheus scrapes every
  15 s by default: this is the pessimistic end);
- **traces**: ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointed at a stand-in collector in this process
  (it takes the OTLP/HTTP posts and drops them), every ingress request sent with a sampled
  ``traceparent``, so every message is traced (the SDK's batch exporter, as shipped);
- **traces-10%**: the same collector, requests without a ``traceparent``, and the standard
  ``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` with ``OTEL_TRACES_SAMPLER_ARG=0.1``: one
  message in ten traced, the way a busy deployment samples.

Two workloads: **remote**, N one-way messages over M addresses to a function served by our SDK
over HTTP (each invocation a remote call, with its ``traceparent`` header when tracing); and
**embedded**, the same messages to an embedded counter that messages a reporter that writes an
egress record (two invocations and two commits per message). Reported per set-up: ingress
throughput until every message is processed, the acknowledgement p50/p99 (an ingress request
is answered once durable) and the runtime's CPU per message; the change against **off**.

    .venv/bin/python bench/observability.py [--messages 3000] [--addresses 500] [--rounds 3]

Not part of CI's pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]

from harness.procstats import sample  # noqa: E402
from support.cluster_counter import counter_module  # noqa: E402
from support.function_servers import endpoint, start_function_server  # noqa: E402
from support.runtime_process import start_runtime, write_module  # noqa: E402

from pystatefun.store import DataDir  # noqa: E402

SETUPS = ("off", "metrics", "traces", "traces-10%")
SMOKE = json.dumps({"commands": [{"increment": {}}]}).encode()


@contextmanager
def _collector() -> Iterator[str]:
    """A stand-in OTLP/HTTP collector that takes every export and drops it."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _scraping(admin: str) -> Iterator[list[int]]:
    """Scrape ``admin``/metrics every second until the block ends; the sizes scraped."""
    stop, sizes = threading.Event(), []

    def scrape() -> None:
        while not stop.wait(1.0):
            with urllib.request.urlopen(f"{admin}/metrics", timeout=10) as response:  # noqa: S310
                sizes.append(len(response.read()))

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    try:
        yield sizes
    finally:
        stop.set()
        thread.join()


def _pending(data_dir: Path) -> int:
    db = DataDir(data_dir).snapshot_connection()
    try:
        return int(db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0])
    finally:
        db.close()


async def _drive(
    urls: list[str], body: bytes, headers: dict[str, str], concurrency: int, traced: bool
) -> list[float]:
    latencies: list[float] = []
    work = iter(enumerate(urls))

    async def sender(session: aiohttp.ClientSession) -> None:
        for n, url in work:
            sent = dict(headers)
            if traced:  # a sampled trace per request, as an instrumented caller sends
                sent["traceparent"] = f"00-{n + 1:032x}-{n + 1:016x}-01"
            start = time.perf_counter()
            async with session.post(url, data=body, headers=sent) as response:
                assert response.status == 202, await response.text()
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(sender(session) for _ in range(concurrency)))
    return sorted(latencies)


def _module(
    workload: str, scratch: Path, function_url: str
) -> tuple[Path, str, bytes, dict[str, str]]:
    """The module, the path messages go to, their body and headers."""
    if workload == "remote":
        module = write_module(scratch / "module.yaml", function_url)
        return module, "smoke/command-interpreter", SMOKE, {
            "Content-Type": "application/vnd.smoke/Commands"}  # fmt: skip
    return counter_module(scratch), "cl/counter", b"", {}


def run_once(workload: str, setup: str, args: argparse.Namespace, function_url: str,
             collector: str) -> dict[str, float]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="pystatefun-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        module, path, body, headers = _module(workload, scratch, function_url)
        extra = ["--admin-port", "0"] if setup == "metrics" else []
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector} if setup.startswith("traces") else {}
        if setup == "traces-10%":
            env |= {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": "0.1"}  # fmt: skip
        data_dir = scratch / "data"
        runtime = start_runtime(module, data_dir, "--log-level", "WARNING", *extra, env=env)
        urls = [f"{runtime.ingress}/{path}/a{n % args.addresses}" for n in range(args.messages)]
        try:
            before = sample(runtime.process.pid)
            with _scraping(runtime.admin) if setup == "metrics" else _nothing():
                start = time.perf_counter()
                latencies = asyncio.run(
                    _drive(urls, body, headers, args.concurrency, setup == "traces")
                )
                while _pending(data_dir) and time.perf_counter() < start + args.timeout:
                    time.sleep(0.005)
                done = time.perf_counter()
            after = sample(runtime.process.pid)
        finally:
            runtime.terminate()
    assert before is not None
    assert after is not None
    return {
        "msgs_per_s": args.messages / (done - start),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "cpu_us": (after.cpu_s - before.cpu_s) / args.messages * 1e6,
    }


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _report(workload: str, results: dict[str, list[dict[str, float]]]) -> None:
    median = {s: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
              for s, runs in results.items()}  # fmt: skip
    base = median["off"]
    print(f"\n{workload}: median of {len(results['off'])} rounds\n")
    print("| set-up | msg/s | vs off | ack p50 ms | ack p99 ms | runtime CPU µs/msg | vs off |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for setup, m in median.items():
        change = (m["msgs_per_s"] / base["msgs_per_s"] - 1) * 100
        cpu = (m["cpu_us"] / base["cpu_us"] - 1) * 100
        print(f"| {setup} | {m['msgs_per_s']:,.0f} | {change:+.1f}% | {m['p50_ms']:.2f} | "
              f"{m['p99_ms']:.2f} | {m['cpu_us']:.0f} | {cpu:+.1f}% |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--addresses", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", default="remote,embedded")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    print(f"{args.messages} one-way messages over {args.addresses} addresses, "
          f"{args.concurrency} concurrent ingress requests, durability fsync")  # fmt: skip
    server = start_function_server("ours")
    try:
        with _collector() as collector:
            for workload in args.workloads.split(","):
                results: dict[str, list[dict[str, float]]] = {s: [] for s in SETUPS}
                for _ in range(args.rounds):
                    for setup in SETUPS:
                        results[setup].append(
                            run_once(workload, setup, args, endpoint(server), collector)
                        )
                _report(workload, results)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
