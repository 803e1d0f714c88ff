"""Savepoints: a data dir's whole contents in one portable, versioned file.

``create`` reads a data dir (a running runtime's too: from one consistent snapshot, a committed
step boundary, without pausing it) and writes state with its TTLs, waiting messages, timers,
dead letters, unread egress records and idempotency keys. ``restore`` loads a savepoint into a
new data dir, with the same or another number of key groups, in one transaction. ``info``
reads one through and checks it. The format is ``pystatefun.savepoint.format``.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

import pystatefun
from pystatefun.runtime.keygroups import key_group_of
from pystatefun.savepoint.format import FORMAT as FORMAT
from pystatefun.savepoint.format import VERSION as VERSION
from pystatefun.savepoint.format import SavepointError as SavepointError
from pystatefun.savepoint.format import SavepointWriter, kind_of, read_savepoint
from pystatefun.store.transfer import ContentLoader, StateContent, read_contents

__all__ = ["FORMAT", "VERSION", "SavepointError", "create", "info", "restore"]

_STATE_BATCH = 10_000


def create(data_dir: Path, path: Path) -> dict[str, int]:
    """Write the savepoint of ``data_dir`` to ``path``; the number of records of each kind."""
    key_groups, contents = read_contents(data_dir)
    header = {
        "created_at_ms": int(time.time() * 1000),
        "pystatefun": pystatefun.__version__,
        "key_groups": key_groups,
    }
    with SavepointWriter(path, header) as writer:
        for content in contents:
            writer.write(content)
    return writer.counts


def restore(path: Path, data_dir: Path, key_groups: int | None = None) -> dict[str, int]:
    """Load the savepoint at ``path`` into the new data dir ``data_dir`` (``key_groups``:
    the savepoint's, unless given). All or nothing: a damaged savepoint loads nothing."""
    header, contents = read_savepoint(path)
    groups = int(header["key_groups"]) if key_groups is None else key_groups
    if groups < 1:
        raise SavepointError(f"key groups must be at least 1, got {groups}")
    counts: dict[str, int] = {}
    group_of = functools.partial(key_group_of, key_groups=groups)
    with ContentLoader(data_dir, (groups, group_of), fresh=True) as loader:
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
