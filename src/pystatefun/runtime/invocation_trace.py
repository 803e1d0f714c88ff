"""``invocation_span``: the span of one batch's invocation, when tracing is on.

Its parent is the trace context of the batch's first traced message, and the other messages'
contexts are its links: a batch answers messages of several traces at once, and a span has one
parent. ``Commits`` ends the ``commit`` span it starts under it once the step is durable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pystatefun.runtime.mailboxes import Batch
from pystatefun.types import Address

if TYPE_CHECKING:  # OpenTelemetry is imported only when traces are asked for
    from pystatefun.tracing import Tracer, TraceSpan

__all__ = ["invocation_span"]


def invocation_span(
    tracer: Tracer | None, address: Address, batch: Batch, *, remote: bool
) -> TraceSpan | None:
    """The ``invoke`` span of ``batch`` (None: tracing is off)."""
    if tracer is None:
        return None
    traces = [m.trace for m in batch.messages if m.trace is not None]
    return tracer.start(
        f"invoke {address.typename}",
        parent=traces[0] if traces else None,
        kind="client" if remote else "internal",
        attributes={"pystatefun.address": str(address), "pystatefun.batch": len(batch.messages)},
        links=traces[1:],
    )
