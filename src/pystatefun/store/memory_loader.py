"""The ``BulkLoader`` of a ``MemoryEngine``: savepoint restores and bootstrap into memory."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, final

from pystatefun.store.contents import Content, StateContent
from pystatefun.store.keygroups import KeyGroups

if TYPE_CHECKING:  # the engine imports this module
    from pystatefun.store.memory import MemoryEngine

__all__ = ["MemoryLoader"]


@final
class MemoryLoader:
    """A ``BulkLoader`` into a ``MemoryEngine``: records are kept until ``commit``."""

    def __init__(self, engine: MemoryEngine) -> None:
        self._engine = engine
        self._pending: list[Content] = []
        self.key_groups = KeyGroups(engine.key_groups)
        self.loaded = 0

    def states(self, values: list[StateContent]) -> None:
        self._pending.extend(values)
        self.loaded += len(values)

    def add(self, content: Content) -> None:
        self._pending.append(content)
        self.loaded += 1

    def commit(self) -> None:
        pending, self._pending = self._pending, []
        self._engine.load(pending)

    def close(self) -> None:
        self._pending = []

    def __enter__(self) -> MemoryLoader:
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
