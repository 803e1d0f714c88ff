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
from support.cluster_counter import counter_module, popped, start_worker
from support.kafka import topic
from support.nats import cluster_name
from support.runtime_process import RuntimeProcess

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


def _drained(workers: list[RuntimeProcess], count: int) -> list[str]:
    records: list[str] = []
    for _ in range(200):  # bounded: each round waits at most a second per worker
        for worker in workers:
            records += popped(worker, count - len(records), deadline_s=1)
        if len(records) >= count:
            break
    return records


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
        first = _drained([one, two], len(ids))
        two.kill()  # its Kafka partitions move to one once its lease ran out
        _produce(kafka_broker.bootstrap, name, ids)
        second = _drained([one], len(ids))
        three = start_worker(module, tmp_path / "three", nats_url, cluster, "three")
        _produce(kafka_broker.bootstrap, name, ids)  # handed over to three on the way
        third = _drained([one, three], len(ids))
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
