"""What an SQLite error means for a data dir, as an error a person can act on.

SQLite reports a damaged file (truncated, overwritten, not a database at all) as
``SQLITE_CORRUPT`` or ``SQLITE_NOTADB`` whenever a read reaches the bad page, which may be long
after the file was opened. Every call into SQLite made by the store goes through ``translated``,
so a damaged data dir is one coded error naming the file and what to do, on every command,
never a traceback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pystatefun.errors import DataDirDamagedError, DataDirError, PystatefunError

__all__ = ["fsync_failed", "storage_error", "translated", "write_refusal"]

_DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_CANNOT_OPEN = {"SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH"}


def storage_error(
    exc: sqlite3.Error, database: Path, *, writing: bool = False
) -> PystatefunError | None:
    """The coded error for ``exc`` raised on ``database``, or None when it is not about the
    file itself (a bug, a constraint the caller handles). ``writing``: a write of the
    caller's own (a re-drive), for which a full or read-only disk is said as such; a write
    through a read-only connection keeps SQLite's own error."""
    base = "_".join(str(getattr(exc, "sqlite_errorname", "")).split("_")[:2])
    if base in _DAMAGED:
        return DataDirDamagedError(
            f"{database} is damaged ({exc}): pystatefun cannot read it. Stop anything that uses "
            f"{database.parent}, move it aside, and restore your last savepoint into a new data "
            "dir: `pystatefun savepoint restore FILE --data-dir NEW_DIR`. Without a savepoint, "
            f"`sqlite3 {database} .recover` may save part of the data.",
            path=database,
        )
    if base in _CANNOT_OPEN:
        return DataDirError(
            f"cannot open {database} ({exc}); check that it exists, is a file, and that this "
            "user may read (and, to run or change it, write) it and its directory"
        )
    refusal = write_refusal(exc) if writing else None
    if refusal is not None:
        return DataDirError(
            f"cannot write {database}: {refusal}; nothing was changed. Free space (or "
            "make the file system writable) and try again"
        )
    return None


#: Errors after which SQLite has written nothing of the transaction (it rolls back): the same
#: transaction can be written again once the cause is gone.
_CANNOT_WRITE = {
    "SQLITE_FULL": "the disk is full",
    "SQLITE_IOERR_WRITE": "a write failed with an I/O error",
    "SQLITE_IOERR_TRUNCATE": "a file could not be truncated (an I/O error)",
    "SQLITE_IOERR_SHMSIZE": "the shared-memory file could not grow (disk full?)",
    "SQLITE_IOERR_SHMMAP": "the shared-memory file could not be mapped",
}


def write_refusal(exc: BaseException) -> str | None:
    """Why a write transaction failed (with SQLite's words) when the cause is the file system
    refusing writes now (full, read-only, a failed write): the same transaction may succeed later;
    None for anything else, a failed ``fsync`` among them: after that the outcome of what
    was written is unknown (the kernel may have dropped the pages), so it is never retried."""
    if not isinstance(exc, sqlite3.Error):
        return None
    name = str(getattr(exc, "sqlite_errorname", ""))
    if name.startswith("SQLITE_READONLY"):
        return f"the file system or the data dir's files are read-only ({exc})"
    reason = _CANNOT_WRITE.get(name)
    return None if reason is None else f"{reason} ({exc})"


def fsync_failed(exc: BaseException) -> bool:
    """Whether a write failed in its ``fsync``: its outcome is unknown (see
    ``WriteOutcomeUnknownError``)."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    return name in ("SQLITE_IOERR_FSYNC", "SQLITE_IOERR_DIR_FSYNC")


@contextmanager
def translated(database: Path, *, writing: bool = False) -> Iterator[None]:
    """Re-raise SQLite errors about ``database``'s file as coded errors (see module docs;
    ``writing`` as for ``storage_error``)."""
    try:
        yield
    except sqlite3.Error as exc:
        error = storage_error(exc, database, writing=writing)
        if error is None:
            raise
        raise error from exc
