"""kill -9 of ``pystatefun run`` while it reads Kafka: every record reaches its function once.

Records are produced to a real broker in chunks, and a real ``pystatefun run`` process reads
each chunk and is SIGKILLed part way through (once the positions it stored pass a seeded
random point of the chunk, watched from its data dir), then restarted on the same data dir. The
function (embedded) counts the messages of its address in state and reports each to the
playground egress as ``<id>:<value>:<count>``: a record read again after a kill shows as a
repeated value with a higher count, a lost one as a gap. Rerun a failing seed with
``PYSTATEFUN_KAFKA_CRASH_SEEDS=<seed> python3 dev.py test -k kafka``.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from support.kafka import topic
from support.runtime_process import RuntimeProcess, start_runtime
from support.smoke_client import drain

SEEDS = [int(s) for s in os.environ.get("PYSTATEFUN_KAFKA_CRASH_SEEDS", "5,6").split(",")]
CHUNKS = 4
PER_CHUNK = 4000
KEYS = 12
DRAIN_DEADLINE_S = 120.0
KILL_WAIT_S = 20.0

FUNCTIONS = """\
from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec, egress_message_builder
from pystatefun.sdk import make_json_type

RECORD = make_json_type("io.statefun.playground/EgressRecord")
functions = StatefulFunctions()


@functions.bind("kafka/counter", specs=[ValueSpec("count", IntType)])
def counter(context, message):
    context.storage.count = (context.storage.count or 0) + 1
    text = f"{context.address.id}:{message.raw_value().decode()}:{context.storage.count}"
    record = {"topic": "out", "payload": text}
    context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))
"""


def _module(tmp_path: Path, name: str, bootstrap: str) -> Path:
    (tmp_path / "crash_counter.py").write_text(FUNCTIONS)
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: kafka/*\n"
        "  import: crash_counter.py:functions\n---\n"
        "kind: io.statefun.kafka.v1/ingress\nspec:\n  id: com.example/orders\n"
        f"  address: {bootstrap}\n  consumerGroupId: crash-{name}\n"
        "  startupPosition:\n    type: earliest\n  topics:\n"
        f"    - topic: {name}\n      valueType: com.example/text\n"
        "      targets: [kafka/counter]\n---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [out]\n"
    )
    return module


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_9_while_reading_kafka_loses_and_repeats_no_record(
    seed: int, kafka_broker: Any, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    name = topic(kafka_broker, partitions=3, prefix="crash")
    module = _module(tmp_path, name, kafka_broker.bootstrap)
    data_dir = tmp_path / "data"
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "enable.idempotence": True})
    produced: list[tuple[str, str]] = []
    reported: list[str] = []
    for chunk in range(CHUNKS):
        rows = [(f"k{rng.randrange(KEYS)}", f"v{chunk * PER_CHUNK + n}") for n in range(PER_CHUNK)]
        for key, value in rows:
            producer.produce(name, key=key.encode(), value=value.encode())
        assert producer.flush(30) == 0
        produced += rows
        runtime = start_runtime(module, data_dir)
        _kill_part_way(runtime, data_dir, len(produced) - rng.randrange(PER_CHUNK // 2))
    runtime = start_runtime(module, data_dir)
    try:
        reported = _drain_until(runtime, len(produced), seed)
    finally:
        runtime.terminate()
    expected: dict[str, list[tuple[str, int]]] = {}
    for key, value in produced:
        mine = expected.setdefault(key, [])
        mine.append((value, len(mine) + 1))
    got: dict[str, list[tuple[str, int]]] = {}
    for line in reported:
        key, value, count = line.rsplit(":", 2)
        got.setdefault(key, []).append((value, int(count)))
    for key in sorted(expected):
        assert got.get(key) == expected[key], f"{key} (seed={seed})"
    assert len(reported) == len(produced), f"seed={seed}"


def _kill_part_way(runtime: RuntimeProcess, data_dir: Path, offsets: int) -> None:
    """SIGKILL once the stored positions add up to ``offsets`` records read (watched from the
    data dir, read-only: the process offers no event to wait on); killed anyway after
    ``KILL_WAIT_S``."""
    deadline = time.monotonic() + KILL_WAIT_S
    database = f"file:{data_dir / 'pystatefun.sqlite3'}?mode=ro"
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(sqlite3.OperationalError),  # not created yet, or busy
            contextlib.closing(sqlite3.connect(database, uri=True)) as db,
        ):
            read = db.execute("SELECT SUM(CAST(position AS INTEGER)) FROM positions")
            if (read.fetchone()[0] or 0) >= offsets:
                break
        time.sleep(0.002)
    runtime.kill()


def _drain_until(runtime: RuntimeProcess, count: int, seed: int) -> list[str]:
    """Every record of ``out`` until ``count`` have come, then whatever else is there (none,
    if nothing was repeated)."""
    got: list[str] = []
    deadline = time.monotonic() + DRAIN_DEADLINE_S
    while len(got) < count:
        assert time.monotonic() < deadline, (
            f"{len(got)} of {count} records after {DRAIN_DEADLINE_S:.0f}s (seed={seed}); "
            f"log:\n{runtime.log_text()[-4000:]}"
        )
        more = drain(runtime, "out")
        got += more
        if not more:
            time.sleep(0.05)  # the egress is pull-only: nothing to await
    return got + drain(runtime, "out")
