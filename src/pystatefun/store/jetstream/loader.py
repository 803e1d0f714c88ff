"""Bulk loads into a cluster: a savepoint restore or a bootstrap, all or nothing.

One atomic batch holds at most a thousand messages, so a load cannot be one batch. It fills a
new generation of the data stream instead (with what the live one holds first, unless the load
is ``fresh``), and then points the cluster's directory at it in one fenced write: until that
write, workers and readers see the old generation whole; after it, the new one whole. A load
that fails deletes its generation, leaving nothing behind. No worker may run meanwhile (as no
runtime may have a data dir open while it is loaded).

The ``BulkLoader`` protocol is synchronous (the savepoint and bootstrap commands are), and
nats-py is asynchronous: the loader keeps records until ``commit`` and runs the load on an
event loop of its own, in a thread.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, final

from nats.js.errors import NotFoundError

from pystatefun.errors import ClusterStorageError, DataDirError
from pystatefun.store.contents import (
    Content,
    DeadLetterContent,
    DedupKey,
    EgressContent,
    MessageContent,
    PositionContent,
    StateContent,
)
from pystatefun.store.held_loader import HeldLoader
from pystatefun.store.jetstream._batch import Record
from pystatefun.store.jetstream._blocking import connect, run_blocking
from pystatefun.store.jetstream._connection import (
    BatchRefusedError,
    ensure_stream,
    publish_batch,
    read_live,
)
from pystatefun.store.jetstream._directory import (
    Directory,
    read_directory,
    refused_directory,
    write_directory,
)
from pystatefun.store.jetstream._layout import ClusterLayout, digest
from pystatefun.store.jetstream.engine import DEFAULT_PARTITIONS
from pystatefun.store.keygroups import DEFAULT_KEY_GROUPS, KeyGroups
from pystatefun.store.records import TimerRecord

if TYPE_CHECKING:
    from nats.aio.client import Client

__all__ = ["JetStreamLoader", "subject_for"]

_BATCH = 500


def subject_for(layout: ClusterLayout, content: Content) -> str:  # noqa: PLR0911 - one per kind
    """Where a loaded record goes: the partition of the address or key it belongs to."""
    token = uuid.uuid4().hex
    if isinstance(content, StateContent):
        a = content.address
        return layout.subject("st", layout.partition_of(a.id), digest(*a, content.value.name))
    if isinstance(content, MessageContent):
        return layout.subject("in", layout.partition_of(content.target.id), token)
    if isinstance(content, TimerRecord):
        return layout.subject("tm", layout.partition_of(content.sender.id), token)
    if isinstance(content, DeadLetterContent):
        return layout.subject("dl", layout.partition_of(content.target.id), token)
    if isinstance(content, EgressContent):
        return layout.subject("eg", layout.partition_of_key(content.egress), token)
    if isinstance(content, DedupKey):
        partition = layout.partition_of_key(content.key)
        return layout.subject("dd", partition, digest(content.key))
    assert isinstance(content, PositionContent)
    partition = layout.partition_of_key(content.source, content.key)
    return layout.subject("po", partition, digest(content.source, content.key))


@final
class JetStreamLoader(HeldLoader):
    """A ``BulkLoader`` into the cluster ``cluster`` (``fresh``: it must hold nothing yet)."""

    def __init__(
        self,
        servers: Sequence[str],
        *,
        cluster: str,
        fresh: bool,
        clock_ms: Callable[[], int],
        key_groups: int = DEFAULT_KEY_GROUPS,
        partitions: int = DEFAULT_PARTITIONS,
        replicas: int = 3,
    ) -> None:
        super().__init__()
        self._servers = list(servers)
        self._cluster = cluster
        self._fresh = fresh
        self._clock_ms = clock_ms
        self._partitions = partitions
        self._replicas = replicas
        self._directory = run_blocking(self._look)
        if self._directory is not None and not fresh:  # an empty cluster takes any layout
            key_groups = self._directory.key_groups
            self._partitions = self._directory.partitions
        self.key_groups = KeyGroups(key_groups)

    async def _look(self) -> Directory | None:
        nc = await connect(self._servers)
        try:
            js = nc.jetstream(timeout=10)
            directory = await read_directory(js, self._cluster, replicas=self._replicas)
            if directory is not None and self._fresh:
                layout = directory.layout(self._cluster)
                live = await read_live(js, layout.stream, f"{layout.prefix}.*.*.*")
                if any(record.content is not None for record in live):
                    raise DataDirError(
                        f"cluster {self._cluster!r} is not empty; restore into a new cluster "
                        "(another --cluster-name)"
                    )
            return directory
        finally:
            await nc.close()

    def load(self, records: list[Content]) -> None:
        run_blocking(lambda: self._load(records))

    async def _load(self, pending: list[Content]) -> None:
        nc = await connect(self._servers)
        old = self._directory
        generation = 1 if old is None else old.generation + 1
        layout = ClusterLayout(self._cluster, self.key_groups.count, self._partitions, generation)
        js = nc.jetstream(timeout=10)
        with contextlib.suppress(NotFoundError):  # a failed load's, if it left one
            await js.delete_stream(layout.stream)
        try:
            await ensure_stream(js, name=layout.stream, subjects=[f"{layout.prefix}.>"],
                                replicas=self._replicas)  # fmt: skip
            records: list[Content] = []
            if old is not None and not self._fresh:
                before = old.layout(self._cluster)
                live = await read_live(js, before.stream, f"{before.prefix}.*.*.*")
                records = [r.content for r in live if r.content is not None]
            await self._publish(nc, layout, [*records, *pending])
            try:
                await write_directory(js, self._cluster, key_groups=layout.key_groups,
                                      partitions=layout.partitions, generation=generation,
                                      after=old, keep_instance=not self._fresh)  # fmt: skip
            except Exception as exc:
                raise refused_directory(self._cluster, getattr(exc, "err_code", None)) from exc
        except BaseException:
            await js.delete_stream(layout.stream)
            await nc.close()
            raise
        if old is not None:
            await js.delete_stream(old.layout(self._cluster).stream)
        self._directory = None
        await nc.close()

    async def _publish(self, nc: Client, layout: ClusterLayout, contents: list[Content]) -> None:
        for start in range(0, len(contents), _BATCH):
            chunk = [Record(subject_for(layout, c), c) for c in contents[start : start + _BATCH]]
            kinds = {r.subject: layout.parse(r.subject)[0] for r in chunk}
            try:
                await publish_batch(nc, chunk, batch_id=uuid.uuid4().hex, kind_of=kinds,
                                    marker_body=b"", timeout=30)  # fmt: skip
            except BatchRefusedError as exc:
                reason = f"cluster {self._cluster!r}: loading failed ({exc})"
                raise ClusterStorageError(reason) from exc
