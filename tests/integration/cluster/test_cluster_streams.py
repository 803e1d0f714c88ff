"""Partitions spread over several streams: messages between them go through an outbox in the
sender's stream and are delivered once, deduplicated at the receiver by source partition and
outbox sequence (``pystatefun.store.jetstream._relay``). On a real JetStream server, with the
engine itself (the contract suite runs all of the engine's contract on two streams too)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import nats
import pytest
from support.nats import cluster_name

from pystatefun.errors import ClusterStorageError
from pystatefun.store import RELAYED, NewMessage, Payload, StateValue, Step
from pystatefun.store.contents import MessageContent
from pystatefun.store.jetstream import JetStreamEngine, cluster_contents, cluster_status
from pystatefun.store.jetstream._batch import Record
from pystatefun.store.jetstream._connection import publish_batch
from pystatefun.store.jetstream._layout import ClusterLayout
from pystatefun.store.jetstream._view import Mark, Outbound
from pystatefun.types import Address

PARTITIONS, STREAMS, KEY_GROUPS = 4, 2, 8


def _text(value: str) -> Payload:
    return Payload("ns/Text", value.encode())


def _in_stream(layout: ClusterLayout, stream: int, prefix: str) -> Address:
    """An address whose partition lives in ``stream``."""
    for n in range(1000):
        address = Address("ns", "fn", f"{prefix}{n}")
        if layout.stream_of(layout.partition_of(address.id)) == stream:
            return address
    raise AssertionError("no such address")


def _engine(url: str, name: str, worker: str = "w1") -> JetStreamEngine:
    return JetStreamEngine([url], cluster=name, worker=worker, clock_ms=lambda: 1_000,
                           partitions=PARTITIONS, streams=STREAMS)  # fmt: skip


async def _made(url: str, name: str) -> tuple[ClusterLayout, Address, Address]:
    """Make cluster ``name`` (a worker opens it and leaves); its layout, and a sender and a
    receiver in streams 0 and 1."""
    first = _engine(url, name)
    await first.open(KEY_GROUPS)
    layout = first.layout
    await first.close()
    return layout, _in_stream(layout, 0, "s"), _in_stream(layout, 1, "r")


@pytest.fixture
async def opened(nats_url: str) -> AsyncIterator[JetStreamEngine]:
    engine = _engine(nats_url, cluster_name("streams"))
    await engine.open(KEY_GROUPS)
    yield engine
    await engine.close()


async def test_a_message_to_another_stream_is_in_its_mailbox_once_its_step_commits(
    opened: JetStreamEngine, nats_url: str
) -> None:
    layout = opened.layout
    sender, receiver = _in_stream(layout, 0, "s"), _in_stream(layout, 1, "r")
    step = Step(
        state_address=sender,
        state_puts=[StateValue("n", _text("1"), 0, 0, None)],
        messages=[NewMessage(receiver, sender, _text(f"m{n}")) for n in range(3)],
    )
    outcome = await opened.commit(step)
    assert outcome.committed
    assert outcome.seqs == (RELAYED,) * 3  # the runtime does not hold them: the store delivers
    waiting = await opened.read_batch(receiver, 10)
    assert [m.payload.value for m in waiting] == [b"m0", b"m1", b"m2"]
    assert {m.caller for m in waiting} == {sender}
    # Exactly once in a copy of the whole cluster, whether the relay deleted its outbox yet.
    contents = await asyncio.to_thread(cluster_contents, [nats_url], opened.cluster)
    messages = [r for r in contents.records if isinstance(r, MessageContent)]
    assert sorted(m.payload.value for m in messages) == [b"m0", b"m1", b"m2"]


async def test_an_outbox_record_already_received_is_deleted_not_delivered_again(
    nats_url: str,
) -> None:
    """A relay that stored the messages and the receiver's mark, then died before deleting
    its outbox (written here by hand, as it would have left it): the next owner of the
    partition must not deliver them a second time."""
    name = cluster_name("dedup")
    layout, sender, receiver = await _made(nats_url, name)
    source = layout.partition_of(sender.id)
    target = layout.partition_of(receiver.id)
    message = MessageContent(receiver, sender, _text("once"), 1_000)
    nc = await nats.connect(nats_url)
    try:
        outbox = Record(layout.subject("ob", source, "x1"), Outbound(message))
        last = await _publish(nc, [outbox])
        delivered = Record(layout.subject("in", target, "x2"), message)
        mark = Record(layout.subject("rx", target, str(source)), Mark(last))
        await _publish(nc, [delivered, mark])
    finally:
        await nc.close()

    second = _engine(nats_url, name, worker="w2")
    await second.open(KEY_GROUPS)
    try:
        assert [m.payload.value for m in await second.read_batch(receiver, 10)] == [b"once"]
        deadline = time.monotonic() + 10
        while second.view.outbox:  # the relay deletes what the receiver's mark covers
            assert time.monotonic() < deadline, "the covered outbox record was never deleted"
            await asyncio.sleep(0.02)
        assert [m.payload.value for m in await second.read_batch(receiver, 10)] == [b"once"]
    finally:
        await second.close()
    contents = await asyncio.to_thread(cluster_contents, [nats_url], name)
    messages = [r for r in contents.records if isinstance(r, MessageContent)]
    assert [m.payload.value for m in messages] == [b"once"]


async def test_an_outbox_left_by_a_dead_owner_is_relayed_by_the_next(nats_url: str) -> None:
    """An outbox record whose relay never ran (its worker died right after the step)."""
    name = cluster_name("left")
    layout, sender, receiver = await _made(nats_url, name)
    message = MessageContent(receiver, sender, _text("late"), 1_000)
    nc = await nats.connect(nats_url)
    try:
        subject = layout.subject("ob", layout.partition_of(sender.id), "x1")
        await _publish(nc, [Record(subject, Outbound(message))])
    finally:
        await nc.close()
    contents = await asyncio.to_thread(cluster_contents, [nats_url], name)
    assert [r for r in contents.records if isinstance(r, MessageContent)] == [message]

    second = _engine(nats_url, name, worker="w2")
    await second.open(KEY_GROUPS)
    try:
        deadline = time.monotonic() + 10
        while not await second.read_batch(receiver, 10):
            assert time.monotonic() < deadline, "the outbox was never relayed"
            await asyncio.sleep(0.02)
        assert [m.payload.value for m in await second.read_batch(receiver, 10)] == [b"late"]
    finally:
        await second.close()


async def _publish(nc: nats.NATS, records: list[Record]) -> int:
    layout_kind = {r.subject: r.subject.split(".")[3] for r in records}
    return await publish_batch(nc, records, batch_id=f"test{time.monotonic_ns()}",
                               kind_of=layout_kind, marker_body=b"", timeout=10)  # fmt: skip


async def test_a_worker_asking_for_another_number_of_streams_is_refused(nats_url: str) -> None:
    name = cluster_name("count")
    await _made(nats_url, name)
    other = JetStreamEngine([nats_url], cluster=name, worker="w2", clock_ms=lambda: 1_000,
                            partitions=PARTITIONS, streams=3)  # fmt: skip
    with pytest.raises(ClusterStorageError, match="was made with 2 stream") as refused:
        await other.open(KEY_GROUPS)
    assert "leave --streams out" in str(refused.value)
    taken = JetStreamEngine([nats_url], cluster=name, worker="w3", clock_ms=lambda: 1_000,
                            partitions=PARTITIONS)  # fmt: skip
    await taken.open(KEY_GROUPS)  # no number given: the cluster's
    try:
        assert taken.layout.streams == STREAMS
    finally:
        await taken.close()


async def test_status_lists_every_stream_and_who_owns_each_partition(
    opened: JetStreamEngine, nats_url: str
) -> None:
    await opened.commit(Step(messages=[NewMessage(Address("ns", "fn", "x"), None, _text("1"))]))
    status = await asyncio.to_thread(cluster_status, [nats_url], opened.cluster)
    streams = status["streams"]
    assert isinstance(streams, list)
    assert [s["stream"] for s in streams] == opened.layout.stream_names
    assert sum(int(s["last_seq"]) for s in streams) > 0
    assert status["owners"] == {str(p): "w1" for p in range(PARTITIONS)}
    workers = status["workers"]
    assert isinstance(workers, list)
    assert [(w["worker"], w["serving"], w["lag"]) for w in workers] == [
        ("w1", list(range(PARTITIONS)), 0)
    ]


async def test_a_step_consuming_another_streams_message_is_refused_alone(
    opened: JetStreamEngine,
) -> None:
    layout = opened.layout
    sender, receiver = _in_stream(layout, 0, "s"), _in_stream(layout, 1, "r")
    stored = await opened.commit(Step(messages=[NewMessage(receiver, None, _text("m"))]))
    assert stored.committed
    wrong = await opened.commit(Step(state_address=sender, consumed=[stored.seqs[0]]))
    assert not wrong.committed
    assert "its own partition's stream" in (wrong.error or "")
    # Nothing of it was written, and the engine goes on committing.
    assert [m.payload.value for m in await opened.read_batch(receiver, 10)] == [b"m"]
    assert (await opened.commit(Step(state_address=receiver, consumed=[stored.seqs[0]]))).committed
    assert await opened.read_batch(receiver, 10) == []
