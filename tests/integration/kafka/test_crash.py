"""Model-based crash test of Kafka in, state, and Kafka out: ``kill -9`` of ``pystatefun run`` at
random instants loses and repeats nothing, in state or in what a ``read_committed`` consumer sees.

Random keyed records go to two input topics in chunks. ``kafka/counter`` (one address per key)
counts its messages in state, sends ``<key>:<value>:<count>`` to egress topic A and forwards it to
one of four ``kafka/total`` addresses, which count theirs and send ``<line>|<total>:<count>`` to
egress topic B (exactly-once). A real ``pystatefun run`` reads each chunk and is SIGKILLed part way
through (once the positions it stored pass a seeded random point of the chunk, watched from its
data dir; its egress is publishing meanwhile), then restarted on the same data dir.

At the end, against a model of what the records should do: topic A holds each key's lines once, in
its order, counted 1..n; topic B holds each line of A once, and each total's counts are 1..n in
order; the state of every address is its count. A record read twice shows as a repeated value with
a higher count, a lost one as a gap. Rerun a failing seed with
``PYSTATEFUN_KAFKA_CRASH_SEEDS=<seed> python3 dev.py test -k crash``.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from support.data_dir_watch import kill_at, read_number, state_counts
from support.kafka import consume, consume_all, topic
from support.runtime_process import RuntimeProcess, start_runtime

SEEDS = [int(s) for s in os.environ.get("PYSTATEFUN_KAFKA_CRASH_SEEDS", "5,6").split(",")]
CHUNKS = 4
PER_CHUNK = 2500
KEYS = 12
TOTALS = 4
SETTLE_DEADLINE_S = 120.0
KILL_WAIT_S = 20.0

FUNCTIONS = """\
import zlib

from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec, kafka_egress_message
from pystatefun.sdk import message_builder

functions = StatefulFunctions()


@functions.bind("kafka/counter", specs=[ValueSpec("count", IntType)])
def counter(context, message):
    value = message.raw_value().decode()
    context.storage.count = (context.storage.count or 0) + 1
    line = f"{context.address.id}:{value}:{context.storage.count}"
    key = context.address.id
    context.send_egress(kafka_egress_message("com.example/out", "TOPIC_A", line, key=key))
    total = f"t{zlib.crc32(value.encode()) % TOTALS}"
    context.send(message_builder("kafka/total", total, str_value=line))


@functions.bind("kafka/total", specs=[ValueSpec("count", IntType)])
def total(context, message):
    context.storage.count = (context.storage.count or 0) + 1
    line = f"{message.as_string()}|{context.address.id}:{context.storage.count}"
    key = context.address.id
    context.send_egress(kafka_egress_message("com.example/out", "TOPIC_B", line, key=key))
"""


def _module(tmp_path: Path, broker: Any, sources: list[str], outputs: tuple[str, str]) -> Path:
    functions = FUNCTIONS.replace("TOPIC_A", outputs[0]).replace("TOPIC_B", outputs[1])
    (tmp_path / "crash_model.py").write_text(functions.replace("TOTALS", str(TOTALS)))
    listed = "".join(
        f"    - topic: {name}\n      valueType: com.example/text\n      targets: [kafka/counter]\n"
        for name in sources
    )
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: kafka/*\n"
        "  import: crash_model.py:functions\n---\n"
        "kind: io.statefun.kafka.v1/ingress\nspec:\n  id: com.example/in\n"
        f"  address: {broker.bootstrap}\n  consumerGroupId: crash-{sources[0]}\n"
        f"  startupPosition:\n    type: earliest\n  topics:\n{listed}---\n"
        "kind: io.statefun.kafka.v1/egress\nspec:\n  id: com.example/out\n"
        f"  address: {broker.bootstrap}\n  deliverySemantic:\n    type: exactly-once\n"
        "    transactionTimeout: 1 min\n---\n"
        # start_runtime waits for the playground's URLs; the test sends nothing through them.
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [unused]\n"
    )
    return module


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_9_at_random_instants_loses_and_repeats_nothing_in_state_or_kafka(
    seed: int, kafka_broker: Any, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    sources = [topic(kafka_broker, 3, "crash-in"), topic(kafka_broker, 2, "crash-in")]
    outputs = (topic(kafka_broker, 3, "crash-a"), topic(kafka_broker, 2, "crash-b"))
    module = _module(tmp_path, kafka_broker, sources, outputs)
    data_dir = tmp_path / "data"
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "enable.idempotence": True})
    produced: list[tuple[str, str]] = []
    for chunk in range(CHUNKS):
        rows = [(f"k{rng.randrange(KEYS)}", f"v{chunk * PER_CHUNK + n}") for n in range(PER_CHUNK)]
        for key, value in rows:
            producer.produce(rng.choice(sources), key=key.encode(), value=value.encode())
        assert producer.flush(30) == 0
        produced += rows
        runtime = start_runtime(module, data_dir)
        kill_at(runtime, data_dir, len(produced) - rng.randrange(PER_CHUNK // 2), KILL_WAIT_S)
    runtime = start_runtime(module, data_dir)
    try:
        _settle(runtime, data_dir, kafka_broker, outputs, len(produced), seed)
        counts = {
            typename: state_counts(data_dir, typename)
            for typename in ("kafka/counter", "kafka/total")
        }
    finally:
        runtime.terminate()
    lines_a = [m.value().decode() for m in consume_all(kafka_broker, outputs[0])]
    lines_b = [m.value().decode() for m in consume_all(kafka_broker, outputs[1])]
    _check(produced, lines_a, lines_b, counts, seed)


def _check(
    produced: list[tuple[str, str]],
    lines_a: list[str],
    lines_b: list[str],
    counts: dict[str, dict[str, int]],
    seed: int,
) -> None:
    """Compare what came out with the model of what ``produced`` should do."""
    where = f"(seed={seed})"
    values_a = Counter(line.split(":")[1] for line in lines_a)
    assert not [v for v, n in values_a.items() if n > 1], f"repeated on A {where}"
    # A key's records share one input partition only per input topic, so each key's lines
    # are in an order the model cannot know: compare per key as sets, then check the counts.
    by_key: dict[str, list[str]] = {}
    for key, value in produced:
        by_key.setdefault(key, []).append(value)
    seen_a: dict[str, list[tuple[str, int]]] = {}
    for line in lines_a:  # topic A is keyed by the counter's key: one partition, in order
        key, value, count = line.rsplit(":", 2)
        seen_a.setdefault(key, []).append((value, int(count)))
    for key, values in sorted(by_key.items()):
        mine = seen_a.get(key, [])
        assert sorted(v for v, _ in mine) == sorted(values), f"{key}'s values on A {where}"
        assert [c for _, c in mine] == list(range(1, len(values) + 1)), f"{key}'s counts {where}"
    assert counts["kafka/counter"] == {k: len(v) for k, v in by_key.items()}, f"state {where}"
    seen_b: dict[str, list[int]] = {}
    forwarded = []
    for line in lines_b:
        sent, _, tail = line.rpartition("|")
        total, count = tail.split(":")
        seen_b.setdefault(total, []).append(int(count))
        forwarded.append(sent)
    assert Counter(forwarded) == Counter(lines_a), f"B against A {where}"
    for total, mine in seen_b.items():
        assert mine == list(range(1, len(mine) + 1)), f"{total}'s counts {where}"
    assert counts["kafka/total"] == {t: len(c) for t, c in seen_b.items()}, f"state {where}"
    assert len(lines_a) == len(lines_b) == len(produced), where


def _settle(
    runtime: RuntimeProcess,
    data_dir: Path,
    broker: Any,
    outputs: tuple[str, str],
    count: int,
    seed: int,
) -> None:
    """Wait until every record was read, every message run and every egress record published:
    then the output topics hold all there will ever be."""
    for name in outputs:  # each has ``count`` records, read_committed
        got = consume(broker, name, count, SETTLE_DEADLINE_S)
        assert len(got) >= count, (
            f"{len(got)} of {count} records on {name} (seed={seed}); "
            f"log:\n{runtime.log_text()[-4000:]}"
        )
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    query = (
        "SELECT (SELECT SUM(CAST(position AS INTEGER)) FROM positions) = ? "
        "AND NOT EXISTS (SELECT 1 FROM inbox) AND NOT EXISTS (SELECT 1 FROM egress)"
    )
    while read_number(data_dir, query.replace("?", str(count))) != 1:
        assert time.monotonic() < deadline, f"not settled (seed={seed})"
        time.sleep(0.05)  # the process offers no event to wait on
