"""The Kinesis egress (``io.statefun.kinesis.v1/egress``): records functions send, put to
Kinesis, at least once (as StateFun's).

Functions send the SDKs' Kinesis egress record (``kinesis_egress_message``: stream, partition
key, value, optional explicit hash key) to the egress id. ``route`` checks each one while the
step is made (its type, its stream, its partition key, its explicit hash key, its size against
Kinesis's 1 MiB), so a record Kinesis can never take fails its batch, which is dead-lettered
with its address, instead of stopping the egress later.

Committed records wait in the store. One task per shard of them (``shard_publishing``: the
whole store embedded, each owned partition on a cluster worker) sends them in ``seq`` order,
at most ``maxOutstandingRecords`` at a time (``pystatefun.io.kinesis_publisher``), and deletes
them once Kinesis took every one: nothing is deleted before, so nothing is lost, and what a
crash or a partition's move interrupts is sent again by the next owner. Records Kinesis did not take
(throttled, a stream that does not exist, Kinesis unreachable) are sent again, alone, after a
backoff (0.1 s doubling up to ``_BACKOFF_MAX_S``); the failure is logged at most every
``_ERROR_LOG_S``. The task wakes when a step commits records for the egress (``committed``), and
every ``_IDLE_S`` besides. Kinesis keeps the order of one partition key's records only as far as
they are not sent again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import final

from botocore.exceptions import BotoCoreError

from pystatefun.errors import TerminalError
from pystatefun.io.api import ConnectorContext, RuntimeHandle
from pystatefun.io.backoff import Backoff
from pystatefun.io.egress_records import read_egress_record
from pystatefun.io.kinesis_client import make_client
from pystatefun.io.kinesis_publisher import KinesisPublisher
from pystatefun.io.publish_tally import PublishTally
from pystatefun.io.shard_publishing import PublishingShard, ShardedPublishing
from pystatefun.io.throttled_log import ThrottledLog
from pystatefun.module import KinesisEgress
from pystatefun.protocol import KinesisEgressRecord, TypedValue
from pystatefun.reading import Reading
from pystatefun.store import EgressOut, EgressRecord, Payload

__all__ = ["RECORD_MAX_BYTES", "KinesisEgressConnector", "build_egress"]

_log = logging.getLogger("pystatefun.io.kinesis")
_IDLE_S = 1.0
_BACKOFF_MAX_S = 5.0
_ERROR_LOG_S = 10.0
#: The most a Kinesis record may hold: its data and partition key together.
RECORD_MAX_BYTES = 1024 * 1024
_PARTITION_KEY_MAX = 256
_HASH_KEY_MAX = 2**128 - 1


def build_egress(spec: object, context: ConnectorContext) -> KinesisEgressConnector:
    """The connector of an ``io.statefun.kinesis.v1/egress``."""
    assert isinstance(spec, KinesisEgress)
    return KinesisEgressConnector(spec)


def _refusal(record: KinesisEgressRecord) -> str | None:
    """Why Kinesis would never take ``record``, or None."""
    if not record.stream:
        return "a Kinesis record without a stream"
    if not record.partition_key:
        return f"a Kinesis record for stream {record.stream} without a partition key"
    if len(record.partition_key) > _PARTITION_KEY_MAX:
        return (
            f"a Kinesis record for stream {record.stream} with a {len(record.partition_key)}-"
            f"character partition key, over Kinesis's {_PARTITION_KEY_MAX}"
        )
    hash_key = record.explicit_hash_key
    if hash_key and not (hash_key.isdigit() and int(hash_key) <= _HASH_KEY_MAX):
        return (
            f"a Kinesis record for stream {record.stream} with explicit hash key {hash_key!r:.60}"
            ", which is not a whole number from 0 to 2^128 - 1"
        )
    size = len(record.value_bytes) + len(record.partition_key.encode())
    if size > RECORD_MAX_BYTES:
        return (
            f"a {size}-byte record for stream {record.stream}, over Kinesis's limit of "
            f"{RECORD_MAX_BYTES} bytes (data and partition key together)"
        )
    return None


@final
class KinesisEgressConnector:
    """The ``Egress`` of one Kinesis egress spec (see the module docs)."""

    ports: tuple[int, ...] = ()
    url: str | None = None

    def __init__(self, spec: KinesisEgress) -> None:
        self.egress_id = spec.id
        self._spec = spec
        self._publisher: KinesisPublisher | None = None
        self._shards = ShardedPublishing(f"kinesis-egress-{spec.id}", self._publish)
        self._tally = PublishTally(spec.id)
        self._errors = ThrottledLog(_log, _ERROR_LOG_S)

    def route(self, value: TypedValue, where: str) -> EgressOut:
        """The record to commit for ``value``; ``TerminalError`` if Kinesis could never take
        it."""
        egress = f"Kinesis egress {self.egress_id}"
        record = read_egress_record(value, KinesisEgressRecord(), where=where, system="Kinesis",
                                    egress_id=self.egress_id)  # fmt: skip
        refused = _refusal(record)
        if refused is not None:
            raise TerminalError(f"{where} sent {refused} to {egress}")
        return EgressOut(self.egress_id, record.stream, Payload(value.typename, value.value))

    def readings(self) -> list[Reading]:
        return self._tally.readings()

    async def start(self, runtime: RuntimeHandle) -> None:
        """Make the client and start publishing; ``ModuleError`` at the egress's document if
        boto3 cannot make a client of its settings. Kinesis that cannot be reached is retried."""
        spec = self._spec
        try:
            client = make_client(spec.region, spec.credentials, spec.client_properties)
        except BotoCoreError as error:
            raise spec.location.error(
                f"kinesis egress {spec.id}: boto3 cannot make a Kinesis client of these "
                f"settings: {error}",
                field="spec.awsRegion" if "region" in str(error) else "spec.awsCredentials",
            ) from None
        self._publisher = KinesisPublisher(client)  # one client for every shard: thread-safe
        self._shards.start(runtime)
        _log.info("kinesis egress %s: publishing to %s", spec.id, client.meta.endpoint_url)

    def committed(self) -> None:
        self._shards.committed()

    async def stop(self) -> None:
        """Finish the requests being sent; the rest waits in the store."""
        await self._shards.stop()

    async def _publish(self, runtime: RuntimeHandle, shard: PublishingShard) -> None:
        published = 0
        egress, number = self.egress_id, shard.number
        limit = self._spec.max_outstanding_records
        while not shard.stopping:
            records = await runtime.egress_records(egress, shard=number, after_seq=published,
                                                   limit=limit)  # fmt: skip
            if not records:
                await shard.idle(_IDLE_S)
                continue
            if not await self._send(records, shard):
                return  # stopping: the rest is sent after the restart, or by the next owner
            published = records[-1].seq
            await runtime.egress_published(egress, shard=number, up_to_seq=published)

    async def _send(self, records: list[EgressRecord], shard: PublishingShard) -> bool:
        """Send ``records`` until Kinesis took them all (True), or the shard stops."""
        publisher = self._publisher
        assert publisher is not None
        backoff = Backoff(max_s=_BACKOFF_MAX_S)
        left, started = records, self._tally.started()
        while left:
            result = await asyncio.to_thread(publisher.put, left)
            left = result.left
            if not left:
                self._tally.published(len(records), started)
                return True
            self._errors.error("kinesis egress %s: %d record(s) not taken: %s; they wait in "
                               "the store, and are sent again", self.egress_id, len(left),
                               result.failure)  # fmt: skip
            if shard.stopping:
                return False
            await shard.idle(backoff.next_s())
        return True
