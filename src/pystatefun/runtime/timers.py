"""Delayed messages: when their time comes, move them into their targets' mailboxes.

Timers are rows (durable across restarts). This service sleeps until the earliest one is due,
or until a step schedules an earlier one, then fires every due timer in one step: the timer rows
are deleted and the messages appended, atomically, so a crash neither loses nor repeats one.
A delivered delayed message has the sender as its caller, as in StateFun.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import final

from pystatefun.runtime.metrics import RuntimeMetrics, timed_commit
from pystatefun.store import InboxMessage, NewMessage, Step, StorageEngine

__all__ = ["TimerService"]

_log = logging.getLogger("pystatefun.runtime.timers")
_FIRE_BATCH_MAX = 512
_IDLE_CHECK_S = 1.0  # with no timer known, look again this often (re-drives, clock changes)


@final
class TimerService:
    def __init__(
        self,
        store: StorageEngine,
        clock_ms: Callable[[], int],
        deliver: Callable[[InboxMessage], None],
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self._store = store
        self._latency = (metrics or RuntimeMetrics()).step_commit
        self._clock_ms = clock_ms
        self._deliver = deliver
        self._wake = asyncio.Event()
        self.fired = 0
        self._refused = False  # the last round's step was refused: wait before the next

    def wake(self) -> None:
        """A step scheduled a timer: re-check when the next one is due."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Fire timers until ``stop``; an error is logged and retried, never the end of timers."""
        while not stop.is_set():
            try:
                await self._round(stop)
            except Exception:  # noqa: BLE001 - timers must keep firing; the store will recover
                _log.exception("firing delayed messages failed; retrying in %.0fs", _IDLE_CHECK_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _IDLE_CHECK_S)

    async def _round(self, stop: asyncio.Event) -> None:
        """Fire what is due, or wait until the next timer is due (or a step wakes us)."""
        # Cleared before the reads, not after: a step that schedules a timer while they wait
        # for the store may be too late for them, and its wake must end the wait below.
        self._wake.clear()
        if await self.fire_due():
            return
        next_at = None if self._refused else await self._store.next_timer_at()
        timeout = _IDLE_CHECK_S
        if next_at is not None:
            timeout = min(max(0.0, (next_at - self._clock_ms()) / 1000), _IDLE_CHECK_S)
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    async def fire_due(self) -> bool:
        """Fire every timer due now (up to a batch) in one step; False if none was due, or
        if the store refused the step (a cluster worker's partition moved meanwhile, or
        another step fired one of them): the next round looks again, a moment later."""
        self._refused = False
        due = await self._store.due_timers(self._clock_ms(), _FIRE_BATCH_MAX)
        if not due:
            return False
        messages = [NewMessage(t.target, t.sender, t.payload, t.trace) for t in due]
        step = Step(fired_timers=[t.timer_id for t in due], messages=messages)
        outcome = await timed_commit(self._store, step, self._latency)
        if not outcome.committed:
            _log.info("%d delayed message(s) not fired now: %s", len(due), outcome.error)
            self._refused = True
            return False
        self.fired += len(due)
        for message, seq in zip(messages, outcome.seqs, strict=True):
            self._deliver(InboxMessage(seq, message.target, message.caller, message.payload,
                                       message.trace))  # fmt: skip
        return True
