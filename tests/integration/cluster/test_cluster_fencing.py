"""What keeps a worker exact when its own view of a step is in doubt: a timer fired by a step
built from an old view is not fired twice, and a batch of this worker's that its committer gave
up on (an acknowledgement lost, a lookup that missed it) is read back into the view by the
tail. On a real JetStream server, with the engine itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import nats
import pytest
from support.nats import cluster_name

from pystatefun.store import NewMessage, NewTimer, Payload, Step
from pystatefun.store.contents import MessageContent
from pystatefun.store.jetstream import JetStreamEngine
from pystatefun.store.jetstream._batch import Record
from pystatefun.store.jetstream._connection import publish_batch
from pystatefun.types import Address

SENDER, TARGET = Address("ns", "fn", "sender"), Address("ns", "fn", "target")


def _text(value: str) -> Payload:
    return Payload("ns/Text", value.encode())


@pytest.fixture(params=[1, 2], ids=["1-stream", "2-streams"])
async def engine(nats_url: str, request: pytest.FixtureRequest) -> AsyncIterator[JetStreamEngine]:
    name = cluster_name("fencing")
    opened = JetStreamEngine([nats_url], cluster=name, worker="w1", clock_ms=lambda: 10_000,
                             partitions=4, streams=request.param)  # fmt: skip
    await opened.open(8)
    yield opened
    await opened.close()


async def test_a_timer_is_fired_once_even_by_a_step_built_from_an_old_read(
    engine: JetStreamEngine,
) -> None:
    """Two steps firing the same due timer (the second read the timers before the first
    committed): the second is refused, and its message is not sent."""
    timer = NewTimer(1, SENDER, None, TARGET, _text("t"))
    assert (await engine.commit(Step(timer_ops=[timer]))).committed
    due = await engine.due_timers(10_000, 10)
    assert len(due) == 1
    fire = [t.timer_id for t in due]
    first = Step(fired_timers=fire, messages=[NewMessage(TARGET, SENDER, _text("t"))])
    again = Step(fired_timers=fire, messages=[NewMessage(TARGET, SENDER, _text("t"))])
    assert (await engine.commit(first)).committed
    outcome = await engine.commit(again)
    assert not outcome.committed
    assert outcome.error is not None
    assert "fired meanwhile" in outcome.error
    assert [m.payload.value for m in await engine.read_batch(TARGET, 10)] == [b"t"]
    assert await engine.due_timers(10_000, 10) == []


async def test_a_batch_its_committer_gave_up_on_is_read_in_by_the_tail(
    engine: JetStreamEngine, nats_url: str
) -> None:
    """A batch stored under this worker's own prefix that no acknowledgement applied (written
    here by hand, as a publish whose acknowledgement and lookup both failed leaves it): the
    tail must not skip it as "in the view already"."""
    layout = engine.layout
    partition = layout.partition_of(TARGET.id)
    message = MessageContent(TARGET, SENDER, _text("stored"), 10_000)
    record = Record(layout.subject("in", partition, "gaveup1"), message)
    nc = await nats.connect(nats_url)
    try:
        await publish_batch(nc, [record], batch_id=f"{engine.writers.instance}gaveup",
                            kind_of={record.subject: "in"}, marker_body=b"",
                            timeout=10)  # fmt: skip
    finally:
        await nc.close()
    deadline = time.monotonic() + 10
    while not await engine.read_batch(TARGET, 10):
        assert time.monotonic() < deadline, "the tail skipped a batch nobody applied"
        await asyncio.sleep(0.02)
    assert [m.payload.value for m in await engine.read_batch(TARGET, 10)] == [b"stored"]
