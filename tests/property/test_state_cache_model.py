"""The state cache against a model: it stays within its bound, and a value written by a step that
is not durable yet (pinned) is never evicted or lost, whatever else is read and written.

A pinned entry is the only copy of state the disk does not have yet (an embedded function's
speculative step): evicting it would make the next invocation read older state from disk.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pystatefun.runtime.statecache import StateCache
from pystatefun.store import Payload, StateValue
from pystatefun.types import Address

ADDRESSES = st.sampled_from([Address("ns", "fn", str(n)) for n in range(6)])
MAX = 3


def _value(n: int) -> dict[str, StateValue]:
    return {"v": StateValue("v", Payload("ns/T", bytes([n])), 0, 0, None)}


class StateCacheModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cache = StateCache(MAX)
        self.pins: dict[Address, int] = {}  # steps not durable yet, per address
        self.latest: dict[Address, dict[str, StateValue]] = {}  # what pinned entries must hold
        self.counter = 0

    def _next(self) -> dict[str, StateValue]:
        self.counter = (self.counter + 1) % 256
        return _value(self.counter)

    @rule(address=ADDRESSES)
    def read_from_disk(self, address: Address) -> None:
        """A miss reads the disk and puts it (the runtime does this only on a miss)."""
        if self.cache.get(address) is None:
            self.cache.put(address, self._next())

    @rule(address=ADDRESSES)
    def commit_after_the_disk(self, address: Address) -> None:
        values = self._next()
        self.cache.committed(address, list(values.values()), [])
        if address in self.pins:
            self.latest[address] = values

    @rule(address=ADDRESSES)
    def write_speculatively(self, address: Address) -> None:
        before = self.cache.get(address) or {}
        values = self._next()
        self.cache.written(address, before, list(values.values()), [])
        self.pins[address] = self.pins.get(address, 0) + 1
        self.latest[address] = values

    @precondition(lambda self: bool(self.pins))
    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        address = data.draw(st.sampled_from(sorted(self.pins)))
        self.cache.settled(address)
        self.pins[address] -= 1
        if not self.pins[address]:
            del self.pins[address]
            del self.latest[address]

    @invariant()
    def pinned_values_are_never_lost(self) -> None:
        for address, values in self.latest.items():
            assert self.cache.get(address) == values, address

    @invariant()
    def the_bound_holds_but_for_pinned_entries(self) -> None:
        assert len(self.cache) <= max(MAX, len(self.pins))


StateCacheModel.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None
)
test_the_state_cache_keeps_pinned_values_and_its_bound = StateCacheModel.TestCase
