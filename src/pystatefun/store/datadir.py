"""``DataDir``: the one front door to a data dir's storage.

Every command and the runtime open storage through it, so opening, locking, read-only access,
the metadata (key groups, schema version) and the errors of a damaged or missing data dir are
the same everywhere:

- ``pystatefun run`` locks it and runs an engine on it (``pystatefun.store.sqlite``);
- ``pystatefun sql``/``state`` and ``savepoint create`` read it beside a running runtime, from
  one consistent snapshot (``snapshot_connection``, ``contents``), taking no lock;
- ``savepoint restore`` and ``bootstrap`` bulk-load a stopped one (``loader``, which locks it);
- ``dead-letters`` lists, re-drives and deletes dead letters, also beside a running runtime:
  SQLite serialises the writers, and the runtime picks re-driven messages up by itself.

A data dir is a directory with one SQLite file (``pystatefun.sqlite3``, WAL mode) and a
``LOCK`` file, which one process at a time holds (``flock``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, final
from uuid import uuid4

from pystatefun.errors import DataDirError
from pystatefun.store._failures import translated
from pystatefun.store._sqlite_contents import SqliteLoader, records
from pystatefun.store._tables import (
    DATA_TABLES,
    INSTANCE_ID,
    Tables,
    create_schema,
    meta_value,
)
from pystatefun.store.contents import Contents
from pystatefun.store.keygroups import DEFAULT_KEY_GROUPS, KeyGroups
from pystatefun.store.records import DeadLetter

__all__ = ["DATABASE_FILE", "LOCK_FILE", "DataDir", "DataDirInfo", "DataDirLock", "Durability"]

Durability = Literal["fsync", "os"]
DATABASE_FILE = "pystatefun.sqlite3"
LOCK_FILE = "LOCK"
_BUSY_TIMEOUT_MS = 10_000
# The files a data dir is made of, removed when a command that created it fails.
_FILES = (DATABASE_FILE, f"{DATABASE_FILE}-wal", f"{DATABASE_FILE}-shm", LOCK_FILE)


@final
@dataclass(frozen=True, slots=True)
class DataDirInfo:
    """What a data dir records about itself."""

    path: Path
    key_groups: int
    schema_version: int


@final
class DataDirLock:
    """The exclusive lock of a data dir (its ``LOCK`` file); ``release`` or use ``with``."""

    def __init__(self, path: Path, *, purpose: str) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._fd)
            self._fd = None
            raise DataDirError(
                f"data dir {path} is in use by another pystatefun process; stop it{purpose}, "
                "or pass a different --data-dir"
            ) from exc

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


@final
class DataDir:
    """A data dir at ``path``, which may not exist yet."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.database = self.path / DATABASE_FILE

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r})"

    def exists(self) -> bool:
        """Whether a data dir is there (its database file exists)."""
        return self.database.is_file()

    def _require(self) -> None:
        if not self.exists():
            what = "is not a directory" if self.path.is_file() else f"has no {DATABASE_FILE}"
            raise DataDirError(
                f"no pystatefun data dir at {self.path} (it {what}); pass the --data-dir that "
                "`pystatefun run` uses"
            )

    # --- connections ---------------------------------------------------------------------

    def translating(self) -> AbstractContextManager[None]:
        """A block in which SQLite errors about this data dir's file (damaged, cannot be
        opened) are raised as coded ``DataDirError``s, for code that queries a connection it
        got from ``snapshot_connection``."""
        return translated(self.database)

    def _connect(self, *, read_only: bool) -> sqlite3.Connection:
        if read_only:  # for reading beside a runtime: no schema changes, no writes
            db = self._reader("mode=ro")
            try:  # opens the write-ahead log's index (-shm), which needs room on the disk
                db.execute("PRAGMA schema_version").fetchone()
            except sqlite3.OperationalError as exc:
                db.close()
                if getattr(exc, "sqlite_errorname", "") != "SQLITE_IOERR_SHMSIZE":
                    raise
                db = self._reader_on_a_full_disk(exc)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        return db

    def _reader(self, mode: str) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.database}?{mode}", uri=True, isolation_level=None,
                               check_same_thread=False)  # fmt: skip

    def _reader_on_a_full_disk(self, exc: sqlite3.OperationalError) -> sqlite3.Connection:
        """A disk too full for the -shm file: a data dir that nothing writes and whose commits
        are all in the main file (no runtime holds it, no write-ahead log left) is read as it
        is, without one; else it cannot be read until there is a little room."""
        wal = self.path / f"{DATABASE_FILE}-wal"
        folded = not wal.exists() or wal.stat().st_size == 0
        if folded and not self._in_use():
            return self._reader("mode=ro&immutable=1")
        raise DataDirError(
            f"cannot read {self.database} ({exc}): the disk is full, and SQLite needs room for "
            "its write-ahead log index while a runtime runs on the data dir or commits are "
            "still in its log. Free a little space (a few MiB) and try again"
        ) from exc

    def _in_use(self) -> bool:
        """Whether a process holds the data dir's lock (a runtime, which may write)."""
        try:
            fd = os.open(self.path / LOCK_FILE, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def forget_cached_pages(self) -> None:
        """Drop the kernel's cached pages of the database and its log, so that the next read
        is of what the disk holds. After a failed ``fsync`` Linux may keep pages it never
        wrote, marked clean: a restart would read them as if they were durable."""
        if not hasattr(os, "posix_fadvise"):  # not on macOS: nothing to ask
            return
        for name in (DATABASE_FILE, f"{DATABASE_FILE}-wal"):
            try:
                fd = os.open(self.path / name, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            except OSError:
                pass  # advice, not a promise: the restart reads what the kernel gives it
            finally:
                os.close(fd)

    def snapshot_connection(self) -> sqlite3.Connection:
        """A read-only connection inside one read transaction: a consistent snapshot of the
        data dir as of one commit, beside a running runtime (a WAL reader blocks no writer; a
        long one only holds back checkpoints). The caller closes it."""
        self._require()
        with translated(self.database):
            db = self._connect(read_only=True)
            try:
                db.execute("BEGIN")
                self._read_key_groups(db)  # reads a page: a damaged file fails here, not later
            except BaseException:
                db.close()
                raise
        return db

    def open_tables(
        self, *, key_groups: KeyGroups, durability: Durability, cache_mib: int
    ) -> Tables:
        """The data dir's tables for writing, created or upgraded to the current schema, in
        the calling thread. State lives in the file: SQLite's page cache, bounded by
        ``cache_mib``, keeps the hot pages, so state can be far larger than RAM."""
        with translated(self.database, writing=True):
            db = self._connect(read_only=False)
            try:
                synchronous = {"fsync": "FULL", "os": "NORMAL"}[durability]
                db.execute("PRAGMA journal_mode = WAL")
                db.execute(f"PRAGMA synchronous = {synchronous}")
                db.execute("PRAGMA foreign_keys = ON")
                db.execute(f"PRAGMA cache_size = {-1024 * cache_mib}")  # negative: KiB
                create_schema(db, self.path)
                self._record_key_groups(db, key_groups)
                # INSERT OR IGNORE: made once, when the data dir is created, then kept.
                db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (INSTANCE_ID, uuid4().hex))
            except BaseException:
                db.close()
                raise
        return Tables(db, key_groups)

    # --- metadata ------------------------------------------------------------------------

    def _read_key_groups(self, db: sqlite3.Connection) -> int:
        stored = meta_value(db, "key_groups")
        if stored is None:
            raise DataDirError(
                f"{self.path} has no key_groups record; it was never opened by `pystatefun "
                "run`, `bootstrap` or `savepoint restore`"
            )
        return int(stored)

    def _record_key_groups(self, db: sqlite3.Connection, key_groups: KeyGroups) -> None:
        stored = meta_value(db, "key_groups")
        if stored is None:
            db.execute("INSERT INTO meta VALUES ('key_groups', ?)", (str(key_groups.count),))
        elif int(stored) != key_groups.count:
            raise DataDirError(
                f"data dir {self.path} was created with {stored} key groups, not "
                f"{key_groups.count}; the number of key groups cannot change for an existing "
                "data dir (restore a savepoint into a new one to change it)"
            )

    def info(self) -> DataDirInfo:
        """What the data dir records about itself (read-only; it may be running)."""
        db = self.snapshot_connection()
        try:
            with translated(self.database):
                key_groups = self._read_key_groups(db)
                version = int(meta_value(db, "schema_version") or 1)
        finally:
            db.close()
        return DataDirInfo(self.path, key_groups, version)

    def key_groups(self, default: int | None = None) -> KeyGroups:
        """The data dir's key groups; for a data dir that does not exist yet, ``default``."""
        if not self.exists():
            return KeyGroups(default or DEFAULT_KEY_GROUPS)
        return KeyGroups(self.info().key_groups)

    # --- locking, creating ---------------------------------------------------------------

    def lock(self, *, purpose: str = "") -> DataDirLock:
        """Take the exclusive lock (creating the directory); ``DataDirError`` if in use."""
        return DataDirLock(self.path, purpose=purpose)

    @contextmanager
    def removed_on_failure(self) -> Iterator[None]:
        """If the block fails, remove what it created of this data dir: a failed command
        leaves nothing behind. A data dir that existed before is left as it was."""
        existed = self.path.exists()
        held_database = self.exists()
        try:
            yield
        except BaseException:
            if not existed:
                shutil.rmtree(self.path, ignore_errors=True)
            elif not held_database:
                for name in _FILES:
                    (self.path / name).unlink(missing_ok=True)
            raise

    # --- whole contents ------------------------------------------------------------------

    def contents(self) -> Contents:
        """The key groups and every record, from one consistent snapshot (see ``Contents``)."""
        db = self.snapshot_connection()
        with translated(self.database):
            key_groups = self._read_key_groups(db)
        return Contents(key_groups, records(db, self.database))

    def loader(self, *, key_groups: int | None, fresh: bool) -> SqliteLoader:
        """A bulk loader into this stopped data dir (it takes the lock until closed).

        ``fresh`` (a restore) refuses a data dir that holds anything; otherwise values are
        written over existing ones (bootstrap), and an existing data dir keeps its key groups:
        ``key_groups`` must then be None or the same.
        """
        lock = self.lock(purpose=" first")
        try:
            if fresh and self.exists() and self._holds_anything():
                raise DataDirError(f"{self.path} is not empty; restore into a new data dir")
            groups = self._loader_key_groups(key_groups)
            # A large page cache: a bulk load touches every page of the state table, often.
            tables = self.open_tables(key_groups=groups, durability="fsync", cache_mib=1024)
            db = tables.connection
        except BaseException:
            lock.release()
            raise
        return SqliteLoader(db, database=self.database, key_groups=groups, on_close=lock.release)

    def _loader_key_groups(self, asked: int | None) -> KeyGroups:
        if not self.exists():
            return KeyGroups(asked or DEFAULT_KEY_GROUPS)
        stored = self.info().key_groups
        if asked is not None and asked != stored:
            raise DataDirError(
                f"data dir {self.path} was made with {stored} key groups, not {asked}; load "
                "into a new data dir to use another number"
            )
        return KeyGroups(stored)

    def _holds_anything(self) -> bool:
        db = self.snapshot_connection()
        try:
            with translated(self.database):
                return any(
                    db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()  # noqa: S608 - ours
                    for table in DATA_TABLES
                    if table != "positions" or meta_value(db, "schema_version") != "1"
                )
        finally:
            db.close()

    # --- dead letters --------------------------------------------------------------------

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest first (read-only; the runtime may be running)."""
        db = self.snapshot_connection()
        try:
            with translated(self.database):
                return Tables(db, KeyGroups(self._read_key_groups(db))).dead_letters(limit=-1)
        finally:
            db.close()

    def redrive(self, ids: Sequence[int] | None, *, now_ms: int) -> int:
        """Move dead letters (``ids``; None: all) back to their mailboxes; how many messages.
        A running runtime picks them up within its rescan interval."""
        with self._writable() as tables:
            return tables.redrive(ids, now_ms)

    def delete_dead_letters(self, ids: Sequence[int] | None) -> int:
        """Delete dead letters (``ids``; None: all) for good; how many."""
        with self._writable() as tables:
            return tables.delete_dead_letters(ids)

    @contextmanager
    def _writable(self) -> Iterator[Tables]:
        """The tables for a small write beside (or without) a running runtime."""
        groups = KeyGroups(self.info().key_groups)
        tables = self.open_tables(key_groups=groups, durability="fsync", cache_mib=8)
        try:
            with translated(self.database, writing=True):
                yield tables
        finally:
            tables.close()
