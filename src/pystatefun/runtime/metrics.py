"""What the runtime counts for its metrics (``/metrics`` on the admin port).

The hot path only adds to plain integers and histogram buckets here: no label lookup, no lock
(the runtime is one event loop), nothing formatted. The admin port's collector
(``pystatefun.admin.collector``) turns these into Prometheus metric families when it is
scraped, together with what is only computed then (backlogs, blocked addresses, store size).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple, final

from pystatefun.runtime.replies import is_reply_address
from pystatefun.store import NewTimer, Step, StepOutcome, StorageEngine

if TYPE_CHECKING:
    from pystatefun.runtime.mailboxes import Mailbox
    from pystatefun.types import Address

__all__ = [
    "GROUP_SIZE_BOUNDS",
    "LATENCY_BOUNDS_S",
    "FunctionCounts",
    "FunctionLoad",
    "Histogram",
    "RuntimeMetrics",
    "bucketed",
    "load_by_type",
    "timed_commit",
]

#: Upper bounds (seconds) of the latency histograms' buckets: a commit on SQLite takes about
#: half a millisecond, a remote call a few, a slow one seconds.
LATENCY_BOUNDS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    2.5, 5.0, 10.0)  # fmt: skip
#: Upper bounds of the group-commit histogram's buckets: steps per durable write.
GROUP_SIZE_BOUNDS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@final
class Histogram:
    """Observations counted into buckets with the upper bounds ``bounds`` (and one more,
    unbounded), with their sum: what a Prometheus histogram exposes."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> Iterator[tuple[float, int]]:
        """Each bucket's upper bound (the last: infinity) and how many were at most that."""
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            yield bound, total


def bucketed(sizes: dict[int, int], bounds: Sequence[float]) -> Histogram:
    """A histogram of ``sizes`` (size -> how many times), as an engine counts them."""
    histogram = Histogram(bounds)
    for size, times in sizes.items():
        histogram.counts[bisect_left(histogram.bounds, size)] += times
        histogram.sum += size * times
        histogram.count += times
    return histogram


@final
class FunctionCounts:
    """One function type's counters, since the runtime started."""

    __slots__ = ("egress_out", "messages_in", "messages_out", "remote_failures", "remote_latency")

    def __init__(self) -> None:
        self.messages_in = 0  # messages its invocations consumed (committed ones)
        self.messages_out = 0  # messages and delayed messages its invocations sent to functions
        self.egress_out = 0  # records its invocations sent to egresses
        self.remote_failures = 0  # failed attempts to call its remote endpoint
        self.remote_latency = Histogram(LATENCY_BOUNDS_S)  # each remote call, retries included

    def invoked(self, consumed: int, step: Step) -> None:
        """An invocation that consumed ``consumed`` messages committed ``step`` (whose replies
        to request-reply callers the commit took out of ``step.messages``: not messages to
        functions)."""
        self.messages_in += consumed
        delayed = sum(1 for op in step.timer_ops if isinstance(op, NewTimer))
        self.messages_out += len(step.messages) + delayed
        self.egress_out += len(step.egress)


@final
class FunctionLoad(NamedTuple):
    """One function type's load this instant: messages waiting in its mailboxes, addresses
    blocked (waiting to retry after a failure, or for good), invocations running."""

    backlog: int
    blocked: int
    in_flight: int


@final
class RuntimeMetrics:
    """The runtime's counters: per function type, and runtime-wide."""

    def __init__(self) -> None:
        self.functions: dict[str, FunctionCounts] = {}
        self.step_commit = Histogram(LATENCY_BOUNDS_S)  # from commit asked to durable
        self.dead_letters = 0  # batches dead-lettered

    def function(self, typename: str) -> FunctionCounts:
        """The counters of function type ``typename`` (``namespace/type``)."""
        counts = self.functions.get(typename)
        if counts is None:
            counts = self.functions[typename] = FunctionCounts()
        return counts


def load_by_type(
    mailboxes: Iterable[tuple[Address, Mailbox]],
    *,
    blocked: Iterable[Address],
    running: Iterable[Address],
) -> dict[str, FunctionLoad]:
    """Per function type, its load this instant: what waits in ``mailboxes`` (request-reply
    callers' are not functions), the ``blocked`` and ``running`` addresses."""
    backlog: Counter[str] = Counter()
    for address, mailbox in mailboxes:
        if not is_reply_address(address):
            backlog[address.typename] += mailbox.waiting()
    parked = Counter(address.typename for address in blocked)
    busy = Counter(address.typename for address in running)
    return {typename: FunctionLoad(backlog[typename], parked[typename], busy[typename])
            for typename in sorted({*backlog, *parked, *busy})}  # fmt: skip


async def timed_commit(store: StorageEngine, step: Step, latency: Histogram) -> StepOutcome:
    """``store.commit(step)``, with how long it took observed in ``latency``: every step the
    runtime commits counts (ingress appends, invocations, delayed messages, dead letters)."""
    started = time.monotonic()
    try:
        return await store.commit(step)
    finally:
        latency.observe(time.monotonic() - started)
