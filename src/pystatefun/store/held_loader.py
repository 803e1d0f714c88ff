"""A ``BulkLoader`` that holds records until ``commit``, then hands them over at once.

The memory engine and the cluster engine load this way (an SQLite data dir writes as it goes,
in one transaction): what a loader was given stays in memory until the load commits, so an
error before that loads nothing.
"""

from __future__ import annotations

from types import TracebackType

from pystatefun.store.contents import Content, StateContent
from pystatefun.store.keygroups import KeyGroups

__all__ = ["HeldLoader"]


class HeldLoader:
    """Keeps records until ``commit``, which passes them to ``load`` (a subclass's)."""

    key_groups: KeyGroups

    def __init__(self) -> None:
        self._pending: list[Content] = []
        self.loaded = 0

    def load(self, records: list[Content]) -> None:
        """Make ``records`` durable at once (or raise, loading none)."""
        raise NotImplementedError

    def states(self, values: list[StateContent]) -> None:
        self._pending.extend(values)
        self.loaded += len(values)

    def add(self, content: Content) -> None:
        self._pending.append(content)
        self.loaded += 1

    def commit(self) -> None:
        pending, self._pending = self._pending, []
        self.load(pending)

    def close(self) -> None:
        self._pending = []

    def __enter__(self) -> HeldLoader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if error is None:
            self.commit()
        self.close()
