"""This worker's own batches as its tails read them back.

A committer applies a batch to the view when the server acknowledges it; the tails then read
the same records again and must leave them alone (the runtime holds the messages they carry in
memory already: reading them as new would deliver them twice). But an acknowledgement can be
lost (the stream's leader changing), and a lookup of the batch can miss it for a moment: the
committer may conclude that a batch was not stored when it was. So each tail of the stream
(a ``Reader``: the stream's shared records, or one partition's) tells the committer which of
its batches it reads (``held``):

- a batch the view held since the tail began (acknowledged, or found): skipped;
- the batch being published: skipped, and its first sequence noted (each record says where
  in its batch it is), which answers the committer's question "was it stored?" for certain
  (``first_seen``);
- any other batch of this worker: one it gave up on (stored after all), or one acknowledged
  before the tail began, when the view did not hold that partition's records: the tail
  applies it like another worker's, and the view stays equal to the stream.

Each reader keeps its own list of the batches applied since it began: tails read the stream
at their own pace, and one that is past a batch says nothing about another.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import final

__all__ = ["OwnBatches", "Reader"]

_log = logging.getLogger("pystatefun.store")


@final
class OwnBatches:
    """One committer's batches, for its stream's tails (see the module's docstring)."""

    def __init__(self, instance: str) -> None:
        self._instance = instance
        self._attempts: list[str] = []  # the ids of the batch being published
        self._seen: dict[str, int] = {}  # attempt id -> its first sequence, as a tail read it
        self._readers: list[Reader] = []

    def reader(self) -> Reader:
        """A new tail's view of these batches, from now on (``close`` it when it stops)."""
        reader = Reader(self)
        self._readers.append(reader)
        return reader

    def _closed(self, reader: Reader) -> None:
        if reader in self._readers:
            self._readers.remove(reader)

    def publishing(self, attempts: list[str]) -> None:
        """A batch is being published; ``attempts`` grows with each retry's id."""
        self._attempts = attempts
        self._seen.clear()

    def first_seen(self) -> int | None:
        """The first sequence of the batch being published, if a tail read it stored."""
        return min((self._seen[a] for a in self._attempts if a in self._seen), default=None)

    def applied(self, batch_id: str, last: int) -> None:
        """The view holds the batch ``batch_id`` (every attempt of it), up to ``last``."""
        for reader in self._readers:
            reader.applied.append((last, batch_id))

    def published(self) -> None:
        """The publish ended, stored or given up on."""
        self._attempts = []
        self._seen.clear()

    def _held(self, batch_id: str, first: int) -> bool:
        if batch_id in self._attempts:
            self._seen.setdefault(batch_id, first)
            return True
        return False

    def mine(self, batch_id: str | None) -> bool:
        return batch_id is not None and batch_id.startswith(self._instance)


@final
class Reader:
    """What one tail makes of this worker's batches."""

    def __init__(self, batches: OwnBatches) -> None:
        self._batches = batches
        self.applied: deque[tuple[int, str]] = deque()  # (last sequence, batch id) held

    def close(self) -> None:
        self._batches._closed(self)  # noqa: SLF001 - its owner's bookkeeping

    def held(self, batch_id: str | None, seq: int, first: int) -> bool:
        """Whether the record at ``seq`` of batch ``batch_id`` (whose first record is at
        ``first``) is the committer's to apply (or applied already), not the tail's."""
        if not self._batches.mine(batch_id):
            return False
        assert batch_id is not None
        applied = self.applied
        while applied and applied[0][0] < seq:
            applied.popleft()  # this tail is past it: none of its records can come again
        if any(batch_id.startswith(held) for _, held in applied):
            return True
        if self._batches._held(batch_id, first):  # noqa: SLF001 - its owner's bookkeeping
            return True
        _log.info("batch %s of this worker is read in from the stream (its publish seemed to "
                  "fail, or the view did not hold its partition then)", batch_id)  # fmt: skip
        return False
