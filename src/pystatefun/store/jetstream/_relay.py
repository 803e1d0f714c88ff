"""Messages between streams: an outbox in the sender's stream, delivered once to the receiver's.

One atomic batch goes to one stream, so a step cannot append to a mailbox of another stream's
partition. It writes the message into its own partition's outbox instead (``ob.<p>.<id>``), in
the same batch as everything else it does: sent if and only if the step committed. The owner
of that partition relays the outbox in order: one batch into the receiving stream holds the
messages (``in`` records) and, per receiving partition, the mark ``rx.<q>.<p>``: up to which
outbox sequence of ``p`` is in ``q``'s mailboxes. The mark is fenced on its last sequence, so
two relays of the same outbox (a worker and one that took its partition over) cannot both
deliver: the second is refused, reads the mark, and skips what it covers. That is the
receiver's deduplication by source partition and sequence. Then the owner deletes the relayed
outbox records and writes ``rl.<p>.<q>`` (relayed and gone up to), fenced by its marker.

Only a partition's owner writes its outbox (steps of other workers' partitions only append to
mailboxes, in one stream), and a claim is fenced on the last marker the claimant's tail read,
which ends the previous owner's last batch: a new owner's view holds the partition's whole
outbox before it relays any of it, so a mark never passes a record not yet relayed.

A step that sent such a message commits when its own batch is stored; ``commit`` returns once
the message is in its mailbox too (``delivered``), so that what a step sent is visible from
then on, as with a message within one stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, final

from pystatefun.errors import ClusterStorageError
from pystatefun.store.jetstream._batch import Batch, Record
from pystatefun.store.jetstream._commits import Job
from pystatefun.store.jetstream._connection import BatchRefusedError
from pystatefun.store.jetstream._view import ClusterView, Mark

if TYPE_CHECKING:
    from pystatefun.store.contents import MessageContent
    from pystatefun.store.jetstream._layout import ClusterLayout
    from pystatefun.store.jetstream._writers import Writers

__all__ = ["Relay", "in_flight"]

_log = logging.getLogger("pystatefun.store")
#: How often the relay looks at its outboxes without being told (a safety net).
_POLL_S = 0.5
_PER_BATCH = 400  # messages per delivery: an atomic batch holds 1,000 records at most


@final
class _Entry:
    """An outbox record to relay: its id, partitions, outbox sequence and message."""

    __slots__ = ("global_id", "message", "raw", "source", "target")

    def __init__(self, layout: ClusterLayout, view: ClusterView, global_id: int) -> None:
        self.global_id = global_id
        self.message: MessageContent = view.outbox[global_id]
        self.source = layout.parse(view.subject_of[global_id])[1]
        self.raw = layout.locate(global_id)[1]
        self.target = layout.partition_of(self.message.target.id)


def _received(layout: ClusterLayout, view: ClusterView, entry: _Entry) -> bool:
    """Whether the receiver's mark covers ``entry``: it is in its mailbox already."""
    mark = layout.subject("rx", entry.target, str(entry.source))
    return view.marks.get(mark, 0) >= entry.raw


def in_flight(layout: ClusterLayout, view: ClusterView) -> list[MessageContent]:
    """The outbox messages that no mailbox holds yet, for a copy of the whole contents."""
    entries = (_Entry(layout, view, g) for g in list(view.outbox))
    return [e.message for e in entries if not _received(layout, view, e)]


@final
class Relay:
    """Relays the outboxes of the partitions in ``serving()`` (see the module's docstring)."""

    def __init__(
        self,
        layout: ClusterLayout,
        view: ClusterView,
        writers: Writers,
        *,
        serving: Callable[[], set[int]],
        arrival: Callable[[int], None],
    ) -> None:
        self._layout = layout
        self._view = view
        self._writers = writers
        self._serving = serving
        self._arrival = arrival
        self._waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        view.on_mark = self._marked

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="pystatefun-cluster-relay")

    async def stop(self) -> None:
        """Relay nothing more; whoever waits for a message is answered (it committed, and
        the partition's next owner relays it)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        for waiting in self._waiters.values():
            for _, future in waiting:
                if not future.done():
                    future.set_result(None)
        self._waiters.clear()

    def wake(self) -> None:
        self._wake.set()

    async def delivered(self, global_ids: list[int]) -> None:
        """Return once the outbox records ``global_ids`` are in their mailboxes."""
        layout, view = self._layout, self._view
        futures = []
        for global_id in global_ids:
            if global_id not in view.outbox:
                continue  # relayed and deleted already (deleted only once received)
            entry = _Entry(layout, view, global_id)
            if _received(layout, view, entry):
                continue
            future = asyncio.get_running_loop().create_future()
            mark = layout.subject("rx", entry.target, str(entry.source))
            self._waiters.setdefault(mark, []).append((entry.raw, future))
            futures.append(future)
        self.wake()
        if futures:
            await asyncio.gather(*futures)

    def _marked(self, subject: str, upto: int) -> None:
        waiting = self._waiters.get(subject)
        if not waiting:
            return
        still = []
        for raw, future in waiting:
            if raw > upto:
                still.append((raw, future))
            elif not future.done():
                future.set_result(None)
        if still:
            self._waiters[subject] = still
        else:
            del self._waiters[subject]

    # --- the loop ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_POLL_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while not self._stopping and await self._round():
                    pass
            except ClusterStorageError:
                return  # the worker commits nothing more; the partitions' next owners relay
            except BatchRefusedError:
                _log.info("another worker relayed an outbox meanwhile; looking again")
            except Exception as exc:  # noqa: BLE001 - the NATS servers away: the next round retries
                _log.warning("relaying messages between streams failed (%s); retrying", exc)

    async def _round(self) -> bool:
        """Relay what the served outboxes hold, then delete it; False if they were empty."""
        layout, view, serving = self._layout, self._view, self._serving()
        entries = [_Entry(layout, view, g) for g in list(view.outbox)]
        entries = [e for e in entries if e.source in serving]
        if not entries:
            return False
        by_stream: dict[int, list[_Entry]] = {}
        for entry in entries:
            by_stream.setdefault(layout.stream_of(entry.target), []).append(entry)
        for items in by_stream.values():
            for start in range(0, len(items), _PER_BATCH):
                await self._deliver(items[start : start + _PER_BATCH])
        by_source: dict[int, list[_Entry]] = {}
        for entry in entries:
            by_source.setdefault(layout.stream_of(entry.source), []).append(entry)
        for items in by_source.values():
            for start in range(0, len(items), _PER_BATCH):
                await self._clear(items[start : start + _PER_BATCH])
        return True

    async def _deliver(self, entries: list[_Entry]) -> None:
        """One batch into the receiving stream: what its marks do not cover yet, and the
        marks, each fenced on its last sequence."""
        layout, view = self._layout, self._view
        targets: set[int] = set()

        def build(batch: Batch) -> Callable[[int], None]:
            marks: dict[str, tuple[int, int]] = {}  # mark subject -> (outbox seq, partition)
            for entry in entries:
                if _received(layout, view, entry):
                    continue
                subject = layout.subject("in", entry.target, batch.token())
                batch.add([Record(subject, entry.message)], entry.target, fence_subjects=True)
                mark = layout.subject("rx", entry.target, str(entry.source))
                marks[mark] = (max(entry.raw, marks.get(mark, (0, 0))[0]), entry.target)
                targets.add(entry.target)
            for mark, (raw, partition) in marks.items():
                batch.add([Record(mark, Mark(raw))], partition, fence_subjects=True)
            return lambda first: None

        await self._writers.queue(Job(build, None, solo=True), entries[0].target)
        for partition in targets:
            self._arrival(partition)

    async def _clear(self, entries: list[_Entry]) -> None:
        """Delete relayed outbox records of partitions this worker still owns, with their
        ``rl`` marks, fenced by the partitions' markers."""
        layout, view = self._layout, self._view
        markers = self._writers.markers

        def build(batch: Batch) -> Callable[[int], None]:
            marks: dict[tuple[int, int], int] = {}
            for entry in entries:
                if entry.source not in markers or entry.global_id not in view.outbox:
                    continue  # released meanwhile (its next owner deletes it), or gone
                if not _received(layout, view, entry):
                    continue
                subject = view.subject_of[entry.global_id]
                batch.add([Record(subject, None)], entry.source)
                at = (entry.source, entry.target)
                marks[at] = max(entry.raw, marks.get(at, 0))
            for (source, target), raw in marks.items():
                batch.add([Record(layout.subject("rl", source, str(target)), Mark(raw))], source)
            return lambda first: None

        await self._writers.queue(Job(build, None), entries[0].source)
