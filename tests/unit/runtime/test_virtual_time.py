"""The virtual-time loop the scheduler's tests run on: sleeping costs no wall time, timers fire in
order at their virtual times, and a test that can never finish fails instead of hanging."""

from __future__ import annotations

import asyncio
import functools
import time

import pytest
from support.virtual_time import START_MS, StalledError, VirtualTimeLoop, running, virtual_time


@virtual_time
async def test_an_hour_of_sleep_takes_no_wall_time() -> None:
    loop = running()
    wall = time.perf_counter()
    await asyncio.sleep(3600)
    assert time.perf_counter() - wall < 0.5
    assert loop.time() == 3600.0
    assert loop.clock_ms() == START_MS + 3_600_000


@virtual_time
async def test_timers_fire_in_due_order_at_their_virtual_times() -> None:
    loop = running()
    fired: list[tuple[str, float]] = []
    done = asyncio.Event()

    def fire(name: str) -> None:
        fired.append((name, loop.time()))

    for name, delay in (("c", 3.0), ("a", 1.0), ("b", 2.0), ("a2", 1.0)):
        loop.call_later(delay, fire, name)
    loop.call_later(3.5, done.set)
    await done.wait()
    assert fired == [("a", 1.0), ("a2", 1.0), ("b", 2.0), ("c", 3.0)]


@virtual_time
async def test_time_stands_still_while_callbacks_are_ready() -> None:
    loop = running()
    for _ in range(1000):
        await asyncio.sleep(0)
    assert loop.time() == 0.0
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.Event().wait(), timeout=30)
    assert loop.time() == 30.0


def test_a_wait_for_nothing_is_a_stall_not_a_hang() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        wall = time.perf_counter()
        with pytest.raises(StalledError, match="deadlock"):
            runner.run(forever())
        assert time.perf_counter() - wall < 5


def test_a_test_that_keeps_timers_going_for_ever_ends_at_the_horizon() -> None:
    async def ticking() -> None:
        while True:
            await asyncio.sleep(60)

    loop_factory = functools.partial(VirtualTimeLoop, horizon_s=3600)
    with (
        asyncio.Runner(loop_factory=loop_factory) as runner,
        pytest.raises(StalledError, match="passed 3600 s"),
    ):
        runner.run(ticking())
