"""``ShardedPublishing``: an egress that publishes runs one publishing loop per shard of egress
records this runtime publishes (``RuntimeHandle.egress_shards``).

A runtime with a store of its own has one shard, always. A cluster worker publishes the
records of the partitions it owns, and those move between workers: a loop starts for a shard
that arrives, and a shard that leaves is told to stop (``PublishingShard.stopping``), which it
does after the batch in hand. Its next owner goes on from the progress the publisher stored
(for Kafka's exactly-once, the transaction's offsets, under a transactional id named after
the shard, which also fences a previous owner still publishing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import final

from pystatefun.io.api import RuntimeHandle

__all__ = ["PublishingShard", "ShardedPublishing"]

_log = logging.getLogger("pystatefun.io")
#: How often the shards are looked at besides when the runtime says they moved: a release
#: says so just before the partitions leave.
_CHECK_S = 1.0
_RESTART_S = 1.0


@final
class PublishingShard:
    """One shard's loop's view of its life: ``stopping`` once it should end, and ``idle`` to
    wait for records (or the end)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.stopping = False
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self.stopping = True
        self._wake.set()

    async def idle(self, seconds: float) -> None:
        """Wait ``seconds``, or until records are committed or the shard should stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()


@final
class ShardedPublishing:
    """Runs ``publish(runtime, shard)`` for every shard ``runtime`` publishes, while it does."""

    def __init__(
        self, name: str, publish: Callable[[RuntimeHandle, PublishingShard], Awaitable[None]]
    ) -> None:
        self._name = name
        self._publish = publish
        self._shards: dict[int, PublishingShard] = {}
        self._changed = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self, runtime: RuntimeHandle) -> None:
        runtime.watch_serving(self._changed.set)
        self._task = asyncio.create_task(self._supervise(runtime), name=self._name)

    def committed(self) -> None:
        """Records were committed: every loop looks for them."""
        for shard in self._shards.values():
            shard.wake()

    async def stop(self) -> None:
        """Every loop finishes the batch in hand; the rest waits in the store."""
        self._stopping = True
        self._changed.set()
        if self._task is not None:
            await self._task

    async def _supervise(self, runtime: RuntimeHandle) -> None:
        async with asyncio.TaskGroup() as group:
            while True:
                wanted = set() if self._stopping else set(runtime.egress_shards())
                for number in wanted - self._shards.keys():
                    shard = self._shards[number] = PublishingShard(number)
                    group.create_task(self._run(runtime, shard))
                for number in self._shards.keys() - wanted:
                    self._shards[number].stop()
                if self._stopping:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), _CHECK_S)
                self._changed.clear()

    async def _run(self, runtime: RuntimeHandle, shard: PublishingShard) -> None:
        try:
            await self._publish(runtime, shard)
        except Exception:  # noqa: BLE001 - one shard's failure stops no other; it restarts
            _log.exception("%s: publishing shard %d failed; it starts again in %.0f s",
                           self._name, shard.number, _RESTART_S)  # fmt: skip
            await shard.idle(_RESTART_S)
        finally:
            del self._shards[shard.number]
            self._changed.set()  # started again if it is still, or again, this runtime's
