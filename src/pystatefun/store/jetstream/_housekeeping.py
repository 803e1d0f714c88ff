"""Timers, positions, egress records, dead letters and expiry on a cluster worker.

Timers and ingress positions are read from the view, for the partitions this worker serves.

A playground egress record and a dead letter can be taken from any worker, whichever
partition holds it: such a write is fenced on the record's own subject and published alone, so
two workers popping the same record at once cannot both have it. Publishing egresses and
expiry work on the partitions a worker serves only: each partition's by its owner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from pystatefun.errors import NoSuchDeadLetterError
from pystatefun.store.jetstream._batch import Batch, Record
from pystatefun.store.jetstream._commits import Job
from pystatefun.store.jetstream._connection import BatchRefusedError
from pystatefun.store.jetstream._parts import EngineParts
from pystatefun.store.records import DeadLetter, EgressRecord, TimerRecord
from pystatefun.store.steps import NewMessage
from pystatefun.types import Address

__all__ = ["Housekeeping"]


class Housekeeping(EngineParts):
    """The ``StorageEngine`` methods for timers, positions, egress, dead letters and expiry
    (the engine's)."""

    _batch_limit: int
    _clock_ms: Callable[[], int]

    def owns(self, address: Address) -> bool:
        raise NotImplementedError

    async def _write(
        self, make: Callable[[Batch], list[tuple[Record, int]]], *, anywhere: bool = False
    ) -> int:
        """Commit the records ``make`` builds from the view (each with its partition), in the
        commit order of steps; how many it made. Each stream's batch takes the records of its
        own partitions (``make`` is asked once per stream). ``anywhere``: records of any
        worker's partitions, each fenced on its own subject, alone in a batch
        (``BatchRefusedError``: one of them changed meanwhile, and nothing more was written)."""
        stream_of = self.layout.stream_of

        def build(batch: Batch) -> Callable[[int], int]:
            made = [(r, p) for r, p in make(batch) if stream_of(p) == batch.stream]
            for record, partition in made:
                batch.add([record], partition, fence_subjects=anywhere)
            return lambda first: len(made)

        total = 0
        for committer in self.writers:
            written: int = await committer.queue(Job(build, None, solo=anywhere))
            total += written
        return total

    async def pop_egress(self, egress: str, topic: str) -> EgressRecord | None:
        """The oldest record of ``topic`` of any partition; a worker that pops the same one at
        the same time makes this one take the next."""
        taken: set[int] = set()  # popped elsewhere meanwhile (the tail will say so soon)
        view = self.view
        while True:
            seq = view.oldest_egress(egress, topic, taken)
            if seq is None:
                return None
            record, (gone, partition) = view.egress[seq], self._gone(seq)

            def build(
                batch: Batch, seq: int = seq, gone: Record = gone, partition: int = partition
            ) -> Callable[[int], bool]:
                if seq not in view.egress:
                    return lambda first: False
                batch.add([gone], partition, fence_subjects=True)
                return lambda first: True

            try:
                popped: bool = await self.writers.queue(Job(build, None, solo=True), partition)
            except BatchRefusedError:
                popped = False
            if popped:
                return record
            taken.add(seq)

    def _gone(self, seq: int) -> tuple[Record, int]:
        subject = self.view.subject_of[seq]
        return Record(subject, None), self.layout.parse(subject)[1]

    def _served(self, seq: int, shard: int | None = None) -> bool:
        """Whether record ``seq`` is in a partition this worker serves (and is ``shard``)."""
        partition = self.layout.parse(self.view.subject_of[seq])[1]
        return partition in self.ownership.serving and shard in (None, partition)

    def egress_shards(self) -> tuple[int, ...]:
        return tuple(sorted(self.ownership.serving))

    async def egress_after(
        self, egress: str, after_seq: int, limit: int, *, shard: int | None = None
    ) -> list[EgressRecord]:
        """Records of this worker's partitions only: each partition's are published by its
        owner."""
        found = self.view.egress_after(egress, after_seq)
        return [r for r in found if self._served(r.seq, shard)][:limit]

    async def delete_egress(self, egress: str, up_to_seq: int, *, shard: int | None = None) -> int:
        def make(batch: Batch) -> list[tuple[Record, int]]:
            view = self.view
            done = [
                seq
                for seq, record in view.egress.items()
                if seq <= up_to_seq and record.egress == egress and self._served(seq, shard)
            ]
            return [self._gone(seq) for seq in done[: self._batch_limit // 2]]

        deleted = 0
        while made := await self._write(make):
            deleted += made
        return deleted

    async def dead_letters(self, limit: int = -1) -> list[DeadLetter]:
        letters = list(self.view.dead_letters.values())
        return letters if limit < 0 else letters[:limit]

    def _chosen(self, ids: Sequence[int] | None) -> list[DeadLetter]:
        letters = self.view.dead_letters
        if ids is None:
            return list(letters.values())
        missing = sorted(set(ids) - set(letters))
        if missing:
            raise NoSuchDeadLetterError(missing)
        return [letters[i] for i in sorted(set(ids))]

    async def redrive(self, ids: Sequence[int] | None) -> int:
        self._chosen(ids)  # refuse unknown ids before anything is written

        def make(batch: Batch) -> list[tuple[Record, int]]:
            made: list[tuple[Record, int]] = []
            for letter in self._chosen(ids):
                gone = self._gone(letter.dead_letter_id)
                made.append(gone)
                for m in letter.messages:
                    new = NewMessage(m.target, m.caller, m.payload)
                    made.append((batch.message_record(new, gone[1]), gone[1]))
            return made

        chosen = self._chosen(ids)
        await self._write(make, anywhere=True)
        return sum(len(letter.messages) for letter in chosen)

    async def delete_dead_letters(self, ids: Sequence[int] | None) -> int:
        self._chosen(ids)
        return await self._write(
            lambda batch: [self._gone(letter.dead_letter_id) for letter in self._chosen(ids)],
            anywhere=True,
        )

    async def purge_expired(self) -> int:
        now_ms = self._clock_ms()

        def make(batch: Batch) -> list[tuple[Record, int]]:
            view, layout = self.view, self.layout
            made = []
            serving = self.ownership.serving
            for expires, subject in view.dedup.values():
                if expires <= now_ms and layout.parse(subject)[1] in serving:
                    made.append((Record(subject, None), layout.parse(subject)[1]))
            for address, values in view.state.items():
                if not self.owns(address):
                    continue
                for value in values.values():
                    if value.expires_at_ms is not None and value.expires_at_ms <= now_ms:
                        subject = batch.state_subject(address, value.name)
                        made.append((Record(subject, None), layout.parse(subject)[1]))
            return made

        return await self._write(make)

    # --- timers, positions, sizes ------------------------------------------------------------

    def _timers(self) -> Iterable[TimerRecord]:
        """The delayed messages of the partitions this worker serves (a timer is kept in the
        partition of the step that made it: its sender's)."""
        return (t for t in self.view.timers.values() if self._served(t.timer_id))

    async def due_timers(self, now_ms: int, limit: int) -> list[TimerRecord]:
        """The due timers of one stream (the earliest's): they fire in one step, which is one
        batch of that stream."""
        due = sorted((t for t in self._timers() if t.fire_at_ms <= now_ms),
                     key=lambda t: (t.fire_at_ms, t.timer_id))  # fmt: skip
        if due and self.layout.streams > 1:
            locate = self.layout.locate
            first = locate(due[0].timer_id)[0]
            due = [t for t in due if locate(t.timer_id)[0] == first]
        return due[:limit]

    async def next_timer_at(self) -> int | None:
        return min((t.fire_at_ms for t in self._timers()), default=None)

    async def timers_of(self, address: Address) -> list[TimerRecord]:
        return sorted((t for t in self._timers() if address in (t.target, t.sender)),
                      key=lambda t: (t.fire_at_ms, t.timer_id))  # fmt: skip

    async def positions(self, source: str) -> dict[str, str]:
        return {key: p for (s, key), p in self.view.positions.items() if s == source}

    async def counts(self, tables: tuple[str, ...]) -> dict[str, int]:
        sizes = self.view.counts()
        return {table: sizes[table] for table in tables}
