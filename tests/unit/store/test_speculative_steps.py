"""Steps submitted before they commit (``SqliteEngine.submit``), on a real SQLite file.

Their messages get provisional ids that later steps consume; within one transaction a message
made and consumed is never written, across transactions it is inserted and then deleted, and a
state written by several steps keeps its last value. Reads of waiting messages leave out those
consumed by steps that are not durable yet.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pystatefun.errors import DataDirError
from pystatefun.store import (
    DataDir,
    EgressOut,
    ExpireMode,
    NewMessage,
    NewTimer,
    Payload,
    SqliteEngine,
    StateValue,
    Step,
)
from pystatefun.types import Address

A, B = Address("ns", "fn", "a"), Address("ns", "fn", "b")
TEXT = Payload("ns/Text", b"hello")


def _value(count: int) -> StateValue:
    return StateValue(
        "count", Payload("io.statefun.types/int", bytes([count])), ExpireMode.NONE, 0, None
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteEngine]:
    opened = SqliteEngine(DataDir(tmp_path / "data"), durability="os", clock_ms=lambda: 1_000)
    await opened.open(key_groups=8)
    yield opened
    await opened.close()


def _rows(store: SqliteEngine, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(store.data_dir.database) as db:
        return db.execute(sql).fetchall()


async def test_a_message_made_and_consumed_in_one_transaction_is_never_written(
    store: SqliteEngine,
) -> None:
    inserts: list[str] = []
    # Count every row the inbox ever receives: a trigger on a real table of the real file.
    with sqlite3.connect(store.data_dir.database) as db:
        db.execute("CREATE TABLE seen (seq INTEGER)")
        db.execute(
            "CREATE TRIGGER count_inbox AFTER INSERT ON inbox BEGIN "
            "INSERT INTO seen VALUES (new.seq); END"
        )
    ids, first = store.submit(Step(state_address=A, messages=[NewMessage(B, A, TEXT)]))
    _, second = store.submit(
        Step(consumed=list(ids), state_address=B, state_puts=[_value(1)], messages=[])
    )
    outcomes = await asyncio.gather(first, second)
    assert all(outcome.committed for outcome in outcomes)
    assert list(ids) == [-1]
    inserts = [str(row) for row in _rows(store, "SELECT seq FROM seen")]
    assert inserts == []  # neither the row nor its deletion reached the file
    assert _rows(store, "SELECT COUNT(*) FROM inbox") == [(0,)]
    assert _rows(store, "SELECT id, value FROM state") == [("b", bytes([1]))]


async def test_a_message_consumed_in_a_later_transaction_is_inserted_then_deleted(
    store: SqliteEngine,
) -> None:
    ids, durable = store.submit(Step(state_address=A, messages=[NewMessage(B, A, TEXT)]))
    await durable
    assert _rows(store, "SELECT id, typename FROM inbox") == [("b", "ns/Text")]
    assert await store.read_batch(B, 10, in_memory=list(ids)) == []  # in memory: not read
    (waiting,) = await store.read_batch(B, 10)
    assert waiting.payload == TEXT
    outcome = await store.commit(Step(consumed=list(ids), state_address=B))
    assert outcome.committed
    assert _rows(store, "SELECT COUNT(*) FROM inbox") == [(0,)]


async def test_a_state_written_by_several_steps_of_a_transaction_keeps_the_last_value(
    store: SqliteEngine,
) -> None:
    futures = [store.submit(Step(state_address=A, state_puts=[_value(n)]))[1] for n in range(1, 6)]
    futures.append(store.submit(Step(state_address=B, state_puts=[_value(9)]))[1])
    futures.append(store.submit(Step(state_address=B, state_deletes=["count"]))[1])
    await asyncio.gather(*futures)
    assert _rows(store, "SELECT id, value FROM state") == [("a", bytes([5]))]


async def test_seqs_of_plain_steps_are_right_when_combined_with_speculative_ones(
    store: SqliteEngine,
) -> None:
    ids, speculative = store.submit(Step(state_address=A, messages=[NewMessage(B, A, TEXT)] * 2))
    plain = asyncio.ensure_future(store.commit(Step(messages=[NewMessage(A, None, TEXT)] * 3)))
    await asyncio.gather(speculative, plain)
    rows = dict(_rows(store, "SELECT seq, id FROM inbox"))
    assert sorted(rows.values()) == ["a", "a", "a", "b", "b"]
    assert [rows[seq] for seq in plain.result().seqs] == ["a", "a", "a"]
    assert len(ids) == 2


async def test_a_refused_step_does_not_undo_the_combined_steps_around_it(
    store: SqliteEngine,
) -> None:
    timer = NewTimer(5_000, A, "token", B, TEXT)
    await store.commit(Step(timer_ops=[timer]))
    before = store.submit(Step(state_address=A, state_puts=[_value(1)]))[1]
    clash = asyncio.ensure_future(store.commit(Step(state_address=A, timer_ops=[timer])))
    after = store.submit(Step(state_address=B, state_puts=[_value(2)]))[1]
    await asyncio.gather(before, clash, after)
    assert not clash.result().committed
    assert "cancellation token" in (clash.result().error or "")
    assert sorted(_rows(store, "SELECT id, value FROM state")) == [
        ("a", bytes([1])),
        ("b", bytes([2])),
    ]


async def test_waiting_counts_leave_out_rows_consumed_by_steps_not_durable_yet(
    store: SqliteEngine,
) -> None:
    outcome = await store.commit(Step(messages=[NewMessage(B, None, TEXT)] * 3))
    assert await store.pending_counts() == {B: 3}
    _, consuming = store.submit(Step(consumed=list(outcome.seqs[:2]), state_address=B))
    # Queued, not yet written: the two rows are still in the file, but no longer waiting.
    assert len(await store.read_batch(B, 10)) == 1
    assert await store.pending_counts() == {B: 1}
    await consuming
    assert await store.pending_counts() == {B: 1}


async def test_after_a_failed_commit_the_store_takes_no_more_steps(store: SqliteEngine) -> None:
    # A real failure of the real file: the table the commit writes is gone.
    with sqlite3.connect(store.data_dir.database) as db:
        db.execute("DROP TABLE egress")
    _, failing = store.submit(Step(egress=[EgressOut("e", "t", TEXT)]))
    with pytest.raises(DataDirError, match="takes no more steps"):
        await failing
    with pytest.raises(DataDirError, match="restart"):
        await store.commit(Step())
