"""Rows and records: how every table's rows are spelled, read and written.

Every SQL reader and writer of the store converts through these: an address is three columns
(NULL for none), a typed value two, and each table's row is built in one place, so the step
writer, the bulk loader and re-drives write the same rows with the same statements.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from pystatefun.store.records import Payload, StateValue
from pystatefun.types import Address

__all__ = [
    "DELETE_STATE",
    "INSERT_EGRESS",
    "INSERT_INBOX",
    "INSERT_TIMER",
    "PUT_DEDUP",
    "PUT_POSITION",
    "PUT_STATE",
    "Row",
    "address_at",
    "clashing_timer_reason",
    "columns_of",
    "egress_row",
    "inbox_row",
    "insert_dead_letter",
    "payload_at",
    "required_address_at",
    "state_row",
    "timer_row",
]

Row = tuple[object, ...]


def clashing_timer_reason(token: str) -> str:
    """Why a step that schedules a delayed message under a token still pending is refused."""
    return (
        f"a delayed message reuses the cancellation token {token!r}, still pending for the "
        "same sender; cancel the earlier message first, or use a new token"
    )


INSERT_INBOX = (
    "INSERT INTO inbox (namespace, type, id, key_group, caller_namespace, caller_type, "
    "caller_id, typename, value, enqueued_at_ms) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
PUT_STATE = "INSERT OR REPLACE INTO state VALUES (?,?,?,?,?,?,?,?,?,?)"
DELETE_STATE = "DELETE FROM state WHERE namespace = ? AND type = ? AND id = ? AND name = ?"
INSERT_TIMER = (
    "INSERT INTO timers (fire_at_ms, sender_namespace, sender_type, sender_id, token, "
    "namespace, type, id, typename, value, trace) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
INSERT_EGRESS = (
    "INSERT INTO egress (egress, topic, typename, value, created_at_ms) VALUES (?,?,?,?,?)"
)
PUT_DEDUP = "INSERT OR REPLACE INTO dedup VALUES (?, ?)"
PUT_POSITION = "INSERT OR REPLACE INTO positions VALUES (?, ?, ?)"
_INSERT_DEAD_LETTER = (
    "INSERT INTO dead_letters (namespace, type, id, error, failed_at_ms, attempts) "
    "VALUES (?,?,?,?,?,?)"
)
_INSERT_DEAD_LETTER_MESSAGE = "INSERT INTO dead_letter_messages VALUES (?,?,?,?,?,?,?)"


def address_at(row: Row, start: int) -> Address | None:
    """The address in columns start..start+2, or None when they are NULL (an ingress caller)."""
    namespace, kind, address_id = row[start], row[start + 1], row[start + 2]
    if namespace is None:
        return None
    return Address(str(namespace), str(kind), str(address_id))


def required_address_at(row: Row, start: int) -> Address:
    address = address_at(row, start)
    assert address is not None, f"NOT NULL address columns at {start} were NULL"
    return address


def payload_at(typename: object, value: object) -> Payload:
    """A typed value from its ``typename`` and ``value`` (BLOB or NULL) columns."""
    assert value is None or isinstance(value, bytes), "a BLOB column"
    return Payload(str(typename), value)


def columns_of(address: Address | None) -> tuple[str | None, str | None, str | None]:
    """The three columns of an address; NULLs for none."""
    if address is None:
        return (None, None, None)
    return (address.namespace, address.type, address.id)


def inbox_row(
    target: Address, caller: Address | None, payload: Payload, *, key_group: int, at_ms: int
) -> Row:
    """An ``inbox`` row (for ``INSERT_INBOX``): a message waiting in ``target``'s mailbox."""
    return (
        target.namespace,
        target.type,
        target.id,
        key_group,
        *columns_of(caller),
        payload.typename,
        payload.value,
        at_ms,
    )


def state_row(address: Address, value: StateValue, *, key_group: int) -> Row:
    """A ``state`` row (for ``PUT_STATE``). A value-less payload is stored as empty bytes: a
    state with a row has a value."""
    return (
        address.namespace,
        address.type,
        address.id,
        value.name,
        key_group,
        value.payload.typename,
        value.payload.value or b"",
        value.expire_mode,
        value.expire_after_ms,
        value.expires_at_ms,
    )


def timer_row(
    *, fire_at_ms: int, sender: Address, token: str | None, target: Address, payload: Payload,
    trace: str | None = None,
) -> Row:  # fmt: skip
    """A ``timers`` row (for ``INSERT_TIMER``): a delayed message."""
    return (fire_at_ms, *sender, token, *target, payload.typename, payload.value, trace)


def egress_row(egress: str, topic: str, payload: Payload, *, at_ms: int) -> Row:
    """An ``egress`` row (for ``INSERT_EGRESS``)."""
    return (egress, topic, payload.typename, payload.value, at_ms)


def insert_dead_letter(
    db: sqlite3.Connection,
    target: Address,
    *,
    error: str,
    failed_at_ms: int,
    attempts: int,
    messages: Iterable[tuple[Address | None, Payload]],
) -> int:
    """Insert a dead letter and its messages (caller, payload each, in order); its id."""
    cursor = db.execute(_INSERT_DEAD_LETTER, (*target, error, failed_at_ms, attempts))
    letter_id = cursor.lastrowid
    assert letter_id is not None
    db.executemany(
        _INSERT_DEAD_LETTER_MESSAGE,
        [
            (letter_id, position, *columns_of(caller), payload.typename, payload.value)
            for position, (caller, payload) in enumerate(messages)
        ],
    )
    return letter_id
