"""Watching a ``pystatefun run`` subprocess from its data dir, read-only, for the crash tests:
a number out of its SQLite file, a ``kill -9`` once a number reaches a point, and the state of
every address of a type through ``pystatefun sql`` (the process offers no event to wait on)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path

from support.runtime_process import PYSTATEFUN, RuntimeProcess

#: The records an ingress has read, when its positions count them (Kafka's next offsets of
#: partitions read from offset 0; moto's Kinesis sequence numbers, which count 1, 2, ...).
POSITIONS_SUM = "SELECT SUM(CAST(position AS INTEGER)) FROM positions"


def read_number(data_dir: Path, query: str) -> int:
    """One number from the data dir, read-only (-1 if it cannot be read just now)."""
    database = f"file:{data_dir / 'pystatefun.sqlite3'}?mode=ro"
    with (
        contextlib.suppress(sqlite3.OperationalError),  # not created yet, or busy
        contextlib.closing(sqlite3.connect(database, uri=True)) as db,
    ):
        return int(db.execute(query).fetchone()[0] or 0)
    return -1


def kill_at(runtime: RuntimeProcess, data_dir: Path, at_least: int, wait_s: float) -> None:
    """SIGKILL ``runtime`` once ``POSITIONS_SUM`` reaches ``at_least``; killed anyway after
    ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if read_number(data_dir, POSITIONS_SUM) >= at_least:
            break
        time.sleep(0.002)
    runtime.kill()


def state_counts(data_dir: Path, typename: str) -> dict[str, int]:
    """Each address's ``count`` state of ``typename``, read with ``pystatefun sql`` (the
    runtime may be running)."""
    done = subprocess.run(
        [PYSTATEFUN, "sql", f'SELECT id, value FROM "{typename}.count"', "--format", "json",
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return {row["id"]: int(row["value"]) for row in json.loads(done.stdout)}
