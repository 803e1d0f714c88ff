"""Writing a group commit: every queued step in one transaction, with their writes combined.

Steps of one transaction are applied in order, but rows that several of them touch are
written once:

- **Messages made and consumed within the transaction are never written.** A step whose
  messages the runtime delivers before it commits (``Step.provisional``: embedded functions
  messaging each other) gives them provisional ids, negative numbers; a later step of the same
  transaction that consumes one cancels its insert, so neither the row nor its deletion reaches
  the disk. The outcome is the same as writing both: once the transaction commits, the message
  was sent and consumed.
- **A state value written by several steps is written once**, with its last value.
- Inbox inserts and deletes go out as one statement each.

A provisional message that is still unconsumed at the end of its transaction is inserted; its
seq is remembered until a later step consumes it, so the consumption deletes the right row.

A step that can fail alone (only a delayed message's cancellation token can clash) is applied
on its own in a savepoint, after the combined writes before it are flushed, so rolling it
back touches nothing else.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import final

from pystatefun.store._rows import (
    DELETE_STATE,
    INSERT_EGRESS,
    INSERT_INBOX,
    INSERT_TIMER,
    PUT_POSITION,
    PUT_STATE,
    Row,
    clashing_timer_reason,
    egress_row,
    inbox_row,
    insert_dead_letter,
    state_row,
    timer_row,
)
from pystatefun.store.keygroups import KeyGroups
from pystatefun.store.steps import CancelTimer, NewMessage, NewTimer, Step, StepOutcome

__all__ = ["StepWriter", "may_fail_alone"]

StateKey = tuple[str, str, str, str]


def may_fail_alone(step: Step) -> bool:
    """Whether ``step`` can be refused while the rest of its transaction commits: only a
    delayed message with a cancellation token can (the token may clash)."""
    return any(isinstance(op, NewTimer) and op.token for op in step.timer_ops)


@final
class _Combined:
    """The writes of the steps since the last flush, combined."""

    __slots__ = ("awaiting", "cancelled", "deletes", "rows", "state")

    def __init__(self) -> None:
        self.rows: dict[object, Row] = {}  # message key -> inbox row, in step order
        self.cancelled: set[int] = set()
        self.awaiting: list[tuple[int, list[object]]] = []  # outcome index, its message keys
        self.deletes: list[int] = []
        self.state: dict[StateKey, Row | None] = {}  # None: delete

    def clear(self) -> None:
        self.rows.clear()
        self.cancelled.clear()
        self.awaiting.clear()
        self.deletes.clear()
        self.state.clear()


@final
class StepWriter:
    """Applies steps on one connection; only ever called from the store's thread."""

    def __init__(self, connection: sqlite3.Connection, key_groups: KeyGroups) -> None:
        self._db = connection
        self._key_group_of = key_groups.of
        # Provisional id -> seq, for provisional messages stored and not consumed yet.
        self._stored: dict[int, int] = {}
        self._keys = 0  # keys for messages without a provisional id
        # The seqs steps inserted since the store opened, as [first, last] ranges, oldest
        # first: a new range starts only where other rows (a re-drive's) came between.
        self._own: list[list[int]] = []
        # What the transaction being written changed in the two above, for ``undo``.
        self._popped: list[tuple[int, int]] = []
        self._added: list[int] = []
        self._own_mark: tuple[int, int | None] = (0, None)

    def undo(self) -> None:
        """Forget what the transaction being written did to the writer's own bookkeeping: it
        was rolled back (a full disk, say), and may be written again, whole, later."""
        for message_id in self._added:
            self._stored.pop(message_id, None)
        self._stored.update(self._popped)
        ranges, last = self._own_mark
        del self._own[ranges:]
        if last is not None:
            self._own[-1][1] = last

    def own_ranges(self) -> list[tuple[int, int]]:
        """The seqs steps inserted since the store opened, as (first, last) ranges."""
        return [(first, last) for first, last in self._own]

    def wrote(self, seq: int) -> bool:
        """Whether a step inserted ``seq`` since the store opened."""
        return any(first <= seq <= last for first, last in self._own)

    def _wrote_rows(self, first: int, count: int) -> None:
        last = first + count - 1
        if self._own and self._own[-1][1] == first - 1:
            self._own[-1][1] = last
        else:
            self._own.append([first, last])

    def seq_of(self, message_id: int) -> int | None:
        """The inbox seq of a message id (a seq, or a provisional id); None while unstored."""
        return message_id if message_id >= 0 else self._stored.get(message_id)

    def apply(self, steps: list[Step], now_ms: int) -> list[StepOutcome]:
        """Apply ``steps`` inside the caller's transaction; one outcome per step, in order."""
        self._popped, self._added = [], []
        self._own_mark = (len(self._own), self._own[-1][1] if self._own else None)
        outcomes: list[StepOutcome] = []
        combined = _Combined()
        for step in steps:
            if not may_fail_alone(step):
                outcomes.append(self._apply(step, now_ms, combined, len(outcomes)))
                continue
            self._flush(combined, outcomes)
            index = len(outcomes)
            self._db.execute("SAVEPOINT step")
            try:
                outcomes.append(self._apply(step, now_ms, combined, index))
                self._flush(combined, outcomes)
            except sqlite3.IntegrityError as exc:
                self._db.execute("ROLLBACK TO step")
                combined.clear()
                del outcomes[index:]
                outcomes.append(StepOutcome(committed=False, error=self._refusal(step, exc)))
            self._db.execute("RELEASE step")
        self._flush(combined, outcomes)
        return outcomes

    def append(self, messages: Iterable[NewMessage], now_ms: int) -> tuple[int, ...]:
        """Insert ``messages`` at the end of their mailboxes now; returns their seqs."""
        rows = [self._inbox_row(m, now_ms) for m in messages]
        if not rows:
            return ()
        first = self._insert_rows(rows)
        return tuple(range(first, first + len(rows)))

    # --- one step ------------------------------------------------------------------------------

    def _apply(self, step: Step, now_ms: int, combined: _Combined, index: int) -> StepOutcome:
        if step.dedup_key is not None:
            inserted = self._db.execute(
                "INSERT INTO dedup VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                "expires_at_ms = excluded.expires_at_ms WHERE dedup.expires_at_ms <= ?",
                (step.dedup_key, step.dedup_expires_at_ms, now_ms),
            ).rowcount
            if not inserted:
                return StepOutcome(committed=False, duplicate=True)
        self._consume(step.consumed, combined)
        if step.fired_timers:
            self._db.executemany(
                "DELETE FROM timers WHERE timer_id = ?", [(t,) for t in step.fired_timers]
            )
        self._combine_state(step, combined)
        if step.messages:
            self._combine_messages(step, now_ms, combined, index)
        for op in step.timer_ops:
            self._timer(op)
        if step.egress:
            self._db.executemany(INSERT_EGRESS, [egress_row(*e, at_ms=now_ms) for e in step.egress])
        if step.positions:
            self._db.executemany(PUT_POSITION, step.positions)
        letter = step.dead_letter
        if letter is not None:
            letter_id = insert_dead_letter(
                self._db,
                letter.target,
                error=letter.error,
                failed_at_ms=now_ms,
                attempts=letter.attempts,
                messages=((m.caller, m.payload) for m in letter.messages),
            )
            return StepOutcome(committed=True, dead_letter_id=letter_id)
        return StepOutcome(committed=True)

    def _consume(self, consumed: list[int], combined: _Combined) -> None:
        rows, deletes = combined.rows, combined.deletes
        for message_id in consumed:
            if message_id >= 0:
                deletes.append(message_id)
            elif message_id in rows:  # made in this transaction: written neither way
                del rows[message_id]
                combined.cancelled.add(message_id)
            else:
                seq = self._stored.pop(message_id, None)
                if seq is not None:
                    deletes.append(seq)
                    self._popped.append((message_id, seq))
                # else: consumed before its step was applied, which the runtime never does

    def _combine_state(self, step: Step, combined: _Combined) -> None:
        address = step.state_address
        if address is None:
            return
        namespace, kind, address_id = address
        state = combined.state
        for name in step.state_deletes:
            state[(namespace, kind, address_id, name)] = None
        if not step.state_puts:
            return
        group = self._key_group_of(address_id)
        for v in step.state_puts:
            state[(namespace, kind, address_id, v.name)] = state_row(address, v, key_group=group)

    def _combine_messages(self, step: Step, now_ms: int, combined: _Combined, index: int) -> None:
        rows = combined.rows
        provisional = step.provisional
        if provisional is not None:
            for message, message_id in zip(step.messages, provisional, strict=True):
                rows[message_id] = self._inbox_row(message, now_ms)
            return
        keys: list[object] = []
        for message in step.messages:
            self._keys += 1
            key = ("k", self._keys)
            rows[key] = self._inbox_row(message, now_ms)
            keys.append(key)
        combined.awaiting.append((index, keys))

    # --- flushing ------------------------------------------------------------------------------

    def _flush(self, combined: _Combined, outcomes: list[StepOutcome]) -> None:
        """Write the combined rows; steps that wait for their messages' seqs get them."""
        if combined.deletes:
            self._db.executemany(
                "DELETE FROM inbox WHERE seq = ?", [(s,) for s in combined.deletes]
            )
        if combined.state:
            puts = [row for row in combined.state.values() if row is not None]
            deletes = [key for key, row in combined.state.items() if row is None]
            if deletes:
                self._db.executemany(DELETE_STATE, deletes)
            if puts:
                self._db.executemany(PUT_STATE, puts)
        if combined.rows:
            first = self._insert_rows(list(combined.rows.values()))
            self._wrote_rows(first, len(combined.rows))
            seqs = {key: first + offset for offset, key in enumerate(combined.rows)}
            for key, seq in seqs.items():
                if isinstance(key, int):
                    self._stored[key] = seq
                    self._added.append(key)
            for index, keys in combined.awaiting:
                outcomes[index] = outcomes[index]._replace(seqs=tuple(seqs[k] for k in keys))
        combined.clear()

    def _insert_rows(self, rows: list[Row]) -> int:
        """Insert inbox rows; returns the first one's seq. One writer and AUTOINCREMENT: the
        rows of one statement get consecutive seqs, ending at the last inserted rowid."""
        self._db.executemany(INSERT_INBOX, rows)
        last: int = self._db.execute("SELECT last_insert_rowid()").fetchone()[0]
        return last - len(rows) + 1

    def _inbox_row(self, message: NewMessage, now_ms: int) -> Row:
        target = message.target
        group = self._key_group_of(target.id)
        return inbox_row(target, message.caller, message.payload, key_group=group, at_ms=now_ms)

    # --- timers -------------------------------------------------------------------------------

    def _refusal(self, step: Step, exc: sqlite3.IntegrityError) -> str:
        """Why ``step`` (rolled back) was refused: which of its tokens is still pending (in
        the table, or twice in the step itself)."""
        if "timers" not in str(exc):
            return f"the step violates a store constraint: {exc}"
        seen: set[tuple[object, str]] = set()
        for op in step.timer_ops:
            if isinstance(op, CancelTimer):
                seen.discard((op.sender, op.token))
                continue
            if not op.token:
                continue
            key = (op.sender, op.token)
            pending = self._db.execute(
                "SELECT 1 FROM timers WHERE sender_namespace = ? AND sender_type = ? "
                "AND sender_id = ? AND token = ?",
                (*op.sender, op.token),
            ).fetchone()
            if key in seen or pending is not None:
                return clashing_timer_reason(op.token)
            seen.add(key)
        return f"the step violates a store constraint: {exc}"

    def _timer(self, op: NewTimer | CancelTimer) -> None:
        if isinstance(op, CancelTimer):
            self._db.execute(
                "DELETE FROM timers WHERE sender_namespace = ? AND sender_type = ? "
                "AND sender_id = ? AND token = ?",
                (*op.sender, op.token),
            )
            return
        row = timer_row(
            fire_at_ms=op.fire_at_ms,
            sender=op.sender,
            token=op.token,
            target=op.target,
            payload=op.payload,
            trace=op.trace,
        )
        self._db.execute(INSERT_TIMER, row)
