"""Moving a data dir's contents out and in whole: what savepoints and bootstrap are made of.

``read_contents`` reads everything a data dir holds (state with its TTLs, waiting messages in
mailbox order, timers, dead letters, unread egress records, idempotency keys) from one
consistent snapshot: a read transaction beside a running runtime, which it does not block.
Records come out one at a time, so a data dir larger than memory streams through.

``ContentLoader`` writes such records into a data dir that no runtime has open (it takes the
data dir's lock), all in one transaction: a load that fails half-way leaves nothing behind.
Key groups are computed for the target data dir, so the number of key groups may differ from
the source's.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, final

from pystatefun.errors import DataDirError
from pystatefun.store._rows import address_at, columns_of, payload_at
from pystatefun.store._tables import Tables
from pystatefun.store.records import Payload, StateValue, TimerRecord
from pystatefun.store.sqlite import DATABASE_FILE, open_tables
from pystatefun.types import Address

__all__ = [
    "ContentLoader",
    "DeadLetterContent",
    "DedupKey",
    "EgressContent",
    "MessageContent",
    "StateContent",
    "read_contents",
]


@final
class StateContent(NamedTuple):
    address: Address
    value: StateValue


@final
class MessageContent(NamedTuple):
    target: Address
    caller: Address | None
    payload: Payload
    enqueued_at_ms: int


@final
class DeadLetterContent(NamedTuple):
    target: Address
    error: str
    failed_at_ms: int
    attempts: int
    messages: tuple[tuple[Address | None, Payload], ...]  # caller, payload


@final
class EgressContent(NamedTuple):
    egress: str
    topic: str
    payload: Payload
    created_at_ms: int


@final
class DedupKey(NamedTuple):
    key: str
    expires_at_ms: int


Content = StateContent | MessageContent | TimerRecord | DeadLetterContent | EgressContent | DedupKey


def read_contents(data_dir: Path) -> tuple[int, Iterator[Content]]:
    """The data dir's key groups, and its contents from one snapshot, in a stable order:
    state by address and name, messages in mailbox order, then timers, dead letters, egress
    records and idempotency keys. Close the iterator (or read it to the end) soon."""
    database = data_dir / DATABASE_FILE
    if not database.exists():
        raise DataDirError(f"no pystatefun data dir at {data_dir} (no {DATABASE_FILE})")
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 10000")
    db.execute("BEGIN")
    row = db.execute("SELECT value FROM meta WHERE key = 'key_groups'").fetchone()
    if row is None:
        db.close()
        raise DataDirError(f"{data_dir} has no key_groups record; was it ever run?")
    return int(row[0]), _contents(db)


def _contents(db: sqlite3.Connection) -> Iterator[Content]:
    try:
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
    finally:
        db.close()


@final
class ContentLoader:
    """Loads contents into a stopped data dir in one transaction; a context manager.

    ``fresh=True`` (restoring a savepoint) refuses a data dir that holds anything; otherwise
    state values are written over existing ones (bootstrap into a stopped data dir), and the
    data dir must have been made with ``key_groups`` if it exists.
    """

    def __init__(
        self,
        data_dir: Path,
        key_groups: tuple[int, Callable[[str], int]],
        *,
        fresh: bool,
    ) -> None:
        count, self._group = key_groups  # how many, and the function from an id to its group
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(data_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock)
            raise DataDirError(
                f"data dir {data_dir} is in use by a running pystatefun; stop it first"
            ) from exc
        # A large page cache: a bulk load touches every page of the state table, often.
        self._tables: Tables = open_tables(data_dir, "fsync", self._group, cache_mib=1024)
        self._db = self._tables._db  # noqa: SLF001 - the store's own connection, one writer
        stored = self._tables.meta("key_groups")
        if fresh and self._holds_anything():
            self.close()
            raise DataDirError(f"{data_dir} is not empty; restore into a new data dir")
        if stored is not None and int(stored) != count:
            self.close()
            raise DataDirError(
                f"data dir {data_dir} was made with {stored} key groups, not {count}"
            )
        self._db.execute("BEGIN IMMEDIATE")
        if stored is None:
            self._tables.set_meta("key_groups", str(count))
        self.loaded = 0

    def _holds_anything(self) -> bool:
        tables = ("state", "inbox", "timers", "egress", "dedup", "dead_letters")
        return any(self._db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in tables)  # noqa: S608 - constant names

    def states(self, values: list[StateContent]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO state VALUES (?,?,?,?,?,?,?,?,?,?)",
            [
                (*a, v.name, self._group(a.id), v.payload.typename, v.payload.value or b"",
                 v.expire_mode, v.expire_after_ms, v.expires_at_ms)
                for a, v in values
            ],
        )  # fmt: skip
        self.loaded += len(values)

    def put_states(
        self, namespace: str, kind: str, rows: list[tuple[str, str, int, str, bytes]]
    ) -> None:
        """Bulk state values of one function type without TTLs: ``(id, name, key group,
        typename, value)`` each; the fast path of bootstrap (no record objects per value)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO state VALUES (?,?,?,?,?,?,?,0,0,NULL)",
            sorted((namespace, kind, *row) for row in rows),  # in key order: fewer page splits
        )
        self.loaded += len(rows)

    def add(self, content: Content) -> None:
        """Load one record that is not a state value (those go in batches via ``states``)."""
        db = self._db
        if isinstance(content, StateContent):
            self.states([content])
            return
        if isinstance(content, MessageContent):
            t, c = content.target, content.caller
            db.execute(
                "INSERT INTO inbox (namespace, type, id, key_group, caller_namespace, "
                "caller_type, caller_id, typename, value, enqueued_at_ms) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (*t, self._group(t.id), *columns_of(c), *content.payload,
                 content.enqueued_at_ms),
            )  # fmt: skip
        elif isinstance(content, TimerRecord):
            db.execute(
                "INSERT INTO timers (fire_at_ms, sender_namespace, sender_type, sender_id, "
                "token, namespace, type, id, typename, value) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (content.fire_at_ms, *content.sender, content.token, *content.target,
                 *content.payload),
            )  # fmt: skip
        elif isinstance(content, DeadLetterContent):
            cursor = db.execute(
                "INSERT INTO dead_letters (namespace, type, id, error, failed_at_ms, attempts) "
                "VALUES (?,?,?,?,?,?)",
                (*content.target, content.error, content.failed_at_ms, content.attempts),
            )
            db.executemany(
                "INSERT INTO dead_letter_messages VALUES (?,?,?,?,?,?,?)",
                [
                    (cursor.lastrowid, n, *columns_of(c), *p)
                    for n, (c, p) in enumerate(content.messages)
                ],
            )
        elif isinstance(content, EgressContent):
            db.execute(
                "INSERT INTO egress (egress, topic, typename, value, created_at_ms) "
                "VALUES (?,?,?,?,?)",
                (content.egress, content.topic, *content.payload, content.created_at_ms),
            )
        else:
            db.execute("INSERT OR REPLACE INTO dedup VALUES (?, ?)", tuple(content))
        self.loaded += 1

    def commit(self) -> None:
        """Make everything loaded durable at once."""
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Release the data dir; anything not committed is rolled back."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._tables.close()
        os.close(self._lock)

    def __enter__(self) -> ContentLoader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self.commit()
        self.close()
