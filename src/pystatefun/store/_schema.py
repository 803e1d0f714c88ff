"""The SQLite schema of a data dir, with the reason for each table and index.

Tables are named after the data model (docs/architecture.md): ``state``, ``inbox``,
``timers``, ``egress``, ``dedup``, ``positions`` and ``dead_letters`` (+
``dead_letter_messages``). The ``state`` and ``inbox`` rows carry their ``key_group`` (see
``pystatefun.store.keygroups``), so a cluster mode or a savepoint can split the data by
ownership without rehashing; the other tables are keyed by an address too. The ``dedup`` and
``state`` expiry indexes serve the periodic purge of expired rows.

Versions: 1 had no ``positions``; 2 added it (``CREATE TABLE IF NOT EXISTS`` upgrades a version 1
data dir in place when it is opened for writing); 3 added ``timers.trace`` (``UPGRADES`` adds the
column to an older data dir opened for writing).
"""

from __future__ import annotations

SCHEMA_VERSION = 3

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    # One row per (address, state name) that holds a value; no row means no value.
    """CREATE TABLE IF NOT EXISTS state (
        namespace TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL,
        key_group INTEGER NOT NULL,
        typename TEXT NOT NULL, value BLOB NOT NULL,
        expire_mode INTEGER NOT NULL, expire_after_ms INTEGER NOT NULL, expires_at_ms INTEGER,
        PRIMARY KEY (namespace, type, id, name)
    ) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS state_by_expiry ON state (expires_at_ms)
        WHERE expires_at_ms IS NOT NULL""",
    # Every mailbox: seq is global and monotonic, so per-target order is arrival order.
    """CREATE TABLE IF NOT EXISTS inbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,
        key_group INTEGER NOT NULL,
        caller_namespace TEXT, caller_type TEXT, caller_id TEXT,
        typename TEXT NOT NULL, value BLOB,
        enqueued_at_ms INTEGER NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS inbox_by_target ON inbox (namespace, type, id, seq)""",
    # Delayed messages. A token is unique among its sender's pending messages.
    """CREATE TABLE IF NOT EXISTS timers (
        timer_id INTEGER PRIMARY KEY AUTOINCREMENT,
        fire_at_ms INTEGER NOT NULL,
        sender_namespace TEXT NOT NULL, sender_type TEXT NOT NULL, sender_id TEXT NOT NULL,
        token TEXT,
        namespace TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,
        typename TEXT NOT NULL, value BLOB,
        trace TEXT
    )""",
    """CREATE INDEX IF NOT EXISTS timers_by_time ON timers (fire_at_ms)""",
    """CREATE UNIQUE INDEX IF NOT EXISTS timers_by_token
        ON timers (sender_namespace, sender_type, sender_id, token) WHERE token IS NOT NULL""",
    # Egress records, consumed once each (the playground egress pops per topic).
    """CREATE TABLE IF NOT EXISTS egress (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        egress TEXT NOT NULL, topic TEXT NOT NULL,
        typename TEXT NOT NULL, value BLOB,
        created_at_ms INTEGER NOT NULL
    )""",
    """CREATE INDEX IF NOT EXISTS egress_by_topic ON egress (egress, topic, seq)""",
    # Ingress idempotency keys, kept for the configured window.
    """CREATE TABLE IF NOT EXISTS dedup (
        key TEXT PRIMARY KEY, expires_at_ms INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE INDEX IF NOT EXISTS dedup_by_expiry ON dedup (expires_at_ms)""",
    # Where each ingress source has read up to, per partition (Kafka offsets, ...), written in
    # the step that holds the messages read before it.
    """CREATE TABLE IF NOT EXISTS positions (
        source TEXT NOT NULL, key TEXT NOT NULL, position TEXT NOT NULL,
        PRIMARY KEY (source, key)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        dead_letter_id INTEGER PRIMARY KEY AUTOINCREMENT,
        namespace TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,
        error TEXT NOT NULL, failed_at_ms INTEGER NOT NULL, attempts INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS dead_letter_messages (
        dead_letter_id INTEGER NOT NULL REFERENCES dead_letters ON DELETE CASCADE,
        position INTEGER NOT NULL,
        caller_namespace TEXT, caller_type TEXT, caller_id TEXT,
        typename TEXT NOT NULL, value BLOB,
        PRIMARY KEY (dead_letter_id, position)
    ) WITHOUT ROWID""",
)

#: Columns added after their table was first made: (table, column, its definition), each added
#: when missing (``ALTER TABLE ... ADD COLUMN``).
UPGRADES = (("timers", "trace", "TEXT"),)
