"""The ``BulkLoader`` of a ``MemoryEngine``: savepoint restores and bootstrap into memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from pystatefun.store.contents import Content
from pystatefun.store.held_loader import HeldLoader
from pystatefun.store.keygroups import KeyGroups

if TYPE_CHECKING:  # the engine imports this module
    from pystatefun.store.memory import MemoryEngine

__all__ = ["MemoryLoader"]


@final
class MemoryLoader(HeldLoader):
    """A ``BulkLoader`` into a ``MemoryEngine``: records are kept until ``commit``."""

    def __init__(self, engine: MemoryEngine) -> None:
        super().__init__()
        self._engine = engine
        self.key_groups = KeyGroups(engine.key_groups)

    def load(self, records: list[Content]) -> None:
        self._engine.load(records)
