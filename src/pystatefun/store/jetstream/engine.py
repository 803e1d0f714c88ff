"""The cluster storage engine: partitions of a NATS JetStream stream, one atomic batch per commit.

A worker claims its partitions by writing each one's progress marker, fenced on the marker's
last sequence; from then on every batch it publishes carries the markers of the partitions its
steps belong to, fenced the same way. A worker whose partition another one claimed since
cannot commit: the server refuses the whole batch. After claiming, the worker reads the
stream back (every subject's last record, which includes everything committed before the
claim) into its view, and serves reads from there. One batch is in flight at a time; steps
queued meanwhile go into the next one (group commit), up to the batch limit of the server.

A publish that gets no acknowledgement may have committed: the engine reads the first
partition's marker, which names the last batch stored, and publishes again only when that is
not this one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, final

from pystatefun.errors import ClusterStorageError, NoSuchDeadLetterError
from pystatefun.store.contents import Contents
from pystatefun.store.engine import EngineStatistics
from pystatefun.store.jetstream._batch import Batch, Record
from pystatefun.store.jetstream._blocking import connect
from pystatefun.store.jetstream._commits import Committer, Job
from pystatefun.store.jetstream._directory import read_directory, write_directory
from pystatefun.store.jetstream._layout import ClusterLayout, check_cluster_name
from pystatefun.store.jetstream._view import ClusterView
from pystatefun.store.records import DeadLetter, EgressRecord, InboxMessage, StateValue, TimerRecord
from pystatefun.store.steps import NewMessage, Step, StepOutcome
from pystatefun.types import Address

if TYPE_CHECKING:
    from nats.aio.client import Client

__all__ = ["DEFAULT_PARTITIONS", "JetStreamEngine"]

_Finish = Callable[[int], StepOutcome]

DEFAULT_PARTITIONS = 16


@final
class JetStreamEngine:
    """A ``StorageEngine`` on a NATS JetStream cluster (``servers``), named ``cluster``."""

    def __init__(
        self,
        servers: Sequence[str],
        *,
        cluster: str,
        worker: str,
        clock_ms: Callable[[], int],
        partitions: int = DEFAULT_PARTITIONS,
        replicas: int = 3,
        batch_limit: int = 1000,
        publish_timeout: float = 5.0,
        commit_deadline: float = 60.0,
    ) -> None:
        self.servers = list(servers)
        self.cluster = check_cluster_name(cluster)
        self.worker = worker
        self.where = f"cluster {cluster!r} at {','.join(self.servers)}"
        self._clock_ms = clock_ms
        self._partitions = partitions
        self._replicas = replicas
        self._batch_limit = batch_limit
        self._publish_timeout = publish_timeout
        self._commit_deadline = commit_deadline
        self._nc: Client | None = None
        self._layout: ClusterLayout | None = None
        self._view: ClusterView | None = None
        self._committer: Committer | None = None
        self._instance_id: str | None = None
        self._next_id = -1
        self._provisional: dict[int, str] = {}  # provisional id -> subject, until consumed
        self._stored: dict[int, int] = {}  # provisional id -> seq, once committed
        self._own: set[int] = set()
        self._closed_statistics = EngineStatistics(0, 0)

    # --- lifecycle ---------------------------------------------------------------------------

    async def open(self, key_groups: int) -> None:
        """Connect, make the cluster's streams if new, claim every partition, read them back."""
        self._nc = await connect(self.servers, reconnect=True)
        try:
            await self._open(key_groups)
        except BaseException:
            await self._nc.close()
            self._nc = None
            raise

    async def _open(self, key_groups: int) -> None:
        assert self._nc is not None
        js = self._nc.jetstream(timeout=10)
        directory = await read_directory(js, self.cluster, replicas=self._replicas)
        if directory is None:
            directory = await write_directory(js, self.cluster, key_groups=key_groups,
                                              partitions=self._partitions, generation=1,
                                              after=None)  # fmt: skip
        if directory.key_groups != key_groups:
            raise ClusterStorageError(
                f"cluster {self.cluster!r} was made with {directory.key_groups} key groups, "
                f"not {key_groups}: start the worker with the cluster's number"
            )
        self._instance_id = directory.instance_id
        layout = self._layout = directory.layout(self.cluster)
        view = self._view = ClusterView(key_groups)
        self._committer = committer = Committer(
            self._nc, layout, view, worker=self.worker, clock_ms=self._clock_ms,
            provisional=self._provisional, batch_limit=self._batch_limit,
            publish_timeout=self._publish_timeout, commit_deadline=self._commit_deadline,
        )  # fmt: skip
        await committer.start(js, replicas=self._replicas, partitions=range(layout.partitions))
        self._own.clear()

    async def close(self) -> None:
        """Commit what is queued, then disconnect."""
        if self._committer is not None:
            await self._committer.stop()
            self._closed_statistics = self._committer.statistics()
            self._committer = None
        if self._nc is not None:
            nc, self._nc = self._nc, None
            await nc.close()

    @property
    def instance_id(self) -> str:
        assert self._instance_id is not None, "the store is not open"
        return self._instance_id

    @property
    def view(self) -> ClusterView:
        assert self._view is not None, "the store is not open"
        return self._view

    @property
    def committer(self) -> Committer:
        assert self._committer is not None, "the store is not open"
        return self._committer

    def statistics(self) -> EngineStatistics:
        committer = self._committer
        return self._closed_statistics if committer is None else committer.statistics()

    # --- steps -------------------------------------------------------------------------------

    async def commit(self, step: Step) -> StepOutcome:
        return await self._queue(step)

    def submit(self, step: Step) -> tuple[range, asyncio.Future[StepOutcome]]:
        """Queue ``step``; its messages get provisional ids (negative) until it commits."""
        count = len(step.messages)
        ids = range(self._next_id, self._next_id - count, -1)
        self._next_id -= count
        step.provisional = ids
        return ids, self._queue(step)

    def _queue(self, step: Step) -> asyncio.Future[StepOutcome]:
        return self.committer.queue(Job(partial(self._build_step, step=step), step))

    def _build_step(
        self, batch: Batch, *, step: Step
    ) -> Callable[[int], StepOutcome] | StepOutcome:
        refused = batch.refusal(step)
        if refused is not None:
            return refused
        home = batch.home(step)
        records, message_records, letter_record = batch.records_of(step, home)
        batch.add(records, home)
        provisional = step.provisional

        def finish(first: int) -> StepOutcome:
            found = [batch.seq_of(record, first) for record in message_records]
            seqs = tuple(seq for seq in found if seq is not None)
            self._own.update(seqs)
            if provisional is not None:
                self._stored.update(
                    (n, seq) for n, seq in zip(provisional, found, strict=True) if seq is not None
                )
                seqs = ()  # the runtime holds them by their provisional ids
            for message_id in step.consumed:
                self._provisional.pop(message_id, None)
                self._own.discard(self._stored.pop(message_id, message_id))
            letter = None if letter_record is None else batch.seq_of(letter_record, first)
            return StepOutcome(committed=True, seqs=seqs, dead_letter_id=letter)

        return finish

    @property
    def backlog(self) -> int:
        committer = self._committer
        return 0 if committer is None else committer.backlog

    # --- reads -------------------------------------------------------------------------------

    def _excluded(self, in_memory: Iterable[int], foreign: bool) -> set[int]:
        excluded = {self._stored.get(i, i) for i in in_memory}
        excluded.update(self._stored.get(i, i) for i in self.committer.undurable_consumed())
        if foreign:
            excluded.update(self._own)
        return excluded

    async def pending_counts(self, *, foreign: bool = False) -> dict[Address, int]:
        excluded = self._excluded((), foreign)
        counts = {target: sum(1 for s in seqs if s not in excluded)
                  for target, seqs in self.view.by_target.items()}  # fmt: skip
        return {target: count for target, count in counts.items() if count}

    async def read_batch(
        self, target: Address, limit: int, in_memory: Iterable[int] = (), *, foreign: bool = False
    ) -> list[InboxMessage]:
        excluded = self._excluded(in_memory, foreign)
        view = self.view
        found: list[InboxMessage] = []
        for seq in view.by_target.get(target, {}):
            if len(found) >= limit:
                break
            if seq not in excluded:
                m = view.inbox[seq]
                found.append(InboxMessage(seq, m.target, m.caller, m.payload))
        return found

    async def read_state(self, address: Address) -> dict[str, StateValue]:
        return dict(self.view.state.get(address, {}))

    async def due_timers(self, now_ms: int, limit: int) -> list[TimerRecord]:
        due = sorted(
            (t for t in self.view.timers.values() if t.fire_at_ms <= now_ms),
            key=lambda t: (t.fire_at_ms, t.timer_id),
        )
        return due[:limit]

    async def next_timer_at(self) -> int | None:
        return min((t.fire_at_ms for t in self.view.timers.values()), default=None)

    async def positions(self, source: str) -> dict[str, str]:
        return {key: p for (s, key), p in self.view.positions.items() if s == source}

    async def counts(self, tables: tuple[str, ...]) -> dict[str, int]:
        sizes = self.view.counts()
        return {table: sizes[table] for table in tables}

    # --- egress, dead letters, housekeeping --------------------------------------------------

    async def _write(self, make: Callable[[Batch], list[tuple[Record, int]]]) -> int:
        """Commit the records ``make`` builds from the view (each with its partition), in the
        commit order of steps; how many it made."""

        def build(batch: Batch) -> Callable[[int], int]:
            made = make(batch)
            for record, partition in made:
                batch.add([record], partition)
            return lambda first: len(made)

        result: int = await self.committer.queue(Job(build, None))
        return result

    async def pop_egress(self, egress: str, topic: str) -> EgressRecord | None:
        popped: list[EgressRecord] = []

        def make(batch: Batch) -> list[tuple[Record, int]]:
            popped.clear()
            for seq, record in self.view.egress.items():
                if record.egress == egress and record.topic == topic:
                    popped.append(record)
                    return [self._gone(seq)]
            return []

        await self._write(make)
        return popped[0] if popped else None

    def _gone(self, seq: int) -> tuple[Record, int]:
        subject = self.view.subject_of[seq]
        return Record(subject, None), self._layout_of().parse(subject)[1]

    def _layout_of(self) -> ClusterLayout:
        assert self._layout is not None, "the store is not open"
        return self._layout

    async def egress_after(self, egress: str, after_seq: int, limit: int) -> list[EgressRecord]:
        return self.view.egress_after(egress, after_seq, limit)

    async def delete_egress(self, egress: str, up_to_seq: int) -> int:
        def make(batch: Batch) -> list[tuple[Record, int]]:
            view = self.view
            done = [s for s, r in view.egress.items() if s <= up_to_seq and r.egress == egress]
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
                made.append(self._gone(letter.dead_letter_id))
                for m in letter.messages:
                    record = batch.message_record(NewMessage(m.target, m.caller, m.payload))
                    made.append((record, made[0][1]))
            return made

        chosen = self._chosen(ids)
        await self._write(make)
        return sum(len(letter.messages) for letter in chosen)

    async def delete_dead_letters(self, ids: Sequence[int] | None) -> int:
        self._chosen(ids)
        return await self._write(
            lambda batch: [self._gone(letter.dead_letter_id) for letter in self._chosen(ids)]
        )

    async def purge_expired(self) -> int:
        now_ms = self._clock_ms()

        def make(batch: Batch) -> list[tuple[Record, int]]:
            view, layout = self.view, self._layout_of()
            made = []
            for expires, subject in view.dedup.values():
                if expires <= now_ms:
                    made.append((Record(subject, None), layout.parse(subject)[1]))
            for address, values in view.state.items():
                for value in values.values():
                    if value.expires_at_ms is not None and value.expires_at_ms <= now_ms:
                        subject = batch.state_subject(address, value.name)
                        made.append((Record(subject, None), layout.parse(subject)[1]))
            return made

        return await self._write(make)

    # --- whole contents ----------------------------------------------------------------------

    def snapshot(self) -> Contents:
        """Every record of the view as of the last commit (a copy)."""
        return self.view.contents()
