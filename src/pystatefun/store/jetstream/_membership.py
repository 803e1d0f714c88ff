"""Which workers of a cluster are alive: heartbeats over core NATS, and a lease.

Every worker publishes a heartbeat each ``heartbeat_s``; a worker is live while its last
heartbeat arrived less than ``lease_s`` ago, by this worker's own monotonic clock (so clocks
of different machines never need to agree). Heartbeats are not stored: a worker that joins
learns of the others within one heartbeat. A worker that stops says so in a last heartbeat,
so its partitions move at once rather than after its lease.

Liveness only decides which partitions a worker should claim; it never makes a commit safe.
That is the markers' fencing: a worker that was thought dead (paused, cut off) and comes back
cannot commit to a partition another worker claimed since.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, final

from pystatefun.store.jetstream._layout import ClusterLayout

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = ["Membership"]

_log = logging.getLogger("pystatefun.store")
_CHECKS_PER_BEAT = 4


@final
class Membership:
    """This worker's heartbeats, and the live workers it hears (``on_change`` when they change)."""

    def __init__(
        self,
        nc: Client,
        *,
        cluster: str,
        worker: str,
        instance: str,
        on_change: Callable[[], None],
        report: Callable[[], dict[str, object]],
        heartbeat_s: float,
        lease_s: float,
    ) -> None:
        self._nc = nc
        self._subject = ClusterLayout.heartbeat_subject(cluster)
        self.worker = worker
        self._instance = instance
        self._on_change = on_change
        self._report = report  # what a heartbeat tells: partitions served, stream read up to
        self.heartbeat_s = heartbeat_s
        self._lease_s = lease_s
        self._seen: dict[str, float] = {}  # worker -> when its last heartbeat arrived
        self._live: list[str] = [worker]
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._grace_until = 0.0  # no lease expires before (this worker itself stalled)
        self.beats = 0  # heartbeats sent

    @property
    def live(self) -> list[str]:
        """The live workers' names, sorted (this one always among them)."""
        return self._live

    async def start(self) -> None:
        self._subscription = await self._nc.subscribe(self._subject, cb=self._heard)
        await self._beat(leaving=False)
        self._task = asyncio.create_task(self._beating(), name="pystatefun-cluster-heartbeat")

    async def stop(self) -> None:
        """Stop beating, and say so: the others take this worker's partitions at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
            if self._nc.is_connected:
                await self._beat(leaving=True)

    async def _beat(self, *, leaving: bool) -> None:
        body = {"worker": self.worker, "instance": self._instance, "leaving": leaving,
                **self._report()}  # fmt: skip
        await self._nc.publish(self._subject, json.dumps(body).encode())
        self.beats += 1

    async def _beating(self) -> None:
        """Beat each ``heartbeat_s``, and look for expired leases four times as often (a dead
        worker's partitions move soon after its lease ends, not up to a heartbeat later)."""
        tick = self.heartbeat_s / _CHECKS_PER_BEAT
        last = next_beat = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - last > tick + self._lease_s / 2:
                # This worker stalled (paused, starved of CPU): the others' heartbeats wait
                # unread in the socket. Judge no one until they have been read.
                self._grace_until = now + self.heartbeat_s
                _log.warning("worker %s stalled for %.1f s", self.worker, now - last)
            last = now
            if now >= next_beat:
                next_beat = now + self.heartbeat_s
                try:
                    await self._beat(leaving=False)
                except Exception as exc:  # noqa: BLE001 - disconnected: the next beat retries
                    _log.warning("a heartbeat could not be sent (%s)", exc)
            self._recount()

    async def _heard(self, message: Msg) -> None:
        try:
            body = json.loads(message.data)
            worker, leaving = str(body["worker"]), bool(body.get("leaving"))
        except (ValueError, KeyError, TypeError):
            _log.warning("ignored a heartbeat that is not one: %r", message.data[:200])
            return
        if worker == self.worker:
            return
        if leaving:
            self._seen.pop(worker, None)
        else:
            self._seen[worker] = time.monotonic()
        self._recount()

    def _recount(self) -> None:
        now = time.monotonic()
        for worker, at in list(self._seen.items()):
            if now - at > self._lease_s and now >= self._grace_until:
                del self._seen[worker]
                _log.info("worker %s missed its heartbeats for %.1f s", worker, now - at)
        live = sorted({self.worker, *self._seen})
        if live != self._live:
            self._live = live
            self._on_change()
