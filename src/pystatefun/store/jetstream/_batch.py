"""One atomic batch: the records of the steps that commit together, checked before publish.

Steps are translated into records in queue order, each checked against the view and what
earlier steps of the batch wrote (a cancellation token still pending, an idempotency key in its
window); a refused step adds nothing. Every partition that a step of the batch belongs to adds
its progress marker last, fenced on the marker's sequence, so the batch commits only while this
worker still owns every one of them. A batch goes to one stream; a message to a partition of
another stream becomes an outbox record of the step's own partition (``_relay`` delivers it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import final

from pystatefun.store._rows import clashing_timer_reason
from pystatefun.store.contents import (
    DeadLetterContent,
    DedupKey,
    EgressContent,
    MessageContent,
    PositionContent,
    StateContent,
)
from pystatefun.store.jetstream._layout import ClusterLayout, digest
from pystatefun.store.jetstream._view import ClusterView, Held, Outbound
from pystatefun.store.records import TimerRecord
from pystatefun.store.steps import CancelTimer, NewMessage, Step, StepOutcome
from pystatefun.types import Address

__all__ = ["Batch", "Record", "StepTooLargeError", "home_of", "writes_of"]

_ROLLED_UP = frozenset(("st", "dd", "po"))  # kinds whose subject holds one record, replaced


@final
@dataclass(frozen=True, slots=True)
class Record:
    """One message of a batch: a record on ``subject`` (None: a tombstone)."""

    subject: str
    content: Held | None
    expect_seq: int | None = None  # fenced: the subject's last sequence must be this


def writes_of(step: Step) -> int:
    """At most how many records ``step`` makes (before it is checked against the view)."""
    return (len(step.consumed) + len(step.fired_timers) + len(step.state_deletes)
            + len(step.state_puts) + len(step.messages) + len(step.timer_ops) + len(step.egress)
            + len(step.positions) + (step.dedup_key is not None)
            + (step.dead_letter is not None))  # fmt: skip


class StepTooLargeError(Exception):
    """A step needs more records than one atomic batch may hold."""


@final
class Batch:
    """Records of steps to commit together, and the marker of each partition they touch."""

    def __init__(
        self,
        layout: ClusterLayout,
        view: ClusterView,
        *,
        markers: dict[int, int],
        provisional: dict[int, str],
        now_ms: int,
        limit: int,
        id_prefix: str = "",
        stream: int = 0,
    ) -> None:
        self.layout = layout
        self.stream = stream
        self.id = id_prefix + uuid.uuid4().hex[:20]
        self._slots: list[Record | None] = []
        self._where: dict[str, int] = {}  # subject -> its slot
        self._position: dict[int, int] = {}  # id(record) -> its index, once final
        self.partitions: set[int] = set()
        self.released = False  # a batch of markers that release their partitions
        self._view = view
        self._markers = markers
        self._provisional = provisional  # provisional message id -> subject
        self._now_ms = now_ms
        self._limit = limit
        self._tokens: dict[tuple[Address, str], str | None] = {}  # written in this batch
        self._dedup: set[str] = set()
        self._count = 0

    def __len__(self) -> int:
        return len(self._slots) + len(self.partitions)

    @property
    def records(self) -> list[Record]:
        """The records to publish, in order (what later steps of the batch replaced or
        consumed is left out: a subject appears once in a batch, as the server requires)."""
        return [r for r in self._slots if r is not None]

    def seq_of(self, record: Record, first: int) -> int | None:
        """The sequence ``record`` got, the batch's first being ``first`` (None: a later
        step of the same batch consumed it, so it was never written)."""
        if not self._position:
            self._position = {id(r): n for n, r in enumerate(self.records)}
        at = self._position.get(id(record))
        return None if at is None else first + at

    def token(self) -> str:
        self._count += 1
        return f"{self.id}_{self._count}"

    def room_for(self, records: int, partition: int) -> bool:
        """Whether ``records`` more (and ``partition``'s marker) fit in this batch."""
        more = records + (partition not in self.partitions)
        return len(self) + more <= self._limit

    def add(self, records: list[Record], partition: int, *, fence_subjects: bool = False) -> None:
        """Add records of ``partition``, fenced by its marker when this worker owns it. A
        record on a subject that this batch already writes replaces that one; a tombstone of a
        record made in this batch (a message consumed, a timer cancelled) removes both.

        Records of a partition another worker owns (a message to its mailbox, an idempotency
        key checked by the worker an ingress request came to), and all records when
        ``fence_subjects``, are fenced on their own subject's last sequence instead: they land
        only if nobody wrote that subject since the view last saw it."""
        slots, where = self._slots, self._where
        owned = partition in self._markers
        for given in records:
            kind = self.layout.parse(given.subject)[0]
            record = given
            if fence_subjects or (not owned and kind in _ROLLED_UP):
                record = Record(given.subject, given.content,
                                expect_seq=self._view.seq_at(given.subject))  # fmt: skip
            at = where.get(record.subject)
            if at is None:
                where[record.subject] = len(slots)
                slots.append(record)
                continue
            if record.content is None and kind not in _ROLLED_UP:
                slots[at] = None
                del where[record.subject]
            else:
                slots[at] = record
        if owned and not fence_subjects:  # its subjects' fences are enough
            self.partitions.add(partition)

    def check_size(self, step: Step) -> None:
        """Refuse a step that cannot fit in any batch (``StepTooLargeError``)."""
        if writes_of(step) + 1 > self._limit:
            raise StepTooLargeError(
                f"a step of {writes_of(step)} writes does not fit in one atomic batch of at "
                f"most {self._limit} messages; send fewer messages per invocation"
            )

    def messages(self) -> list[Record]:
        """Every record, then the fenced markers (one per partition)."""
        markers = [
            Record(self.layout.marker(p), None, expect_seq=self._markers.get(p, 0))
            for p in sorted(self.partitions)
        ]
        return [*self.records, *markers]

    # --- steps into records ------------------------------------------------------------------

    def refusal(self, step: Step) -> StepOutcome | None:
        """Why ``step`` cannot commit, checked against the view and this batch."""
        key = step.dedup_key
        if key is not None:
            live = key in self._dedup or self._view.dedup.get(key, (0, ""))[0] > self._now_ms
            if live:
                return StepOutcome(committed=False, duplicate=True)
        pending: dict[tuple[Address, str], bool] = {}
        for op in step.timer_ops:
            at = (op.sender, op.token or "")
            if isinstance(op, CancelTimer):
                pending[at] = False
            elif op.token:
                known = pending.get(at)
                if known is None:
                    known = self._token_pending(at)
                if known:
                    return StepOutcome(committed=False, error=clashing_timer_reason(op.token))
                pending[at] = True
        return None

    def _token_pending(self, at: tuple[Address, str]) -> bool:
        if at in self._tokens:
            return self._tokens[at] is not None
        return at in self._view.tokens

    def home(self, step: Step) -> int:
        """The partition ``step`` belongs to (``home_of``)."""
        return home_of(step, self.layout, self._view, self._provisional)

    def records_of(self, step: Step, home: int) -> tuple[list[Record], list[Record], Record | None]:
        """The records of ``step``; those of its messages, and of its dead letter."""
        records = self._consumption(step)
        address = step.state_address
        if address is not None:
            for name in step.state_deletes:
                records.append(Record(self.state_subject(address, name), None))
            for value in step.state_puts:
                subject = self.state_subject(address, value.name)
                records.append(Record(subject, StateContent(address, value)))
        message_records = []
        for n, message in enumerate(step.messages):
            message_records.append(self._message(message, home))
            if step.provisional is not None and step.provisional[n]:  # not RELAYED
                self._provisional[step.provisional[n]] = message_records[-1].subject
        records.extend(message_records)
        self._timer_records(step, home, records)
        self._keyed_records(step, home, records)
        letter_record = None
        letter = step.dead_letter
        if letter is not None:
            messages = tuple((m.caller, m.payload) for m in letter.messages)
            dead = DeadLetterContent(letter.target, letter.error, self._now_ms, letter.attempts,
                                     messages)  # fmt: skip
            letter_record = Record(self.layout.subject("dl", home, self.token()), dead)
            records.append(letter_record)
        return records, message_records, letter_record

    def _consumption(self, step: Step) -> list[Record]:
        """Tombstones for the messages ``step`` consumes and the timers it fires."""
        view = self._view
        records = []
        for message_id in step.consumed:
            subject = view.subject_of.get(message_id) or self._provisional.get(message_id)
            if subject is not None:
                records.append(Record(subject, None))
        for timer_id in step.fired_timers:
            subject = view.subject_of.get(timer_id)
            if subject is not None:
                records.append(Record(subject, None))
        return records

    def _keyed_records(self, step: Step, home: int, records: list[Record]) -> None:
        """Egress records, ingress positions and the idempotency key of ``step``."""
        layout = self.layout
        for egress, topic, payload in step.egress:
            content = EgressContent(egress, topic, payload, self._now_ms)
            records.append(Record(layout.subject("eg", home, self.token()), content))
        for position in step.positions:
            subject = layout.subject("po", home, digest(position.source, position.key))
            records.append(Record(subject, PositionContent(*position)))
        if step.dedup_key is not None:
            self._dedup.add(step.dedup_key)
            subject = layout.subject("dd", home, digest(step.dedup_key))
            records.append(Record(subject, DedupKey(step.dedup_key, step.dedup_expires_at_ms)))

    def message_record(self, message: NewMessage, home: int) -> Record:
        """A record appending ``message`` to its target's mailbox now, sent by a step of
        partition ``home``."""
        return self._message(message, home)

    def _message(self, message: NewMessage, home: int) -> Record:
        """The record of ``message``: in its target's mailbox, or, when that partition is in
        another stream, in ``home``'s outbox."""
        target, layout = message.target, self.layout
        content = MessageContent(target, message.caller, message.payload, self._now_ms)
        partition = layout.partition_of(target.id)
        if layout.stream_of(partition) != self.stream:
            return Record(layout.subject("ob", home, self.token()), Outbound(content))
        return Record(layout.subject("in", partition, self.token()), content)

    def state_subject(self, address: Address, name: str) -> str:
        """The subject of ``address``'s state value ``name`` (in the address's partition)."""
        partition = self.layout.partition_of(address.id)
        return self.layout.subject("st", partition, digest(*address, name))

    def _timer_records(self, step: Step, home: int, records: list[Record]) -> None:
        for op in step.timer_ops:
            if isinstance(op, CancelTimer):
                at = (op.sender, op.token)
                subject = self._tokens.get(at) if at in self._tokens else None
                if subject is None and at not in self._tokens:
                    timer_id = self._view.tokens.get(at)
                    subject = None if timer_id is None else self._view.subject_of[timer_id]
                if subject is not None:
                    records.append(Record(subject, None))
                self._tokens[at] = None
                continue
            subject = self.layout.subject("tm", home, self.token())
            timer = TimerRecord(
                0, op.fire_at_ms, op.sender, op.token, op.target, op.payload, op.trace
            )
            records.append(Record(subject, timer))
            if op.token:
                self._tokens[(op.sender, op.token)] = subject


def home_of(  # noqa: PLR0911 - one answer per kind of step
    step: Step, layout: ClusterLayout, view: ClusterView, provisional: dict[int, str]
) -> int:
    """The partition ``step`` belongs to: its address's, else what it consumes or fires, its
    ingress position's, its dead letter's or its key's; a step that only appends messages
    belongs to its first target's."""
    if step.state_address is not None:
        return layout.partition_of(step.state_address.id)
    for message_id in step.consumed:
        message = view.inbox.get(message_id)
        if message is not None:
            return layout.partition_of(message.target.id)
        subject = provisional.get(message_id)
        if subject is not None:
            return layout.parse(subject)[1]
    for timer_id in step.fired_timers:  # where it is kept: its sender's step's partition
        subject = view.subject_of.get(timer_id)
        if subject is not None:
            return layout.parse(subject)[1]
    if step.positions:  # an ingress's (a record, or one it dead-letters): the position's
        return layout.partition_of_key(step.positions[0].source, step.positions[0].key)
    if step.dead_letter is not None:
        return layout.partition_of(step.dead_letter.target.id)
    if step.dedup_key is not None:
        return layout.partition_of_key(step.dedup_key)
    return layout.partition_of(step.messages[0].target.id) if step.messages else 0
