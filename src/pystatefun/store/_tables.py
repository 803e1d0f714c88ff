"""The SQL behind the store: synchronous, and only ever called from the store's own thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from pystatefun.errors import DataDirError, NoSuchDeadLetterError
from pystatefun.store import _schema
from pystatefun.store._rows import address_at, payload_at, required_address_at
from pystatefun.store._writer import StepWriter
from pystatefun.store.keygroups import KeyGroups
from pystatefun.store.records import (
    DeadLetter,
    EgressRecord,
    InboxMessage,
    StateValue,
    TimerRecord,
)
from pystatefun.store.steps import NewMessage, Step, StepOutcome
from pystatefun.types import Address

__all__ = ["Tables"]

COUNTED_TABLES = ("inbox", "timers", "egress", "dead_letters", "state")
#: Every table that holds data (``meta`` describes the data dir; it is not data).
DATA_TABLES = ("state", "inbox", "timers", "egress", "dedup", "positions", "dead_letters")


#: The ``meta`` key of the data dir's instance id (``StorageEngine.instance_id``).
INSTANCE_ID = "instance_id"


def meta_value(db: sqlite3.Connection, key: str) -> str | None:
    """A ``meta`` record of the data dir (``key_groups``, ``schema_version``)."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def create_schema(connection: sqlite3.Connection, where: object) -> None:
    """Create (or upgrade to) the current schema; refuse a data dir made by a newer version."""
    for statement in _schema.STATEMENTS:
        connection.execute(statement)
    for table, column, definition in _schema.UPGRADES:
        columns = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    stored = meta_value(connection, "schema_version")
    if stored is not None and int(stored) > _schema.SCHEMA_VERSION:
        raise DataDirError(
            f"data dir {where} has schema version {stored}, made by a newer pystatefun; this "
            f"one reads versions up to {_schema.SCHEMA_VERSION}: upgrade pystatefun"
        )
    connection.execute(
        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
        (str(_schema.SCHEMA_VERSION),),
    )


class Tables:
    """Reads and writes over one SQLite connection, in explicit transactions."""

    def __init__(self, connection: sqlite3.Connection, key_groups: KeyGroups) -> None:
        self._db = connection
        self._writer = StepWriter(connection, key_groups)

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection (for a bulk load, which writes its own rows in one transaction)."""
        return self._db

    def close(self) -> None:
        self._db.close()

    def meta(self, key: str) -> str | None:
        return meta_value(self._db, key)

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- reads -------------------------------------------------------------------------------

    def _seqs(self, message_ids: Iterable[int]) -> set[int]:
        """The stored seqs of message ids (seqs, or provisional ids already stored)."""
        seqs = (self._writer.seq_of(message_id) for message_id in message_ids)
        return {seq for seq in seqs if seq is not None}

    def read_batch(
        self, target: Address, limit: int, exclude: Iterable[int] = (), *, foreign: bool = False
    ) -> list[InboxMessage]:
        """The oldest ``limit`` messages of ``target`` whose ids are not in ``exclude``
        (``foreign``: nor written by a step since the store opened)."""
        excluded = self._seqs(exclude)
        not_own, own = self._not_own(foreign)
        rows = self._db.execute(
            "SELECT seq, caller_namespace, caller_type, caller_id, typename, value FROM inbox "  # noqa: S608 - only ? marks
            f"WHERE namespace = ? AND type = ? AND id = ?{not_own} ORDER BY seq LIMIT ?",
            (target.namespace, target.type, target.id, *own, limit + len(excluded)),
        ).fetchall()
        return [
            InboxMessage(r[0], target, address_at(r, 1), payload_at(r[4], r[5]))
            for r in rows
            if r[0] not in excluded
        ][:limit]

    def _not_own(self, foreign: bool) -> tuple[str, tuple[int, ...]]:
        """A condition (and its arguments) leaving out the seqs steps wrote since the store
        opened: a few ranges (one more each time a re-drive's rows fall between them)."""
        if not foreign:
            return "", ()
        ranges = self._writer.own_ranges()
        return (
            "".join(" AND seq NOT BETWEEN ? AND ?" for _ in ranges),
            tuple(bound for pair in ranges for bound in pair),
        )

    def read_state(self, address: Address) -> dict[str, StateValue]:
        rows = self._db.execute(
            "SELECT name, typename, value, expire_mode, expire_after_ms, expires_at_ms FROM state "
            "WHERE namespace = ? AND type = ? AND id = ?",
            (address.namespace, address.type, address.id),
        ).fetchall()
        return {r[0]: StateValue(r[0], payload_at(r[1], r[2]), r[3], r[4], r[5]) for r in rows}

    def pending_counts(
        self, exclude: Iterable[int] = (), *, foreign: bool = False
    ) -> dict[Address, int]:
        """Stored messages per address, not counting those whose ids are in ``exclude``
        (``foreign``: nor those written by a step since the store opened)."""
        not_own, own = self._not_own(foreign)
        rows = self._db.execute(
            f"SELECT namespace, type, id, COUNT(*) FROM inbox WHERE 1{not_own} "  # noqa: S608 - only ? marks
            "GROUP BY namespace, type, id",
            own,
        )
        counts = {Address(r[0], r[1], r[2]): int(r[3]) for r in rows}
        for seq in self._seqs(exclude):
            if foreign and self._writer.wrote(seq):
                continue
            row = self._db.execute(
                "SELECT namespace, type, id FROM inbox WHERE seq = ?", (seq,)
            ).fetchone()
            if row is not None:
                address = Address(row[0], row[1], row[2])
                counts[address] -= 1
                if not counts[address]:
                    del counts[address]
        return counts

    def due_timers(self, now_ms: int, limit: int) -> list[TimerRecord]:
        return self._timers("fire_at_ms <= ? ORDER BY fire_at_ms, timer_id LIMIT ?",
                            (now_ms, limit))  # fmt: skip

    def timers_of(self, address: Address) -> list[TimerRecord]:
        """The delayed messages to or from ``address`` (a scan: there is no index by target,
        and this is for a person looking at one address, not for the runtime)."""
        where = (
            "(namespace = ? AND type = ? AND id = ?) OR (sender_namespace = ? AND "
            "sender_type = ? AND sender_id = ?) ORDER BY fire_at_ms, timer_id"
        )
        return self._timers(where, (*address, *address))

    def _timers(self, where: str, parameters: tuple[object, ...]) -> list[TimerRecord]:
        rows = self._db.execute(
            "SELECT timer_id, fire_at_ms, sender_namespace, sender_type, sender_id, token, "  # noqa: S608 - our conditions, ? marks
            f"namespace, type, id, typename, value, trace FROM timers WHERE {where}",
            parameters,
        ).fetchall()
        return [
            TimerRecord(
                r[0],
                r[1],
                required_address_at(r, 2),
                r[5],
                required_address_at(r, 6),
                payload_at(r[9], r[10]),
                r[11],
            )
            for r in rows
        ]

    def next_timer_at(self) -> int | None:
        row = self._db.execute("SELECT MIN(fire_at_ms) FROM timers").fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def counts(self, tables: tuple[str, ...] = COUNTED_TABLES) -> dict[str, int]:
        assert set(tables) <= set(COUNTED_TABLES), tables  # names go into SQL: only ours
        return {t: int(self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}  # noqa: S608 - fixed names

    def positions(self, source: str) -> dict[str, str]:
        """Where ingress ``source`` has read up to: partition key -> position."""
        rows = self._db.execute(
            "SELECT key, position FROM positions WHERE source = ?", (source,)
        ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def dead_letters(self, limit: int, ids: Sequence[int] | None = None) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters (-1: all), or those of ``ids``."""
        if ids is None:
            letters = self._db.execute(
                "SELECT dead_letter_id, namespace, type, id, error, failed_at_ms, attempts "
                "FROM dead_letters ORDER BY dead_letter_id LIMIT ?",
                (limit,),
            ).fetchall()
        else:
            marks = ",".join("?" * len(ids))
            letters = self._db.execute(
                "SELECT dead_letter_id, namespace, type, id, error, failed_at_ms, attempts "  # noqa: S608 - only ? marks
                f"FROM dead_letters WHERE dead_letter_id IN ({marks}) ORDER BY dead_letter_id",
                tuple(ids),
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
                InboxMessage(m[0], target, address_at(m, 1), payload_at(m[4], m[5]))
                for m in messages
            )
            result.append(DeadLetter(r[0], target, r[4], r[5], r[6], batch))
        return result

    # --- writes --------------------------------------------------------------------------------

    def apply_steps(self, steps: list[Step], now_ms: int) -> list[StepOutcome]:
        """Apply every step in one transaction (see ``_writer``); if it fails, nothing of it
        is written, and the same steps may be applied again."""
        try:
            with self._transaction():
                return self._writer.apply(steps, now_ms)
        except BaseException:
            self._writer.undo()
            raise

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: committed if the block completes, rolled back otherwise."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (a full disk, an I/O error): a ROLLBACK
            # then would fail and hide the error that says why.
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def egress_after(self, egress: str, after_seq: int, limit: int) -> list[EgressRecord]:
        rows = self._db.execute(
            "SELECT seq, topic, typename, value FROM egress WHERE egress = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (egress, after_seq, limit),
        ).fetchall()
        return [EgressRecord(seq, egress, topic, payload_at(t, v)) for seq, topic, t, v in rows]

    def delete_egress(self, egress: str, up_to_seq: int) -> int:
        """Delete published records, in their own transaction."""
        with self._transaction():
            cursor = self._db.execute(
                "DELETE FROM egress WHERE egress = ? AND seq <= ?", (egress, up_to_seq)
            )
        return cursor.rowcount

    def pop_egress(self, egress: str, topic: str) -> EgressRecord | None:
        """Remove and return the oldest record of a topic, in its own transaction."""
        with self._transaction():
            row = self._db.execute(
                "DELETE FROM egress WHERE seq = (SELECT MIN(seq) FROM egress WHERE egress = ? "
                "AND topic = ?) RETURNING seq, typename, value",
                (egress, topic),
            ).fetchone()
        return (
            None if row is None else EgressRecord(row[0], egress, topic, payload_at(row[1], row[2]))
        )

    def _chosen(self, ids: Sequence[int] | None) -> list[DeadLetter]:
        """The dead letters of ``ids`` (None: all); every id must exist."""
        letters = self.dead_letters(limit=-1, ids=None if ids is None else sorted(set(ids)))
        if ids is not None:
            missing = sorted(set(ids) - {d.dead_letter_id for d in letters})
            if missing:
                raise NoSuchDeadLetterError(missing)
        return letters

    def redrive(self, ids: Sequence[int] | None, now_ms: int) -> int:
        """Move dead letters' messages (of ``ids``; None: all) back to the end of their
        mailboxes, in one transaction; returns how many messages. Unknown ids re-drive nothing
        (``NoSuchDeadLetterError``)."""
        with self._transaction():
            chosen = self._chosen(ids)
            for letter in chosen:
                self._writer.append(
                    (NewMessage(m.target, m.caller, m.payload) for m in letter.messages), now_ms
                )
            self._delete_letters([d.dead_letter_id for d in chosen])
        return sum(len(d.messages) for d in chosen)

    def delete_dead_letters(self, ids: Sequence[int] | None) -> int:
        """Delete dead letters (of ``ids``; None: all) for good; returns how many. Unknown ids
        delete nothing (``NoSuchDeadLetterError``)."""
        with self._transaction():
            chosen = self._chosen(ids)
            self._delete_letters([d.dead_letter_id for d in chosen])
        return len(chosen)

    def _delete_letters(self, ids: list[int]) -> None:
        pairs = [(letter_id,) for letter_id in ids]
        self._db.executemany("DELETE FROM dead_letter_messages WHERE dead_letter_id = ?", pairs)
        self._db.executemany("DELETE FROM dead_letters WHERE dead_letter_id = ?", pairs)

    def purge_expired(self, now_ms: int) -> int:
        """Delete expired idempotency keys and state values (both indexed by expiry)."""
        with self._transaction():
            keys = self._db.execute("DELETE FROM dedup WHERE expires_at_ms <= ?", (now_ms,))
            state = self._db.execute(
                "DELETE FROM state WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?",
                (now_ms,),
            )
        return int(keys.rowcount + state.rowcount)
