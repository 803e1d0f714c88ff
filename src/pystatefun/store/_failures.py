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

__all__ = ["storage_error", "translated"]

_DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_CANNOT_OPEN = {"SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH"}


def storage_error(exc: sqlite3.Error, database: Path) -> PystatefunError | None:
    """The coded error for ``exc`` raised on ``database``, or None when it is not about the
    file itself (a bug, a constraint the caller handles)."""
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
    return None


@contextmanager
def translated(database: Path) -> Iterator[None]:
    """Re-raise SQLite errors about ``database``'s file as coded errors (see module docs)."""
    try:
        yield
    except sqlite3.Error as exc:
        error = storage_error(exc, database)
        if error is None:
            raise
        raise error from exc
