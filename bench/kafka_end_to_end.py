#!/usr/bin/env python3
"""Benchmark: Kafka in -> remote function -> Kafka out, exactly-once, end to end.

Two peers in the same run, on the same broker, with the same ``module.yaml`` (rendered from one
template: only the topic names and the endpoint's port differ) and the same function served by
the official StateFun Python SDK (``bench/functions/kafka_counter.py`` behind aiohttp, as
``bench/functions/serve_official.py`` serves it):

- ``pystatefun``: ``pystatefun run module.yaml`` on a scratch data dir (``--durability``, fsync
  unless told);
- ``statefun``: Apache Flink StateFun 3.3.0 on Flink 1.16.2, one JVM on Flink's local executor
  (``bench/harness/flink_statefun.py`` says how it is assembled from Maven Central), RocksDB
  state, checkpoints every ``--checkpoint-interval-ms``.

The module: a Kafka ingress (``io.statefun.kafka.v1/ingress``, ``startupPosition: earliest``)
from ``<peer>-in`` (``--partitions`` partitions) to ``bench/kafka-counter``, which counts per key
and sends one record per input to the Kafka egress ``bench/out``
(``io.statefun.kafka.v1/egress``, ``deliverySemantic: exactly-once``) on ``<peer>-out``. A
``read_committed`` consumer sees a record only once its transaction commits: for StateFun that
is when the checkpoint after it completes, so its latency is bounded below by the checkpoint
interval; pystatefun commits a transaction per egress batch.

Each peer gets a warm-up (``--warmup`` records; the wait for the first of them includes the
start-up), then two load shapes, each record's value ``<run>,<seq>,<produce unix ns>`` over
``--keys`` keys:

- ``max``: ``--records`` records produced as fast as the producer goes; throughput = records /
  (last output seen - first record produced);
- ``rate``: ``--rate`` records/s for ``--rate-seconds`` s: latency at a load both sustain.

Latency is produce -> seen by the consumer (same clock), p50/p99/max. Exactly-once: every input
must come out once (duplicates and missing are counted; after the last one the consumer keeps
reading for a grace period of two checkpoint intervals, at least 3 s), and each key's counts in
the output must be exactly 1..n over the whole run (state and egress agree). Memory: peak RSS
(``VmHWM``) of the runtime process and of the function server; CPU seconds per shape.

    .venv/bin/python bench/kafka_end_to_end.py [--peers pystatefun,statefun] [--records 20000]

It prints the tables and writes ``bench/results/kafka-<UTC timestamp>.md`` and ``.json``. Needs
Java 17 and Maven (the broker and StateFun come from Maven Central the first time, into
git-ignored caches) and ``.venv`` with the ``kafka`` extra. Not part of CI's pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from harness.flink_statefun import FLINK_VERSION, STATEFUN_VERSION, FlinkStatefun
from harness.processes import end, free_port, official_python
from harness.procstats import sample

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYSTATEFUN = ROOT / ".venv" / "bin" / "pystatefun"
SERVE_OFFICIAL = BENCH / "functions" / "serve_official.py"
FUNCTIONS = "kafka_counter.py"
PEERS = ("pystatefun", "statefun")

sys.path.insert(0, str(ROOT / "tools" / "kafka"))
from broker import KAFKA_VERSION, KafkaBroker  # type: ignore[import-not-found]  # noqa: E402

MODULE_TEMPLATE = """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: bench/*
  urlPathTemplate: http://127.0.0.1:{port}/statefun
---
kind: io.statefun.kafka.v1/ingress
spec:
  id: bench/in
  address: {bootstrap}
  consumerGroupId: bench-{peer}
  startupPosition:
    type: earliest
  topics:
    - topic: {in_topic}
      valueType: bench/event
      targets:
        - bench/kafka-counter
---
kind: io.statefun.kafka.v1/egress
spec:
  id: bench/out
  address: {bootstrap}
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 15min
"""


# --- the output side --------------------------------------------------------------------------


@dataclass
class Tally:
    """What the consumer saw of one run (one tag)."""

    expected: int = 0
    first_produced_ns: int = 0
    seen: Counter[int] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    last_seen_ns: int = 0


class OutputReader:
    """A ``read_committed`` consumer of every partition of the output topic, in a thread."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-reader-{topic}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 10,
            }
        )
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        self.lock = threading.Lock()
        self.tallies: dict[str, Tally] = defaultdict(Tally)
        self.counts: dict[str, list[int]] = defaultdict(list)  # key -> counts seen
        self.malformed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self.consumer.consume(num_messages=1000, timeout=0.05)
            now = time.time_ns()
            with self.lock:
                for message in batch:
                    if message.error() is not None:
                        continue
                    self._take(message.key(), message.value(), now)
        self.consumer.close()

    def _take(self, key: bytes | None, value: bytes | None, now: int) -> None:
        try:
            tag, seq, produced, count = (value or b"").decode().split(",")
            tally = self.tallies[tag]
            tally.seen[int(seq)] += 1
            tally.latencies_ms.append((now - int(produced)) / 1e6)
            tally.last_seen_ns = now
            self.counts[(key or b"").decode()].append(int(count))
        except ValueError:
            self.malformed += 1

    def distinct(self, tag: str) -> int:
        with self.lock:
            return len(self.tallies[tag].seen)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


# --- the input side ---------------------------------------------------------------------------


class Load:
    """The producer: records ``<tag>,<seq>,<unix ns>`` keyed over ``keys`` keys."""

    def __init__(self, bootstrap: str, topic: str, keys: int) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.keys = keys
        self.produced: Counter[str] = Counter()  # key -> records produced, over every tag
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "acks": "all"})

    def _one(self, tag: str, seq: int) -> None:
        key = str(seq % self.keys)
        value = f"{tag},{seq},{time.time_ns()}"
        while True:
            try:
                self.producer.produce(self.topic, key=key, value=value)
                break
            except BufferError:  # the local queue is full: let it drain
                self.producer.poll(0.01)
        self.produced[key] += 1
        self.producer.poll(0)

    def burst(self, tag: str, records: int) -> None:
        for seq in range(records):
            self._one(tag, seq)
        self.producer.flush(60)

    def paced(self, tag: str, records: int, rate: float) -> None:
        start = time.monotonic()
        for seq in range(records):
            delay = start + seq / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._one(tag, seq)
        self.producer.flush(60)


def create_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    for future in futures.values():
        future.result(30)


# --- the peers --------------------------------------------------------------------------------


@dataclass
class Shape:
    """One load shape's figures on one peer."""

    name: str
    records: int
    produce_s: float = 0.0
    seen: int = 0
    duplicates: int = 0
    missing: int = 0
    throughput: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    runtime_cpu_s: float | None = None
    function_cpu_s: float | None = None
    runtime_rss_mib: float | None = None
    timed_out: bool = False


@dataclass
class PeerResult:
    peer: str
    started: bool = False
    error: str = ""
    first_output_s: float | None = None
    shapes: list[Shape] = field(default_factory=list)
    runtime_peak_rss_mib: float | None = None
    function_peak_rss_mib: float | None = None
    state_check: str = "not run"
    malformed: int = 0
    checkpoints: int | None = None


@dataclass
class Settings:
    records: int
    keys: int
    partitions: int
    rate: float
    rate_seconds: float
    warmup: int
    timeout_s: float
    checkpoint_interval_ms: int
    parallelism: int
    jvm_heap_mib: int
    durability: str

    @property
    def grace_s(self) -> float:
        return max(3.0, 2 * self.checkpoint_interval_ms / 1000)


class Run:
    """One peer's processes and its run of the shapes."""

    def __init__(self, peer: str, scratch: Path, bootstrap: str, settings: Settings) -> None:
        self.peer = peer
        self.scratch = scratch
        self.bootstrap = bootstrap
        self.settings = settings
        self.in_topic = f"{peer}-in"
        self.out_topic = f"{peer}-out"
        self.function: subprocess.Popen[str] | None = None
        self.runtime: subprocess.Popen[str] | None = None
        self.flink: FlinkStatefun | None = None
        self.result = PeerResult(peer)

    # processes

    def start(self, official: Path) -> None:
        self.scratch.mkdir(parents=True)
        create_topics(self.bootstrap, [self.in_topic, self.out_topic], self.settings.partitions)
        port = free_port()
        with (self.scratch / "function.log").open("w") as log:
            self.function = subprocess.Popen(
                [str(official), str(SERVE_OFFICIAL), "--port", str(port), "--functions", FUNCTIONS],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=dict(os.environ, BENCH_KAFKA_OUT_TOPIC=self.out_topic),
                text=True,
            )
        module_dir = self.scratch / "module"
        module_dir.mkdir()
        (module_dir / "module.yaml").write_text(self.module(port))
        if self.peer == "pystatefun":
            with (self.scratch / "runtime.log").open("w") as log:
                self.runtime = subprocess.Popen(
                    [
                        str(PYSTATEFUN),
                        "run",
                        str(module_dir / "module.yaml"),
                        "--data-dir",
                        str(self.scratch / "data"),
                        "--durability",
                        self.settings.durability,
                        "--log-level",
                        "WARNING",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    text=True,
                )
        else:
            self.flink = FlinkStatefun(
                self.scratch,
                module_dir,
                checkpoint_interval_ms=self.settings.checkpoint_interval_ms,
                parallelism=self.settings.parallelism,
                heap_mib=self.settings.jvm_heap_mib,
            )
            self.flink.start()
            self.runtime = self.flink.process

    def module(self, port: int) -> str:
        return MODULE_TEMPLATE.format(
            port=port, bootstrap=self.bootstrap, peer=self.peer, in_topic=self.in_topic
        )

    def stop(self) -> None:
        if self.flink is not None:
            self.result.checkpoints = self.flink.checkpoints()
        end(self.runtime, 30.0)
        end(self.function, 10.0)

    def _alive(self) -> str:
        """Empty while both processes run, else what ended."""
        for role, process in (("runtime", self.runtime), ("function server", self.function)):
            if process is not None and process.poll() is not None:
                return f"the {role} exited with {process.returncode}"
        return ""

    def _log_tail(self) -> str:
        name = "statefun.log" if self.peer == "statefun" else "runtime.log"
        try:
            lines = (self.scratch / name).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-30:])

    # measuring

    def measure(self) -> PeerResult:
        result = self.result
        load = Load(self.bootstrap, self.in_topic, self.settings.keys)
        reader = OutputReader(self.bootstrap, self.out_topic, self.settings.partitions)
        started = time.monotonic()
        try:
            warm, first_output_s = self._shape(
                load, reader, "warmup", self.settings.warmup, started=started
            )
            if warm.timed_out:
                result.error = (
                    f"warm-up: {warm.seen} of {warm.records} records came out within "
                    f"{self.settings.timeout_s:.0f} s. {self._alive()}\n{self._log_tail()}"
                )
                return result
            result.started = True
            shapes: list[tuple[str, int, float | None]] = [("max", self.settings.records, None)]
            rate_records = int(self.settings.rate * self.settings.rate_seconds)
            if rate_records:
                shapes.append(("rate", rate_records, self.settings.rate))
            for name, records, rate in shapes:
                shape, _ = self._shape(load, reader, name, records, rate=rate)
                result.shapes.append(shape)
                print(f"[{self.peer}] {_shape_line(shape)}", file=sys.stderr)
                if self._alive():
                    result.error = f"{self._alive()}\n{self._log_tail()}"
                    break
            result.first_output_s = first_output_s
            self._finish(load, reader)
        finally:
            reader.stop()
        return result

    def _pids(self) -> tuple[int | None, int | None]:
        return (
            None if self.runtime is None else self.runtime.pid,
            None if self.function is None else self.function.pid,
        )

    def _shape(
        self,
        load: Load,
        reader: OutputReader,
        name: str,
        records: int,
        *,
        rate: float | None = None,
        started: float | None = None,
    ) -> tuple[Shape, float | None]:
        """Produce ``records`` (at ``rate``, or at once), wait for them; the figures, and when
        the first came out (seconds after ``started``, if given)."""
        runtime_pid, function_pid = self._pids()
        before = (_cpu(runtime_pid), _cpu(function_pid))
        tag = name
        with reader.lock:
            reader.tallies[tag].expected = records
            reader.tallies[tag].first_produced_ns = time.time_ns()
        t0 = time.monotonic()
        if rate is None:
            load.burst(tag, records)
        else:
            load.paced(tag, records, rate)
        produce_s = time.monotonic() - t0
        deadline = t0 + self.settings.timeout_s
        first_output_s: float | None = None
        while time.monotonic() < deadline and not self._alive():
            distinct = reader.distinct(tag)
            if first_output_s is None and distinct and started is not None:
                first_output_s = time.monotonic() - started
            if distinct >= records:
                break
            time.sleep(0.02)
        timed_out = reader.distinct(tag) < records
        if not timed_out:
            time.sleep(self.settings.grace_s)  # late duplicates would show up now
        after = (_cpu(runtime_pid), _cpu(function_pid))
        with reader.lock:
            tally = reader.tallies[tag]
            seen = dict(tally.seen)
            latencies = sorted(tally.latencies_ms)
            last_seen_ns = tally.last_seen_ns
            first_ns = tally.first_produced_ns
        shape = Shape(name=name, records=records, produce_s=produce_s, timed_out=timed_out)
        shape.seen = len(seen)
        shape.duplicates = sum(n - 1 for n in seen.values())
        shape.missing = records - len([s for s in seen if 0 <= s < records])
        if seen and not timed_out:
            shape.throughput = records / ((last_seen_ns - first_ns) / 1e9)
        if latencies:
            shape.p50_ms = _quantile(latencies, 0.50)
            shape.p99_ms = _quantile(latencies, 0.99)
            shape.max_ms = latencies[-1]
        shape.runtime_cpu_s = _delta(before[0], after[0])
        shape.function_cpu_s = _delta(before[1], after[1])
        if runtime_pid is not None and (now := sample(runtime_pid)) is not None:
            shape.runtime_rss_mib = now.rss_mib
        return shape, first_output_s

    def _finish(self, load: Load, reader: OutputReader) -> None:
        result = self.result
        runtime_pid, function_pid = self._pids()
        for pid, attr in (
            (runtime_pid, "runtime_peak_rss_mib"),
            (function_pid, "function_peak_rss_mib"),
        ):
            if pid is not None and (now := sample(pid)) is not None:
                setattr(result, attr, now.hwm_mib)
        with reader.lock:
            counts = {key: sorted(values) for key, values in reader.counts.items()}
            result.malformed = reader.malformed
        off = [
            key
            for key, produced in load.produced.items()
            if counts.get(key, []) != list(range(1, produced + 1))
        ]
        off += [key for key in counts if key not in load.produced]
        result.state_check = (
            f"ok: {len(load.produced)} keys, each counted 1..n exactly once"
            if not off
            else f"{len(off)} keys whose counts are not exactly 1..n (e.g. {sorted(off)[:5]})"
        )


def _cpu(pid: int | None) -> float | None:
    if pid is None:
        return None
    found = sample(pid)
    return None if found is None else found.cpu_s


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _quantile(ordered: list[float], q: float) -> float:
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[round(q * 1000) - 1]


# --- the report -------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def _shape_line(shape: Shape) -> str:
    return (
        f"{shape.name}: {shape.seen}/{shape.records} out, {_f(shape.throughput)} records/s, "
        f"p50 {_ms(shape.p50_ms)}, p99 {_ms(shape.p99_ms)}, dup {shape.duplicates}, "
        f"missing {shape.missing}{' (timed out)' if shape.timed_out else ''}"
    )


def _peer_label(peer: str) -> str:
    if peer == "pystatefun":
        return "pystatefun"
    return f"StateFun {STATEFUN_VERSION}"


def tables(results: list[PeerResult], settings: Settings) -> list[str]:
    out: list[str] = []
    head = (
        "| peer | shape | records | out | dup | missing | records/s | p50 | p99 | max "
        "| runtime CPU s | function CPU s | runtime RSS after |"
    )
    out += [head, _sep(head)]
    for r in results:
        if not r.shapes:
            out.append(f"| {_peer_label(r.peer)} | - | - | - | - | - | - | - | - | - | - | - | - |")
        best = max((s.throughput or 0.0 for s in r.shapes if s.name == "max"), default=0.0)
        for s in r.shapes:
            note = " (timed out)" if s.timed_out else ""
            if s.name == "rate" and best and best < settings.rate:
                note += f" (above this peer's max {best:,.0f}/s: its latency is queueing)"
            out.append(
                f"| {_peer_label(r.peer)} | {s.name}{note} | {s.records:,} | {s.seen:,} "
                f"| {s.duplicates} | {s.missing} | {_f(s.throughput)} | {_ms(s.p50_ms)} "
                f"| {_ms(s.p99_ms)} | {_ms(s.max_ms)} | {_f(s.runtime_cpu_s, 1)} "
                f"| {_f(s.function_cpu_s, 1)} | {_f(s.runtime_rss_mib)} MiB |"
            )
    out.append("")
    head2 = (
        "| peer | first output after start | runtime peak RSS | function server peak RSS "
        "| exactly-once (state and output) | checkpoints |"
    )
    out += [head2, _sep(head2)]
    for r in results:
        out.append(
            f"| {_peer_label(r.peer)} | {_f(r.first_output_s, 1)} s "
            f"| {_f(r.runtime_peak_rss_mib)} MiB | {_f(r.function_peak_rss_mib)} MiB "
            f"| {r.state_check}{f'; {r.malformed} malformed' if r.malformed else ''} "
            f"| {'-' if r.checkpoints is None else r.checkpoints} |"
        )
    return out


def _sep(head: str) -> str:
    return "|" + " --- |" * (head.count("|") - 1)


def environment() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "java": (java.stderr.splitlines() or ["unknown"])[0],
        "pystatefun": rev or "unknown",
        "statefun": f"Apache Flink StateFun {STATEFUN_VERSION} on Flink {FLINK_VERSION}",
        "function SDK": "apache-flink-statefun (Python SDK) 3.3.0 on aiohttp, for both peers",
        "kafka": f"Apache Kafka {KAFKA_VERSION} broker (tools/kafka), confluent-kafka client",
        "load average at the end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def render(
    results: list[PeerResult], settings: Settings, stamp: str, took_s: float, load_at_start: str
) -> str:
    lines = [f"# Kafka end to end, exactly-once: {stamp}", ""]
    lines += [f"- **load average at the start**: {load_at_start} (1, 5, 15 min)"]
    lines += [f"- **{k}**: {v}" for k, v in environment().items()]
    lines += [
        f"- **settings**: {settings.partitions} partitions per topic, {settings.keys:,} keys; "
        f"warm-up {settings.warmup:,} records; `max`: {settings.records:,} records produced at "
        f"once; `rate`: {settings.rate:g} records/s for {settings.rate_seconds:g} s; "
        f"timeout {settings.timeout_s:g} s per shape",
        f"- **pystatefun**: `pystatefun run --durability {settings.durability}`; egress "
        "exactly-once (a Kafka transaction per egress batch)",
        f"- **StateFun**: one JVM (`-Xmx{settings.jvm_heap_mib}m`), Flink local executor, "
        f"parallelism {settings.parallelism}, RocksDB (incremental), checkpoints every "
        f"{settings.checkpoint_interval_ms} ms, EXACTLY_ONCE: its egress's transactions commit "
        "when a checkpoint completes, so its latency is bounded below by that interval "
        "(upstream's deployment docs use 10 s, its end-to-end tests 2-5 s)",
        "- both: the same module (below), the same function (`bench/functions/kafka_counter.py`) "
        "on the official SDK; a `read_committed` consumer; everything on 127.0.0.1",
        "",
        f"> the whole run took {took_s:.0f} s",
        "",
        *tables(results, settings),
        "",
    ]
    for r in results:
        if r.error:
            lines += [f"**{_peer_label(r.peer)} failed**:", "", "```", r.error[-4000:], "```", ""]
    lines += [
        "## The module (rendered per peer: `<peer>-in`, its port)",
        "",
        "```yaml",
        MODULE_TEMPLATE.strip(),
        "```",
        "",
    ]
    return "\n".join(lines)


# --- the command ------------------------------------------------------------------------------


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        records=args.records,
        keys=args.keys,
        partitions=args.partitions,
        rate=args.rate,
        rate_seconds=args.rate_seconds,
        warmup=args.warmup,
        timeout_s=args.timeout,
        checkpoint_interval_ms=args.checkpoint_interval_ms,
        parallelism=args.parallelism,
        jvm_heap_mib=args.jvm_heap_mib,
        durability=args.durability,
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS), help="pystatefun,statefun")
    parser.add_argument("--records", type=int, default=20_000, help="records of the max shape")
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rate", type=float, default=200.0, help="records/s of the rate shape")
    parser.add_argument("--rate-seconds", type=float, default=20.0, help="0: no rate shape")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per shape")
    parser.add_argument("--checkpoint-interval-ms", type=int, default=1000)
    parser.add_argument("--parallelism", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--jvm-heap-mib", type=int, default=1024)
    parser.add_argument("--durability", choices=("fsync", "os"), default="fsync")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = sorted(set(args.peers) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {PEERS}")
    return args


def main() -> int:
    args = _arguments()
    peers: list[str] = args.peers
    settings = _settings(args)
    signal.signal(signal.SIGTERM, _terminate)
    official = official_python()
    if "statefun" in peers:
        from harness.flink_statefun import jars

        jars()
    started = time.monotonic()
    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    scratch = Path(tempfile.mkdtemp(prefix="pystatefun-kafka-bench-"))
    broker = KafkaBroker(scratch / "broker")
    results: list[PeerResult] = []
    try:
        broker.start()
        print(f"broker {broker.bootstrap} ({scratch})", file=sys.stderr)
        for peer in peers:
            run = Run(peer, scratch / peer, broker.bootstrap, settings)
            try:
                run.start(official)
                results.append(run.measure())
            finally:
                run.stop()
    finally:
        broker.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = render(results, settings, stamp, time.monotonic() - started, load_at_start)
    print("\n".join(tables(results, settings)))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"kafka-{stamp}.md").write_text(report)
    raw = {"settings": asdict(settings), "results": [asdict(r) for r in results]}
    (args.out / f"kafka-{stamp}.json").write_text(json.dumps(raw, indent=2) + "\n")
    print(f"report: {args.out / f'kafka-{stamp}.md'}", file=sys.stderr)
    failed = any(r.error or any(s.duplicates or s.missing for s in r.shapes) for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
