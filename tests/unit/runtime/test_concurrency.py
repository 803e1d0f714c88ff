"""The adaptive invocation limit: a semaphore that grows while round trips stay near the
fastest and shrinks while they show queueing, within its floor and ceiling."""

from __future__ import annotations

import asyncio

import pytest

from pystatefun.runtime.concurrency import InvocationLimit


async def test_it_admits_up_to_the_limit_then_first_come_first_served() -> None:
    limit = InvocationLimit(ceiling=8, floor=2)
    await limit.acquire()
    await limit.acquire()
    order: list[str] = []

    async def wait(name: str) -> None:
        await limit.acquire()
        order.append(name)

    tasks = [asyncio.create_task(wait(name)) for name in ("a", "b")]
    await asyncio.sleep(0)  # let both queue up (no event to await: they are parked)
    assert (limit.in_use, order) == (2, [])
    limit.release(None)
    await tasks[0]
    assert (limit.in_use, order) == (2, ["a"])
    limit.release(None)
    await tasks[1]
    assert order == ["a", "b"]


async def test_flat_round_trips_grow_the_limit_to_the_ceiling_when_it_is_used() -> None:
    limit = InvocationLimit(ceiling=40, floor=4)
    for _ in range(100):
        while limit.in_use < int(limit.limit):  # demand: every place taken
            await limit.acquire()
        limit.release(0.010)  # an I/O-bound server: no queueing however many are in flight
    assert limit.limit == 40


def test_an_unused_limit_does_not_grow() -> None:
    limit = InvocationLimit(ceiling=40, floor=4)
    for _ in range(100):
        limit.in_use = 1  # one call at a time: the limit is not what holds calls back
        limit.release(0.010)
    assert limit.limit == 4


async def test_round_trips_that_grow_with_the_load_shrink_the_limit_to_the_floor() -> None:
    limit = InvocationLimit(ceiling=64, floor=8)
    limit.limit = 64.0
    limit.in_use = 1
    limit.release(0.001)  # the fastest seen: 1 ms
    for _ in range(200):
        limit.in_use = int(limit.limit)
        # A busy server: each call waits behind the others in flight.
        limit.release(0.001 * limit.limit)
    assert limit.limit == 8


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    limit = InvocationLimit(ceiling=1, floor=1)
    await limit.acquire()
    waiter = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limit.release(None)
    assert limit.in_use == 0
    await asyncio.wait_for(limit.acquire(), 1)  # the place is free again
    assert limit.in_use == 1
