"""``Reading``: one figure that a connector or a storage engine reports for the metrics.

The runtime's own counters are in ``pystatefun.runtime.metrics``; what only a connector knows
(requests by status, consumer lag) or only an engine knows (its file's size, the cluster
partitions it owns) it reports as readings, taken when ``/metrics`` is scraped. Neither side
depends on Prometheus: the admin port turns readings into metric families.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, final

__all__ = ["Reading"]


@final
@dataclass(frozen=True, slots=True)
class Reading:
    """A figure for the metrics (``/metrics``): its ``name`` (after the ``pystatefun_``
    prefix; a counter's ends in ``_total``), what it means, whether it only grows
    (``counter``) or goes up and down (``gauge``), and its labels."""

    name: str
    doc: str
    kind: Literal["counter", "gauge"]
    value: float
    labels: tuple[tuple[str, str], ...] = ()
