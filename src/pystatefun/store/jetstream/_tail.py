"""A stream as it grows: every worker reads every record of every stream into its view.

On open, the tail reads every subject's last record (the whole live contents); then it goes on
with each new record as it is stored, in stream order. nats-py's ordered consumer does this,
and starts again after the last record it had whenever a message went missing or the
connection dropped, so nothing is skipped.

A worker's own records come back too: the view holds them already, since their
acknowledgement, and they are skipped, unless the committer had given up on their batch
(``_own_batches``: then they are read in like anyone's). Other workers' records go into the
view as they come: messages into mailboxes of this worker's partitions
(``on_arrival``), egress records any worker may pop, and partition markers (``on_marker``),
which say who owns what. Outbox records and relay marks of other workers go into the view too
(``on_outbox``: there may be something to relay). There is one tail per stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, final

from nats.js.api import DeliverPolicy

from pystatefun.store.jetstream._connection import StoredRecord, decode, held_of
from pystatefun.store.jetstream._layout import ClusterLayout
from pystatefun.store.jetstream._view import ClusterView

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext
    from nats.js.api import StreamInfo

__all__ = ["Tail"]

_log = logging.getLogger("pystatefun.store")


@final
class Tail:
    """Reads stream ``stream`` of ``layout`` into ``view``, from the live contents on;
    ``positions[stream]`` is the last sequence read (the list is every tail's)."""

    def __init__(
        self,
        js: JetStreamContext,
        layout: ClusterLayout,
        view: ClusterView,
        *,
        stream: int,
        positions: list[int],
        held: Callable[[str | None, int], bool],
        on_arrival: Callable[[int], None],
        on_outbox: Callable[[], None],
        on_marker: Callable[[int, StoredRecord], None],
        idle: Callable[[], bool],
    ) -> None:
        self._js = js
        self._layout = layout
        self._view = view
        self._stream = stream
        self._positions = positions
        self._held = held
        self._on_arrival = on_arrival
        self._on_outbox = on_outbox
        self._on_marker = on_marker
        self._idle = idle
        self._caught_up = asyncio.Event()
        self._subscription: JetStreamContext.PushSubscription | None = None

    async def start(self) -> None:
        """Subscribe, and return once the live contents are in the view."""
        name = self._layout.stream_name(self._stream)
        info: StreamInfo = await self._js.stream_info(name)
        if info.state.messages == 0:
            self._caught_up.set()
        self._subscription = await self._js.subscribe(
            f"{self._layout.prefix}.>",
            stream=name,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            cb=self._read,
        )
        await self._caught_up.wait()

    async def stop(self) -> None:
        if self._subscription is not None:  # None: it never started
            await self._subscription.unsubscribe()
            self._subscription = None

    async def _read(self, message: Msg) -> None:
        meta = message.metadata
        seq = meta.sequence.stream
        try:
            record = decode(message.subject, seq, message.data, message.headers)
            self._apply(record)
        except Exception:  # noqa: BLE001 - a record it cannot read stops nothing else
            _log.exception("cannot read record %d (%s) of the stream", seq, message.subject)
        positions = self._positions
        positions[self._stream] = max(positions[self._stream], seq)
        if meta.num_pending == 0:
            self._caught_up.set()
        if self._idle():
            self._view.passed(positions)

    @property
    def position(self) -> int:
        return self._positions[self._stream]

    def _apply(self, record: StoredRecord) -> None:
        layout = self._layout
        kind, partition = layout.parse(record.subject)
        if kind == "pm":
            self._on_marker(partition, record)
            return
        if self._held(record.batch, record.seq):
            return  # this worker's own: in the view since its acknowledgement
        global_id = layout.global_id(self._stream, record.seq)
        held = held_of(record, kind)
        applied = self._view.apply_newer(record.subject, global_id, held)
        if applied and kind == "in" and held is not None:
            self._on_arrival(partition)
        elif applied and kind == "ob" and held is not None:
            self._on_outbox()
