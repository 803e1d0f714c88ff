"""The Kafka ingress in cluster mode, against a real broker and real worker processes.

Each Kafka partition is read by one worker: the one that owns the cluster partition holding
that Kafka partition's position, which it writes in the same step as the messages (so the
batch's fencing covers the offsets too). When workers join, leave or die, the Kafka partitions
move with the cluster partitions, and the next reader resumes at the stored position. Every
record must reach its function exactly once: the counter reports ``ID:COUNT`` per record, so a
record read twice shows as a count too high, a lost one as a count missing.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from support.cluster_counter import counter_module, drained, popped, start_worker
from support.kafka import consume, consume_all, topic
from support.nats import cluster_name

PARTITIONS = 6


def _with_kafka(module: Path, bootstrap: str, name: str) -> Path:
    module.write_text(
        module.read_text() + "---\nkind: io.statefun.kafka.v1/ingress\nspec:\n  id: cl/orders\n"
        f"  address: {bootstrap}\n  consumerGroupId: cl-{name}\n"
        "  startupPosition:\n    type: earliest\n"
        f"  topics:\n    - topic: {name}\n      valueType: com.example/text\n"
        "      targets: [cl/counter]\n"
    )
    return module


def _produce(bootstrap: str, name: str, ids: list[str]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for address_id in ids:
        producer.produce(name, key=address_id.encode(), value=b"x")
    assert producer.flush(30) == 0


def _counted_once(records: list[str], ids: list[str], rounds: int) -> bool:
    return Counter(records) == Counter(f"{i}:{n}" for i in ids for n in range(1, rounds + 1))


def test_each_kafka_partition_is_read_by_one_worker_and_moves_with_its_owner(
    tmp_path: Path, nats_url: str, kafka_broker: Any
) -> None:
    name = topic(kafka_broker, PARTITIONS, prefix="cl")
    module = _with_kafka(counter_module(tmp_path), kafka_broker.bootstrap, name)
    cluster, ids = cluster_name("kafka"), [f"k{n}" for n in range(30)]
    one = start_worker(module, tmp_path / "one", nats_url, cluster, "one")
    two = start_worker(module, tmp_path / "two", nats_url, cluster, "two")
    three = None
    try:
        _produce(kafka_broker.bootstrap, name, ids)
        first = drained([one, two], len(ids), 200)
        two.kill()  # its Kafka partitions move to one once its lease ran out
        _produce(kafka_broker.bootstrap, name, ids)
        second = drained([one], len(ids), 200)
        three = start_worker(module, tmp_path / "three", nats_url, cluster, "three")
        _produce(kafka_broker.bootstrap, name, ids)  # handed over to three on the way
        third = drained([one, three], len(ids), 200)
        extra = popped(one, 1, deadline_s=0.5) + popped(three, 1, deadline_s=0.5)
    finally:
        one.terminate()
        two.kill()
        if three is not None:
            three.terminate()
    reading = {
        log: sorted(set(re.findall(rf"{name}/(\d+)@", path.read_text())))
        for log, path in (("one", one.log), ("two", two.log))
    }
    assert reading["two"], "both workers read some partitions"
    assert _counted_once(first + second + third, ids, 3)
    assert extra == []


EXACTLY_ONCE = """\
from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec, kafka_egress_message

functions = StatefulFunctions()


@functions.bind("ck/counter", specs=[ValueSpec("count", IntType)])
def counter(context, message):
    context.storage.count = (context.storage.count or 0) + 1
    line = f"{context.address.id}:{context.storage.count}"
    context.send_egress(kafka_egress_message("ck/out", "OUT", line, key=context.address.id))
"""


def _through_kafka(tmp_path: Path, bootstrap: str, source: str, out: str) -> Path:
    """Kafka in, a counter, Kafka out with ``exactly-once``."""
    (tmp_path / "kafka_counter.py").write_text(EXACTLY_ONCE.replace('"OUT"', repr(out)))
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: ck/*\n"
        "  import: kafka_counter.py:functions\n---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.kafka.v1/ingress\nspec:\n  id: ck/in\n"
        f"  address: {bootstrap}\n  consumerGroupId: ck-{source}\n"
        "  startupPosition:\n    type: earliest\n"
        f"  topics:\n    - topic: {source}\n      valueType: com.example/text\n"
        "      targets: [ck/counter]\n---\n"
        f"kind: io.statefun.kafka.v1/egress\nspec:\n  id: ck/out\n  address: {bootstrap}\n"
        "  deliverySemantic:\n    type: exactly-once\n    transactionTimeout: 1 min\n"
    )
    return module


def _lines(broker: Any, name: str, count: int) -> list[str]:
    """Every line of topic ``name`` a read_committed consumer sees, once ``count`` are there
    (waited for, bounded): a record published twice shows twice."""
    assert len(consume(broker, name, count, timeout_s=120)) == count
    return [message.value().decode() for message in consume_all(broker, name)]


def test_the_kafka_egress_publishes_each_partitions_records_once_as_workers_die_and_join(
    tmp_path: Path, nats_url: str, kafka_broker: Any
) -> None:
    """Each cluster partition's records are published by its owner under a transactional id
    named after the partition, so a worker killed mid-publication is fenced by the next owner,
    which goes on from the progress committed with the last transaction: every record is in
    the output topic once (a read_committed consumer counts), none lost, none twice."""
    source, out = topic(kafka_broker, PARTITIONS, prefix="ci"), topic(kafka_broker, 3, "co")
    module = _through_kafka(tmp_path, kafka_broker.bootstrap, source, out)
    cluster, ids = cluster_name("kout"), [f"e{n}" for n in range(30)]
    one = start_worker(module, tmp_path / "one", nats_url, cluster, "one")
    two = start_worker(module, tmp_path / "two", nats_url, cluster, "two")
    three = None
    try:
        _produce(kafka_broker.bootstrap, source, ids)
        assert len(consume(kafka_broker, out, len(ids), timeout_s=120)) == len(ids)
        _produce(kafka_broker.bootstrap, source, ids)
        two.kill()  # while round two is read, counted and published
        three = start_worker(module, tmp_path / "three", nats_url, cluster, "three")
        _produce(kafka_broker.bootstrap, source, ids)
        lines = _lines(kafka_broker, out, 3 * len(ids))
    finally:
        one.terminate()
        two.kill()
        if three is not None:
            three.terminate()
    assert Counter(lines) == Counter(f"{i}:{n}" for i in ids for n in (1, 2, 3))
