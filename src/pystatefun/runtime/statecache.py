"""The state of recently invoked addresses, kept in memory so an invocation reads no row.

The runtime is the only writer of its data dir (the LOCK file), so a value it committed is the
value on disk: the cache is updated only after a step commits, and a miss reads the rows. It is
bounded by a number of addresses (least recently used go first); state itself stays on disk and
can be far larger. Expired values may linger here: every reader checks expiry, as on disk.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import final

from pystatefun.store import StateValue
from pystatefun.types import Address

__all__ = ["StateCache"]


@final
class StateCache:
    """Address -> its stored values by state name, least recently used evicted first."""

    def __init__(self, max_addresses: int) -> None:
        self._max = max_addresses
        self._entries: OrderedDict[Address, dict[str, StateValue]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, address: Address) -> dict[str, StateValue] | None:
        """The cached values (do not mutate them), or None on a miss."""
        values = self._entries.get(address)
        if values is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(address)
        return values

    def put(self, address: Address, values: dict[str, StateValue]) -> None:
        """Remember what was read from disk for ``address``."""
        if self._max <= 0:
            return
        self._entries[address] = values
        self._entries.move_to_end(address)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def committed(self, address: Address, puts: list[StateValue], deletes: list[str]) -> None:
        """A step that wrote ``address``'s state committed: apply the same writes here. An
        address not cached stays uncached (the next read goes to disk)."""
        values = self._entries.get(address)
        if values is None:
            return
        updated = dict(values)
        for name in deletes:
            updated.pop(name, None)
        for value in puts:
            updated[value.name] = value
        self._entries[address] = updated

    def __len__(self) -> int:
        return len(self._entries)
