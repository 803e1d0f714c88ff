"""The state cache: bounded by addresses, least recently used out first, and updated only by
committed writes."""

from __future__ import annotations

from pystatefun.runtime.statecache import StateCache
from pystatefun.store import Payload, StateValue
from pystatefun.types import Address


def _value(name: str, data: bytes) -> StateValue:
    return StateValue(name, Payload("io.statefun.types/int", data), 0, 0, None)


def test_the_least_recently_used_address_is_evicted() -> None:
    cache = StateCache(max_addresses=2)
    a, b, c = (Address("n", "t", i) for i in "abc")
    cache.put(a, {})
    cache.put(b, {})
    assert cache.get(a) == {}  # a is now more recent than b
    cache.put(c, {})
    assert (cache.get(b), cache.get(a) is not None, len(cache)) == (None, True, 2)
    assert (cache.hits, cache.misses) == (2, 1)


def test_committed_writes_apply_to_cached_addresses_only() -> None:
    cache = StateCache(max_addresses=10)
    cached, other = Address("n", "t", "1"), Address("n", "t", "2")
    before = {"x": _value("x", b"\x01"), "y": _value("y", b"\x02")}
    cache.put(cached, before)
    cache.committed(cached, [_value("x", b"\x09")], ["y"])
    cache.committed(other, [_value("x", b"\x09")], [])
    assert cache.get(cached) == {"x": _value("x", b"\x09")}
    assert before == {"x": _value("x", b"\x01"), "y": _value("y", b"\x02")}  # not mutated
    assert cache.get(other) is None


def test_a_zero_sized_cache_keeps_nothing() -> None:
    cache = StateCache(max_addresses=0)
    cache.put(Address("n", "t", "1"), {})
    assert cache.get(Address("n", "t", "1")) is None


def test_forgotten_addresses_are_read_again() -> None:
    """A cluster partition that moved away: its addresses' values may go stale here."""
    cache = StateCache(10)
    moved, kept = Address("t", "f", "moved"), Address("t", "f", "kept")
    cache.put(moved, {"n": _value("n", b"\x08\x01")})
    cache.put(kept, {"n": _value("n", b"\x08\x02")})
    cache.forget(lambda address: address.id == "moved")
    assert cache.get(moved) is None
    assert cache.get(kept) == {"n": _value("n", b"\x08\x02")}
