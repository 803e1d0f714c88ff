"""The storage engine contract: what every engine behind ``pystatefun.store.StorageEngine`` must do.

Each test runs against every engine in ``ENGINES`` (SQLite on a real file, and memory); a new
engine (the cluster one) is added to that list and must pass all of it. The contract is the
runtime's consistency contract (docs/architecture.md) as storage sees it: steps are atomic,
messages keep their order per target, timers fire in time order and cancel by token, idempotency
keys dedupe within their window, expired state is purged, dead letters re-drive, a snapshot sees
one commit while steps go on, ingress positions are stored with the step that read them, and a
bulk load (``BulkLoader``) is all or nothing.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from support.nats import nats_url as nats_url

from pystatefun.errors import DataDirError, NoSuchDeadLetterError
from pystatefun.runtime.registry import LONGEST_MS
from pystatefun.store import (
    BulkLoader,
    CancelTimer,
    DataDir,
    DeadLetterEntry,
    EgressOut,
    MemoryEngine,
    NewMessage,
    NewTimer,
    Payload,
    Position,
    SqliteEngine,
    StateValue,
    Step,
    StorageEngine,
)
from pystatefun.store.contents import (
    DeadLetterContent,
    DedupKey,
    EgressContent,
    MessageContent,
    PositionContent,
    StateContent,
)
from pystatefun.store.jetstream import JetStreamEngine, JetStreamLoader
from pystatefun.store.jetstream._layout import digest
from pystatefun.store.records import TimerRecord
from pystatefun.types import Address

A, B, C = Address("ns", "fn", "a"), Address("ns", "fn", "b"), Address("ns", "other", "c")
KEY_GROUPS = 8


def text(value: str) -> Payload:
    return Payload("ns/Text", value.encode())


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1_000

    def __call__(self) -> int:
        return self.now_ms


class Engines:
    """Opens an engine of one kind; ``reopen`` closes it and opens the same storage again;
    ``loader`` bulk-loads the storage while no engine has it open."""

    def __init__(
        self, make: Callable[[], StorageEngine], loader: Callable[[bool], BulkLoader]
    ) -> None:
        self.make = make
        self.loader = loader
        self.engine: StorageEngine | None = None
        self.kind = ""  # its key in ENGINES
        self.sibling: Callable[[Path, Clock], Engines] | None = None  # other storage, same kind

    async def open(self, key_groups: int = KEY_GROUPS) -> StorageEngine:
        self.engine = self.make()
        await self.engine.open(key_groups)
        return self.engine

    async def reopen(self) -> StorageEngine:
        assert self.engine is not None
        await self.engine.close()
        return await self.open()


def _sqlite(tmp_path: Path, clock: Clock) -> Engines:
    data_dir = DataDir(tmp_path / "data")
    return Engines(
        lambda: SqliteEngine(data_dir, durability="os", clock_ms=clock),
        lambda fresh: data_dir.loader(key_groups=KEY_GROUPS, fresh=fresh),
    )


def _memory(tmp_path: Path, clock: Clock) -> Engines:
    engine = MemoryEngine(clock, key_groups=KEY_GROUPS)  # reopening it finds what it held
    return Engines(lambda: engine, lambda fresh: engine.loader(fresh=fresh))


def _jetstream(tmp_path: Path, clock: Clock, nats_url: str = "", streams: int = 1) -> Engines:
    """A cluster on the session's real NATS server, named after the test's directory (so
    ``other`` storage of the same kind is another cluster). With ``streams`` 2, messages
    between partitions 0 and 1 (of 4) cross streams through the outbox."""
    name = f"c{digest(str(tmp_path))[:20]}"
    return Engines(
        lambda: JetStreamEngine(
            [nats_url], cluster=name, worker="w1", clock_ms=clock, partitions=4, streams=streams
        ),
        lambda fresh: JetStreamLoader(
            [nats_url],
            cluster=name,
            fresh=fresh,
            clock_ms=clock,
            key_groups=KEY_GROUPS,
            partitions=4,
            streams=streams,
        ),
    )


ENGINES = {
    "sqlite": _sqlite,
    "memory": _memory,
    "jetstream": _jetstream,
    "jetstream-2-streams": functools.partial(_jetstream, streams=2),
}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=sorted(ENGINES))
async def engines(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Engines]:
    make = ENGINES[request.param]
    if request.param.startswith("jetstream"):
        make = functools.partial(make, nats_url=request.getfixturevalue("nats_url"))
    opened = make(tmp_path, clock)
    opened.sibling = make
    opened.kind = request.param
    yield opened
    if opened.engine is not None:
        await opened.engine.close()


@pytest.fixture
async def engine(engines: Engines) -> StorageEngine:
    return await engines.open()


async def _messages(engine: StorageEngine, target: Address) -> list[bytes | None]:
    return [m.payload.value for m in await engine.read_batch(target, 100)]


# --- atomic steps ------------------------------------------------------------------------------


async def test_a_step_commits_all_its_effects_together(engine: StorageEngine) -> None:
    [message] = (await engine.commit(Step(messages=[NewMessage(A, None, text("in"))]))).seqs
    step = Step(
        consumed=[message],
        state_address=A,
        state_puts=[StateValue("count", text("1"), 0, 0, None)],
        messages=[NewMessage(B, A, text("hello"))],
        timer_ops=[NewTimer(5_000, A, "t", C, text("later"))],
        egress=[EgressOut("eg", "topic", text("out"))],
        positions=[Position("kafka", "orders/0", "17")],
    )
    outcome = await engine.commit(step)
    assert outcome.committed
    assert len(outcome.seqs) == 1
    assert await engine.pending_counts() == {B: 1}
    assert (await engine.read_state(A))["count"].payload == text("1")
    assert [t.target for t in await engine.due_timers(5_000, 10)] == [C]
    assert await engine.positions("kafka") == {"orders/0": "17"}
    record = await engine.pop_egress("eg", "topic")
    assert record is not None
    assert record.payload == text("out")


async def test_a_refused_step_writes_nothing_and_the_others_commit(engine: StorageEngine) -> None:
    timer = NewTimer(5_000, A, "token", B, text("t"))
    first = Step(messages=[NewMessage(A, None, text("1"))], timer_ops=[timer])
    clash = Step(
        messages=[NewMessage(B, None, text("2"))],
        state_address=B,
        state_puts=[StateValue("s", text("x"), 0, 0, None)],
        timer_ops=[timer],
    )
    after = Step(messages=[NewMessage(C, None, text("3"))])
    outcomes = [await engine.commit(s) for s in (first, clash, after)]
    assert [o.committed for o in outcomes] == [True, False, True]
    assert "reuses the cancellation token 'token', still pending" in (outcomes[1].error or "")
    assert await engine.pending_counts() == {A: 1, C: 1}
    assert await engine.read_state(B) == {}


async def test_committed_steps_survive_a_reopen(engines: Engines) -> None:
    engine = await engines.open()
    await engine.commit(
        Step(
            messages=[NewMessage(A, None, text("kept"))],
            state_address=A,
            state_puts=[StateValue("s", text("v"), 0, 0, None)],
        )
    )
    engine = await engines.reopen()
    assert await _messages(engine, A) == [b"kept"]
    assert (await engine.read_state(A))["s"].payload == text("v")


async def test_storage_keeps_its_number_of_key_groups(engines: Engines) -> None:
    engine = await engines.open(KEY_GROUPS)
    await engine.close()
    engines.engine = None
    other = engines.make()  # the same storage, opened with another number
    with pytest.raises(DataDirError, match=f"{KEY_GROUPS} key groups, not 16"):
        await other.open(16)
    await other.close()


# --- ordering ----------------------------------------------------------------------------------


async def test_messages_keep_their_order_per_target(engine: StorageEngine) -> None:
    for n in range(5):
        await engine.commit(Step(messages=[NewMessage(A, B, text(f"a{n}"))]))
        await engine.commit(Step(messages=[NewMessage(B, A, text(f"b{n}"))]))
    await engine.commit(Step(messages=[NewMessage(A, C, text(f"a{n}")) for n in range(5, 8)]))
    assert await _messages(engine, A) == [f"a{n}".encode() for n in range(8)]
    first = await engine.read_batch(A, 3)
    assert [m.payload.value for m in first] == [b"a0", b"a1", b"a2"]
    assert {m.caller for m in first} == {B}
    skipped = await engine.read_batch(A, 2, in_memory=[m.seq for m in first if m.seq])
    assert [m.payload.value for m in skipped] == [b"a3", b"a4"]
    await engine.commit(Step(consumed=[m.seq for m in first if m.seq is not None]))
    assert (await engine.pending_counts())[A] == 5


async def test_foreign_reads_leave_out_what_steps_wrote_since_the_engine_opened(
    engines: Engines,
) -> None:
    """The runtime holds its own steps' messages in memory (and delivers each there once):
    ``foreign`` reads give only the rest, recovered from before the open or re-driven."""
    engine = await engines.open()
    await engine.commit(Step(messages=[NewMessage(A, None, text("before"))]))
    engine = await engines.reopen()
    await engine.commit(Step(messages=[NewMessage(A, None, text("mine")) for _ in range(3)]))
    ids, durable = engine.submit(Step(messages=[NewMessage(B, None, text("speculative"))]))
    await durable
    await _dead_letter(engine, C, "boom")
    (letter,) = await engine.dead_letters()
    await engine.redrive([letter.dead_letter_id])
    await engine.commit(Step(messages=[NewMessage(A, None, text("mine too"))]))

    async def foreign(target: Address) -> list[bytes | None]:
        return [m.payload.value for m in await engine.read_batch(target, 10, foreign=True)]

    assert await foreign(A) == [b"before"]
    assert await foreign(B) == []
    assert await foreign(C) == [b"boom"]
    assert await engine.pending_counts(foreign=True) == {A: 1, C: 1}
    assert await engine.pending_counts() == {A: 5, B: 1, C: 1}
    assert await _messages(engine, A) == [b"before", b"mine", b"mine", b"mine", b"mine too"]
    engine = await engines.reopen()  # after a restart, all of it is recovered: foreign
    assert await engine.pending_counts(foreign=True) == {A: 5, B: 1, C: 1}
    assert len(ids) == 1


async def test_egress_records_pop_in_order_per_topic(engine: StorageEngine) -> None:
    records = [EgressOut("eg", t, text(f"{t}{n}")) for n in range(3) for t in ("x", "y")]
    await engine.commit(Step(egress=records))
    popped = [await engine.pop_egress("eg", "x") for _ in range(4)]
    assert [r and r.payload.value for r in popped] == [b"x0", b"x1", b"x2", None]
    assert await engine.pop_egress("other", "y") is None
    assert (await engine.counts(("egress",)))["egress"] == 3


async def test_a_publishing_egress_reads_after_a_seq_and_deletes_what_it_published(
    engines: Engines,
) -> None:
    """Records of one egress in commit order across topics; deleting up to a seq leaves the
    rest; sequence numbers keep growing after everything is deleted and the store reopens (a
    publisher that remembers the last seq it published must never see a smaller new one)."""
    engine = await engines.open()
    await engine.commit(
        Step(egress=[EgressOut("eg", t, text(f"{t}{n}")) for n in range(2) for t in "xy"])
    )
    await engine.commit(Step(egress=[EgressOut("other", "x", text("o"))]))
    records = await engine.egress_after("eg", 0, 10)
    assert [(r.topic, r.payload.value) for r in records] == [
        ("x", b"x0"),
        ("y", b"y0"),
        ("x", b"x1"),
        ("y", b"y1"),
    ]
    assert [r.payload.value for r in await engine.egress_after("eg", records[1].seq, 1)] == [b"x1"]
    assert await engine.delete_egress("eg", records[2].seq) == 3
    assert [r.payload.value for r in await engine.egress_after("eg", 0, 10)] == [b"y1"]
    assert await engine.delete_egress("eg", records[3].seq) == 1
    assert [r.payload.value for r in await engine.egress_after("other", 0, 10)] == [b"o"]
    assert (await engine.pop_egress("other", "x")) is not None
    engine = await engines.reopen()
    await engine.commit(Step(egress=[EgressOut("eg", "x", text("later"))]))
    (later,) = await engine.egress_after("eg", 0, 10)
    assert later.seq > records[3].seq


async def test_egress_records_come_in_shards_that_together_hold_each_record_once(
    engine: StorageEngine,
) -> None:
    """A publisher runs per shard (``egress_shards``): each record is in exactly one of the
    shards this runtime publishes, seqs grow within a shard, and deleting one shard's records
    leaves the others' (a store of one runtime has one shard; a cluster worker, its
    partitions)."""
    for n in range(12):
        address = Address("t", "f", f"sharded-{n}")
        egress = [EgressOut("eg", "x", text(f"{n}"))]
        await engine.commit(Step(state_address=address, egress=egress))
    shards = engine.egress_shards()
    everything = await engine.egress_after("eg", 0, 100)
    by_shard = {s: await engine.egress_after("eg", 0, 100, shard=s) for s in shards}
    every_seq = sorted(r.seq for r in everything)  # in order within each shard (only)
    assert sorted(r.seq for rs in by_shard.values() for r in rs) == every_seq
    assert len(everything) == 12
    for records in by_shard.values():
        assert [r.seq for r in records] == sorted(r.seq for r in records)
    first, *_ = (s for s in shards if by_shard[s])
    mine = by_shard[first]
    assert await engine.delete_egress("eg", mine[-1].seq, shard=first) == len(mine)
    left = await engine.egress_after("eg", 0, 100)
    assert sorted(r.seq for r in left) == sorted(r.seq for r in everything if r not in mine)


async def test_the_instance_id_is_kept_across_reopens_and_is_its_own(
    engines: Engines, tmp_path: Path, clock: Clock
) -> None:
    engine = await engines.open()
    first = engine.instance_id
    assert first
    engine = await engines.reopen()
    assert engine.instance_id == first
    assert engines.sibling is not None
    other = engines.sibling(tmp_path / "other", clock)  # other storage, same kind
    try:
        assert (await other.open()).instance_id != first
    finally:
        assert other.engine is not None
        await other.engine.close()


async def test_submitted_steps_messages_are_consumed_by_the_ids_it_returned(
    engine: StorageEngine,
) -> None:
    ids, durable = engine.submit(Step(messages=[NewMessage(A, None, text("1"))] * 2))
    assert len(ids) == 2
    later = await engine.commit(Step(consumed=[ids[0]]))
    assert (await durable).committed
    assert later.committed
    assert await engine.pending_counts() == {A: 1}


# --- timers ------------------------------------------------------------------------------------


async def test_timers_fire_in_time_order_and_cancel_by_token(engine: StorageEngine) -> None:
    await engine.commit(
        Step(
            timer_ops=[
                NewTimer(3_000, A, None, B, text("3")),
                NewTimer(2_000, A, "two", B, text("2")),
                NewTimer(2_000, C, None, B, text("2b")),
                NewTimer(9_000, A, "nine", B, text("9")),
            ]
        )
    )
    assert await engine.next_timer_at() == 2_000
    await engine.commit(Step(timer_ops=[CancelTimer(A, "nine"), CancelTimer(A, "unknown")]))
    due = await engine.due_timers(5_000, 10)
    assert [t.payload.value for t in due] == [b"2", b"2b", b"3"]
    assert due[0].token == "two"
    assert due[0].sender == A
    assert [t.payload.value for t in await engine.due_timers(5_000, 2)] == [b"2", b"2b"]
    step = Step(fired_timers=[t.timer_id for t in due], messages=[NewMessage(B, A, text("f"))])
    assert (await engine.commit(step)).committed
    assert await engine.next_timer_at() is None
    # A fired timer's token is free again.
    assert (await engine.commit(Step(timer_ops=[NewTimer(1, A, "two", B, text("x"))]))).committed


async def test_a_delayed_message_keeps_the_trace_context_it_was_sent_with(
    engine: StorageEngine,
) -> None:
    """So that it continues its sender's trace when it fires (``pystatefun.tracing``)."""
    traced = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    await engine.commit(
        Step(
            timer_ops=[
                NewTimer(1_000, A, None, B, text("traced"), traced),
                NewTimer(2_000, A, None, B, text("not")),
            ]
        )
    )
    due = await engine.due_timers(5_000, 10)
    assert [(t.payload.value, t.trace) for t in due] == [(b"traced", traced), (b"not", None)]
    assert [t.trace for t in await engine.timers_of(A)] == [traced, None]


async def test_the_timers_of_an_address_are_those_to_or_from_it_soonest_first(
    engine: StorageEngine,
) -> None:
    await engine.commit(
        Step(
            timer_ops=[
                NewTimer(9_000, A, "later", B, text("a to b, later")),
                NewTimer(4_000, C, None, A, text("c to a")),
                NewTimer(2_000, A, None, A, text("a to itself")),
                NewTimer(3_000, C, None, B, text("c to b")),
            ]
        )
    )
    timers = await engine.timers_of(A)
    assert [t.payload.value for t in timers] == [b"a to itself", b"c to a", b"a to b, later"]
    assert (timers[2].sender, timers[2].target, timers[2].token) == (A, B, "later")
    assert [t.fire_at_ms for t in timers] == [2_000, 4_000, 9_000]
    await engine.commit(Step(timer_ops=[CancelTimer(A, "later")]))
    due = await engine.due_timers(2_000, 10)
    assert (await engine.commit(Step(fired_timers=[t.timer_id for t in due]))).committed
    assert [t.payload.value for t in await engine.timers_of(A)] == [b"c to a"]
    assert await engine.timers_of(Address("ns", "fn", "nobody")) == []


async def test_cancel_then_reschedule_with_the_same_token_in_one_step(
    engine: StorageEngine,
) -> None:
    await engine.commit(Step(timer_ops=[NewTimer(5_000, A, "t", B, text("old"))]))
    step = Step(timer_ops=[CancelTimer(A, "t"), NewTimer(9_000, A, "t", B, text("new"))])
    assert (await engine.commit(step)).committed
    [timer] = await engine.due_timers(10_000, 10)
    assert (timer.fire_at_ms, timer.payload) == (9_000, text("new"))


async def test_the_latest_times_a_reply_can_ask_for_fit(engine: StorageEngine) -> None:
    """A delay or TTL of LONGEST_MS (the most a function may ask for) from a clock far in the
    future still fits the engine's times (SQLite's are 64-bit)."""
    latest = 4_102_444_800_000 + LONGEST_MS  # from the year 2100
    value = StateValue("v", text("v"), 1, LONGEST_MS, latest)
    step = Step(
        state_address=A, state_puts=[value], timer_ops=[NewTimer(latest, A, "t", B, text("t"))]
    )
    assert (await engine.commit(step)).committed
    assert (await engine.read_state(A))["v"].expires_at_ms == latest
    [timer] = await engine.due_timers(latest, 10)
    assert timer.fire_at_ms == latest


# --- dedup window and TTL ---------------------------------------------------------------------


async def test_idempotency_keys_dedupe_within_their_window(
    engine: StorageEngine, clock: Clock
) -> None:
    def keyed(value: str) -> Step:
        return Step(
            messages=[NewMessage(A, None, text(value))],
            dedup_key="k",
            dedup_expires_at_ms=clock.now_ms + 100,
        )

    assert (await engine.commit(keyed("1"))).committed
    again = await engine.commit(keyed("2"))
    assert (again.committed, again.duplicate) == (False, True)
    assert await _messages(engine, A) == [b"1"]
    clock.now_ms += 100
    assert (await engine.commit(keyed("3"))).committed
    assert await _messages(engine, A) == [b"1", b"3"]


async def test_expired_state_and_keys_are_purged(engine: StorageEngine, clock: Clock) -> None:
    live = StateValue("live", text("l"), 0, 0, None)
    dying = StateValue("dying", text("d"), 1, 10, clock.now_ms + 10)
    step = Step(
        state_address=A,
        state_puts=[live, dying],
        dedup_key="k",
        dedup_expires_at_ms=clock.now_ms + 10,
    )
    await engine.commit(step)
    assert await engine.purge_expired() == 0
    clock.now_ms += 10
    assert await engine.purge_expired() == 2
    assert set(await engine.read_state(A)) == {"live"}
    assert await engine.purge_expired() == 0


# --- dead letters -----------------------------------------------------------------------------


async def _dead_letter(engine: StorageEngine, target: Address, error: str) -> None:
    [seq] = (await engine.commit(Step(messages=[NewMessage(target, C, text(error))]))).seqs
    entry = DeadLetterEntry(target, error, 3, (NewMessage(target, C, text(error)),))
    assert (await engine.commit(Step(consumed=[seq], dead_letter=entry))).committed


async def test_dead_letters_re_drive_to_the_end_of_their_mailbox(engine: StorageEngine) -> None:
    await _dead_letter(engine, A, "boom")
    await _dead_letter(engine, B, "bang")
    await engine.commit(Step(messages=[NewMessage(A, None, text("newer"))]))
    letters = await engine.dead_letters()
    assert [(d.target, d.error, d.attempts) for d in letters] == [(A, "boom", 3), (B, "bang", 3)]
    assert [m.caller for m in letters[0].messages] == [C]
    with pytest.raises(NoSuchDeadLetterError, match="no dead letter with id 999"):
        await engine.redrive([letters[0].dead_letter_id, 999])
    assert len(await engine.dead_letters()) == 2  # nothing of that re-drive happened
    assert await engine.redrive([letters[0].dead_letter_id]) == 1
    assert await _messages(engine, A) == [b"newer", b"boom"]
    assert await engine.delete_dead_letters(None) == 1
    assert await engine.dead_letters() == []
    assert await _messages(engine, B) == []


# --- snapshots -------------------------------------------------------------------------------


async def test_a_snapshot_sees_one_commit_while_steps_go_on(engine: StorageEngine) -> None:
    value = StateValue("s", text("before"), 0, 0, None)
    await engine.commit(
        Step(
            state_address=A,
            state_puts=[value],
            messages=[NewMessage(B, None, text("m"))],
            positions=[Position("src", "p0", "1")],
        )
    )
    contents = engine.snapshot()
    after = StateValue("s", text("after"), 0, 0, None)
    await engine.commit(
        Step(state_address=A, state_puts=[after], positions=[Position("src", "p0", "2")])
    )
    await engine.commit(Step(messages=[NewMessage(C, None, text("later"))]))
    records = list(contents.records)
    assert contents.key_groups == KEY_GROUPS
    assert StateContent(A, value) in records
    assert [r.target for r in records if isinstance(r, MessageContent)] == [B]
    assert [r for r in records if isinstance(r, PositionContent)] == [
        PositionContent("src", "p0", "1")
    ]


# --- bulk loads -------------------------------------------------------------------------------


LOADED = [
    StateContent(A, StateValue("s", text("v"), 0, 0, None)),
    MessageContent(B, A, text("waiting"), 5),
    TimerRecord(0, 7_000, A, "later", C, text("delayed")),
    DeadLetterContent(C, "boom", 9, 2, ((None, text("dead")),)),
    EgressContent("eg", "topic", text("out"), 6),
    DedupKey("key", 50_000),
    PositionContent("src", "p0", "41"),
]


async def test_a_bulk_load_is_read_back_whole(engines: Engines) -> None:
    with engines.loader(True) as loader:
        loader.states([c for c in LOADED if isinstance(c, StateContent)])
        for content in LOADED:
            if not isinstance(content, StateContent):
                loader.add(content)
    engine = await engines.open()
    assert (await engine.read_state(A))["s"].payload == text("v")
    assert [(m.caller, m.payload) for m in await engine.read_batch(B, 10)] == [(A, text("waiting"))]
    [timer] = await engine.due_timers(7_000, 10)
    assert (timer.sender, timer.token, timer.target) == (A, "later", C)
    [letter] = await engine.dead_letters()
    assert (letter.target, letter.error, letter.attempts) == (C, "boom", 2)
    assert await engine.positions("src") == {"p0": "41"}
    again = await engine.commit(Step(dedup_key="key", dedup_expires_at_ms=60_000))
    assert again.duplicate  # the loaded key is in its window
    records = list(engine.snapshot().records)
    assert [type(r) for r in records] == [type(c) for c in LOADED]


async def test_a_failed_bulk_load_loads_nothing_and_a_fresh_one_needs_empty_storage(
    engines: Engines,
) -> None:
    def load_and_fail() -> None:
        with engines.loader(True) as loader:
            loader.add(LOADED[1])
            raise RuntimeError("half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        load_and_fail()
    engine = await engines.open()
    assert await engine.pending_counts() == {}
    await engine.commit(Step(messages=[NewMessage(A, None, text("there"))]))
    await engine.close()
    engines.engine = None
    with pytest.raises(DataDirError, match="not empty"):
        engines.loader(True)
    with engines.loader(False) as loader:  # not fresh: adds to what is there
        loader.add(LOADED[1])
    engine = await engines.open()
    assert await engine.pending_counts() == {A: 1, B: 1}
