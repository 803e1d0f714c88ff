"""``ShardedPublishing``: one publishing loop per shard the runtime publishes, started and
stopped as shards move, each failure contained to its shard.

The runtime here is a stand-in with only the two members the supervisor uses (the shards it
publishes now, and the hook that says they moved): what is under test is the supervision,
which no other part takes part in. The egresses that use it run against real brokers in
``tests/integration/kafka`` and ``tests/integration/cluster/test_cluster_kafka.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from pystatefun.io.api import RuntimeHandle
from pystatefun.io.shard_publishing import PublishingShard, ShardedPublishing


class _Moving:
    """The shards a runtime publishes, changed by the test, telling the watcher."""

    def __init__(self, shards: tuple[int, ...]) -> None:
        self.shards = shards
        self._watchers: list[Callable[[], None]] = []

    def egress_shards(self) -> tuple[int, ...]:
        return self.shards

    def watch_serving(self, changed: Callable[[], None]) -> None:
        self._watchers.append(changed)

    def move(self, shards: tuple[int, ...]) -> None:
        self.shards = shards
        for changed in self._watchers:
            changed()


class _Loops:
    """Publishing loops that record their life, each idling until told to stop."""

    def __init__(self) -> None:
        self.running: set[int] = set()
        self.ended: list[int] = []
        self.woken: list[int] = []
        self.fail_once: set[int] = set()
        self.changed = asyncio.Condition()

    async def publish(self, runtime: RuntimeHandle, shard: PublishingShard) -> None:
        async with self.changed:
            self.running.add(shard.number)
            self.changed.notify_all()
        try:
            if shard.number in self.fail_once:
                self.fail_once.discard(shard.number)
                raise RuntimeError("the brokers said no")
            while not shard.stopping:
                await shard.idle(60)
                if not shard.stopping:
                    async with self.changed:
                        self.woken.append(shard.number)
                        self.changed.notify_all()
        finally:
            async with self.changed:
                self.running.discard(shard.number)
                self.ended.append(shard.number)
                self.changed.notify_all()

    async def until(self, check: Callable[[], bool]) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(check), 10)


async def test_a_loop_runs_per_shard_and_follows_the_shards_as_they_move() -> None:
    runtime, loops = _Moving((0, 1)), _Loops()
    publishing = ShardedPublishing("test", loops.publish)
    publishing.start(cast(RuntimeHandle, runtime))
    await loops.until(lambda: loops.running == {0, 1})
    runtime.move((1, 2, 3))  # 0 moved away, 2 and 3 arrived
    await loops.until(lambda: loops.running == {1, 2, 3})
    assert loops.ended == [0]
    publishing.committed()  # records committed: every loop looks
    await loops.until(lambda: sorted(loops.woken) == [1, 2, 3])
    await publishing.stop()
    assert loops.running == set()
    assert sorted(loops.ended) == [0, 1, 2, 3]


async def test_a_failing_shard_starts_again_and_stops_no_other() -> None:
    runtime, loops = _Moving((0, 1)), _Loops()
    loops.fail_once = {1}
    publishing = ShardedPublishing("test", loops.publish)
    publishing.start(cast(RuntimeHandle, runtime))
    await loops.until(lambda: loops.ended.count(1) == 1)  # failed once ...
    await loops.until(lambda: loops.running == {0, 1})  # ... and runs again, 0 throughout
    assert loops.ended == [1]
    await publishing.stop()
    assert sorted(loops.ended) == [0, 1, 1]
