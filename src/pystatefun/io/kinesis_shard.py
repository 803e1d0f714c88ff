"""``ShardReader``: one Kinesis shard, read in order and appended to the runtime, a
``GetRecords`` batch per step.

It starts after its stored sequence number (``AFTER_SEQUENCE_NUMBER``), or else where it is
told (``TRIM_HORIZON``, ``LATEST``, ``AT_TIMESTAMP``), and reads the next batch only once the
last one is durable, so a full mailbox holds the shard back (``RuntimeHandle.append`` waits for
room). An expired iterator is asked for again from the last sequence number read. A closed
shard (after a split or merge) is finished once Kinesis says it has no more records: its
``NextShardIterator`` is null, or, as some Kinesis-compatible servers answer instead, an empty
batch at the tip (``MillisBehindLatest`` 0) of a shard listed with an
``EndingSequenceNumber``. The ingress then starts its children. ``ended`` asks the same of a
shard another cluster worker reads, from its stored position.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, final

from botocore.exceptions import BotoCoreError, ClientError

from pystatefun.io.api import IngestOutcome, RuntimeHandle
from pystatefun.io.backoff import Backoff
from pystatefun.io.kinesis_client import describe_error, error_code
from pystatefun.io.routing import Route, Routed, append_routed, value_refusal
from pystatefun.io.throttled_log import ThrottledLog
from pystatefun.store import Position

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import GetShardIteratorInputTypeDef, RecordTypeDef

__all__ = ["ShardReader", "ShardStart", "read_to_its_end", "shard_key"]

_log = logging.getLogger("pystatefun.io.kinesis")
_BATCH_MAX = 1000
_ERROR_LOG_S = 10.0


def shard_key(stream: str, shard_id: str) -> str:
    """How a shard is named in stored positions and logs: ``<stream>/<shard id>``."""
    return f"{stream}/{shard_id}"


def read_to_its_end(client: KinesisClient, stream: str, shard_id: str, after: str | None) -> bool:
    """Whether closed shard ``shard_id`` has no record after ``after`` (its stored position;
    None: none was ever read), as ``ShardReader`` decides it for the shard it reads: the
    shard's children may start. Blocking (boto3); False if Kinesis cannot tell now."""
    args: GetShardIteratorInputTypeDef = {
        "StreamName": stream,
        "ShardId": shard_id,
        "ShardIteratorType": "TRIM_HORIZON",
    }
    if after is not None:
        args["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
        args["StartingSequenceNumber"] = after
    try:
        iterator = client.get_shard_iterator(**args)["ShardIterator"]
        batch = client.get_records(ShardIterator=iterator, Limit=1)
    except (BotoCoreError, ClientError):
        return False
    if batch["Records"]:
        return False
    return batch.get("NextShardIterator") is None or batch.get("MillisBehindLatest", 1) == 0


@final
class ShardStart:
    """Where a shard with no stored position starts: ``TRIM_HORIZON``, ``LATEST`` or
    ``AT_TIMESTAMP`` (``date_ms``)."""

    def __init__(self, kind: str, date_ms: int | None = None) -> None:
        self.kind = kind
        self.date_ms = date_ms

    def __str__(self) -> str:
        return self.kind if self.date_ms is None else f"{self.kind} {self.date_ms}"


@final
class ShardReader:
    """Reads one shard until it ends, or is told to ``stop`` (see the module docs)."""

    def __init__(
        self,
        *,
        ingress: str,
        client: KinesisClient,
        stream: str,
        shard_id: str,
        route: Route,
        after: str | None,
        start: ShardStart,
        closed: bool,
        max_bytes: int,
        poll_s: float,
        on_error: Callable[[str], None],
    ) -> None:
        self._ingress = ingress
        self._client = client
        self._stream = stream
        self._shard_id = shard_id
        self._key = shard_key(stream, shard_id)
        self._route = route
        self._after = after  # the last sequence number delivered
        self._start = start
        #: Listed with an ``EndingSequenceNumber``: no records come after what it has.
        self.closed = closed
        self._max_bytes = max_bytes
        self._poll_s = poll_s
        self._stop = asyncio.Event()
        self._on_error = on_error
        self._errors = ThrottledLog(_log, _ERROR_LOG_S)
        #: How far behind the shard's tip its last read was (Kinesis's ``MillisBehindLatest``;
        #: None: not read yet).
        self.behind_ms: int | None = None

    def stop(self) -> None:
        """Stop reading once the append in hand is done (the ingress stops, or the shard is
        another cluster worker's now)."""
        self._stop.set()

    async def read(self, runtime: RuntimeHandle) -> bool:
        """Read and append until the shard ends (True), or it is stopped or no longer this
        runtime's to read (False)."""
        iterator: str | None = None
        backoff = Backoff(max_s=5.0)
        while not self._stop.is_set():
            try:
                if iterator is None:
                    iterator = await asyncio.to_thread(self._iterator)
                batch = await asyncio.to_thread(
                    self._client.get_records, ShardIterator=iterator, Limit=_BATCH_MAX
                )
            except (BotoCoreError, ClientError) as error:
                if error_code(error) != "ExpiredIteratorException":
                    self._report(error)
                    await self._wait(backoff.next_s())
                iterator = None  # ask again, from the last sequence number delivered
                continue
            backoff.reset()
            self.behind_ms = batch.get("MillisBehindLatest")
            records = batch["Records"]
            if records and not await self._append(runtime, records):
                return False
            iterator = batch.get("NextShardIterator")
            at_tip = batch.get("MillisBehindLatest", 1) == 0
            if iterator is None or (self.closed and not records and at_tip):
                _log.info("kinesis ingress %s: shard %s is read to its end", self._ingress,
                          self._key)  # fmt: skip
                return True
            if not records:
                await self._wait(self._poll_s)
        return False

    def _iterator(self) -> str:
        args: GetShardIteratorInputTypeDef = {
            "StreamName": self._stream,
            "ShardId": self._shard_id,
            "ShardIteratorType": "TRIM_HORIZON",
        }
        if self._after is not None:
            args["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            args["StartingSequenceNumber"] = self._after
        elif self._start.kind == "AT_TIMESTAMP":
            assert self._start.date_ms is not None
            args["ShardIteratorType"] = "AT_TIMESTAMP"
            args["Timestamp"] = datetime.datetime.fromtimestamp(
                self._start.date_ms / 1000, datetime.UTC
            )
        elif self._start.kind == "LATEST":
            args["ShardIteratorType"] = "LATEST"
        return self._client.get_shard_iterator(**args)["ShardIterator"]

    async def _append(self, runtime: RuntimeHandle, records: list[RecordTypeDef]) -> bool:
        routed = [self._routed(record) for record in records]
        outcome = await append_routed(runtime, self._route, routed, _log, "the shard")
        if outcome is not IngestOutcome.ACCEPTED:  # stopping, or its cluster partition moved
            return False
        self._after = records[-1]["SequenceNumber"]
        return True

    def _routed(self, record: RecordTypeDef) -> Routed:
        sequence = record["SequenceNumber"]
        where = (
            f"kinesis ingress {self._ingress}: the record of stream {self._stream}, shard "
            f"{self._shard_id}, sequence number {sequence}"
        )
        position = Position(self._ingress, self._key, sequence)
        value = bytes(record["Data"])
        address_id = record.get("PartitionKey", "")
        if not address_id:
            refused = f"{where} has no partition key, so it has no address to go to"
            return Routed("", value, position, refused)
        refused_value = value_refusal(where, value, self._route.value_type, self._max_bytes,
                                      "stream")  # fmt: skip
        return Routed(address_id, value, position, refused_value)

    def _report(self, error: BotoCoreError | ClientError) -> None:
        if error_code(error) == "ResourceNotFoundException":
            self._on_error(self._stream)  # the stream or shard is gone: look again
        self._errors.error("kinesis ingress %s: reading shard %s failed: %s; retrying",
                           self._ingress, self._key, describe_error(error))  # fmt: skip

    async def _wait(self, seconds: float) -> None:
        """Wait ``seconds``, or until the reader is stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
