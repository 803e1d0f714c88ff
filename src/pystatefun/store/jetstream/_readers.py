"""The tails a worker runs: one per stream for the shared kinds, one per partition it owns.

Every worker reads every partition's records of the shared kinds (``SHARED_KINDS``: markers,
egress records, dead letters, positions, relay receipts) for as long as it runs, and the rest
of a partition only while it owns it: from its claim, before it serves it (``read``), until
its release, when the view forgets them (``unread``). A worker therefore holds and decodes its
own share of the database, not all of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, final

from pystatefun.store.jetstream._layout import SHARED_KINDS, ClusterLayout
from pystatefun.store.jetstream._tail import Tail
from pystatefun.store.jetstream._view import ClusterView

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from pystatefun.store.jetstream._ownership import Ownership
    from pystatefun.store.jetstream._relay import Relay
    from pystatefun.store.jetstream._writers import Writers

__all__ = ["Readers"]

_log = logging.getLogger("pystatefun.store")


@final
class Readers:
    """The worker's tails into ``view`` (see the module's docstring); ``busy`` says when the
    committers are publishing (tombstones are forgotten only in between)."""

    def __init__(
        self,
        js: JetStreamContext,
        layout: ClusterLayout,
        view: ClusterView,
        *,
        writers: Writers,
        ownership: Ownership,
        relay: Relay,
        busy: Callable[[], bool],
    ) -> None:
        self._js, self._layout, self._view = js, layout, view
        self._writers, self._ownership, self._relay = writers, ownership, relay
        self._busy = busy
        self._shared: list[Tail] = []  # per stream
        self._partitions: dict[int, Tail] = {}  # per partition read
        view.partitions = set()  # none read yet: each once claimed

    def _tail(self, stream: int, filters: list[str]) -> Tail:
        ownership = self._ownership
        return Tail(self._js, self._layout, self._view, stream=stream, filters=filters,
                    own=self._writers.committers[stream].own.reader(),
                    on_arrival=ownership.arrival, on_outbox=self._relay.wake,
                    on_marker=ownership.marker_seen, on_passed=self._passed)  # fmt: skip

    async def start(self) -> None:
        """Read every stream's shared records; return once the live ones are in the view."""
        layout = self._layout
        self._shared = [self._tail(s, layout.shared_filters()) for s in range(layout.streams)]
        for tail in self._shared:
            await tail.start()

    async def read(self, partitions: set[int]) -> None:
        """Read the records of ``partitions`` (claimed) into the view, and go on reading
        them as they come: from now on the view holds them."""
        layout, held = self._layout, self._view.partitions
        assert held is not None
        for partition in sorted(partitions - set(self._partitions)):
            held.add(partition)  # the commits' own records of it count from now
            tail = self._partitions[partition] = self._tail(
                layout.stream_of(partition), layout.partition_filters(partition)
            )
            try:
                await tail.start()
            except BaseException:
                await self.unread({partition})
                raise

    async def unread(self, partitions: set[int]) -> None:
        """Stop reading ``partitions`` (released) and forget their records."""
        view = self._view
        if view.partitions is not None:
            view.partitions -= partitions  # the commits' own records of them count no more
        for partition in sorted(partitions):
            tail = self._partitions.pop(partition, None)
            try:
                if tail is not None:
                    await tail.stop()  # it applies nothing more, even if this raises
            except Exception as exc:  # noqa: BLE001 - the servers away: the consumer lapses
                _log.warning("the reader of partition %d did not unsubscribe (%s)", partition, exc)
        # Always: records of a partition read no more would go stale (a message another worker
        # consumes would still be here, and run again should this one come back).
        view.drop_partitions(partitions, self._layout.parse)

    async def stop(self) -> None:
        for tail in [*self._shared, *self._partitions.values()]:
            await tail.stop()
        self._shared, self._partitions = [], {}

    @property
    def pending(self) -> int:
        """Records matching the tails' filters that they had still to read, over all."""
        return sum(tail.pending for tail in [*self._shared, *self._partitions.values()])

    def _passed(self) -> None:
        view = self._view
        if view.tombstones > 1024 and not self._busy():
            view.passed(self._covered)

    def _covered(self, subject: str, global_id: int) -> bool:
        """Whether the tail that reads ``subject`` has passed ``global_id`` (or none does)."""
        layout = self._layout
        kind, partition = layout.parse(subject)
        stream, seq = layout.locate(global_id)
        tail = self._shared[stream] if kind in SHARED_KINDS else self._partitions.get(partition)
        return tail is None or tail.position >= seq
