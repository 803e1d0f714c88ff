"""The timer service on virtual time: due delayed messages fire together in one step, in order,
from their sender; ``run`` sleeps until the next one is due, or until ``wake``; cancelled ones
never fire; ``stop`` ends it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from support.virtual_time import VirtualTimeLoop, running, virtual_time

from pystatefun.runtime import timers
from pystatefun.runtime.timers import TimerService
from pystatefun.store import (
    CancelTimer,
    InboxMessage,
    MemoryEngine,
    NewTimer,
    Payload,
    Step,
    StepOutcome,
)
from pystatefun.types import Address

SENDER = Address("ns", "fn", "sender")
OTHER = Address("ns", "fn", "other")
TARGET = Address("ns", "fn", "target")


class Rig:
    """A timer service over a memory engine on the running loop's virtual clock, recording
    what it delivers and when."""

    def __init__(self, engine: Any = None) -> None:
        self.loop: VirtualTimeLoop = running()
        self.engine = engine or MemoryEngine(self.loop.clock_ms)
        self.delivered: list[tuple[float, InboxMessage]] = []
        self.arrived = asyncio.Event()
        self.timers = TimerService(self.engine, self.loop.clock_ms, self._deliver)
        self.stop = asyncio.Event()

    def _deliver(self, message: InboxMessage) -> None:
        self.delivered.append((self.loop.time(), message))
        self.arrived.set()

    async def schedule(
        self, in_s: float, text: str, sender: Address = SENDER, token: str | None = None
    ) -> None:
        at_ms = self.loop.clock_ms() + round(in_s * 1000)
        timer = NewTimer(at_ms, sender, token, TARGET, Payload("ns/msg", text.encode()))
        assert (await self.engine.commit(Step(timer_ops=[timer]))).committed

    def texts(self) -> list[str]:
        return [(m.payload.value or b"").decode() for _, m in self.delivered]

    async def next_delivery(self) -> float:
        await self.arrived.wait()
        self.arrived.clear()
        return self.delivered[-1][0]


@virtual_time
async def test_fire_due_fires_every_due_timer_in_one_step_in_order_from_its_sender() -> None:
    rig = Rig()
    await rig.schedule(5, "five", sender=SENDER)
    await rig.schedule(2, "two", sender=OTHER)
    await rig.schedule(5, "five-later", sender=OTHER)  # same time, created later: after
    await rig.schedule(100, "hundred")
    assert not await rig.timers.fire_due()  # none due yet
    await asyncio.sleep(10)
    commits = rig.engine.statistics().commits
    assert await rig.timers.fire_due()
    assert rig.engine.statistics().commits == commits + 1  # one step for all three
    assert rig.texts() == ["two", "five", "five-later"]
    assert [m.caller for _, m in rig.delivered] == [OTHER, SENDER, OTHER]
    rows = await rig.engine.read_batch(TARGET, 10)
    assert [m for _, m in rig.delivered] == rows  # delivered with the seqs of their rows
    assert rig.timers.fired == 3
    assert not await rig.timers.fire_due()  # fired once only
    assert await rig.engine.next_timer_at() == rig.loop.start_ms + 100_000


@virtual_time
async def test_run_sleeps_until_a_timer_ten_minutes_ahead_is_due() -> None:
    rig = Rig()
    await rig.schedule(600, "later")
    await asyncio.sleep(0.5)  # started off the grid of whole seconds
    service = asyncio.create_task(rig.timers.run(rig.stop))
    fired_at = await rig.next_delivery()
    # Due at exactly 600 s: the service looks again every _IDLE_CHECK_S (from 0.5 s on), but
    # its last wait is cut to the timer's due time.
    assert timers._IDLE_CHECK_S == 1.0
    assert fired_at == pytest.approx(600.0)
    assert rig.texts() == ["later"]
    rig.stop.set()
    await service


@pytest.mark.parametrize(("wake", "fires_at"), [(True, 5.5), (False, 6.0)])
def test_wake_makes_an_earlier_new_timer_fire_at_its_time(wake: bool, fires_at: float) -> None:
    @virtual_time
    async def scenario() -> None:
        rig = Rig()
        await rig.schedule(600, "later")
        service = asyncio.create_task(rig.timers.run(rig.stop))
        await asyncio.sleep(5.25)  # the service waits until 6.0: its next idle check
        await rig.schedule(0.25, "sooner")
        if wake:
            rig.timers.wake()
        assert await rig.next_delivery() == pytest.approx(fires_at)
        assert rig.texts() == ["sooner"]
        rig.stop.set()
        await service

    scenario()


@virtual_time
async def test_a_cancelled_timer_never_fires() -> None:
    rig = Rig()
    await rig.schedule(10, "cancelled", token="t")
    await rig.schedule(20, "kept", token="u")
    cancel = Step(timer_ops=[CancelTimer(SENDER, "t")])
    assert (await rig.engine.commit(cancel)).committed
    service = asyncio.create_task(rig.timers.run(rig.stop))
    assert await rig.next_delivery() == pytest.approx(20.0)
    assert rig.texts() == ["kept"]
    assert await rig.engine.next_timer_at() is None
    rig.stop.set()
    await service


@virtual_time
async def test_stop_ends_run_at_once() -> None:
    rig = Rig()
    await rig.schedule(600, "later")
    service = asyncio.create_task(rig.timers.run(rig.stop))
    await asyncio.sleep(30.5)
    rig.stop.set()
    await service
    assert rig.loop.time() == 30.5
    assert rig.delivered == []


class _FlakyEngine:
    """A memory engine whose first read of due timers fails."""

    def __init__(self) -> None:
        self._engine = MemoryEngine(running().clock_ms)
        self.failures = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def due_timers(self, now_ms: int, limit: int) -> Any:
        if self.failures:
            self.failures -= 1
            raise OSError("disk I/O error")
        return await self._engine.due_timers(now_ms, limit)


@virtual_time
async def test_a_failed_round_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(_FlakyEngine())
    await rig.schedule(0, "due now")
    service = asyncio.create_task(rig.timers.run(rig.stop))
    assert await rig.next_delivery() == pytest.approx(timers._IDLE_CHECK_S)
    assert "firing delayed messages failed" in caplog.text
    rig.stop.set()
    await service


class _SlowReads:
    """A memory engine whose read of the next timer's time takes a hop, as SQLite's does (it
    reads in the engine's thread); ``during`` runs in that hop, after the value was read."""

    def __init__(self) -> None:
        self._engine = MemoryEngine(running().clock_ms)
        self.during: Callable[[], Awaitable[None]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def next_timer_at(self) -> int | None:
        value = await self._engine.next_timer_at()
        during, self.during = self.during, None
        if during is not None:
            await during()
        return value


@virtual_time
async def test_a_wake_while_the_next_timer_is_read_is_not_lost() -> None:
    engine = _SlowReads()
    rig = Rig(engine)
    await rig.schedule(600, "later")

    async def a_step_schedules_a_sooner_timer() -> None:
        await rig.schedule(0.25, "sooner")
        rig.timers.wake()

    engine.during = a_step_schedules_a_sooner_timer
    service = asyncio.create_task(rig.timers.run(rig.stop))
    assert await rig.next_delivery() == pytest.approx(0.25)  # not at the next idle check
    rig.stop.set()
    await service


class _RefusingEngine:
    """A memory engine that refuses the first step firing timers, as a cluster worker's does
    when a partition moved after the timers were read."""

    def __init__(self) -> None:
        self._engine = MemoryEngine(running().clock_ms)
        self.refusals = 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def commit(self, step: Step) -> StepOutcome:
        if step.fired_timers and self.refusals:
            self.refusals -= 1
            return StepOutcome(committed=False, error="its partition moved")
        return await self._engine.commit(step)


@virtual_time
async def test_a_refused_firing_delivers_nothing_and_is_tried_again_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pystatefun.runtime.timers")
    rig = Rig(_RefusingEngine())
    await rig.schedule(0, "due now")
    service = asyncio.create_task(rig.timers.run(rig.stop))
    # Refused at once; tried again at the next idle check (not in a busy loop), and fired once.
    assert await rig.next_delivery() == pytest.approx(timers._IDLE_CHECK_S)
    assert "1 delayed message(s) not fired now: its partition moved" in caplog.text
    assert rig.texts() == ["due now"]
    rig.stop.set()
    await service
