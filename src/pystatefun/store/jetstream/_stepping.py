"""Steps into batches on a cluster worker: where each goes, and what its commit answers.

A step belongs to one partition (``home_of``) and goes to the committer of that partition's
stream. A keyed ingress step for another worker's partition is forwarded to its owner
(``_forwarding``); a step with an ingress position after its partition moved away is refused.
A step that sends messages to partitions of another stream answers once they are in their
mailboxes (``_relay``), and those messages get the id ``RELAYED``: the runtime learns of them
as of any stored message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from functools import partial

from pystatefun.errors import ClusterStorageError
from pystatefun.store.jetstream._batch import Batch, home_of
from pystatefun.store.jetstream._commits import Job
from pystatefun.store.jetstream._connection import BatchRefusedError
from pystatefun.store.jetstream._forwarding import Forwarding, forwardable
from pystatefun.store.jetstream._parts import EngineParts
from pystatefun.store.jetstream._relay import Relay
from pystatefun.store.jetstream._view import Outbound
from pystatefun.store.steps import RELAYED, Step, StepOutcome

__all__ = ["Stepping"]

_MOVED = "the partition holding this ingress position moved to another worker"
_OTHER_STREAM = "a step may only consume messages and timers of its own partition's stream"
_TIMERS_GONE = "a delayed message was fired meanwhile, or its partition moved to another worker"
_ELSEWHERE = (
    "a step for another worker's partition can only append messages to one stream; send "
    "the messages to other streams' addresses in separate requests"
)


class Stepping(EngineParts):
    """The ``StorageEngine`` methods that take steps (the engine's)."""

    cluster: str
    _next_id: int
    _provisional: dict[int, str]  # provisional id -> subject, until consumed
    _stored: dict[int, int]  # provisional id -> global id, once committed
    _own: set[int]  # messages the runtime holds in memory
    _outboxed: dict[int, list[int]]  # id(step) -> its outbox records, until relayed

    @property
    def forwarding(self) -> Forwarding:
        raise NotImplementedError

    @property
    def relay(self) -> Relay:
        raise NotImplementedError

    async def commit(self, step: Step) -> StepOutcome:
        return await self._queue(step)

    def submit(self, step: Step) -> tuple[list[int], asyncio.Future[StepOutcome]]:
        """Queue ``step``; its messages get provisional ids (negative) until it commits, but
        for those the store delivers itself (``RELAYED``)."""
        home, layout = self._home(step), self.layout
        ids = []
        for message in step.messages:
            if self._crosses(home, message.target.id):
                ids.append(RELAYED)
                continue
            ids.append(self._next_id)
            # Where it will be, for a step that consumes it before this one is built (which
            # names its subject): that step goes to the same stream.
            partition = layout.partition_of(message.target.id)
            self._provisional[self._next_id] = layout.subject("in", partition, "")
            self._next_id -= 1
        step.provisional = ids
        return ids, self._queue(step, home)

    def _home(self, step: Step) -> int:
        return home_of(step, self.layout, self.view, self._provisional)

    def _crosses(self, home: int, target_id: str) -> bool:
        layout = self.layout
        if layout.streams == 1:
            return False
        return layout.stream_of(layout.partition_of(target_id)) != layout.stream_of(home)

    async def _commit_forwarded(self, step: Step) -> StepOutcome:
        """A step another worker sent here (``_forwarding``): committed like this worker's
        own, but its messages are not in this runtime's memory; it reads them as another
        worker's."""
        home = self._home(step)
        job = Job(partial(self._build_step, step=step, in_memory=False), step)
        outcome = await self._relayed(self.writers.queue(job, home), step)
        ownership, layout = self.ownership, self.layout
        for message in step.messages:
            ownership.arrival(layout.partition_of(message.target.id))
        return outcome

    def _queue(self, step: Step, home: int | None = None) -> asyncio.Future[StepOutcome]:
        """Queue ``step`` of partition ``home`` (None: found here)."""
        home = self._home(step) if home is None else home
        markers = self.writers.markers
        if home not in markers and forwardable(step):
            return asyncio.ensure_future(self.forwarding.forward(step, home))
        if home not in markers and step.positions:
            # Only a position's partition owner writes it (it alone reads that source
            # partition): a step after the partition moved away is refused, nothing written.
            refused: asyncio.Future[StepOutcome] = asyncio.get_running_loop().create_future()
            refused.set_result(StepOutcome(committed=False, error=_MOVED))
            return refused
        crosses = any(self._crosses(home, m.target.id) for m in step.messages)
        if home not in markers and crosses:  # only an owner writes its partition's outbox
            refused = asyncio.get_running_loop().create_future()
            refused.set_result(StepOutcome(committed=False, error=_ELSEWHERE))
            return refused
        # A step homed in another worker's partition with an idempotency key and more than
        # messages is fenced on the key's subject: alone, so that a refusal is its own.
        solo = home not in markers and step.dedup_key is not None
        job = Job(partial(self._build_step, step=step), step, solo=solo)
        future: asyncio.Future[StepOutcome] = self.writers.queue(job, home)
        if solo:
            future = asyncio.ensure_future(self._answer(future))
        if crosses:
            future = asyncio.ensure_future(self._relayed(future, step))
        return future

    async def _answer(self, refused: asyncio.Future[StepOutcome]) -> StepOutcome:
        try:
            return await refused
        except BatchRefusedError:  # its key or position was written since the view saw it
            reason = "an idempotency key or ingress position changed meanwhile; retry"
            return StepOutcome(committed=False, error=reason)

    async def _relayed(self, committing: asyncio.Future[StepOutcome], step: Step) -> StepOutcome:
        """The outcome of ``step`` once the messages it sent to other streams are in their
        mailboxes."""
        try:
            outcome = await committing
        finally:
            outboxed = self._outboxed.pop(id(step), [])
        if outboxed:
            await self.relay.delivered(outboxed)
        return outcome

    def _build_step(
        self, batch: Batch, *, step: Step, in_memory: bool = True
    ) -> Callable[[int], StepOutcome] | StepOutcome:
        refused = batch.refusal(step)
        if refused is not None:
            return refused
        home = batch.home(step)
        if step.fired_timers and not self._timers_live(step, batch):
            return StepOutcome(committed=False, error=_TIMERS_GONE)
        if home not in self.writers.markers and (
            step.state_address is not None or step.consumed or step.fired_timers
        ):
            raise ClusterStorageError(
                f"cluster {self.cluster!r}: a step of partition {home}, which this worker "
                "released, came after the release; this worker commits nothing more. Restart "
                "it to rejoin the cluster."
            )
        if self._elsewhere(step, batch.stream):
            return StepOutcome(committed=False, error=_OTHER_STREAM)
        records, message_records, letter_record = batch.records_of(step, home)
        batch.add(records, home)
        provisional, global_id, stream = step.provisional, self.layout.global_id, batch.stream

        def finish(first: int) -> StepOutcome:
            found: list[int | None] = []
            for record in message_records:
                raw = batch.seq_of(record, first)
                found.append(None if raw is None else global_id(stream, raw))
                if isinstance(record.content, Outbound) and raw is not None:
                    self._outboxed.setdefault(id(step), []).append(global_id(stream, raw))
                    found[-1] = RELAYED
            seqs = tuple(seq for seq in found if seq is not None)
            if in_memory:  # the runtime delivers them to memory
                self._own.update(self._served_seqs(seqs))
            if provisional is not None:
                self._stored.update((n, seq) for n, seq in zip(provisional, found, strict=True)
                                    if seq is not None and n != RELAYED)  # fmt: skip
                seqs = ()  # the runtime holds them by their provisional ids
            for message_id in step.consumed:
                self._provisional.pop(message_id, None)
                self._own.discard(self._stored.pop(message_id, message_id))
            letter = None if letter_record is None else batch.seq_of(letter_record, first)
            letter_id = None if letter is None else global_id(stream, letter)
            return StepOutcome(committed=True, seqs=seqs, dead_letter_id=letter_id)

        return finish

    def _timers_live(self, step: Step, batch: Batch) -> bool:
        """Whether every timer ``step`` fires is still pending and in a partition this worker
        owns; if so, the batch is fenced by each of those partitions' markers (a step fires
        due timers of several partitions), so that none is fired twice."""
        layout, subject_of, markers = self.layout, self.view.subject_of, self.writers.markers
        partitions = set()
        for timer_id in step.fired_timers:
            subject = subject_of.get(timer_id)
            partition = None if subject is None else layout.parse(subject)[1]
            if partition is None or partition not in markers:
                return False
            partitions.add(partition)
        for partition in partitions:
            batch.add([], partition)
        return True

    def _elsewhere(self, step: Step, stream: int) -> bool:
        """Whether ``step`` consumes a message or fires a timer of another stream than its
        own (no runtime step does: it consumes its address's mailbox and its timers)."""
        if self.layout.streams == 1:
            return False
        layout, subject_of = self.layout, self.view.subject_of
        for record_id in (*step.consumed, *step.fired_timers):
            subject = subject_of.get(record_id) or self._provisional.get(record_id)
            if subject is not None and layout.stream_of(layout.parse(subject)[1]) != stream:
                return True
        return False

    def _served_seqs(self, seqs: Iterable[int]) -> Iterator[int]:
        """The messages whose mailboxes this worker serves: the runtime holds those in memory;
        the others are for whichever worker serves them (this one too, once it claims them)."""
        layout, subject_of = self.layout, self.view.subject_of
        serving = self.ownership.serving
        return (seq for seq in seqs
                if seq in subject_of and layout.parse(subject_of[seq])[1] in serving)  # fmt: skip
