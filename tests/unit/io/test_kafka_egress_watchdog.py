"""The Kafka egress replaces a client stuck inside ``publish`` (librdkafka's
send_offsets_to_transaction can wait forever while the group coordinator is away,
confluentinc/librdkafka#5456): past the deadline a new client takes over, and what the stuck
one held is published by the new one, deleted once.

The clients here are stand-ins: a broker cannot be made to hit that librdkafka bug on demand.
The egress against a real broker, broker restarts included, is tested in
``tests/integration/kafka/test_egress.py``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import cast

import pytest

from pystatefun.io import kafka_egress
from pystatefun.io.api import RuntimeHandle
from pystatefun.module import KafkaEgress, load_module
from pystatefun.store import EgressRecord, Payload


class _Client:
    """A publisher that blocks in ``publish`` until ``released``, if told to."""

    def __init__(self, blocks: bool, released: threading.Event) -> None:
        self.blocks = blocks
        self.released = released
        self.published: list[int] = []
        self.closed = False

    def setup(self) -> int:
        return 0

    def publish(self, records: Sequence[EgressRecord]) -> None:
        if self.blocks:
            self.released.wait(30)
        self.published += [r.seq for r in records]

    def close(self, *, wait: bool) -> None:
        self.closed = True


class _Runtime:
    """One shard of two committed records; what the egress deletes."""

    instance_id = "test"

    def __init__(self) -> None:
        self.records = [EgressRecord(n, "t/out", "topic", Payload("x", b"")) for n in (1, 2)]
        self.deleted: list[int] = []
        self.done = asyncio.Event()

    def egress_shards(self) -> tuple[int, ...]:
        return (0,)

    def watch_serving(self, changed: Callable[[], None]) -> None:
        del changed

    async def egress_records(
        self, egress: str, *, shard: int, after_seq: int, limit: int
    ) -> list[EgressRecord]:
        return [r for r in self.records if r.seq > after_seq and r.seq not in self.deleted]

    async def egress_published(self, egress: str, *, shard: int, up_to_seq: int) -> None:
        self.deleted += [r.seq for r in self.records if r.seq <= up_to_seq]
        if up_to_seq == 2:
            self.done.set()


def _spec(tmp_path: Path) -> KafkaEgress:
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.statefun.kafka.v1/egress\nspec:\n  id: t/out\n  address: 127.0.0.1:9\n"
        "  deliverySemantic:\n    type: exactly-once\n    transactionTimeout: 1 min\n"
    )
    (egress,) = load_module(module).egresses
    assert isinstance(egress, KafkaEgress)
    return egress


async def test_a_client_stuck_in_publish_is_replaced_and_its_batch_published_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = threading.Event()
    clients: list[_Client] = []

    def make(spec: KafkaEgress, instance_id: str, *, shard: int | None = None) -> _Client:
        # The first is the settings check at start, the second gets stuck, the third works.
        clients.append(_Client(blocks=len(clients) == 1, released=released))
        return clients[-1]

    monkeypatch.setattr(kafka_egress, "make_publisher", make)
    monkeypatch.setattr(kafka_egress, "PUBLISH_DEADLINE_S", 0.2)
    runtime = _Runtime()
    egress = kafka_egress.KafkaEgressConnector(_spec(tmp_path))
    await egress.start(cast(RuntimeHandle, runtime))
    try:
        await asyncio.wait_for(runtime.done.wait(), 10)
    finally:
        released.set()  # the stuck thread returns, long after it was given up on
        await egress.stop()
    check, stuck, working = clients
    assert check.closed  # made only to check the settings
    assert stuck.closed is False  # its thread held it: not touched while stuck
    assert working.published == [1, 2]
    assert runtime.deleted == [1, 2]
