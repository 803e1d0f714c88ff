"""The Kinesis ingress (``io.statefun.kinesis.v1/ingress``): records of Kinesis streams, exactly
once.

Each record goes to every target function type of its stream, addressed by the record's
partition key, as a ``valueType`` typed value. Exactly once means: where this ingress has read
up to is stored with the messages, in the same step (``Position("<ingress id>",
"<stream>/<shard id>", "<sequence number>")``), and after a restart every shard resumes after
its stored sequence number; only a shard with none starts at the ``startupPosition``.

Shards are found with ``ListShards`` every ``_DISCOVERY_S`` (every ``_RETRY_S`` while a stream is
missing or Kinesis cannot be reached), and each is read by a task of its own
(``pystatefun.io.kinesis_shard``), in order, a ``GetRecords`` batch per step. A shard that
appears after its stream was first listed (the children of a split or merge, the shards of a
stream created later) starts at its first record, since all of it is new. A child starts only
once its parents are read to their end (or no longer listed), so a key's records reach its
functions in order across a resharding. Full mailboxes hold the shards back. A record that
cannot be delivered (no partition key, a value over the ingress size limit, a value that is not
of a primitive ``valueType``) is dead-lettered with its value, naming its stream, shard and
sequence number, and its shard goes on.

On a cluster, each shard is read by the worker that owns the cluster partition its position
is stored in (``RuntimeHandle.serves``), which writes the position in the same fenced step as
the messages. When partitions move (``watch_serving``), readers of shards no longer served
stop, and the new owner starts after the stored position. A child whose parent another
worker reads starts once nothing follows the parent's stored position
(``kinesis_shard.read_to_its_end``): that worker has appended all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, final

from botocore.exceptions import BotoCoreError, ClientError

from pystatefun.io.api import ConnectorContext, RuntimeHandle
from pystatefun.io.kinesis_client import describe_error, error_code, make_client
from pystatefun.io.kinesis_shard import ShardReader, ShardStart, read_to_its_end, shard_key
from pystatefun.io.routing import Route
from pystatefun.io.throttled_log import ThrottledLog
from pystatefun.module import KinesisIngress
from pystatefun.reading import Reading

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import ShardTypeDef

__all__ = ["KinesisIngressConnector", "build_ingress"]

_log = logging.getLogger("pystatefun.io.kinesis")
_DISCOVERY_S = 10.0  # as Flink's Kinesis consumer (flink.shard.discovery.intervalmillis)
_RETRY_S = 2.0
_POLL_S = 0.2  # as Flink's (flink.shard.getrecords.intervalmillis)
_ERROR_LOG_S = 10.0
_STARTS = {"earliest": "TRIM_HORIZON", "latest": "LATEST", "date": "AT_TIMESTAMP"}


def build_ingress(spec: object, context: ConnectorContext) -> KinesisIngressConnector:
    """The connector of an ``io.statefun.kinesis.v1/ingress``."""
    assert isinstance(spec, KinesisIngress)
    return KinesisIngressConnector(spec, max_bytes=context.ingress_max_bytes)


@final
class KinesisIngressConnector:
    """The ``Ingress`` of one Kinesis ingress spec (see the module docs)."""

    ports: tuple[int, ...] = ()
    url: str | None = None

    def __init__(self, spec: KinesisIngress, *, max_bytes: int) -> None:
        self._spec = spec
        self._max_bytes = max_bytes
        self._routes = {s.stream: Route(s.targets, s.value_type) for s in spec.streams}
        self._client: KinesisClient | None = None
        self._runtime: RuntimeHandle | None = None
        self._stored: dict[str, str] = {}
        # Per stream, the shards of its first listing (None: missing then), once it was listed.
        self._first: dict[str, set[str] | None] = {}
        self._readers: dict[str, ShardReader] = {}
        self._finished: set[str] = set()
        self._missing_logged: set[str] = set()
        self._waiting_logged: set[str] = set()  # shards waiting for a parent read elsewhere
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()  # a shard ended, or a read failed: list again now
        self._task: asyncio.Task[None] | None = None
        self._errors = ThrottledLog(_log, _ERROR_LOG_S)

    def readings(self) -> list[Reading]:
        """How far behind each shard's tip its reader is (milliseconds, as Kinesis says)."""
        doc = ("How far behind the tip of a Kinesis shard this ingress reads its last read "
               "was (Kinesis's MillisBehindLatest).")  # fmt: skip
        return [Reading("kinesis_ingress_behind_milliseconds", doc, "gauge", reader.behind_ms,
                        (("ingress", self._spec.id), ("shard", key)))
                for key, reader in sorted(self._readers.items())
                if reader.behind_ms is not None]  # fmt: skip

    async def start(self, runtime: RuntimeHandle) -> None:
        """Read the stored positions and start reading; ``ModuleError`` at the ingress's
        document if boto3 cannot make a client of its settings (no region anywhere, a profile
        that does not exist). Kinesis that cannot be reached is retried."""
        self._runtime = runtime
        self._stored = await runtime.positions(self._spec.id)
        try:
            self._client = make_client(self._spec.region, self._spec.credentials,
                                       self._spec.client_properties)  # fmt: skip
        except BotoCoreError as error:
            raise self._spec.location.error(
                f"kinesis ingress {self._spec.id}: boto3 cannot make a Kinesis client of "
                f"these settings: {error}",
                field="spec.awsRegion" if "region" in str(error) else "spec.awsCredentials",
            ) from None
        runtime.watch_serving(self._changed.set)
        self._task = asyncio.create_task(self._run(), name=f"kinesis-{self._spec.id}")
        _log.info("kinesis ingress %s: reading %s (%s)", self._spec.id, ", ".join(self._routes),
                  self._client.meta.endpoint_url)  # fmt: skip

    async def stop(self) -> None:
        """Stop reading; each shard finishes the append it is in (the runtime is stopping, so
        that is quick), and what is not appended is read again after a restart."""
        self._stop.set()
        self._changed.set()
        for reader in self._readers.values():
            reader.stop()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        runtime = self._runtime
        assert runtime is not None
        async with asyncio.TaskGroup() as shards:
            while not self._stop.is_set():
                self._changed.clear()
                for key, reader in self._readers.items():
                    if not runtime.serves(self._spec.id, key):
                        reader.stop()  # another cluster worker's now
                # Where each shard was read up to, for those that start now (on a cluster,
                # written by the worker that read them before).
                try:
                    self._stored = await runtime.positions(self._spec.id)
                    complete = await self._discover(shards)
                except Exception:  # noqa: BLE001 - the shards being read go on; list again
                    _log.exception("kinesis ingress %s: looking for shards to read failed",
                                   self._spec.id)  # fmt: skip
                    complete = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), _DISCOVERY_S if complete
                                           else _RETRY_S)  # fmt: skip

    async def _discover(self, shards: asyncio.TaskGroup) -> bool:
        """Start the shards that can start; False if a stream is missing or could not be
        listed (the caller looks again soon)."""
        complete = True
        for stream in self._routes:
            try:
                listed = await asyncio.to_thread(self._list, stream)
            except (BotoCoreError, ClientError) as error:
                complete = False
                self._not_listed(stream, error)
                continue
            ids = {shard["ShardId"] for shard in listed}
            first = self._first.setdefault(stream, ids)
            for shard in listed:
                if not await self._consider(shards, stream, shard, ids, first):
                    complete = False  # a parent another worker reads: look again soon
        return complete

    def _not_listed(self, stream: str, error: BotoCoreError | ClientError) -> None:
        if error_code(error) != "ResourceNotFoundException":
            self._errors.error("kinesis ingress %s: listing the shards of %s failed: %s; "
                               "retrying", self._spec.id, stream,
                               describe_error(error))  # fmt: skip
            return
        self._first.setdefault(stream, None)  # its shards are all new when it appears
        if stream not in self._missing_logged:
            self._missing_logged.add(stream)
            _log.warning("kinesis ingress %s: stream %s does not exist (yet); it is read from "
                         "its start once it does", self._spec.id, stream)  # fmt: skip

    def _list(self, stream: str) -> list[ShardTypeDef]:
        assert self._client is not None
        page = self._client.list_shards(StreamName=stream)
        shards = list(page["Shards"])
        while token := page.get("NextToken"):
            page = self._client.list_shards(NextToken=token)
            shards += page["Shards"]
        return shards

    async def _consider(
        self,
        shards: asyncio.TaskGroup,
        stream: str,
        shard: ShardTypeDef,
        listed: set[str],
        first: set[str] | None,
    ) -> bool:
        """Start reading ``shard`` unless it is read already, another cluster worker's, or a
        parent is not read yet; False while a parent another worker reads is not."""
        shard_id = shard["ShardId"]
        key = shard_key(stream, shard_id)
        closed = "EndingSequenceNumber" in shard["SequenceNumberRange"]
        reader = self._readers.get(key)
        assert self._runtime is not None
        if reader is not None:
            if closed:
                reader.closed = True
            return True
        if self._stop.is_set() or not self._runtime.serves(self._spec.id, key):
            return True
        parents = {shard.get("ParentShardId"), shard.get("AdjacentParentShardId")} & listed
        for parent in parents:
            if parent and not await self._parent_ended(stream, parent):
                elsewhere = not self._runtime.serves(self._spec.id, shard_key(stream, parent))
                if elsewhere and key not in self._waiting_logged:
                    self._waiting_logged.add(key)
                    _log.info("kinesis ingress %s: shard %s starts once its parent %s, which "
                              "another worker reads, is read to its end", self._spec.id, key,
                              parent)  # fmt: skip
                return not elsewhere
        spec = self._spec
        start = ShardStart("TRIM_HORIZON")
        if first is not None and shard_id in first:
            start = ShardStart(_STARTS[spec.startup_position], spec.startup_date_ms)
        assert self._client is not None
        reader = ShardReader(
            ingress=spec.id, client=self._client, stream=stream, shard_id=shard_id,
            route=self._routes[stream], after=self._stored.get(key), start=start, closed=closed,
            max_bytes=self._max_bytes, poll_s=_POLL_S, on_error=lambda _: self._changed.set(),
        )  # fmt: skip
        self._readers[key] = reader
        after = self._stored.get(key)
        _log.info("kinesis ingress %s: reading shard %s from %s", spec.id, key,
                  f"after {after}" if after else start)  # fmt: skip
        shards.create_task(self._read(reader, key), name=f"kinesis-{spec.id}-{key}")
        return True

    async def _parent_ended(self, stream: str, parent: str) -> bool:
        """Whether ``parent`` is read to its end: by this runtime's reader, or, for one
        another cluster worker reads, as far as its stored position shows."""
        key = shard_key(stream, parent)
        if key in self._finished:
            return True
        assert self._runtime is not None
        assert self._client is not None
        if self._runtime.serves(self._spec.id, key):
            return False  # this runtime reads it, and says so when it ends
        return await asyncio.to_thread(
            read_to_its_end, self._client, stream, parent, self._stored.get(key)
        )

    async def _read(self, reader: ShardReader, key: str) -> None:
        assert self._runtime is not None
        try:
            ended = await reader.read(self._runtime)
        except Exception:  # noqa: BLE001 - the store failed: the runtime stops; a restart resumes
            _log.exception("kinesis ingress %s: shard %s stops", self._spec.id, key)
            return
        if ended:
            self._finished.add(key)
        else:  # stopped, or its cluster partition moved: read again if it comes back
            del self._readers[key]
        self._changed.set()  # its children may start now, or its next reader
