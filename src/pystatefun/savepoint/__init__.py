"""Savepoints: a data dir's whole contents in one portable, versioned file.

``create`` reads a data dir (a running runtime's too: from one consistent snapshot, a committed
step boundary, without pausing it) and writes state with its TTLs, waiting messages, timers,
dead letters, unread egress records and idempotency keys. ``restore`` loads a savepoint into a
new data dir, with the same or another number of key groups, in one transaction (``load``:
into any ``BulkLoader``, a cluster's too). ``info``
reads one through and checks it. The format is ``pystatefun.savepoint.format``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pystatefun
from pystatefun.savepoint.format import FORMAT as FORMAT
from pystatefun.savepoint.format import VERSION as VERSION
from pystatefun.savepoint.format import SavepointError as SavepointError
from pystatefun.savepoint.format import SavepointWriter, kind_of, read_savepoint
from pystatefun.store import BulkLoader, Contents, DataDir
from pystatefun.store.contents import StateContent

__all__ = ["FORMAT", "VERSION", "SavepointError", "create", "info", "load", "restore", "write"]

_STATE_BATCH = 10_000


def create(data_dir: Path, path: Path) -> dict[str, int]:
    """Write the savepoint of ``data_dir`` to ``path``; the number of records of each kind."""
    return write(DataDir(data_dir).contents(), path)


def write(contents: Contents, path: Path) -> dict[str, int]:
    """Write ``contents`` (of a data dir, or of a running runtime's engine) to ``path`` as a
    savepoint; the number of records of each kind. All or nothing: on an error no file."""
    header = {
        "created_at_ms": int(time.time() * 1000),
        "pystatefun": pystatefun.__version__,
        "key_groups": contents.key_groups,
    }
    with SavepointWriter(path, header) as writer:
        for content in contents.records:
            writer.write(content)
    return writer.counts


def restore(path: Path, data_dir: Path, key_groups: int | None = None) -> dict[str, int]:
    """Load the savepoint at ``path`` into the new data dir ``data_dir`` (``key_groups``:
    the savepoint's, unless given). All or nothing: a damaged savepoint loads nothing, and a
    data dir this restore created is removed again."""
    target = DataDir(data_dir)
    with target.removed_on_failure():
        return load(path, lambda groups: target.loader(key_groups=groups, fresh=True), key_groups)


def load(
    path: Path, open_loader: Callable[[int], BulkLoader], key_groups: int | None = None
) -> dict[str, int]:
    """Load the savepoint at ``path`` through the loader ``open_loader(key_groups)`` opens
    (a data dir's, a cluster's); the number of records of each kind. All or nothing, as the
    loader is: records are read and checked as they load, and the loader commits only when
    the savepoint's footer has checked out."""
    header, contents = read_savepoint(path)
    groups = int(header["key_groups"]) if key_groups is None else key_groups
    if groups < 1:
        raise SavepointError(f"key groups must be at least 1, got {groups}")
    counts: dict[str, int] = {}
    with open_loader(groups) as loader:
        states: list[StateContent] = []
        for content in contents:
            kind = kind_of(content)
            counts[kind] = counts.get(kind, 0) + 1
            if isinstance(content, StateContent):
                states.append(content)
                if len(states) >= _STATE_BATCH:
                    loader.states(states)
                    states = []
            else:
                loader.add(content)
        loader.states(states)
    return counts


def info(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The header of the savepoint at ``path`` and its record counts, after checking every
    record against the footer (``SavepointError`` if it is damaged)."""
    header, contents = read_savepoint(path)
    counts: dict[str, int] = {}
    for content in contents:
        kind = kind_of(content)
        counts[kind] = counts.get(kind, 0) + 1
    return header, counts
