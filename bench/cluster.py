#!/usr/bin/env python3
"""Benchmark: cluster mode against embedded mode, on this machine, in one run.

1. **Step commits**, through the storage engine alone: a chain of steps (each consumes the
   message the previous one sent, writes one state value and sends one message), committed one
   at a time (latency p50/p99) and 64 at a time (throughput, group commit), on SQLite
   (``fsync``), on one NATS server (R1) and on a local 3-node cluster (R3), the latter with
   the 16 partitions in one stream and spread over three (each step then mostly sends its
   message to another stream, through the outbox). CPU per step is this process's (the
   engine) and the NATS servers' together.
2. **Workers end to end**: ``pystatefun run --cluster`` with 1, 2 and 3 workers of the counter
   module (``tests/support/cluster_counter.py``: counter -> reporter -> egress), N one-way
   messages through the workers' ingresses, until every egress record is popped, on one
   stream and on as many streams as workers; and the same module embedded.
3. **Failover**: 2 workers, one killed with SIGKILL; the time until every message sent after
   the kill has been processed (the lease is 2.5 s).
4. **Stream leader lost**: commits one at a time on R3 while the stream's RAFT leader server
   is killed with SIGKILL; the longest gap between two acknowledged commits.
5. **Request-reply through either worker**: 2 workers, requests one at a time through one of
   them to ``cl/echo`` addresses; latency of those it serves itself against those it asks
   the serving worker for (one more round trip over core NATS).

    .venv/bin/python bench/cluster.py [--steps 2000] [--messages 2000] [--asks 400] [--quick]
        [--sections commits,workers,failover,leader,request-reply]

Prints the figures as markdown. Not part of CI's pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import resource
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from support.cluster_counter import (  # noqa: E402
    asked,
    counter_module,
    popped,
    send_counts,
    settled,
)
from support.runtime_process import RuntimeProcess, start_runtime  # noqa: E402

from pystatefun.cluster import LocalCluster  # noqa: E402
from pystatefun.store import DEFAULT_KEY_GROUPS, DataDir, SqliteEngine, key_group_of  # noqa: E402
from pystatefun.store.engine import StorageEngine  # noqa: E402
from pystatefun.store.jetstream import JetStreamEngine, cluster_status  # noqa: E402
from pystatefun.store.records import Payload, StateValue  # noqa: E402
from pystatefun.store.steps import RELAYED, NewMessage, Step  # noqa: E402
from pystatefun.types import Address  # noqa: E402

_PAYLOAD = Payload("io.statefun.types/int", b"\x08\x01")


def _ms(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 1 else 0.0


def _cpu_of(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes ``pids`` used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _step(n: int, consumed: int | None) -> Step:
    """Step ``n`` of a chain: consume the last message (sent to this step's address), write a
    value, send the next (to step ``n + 1``'s address)."""
    address = Address("bench", "chain", f"a{n % 1000}")
    return Step(
        consumed=[] if consumed is None else [consumed],
        state_address=address,
        state_puts=[StateValue("count", _PAYLOAD, 0, 0, None)],
        messages=[NewMessage(Address("bench", "chain", f"a{(n + 1) % 1000}"), address, _PAYLOAD)],
    )


async def _sent(engine: StorageEngine, n: int, seq: int) -> int:
    """The id of the message step ``n`` sent: its outcome's, or, relayed to another stream,
    the one its mailbox holds."""
    if seq != RELAYED:
        return seq
    target = Address("bench", "chain", f"a{(n + 1) % 1000}")
    return max(m.seq or 0 for m in await engine.read_batch(target, 1000))


async def _sequential(engine: StorageEngine, steps: int) -> list[float]:
    latencies, consumed = [], None
    for n in range(steps):
        started = time.perf_counter()
        outcome = await engine.commit(_step(n, consumed))
        latencies.append(time.perf_counter() - started)
        assert outcome.committed, outcome.error
        consumed = await _sent(engine, n, outcome.seqs[0])
    return latencies


async def _concurrent(engine: StorageEngine, steps: int, chains: int = 64) -> float:
    """Steps/s with ``chains`` chains committing at once (each one step at a time)."""

    async def chain(c: int) -> None:
        consumed, first = None, c * (steps // chains + 1)
        for n in range(first, first + len(range(c, steps, chains))):
            outcome = await engine.commit(_step(n, consumed))
            assert outcome.committed, outcome.error
            consumed = await _sent(engine, n, outcome.seqs[0])

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for c in range(chains):
            group.create_task(chain(c))
    return steps / (time.perf_counter() - started)


async def _commits(name: str, engine: StorageEngine, steps: int, servers: list[int]) -> str:
    await engine.open(128)
    try:
        cpu = time.process_time(), _cpu_of(servers)
        latencies = await _sequential(engine, steps)
        rate = await _concurrent(engine, steps)
        engine_s, servers_s = time.process_time() - cpu[0], _cpu_of(servers) - cpu[1]
    finally:
        await engine.close()
    per_step = 1e6 / (2 * steps)
    return (f"| {name} | {_ms(latencies, 50):.2f} | {_ms(latencies, 99):.2f} | {rate:,.0f} | "
            f"{engine_s * per_step:,.0f} | {servers_s * per_step:,.0f} |")  # fmt: skip


def _jetstream(urls: list[str], cluster: str, replicas: int, streams: int) -> JetStreamEngine:
    return JetStreamEngine(urls, cluster=cluster, worker="bench", streams=streams,
                           clock_ms=lambda: int(time.time() * 1000), replicas=replicas)  # fmt: skip


def _pids(cluster: LocalCluster) -> list[int]:
    return [node.pid for node in cluster.nodes if node.pid is not None]


def bench_commits(scratch: Path, one: LocalCluster, three: LocalCluster, steps: int) -> None:
    print("## Step commits (engine alone)\n")
    print(f"{steps} steps one at a time, then {steps} with 64 chains at once.\n")
    print("| store | p50 ms | p99 ms | steps/s (64 at once) | CPU µs per step: engine | "
          "NATS servers |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    sqlite = SqliteEngine(DataDir(scratch / "sqlite"), durability="fsync",
                          clock_ms=lambda: int(time.time() * 1000))  # fmt: skip
    print(asyncio.run(_commits("SQLite, fsync", sqlite, steps, [])))
    for label, cluster, replicas, streams in (
        ("JetStream R1, 1 server", one, 1, 1),
        ("JetStream R3, 3 servers", three, 3, 1),
        ("JetStream R3, 3 servers, 3 streams", three, 3, 3),
    ):
        engine = _jetstream(cluster.urls, f"commits{replicas}s{streams}", replicas, streams)
        print(asyncio.run(_commits(label, engine, steps, _pids(cluster))))
    print()


def _pop_one(worker: RuntimeProcess) -> bool:
    """Pop one egress record from ``worker``; False if it had none."""
    try:
        with urllib.request.urlopen(f"{worker.egress}/out", timeout=30) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as error:
        error.close()
        if error.code != 404:
            raise
        return False
    return True


def _drain(workers: list[RuntimeProcess], count: int, deadline_s: float) -> int:
    """Pop egress records from every worker at once until ``count`` are in; how many came."""
    got, lock = [0], threading.Lock()
    deadline = time.monotonic() + deadline_s

    def pop_from(worker: RuntimeProcess) -> None:
        while time.monotonic() < deadline:
            with lock:
                if got[0] >= count:
                    return
            if _pop_one(worker):
                with lock:
                    got[0] += 1
            else:
                time.sleep(0.01)  # the playground egress is pull-only: poll

    with concurrent.futures.ThreadPoolExecutor(2 * len(workers)) as pool:
        list(pool.map(pop_from, workers * 2))
    return got[0]


def _load(workers: list[RuntimeProcess], messages: int) -> tuple[float, float, int]:
    """Messages/s acknowledged by the ingresses (16 senders, through every worker), and end
    to end (until every egress record is popped); how many were popped."""
    ids = [f"u{n}" for n in range(200)]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        batches = [(workers[n % len(workers)], [ids[(n * 7 + k) % len(ids)] for k in range(10)])
                   for n in range(messages // 10)]  # fmt: skip
        list(pool.map(lambda b: send_counts(*b), batches))
    sent = time.perf_counter() - started
    got = _drain(workers, messages, 120)
    return messages / sent, got / (time.perf_counter() - started), got


def _row(label: str, workers: list[RuntimeProcess], servers: list[int], messages: int) -> str:
    """One line of the table: the load through ``workers``, and the CPU it took of them and
    of the NATS ``servers`` together."""
    pids = [w.process.pid for w in workers]
    cpu = _cpu_of(pids), _cpu_of(servers)
    acked, end_to_end, got = _load(workers, messages)
    per_message = 1000 / max(got, 1)
    workers_ms = (_cpu_of(pids) - cpu[0]) * per_message
    servers_ms = (_cpu_of(servers) - cpu[1]) * per_message
    return (f"| {label} | {acked:,.0f} | {end_to_end:,.0f} | {got} | {workers_ms:.2f} | "
            f"{servers_ms:.2f} | {_rss_mib(workers):.0f} |")  # fmt: skip


def _rss_mib(workers: list[RuntimeProcess]) -> float:
    pages = [int(Path(f"/proc/{w.process.pid}/statm").read_text().split()[1]) for w in workers]
    return max(pages) * resource.getpagesize() / 2**20


def bench_workers(scratch: Path, three: LocalCluster, messages: int) -> None:
    print("## Workers end to end\n")
    print(
        f"{messages} one-way messages (counter -> reporter -> egress) over 200 addresses, 16 "
        "senders through every worker's ingress, until every egress record is popped.\n"
    )
    print("| setup | acknowledged/s | end to end/s | popped | CPU ms per message: workers | "
          "NATS servers | RSS MiB (max) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    module = counter_module(scratch)
    embedded = start_runtime(module, scratch / "embedded")
    try:
        print(_row("embedded (SQLite, fsync)", [embedded], [], messages))
    finally:
        embedded.terminate()
    for count, streams in ((1, 1), (2, 1), (3, 1), (2, 2), (3, 3)):
        workers = _start_workers(module, scratch, three.urls, f"load{count}s{streams}", count,
                                 streams=streams)  # fmt: skip
        try:
            label = f"{count} worker(s), R3, {streams} stream(s)"
            print(_row(label, workers, _pids(three), messages))
        finally:
            for worker in workers:
                worker.terminate()
    print()


def _start_workers(
    module: Path, scratch: Path, urls: list[str], name: str, count: int, *, streams: int = 1
) -> list[RuntimeProcess]:
    workers = []
    for n in range(count):
        workers.append(start_runtime(
            module, scratch / f"{name}-w{n}", "--cluster", ",".join(urls), "--cluster-name",
            name, "--worker", f"w{n}", "--streams", str(streams),
        ))  # fmt: skip
    return workers


def bench_failover(scratch: Path, three: LocalCluster, rounds: int) -> None:
    print("## Failover: a worker killed with SIGKILL\n")
    module = counter_module(scratch)
    times = []
    for r in range(rounds):
        one, two = _start_workers(module, scratch, three.urls, f"fail{r}", 2)
        try:
            ids = [f"k{n}" for n in range(32)]
            send_counts(one, ids)
            assert len(popped(one, len(ids))) == len(ids)
            killed = time.monotonic()
            two.kill()
            send_counts(one, ids)
            assert len(popped(one, len(ids))) == len(ids)
            times.append(time.monotonic() - killed)
        finally:
            one.terminate()
            two.kill()
    shown = ", ".join(f"{t:.2f} s" for t in times)
    print(f"Every message sent after the kill processed after: {shown} "
          "(lease 2.5 s, heartbeat 0.5 s).\n")  # fmt: skip


async def _stall(three: LocalCluster, seconds: float) -> tuple[float, str]:
    engine = _jetstream(three.urls, "stall", 3, 1)
    await engine.open(128)
    try:
        stream = engine.layout.stream
        leader = await _leader(three, stream)
        node = next(n for n in three.nodes if n.name == leader)
        gaps: list[float] = []
        consumed, last, n = None, time.perf_counter(), 0
        end = last + seconds
        killed_at = last + seconds / 3
        killed = False
        while time.perf_counter() < end:
            if not killed and time.perf_counter() >= killed_at:
                assert node.pid is not None
                os.kill(node.pid, signal.SIGKILL)
                killed = True
            outcome = await engine.commit(_step(n, consumed))
            assert outcome.committed, outcome.error
            consumed, n = outcome.seqs[0], n + 1
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
    finally:
        await engine.close()
    return max(gaps), leader


async def _leader(cluster: LocalCluster, stream: str) -> str:
    import nats

    nc = await nats.connect(cluster.urls)
    try:
        info = await nc.jetstream().stream_info(stream)
        assert info.cluster is not None
        assert info.cluster.leader is not None
        return info.cluster.leader
    finally:
        await nc.close()


def bench_leader_loss(three: LocalCluster, seconds: float) -> None:
    print("## The stream's RAFT leader killed (R3)\n")
    gap, leader = asyncio.run(_stall(three, seconds))
    print(f"Commits one at a time for {seconds:.0f} s; server {leader} (the stream leader) "
          f"killed with SIGKILL a third of the way: longest gap between two acknowledged "
          f"commits {gap * 1000:,.0f} ms, and every commit was acknowledged.\n")  # fmt: skip


def bench_request_reply(scratch: Path, three: LocalCluster, asks: int) -> None:
    print("## Request-reply through either worker\n")
    module = counter_module(scratch)
    name = "asking"
    one, two = _start_workers(module, scratch, three.urls, name, 2)
    try:
        settled(three.urls[0], name, {"w0", "w1"})
        owners = cluster_status(three.urls, name)["owners"]
        assert isinstance(owners, dict)
        partitions = len(owners)
        took: dict[bool, list[float]] = {True: [], False: []}  # served by the worker asked?
        for n in range(asks):
            address_id = f"e{n}"
            group = key_group_of(address_id, DEFAULT_KEY_GROUPS)
            partition = group * partitions // DEFAULT_KEY_GROUPS  # as the cluster places it
            start = time.perf_counter()
            status, _ = asked(one, address_id)
            assert status == 200, status
            took[owners[str(partition)] == "w0"].append(time.perf_counter() - start)
    finally:
        one.terminate()
        two.terminate()
    print("| asked of | requests | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- |")
    for here, label in ((True, "the serving worker"), (False, "the other worker (one hop more)")):
        values = took[here]
        print(f"| {label} | {len(values)} | {_ms(values, 50):.2f} | {_ms(values, 99):.2f} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--asks", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--sections", default="commits,workers,failover,leader,request-reply",
                        help="which sections to run, comma-separated (default: all)")  # fmt: skip
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    unknown = sections - {"commits", "workers", "failover", "leader", "request-reply"}
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.quick:
        args.steps, args.messages, args.asks = 200, 200, 40
    with tempfile.TemporaryDirectory(prefix="psf-bench-cluster-") as tmp:
        scratch = Path(tmp)
        one, three = LocalCluster(scratch / "nats1"), LocalCluster(scratch / "nats3")
        one.up(1)
        three.up(3)
        try:
            print(f"# Cluster mode, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}\n")
            if "commits" in sections:
                bench_commits(scratch, one, three, args.steps)
            if "workers" in sections:
                bench_workers(scratch, three, args.messages)
            if "failover" in sections:
                bench_failover(scratch, three, 1 if args.quick else 3)
            if "leader" in sections:
                bench_leader_loss(three, 6 if args.quick else 15)
            if "request-reply" in sections:
                bench_request_reply(scratch, three, args.asks)
        finally:
            one.down(purge=True)
            three.down(purge=True)


if __name__ == "__main__":
    main()
