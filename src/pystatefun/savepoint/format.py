"""The savepoint file format, version 2: gzip-compressed JSON Lines, one record per line.

The format describes the data model, not a storage engine, so any engine can write and read it::

    {"format": "pystatefun-savepoint", "version": 1, "created_at_ms": ..., "pystatefun": "...",
     "key_groups": 128}                                                   the header, first
    {"t": "state", "address": [ns, type, id], "name": ..., "typename": ..., "value": B64,
     "expire_mode": 0|1|2, "expire_after_ms": ..., "expires_at_ms": ... | null}
    {"t": "message", "target": [...], "caller": [...] | null, "typename": ..., "value": B64 |
     null, "enqueued_at_ms": ...}                                  in mailbox order
    {"t": "timer", "fire_at_ms": ..., "sender": [...], "token": ... | null, "target": [...],
     "typename": ..., "value": B64 | null}
    {"t": "dead_letter", "target": [...], "error": ..., "failed_at_ms": ..., "attempts": ...,
     "messages": [{"caller": [...] | null, "typename": ..., "value": B64 | null}, ...]}
    {"t": "egress", "egress": ..., "topic": ..., "typename": ..., "value": B64 | null,
     "created_at_ms": ...}
    {"t": "dedup", "key": ..., "expires_at_ms": ...}
    {"t": "position", "source": ..., "key": ..., "position": ...}       (since version 2)
    {"t": "end", "counts": {"state": n, ...}, "sha256": ...}             the footer, last

``B64`` is the value's bytes in base64. ``expire_mode`` numbers StateFun's TTL modes (0 none,
1 after write, 2 after invoke). The footer's ``sha256`` is the digest of every line before it
(each with its newline), so a truncated or altered file is refused instead of half-restored.
Readers dispatch on ``version``: a newer pystatefun keeps reading every older version.
Version 2 added ``position`` records (where each ingress has read up to); a version 1 file has
none, and its footer counts no ``position``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, final

from pystatefun.errors import ConfigurationError
from pystatefun.store import TimerRecord
from pystatefun.store.content_json import content_from_json, content_to_json
from pystatefun.store.contents import (
    Content,
    DeadLetterContent,
    DedupKey,
    EgressContent,
    MessageContent,
    PositionContent,
    StateContent,
)

__all__ = ["FORMAT", "VERSION", "SavepointError", "SavepointWriter", "kind_of", "read_savepoint"]

FORMAT = "pystatefun-savepoint"
VERSION = 2
KINDS = ("state", "message", "timer", "dead_letter", "egress", "dedup", "position")
_KINDS_OF_VERSION = {1: KINDS[:-1], 2: KINDS}


_KINDS_OF: dict[type, str] = {
    StateContent: "state",
    MessageContent: "message",
    TimerRecord: "timer",
    DeadLetterContent: "dead_letter",
    EgressContent: "egress",
    DedupKey: "dedup",
    PositionContent: "position",
}


def kind_of(content: Content) -> str:
    """The record kind (``t``) of ``content``: ``state``, ``message``, ..."""
    return _KINDS_OF[type(content)]


class SavepointError(ConfigurationError):
    """A savepoint file cannot be read: not a savepoint, a newer version, or damaged."""

    code = "PSF-SP0001"


@final
class SavepointWriter:
    """Writes a savepoint file: the header now, records as they come, the footer on success.

    The file appears under its name only once complete (written beside it, then renamed), so a
    crash while writing never leaves something that looks like a savepoint.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self._partial = path.with_name(path.name + ".partial")
        self._file = gzip.GzipFile(self._partial, "wb", compresslevel=1)
        self._digest = hashlib.sha256()
        self.counts = dict.fromkeys(KINDS, 0)
        self._line({"format": FORMAT, "version": VERSION, **header})

    def _line(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        self._digest.update(line)
        self._file.write(line)

    def write(self, content: Content) -> None:
        record = content_to_json(content)
        self.counts[record["t"]] += 1
        self._line(record)

    def __enter__(self) -> SavepointWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if error is None:
                footer = {"t": "end", "counts": self.counts, "sha256": self._digest.hexdigest()}
                self._file.write((json.dumps(footer) + "\n").encode())
            self._file.close()  # writes what gzip still holds: on a full disk, this fails too
        except BaseException:
            self._partial.unlink(missing_ok=True)  # the close above closed the file anyway
            raise
        if error is None:
            self._partial.replace(self.path)
        else:
            self._partial.unlink(missing_ok=True)


def read_savepoint(path: Path) -> tuple[dict[str, Any], Iterator[Content]]:
    """The header, and the records (verified against the footer at the end; a damaged file
    raises ``SavepointError`` when its end is reached, before anything is committed)."""
    if not path.is_file():
        raise SavepointError(f"no savepoint at {path}")
    stream = gzip.GzipFile(path, "rb")  # closed by the record iterator
    try:
        first = stream.readline()
        header = json.loads(first)
    except (OSError, EOFError, ValueError) as exc:
        stream.close()
        raise SavepointError(f"{path} is not a pystatefun savepoint ({exc})") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        stream.close()
        raise SavepointError(f"{path} is not a pystatefun savepoint (no {FORMAT!r} header)")
    version = header.get("version")
    if version not in _KINDS_OF_VERSION:
        stream.close()
        raise SavepointError(
            f"{path} is savepoint format version {version}; this pystatefun reads version "
            f"{VERSION} and older: upgrade pystatefun to restore it"
        )
    return header, _records(path, stream, first, _KINDS_OF_VERSION[version])


def _records(
    path: Path, stream: gzip.GzipFile, first: bytes, kinds: tuple[str, ...]
) -> Iterator[Content]:
    digest = hashlib.sha256(first)
    counts = dict.fromkeys(kinds, 0)
    number = 1
    try:
        for line in stream:
            number += 1
            record = json.loads(line)
            if record.get("t") == "end":
                if record.get("sha256") != digest.hexdigest() or record.get("counts") != counts:
                    raise SavepointError(f"{path}: the footer does not match the records")
                return
            digest.update(line)
            counts[record["t"]] += 1
            yield content_from_json(record)
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise SavepointError(
            f"{path}, line {number}: damaged ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        stream.close()
    raise SavepointError(f"{path} ends without its footer: the file is truncated")
