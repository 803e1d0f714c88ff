"""The Kafka egress (``io.statefun.kafka.v1/egress``): records functions send, published to Kafka.

Functions send the SDKs' Kafka egress record (``kafka_egress_message``: topic, key, value) to
the egress id. ``route`` checks each one while the step is made (its type, its topic, its size
against the producer's ``message.max.bytes``), so a record that can never be published fails
its batch, which is dead-lettered with its address, instead of stopping the egress later.

Committed records wait in the store. One task per shard of them (``shard_publishing``: the
whole store embedded, each owned partition on a cluster worker) publishes them in ``seq``
order, in batches of up to ``_BATCH_MAX``, with the egress's delivery semantic
(``pystatefun.io.kafka_publisher``, one client per shard), and deletes a batch once it counts
as published: nothing is deleted before, so nothing is lost, and what a crash interrupts is
published after the restart (exactly once, for ``exactly-once``: a cluster partition's
transactional id is the same on whichever worker owns it, so its next owner fences the last
and reads back where it got to). A task wakes when a step commits records for the egress
(``committed``), and every ``_IDLE_S`` besides. A failure (brokers down, a topic missing) is
logged, at most every ``_ERROR_LOG_S``, with what waits, and retried with a backoff; after a
fatal client error (fenced by another runtime on a copy of the data dir, say) the client is
made again, which for ``exactly-once`` also reads back where publishing got to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import final

from confluent_kafka import KafkaException

from pystatefun.errors import TerminalError
from pystatefun.io.api import ConnectorContext, RuntimeHandle
from pystatefun.io.backoff import Backoff
from pystatefun.io.egress_records import read_egress_record
from pystatefun.io.kafka_publisher import (
    PUBLISH_DEADLINE_S,
    KafkaPublisher,
    PublishError,
    make_publisher,
)
from pystatefun.io.publish_tally import PublishTally
from pystatefun.io.shard_publishing import PublishingShard, ShardedPublishing
from pystatefun.io.throttled_log import ThrottledLog
from pystatefun.module import KafkaEgress
from pystatefun.protocol import KafkaProducerRecord, TypedValue
from pystatefun.reading import Reading
from pystatefun.store import EgressOut, EgressRecord, Payload

__all__ = ["KafkaEgressConnector", "build_egress"]

_log = logging.getLogger("pystatefun.io.kafka")
_BATCH_MAX = 1000
_IDLE_S = 1.0
_ERROR_LOG_S = 10.0
_MESSAGE_MAX_BYTES = 1_000_000  # librdkafka's default message.max.bytes


async def _in_own_thread(call: Callable[[], None]) -> None:
    """``call()`` in a daemon thread of its own, not the loop's executor: a call that never
    returns (a stuck client) must not hold up the loop's shutdown or the process's exit."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():  # given up on meanwhile
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def run() -> None:
        error: BaseException | None = None
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed while it was stuck
            loop.call_soon_threadsafe(settle, error)

    threading.Thread(target=run, name="kafka-egress-publish", daemon=True).start()
    await done


def build_egress(spec: object, context: ConnectorContext) -> KafkaEgressConnector:
    """The connector of an ``io.statefun.kafka.v1/egress``."""
    assert isinstance(spec, KafkaEgress)
    return KafkaEgressConnector(spec, sharded=context.shared_store)


@final
class KafkaEgressConnector:
    """The ``Egress`` of one Kafka egress spec (see the module docs)."""

    ports: tuple[int, ...] = ()
    url: str | None = None

    def __init__(self, spec: KafkaEgress, *, sharded: bool = False) -> None:
        self.egress_id = spec.id
        self._spec = spec
        self._sharded = sharded  # a cluster worker's: one transactional id per partition
        self._max_bytes = int(dict(spec.properties).get("message.max.bytes", _MESSAGE_MAX_BYTES))
        self._instance_id = ""
        self._shards = ShardedPublishing(f"kafka-egress-{spec.id}", self._publish)
        self._tally = PublishTally(spec.id)
        self._errors = ThrottledLog(_log, _ERROR_LOG_S)

    def route(self, value: TypedValue, where: str) -> EgressOut:
        """The record to commit for ``value``; ``TerminalError`` if it can never be published."""
        egress = f"Kafka egress {self.egress_id}"
        record = read_egress_record(value, KafkaProducerRecord(), where=where, system="Kafka",
                                    egress_id=self.egress_id)  # fmt: skip
        if not record.topic:
            raise TerminalError(f"{where} sent a Kafka record without a topic to {egress}")
        size = len(record.value_bytes) + len(record.key.encode())
        if size > self._max_bytes:
            raise TerminalError(
                f"{where} sent a {size}-byte record for topic {record.topic} to {egress}, over "
                f"the producer's message.max.bytes ({self._max_bytes}); raise it in the "
                "egress's properties (and the topic's max.message.bytes), or send less"
            )
        return EgressOut(self.egress_id, record.topic, Payload(value.typename, value.value))

    def readings(self) -> list[Reading]:
        return self._tally.readings()

    async def start(self, runtime: RuntimeHandle) -> None:
        """Check the client's settings and start publishing; ``ModuleError`` at the egress's
        document if the Kafka client refuses them. Brokers that cannot be reached are retried."""
        self._instance_id = runtime.instance_id
        self._make_publisher(0).close(wait=False)  # a client refuses bad settings when made
        self._shards.start(runtime)
        _log.info("kafka egress %s: publishing to %s, %s", self.egress_id,
                  self._spec.bootstrap_servers, self._spec.delivery_semantic)  # fmt: skip

    def committed(self) -> None:
        self._shards.committed()

    async def stop(self) -> None:
        """Finish the batches being published; the rest waits in the store."""
        await self._shards.stop()

    def _make_publisher(self, shard: int) -> KafkaPublisher:
        try:
            return make_publisher(self._spec, self._instance_id,
                                  shard=shard if self._sharded else None)  # fmt: skip
        except KafkaException as error:
            raise self._spec.location.error(
                f"kafka egress {self.egress_id}: the Kafka client refuses these settings: "
                f"{error.args[0].str()}; see the properties of librdkafka's CONFIGURATION.md",
                field="spec.properties",
            ) from None

    async def _publish(self, runtime: RuntimeHandle, shard: PublishingShard) -> None:
        """Publish ``shard``'s records until it should stop, with a client of its own."""
        egress, number = self.egress_id, shard.number
        publisher = self._make_publisher(number)
        published: int | None = None  # the seq published up to, once the client is set up
        backoff = Backoff()
        try:
            while not shard.stopping:
                try:
                    if published is None:
                        published = await asyncio.to_thread(publisher.setup)
                        # Published before a crash or a move, and not deleted: not sent again.
                        await runtime.egress_published(egress, shard=number, up_to_seq=published)
                    records = await runtime.egress_records(
                        egress, shard=number, after_seq=published, limit=_BATCH_MAX
                    )
                    if not records:
                        await shard.idle(_IDLE_S)
                        continue
                    await self._published(publisher, records)
                    published = records[-1].seq
                    await runtime.egress_published(egress, shard=number, up_to_seq=published)
                    backoff.reset()
                except PublishError as error:
                    if number not in runtime.egress_shards():
                        _log.info("kafka egress %s: partition %d moved to another worker while "
                                  "publishing (%s); its new owner goes on from what was "
                                  "published", egress, number, error)  # fmt: skip
                        return
                    self._report(error)
                    if error.fatal:
                        if not error.stuck:  # a stuck client's thread still holds it
                            await asyncio.to_thread(publisher.close, wait=False)
                        publisher = self._make_publisher(number)
                        published = None
                    await shard.idle(backoff.next_s())
        finally:
            await asyncio.to_thread(publisher.close, wait=True)

    async def _published(self, publisher: KafkaPublisher, records: list[EgressRecord]) -> None:
        """``publisher.publish(records)``, or a fatal ``PublishError`` if it is stuck past
        ``PUBLISH_DEADLINE_S``: the next client, with the same transactional id, fences it and
        reads back how far publishing got, so its batch counts once either way."""
        started = self._tally.started()
        try:
            await asyncio.wait_for(_in_own_thread(lambda: publisher.publish(records)),
                                   PUBLISH_DEADLINE_S)  # fmt: skip
            self._tally.published(len(records), started)
        except TimeoutError:
            raise PublishError(
                f"a batch of {len(records)} record(s) was not published in "
                f"{PUBLISH_DEADLINE_S:.0f} s (the Kafka client is stuck, as librdkafka can be "
                "while the group coordinator is away); a new client takes over",
                fatal=True,
                stuck=True,
            ) from None

    def _report(self, error: PublishError) -> None:
        self._errors.error("kafka egress %s (%s): publishing failed: %s; the records wait in "
                           "the store, and publishing is retried", self.egress_id,
                           self._spec.bootstrap_servers, error)  # fmt: skip
