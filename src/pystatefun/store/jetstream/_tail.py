"""A stream as it grows, read into a worker's view: its shared records, and its partitions'.

A tail reads the records of one stream that match its filters: every partition's records of
the shared kinds (one tail per stream, for as long as the worker runs), or one partition's
records of the other kinds (one tail per partition the worker owns, from its claim until its
release). It first reads every matching subject's last record (the live contents), then goes
on with each new record as it is stored, in stream order. nats-py's ordered consumer does
this, and starts again after the last record it had whenever a message went missing or the
connection dropped, so nothing is skipped.

A worker's own records come back too: the view holds them already, since their
acknowledgement, and they are skipped, unless the committer had given up on their batch
(``_own_batches``: then they are read in like anyone's). Other workers' records go into the
view as they come: messages into mailboxes of this worker's partitions (``on_arrival``),
egress records any worker may pop, and partition markers (``on_marker``), which say who owns
what. Outbox records and relay receipts go into the view too (``on_outbox``: there may be
something to relay).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, final

from nats.js.api import ConsumerConfig, DeliverPolicy

from pystatefun.store.jetstream._connection import StoredRecord, decode, held_of
from pystatefun.store.jetstream._layout import ClusterLayout
from pystatefun.store.jetstream._own_batches import Reader
from pystatefun.store.jetstream._view import ClusterView

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

__all__ = ["Tail"]

_log = logging.getLogger("pystatefun.store")


@final
class Tail:
    """Reads the records of stream ``stream`` of ``layout`` that match ``filters`` into
    ``view``, from the live contents on. ``position`` is the last sequence it read;
    ``pending`` how many matching records were still to come when it read it."""

    def __init__(
        self,
        js: JetStreamContext,
        layout: ClusterLayout,
        view: ClusterView,
        *,
        stream: int,
        filters: list[str],
        own: Reader,
        on_arrival: Callable[[int], None],
        on_outbox: Callable[[], None],
        on_marker: Callable[[int, StoredRecord], None],
        on_passed: Callable[[], None],
    ) -> None:
        self._js = js
        self._layout = layout
        self._view = view
        self._stream = stream
        self._filters = filters
        self._own = own
        self._on_arrival = on_arrival
        self._on_outbox = on_outbox
        self._on_marker = on_marker
        self._on_passed = on_passed
        self.position = 0
        self.pending = 0
        self._caught_up = asyncio.Event()
        self._subscription: JetStreamContext.PushSubscription | None = None

    async def start(self) -> None:
        """Subscribe, and return once the live contents are in the view."""
        self._subscription = subscription = await self._js.subscribe(
            self._filters[0],
            stream=self._layout.stream_name(self._stream),
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
            config=ConsumerConfig(filter_subjects=self._filters),
            cb=self._read,
        )
        info = await subscription.consumer_info()
        if not info.num_pending and not (info.delivered and info.delivered.consumer_seq):
            self._caught_up.set()  # nothing matched: no record will say so
        await self._caught_up.wait()

    async def stop(self) -> None:
        self._own.close()
        if self._subscription is not None:  # None: it never started
            subscription, self._subscription = self._subscription, None
            await subscription.unsubscribe()

    async def _read(self, message: Msg) -> None:
        if self._subscription is None:
            return  # stopped: its partition's records may have been forgotten already
        meta = message.metadata
        seq = meta.sequence.stream
        try:
            record = decode(message.subject, seq, message.data, message.headers)
            self._apply(record)
        except Exception:  # noqa: BLE001 - a record it cannot read stops nothing else
            _log.exception("cannot read record %d (%s) of the stream", seq, message.subject)
        self.position = max(self.position, seq)
        self.pending = meta.num_pending
        if meta.num_pending == 0:
            self._caught_up.set()
        self._on_passed()

    def _apply(self, record: StoredRecord) -> None:
        layout = self._layout
        kind, partition = layout.parse(record.subject)
        if kind == "pm":
            self._on_marker(partition, record)
            return
        if self._own.held(record.batch, record.seq, record.batch_first):
            return  # this worker's own: in the view since its acknowledgement
        global_id = layout.global_id(self._stream, record.seq)
        held = held_of(record, kind)
        applied = self._view.apply_newer(record.subject, global_id, held)
        if applied and kind == "in" and held is not None:
            self._on_arrival(partition)
        elif applied and kind == "ob" and held is not None:
            self._on_outbox()
