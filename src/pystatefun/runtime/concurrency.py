"""How many invocations run at once: adapted to what the functions' servers can take.

More invocations in flight only help while the function servers have idle capacity (remote
calls that wait on I/O). Once the servers are busy, more in flight just queue there, and they
cost the runtime twice: each request carries fewer messages, because every mailbox is emptied as
soon as a message arrives. Fewer in flight let mailboxes fill, so one request carries several
messages (StateFun's batching) and each message costs less.

The limit follows TCP Vegas' idea, as Netflix's ``concurrency-limits`` does: compare each
call's round trip with the fastest seen. Near it (little queueing), the limit grows by one;
well above it (requests queue at the server), it shrinks by one. It stays between ``floor`` and
``ceiling`` (``RuntimeOptions.max_inflight``).

The fastest round trip is the fastest ever seen, never re-learnt: re-learning it under load
takes a loaded round trip for "no queueing", which makes the limit swing up and down, and the
stalls of each swing cost more than the batches gain (measured: a quarter of the throughput).
The price: servers that become slower for good keep the limit near its floor, never below.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import final

__all__ = ["InvocationLimit"]

_QUEUED_LOW = 2.0  # estimated requests queued at the server: below, grow
_QUEUED_HIGH = 4.0  # above, shrink


@final
class InvocationLimit:
    """A semaphore whose size adapts to the round trips of the calls it admits."""

    def __init__(self, ceiling: int, floor: int) -> None:
        self._ceiling = ceiling
        self._floor = max(1, min(floor, ceiling))
        self.limit = float(self._floor)
        self.in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._fastest_s = float("inf")

    async def acquire(self) -> None:
        """Wait for a place among the invocations in flight."""
        if self.in_use < int(self.limit) and not self._waiters:
            self.in_use += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the releaser counted us in
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(None)  # we had been given a place: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self, round_trip_s: float | None) -> None:
        """Leave; ``round_trip_s`` is the call's round trip (None: no sample, e.g. a failure)."""
        self.in_use -= 1
        if round_trip_s is not None and round_trip_s > 0:
            self._adapt(round_trip_s)
        while self._waiters and self.in_use < int(self.limit):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)

    def _adapt(self, round_trip_s: float) -> None:
        self._fastest_s = min(self._fastest_s, round_trip_s)
        queued = self.limit * (1.0 - self._fastest_s / round_trip_s)
        if queued < _QUEUED_LOW:
            # Grow only when the limit is what holds calls back, not while it is half unused.
            if self.in_use + 1 >= self.limit / 2:
                self.limit = min(self.limit + 1.0, float(self._ceiling))
        elif queued > _QUEUED_HIGH:
            self.limit = max(self.limit - 1.0, float(self._floor))
