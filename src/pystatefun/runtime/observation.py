"""``Observation``: the runtime's figures at one instant, as ``/metrics`` shows them.

Taken when the admin port is scraped (``Runtime.observe``): the counters the runtime keeps as
it goes (``RuntimeMetrics``), what is only counted then (backlogs, blocked addresses, pending
delayed messages, stored dead letters), and the readings of the store and the connectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from pystatefun.reading import Reading
from pystatefun.runtime.metrics import FunctionCounts, FunctionLoad, Histogram

__all__ = ["Observation"]


@final
@dataclass(frozen=True, slots=True)
class Observation:
    """The runtime's figures at one instant (``None``: the store could not be asked, as
    while it opens or closes)."""

    functions: dict[str, FunctionCounts]  # by function type, since the start
    load: dict[str, FunctionLoad]  # by function type, now
    step_commit: Histogram  # seconds from each step's commit to its being durable
    group_commit: Histogram  # steps per durable write
    cache_hits: int
    cache_misses: int
    dead_lettered: int  # batches moved to the dead letters since the start
    delayed_pending: int | None  # delayed messages waiting to fire
    dead_letters: int | None  # dead letters stored
    readings: tuple[Reading, ...]  # the store's and the connectors' own
