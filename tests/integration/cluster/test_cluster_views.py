"""A worker's view holds its own partitions' records (and every partition's markers, egress
records, dead letters, positions and relay receipts), not the whole database: a partition it
claims is read from the stream before it serves it, and one it releases is forgotten. Two
engines of one cluster on a real JetStream server, in this process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from support.nats import cluster_name

from pystatefun.store import NewMessage, Payload, StateValue, Step
from pystatefun.store.jetstream import JetStreamEngine
from pystatefun.types import Address

PARTITIONS, KEY_GROUPS = 8, 64
ADDRESSES = [Address("ns", "fn", f"a{n}") for n in range(40)]


def _engine(url: str, name: str, worker: str) -> JetStreamEngine:
    return JetStreamEngine([url], cluster=name, worker=worker, clock_ms=lambda: 1_000,
                           partitions=PARTITIONS, streams=1, replicas=1,
                           heartbeat_s=0.1, lease_s=0.6)  # fmt: skip


def _count(value: int) -> StateValue:
    return StateValue("count", Payload("ns/Int", str(value).encode()), 0, 0, None)


async def _until(done: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


def _held_partitions(engine: JetStreamEngine) -> set[int]:
    """The partitions whose state and mailboxes the engine's view holds."""
    layout, view = engine.layout, engine.view
    return {layout.partition_of(a.id) for a in (*view.state, *view.by_target)}


async def _write(engine: JetStreamEngine, value: int) -> None:
    """Each address the engine serves gets ``value``, and a message to the next address."""
    for n, address in enumerate(ADDRESSES):
        if engine.owns(address):
            following = ADDRESSES[(n + 1) % len(ADDRESSES)]
            outcome = await engine.commit(Step(
                state_address=address, state_puts=[_count(value)],
                messages=[NewMessage(following, address, Payload("ns/Int", b"m"))],
            ))  # fmt: skip
            assert outcome.committed, outcome.error


async def test_each_worker_reads_only_its_partitions_and_a_taken_over_one_whole(
    nats_url: str,
) -> None:
    name = cluster_name("views")
    first, second = _engine(nats_url, name, "w1"), _engine(nats_url, name, "w2")
    await first.open(KEY_GROUPS)
    second_open = False
    try:
        assert first.ownership.serving == set(range(PARTITIONS))
        await _write(first, 1)
        await second.open(KEY_GROUPS)
        second_open = True
        await _until(lambda: len(first.ownership.serving) == PARTITIONS // 2
                     and len(second.ownership.serving) == PARTITIONS // 2,
                     "the partitions were never shared out")  # fmt: skip
        await _write(second, 2)
        await _write(first, 3)
        for engine in (first, second):
            assert _held_partitions(engine) <= engine.ownership.serving
            for address in ADDRESSES:
                if engine.owns(address):  # read from the stream when it was claimed
                    state = await engine.read_state(address)
                    expected = b"2" if engine is second else b"3"
                    assert state["count"].payload.value == expected
        # Each mailbox has its messages, sent by either worker, at its owner only.
        for address in ADDRESSES:
            owner = first if first.owns(address) else second
            other = second if owner is first else first
            assert len(await owner.read_batch(address, 10)) >= 2
            assert address not in other.view.by_target
        seconds = {address for address in ADDRESSES if second.owns(address)}
        await second.close()
        second_open = False
        await _until(lambda: first.ownership.serving == set(range(PARTITIONS)),
                     "the first worker never took the partitions back")  # fmt: skip
        for address in ADDRESSES:  # the released ones read back in, with the second's writes
            state = await first.read_state(address)
            assert state["count"].payload.value == (b"2" if address in seconds else b"3")
        assert _held_partitions(first) == set(range(PARTITIONS)) & {
            first.layout.partition_of(a.id) for a in ADDRESSES
        }
    finally:
        if second_open:
            await second.close()
        await first.close()
