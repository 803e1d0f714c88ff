"""Publishing steps into one stream: group commit, claims and releases, lost acknowledgements.

Each stream of the cluster has its committer (``_writers``). One task publishes; everything
queued while a batch is in flight goes into the next one, in queue order, up to the batch
limit. A batch the server refused because a marker moved means
another worker claimed that partition: nothing of it was stored, and this worker stops
committing (a later step may depend on the refused one). A *solo* job (a claim, a release, an
egress record popped, a step fenced on one subject of another worker's partition) is published
alone, and a refusal is its own answer (``BatchRefusedError``), not the worker's end. A batch
that got no acknowledgement is looked up by its first marker (or its first record), which
names the batch that last wrote it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, final

from pystatefun.errors import ClusterStorageError
from pystatefun.store.engine import EngineStatistics
from pystatefun.store.jetstream._batch import Batch, Record, StepTooLargeError, writes_of
from pystatefun.store.jetstream._connection import (
    UNREACHABLE,
    BatchRefusedError,
    BatchTimeoutError,
    ensure_stream,
    last_on,
    publish_batch,
)
from pystatefun.store.jetstream._layout import ClusterLayout
from pystatefun.store.jetstream._own_batches import OwnBatches
from pystatefun.store.jetstream._view import ClusterView
from pystatefun.store.steps import Step, StepOutcome

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

__all__ = ["Committer", "Job"]

_log = logging.getLogger("pystatefun.store")
#: A publish that failed this way may have been stored, or not: look it up, then retry.
_RETRYABLE: tuple[type[BaseException], ...] = (BatchTimeoutError, *UNREACHABLE)


@final
@dataclass(slots=True)
class Job:
    """Work for one batch: ``build`` adds its records and returns how to finish it once the
    batch's first sequence is known (or, for a refused step, its outcome at once)."""

    build: Callable[[Batch], Any]
    step: Step | None
    solo: bool = False
    future: asyncio.Future[Any] = field(init=False)


@final
class Committer:
    """The one writer of a worker's partitions of stream ``stream``."""

    def __init__(
        self,
        nc: Client,
        layout: ClusterLayout,
        view: ClusterView,
        *,
        stream: int,
        markers: dict[int, int],
        worker: str,
        instance: str,
        clock_ms: Callable[[], int],
        provisional: dict[int, str],
        batch_limit: int,
        publish_timeout: float,
        commit_deadline: float,
    ) -> None:
        self._nc = nc
        self._layout = layout
        self._view = view
        self.stream = stream
        self._stream_name = layout.stream_name(stream)
        self._worker = worker
        self.instance = instance
        self.own = OwnBatches(instance)  # what its stream's tail reads of this worker's batches
        self._clock_ms = clock_ms
        self._provisional = provisional
        self._limit = batch_limit
        self._timeout = publish_timeout
        self._deadline = commit_deadline
        self.markers = markers  # partition -> its marker's sequence (shared by the streams)
        self._waiting: list[Job] = []
        self._applying: list[Job] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._failed: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._batches = 0
        self._steps = 0
        self._group_sizes: Counter[int] = Counter()

    # --- the stream, claims and releases -----------------------------------------------------

    async def start(self, js: JetStreamContext, *, replicas: int) -> None:
        """Make the stream if new, and start publishing."""
        subjects = self._layout.stream_subjects(self.stream)
        await ensure_stream(js, name=self._stream_name, subjects=subjects, replicas=replicas)
        self._task = asyncio.create_task(self._loop(), name="pystatefun-cluster-committer")

    def _marker_body(self, batch_id: str, *, released: bool = False) -> bytes:
        body: dict[str, str | bool] = {"worker": self._worker, "instance": self.instance,
                                       "batch": batch_id}  # fmt: skip
        if released:
            body["released"] = True
        return json.dumps(body).encode()

    async def claim(self, expected: dict[int, int]) -> bool:
        """Claim the partitions of ``expected``, each fenced on the marker sequence given (0:
        none yet); False if any marker moved meanwhile (nothing was claimed)."""
        return await self._markers_job(expected, released=False)

    async def release(self, partitions: set[int]) -> None:
        """Mark ``partitions`` released, after every step queued before: their next owner
        claims them without waiting for this worker's lease to run out."""
        await self._markers_job({p: self.markers[p] for p in partitions}, released=True)

    async def _markers_job(self, expected: dict[int, int], *, released: bool) -> bool:
        layout = self._layout
        records = [Record(layout.marker(p), None, expect_seq=seq) for p, seq in expected.items()]

        def build(batch: Batch) -> Callable[[int], None]:
            batch.released = released
            batch.add(records, -1)

            def finish(first: int) -> None:
                for n, partition in enumerate(expected):
                    if released:
                        self.markers.pop(partition, None)
                    else:
                        self.markers[partition] = first + n

            return finish

        try:
            await self.queue(Job(build, None, solo=True))
        except BatchRefusedError as exc:
            if not exc.wrong_sequence:
                raise ClusterStorageError(f"cluster {layout.name!r}: {exc}") from exc
            return False
        return True

    # --- queueing ----------------------------------------------------------------------------

    def queue(self, job: Job) -> asyncio.Future[Any]:
        if self._failed is not None:
            raise ClusterStorageError(self._failed)
        job.future = asyncio.get_running_loop().create_future()
        self._waiting.append(job)
        self._wake.set()
        return job.future

    @property
    def busy(self) -> bool:
        """Whether a batch is being published (its acknowledgement not applied yet)."""
        return bool(self._applying)

    @property
    def backlog(self) -> int:
        return len(self._waiting) + len(self._applying)

    def undurable_consumed(self) -> Iterable[int]:
        for job in (*self._applying, *self._waiting):
            if job.step is not None:
                yield from job.step.consumed

    def statistics(self) -> EngineStatistics:
        return EngineStatistics(
            self._batches, self._steps, tuple(sorted(self._group_sizes.items()))
        )

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._task is not None:
            self._closing = True
            self._wake.set()
            await self._task
            self._task = None

    # --- the loop ----------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting and self._failed is None:
                try:
                    await self._commit_next()
                except ClusterStorageError as exc:
                    self.fail(exc.message)
                except Exception as exc:  # noqa: BLE001 - never a silent end: waiting steps would hang
                    _log.exception("committing failed")
                    self.fail(f"cluster {self._layout.name!r}: committing failed "
                              f"({type(exc).__name__}: {exc}); this worker commits nothing more. "
                              "Restart it to recover from the last commit.")  # fmt: skip
            if self._closing:
                return

    def fail(self, reason: str) -> None:
        """Commit nothing more: every waiting job fails with ``reason``."""
        self._failed = reason
        _log.error("%s", reason)
        failed = [*self._applying, *self._waiting]
        self._applying, self._waiting = [], []
        for job in failed:
            if not job.future.done():
                job.future.set_exception(ClusterStorageError(reason))

    async def _commit_next(self) -> None:
        batch = Batch(self._layout, self._view, markers=self.markers,
                      provisional=self._provisional, now_ms=self._clock_ms(),
                      limit=self._limit, id_prefix=self.instance, stream=self.stream)  # fmt: skip
        finishing: list[tuple[Job, Callable[[int], Any]]] = []
        while self._waiting:
            job = self._waiting[0]
            size = 1 if job.step is None else writes_of(job.step)
            if finishing and (job.solo or finishing[0][0].solo):
                break  # a solo job is published alone
            if finishing and not batch.room_for(size, 0) and len(batch) + size >= self._limit:
                break
            self._waiting.pop(0)
            try:
                if job.step is not None:
                    batch.check_size(job.step)
                result = job.build(batch)
            except StepTooLargeError as exc:
                job.future.set_result(StepOutcome(committed=False, error=str(exc)))
                continue
            if isinstance(result, StepOutcome):
                job.future.set_result(result)
            else:
                finishing.append((job, result))
        self._applying = [job for job, _ in finishing]
        try:
            first = await self._publish(batch) if batch.records else 0
        except BatchRefusedError as exc:  # only a solo job's refusal comes this far
            self._applying = []
            if not finishing[0][0].future.done():
                finishing[0][0].future.set_exception(exc)
            return
        self._applying = []
        self._batches += 1
        self._steps += len(finishing)
        self._group_sizes[len(finishing)] += 1
        for job, finish in finishing:
            if not job.future.done():
                job.future.set_result(finish(first))

    async def _publish(self, batch: Batch) -> int:
        """Publish ``batch`` until it is stored; the sequence of its first record."""
        messages = batch.messages()
        kind_of = {r.subject: self._layout.parse(r.subject)[0] for r in messages}
        ids: list[str] = []
        self.own.publishing(ids)
        try:
            last = await self._attempt(batch, messages, kind_of, ids)
        finally:
            self.own.published()
        first = last - len(messages) + 1
        records, view = batch.records, self._view
        global_id, parse = self._layout.global_id, self._layout.parse
        for n, record in enumerate(records):
            kind, partition = parse(record.subject)
            if kind != "pm" and view.holds(kind, partition):
                view.apply_newer(record.subject, global_id(self.stream, first + n),
                                 record.content)  # fmt: skip
        for n, partition in enumerate(sorted(batch.partitions)):
            self.markers[partition] = first + len(records) + n
        self.own.applied(batch.id, last)
        return first

    async def _attempt(
        self, batch: Batch, messages: list[Record], kind_of: dict[str, str], ids: list[str]
    ) -> int:
        """Publish until one attempt (its id appended to ``ids``) is stored; its last
        sequence."""
        give_up = time.monotonic() + self._deadline
        delay = 0.05
        while True:
            ids.append(batch.id if not ids else f"{batch.id}r{len(ids)}")  # still this worker's
            try:
                body = self._marker_body(ids[-1], released=batch.released)
                last = await publish_batch(self._nc, messages, batch_id=ids[-1], kind_of=kind_of,
                                           marker_body=body, timeout=self._timeout)  # fmt: skip
                break
            except BatchRefusedError as exc:
                # A refusal is the server's answer for this attempt: it was not stored. Only
                # an earlier attempt, whose acknowledgement was lost, may have been.
                found = await self._stored_as(batch, ids) if len(ids) > 1 else None
                if found is not None:
                    last = found
                    break
                if not batch.partitions:  # fenced on subjects only: a solo job's answer
                    raise
                raise await self._refused(batch, exc) from exc
            except _RETRYABLE as exc:
                found = await self._stored_as(batch, ids, quiet=True)
                if found is not None:
                    last = found
                    break
                if time.monotonic() > give_up:
                    raise ClusterStorageError(
                        f"cluster {self._layout.name!r}: no commit was acknowledged for "
                        f"{self._deadline:.0f} s ({type(exc).__name__}: {exc}); this worker "
                        "commits nothing more. Check the NATS servers, then restart it."
                    ) from exc
                _log.warning("a commit got no acknowledgement (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        return last

    async def _stored_as(self, batch: Batch, ids: list[str], *, quiet: bool = False) -> int | None:
        """The last sequence of ``batch`` if one of its attempts (``ids``) was stored: its
        first marker (or, fenced on subjects only, its first record) names the batch that
        wrote it last."""
        seen = self.own.first_seen()  # the tail read it: stored, for certain
        if seen is not None:
            return seen + len(batch.messages()) - 1
        partitions = sorted(batch.partitions)
        layout = self._layout
        subject = layout.marker(partitions[0]) if partitions else batch.records[0].subject
        js = self._nc.jetstream(timeout=self._timeout)
        try:
            found = await last_on(js, self._stream_name, subject)
        except _RETRYABLE:
            if quiet:
                return None
            raise
        if found is None or found.batch not in ids:
            return None
        if partitions:
            return found.seq + len(partitions) - 1
        return found.seq + len(batch.messages()) - 1

    async def _refused(self, batch: Batch, exc: BatchRefusedError) -> ClusterStorageError:
        name = self._layout.name
        if not exc.wrong_sequence:
            return ClusterStorageError(f"cluster {name!r}: a commit was refused ({exc})")
        js = self._nc.jetstream(timeout=self._timeout)
        for partition in sorted(batch.partitions):
            marker = await last_on(js, self._stream_name, self._layout.marker(partition))
            owner = None if marker is None or marker.body is None else marker.body.get("worker")
            if marker is not None and marker.seq != self.markers.get(partition, 0):
                return ClusterStorageError(
                    f"cluster {name!r}: partition {partition} was taken over by worker "
                    f"{owner!r}; this worker commits nothing more. Restart it to rejoin the "
                    "cluster."
                )
        return ClusterStorageError(f"cluster {name!r}: a commit was refused ({exc})")
