"""Moving an SQLite data dir's contents out and in whole: what savepoints and bootstrap are made of.

``records`` reads everything a data dir holds from one read transaction beside a running
runtime, which it does not block; records come out one at a time, so a data dir larger than
memory streams through. ``SqliteLoader`` writes records into a data dir that no runtime has open
(``DataDir.loader`` takes the lock), all in one transaction: a load that fails half-way leaves
nothing behind. Key groups are computed for the target data dir, so their number may differ
from the source's. Rows are built by ``_rows``, as the step writer builds them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import final

from pystatefun.store._failures import translated
from pystatefun.store._rows import (
    INSERT_EGRESS,
    INSERT_INBOX,
    INSERT_TIMER,
    PUT_DEDUP,
    PUT_POSITION,
    PUT_STATE,
    address_at,
    egress_row,
    inbox_row,
    insert_dead_letter,
    payload_at,
    state_row,
    timer_row,
)
from pystatefun.store.contents import (
    Content,
    DeadLetterContent,
    DedupKey,
    EgressContent,
    MessageContent,
    PositionContent,
    StateContent,
)
from pystatefun.store.keygroups import KeyGroups
from pystatefun.store.records import StateValue, TimerRecord
from pystatefun.types import Address

__all__ = ["SqliteLoader", "records"]


def records(db: sqlite3.Connection, database: Path) -> Iterator[Content]:
    """Every record of ``db`` (in a read transaction the caller began); closes ``db`` at the
    end. SQLite errors about the file become coded errors."""
    try:
        with translated(database):
            yield from _records(db)
    finally:
        db.close()


def _records(db: sqlite3.Connection) -> Iterator[Content]:
    for r in db.execute(
        "SELECT namespace, type, id, name, typename, value, expire_mode, expire_after_ms, "
        "expires_at_ms FROM state ORDER BY namespace, type, id, name"
    ):
        value = StateValue(r[3], payload_at(r[4], r[5]), r[6], r[7], r[8])
        yield StateContent(Address(r[0], r[1], r[2]), value)
    for r in db.execute(
        "SELECT namespace, type, id, caller_namespace, caller_type, caller_id, typename, "
        "value, enqueued_at_ms FROM inbox ORDER BY seq"
    ):
        target = Address(r[0], r[1], r[2])
        yield MessageContent(target, address_at(r, 3), payload_at(r[6], r[7]), r[8])
    for r in db.execute(
        "SELECT timer_id, fire_at_ms, sender_namespace, sender_type, sender_id, token, "
        "namespace, type, id, typename, value FROM timers ORDER BY timer_id"
    ):
        sender, target = Address(r[2], r[3], r[4]), Address(r[6], r[7], r[8])
        yield TimerRecord(r[0], r[1], sender, r[5], target, payload_at(r[9], r[10]))
    letters = db.execute(
        "SELECT dead_letter_id, namespace, type, id, error, failed_at_ms, attempts "
        "FROM dead_letters ORDER BY dead_letter_id"
    ).fetchall()
    for r in letters:
        messages = tuple(
            (address_at(m, 0), payload_at(m[3], m[4]))
            for m in db.execute(
                "SELECT caller_namespace, caller_type, caller_id, typename, value FROM "
                "dead_letter_messages WHERE dead_letter_id = ? ORDER BY position",
                (r[0],),
            )
        )
        yield DeadLetterContent(Address(r[1], r[2], r[3]), r[4], r[5], r[6], messages)
    for r in db.execute(
        "SELECT egress, topic, typename, value, created_at_ms FROM egress ORDER BY seq"
    ):
        yield EgressContent(r[0], r[1], payload_at(r[2], r[3]), r[4])
    for r in db.execute("SELECT key, expires_at_ms FROM dedup ORDER BY key"):
        yield DedupKey(r[0], r[1])
    for r in db.execute("SELECT source, key, position FROM positions ORDER BY source, key"):
        yield PositionContent(r[0], r[1], r[2])


@final
class SqliteLoader:
    """Loads records into a stopped data dir in one transaction; a context manager that
    commits on success and rolls back on an error. ``on_close`` releases the data dir."""

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        database: Path,
        key_groups: KeyGroups,
        on_close: Callable[[], None],
    ) -> None:
        self._db = db
        self._database = database
        self.key_groups = key_groups
        self._group = key_groups.of
        self._on_close = on_close
        self.loaded = 0
        with translated(database):
            self._db.execute("BEGIN IMMEDIATE")

    def states(self, values: list[StateContent]) -> None:
        """Load a batch of state values (written over existing ones)."""
        group = self._group
        with translated(self._database):
            self._db.executemany(
                PUT_STATE, [state_row(a, v, key_group=group(a.id)) for a, v in values]
            )
        self.loaded += len(values)

    def put_states(
        self, namespace: str, kind: str, rows: list[tuple[str, str, int, str, bytes]]
    ) -> None:
        """Bulk state values of one function type without TTLs: ``(id, name, key group,
        typename, value)`` each; the fast path of bootstrap (no record objects per value)."""
        with translated(self._database):
            self._db.executemany(
                "INSERT OR REPLACE INTO state VALUES (?,?,?,?,?,?,?,0,0,NULL)",
                sorted((namespace, kind, *row) for row in rows),  # key order: fewer page splits
            )
        self.loaded += len(rows)

    def add(self, content: Content) -> None:
        """Load one record (state values load faster in batches, through ``states``)."""
        with translated(self._database):
            self._add(content)
        self.loaded += 1

    def _add(self, content: Content) -> None:
        db = self._db
        if isinstance(content, StateContent):
            db.execute(PUT_STATE, state_row(*content, key_group=self._group(content.address.id)))
        elif isinstance(content, MessageContent):
            target = content.target
            row = inbox_row(
                target,
                content.caller,
                content.payload,
                key_group=self._group(target.id),
                at_ms=content.enqueued_at_ms,
            )
            db.execute(INSERT_INBOX, row)
        elif isinstance(content, TimerRecord):
            row = timer_row(
                fire_at_ms=content.fire_at_ms,
                sender=content.sender,
                token=content.token,
                target=content.target,
                payload=content.payload,
            )
            db.execute(INSERT_TIMER, row)
        elif isinstance(content, DeadLetterContent):
            insert_dead_letter(
                db,
                content.target,
                error=content.error,
                failed_at_ms=content.failed_at_ms,
                attempts=content.attempts,
                messages=content.messages,
            )
        elif isinstance(content, EgressContent):
            row = egress_row(
                content.egress, content.topic, content.payload, at_ms=content.created_at_ms
            )
            db.execute(INSERT_EGRESS, row)
        elif isinstance(content, DedupKey):
            db.execute(PUT_DEDUP, tuple(content))
        else:
            db.execute(PUT_POSITION, tuple(content))

    def commit(self) -> None:
        """Make everything loaded durable at once."""
        with translated(self._database):
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Release the data dir; anything not committed is rolled back."""
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._db.close()
        finally:
            self._on_close()

    def __enter__(self) -> SqliteLoader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if error is None:
                self.commit()
        finally:
            self.close()
