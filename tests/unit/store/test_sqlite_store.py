"""The SQLite store on a real file: steps are atomic one by one, keys dedupe within their window,
egress pops in order, dead letters re-drive, state may exceed the page cache."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pystatefun.errors import DataDirError
from pystatefun.runtime.keygroups import key_group_of
from pystatefun.runtime.registry import LONGEST_MS
from pystatefun.store import (
    CancelTimer,
    NewMessage,
    NewTimer,
    Payload,
    SqliteStore,
    StateValue,
    Step,
)
from pystatefun.types import Address

A, B = Address("ns", "fn", "a"), Address("ns", "fn", "b")
TEXT = Payload("ns/Text", b"hello")


class Clock:
    now_ms = 1_000

    def __call__(self) -> int:
        return self.now_ms


async def _open(path: Path, clock: Clock, **kwargs: int) -> SqliteStore:
    store = SqliteStore(path, "os", functools.partial(key_group_of, key_groups=8), clock, **kwargs)
    await store.open(key_groups=8)
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[SqliteStore]:
    opened = await _open(tmp_path / "data", clock)
    yield opened
    await opened.close()


async def test_a_failing_step_is_rolled_back_alone(store: SqliteStore) -> None:
    timer = NewTimer(5_000, A, "token", B, TEXT)
    first = Step(messages=[NewMessage(A, None, TEXT)], timer_ops=[timer])
    clash = Step(messages=[NewMessage(B, None, TEXT)], timer_ops=[timer])  # same sender+token
    outcomes = [await store.commit(first), await store.commit(clash)]
    assert [o.committed for o in outcomes] == [True, False]
    assert "reuses a cancellation token" in (outcomes[1].error or "")
    assert await store.pending_counts() == {A: 1}  # clash's message was not written


async def test_cancel_then_reschedule_with_the_same_token_in_one_step(store: SqliteStore) -> None:
    await store.commit(Step(timer_ops=[NewTimer(5_000, A, "t", B, TEXT)]))
    step = Step(timer_ops=[CancelTimer(A, "t"), NewTimer(9_000, A, "t", B, TEXT)])
    assert (await store.commit(step)).committed
    [timer] = await store.due_timers(10_000, 10)
    assert (timer.fire_at_ms, timer.sender, timer.token) == (9_000, A, "t")


async def test_the_latest_times_a_reply_can_ask_for_fit_the_store(store: SqliteStore) -> None:
    """A delay or TTL of LONGEST_MS (the most a function may ask for) from a clock far in the
    future still fits the store's 64-bit times."""
    year_2100_ms = 4_102_444_800_000
    latest = year_2100_ms + LONGEST_MS
    value = StateValue("v", TEXT, 1, LONGEST_MS, latest)
    step = Step(state_address=A, state_puts=[value], timer_ops=[NewTimer(latest, A, "t", B, TEXT)])
    assert (await store.commit(step)).committed
    assert (await store.read_state(A))["v"].expires_at_ms == latest
    [timer] = await store.due_timers(latest, 10)
    assert timer.fire_at_ms == latest


async def test_idempotency_keys_expire_with_their_window(store: SqliteStore, clock: Clock) -> None:
    def keyed() -> Step:
        return Step(
            messages=[NewMessage(A, None, TEXT)],
            dedup_key="k",
            dedup_expires_at_ms=clock.now_ms + 100,
        )

    assert (await store.commit(keyed())).committed
    assert (await store.commit(keyed())).duplicate
    clock.now_ms += 100
    assert (await store.commit(keyed())).committed  # the window has passed
    assert await store.pending_counts() == {A: 2}


async def test_consuming_and_egress_order(store: SqliteStore) -> None:
    for n in range(3):
        await store.commit(Step(messages=[NewMessage(A, B, Payload("ns/T", bytes([n])))]))
    batch = await store.read_batch(A, 2)
    assert [m.payload.value for m in batch] == [b"\x00", b"\x01"]
    assert batch[0].caller == B
    step = Step(
        consumed=[m.seq for m in batch],
        egress=[("eg", "t", Payload("text/plain", b"1")), ("eg", "t", Payload("text/plain", b"2"))],
    )
    await store.commit(step)
    assert [m.payload.value for m in await store.read_batch(A, 10)] == [b"\x02"]
    popped = [await store.pop_egress("eg", "t") for _ in range(3)]
    assert [p and p.payload.value for p in popped] == [b"1", b"2", None]


async def test_dead_letters_re_drive_to_the_end_of_the_mailbox(store: SqliteStore) -> None:
    await store.commit(Step(messages=[NewMessage(A, None, TEXT)]))
    [message] = await store.read_batch(A, 1)
    await store.commit(
        Step(
            consumed=[message.seq],
            dead_letter=(A, "boom", 3),
            dead_letter_messages=[NewMessage(A, None, TEXT)],
        )
    )
    [letter] = await store.dead_letters()
    assert (letter.target, letter.error, letter.attempts) == (A, "boom", 3)
    assert store.tables.redrive(None, 2_000) == 1
    assert await store.dead_letters() == []
    assert [m.payload for m in await store.read_batch(A, 10)] == [TEXT]


async def test_state_far_beyond_the_page_cache(tmp_path: Path, clock: Clock) -> None:
    store = await _open(tmp_path / "big", clock, cache_mib=1)
    try:
        blob = bytes(range(256)) * 32  # 8 KiB per value, 1,000 values: 8 MiB through 1 MiB
        for n in range(1000):
            value = StateValue("v", Payload("ns/Blob", blob + n.to_bytes(4, "big")), 0, 0, None)
            await store.commit(Step(state_address=Address("ns", "fn", str(n)), state_puts=[value]))
        for n in range(0, 1000, 7):
            stored = (await store.read_state(Address("ns", "fn", str(n))))["v"]
            assert stored.payload.value == blob + n.to_bytes(4, "big")
    finally:
        await store.close()


async def test_one_store_per_data_dir_and_fixed_key_groups(tmp_path: Path, clock: Clock) -> None:
    first = await _open(tmp_path / "data", clock)
    with pytest.raises(DataDirError, match="in use by another pystatefun process"):
        await _open(tmp_path / "data", clock)
    await first.close()
    other = SqliteStore(tmp_path / "data", "os", lambda _: 0, clock)
    with pytest.raises(DataDirError, match="created with 8 key groups, not 16"):
        await other.open(key_groups=16)
    await other.close()


async def test_expired_rows_are_purged(store: SqliteStore, clock: Clock) -> None:
    live = StateValue("live", TEXT, 0, 0, None)
    dying = StateValue("dying", TEXT, 1, 10, clock.now_ms + 10)
    await store.commit(
        Step(
            state_address=A,
            state_puts=[live, dying],
            dedup_key="k",
            dedup_expires_at_ms=clock.now_ms + 10,
        )
    )
    assert await store.purge_expired() == 0
    clock.now_ms += 10
    assert await store.purge_expired() == 2  # the state value and the idempotency key
    assert set(await store.read_state(A)) == {"live"}
