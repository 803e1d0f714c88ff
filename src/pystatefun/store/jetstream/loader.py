"""Bulk loads into a cluster: a savepoint restore or a bootstrap, all or nothing.

One atomic batch holds at most a thousand messages, so a load cannot be one batch. It fills a
new generation of the data streams instead (with what the live one holds first, unless the load
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
from pystatefun.store.jetstream._connection import BatchRefusedError, ensure_stream, publish_batch
from pystatefun.store.jetstream._directory import (
    Directory,
    read_directory,
    refused_directory,
    write_directory,
)
from pystatefun.store.jetstream._layout import ClusterLayout, digest
from pystatefun.store.jetstream._reading import read_contents
from pystatefun.store.jetstream.engine import DEFAULT_PARTITIONS
from pystatefun.store.keygroups import DEFAULT_KEY_GROUPS, KeyGroups
from pystatefun.store.records import TimerRecord

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

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
        streams: int | None = None,
        replicas: int = 3,
    ) -> None:
        super().__init__()
        self._servers = list(servers)
        self._cluster = cluster
        self._fresh = fresh
        self._clock_ms = clock_ms
        self._partitions = partitions
        self._streams = streams or 1
        self._replicas = replicas
        self._directory = run_blocking(self._look)
        if self._directory is not None and not fresh:  # an empty cluster takes any layout
            key_groups = self._directory.key_groups
            self._partitions = self._directory.partitions
            self._streams = streams or self._directory.streams
            if self._streams != self._directory.streams:
                raise DataDirError(
                    f"cluster {cluster!r} has {self._directory.streams} stream(s), not "
                    f"{streams}: leave --streams out to load into it"
                )
        self.key_groups = KeyGroups(key_groups)

    async def _look(self) -> Directory | None:
        nc = await connect(self._servers)
        try:
            js = nc.jetstream(timeout=10)
            directory = await read_directory(js, self._cluster, replicas=self._replicas)
            if directory is not None and self._fresh:
                contents = await read_contents(js, directory.layout(self._cluster))
                if next(iter(contents.records), None) is not None:
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
        layout = ClusterLayout(self._cluster, self.key_groups.count, self._partitions, generation,
                               self._streams)  # fmt: skip
        js = nc.jetstream(timeout=10)
        await self._drop(js, layout)  # a failed load's, if it left one
        try:
            for stream, name in enumerate(layout.stream_names):
                await ensure_stream(js, name=name, subjects=layout.stream_subjects(stream),
                                    replicas=self._replicas)  # fmt: skip
            records: list[Content] = []
            if old is not None and not self._fresh:
                records = list((await read_contents(js, old.layout(self._cluster))).records)
            await self._publish(nc, layout, [*records, *pending])
            try:
                await write_directory(js, self._cluster, key_groups=layout.key_groups,
                                      partitions=layout.partitions, generation=generation,
                                      streams=layout.streams, after=old,
                                      keep_instance=not self._fresh)  # fmt: skip
            except Exception as exc:
                raise refused_directory(self._cluster, getattr(exc, "err_code", None)) from exc
        except BaseException:
            await self._drop(js, layout)
            await nc.close()
            raise
        if old is not None:
            await self._drop(js, old.layout(self._cluster))
        self._directory = None
        await nc.close()

    @staticmethod
    async def _drop(js: JetStreamContext, layout: ClusterLayout) -> None:
        """Delete every stream of ``layout``'s generation that exists."""
        for name in layout.stream_names:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)

    async def _publish(self, nc: Client, layout: ClusterLayout, contents: list[Content]) -> None:
        """Publish ``contents`` in batches, each into the stream of its records' partitions."""
        by_stream: dict[int, list[Record]] = {}
        for content in contents:
            subject = subject_for(layout, content)
            stream = layout.stream_of(layout.parse(subject)[1])
            by_stream.setdefault(stream, []).append(Record(subject, content))
        for records in by_stream.values():
            for start in range(0, len(records), _BATCH):
                await self._publish_chunk(nc, layout, records[start : start + _BATCH])

    async def _publish_chunk(self, nc: Client, layout: ClusterLayout, chunk: list[Record]) -> None:
        kinds = {r.subject: layout.parse(r.subject)[0] for r in chunk}
        try:
            await publish_batch(nc, chunk, batch_id=uuid.uuid4().hex, kind_of=kinds,
                                marker_body=b"", timeout=30)  # fmt: skip
        except BatchRefusedError as exc:
            reason = f"cluster {self._cluster!r}: loading failed ({exc})"
            raise ClusterStorageError(reason) from exc
