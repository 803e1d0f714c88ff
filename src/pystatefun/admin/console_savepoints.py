"""The web console's "take a savepoint" (``POST /api/savepoints``).

The savepoint is what ``pystatefun savepoint create`` writes, of the store as of one commit,
while the runtime goes on; into the runtime's savepoint directory (``pystatefun run
--savepoint-dir``), named after the time it was taken. ``pystatefun.savepoint.write`` writes
it beside its name and renames it once complete, so a failure leaves no partial file.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable
from pathlib import Path

from pystatefun import savepoint as savepoints
from pystatefun.admin.console_errors import NotAvailableError
from pystatefun.errors import PystatefunError
from pystatefun.store import Contents, StorageEngine

__all__ = ["SUFFIX", "savepoint_path", "take_savepoint"]

#: What ``pystatefun savepoint`` files are called (``backup.psfsp`` in the docs).
SUFFIX = ".psfsp"

Json = dict[str, object]


def savepoint_path(directory: Path, now: datetime.datetime) -> Path:
    """A new file in ``directory`` named after ``now`` (UTC), never one that exists."""
    stem = "savepoint-" + now.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path, n = directory / (stem + SUFFIX), 1
    while path.exists():
        n += 1
        path = directory / f"{stem}-{n}{SUFFIX}"
    return path


def _write(contents: Contents | Callable[[], Contents], directory: Path) -> Json:
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    path = savepoint_path(directory, datetime.datetime.now(datetime.UTC))
    counts = savepoints.write(contents() if callable(contents) else contents, path)
    return {"path": str(path), "counts": counts, "bytes": path.stat().st_size,
            "elapsed_ms": round((time.monotonic() - started) * 1000, 1)}  # fmt: skip


async def take_savepoint(
    engine: StorageEngine, directory: Path | None, *, contents: Callable[[], Contents] | None
) -> Json:
    """Write a savepoint of ``engine`` (or of what ``contents`` reads, in a thread: a
    cluster's whole contents) into ``directory``; where, and what it holds."""
    if directory is None:
        raise NotAvailableError(
            "no savepoint directory: start `pystatefun run` with --savepoint-dir"
        )
    # The engine's snapshot is taken here, on the runtime's loop; only reading it and writing
    # the file happen in the thread.
    source: Contents | Callable[[], Contents] = engine.snapshot() if contents is None else contents
    try:
        return await asyncio.to_thread(_write, source, directory)
    except (OSError, PystatefunError) as exc:
        raise NotAvailableError(f"cannot write a savepoint into {directory}: {exc}") from exc
