"""The SQLite engine on a real file, beyond the engine contract (tests/contract/): state may exceed
the page cache, one runtime at a time holds a data dir, and its key groups are fixed."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pystatefun.errors import DataDirError
from pystatefun.store import (
    DataDir,
    NewTimer,
    Payload,
    SqliteEngine,
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


async def _open(path: Path, clock: Clock, **kwargs: int) -> SqliteEngine:
    store = SqliteEngine(DataDir(path), durability="os", clock_ms=clock, **kwargs)
    await store.open(key_groups=8)
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[SqliteEngine]:
    opened = await _open(tmp_path / "data", clock)
    yield opened
    await opened.close()


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
    other = SqliteEngine(DataDir(tmp_path / "data"), durability="os", clock_ms=clock)
    with pytest.raises(DataDirError, match="created with 8 key groups, not 16"):
        await other.open(key_groups=16)
    await other.close()


async def test_its_size_on_disk_is_read_before_the_data_dir_exists_and_after(
    tmp_path: Path, clock: Clock
) -> None:
    """``/metrics`` may be scraped while the runtime is still opening a data dir."""
    absent = SqliteEngine(DataDir(tmp_path / "new"), durability="os", clock_ms=clock)
    readings = {r.name: r.value for r in absent.readings()}
    assert readings == {"store_size_bytes": 0, "store_unwritable": 0,
                        "store_write_refusals_total": 0}  # fmt: skip
    opened = await _open(tmp_path / "new", clock)
    try:
        size = next(r.value for r in opened.readings() if r.name == "store_size_bytes")
        files = sum(p.stat().st_size for p in (tmp_path / "new").iterdir() if p.is_file())
        assert size == files > 0
    finally:
        await opened.close()


async def test_a_version_2_data_dir_gets_the_timers_trace_column_when_opened(
    tmp_path: Path, clock: Clock
) -> None:
    """Schema version 3 added ``timers.trace``: an older data dir, with a delayed message
    pending, is upgraded in place and keeps it."""
    store = await _open(tmp_path / "d", clock)
    await store.commit(Step(timer_ops=[NewTimer(5, A, None, B, Payload("t/x", b"old"))]))
    await store.close()
    db = sqlite3.connect(tmp_path / "d" / "pystatefun.sqlite3")
    db.execute("ALTER TABLE timers DROP COLUMN trace")  # as version 2 made it
    db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    store = await _open(tmp_path / "d", clock)
    try:
        traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        await store.commit(Step(timer_ops=[NewTimer(6, A, None, B, Payload("t/x", b"new"),
                                                     traced)]))  # fmt: skip
        due = await store.due_timers(10, 10)
        assert [(t.payload.value, t.trace) for t in due] == [(b"old", None), (b"new", traced)]
        assert DataDir(tmp_path / "d").info().schema_version == 3
    finally:
        await store.close()
