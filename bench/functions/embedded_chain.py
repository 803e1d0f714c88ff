"""Functions for bench/embedded.py: a chain of function types that pass a message along.

Every hop updates the address's state (a counter) and sends the message on to the next type
with the same id, until the message has made its hops. The message carries the monotonic time
it was sent, so the receiver can record the hop's latency: send, commit, deliver, invoke. The
functions run embedded (in the runtime's process, so one clock) or remote; ``bench/call_cost.py``
calls them one hop at a time, by request-reply, in all three deployment modes.
"""

from __future__ import annotations

import struct
import time

from pystatefun.sdk import (
    Context,
    IntType,
    Message,
    StatefulFunctions,
    ValueSpec,
    message_builder,
    simple_type,
)

TYPES = 4  # chain/f0 .. chain/f3, then back to chain/f0
_HOP = struct.Struct("<iq")  # hops left, monotonic ns when sent
HOP = simple_type("bench/Hop", serialize_fn=lambda v: _HOP.pack(*v), deserialize_fn=_HOP.unpack)

functions = StatefulFunctions()
#: Hop latencies in ns, when sampling is on (embedded runs only: one process, one clock).
latencies_ns: list[int] = []
sampling = [False]
invocations = [0]


def _hop(context: Context, message: Message) -> None:
    hops_left, sent_ns = message.as_type(HOP)
    now = time.monotonic_ns()
    invocations[0] += 1
    if sampling[0] and sent_ns:
        latencies_ns.append(now - sent_ns)
    count = context.storage.count = (context.storage.count or 0) + 1
    caller = context.caller
    if caller is not None and caller.namespace == "io.pystatefun":  # bench/call_cost.py's call
        context.send(message_builder(caller.typename, caller.id, int_value=count))
    if hops_left > 0:
        index = int(context.address.name[1:])
        target = f"chain/f{(index + 1) % TYPES}"
        context.send(_message(target, context.address.id, hops_left - 1, now))


def _message(target: str, target_id: str, hops_left: int, sent_ns: int) -> Message:
    return message_builder(target, target_id, value=(hops_left, sent_ns), value_type=HOP)


for _index in range(TYPES):
    functions.register(f"chain/f{_index}", _hop, [ValueSpec("count", IntType)])
