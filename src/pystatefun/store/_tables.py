"""The SQL behind the store: synchronous, and only ever called from the store's own thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from pystatefun.store import _schema
from pystatefun.store.records import (
    DeadLetter,
    EgressRecord,
    InboxMessage,
    Payload,
    StateValue,
    TimerRecord,
)
from pystatefun.store.steps import CancelTimer, NewMessage, NewTimer, Step, StepOutcome
from pystatefun.types import Address

__all__ = ["Tables"]

Row = tuple[object, ...]
COUNTED_TABLES = ("inbox", "timers", "egress", "dead_letters", "state")


def _address(row: Row, start: int) -> Address | None:
    """The address in columns start..start+2, or None when they are NULL (an ingress caller)."""
    namespace, kind, address_id = row[start], row[start + 1], row[start + 2]
    if namespace is None:
        return None
    return Address(str(namespace), str(kind), str(address_id))


def _required_address(row: Row, start: int) -> Address:
    address = _address(row, start)
    assert address is not None, f"NOT NULL address columns at {start} were NULL"
    return address


def _payload(typename: object, value: object) -> Payload:
    assert value is None or isinstance(value, bytes)
    return Payload(str(typename), value)


class Tables:
    """Reads and writes over one SQLite connection, in explicit transactions."""

    def __init__(self, connection: sqlite3.Connection, key_group_of: Callable[[str], int]) -> None:
        self._db = connection
        self._key_group_of = key_group_of

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def create(connection: sqlite3.Connection) -> None:
        for statement in _schema.STATEMENTS:
            connection.execute(statement)
        connection.execute(
            "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
            (str(_schema.SCHEMA_VERSION),),
        )

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- reads -------------------------------------------------------------------------------

    def read_batch(self, target: Address, limit: int) -> list[InboxMessage]:
        rows = self._db.execute(
            "SELECT seq, caller_namespace, caller_type, caller_id, typename, value FROM inbox "
            "WHERE namespace = ? AND type = ? AND id = ? ORDER BY seq LIMIT ?",
            (target.namespace, target.type, target.id, limit),
        ).fetchall()
        return [InboxMessage(r[0], target, _address(r, 1), _payload(r[4], r[5])) for r in rows]

    def read_state(self, address: Address) -> dict[str, StateValue]:
        rows = self._db.execute(
            "SELECT name, typename, value, expire_mode, expire_after_ms, expires_at_ms FROM state "
            "WHERE namespace = ? AND type = ? AND id = ?",
            (address.namespace, address.type, address.id),
        ).fetchall()
        return {r[0]: StateValue(r[0], _payload(r[1], r[2]), r[3], r[4], r[5]) for r in rows}

    def pending_counts(self) -> dict[Address, int]:
        rows = self._db.execute(
            "SELECT namespace, type, id, COUNT(*) FROM inbox GROUP BY namespace, type, id"
        )
        return {Address(r[0], r[1], r[2]): int(r[3]) for r in rows}

    def due_timers(self, now_ms: int, limit: int) -> list[TimerRecord]:
        rows = self._db.execute(
            "SELECT timer_id, fire_at_ms, sender_namespace, sender_type, sender_id, token, "
            "namespace, type, id, typename, value FROM timers WHERE fire_at_ms <= ? "
            "ORDER BY fire_at_ms, timer_id LIMIT ?",
            (now_ms, limit),
        ).fetchall()
        return [
            TimerRecord(
                r[0],
                r[1],
                _required_address(r, 2),
                r[5],
                _required_address(r, 6),
                _payload(r[9], r[10]),
            )
            for r in rows
        ]

    def next_timer_at(self) -> int | None:
        row = self._db.execute("SELECT MIN(fire_at_ms) FROM timers").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def counts(self, tables: tuple[str, ...] = COUNTED_TABLES) -> dict[str, int]:
        assert set(tables) <= set(COUNTED_TABLES), tables  # names go into SQL: only ours
        return {t: int(self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}  # noqa: S608 - fixed names

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        letters = self._db.execute(
            "SELECT dead_letter_id, namespace, type, id, error, failed_at_ms, attempts "
            "FROM dead_letters ORDER BY dead_letter_id LIMIT ?",
            (limit,),
        ).fetchall()
        result = []
        for r in letters:
            target = Address(r[1], r[2], r[3])
            messages = self._db.execute(
                "SELECT position, caller_namespace, caller_type, caller_id, typename, value "
                "FROM dead_letter_messages WHERE dead_letter_id = ? ORDER BY position",
                (r[0],),
            ).fetchall()
            batch = tuple(
                InboxMessage(m[0], target, _address(m, 1), _payload(m[4], m[5])) for m in messages
            )
            result.append(DeadLetter(r[0], target, r[4], r[5], r[6], batch))
        return result

    # --- writes --------------------------------------------------------------------------------

    def apply_steps(self, steps: list[Step], now_ms: int) -> list[StepOutcome]:
        """Apply every step in one transaction. A step that can fail alone (only a delayed
        message's token can clash) runs in a savepoint, so it is rolled back alone."""
        outcomes = []
        with self._transaction():
            for step in steps:
                if not any(isinstance(op, NewTimer) and op.token for op in step.timer_ops):
                    outcomes.append(self._apply(step, now_ms))
                    continue
                self._db.execute("SAVEPOINT step")
                try:
                    outcome = self._apply(step, now_ms)
                except sqlite3.IntegrityError as exc:
                    self._db.execute("ROLLBACK TO step")
                    outcome = StepOutcome(committed=False, error=_integrity_reason(exc))
                self._db.execute("RELEASE step")
                outcomes.append(outcome)
        return outcomes

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: committed if the block completes, rolled back otherwise."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _apply(self, step: Step, now_ms: int) -> StepOutcome:
        if step.dedup_key is not None:
            inserted = self._db.execute(
                "INSERT INTO dedup VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                "expires_at_ms = excluded.expires_at_ms WHERE dedup.expires_at_ms <= ?",
                (step.dedup_key, step.dedup_expires_at_ms, now_ms),
            ).rowcount
            if not inserted:
                return StepOutcome(committed=False, duplicate=True)
        if len(step.consumed) == 1:
            self._db.execute("DELETE FROM inbox WHERE seq = ?", (step.consumed[0],))
        elif step.consumed:
            self._db.executemany("DELETE FROM inbox WHERE seq = ?", [(s,) for s in step.consumed])
        if step.fired_timers:
            self._db.executemany(
                "DELETE FROM timers WHERE timer_id = ?", [(t,) for t in step.fired_timers]
            )
        self._write_state(step)
        seqs = self._append(step.messages, now_ms)
        for op in step.timer_ops:
            self._timer(op)
        if step.egress:
            self._db.executemany(
                "INSERT INTO egress (egress, topic, typename, value, created_at_ms) "
                "VALUES (?,?,?,?,?)",
                [(e, t, p.typename, p.value, now_ms) for e, t, p in step.egress],
            )
        if step.dead_letter is not None:
            self._dead_letter(step, now_ms)
        return StepOutcome(committed=True, seqs=seqs)

    def _write_state(self, step: Step) -> None:
        address = step.state_address
        if address is None:
            return
        key = (address.namespace, address.type, address.id)
        group = self._key_group_of(address.id)
        if step.state_deletes:
            self._db.executemany(
                "DELETE FROM state WHERE namespace = ? AND type = ? AND id = ? AND name = ?",
                [(*key, name) for name in step.state_deletes],
            )
        if not step.state_puts:
            return
        self._db.executemany(
            "INSERT OR REPLACE INTO state VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    *key,
                    v.name,
                    group,
                    v.payload.typename,
                    v.payload.value or b"",
                    v.expire_mode,
                    v.expire_after_ms,
                    v.expires_at_ms,
                )
                for v in step.state_puts
            ],
        )

    def _append(self, messages: Iterable[NewMessage], now_ms: int) -> tuple[int, ...]:
        """Insert ``messages`` at the end of their mailboxes; returns their seqs, in order."""
        insert = (
            "INSERT INTO inbox (namespace, type, id, key_group, caller_namespace, caller_type, "
            "caller_id, typename, value, enqueued_at_ms) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "RETURNING seq"
        )
        execute = self._db.execute
        return tuple(
            execute(
                insert,
                (
                    m.target.namespace,
                    m.target.type,
                    m.target.id,
                    self._key_group_of(m.target.id),
                    *(_columns(m.caller)),
                    m.payload.typename,
                    m.payload.value,
                    now_ms,
                ),
            ).fetchone()[0]
            for m in messages
        )

    def _timer(self, op: NewTimer | CancelTimer) -> None:
        sender = (op.sender.namespace, op.sender.type, op.sender.id)
        if isinstance(op, CancelTimer):
            self._db.execute(
                "DELETE FROM timers WHERE sender_namespace = ? AND sender_type = ? "
                "AND sender_id = ? AND token = ?",
                (*sender, op.token),
            )
            return
        self._db.execute(
            "INSERT INTO timers (fire_at_ms, sender_namespace, sender_type, sender_id, token, "
            "namespace, type, id, typename, value) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                op.fire_at_ms,
                *sender,
                op.token,
                op.target.namespace,
                op.target.type,
                op.target.id,
                op.payload.typename,
                op.payload.value,
            ),
        )

    def _dead_letter(self, step: Step, now_ms: int) -> None:
        assert step.dead_letter is not None
        target, error, attempts = step.dead_letter
        cursor = self._db.execute(
            "INSERT INTO dead_letters (namespace, type, id, error, failed_at_ms, attempts) "
            "VALUES (?,?,?,?,?,?)",
            (target.namespace, target.type, target.id, error, now_ms, attempts),
        )
        self._db.executemany(
            "INSERT INTO dead_letter_messages VALUES (?,?,?,?,?,?,?)",
            [
                (
                    cursor.lastrowid,
                    position,
                    *_columns(m.caller),
                    m.payload.typename,
                    m.payload.value,
                )
                for position, m in enumerate(step.dead_letter_messages)
            ],
        )

    def pop_egress(self, egress: str, topic: str) -> EgressRecord | None:
        """Remove and return the oldest record of a topic, in its own transaction."""
        with self._transaction():
            row = self._db.execute(
                "DELETE FROM egress WHERE seq = (SELECT MIN(seq) FROM egress WHERE egress = ? "
                "AND topic = ?) RETURNING seq, typename, value",
                (egress, topic),
            ).fetchone()
        return (
            None if row is None else EgressRecord(row[0], egress, topic, _payload(row[1], row[2]))
        )

    def redrive(self, dead_letter_ids: list[int] | None, now_ms: int) -> int:
        """Move dead letters' messages back to the end of their mailboxes; return how many."""
        with self._transaction():
            letters = self.dead_letters(limit=-1)
            chosen = [
                d for d in letters if dead_letter_ids is None or d.dead_letter_id in dead_letter_ids
            ]
            for letter in chosen:
                self._append(
                    (NewMessage(m.target, m.caller, m.payload) for m in letter.messages), now_ms
                )
                self._db.execute(
                    "DELETE FROM dead_letter_messages WHERE dead_letter_id = ?",
                    (letter.dead_letter_id,),
                )
                self._db.execute(
                    "DELETE FROM dead_letters WHERE dead_letter_id = ?", (letter.dead_letter_id,)
                )
        return sum(len(d.messages) for d in chosen)

    def purge_expired(self, now_ms: int) -> int:
        """Delete expired idempotency keys and state values (both indexed by expiry)."""
        with self._transaction():
            keys = self._db.execute("DELETE FROM dedup WHERE expires_at_ms <= ?", (now_ms,))
            state = self._db.execute(
                "DELETE FROM state WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?",
                (now_ms,),
            )
        return int(keys.rowcount + state.rowcount)


def _columns(address: Address | None) -> tuple[str | None, str | None, str | None]:
    if address is None:
        return (None, None, None)
    return (address.namespace, address.type, address.id)


def _integrity_reason(exc: sqlite3.IntegrityError) -> str:
    if "timers" in str(exc):
        return (
            "a delayed message reuses a cancellation token that is still pending for the same "
            "sender; cancel the earlier message first, or use a new token"
        )
    return f"the step violates a store constraint: {exc}"
