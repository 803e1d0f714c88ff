"""Which partitions a worker serves, and moving them as workers join and leave.

Partitions are dealt round-robin over the live workers sorted by name, so every worker
computes the same assignment from the same heartbeats. A worker claims a partition assigned to
it once the partition is free: never claimed, released by its last owner, or owned by a worker
that is not live (its lease ran out, or it said it was leaving). A partition assigned elsewhere
is released gracefully: the runtime stops taking its messages and lets running invocations
finish, every step queued so far commits, then the marker says "released" and the new owner
claims it at once. Taking over a dead worker's partitions needs no release: the claim fences
the old owner out, whatever it still tries to commit.

A worker that sees one of its own partitions claimed by someone else (it was paused or cut off
past its lease) can no longer commit what depends on it, and stops (``OwnershipListener.lost``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, final

from pystatefun.errors import ClusterStorageError
from pystatefun.store.jetstream._connection import StoredRecord
from pystatefun.store.jetstream._layout import ClusterLayout
from pystatefun.store.jetstream._membership import Membership
from pystatefun.store.jetstream._writers import Writers

if TYPE_CHECKING:
    from pystatefun.store.engine import OwnershipListener
    from pystatefun.types import Address

__all__ = ["Ownership"]

_log = logging.getLogger("pystatefun.store")
#: How long a release waits for running invocations of the partitions it gives away.
RELEASE_WAIT_S = 30.0


def _ranges(partitions: set[int]) -> str:
    return ",".join(str(p) for p in sorted(partitions)) or "none"


@final
class Ownership:
    """The partitions this worker serves (``serving``), kept balanced with the live workers."""

    def __init__(
        self,
        layout: ClusterLayout,
        committer: Writers,
        membership: Membership,
        *,
        forget: Callable[[set[int]], None],
        read: Callable[[set[int]], Awaitable[None]],
        unread: Callable[[set[int]], Awaitable[None]],
    ) -> None:
        self._layout = layout
        self._committer = committer
        self.membership = membership
        self._forget = forget
        self._read = read  # claimed partitions' records into the view, before serving them
        self._unread = unread  # released partitions' records out of it
        self.serving: set[int] = set()
        self.markers: dict[int, StoredRecord] = {}  # the last marker the tail saw, per partition
        self.listener: OwnershipListener | None = None
        self.on_claimed: Callable[[], None] | None = None  # the relay: new outboxes to send
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lost: str | None = None
        self._stopping = False

    async def start(self) -> None:
        """Join: hear the other workers for a heartbeat, then claim this worker's share."""
        await self.membership.start()
        await asyncio.sleep(self.membership.heartbeat_s * 1.5)
        await self._rebalance()
        self._task = asyncio.create_task(self._loop(), name="pystatefun-cluster-ownership")

    async def stop(self) -> None:
        """Move nothing more (a round under way finishes first)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    # --- what the tail sees ------------------------------------------------------------------

    def marker_seen(self, partition: int, record: StoredRecord) -> None:
        known = self.markers.get(partition)
        if known is not None and known.seq >= record.seq:
            return
        self.markers[partition] = record
        body = record.body or {}
        mine = self._committer.markers.get(partition)
        if (
            mine is not None
            and record.seq > mine
            and body.get("instance") != self.instance
            and not self._released_by_me(known)  # its release's acknowledgement is on its way
        ):
            self._taken(partition, str(body.get("worker")))
        self.wake()

    def _released_by_me(self, marker: StoredRecord | None) -> bool:
        body = {} if marker is None else (marker.body or {})
        return bool(body.get("released")) and body.get("instance") == self.instance

    def arrival(self, partition: int) -> None:
        if partition in self.serving and self.listener is not None:
            self.listener.arrived()

    @property
    def instance(self) -> str:
        return self._committer.instance

    def _taken(self, partition: int, by: str) -> None:
        if self._lost is not None:
            return
        self._lost = (
            f"cluster {self._layout.name!r}: partition {partition} was taken over by worker "
            f"{by!r}; this worker commits nothing more. Restart it to rejoin the cluster."
        )
        self.serving.clear()
        self._committer.fail(self._lost)
        if self.listener is not None:
            self.listener.lost(self._lost)

    # --- rebalancing -------------------------------------------------------------------------

    async def _loop(self) -> None:
        while self._lost is None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.membership.heartbeat_s):
                    await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self._rebalance()
            except ClusterStorageError as exc:
                _log.error("%s", exc.message)
                return
            except Exception as exc:  # noqa: BLE001 - the NATS servers away: the next round retries
                _log.warning("moving partitions failed (%s); retrying", exc)

    def assigned(self) -> set[int]:
        live = self.membership.live
        me = live.index(self.membership.worker)
        return {p for p in range(self._layout.partitions) if p % len(live) == me}

    def _free(self, partition: int) -> bool:
        marker = self.markers.get(partition)
        if marker is None:
            return True
        body = marker.body or {}
        owner = body.get("worker")
        return (
            bool(body.get("released"))
            or owner == self.membership.worker
            or (owner not in self.membership.live)
        )

    async def _rebalance(self) -> None:
        if self._lost is not None:
            return
        assigned = self.assigned()
        owned = set(self._committer.markers)
        leaving = owned - assigned
        if leaving:
            await self._release(leaving)
            # The live workers may have changed while the release waited: claim by what they
            # are now, never by an assignment that no longer holds.
            assigned, owned = self.assigned(), set(self._committer.markers)
        wanted = {p for p in assigned - owned if self._free(p)}
        claimed: set[int] = set()
        if wanted:
            expected = {p: self.markers[p].seq if p in self.markers else 0
                        for p in sorted(wanted)}  # fmt: skip
            claimed = await self._committer.claim(expected)
        # Served once read: the ones claimed now, and any whose reading failed before.
        ready = (set(self._committer.markers) & assigned) - self.serving
        if ready and self._lost is None:
            await self._read(ready)
            self.serving |= ready
            _log.info("worker %s claimed partitions %s of cluster %r (serving %s)",
                      self.membership.worker, _ranges(ready), self._layout.name,
                      _ranges(self.serving))  # fmt: skip
            if self.on_claimed is not None:
                self.on_claimed()
            if self.listener is not None:
                self.listener.acquired()
        if claimed != wanted:
            self.wake()  # a marker moved meanwhile: look again once the tail has it

    async def _release(self, partitions: set[int]) -> None:
        self.serving -= partitions
        layout = self._layout

        def gone(address: Address) -> bool:
            return layout.partition_of(address.id) in partitions

        if self.listener is not None:
            try:
                await asyncio.wait_for(self.listener.release(gone), RELEASE_WAIT_S)
            except TimeoutError:
                _log.warning("invocations of partitions %s still run after %.0f s; releasing "
                             "them anyway", _ranges(partitions), RELEASE_WAIT_S)  # fmt: skip
        self._forget(partitions)
        await self._committer.release(partitions)
        await self._unread(partitions)
        _log.info("worker %s released partitions %s of cluster %r (serving %s)",
                  self.membership.worker, _ranges(partitions), layout.name,
                  _ranges(self.serving))  # fmt: skip
