"""``pystatefun cluster status`` shows partitions as compact ranges."""

from __future__ import annotations

from pystatefun.cli._cluster import ranges


def test_ranges_are_compact_and_sorted() -> None:
    assert ranges([9, *range(8), 13, 12]) == "0-7,9,12-13"
    assert ranges([4]) == "4"
    assert ranges([]) == "-"
