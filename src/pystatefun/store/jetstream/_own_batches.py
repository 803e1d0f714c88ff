"""This worker's own batches as its tail reads them back.

A committer applies a batch to the view when the server acknowledges it; the tail then reads
the same records again and must leave them alone (the runtime holds the messages they carry in
memory already: reading them as new would deliver them twice). But an acknowledgement can be
lost (the stream's leader changing), and a lookup of the batch can miss it for a moment: the
committer may conclude that a batch was not stored when it was. So the tail tells the
committer which of its batches it reads (``held``):

- a batch the view holds (acknowledged, or found): skipped;
- the batch being published: skipped, and its first sequence noted, which answers the
  committer's question "was it stored?" for certain (``first_seen``);
- any other batch of this worker, one it gave up on: stored after all, so the tail applies it
  like another worker's, and the view stays equal to the stream.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import final

__all__ = ["OwnBatches"]

_log = logging.getLogger("pystatefun.store")


@final
class OwnBatches:
    """One committer's batches, for its stream's tail (see the module's docstring)."""

    def __init__(self, instance: str) -> None:
        self._instance = instance
        self._attempts: list[str] = []  # the ids of the batch being published
        self._seen: dict[str, int] = {}  # attempt id -> the first sequence the tail read
        self._applied: deque[tuple[int, str]] = deque()  # (last sequence, batch id) held
        self._warned = ""

    def publishing(self, attempts: list[str]) -> None:
        """A batch is being published; ``attempts`` grows with each retry's id."""
        self._attempts = attempts
        self._seen.clear()

    def first_seen(self) -> int | None:
        """The first sequence of the batch being published, if the tail read it stored."""
        return min((self._seen[a] for a in self._attempts if a in self._seen), default=None)

    def applied(self, batch_id: str, last: int) -> None:
        """The view holds the batch ``batch_id`` (every attempt of it), up to ``last``."""
        self._applied.append((last, batch_id))

    def published(self) -> None:
        """The publish ended, stored or given up on."""
        self._attempts = []
        self._seen.clear()

    def held(self, batch_id: str | None, seq: int) -> bool:
        """Whether the record at ``seq`` of batch ``batch_id`` is the committer's to apply
        (or applied already), not the tail's."""
        if batch_id is None or not batch_id.startswith(self._instance):
            return False
        applied = self._applied
        while applied and applied[0][0] < seq:
            applied.popleft()  # the tail is past it: none of its records can come again
        if any(batch_id.startswith(held) for _, held in applied):
            return True
        if batch_id in self._attempts:
            self._seen.setdefault(batch_id, seq)
            return True
        if batch_id != self._warned:
            self._warned = batch_id
            _log.warning("batch %s was stored, though its publish seemed to fail; reading it "
                         "in", batch_id)  # fmt: skip
        return False
