"""An in-memory storage engine: the same contract as SQLite, in dicts, for tests.

``pystatefun.testing.FunctionHarness`` runs the runtime's own dispatcher on it, and the
runtime's unit tests drive dispatcher, commits and timers with it on a fake clock. It is not
durable (a process exit loses everything), and every step is durable as soon as it is applied:
``commit`` returns at once, and ``submit`` applies the step before it returns, so the ids it
gives a step's messages are their final seqs.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import final

from pystatefun.errors import DataDirError, NoSuchDeadLetterError
from pystatefun.reading import Reading
from pystatefun.store._rows import clashing_timer_reason
from pystatefun.store.contents import (
    Content,
    Contents,
    DeadLetterContent,
    DedupKey,
    EgressContent,
    MessageContent,
    PositionContent,
    StateContent,
)
from pystatefun.store.engine import EngineStatistics, WholeStore
from pystatefun.store.keygroups import DEFAULT_KEY_GROUPS
from pystatefun.store.memory_loader import MemoryLoader
from pystatefun.store.records import DeadLetter, EgressRecord, InboxMessage, StateValue, TimerRecord
from pystatefun.store.steps import CancelTimer, NewMessage, NewTimer, Step, StepOutcome
from pystatefun.types import Address

__all__ = ["MemoryEngine", "MemoryLoader"]

_Queued = tuple[InboxMessage, int]  # the message (with its seq), enqueued at ms


@final
class MemoryEngine(WholeStore):
    """A ``StorageEngine`` in memory; ``clock_ms`` dates rows and decides expiry."""

    def __init__(self, clock_ms: Callable[[], int], *, key_groups: int | None = None) -> None:
        self.where = "memory"
        self._clock_ms = clock_ms
        self._key_groups = key_groups  # fixed by the first open, unless given
        self._seq = 0
        self._inbox: dict[int, _Queued] = {}  # seq -> message, in seq order
        self._by_target: dict[Address, dict[int, None]] = {}  # ordered sets of seqs
        self._state: dict[Address, dict[str, StateValue]] = {}
        self._timers: dict[int, TimerRecord] = {}
        self._tokens: dict[tuple[Address, str], int] = {}
        self._egress: dict[int, EgressRecord] = {}
        self._dedup: dict[str, int] = {}
        self._positions: dict[tuple[str, str], str] = {}
        self._dead_letters: dict[int, DeadLetter] = {}
        self._ids = 0  # timers, egress records and dead letters
        self._commits = 0
        self._instance_id = uuid.uuid4().hex
        self._own: set[int] = set()  # seqs of messages steps wrote since the engine opened

    async def open(self, key_groups: int) -> None:
        if self._key_groups is not None and self._key_groups != key_groups:
            raise DataDirError(
                f"the memory store was opened with {self._key_groups} key groups, not {key_groups}"
            )
        self._key_groups = key_groups
        self._own.clear()  # what steps wrote before is recovered now: foreign

    async def close(self) -> None:
        """Nothing to release: the contents stay, and the engine may be opened again."""

    @property
    def instance_id(self) -> str:
        return self._instance_id

    def statistics(self) -> EngineStatistics:
        return EngineStatistics(self._commits, self._commits, ((1, self._commits),))

    def readings(self) -> list[Reading]:
        return []  # nothing beyond the runtime's own figures

    @property
    def key_groups(self) -> int:
        """The key groups it was opened with (or given), by default ``DEFAULT_KEY_GROUPS``."""
        return self._key_groups or DEFAULT_KEY_GROUPS

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # --- steps -------------------------------------------------------------------------------

    async def commit(self, step: Step) -> StepOutcome:
        return self._apply(step)

    def submit(self, step: Step) -> tuple[range, asyncio.Future[StepOutcome]]:
        outcome = self._apply(step)
        future: asyncio.Future[StepOutcome] = asyncio.get_running_loop().create_future()
        future.set_result(outcome)
        first = outcome.seqs[0] if outcome.seqs else self._seq + 1
        return range(first, first + len(outcome.seqs)), future

    @property
    def backlog(self) -> int:
        return 0

    def _refusal(self, step: Step, now_ms: int) -> StepOutcome | None:
        """Why ``step`` cannot be applied (checked before anything of it is)."""
        key = step.dedup_key
        if key is not None and self._dedup.get(key, now_ms) > now_ms:
            return StepOutcome(committed=False, duplicate=True)
        pending = set(self._tokens)
        for op in step.timer_ops:
            if isinstance(op, CancelTimer):
                pending.discard((op.sender, op.token))
            elif op.token:
                if (op.sender, op.token) in pending:
                    return StepOutcome(committed=False, error=clashing_timer_reason(op.token))
                pending.add((op.sender, op.token))
        return None

    def _apply(self, step: Step) -> StepOutcome:
        now_ms = self._clock_ms()
        refused = self._refusal(step, now_ms)
        if refused is not None:
            return refused
        self._commits += 1
        if step.dedup_key is not None:
            self._dedup[step.dedup_key] = step.dedup_expires_at_ms
        for seq in step.consumed:
            self._consume(seq)
        for timer_id in step.fired_timers:
            self._drop_timer(timer_id)
        if step.state_address is not None:
            values = self._state.setdefault(step.state_address, {})
            for name in step.state_deletes:
                values.pop(name, None)
            for value in step.state_puts:
                values[value.name] = value
            if not values:
                del self._state[step.state_address]
        seqs = self._append(step.messages, now_ms)
        self._own.update(seqs)
        for op in step.timer_ops:
            self._timer(op)
        for egress in step.egress:
            record_id = self._next_id()
            self._egress[record_id] = EgressRecord(record_id, *egress)
        for source, key, position in step.positions:
            self._positions[(source, key)] = position
        letter = step.dead_letter
        letter_id = None
        if letter is not None:
            letter_id = self._next_id()
            messages = tuple(InboxMessage(n, *m) for n, m in enumerate(letter.messages))
            self._dead_letters[letter_id] = DeadLetter(
                letter_id, letter.target, letter.error, now_ms, letter.attempts, messages
            )
        return StepOutcome(committed=True, seqs=seqs, dead_letter_id=letter_id)

    def _append(self, messages: Iterable[NewMessage], now_ms: int) -> tuple[int, ...]:
        seqs = []
        for message in messages:
            self._seq += 1
            seq = self._seq
            stored = InboxMessage(seq, message.target, message.caller, message.payload)
            self._inbox[seq] = (stored, now_ms)  # no trace: stores keep none
            self._by_target.setdefault(message.target, {})[seq] = None
            seqs.append(seq)
        return tuple(seqs)

    def _consume(self, seq: int) -> None:
        queued = self._inbox.pop(seq, None)
        self._own.discard(seq)
        if queued is None:
            return
        target = queued[0].target
        seqs = self._by_target[target]
        del seqs[seq]
        if not seqs:
            del self._by_target[target]

    def _timer(self, op: NewTimer | CancelTimer) -> None:
        if isinstance(op, CancelTimer):
            timer_id = self._tokens.get((op.sender, op.token))
            if timer_id is not None:
                self._drop_timer(timer_id)
            return
        timer_id = self._next_id()
        self._timers[timer_id] = TimerRecord(
            timer_id, op.fire_at_ms, op.sender, op.token, op.target, op.payload, op.trace
        )
        if op.token:
            self._tokens[(op.sender, op.token)] = timer_id

    def _drop_timer(self, timer_id: int) -> None:
        timer = self._timers.pop(timer_id, None)
        if timer is not None and timer.token:
            self._tokens.pop((timer.sender, timer.token), None)

    # --- reads -------------------------------------------------------------------------------

    async def pending_counts(self, *, foreign: bool = False) -> dict[Address, int]:
        own = self._own if foreign else frozenset()
        counts = {target: sum(1 for s in seqs if s not in own)
                  for target, seqs in self._by_target.items()}  # fmt: skip
        return {target: count for target, count in counts.items() if count}

    async def read_batch(
        self, target: Address, limit: int, in_memory: Iterable[int] = (), *, foreign: bool = False
    ) -> list[InboxMessage]:
        skip = set(in_memory)
        own = self._own if foreign else frozenset()
        seqs = (s for s in self._by_target.get(target, {}) if s not in skip and s not in own)
        return [self._inbox[s][0] for _, s in zip(range(limit), seqs, strict=False)]

    async def read_state(self, address: Address) -> dict[str, StateValue]:
        return dict(self._state.get(address, {}))

    async def due_timers(self, now_ms: int, limit: int) -> list[TimerRecord]:
        due = sorted(
            (t for t in self._timers.values() if t.fire_at_ms <= now_ms),
            key=lambda t: (t.fire_at_ms, t.timer_id),
        )
        return due[:limit]

    async def next_timer_at(self) -> int | None:
        return min((t.fire_at_ms for t in self._timers.values()), default=None)

    async def timers_of(self, address: Address) -> list[TimerRecord]:
        return sorted((t for t in self._timers.values() if address in (t.target, t.sender)),
                      key=lambda t: (t.fire_at_ms, t.timer_id))  # fmt: skip

    async def positions(self, source: str) -> dict[str, str]:
        return {key: p for (s, key), p in self._positions.items() if s == source}

    async def counts(self, tables: tuple[str, ...]) -> dict[str, int]:
        sizes = {
            "inbox": len(self._inbox),
            "timers": len(self._timers),
            "egress": len(self._egress),
            "dead_letters": len(self._dead_letters),
            "state": sum(len(v) for v in self._state.values()),
        }
        return {table: sizes[table] for table in tables}

    # --- egress, dead letters, housekeeping --------------------------------------------------

    async def pop_egress(self, egress: str, topic: str) -> EgressRecord | None:
        for record_id, record in self._egress.items():
            if record.egress == egress and record.topic == topic:
                del self._egress[record_id]
                return record
        return None

    async def egress_after(
        self, egress: str, after_seq: int, limit: int, *, shard: int | None = None
    ) -> list[EgressRecord]:
        found = (r for seq, r in self._egress.items() if seq > after_seq and r.egress == egress)
        return list(itertools.islice(found, limit))

    async def delete_egress(self, egress: str, up_to_seq: int, *, shard: int | None = None) -> int:
        done = [seq for seq, r in self._egress.items() if seq <= up_to_seq and r.egress == egress]
        for seq in done:
            del self._egress[seq]
        return len(done)

    async def dead_letters(self, limit: int = -1) -> list[DeadLetter]:
        letters = list(self._dead_letters.values())
        return letters if limit < 0 else letters[:limit]

    def _chosen(self, ids: Sequence[int] | None) -> list[DeadLetter]:
        if ids is None:
            return list(self._dead_letters.values())
        missing = sorted(set(ids) - set(self._dead_letters))
        if missing:
            raise NoSuchDeadLetterError(missing)
        return [self._dead_letters[i] for i in sorted(set(ids))]

    async def redrive(self, ids: Sequence[int] | None) -> int:
        chosen = self._chosen(ids)
        now_ms = self._clock_ms()
        for letter in chosen:
            del self._dead_letters[letter.dead_letter_id]
            self._append(
                (NewMessage(m.target, m.caller, m.payload) for m in letter.messages), now_ms
            )
        return sum(len(letter.messages) for letter in chosen)

    async def delete_dead_letters(self, ids: Sequence[int] | None) -> int:
        chosen = self._chosen(ids)
        for letter in chosen:
            del self._dead_letters[letter.dead_letter_id]
        return len(chosen)

    async def purge_expired(self) -> int:
        now_ms = self._clock_ms()
        keys = [k for k, expires in self._dedup.items() if expires <= now_ms]
        for key in keys:
            del self._dedup[key]
        purged = len(keys)
        for address in list(self._state):
            values = self._state[address]
            for name in [n for n, v in values.items() if _expired(v, now_ms)]:
                del values[name]
                purged += 1
            if not values:
                del self._state[address]
        return purged

    # --- whole contents ----------------------------------------------------------------------

    def snapshot(self) -> Contents:
        """A copy of every record, taken now (later steps do not change it)."""
        return Contents(self.key_groups, iter(list(self._records())))

    def _records(self) -> Iterator[Content]:
        for address in sorted(self._state):
            for name in sorted(self._state[address]):
                yield StateContent(address, self._state[address][name])
        for message, enqueued_at_ms in self._inbox.values():
            yield MessageContent(message.target, message.caller, message.payload, enqueued_at_ms)
        yield from self._timers.values()
        for letter in self._dead_letters.values():
            messages = tuple((m.caller, m.payload) for m in letter.messages)
            yield DeadLetterContent(
                letter.target, letter.error, letter.failed_at_ms, letter.attempts, messages
            )
        for record in self._egress.values():
            yield EgressContent(record.egress, record.topic, record.payload, 0)
        for key in sorted(self._dedup):
            yield DedupKey(key, self._dedup[key])
        for (source, key), position in sorted(self._positions.items()):
            yield PositionContent(source, key, position)

    def loader(self, *, fresh: bool) -> MemoryLoader:
        """A ``BulkLoader`` into this engine (``fresh``: it must hold nothing yet)."""
        if fresh and any(True for _ in self._records()):
            raise DataDirError("the memory store is not empty; restore into a new one")
        return MemoryLoader(self)

    def load(self, records: Iterable[Content]) -> None:
        """Bulk-load records at once, as a loader commits them (state values replace existing)."""
        now_ms = self._clock_ms()
        for record in records:
            if isinstance(record, StateContent):
                self._state.setdefault(record.address, {})[record.value.name] = record.value
            elif isinstance(record, MessageContent):
                self._append([NewMessage(record.target, record.caller, record.payload)], now_ms)
            elif isinstance(record, TimerRecord):
                self._timer(NewTimer(record.fire_at_ms, record.sender, record.token,
                                     record.target, record.payload))  # fmt: skip
            elif isinstance(record, DeadLetterContent):
                letter_id = self._next_id()
                messages = tuple(
                    InboxMessage(n, record.target, caller, payload)
                    for n, (caller, payload) in enumerate(record.messages)
                )
                self._dead_letters[letter_id] = DeadLetter(
                    letter_id,
                    record.target,
                    record.error,
                    record.failed_at_ms,
                    record.attempts,
                    messages,
                )
            elif isinstance(record, EgressContent):
                record_id = self._next_id()
                self._egress[record_id] = EgressRecord(
                    record_id, record.egress, record.topic, record.payload
                )
            elif isinstance(record, DedupKey):
                self._dedup[record.key] = record.expires_at_ms
            else:
                self._positions[(record.source, record.key)] = record.position


def _expired(value: StateValue, now_ms: int) -> bool:
    return value.expires_at_ms is not None and value.expires_at_ms <= now_ms
