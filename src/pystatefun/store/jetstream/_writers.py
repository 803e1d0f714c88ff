"""A worker's committers, one per stream of the cluster, seen as one writer.

A step goes to the committer of the stream its partition lives in; claims and releases are
split by stream (each stream's markers fence its own batches). The markers of all streams are
kept in one map: partitions are disjoint, so each committer writes only its own entries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, final

from pystatefun.store.engine import EngineStatistics
from pystatefun.store.jetstream._commits import Committer, Job

if TYPE_CHECKING:
    import asyncio

    from nats.js import JetStreamContext

    from pystatefun.store.jetstream._layout import ClusterLayout

__all__ = ["Writers"]


@final
class Writers:
    """The committers of ``layout``'s streams, stream 0's first."""

    def __init__(self, layout: ClusterLayout, committers: list[Committer]) -> None:
        self._layout = layout
        self.committers = committers
        self.markers = committers[0].markers  # every committer's: one map
        self.instance = committers[0].instance

    def __iter__(self) -> Iterator[Committer]:
        return iter(self.committers)

    def of(self, partition: int) -> Committer:
        """The committer of the stream holding ``partition``."""
        return self.committers[self._layout.stream_of(partition)]

    async def start(self, js: JetStreamContext, *, replicas: int) -> None:
        for committer in self.committers:
            await committer.start(js, replicas=replicas)

    async def stop(self) -> None:
        """Commit what every stream has queued, then stop."""
        for committer in self.committers:
            await committer.stop()

    def queue(self, job: Job, partition: int) -> asyncio.Future[Any]:
        return self.of(partition).queue(job)

    def _by_stream(self, partitions: Iterable[int]) -> dict[int, list[int]]:
        split: dict[int, list[int]] = {}
        for partition in sorted(partitions):
            split.setdefault(self._layout.stream_of(partition), []).append(partition)
        return split

    async def claim(self, expected: dict[int, int]) -> set[int]:
        """Claim the partitions of ``expected`` (each fenced on the marker sequence given):
        the ones claimed (a stream whose marker moved meanwhile claims none of its own)."""
        claimed: set[int] = set()
        for stream, partitions in self._by_stream(expected).items():
            if await self.committers[stream].claim({p: expected[p] for p in partitions}):
                claimed.update(partitions)
        return claimed

    async def release(self, partitions: set[int]) -> None:
        for stream, mine in self._by_stream(partitions).items():
            await self.committers[stream].release(set(mine))

    def fail(self, reason: str) -> None:
        for committer in self.committers:
            committer.fail(reason)

    @property
    def busy(self) -> bool:
        return any(committer.busy for committer in self.committers)

    @property
    def backlog(self) -> int:
        return sum(committer.backlog for committer in self.committers)

    def undurable_consumed(self) -> Iterator[int]:
        for committer in self.committers:
            yield from committer.undurable_consumed()

    def statistics(self) -> EngineStatistics:
        each = [committer.statistics() for committer in self.committers]
        sizes: Counter[int] = Counter()
        for statistics in each:
            sizes.update(dict(statistics.group_sizes))
        return EngineStatistics(sum(s.commits for s in each), sum(s.steps for s in each),
                                tuple(sorted(sizes.items())))  # fmt: skip
