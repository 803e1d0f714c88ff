"""The state of recently invoked addresses, kept in memory so an invocation reads no row.

The runtime is the only writer of its data dir (the LOCK file), so a value it committed is the
value on disk: the cache is updated after a step commits, and a miss reads the rows. (A cluster
worker is the only writer of the partitions it serves; when one moves away, its addresses
leave the cache, since the next owner's writes never reach it.) A step
whose effects are visible before it commits (an embedded function's, see the dispatcher) writes
its values here at once and *pins* the address until the step is durable: until then the disk
has older values, so the entry must not be evicted. Otherwise the cache is bounded by a number
of addresses (least recently used go first); state itself stays on disk and can be far larger.
Expired values may linger here: every reader checks expiry, as on disk.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
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
        self._pinned: dict[Address, int] = {}  # address -> its steps not durable yet
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
        self._evict()

    def forget(self, gone: Callable[[Address], bool]) -> None:
        """Drop the addresses ``gone`` selects: another runtime serves them from now on (a
        cluster partition moved), so the values here may go stale."""
        for address in [a for a in self._entries if gone(a)]:
            del self._entries[address]

    def _evict(self) -> None:
        entries = self._entries
        pinned = self._pinned
        for _ in range(len(entries)):
            if len(entries) <= self._max:
                return
            address, values = entries.popitem(last=False)
            if address in pinned:
                entries[address] = values  # to the back: it cannot go yet

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

    def written(
        self,
        address: Address,
        before: dict[str, StateValue],
        puts: list[StateValue],
        deletes: list[str],
    ) -> None:
        """A step wrote ``address``'s state (``before``: the values it read) and is not durable
        yet: cache the new values and pin them until ``settled``."""
        updated = dict(before)
        for name in deletes:
            updated.pop(name, None)
        for value in puts:
            updated[value.name] = value
        self._pinned[address] = self._pinned.get(address, 0) + 1
        self._entries[address] = updated
        self._entries.move_to_end(address)
        self._evict()

    def settled(self, address: Address) -> None:
        """One of ``address``'s ``written`` steps is durable."""
        count = self._pinned.pop(address, 0) - 1
        if count > 0:
            self._pinned[address] = count
        else:
            self._evict()

    def __len__(self) -> int:
        return len(self._entries)
