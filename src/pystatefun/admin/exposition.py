"""An ``Observation`` in the Prometheus text format (``prometheus-client``'s families).

Every name starts with ``pystatefun_``; per function type metrics carry ``function_type``
(``namespace/type``). The reference of every name is docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from pystatefun.reading import Reading
from pystatefun.runtime.metrics import FunctionLoad, Histogram
from pystatefun.runtime.observation import Observation

__all__ = ["CONTENT_TYPE", "exposition"]

#: The content type of the text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_PREFIX = "pystatefun_"
_TYPE = ["function_type"]


def exposition(observation: Observation) -> bytes:
    """The text ``/metrics`` answers with."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(observation))
    return generate_latest(registry)


def _histogram(name: str, doc: str, labels: list[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(_PREFIX + name, doc, labels=labels)


def _add(family: HistogramMetricFamily, labels: list[str], histogram: Histogram) -> None:
    buckets = [("+Inf" if bound == float("inf") else repr(float(bound)), count)
               for bound, count in histogram.cumulative()]  # fmt: skip
    family.add_metric(labels, buckets, histogram.sum)


@final
class _Families(Collector):
    def __init__(self, observation: Observation) -> None:
        self._seen = observation

    def collect(self) -> Iterator[Metric]:
        yield from self._functions()
        yield from self._runtime()
        yield from _readings(self._seen.readings)

    def _functions(self) -> Iterator[Metric]:
        seen = self._seen
        counters = {
            "messages_in": "Messages the function type's invocations consumed.",
            "messages_out": "Messages and delayed messages its invocations sent to functions.",
            "egress_out": "Records its invocations sent to egresses.",
            "remote_failures": "Failed attempts to call its remote endpoint (each is retried).",
        }
        for field, doc in counters.items():
            family = CounterMetricFamily(f"{_PREFIX}function_{field}", doc, labels=_TYPE)
            for typename, counts in sorted(seen.functions.items()):
                family.add_metric([typename], getattr(counts, field))
            yield family
        gauges = {  # FunctionLoad field: (metric name, what it means)
            "backlog": ("backlog_messages", "Messages waiting in the function type's mailboxes."),
            "blocked": ("blocked_addresses", "Its addresses waiting to retry after a failure."),
            "in_flight": ("inflight_invocations", "Its invocations running now."),
        }
        types, idle = sorted({*seen.functions, *seen.load}), FunctionLoad(0, 0, 0)
        for field, (name, doc) in gauges.items():
            gauge = GaugeMetricFamily(f"{_PREFIX}function_{name}", doc, labels=_TYPE)
            for typename in types:
                gauge.add_metric([typename], getattr(seen.load.get(typename, idle), field))
            yield gauge
        latency = _histogram("function_remote_latency_seconds", "Each call to the function "
                             "type's remote endpoint, its retries included.", _TYPE)  # fmt: skip
        for typename, counts in sorted(seen.functions.items()):
            if counts.remote_latency.count:
                _add(latency, [typename], counts.remote_latency)
        yield latency

    def _runtime(self) -> Iterator[Metric]:
        seen = self._seen
        commit = _histogram("step_commit_seconds", "Each step the runtime commits, from its "
                            "commit to its being durable.", [])  # fmt: skip
        _add(commit, [], seen.step_commit)
        group = _histogram("group_commit_steps", "Steps per durable write of the store "
                           "(group commit).", [])  # fmt: skip
        _add(group, [], seen.group_commit)
        yield commit
        yield group
        simple = [
            Reading("state_cache_hits_total", "State reads the cache answered.", "counter",
                    seen.cache_hits),
            Reading("state_cache_misses_total", "State reads that went to the store.",
                    "counter", seen.cache_misses),
            Reading("dead_lettered_batches_total", "Batches of messages moved to the dead "
                    "letters.", "counter", seen.dead_lettered),
        ]  # fmt: skip
        if seen.dead_letters is not None:
            simple.append(Reading("dead_letters", "Dead letters stored, waiting for a re-drive "
                                  "or a delete.", "gauge", seen.dead_letters))  # fmt: skip
        if seen.delayed_pending is not None:
            simple.append(Reading("delayed_messages_pending", "Delayed messages waiting to "
                                  "fire.", "gauge", seen.delayed_pending))  # fmt: skip
        yield from _readings(simple)


def _readings(readings: Iterable[Reading]) -> Iterator[Metric]:
    """One family per name, with a sample per reading of it."""
    families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {}
    for reading in readings:
        family = families.get(reading.name)
        if family is None:
            keys = [key for key, _ in reading.labels]
            kind = CounterMetricFamily if reading.kind == "counter" else GaugeMetricFamily
            family = families[reading.name] = kind(_PREFIX + reading.name, reading.doc,
                                                   labels=keys)  # fmt: skip
        family.add_metric([value for _, value in reading.labels], reading.value)
    yield from families.values()
