"""A real Apache Kafka broker for the tests (``tools/kafka/broker.py``), and small helpers.

``kafka_broker`` is one broker per test session, on free ports in a scratch directory, started
from the jars ``tools/kafka/pom.xml`` names (resolved from Maven Central once, into the
git-ignored ``.cache/``) and stopped by its PID at the end. ``topic(broker, partitions)`` makes a
fresh topic per test, so tests never see each other's records.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from support.repo_tools import repo_tool

broker_tool = repo_tool("kafka/broker.py")
KafkaBroker = broker_tool.KafkaBroker
_topics = itertools.count()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


def topic(broker: Any, partitions: int = 1, prefix: str = "t") -> str:
    """A new topic with ``partitions`` partitions, created and ready."""
    name = f"{prefix}-{next(_topics)}-{time.monotonic_ns()}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)
    return name


def consume(
    broker: Any, name: str, count: int, timeout_s: float = 30.0, *, committed: bool = True
) -> list[Message]:
    """The first ``count`` records of topic ``name``, from the start, as a ``read_committed``
    consumer sees them (``committed`` False: ``read_uncommitted``); fewer if the time runs out."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"reader-{name}-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
        }
    )
    consumer.subscribe([name])
    got: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"consuming {name}: {error}")
            if error is None:
                got.append(message)
    finally:
        consumer.close()
    return got


def consume_all(broker: Any, name: str, timeout_s: float = 30.0) -> list[Message]:
    """Every record of topic ``name`` a ``read_committed`` consumer sees now: read from the
    start until each partition reports its end."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"all-{name}-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = consumer.list_topics(name, timeout=timeout_s).topics[name].partitions
        consumer.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in partitions])
        got: list[Message] = []
        ended: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(ended) < len(partitions):
            assert time.monotonic() < deadline, f"{name}: partitions {ended} of {partitions} read"
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is None:
                got.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                ended.add(message.partition())
            else:
                raise RuntimeError(f"consuming {name}: {error}")
    finally:
        consumer.close()
    return got
