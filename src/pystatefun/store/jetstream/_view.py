"""The live contents of a cluster's partitions that this worker owns, in memory.

The stream is the truth; the view is what reading it gives, kept current by applying every
record a committed batch wrote (and, on open, every record the stream holds). Reads serve
from it, and steps are checked against it (a pending cancellation token, an idempotency key
in its window) before they are published. Ids are stream sequence numbers: a message's id, a
timer's, a dead letter's and an egress record's ``seq`` are the sequence of the record that
made them, so they only grow and are never reused.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
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
from pystatefun.store.records import DeadLetter, EgressRecord, InboxMessage, StateValue, TimerRecord
from pystatefun.types import Address

__all__ = ["ClusterView"]


@final
class ClusterView:
    """Records by subject, with the indexes that reads need."""

    def __init__(self, key_groups: int) -> None:
        self.key_groups = key_groups
        self._at: dict[str, tuple[int, Content]] = {}  # subject -> (seq, record)
        self.subject_of: dict[int, str] = {}  # seq -> subject, for records with ids
        self.inbox: dict[int, MessageContent] = {}  # seq order
        self.by_target: dict[Address, dict[int, None]] = {}
        self.state: dict[Address, dict[str, StateValue]] = {}
        self.timers: dict[int, TimerRecord] = {}
        self.tokens: dict[tuple[Address, str], int] = {}
        self.egress: dict[int, EgressRecord] = {}
        self.egress_created: dict[int, int] = {}
        self.dead_letters: dict[int, DeadLetter] = {}
        self.dedup: dict[str, tuple[int, str]] = {}  # key -> (expires, subject)
        self.positions: dict[tuple[str, str], str] = {}
        self._gone: dict[str, int] = {}  # subject -> its tombstone's seq, until the tail passes

    def apply_newer(self, subject: str, seq: int, content: Content | None) -> bool:
        """``apply``, unless the view holds a newer record (or tombstone) on ``subject``.

        A worker learns of records twice, in any order: from its own commit's acknowledgement
        and from the stream's tail. Whichever comes second must not bring back what the other
        replaced (a popped egress record, say)."""
        if seq <= max(self.seq_at(subject), self._gone.get(subject, 0)):
            return False
        self.apply(subject, seq, content)
        if content is None:
            self._gone[subject] = seq
        return True

    def passed(self, seq: int) -> None:
        """The tail has read the stream up to ``seq``: no older record can arrive any more."""
        if len(self._gone) > 1024:
            self._gone = {s: at for s, at in self._gone.items() if at > seq}

    def seq_at(self, subject: str) -> int:
        """The sequence of the live record on ``subject`` (0: none)."""
        found = self._at.get(subject)
        return 0 if found is None else found[0]

    def apply(self, subject: str, seq: int, content: Content | None) -> None:
        """Make the view hold ``content`` on ``subject`` (None: a tombstone, nothing)."""
        old = self._at.pop(subject, None)
        if old is not None:
            self._forget(*old)
        if content is None:
            return
        self._at[subject] = (seq, content)
        if isinstance(content, StateContent):
            self.state.setdefault(content.address, {})[content.value.name] = content.value
        elif isinstance(content, MessageContent):
            self.inbox[seq] = content
            self.by_target.setdefault(content.target, {})[seq] = None
        elif isinstance(content, TimerRecord):
            timer = TimerRecord(seq, content.fire_at_ms, content.sender, content.token,
                                content.target, content.payload)  # fmt: skip
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
            self.egress[seq] = EgressRecord(seq, content.egress, content.topic, content.payload)
            self.egress_created[seq] = content.created_at_ms
        elif isinstance(content, DedupKey):
            self.dedup[content.key] = (content.expires_at_ms, subject)
        else:
            self.positions[(content.source, content.key)] = content.position
        self.subject_of[seq] = subject

    def _forget(self, seq: int, content: Content) -> None:
        self.subject_of.pop(seq, None)
        if isinstance(content, StateContent):
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
            del self.egress[seq]
            del self.egress_created[seq]
        elif isinstance(content, DedupKey):
            self.dedup.pop(content.key, None)
        else:
            self.positions.pop((content.source, content.key), None)

    # --- whole contents ----------------------------------------------------------------------

    def contents(self) -> Contents:
        """A copy of every record, in the order savepoints list them."""
        return Contents(self.key_groups, iter(list(self._records())))

    def _records(self) -> Iterator[Content]:
        for address in sorted(self.state):
            for name in sorted(self.state[address]):
                yield StateContent(address, self.state[address][name])
        yield from self.inbox.values()
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

    def egress_after(
        self, egress: str, after_seq: int, limit: int | None = None
    ) -> list[EgressRecord]:
        found = (r for seq, r in self.egress.items() if seq > after_seq and r.egress == egress)
        return list(itertools.islice(found, limit))
