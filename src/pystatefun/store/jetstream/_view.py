"""The live contents of a cluster's partitions that this worker owns, in memory.

The stream is the truth; the view is what reading it gives, kept current by applying every
record a committed batch wrote (and, on open, every record the stream holds). A worker's view
holds the records of the shared kinds (``SHARED_KINDS``: markers, egress records, dead
letters, positions, relay receipts) of every partition, and the rest only of the partitions it
reads (``partitions``: those it owns); a view with ``partitions`` None (a savepoint's read)
holds everything. Reads serve
from it, and steps are checked against it (a pending cancellation token, an idempotency key
in its window) before they are published. Ids are global ids (``ClusterLayout.global_id``: the
stream sequence of the record that made them, and its stream): a message's id, a timer's, a
dead letter's and an egress record's ``seq``, so they grow within a stream and are never reused.

Outbox records (messages on their way to another stream) and relay marks are the engine's own:
they are kept apart (``outbox``, ``marks``) and never read as a mailbox's messages.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import final

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
from pystatefun.store.jetstream._layout import SHARED_KINDS
from pystatefun.store.records import DeadLetter, EgressRecord, InboxMessage, StateValue, TimerRecord
from pystatefun.types import Address

__all__ = ["ClusterView", "Held", "Mark", "Outbound"]


@final
@dataclass(frozen=True, slots=True)
class Outbound:
    """An outbox record: ``message``, sent to a partition of another stream, until relayed."""

    message: MessageContent


@final
@dataclass(frozen=True, slots=True)
class Mark:
    """A relay mark: an outbox sequence up to which something is done (``_relay``)."""

    upto: int


#: What a subject of the view holds.
Held = Content | Outbound | Mark


@final
class ClusterView:
    """Records by subject, with the indexes that reads need."""

    #: How many entries of records gone an egress topic's heap may hold beyond twice its
    #: live records before it is rebuilt.
    stale_slack = 1024

    def __init__(self, key_groups: int, streams: int = 1) -> None:
        self.key_groups = key_groups
        self._streams = streams
        self._at: dict[str, tuple[int, Held]] = {}  # subject -> (global id, record)
        self.outbox: dict[int, MessageContent] = {}  # global id -> message, until relayed
        self.marks: dict[str, int] = {}  # relay mark subject -> its outbox sequence
        self.on_mark: Callable[[str, int], None] | None = None
        self.subject_of: dict[int, str] = {}  # seq -> subject, for records with ids
        self.inbox: dict[int, MessageContent] = {}  # seq order
        self.by_target: dict[Address, dict[int, None]] = {}
        self.state: dict[Address, dict[str, StateValue]] = {}
        self.timers: dict[int, TimerRecord] = {}
        self.tokens: dict[tuple[Address, str], int] = {}
        self.egress: dict[int, EgressRecord] = {}
        self.egress_created: dict[int, int] = {}
        # (egress, topic) -> its live records, and for each topic popped here a heap of
        # (created, seq), made on its first pop: a pop takes the oldest without a scan.
        # Entries of records gone are dropped when they come to the top (or on a rebuild).
        self._egress_live: Counter[tuple[str, str]] = Counter()
        self._egress_queues: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self.dead_letters: dict[int, DeadLetter] = {}
        self.dedup: dict[str, tuple[int, str]] = {}  # key -> (expires, subject)
        self.positions: dict[tuple[str, str], str] = {}
        self._gone: dict[str, int] = {}  # subject -> its tombstone's seq, until the tail passes
        self.partitions: set[int] | None = None  # whose records of every kind it holds

    def holds(self, kind: str, partition: int) -> bool:
        """Whether the view keeps records of ``kind`` of ``partition``."""
        partitions = self.partitions
        return partitions is None or partition in partitions or kind in SHARED_KINDS

    def drop_partitions(
        self, partitions: set[int], parse: Callable[[str], tuple[str, int]]
    ) -> None:
        """Forget the records of ``partitions`` of the kinds not shared (they are read no
        more): should one come back, its records are read from the stream again."""

        def dropped(subject: str) -> bool:
            kind, partition = parse(subject)
            return partition in partitions and kind not in SHARED_KINDS

        for subject in [s for s in self._at if dropped(s)]:
            self._forget(*self._at.pop(subject))
        for subject in [s for s in self._gone if dropped(s)]:
            del self._gone[subject]

    def apply_newer(self, subject: str, seq: int, content: Held | None) -> bool:
        """``apply``, unless the view holds a newer record (or tombstone) on ``subject``.

        A worker learns of records twice, in any order: from its own commit's acknowledgement
        and from the stream's tail. Whichever comes second must not bring back what the other
        replaced (a popped egress record, say)."""
        found = self._at.get(subject)
        if seq <= max(0 if found is None else found[0], self._gone.get(subject, 0)):
            return False
        self.apply(subject, seq, content)
        if content is None:
            self._gone[subject] = seq
        return True

    def passed(self, covered: Callable[[str, int], bool]) -> None:
        """Forget the tombstones that ``covered`` says the tails have passed (given a subject
        and the tombstone's global id): no older record of their subjects can arrive any
        more. It looks at each: call it once there are many (``tombstones``)."""
        self._gone = {s: at for s, at in self._gone.items() if not covered(s, at)}

    @property
    def tombstones(self) -> int:
        """How many tombstones it remembers (until the tails pass them)."""
        return len(self._gone)

    def seq_at(self, subject: str) -> int:
        """The stream sequence of the live record on ``subject`` (0: none), for a fence."""
        found = self._at.get(subject)
        return 0 if found is None else found[0] // self._streams

    def apply(self, subject: str, seq: int, content: Held | None) -> None:
        """Make the view hold ``content`` on ``subject`` (None: a tombstone, nothing)."""
        old = self._at.pop(subject, None)
        if old is not None:
            self._forget(*old)
        if content is None:
            return
        self._at[subject] = (seq, content)
        if isinstance(content, Mark):
            self.marks[subject] = content.upto
            if self.on_mark is not None:
                self.on_mark(subject, content.upto)
            return
        if isinstance(content, Outbound):
            self.outbox[seq] = content.message
        else:
            self._index(subject, seq, content)
        self.subject_of[seq] = subject

    def _index(self, subject: str, seq: int, content: Content) -> None:
        if isinstance(content, StateContent):
            self.state.setdefault(content.address, {})[content.value.name] = content.value
        elif isinstance(content, MessageContent):
            self.inbox[seq] = content
            self.by_target.setdefault(content.target, {})[seq] = None
        elif isinstance(content, TimerRecord):
            timer = TimerRecord(seq, content.fire_at_ms, content.sender, content.token,
                                content.target, content.payload, content.trace)  # fmt: skip
            self.timers[seq] = timer
            if timer.token:
                self.tokens[(timer.sender, timer.token)] = seq
        elif isinstance(content, DeadLetterContent):
            messages = tuple(InboxMessage(n, content.target, caller, payload)
                             for n, (caller, payload) in enumerate(content.messages))  # fmt: skip
            self.dead_letters[seq] = DeadLetter(
                seq, content.target, content.error, content.failed_at_ms, content.attempts,
                messages,
            )  # fmt: skip
        elif isinstance(content, EgressContent):
            self._index_egress(seq, content)
        elif isinstance(content, DedupKey):
            self.dedup[content.key] = (content.expires_at_ms, subject)
        else:
            self.positions[(content.source, content.key)] = content.position

    def _forget(self, seq: int, content: Held) -> None:
        self.subject_of.pop(seq, None)
        if isinstance(content, Outbound):
            del self.outbox[seq]
        elif isinstance(content, Mark):
            pass  # a mark is only ever replaced by a newer one
        elif isinstance(content, StateContent):
            values = self.state.get(content.address, {})
            values.pop(content.value.name, None)
            if not values:
                self.state.pop(content.address, None)
        elif isinstance(content, MessageContent):
            del self.inbox[seq]
            seqs = self.by_target[content.target]
            del seqs[seq]
            if not seqs:
                del self.by_target[content.target]
        elif isinstance(content, TimerRecord):
            timer = self.timers.pop(seq)
            if timer.token:
                self.tokens.pop((timer.sender, timer.token), None)
        elif isinstance(content, DeadLetterContent):
            del self.dead_letters[seq]
        elif isinstance(content, EgressContent):
            self._forget_egress(seq, content)
        elif isinstance(content, DedupKey):
            self.dedup.pop(content.key, None)
        else:
            self.positions.pop((content.source, content.key), None)

    def _index_egress(self, seq: int, content: EgressContent) -> None:
        self.egress[seq] = EgressRecord(seq, content.egress, content.topic, content.payload)
        self.egress_created[seq] = content.created_at_ms
        topic = (content.egress, content.topic)
        self._egress_live[topic] += 1
        queue = self._egress_queues.get(topic)
        if queue is not None:
            heapq.heappush(queue, (content.created_at_ms, seq))

    def _forget_egress(self, seq: int, content: EgressContent) -> None:
        del self.egress[seq]
        del self.egress_created[seq]
        topic = (content.egress, content.topic)
        self._egress_live[topic] -= 1
        if not self._egress_live[topic]:
            del self._egress_live[topic]

    # --- whole contents ----------------------------------------------------------------------

    def contents(self, in_flight: Iterable[MessageContent] = ()) -> Contents:
        """A copy of every record, in the order savepoints list them, with the messages
        ``in_flight`` between streams as their mailboxes' (``_relay.in_flight``)."""
        return Contents(self.key_groups, iter(list(self._records(in_flight))))

    def _records(self, in_flight: Iterable[MessageContent]) -> Iterator[Content]:
        for address in sorted(self.state):
            for name in sorted(self.state[address]):
                yield StateContent(address, self.state[address][name])
        yield from self.inbox.values()
        yield from in_flight
        yield from self.timers.values()
        for letter in self.dead_letters.values():
            messages = tuple((m.caller, m.payload) for m in letter.messages)
            yield DeadLetterContent(letter.target, letter.error, letter.failed_at_ms,
                                    letter.attempts, messages)  # fmt: skip
        for seq, record in self.egress.items():
            yield EgressContent(record.egress, record.topic, record.payload,
                                self.egress_created[seq])  # fmt: skip
        for key in sorted(self.dedup):
            yield DedupKey(key, self.dedup[key][0])
        for (source, key), position in sorted(self.positions.items()):
            yield PositionContent(source, key, position)

    def counts(self) -> dict[str, int]:
        return {
            "inbox": len(self.inbox),
            "timers": len(self.timers),
            "egress": len(self.egress),
            "dead_letters": len(self.dead_letters),
            "state": sum(len(v) for v in self.state.values()),
        }

    def oldest_egress(self, egress: str, topic: str, skip: set[int]) -> int | None:
        """The seq of the oldest record of ``topic`` (by creation, then seq) not in ``skip``."""
        key = (egress, topic)
        queue = self._egress_queues.get(key)
        live = self._egress_live.get(key, 0)
        if queue is None or len(queue) > 2 * live + self.stale_slack:  # first pop, mostly stale
            queue = [(self.egress_created[seq], seq) for seq, record in self.egress.items()
                     if record.egress == egress and record.topic == topic]  # fmt: skip
            heapq.heapify(queue)
            self._egress_queues[key] = queue
        held = []
        while queue and (queue[0][1] not in self.egress or queue[0][1] in skip):
            entry = heapq.heappop(queue)
            if entry[1] in self.egress:
                held.append(entry)
        found = queue[0][1] if queue else None
        for entry in held:
            heapq.heappush(queue, entry)
        return found

    def egress_after(
        self, egress: str, after_seq: int, limit: int | None = None
    ) -> list[EgressRecord]:
        found = (r for seq, r in self.egress.items() if seq > after_seq and r.egress == egress)
        return list(itertools.islice(found, limit))
