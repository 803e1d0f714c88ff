"""The web console's live figures (``GET /api/overview``, ``GET /api/functions``) as JSON.

Counters are cumulative and histograms come as their buckets, exactly as ``/metrics`` has
them: the page keeps the last minutes of polls and computes rates and percentiles from the
difference between two of them. The server keeps nothing per viewer, so any number of open
consoles (and Prometheus) see the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable

from pystatefun.runtime.metrics import LATENCY_BOUNDS_S, FunctionLoad, Histogram
from pystatefun.runtime.observation import Observation

__all__ = ["Json", "functions", "histogram", "overview"]

#: A JSON document, as ``json.dumps`` takes it.
Json = dict[str, object]


def histogram(seen: Histogram) -> Json:
    """A histogram's buckets: ``bounds`` (upper, the last one unbounded and left out),
    ``counts`` per bucket (not cumulative; one more than ``bounds``), ``count`` and ``sum``."""
    return {"bounds": list(seen.bounds), "counts": list(seen.counts), "count": seen.count,
            "sum": seen.sum}  # fmt: skip


def _merged(histograms: Iterable[Histogram]) -> Histogram:
    total = Histogram(LATENCY_BOUNDS_S)
    for one in histograms:
        total.counts = [a + b for a, b in zip(total.counts, one.counts, strict=True)]
        total.sum += one.sum
        total.count += one.count
    return total


def overview(seen: Observation, *, ready: tuple[bool, str], now_ms: int) -> Json:
    """The runtime as a whole: what its function types did since it started, what waits now."""
    counts, load = seen.functions.values(), seen.load.values()
    return {
        "at_ms": now_ms,
        "ready": ready[0],
        "phase": ready[1],
        "messages_in": sum(c.messages_in for c in counts),
        "messages_out": sum(c.messages_out for c in counts),
        "egress_out": sum(c.egress_out for c in counts),
        "remote_failures": sum(c.remote_failures for c in counts),
        "latency": histogram(_merged(c.remote_latency for c in counts)),
        "commits": seen.step_commit.count,
        "step_commit": histogram(seen.step_commit),
        "backlog": sum(one.backlog for one in load),
        "blocked": sum(one.blocked for one in load),
        "in_flight": sum(one.in_flight for one in load),
        "dead_letters": seen.dead_letters,
        "dead_lettered": seen.dead_lettered,
        "delayed_pending": seen.delayed_pending,
    }


def functions(seen: Observation, *, now_ms: int) -> Json:
    """Per function type (every type that ran or waits), its counters and its load now."""
    idle = FunctionLoad(0, 0, 0)
    rows: list[Json] = []
    for typename in sorted({*seen.functions, *seen.load}):
        counts, load = seen.functions.get(typename), seen.load.get(typename, idle)
        rows.append({
            "type": typename,
            "messages_in": 0 if counts is None else counts.messages_in,
            "messages_out": 0 if counts is None else counts.messages_out,
            "egress_out": 0 if counts is None else counts.egress_out,
            "remote_failures": 0 if counts is None else counts.remote_failures,
            "latency": histogram(counts.remote_latency if counts else Histogram(LATENCY_BOUNDS_S)),
            "backlog": load.backlog,
            "blocked": load.blocked,
            "in_flight": load.in_flight,
        })  # fmt: skip
    return {"at_ms": now_ms, "functions": rows}
