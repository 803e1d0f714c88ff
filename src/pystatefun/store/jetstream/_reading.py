"""Reading a whole cluster from outside, as of one consistent cut of its streams.

One stream read to where nothing is pending is that stream as of its last record, a batch
boundary. Several streams are read at once, each to its own last record; that is one
consistent state unless a message crossed between two of them within the read. The relay
marks say whether one did (``_relay``): a receiver that holds a message from beyond what its
sender's read covers (``rx`` past the sender's cut), or a sender that deleted relayed
messages its receiver's read does not hold yet (``rl`` past the receiver's ``rx``), makes the
cut torn, and it is read again. Outbox records that their receiver's mark does not cover are
messages in flight: they are in the copy as their mailboxes' messages.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from pystatefun.errors import ClusterStorageError
from pystatefun.store.contents import Contents
from pystatefun.store.jetstream._connection import held_of, read_live
from pystatefun.store.jetstream._relay import in_flight
from pystatefun.store.jetstream._view import ClusterView

if TYPE_CHECKING:
    from nats.js import JetStreamContext

    from pystatefun.store.jetstream._layout import ClusterLayout

__all__ = ["read_contents", "read_cut", "torn"]

#: How long a reader tries for a cut that no message crossed.
_READ_DEADLINE_S = 30.0


async def read_cut(js: JetStreamContext, layout: ClusterLayout) -> tuple[ClusterView, list[int]]:
    """Every stream's live records in one view, and the last sequence read of each."""
    view = ClusterView(layout.key_groups, layout.streams)
    names = layout.stream_names
    reads = await asyncio.gather(*(read_live(js, name, f"{layout.prefix}.>") for name in names))
    cuts = []
    for stream, records in enumerate(reads):
        for record in records:
            kind = layout.parse(record.subject)[0]
            if kind != "pm":
                global_id = layout.global_id(stream, record.seq)
                view.apply(record.subject, global_id, held_of(record, kind))
        cuts.append(max((record.seq for record in records), default=0))
    return view, cuts


def torn(layout: ClusterLayout, view: ClusterView, cuts: list[int]) -> str | None:
    """Why the cut ``cuts`` is not one state of the cluster (None: it is)."""
    for subject, upto in view.marks.items():
        kind, partition = layout.parse(subject)
        other = int(subject.rsplit(".", 1)[1])
        if kind == "rx" and upto > cuts[layout.stream_of(other)]:
            return f"partition {partition} holds messages that partition {other} sent later"
        if kind == "rl":
            received = view.marks.get(layout.subject("rx", other, str(partition)), 0)
            if upto > received:
                return f"partition {partition} deleted messages not yet read in {other}"
    return None


async def read_contents(js: JetStreamContext, layout: ClusterLayout) -> Contents:
    """Every record of the cluster as of one consistent cut (workers may go on committing)."""
    give_up = time.monotonic() + _READ_DEADLINE_S
    while True:
        view, cuts = await read_cut(js, layout)
        why = torn(layout, view, cuts)
        if why is None:
            return view.contents(in_flight(layout, view))
        if time.monotonic() > give_up:
            raise ClusterStorageError(
                f"cluster {layout.name!r}: no consistent read in {_READ_DEADLINE_S:.0f} s: "
                f"messages kept crossing between streams while they were read ({why}); try "
                "again when the cluster is less busy"
            )
        await asyncio.sleep(0.05)
