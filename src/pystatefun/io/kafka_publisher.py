"""Publishing committed egress records to Kafka with a delivery semantic: the Kafka egress's
blocking half (librdkafka's calls block; the egress runs them off the event loop).

Each semantic is a ``KafkaPublisher``: ``setup`` connects and says up to which record ``seq``
was already published, ``publish`` sends records in ``seq`` order and returns once they count
as published, ``close`` releases the client. The egress deletes what is published from the
store, so what is not published yet is never lost.

- ``exactly-once``: a transactional producer. Its ``transactional.id`` is named after the data
  dir's instance id, so a restarted runtime fences its predecessor (``init_transactions``
  aborts a transaction that was open when it died). Each batch is one transaction, which also
  commits, as a consumer-group offset, the ``seq`` of its last record (group = the
  transactional id, partition 0 of a topic the batch wrote): Kafka makes both visible at once
  or neither. After a crash ``setup`` reads that offset back (``require_stable``: pending
  transactions settle first), so records published just before the crash, and not yet deleted
  from the store, are not published again.
- ``at-least-once``: an idempotent producer; a batch counts once every record is acknowledged.
  A crash between that and the delete publishes the batch again.
- ``none``: records count as published once handed to the client; a crash loses what it had
  not sent yet.

Keys are hashed as Kafka's Java client does (``murmur2_random``) unless ``partitioner`` is set,
so a key lands on the partition a StateFun (JVM) runtime would pick.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol, final

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from pystatefun.module import KafkaEgress
from pystatefun.protocol import KafkaProducerRecord
from pystatefun.store import EgressRecord

__all__ = [
    "PUBLISH_DEADLINE_S",
    "KafkaPublisher",
    "PublishError",
    "make_publisher",
    "transactional_id",
]

_log = logging.getLogger("pystatefun.io.kafka")
_CALL_TIMEOUT_S = 10.0
#: How long one ``publish`` may take, each of its calls within ``_CALL_TIMEOUT_S``: past it,
#: the client is stuck (librdkafka's send_offsets_to_transaction can wait forever while the
#: group coordinator is away, confluentinc/librdkafka#5456) and is replaced.
PUBLISH_DEADLINE_S = 3 * _CALL_TIMEOUT_S
_METADATA_TIMEOUT_S = 5.0


class PublishError(Exception):
    """Publishing failed; nothing counts as published. ``fatal``: this client cannot go on
    (fenced, or a fatal librdkafka error) and must be closed and made again; ``stuck``: it
    did not return, and cannot even be closed (its thread still holds it)."""

    def __init__(self, reason: str, *, fatal: bool = False, stuck: bool = False) -> None:
        super().__init__(reason)
        self.fatal = fatal
        self.stuck = stuck


class KafkaPublisher(Protocol):
    """One delivery semantic (see the module docs)."""

    def setup(self) -> int:
        """Connect; the ``seq`` up to which records were published before (0: none known)."""
        ...

    def publish(self, records: Sequence[EgressRecord]) -> None:
        """Publish ``records`` (in ``seq`` order); ``PublishError`` if they do not count as
        published."""
        ...

    def close(self, *, wait: bool) -> None:
        """Release the client; ``wait``: send what it still holds first (a normal stop), else
        drop it (a broken client about to be replaced)."""
        ...


def transactional_id(spec: KafkaEgress, instance_id: str, *, shard: int | None = None) -> str:
    """The exactly-once egress's transactional id (and its progress group): a ``transactional.id``
    given in ``properties`` is the prefix (for prefixed ACLs), ``pystatefun`` otherwise; a
    cluster partition's (``shard``) ends in ``-p<partition>``, whichever worker owns it."""
    prefix = dict(spec.properties).get("transactional.id", "pystatefun")
    suffix = "" if shard is None else f"-p{shard}"
    return f"{prefix}-{spec.id}-{instance_id}{suffix}"


def make_publisher(
    spec: KafkaEgress, instance_id: str, *, shard: int | None = None
) -> KafkaPublisher:
    """The publisher of ``spec``'s delivery semantic, for one ``shard`` of a cluster's records
    (None: a store of one runtime); ``KafkaException`` if the client refuses its settings."""
    if spec.delivery_semantic == "exactly-once":
        return _Transactional(spec, transactional_id(spec, instance_id, shard=shard))
    return _Acknowledged(spec, wait=spec.delivery_semantic == "at-least-once")


def _config(spec: KafkaEgress, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"partitioner": "murmur2_random", **dict(spec.properties)}
    config.update(overrides, **{"bootstrap.servers": spec.bootstrap_servers})
    return config


def _connection(spec: KafkaEgress) -> dict[str, str]:
    """The properties about reaching the brokers (security, sockets), for the helper clients
    that only need to connect (a producer's other properties would be warned about)."""
    prefixes = ("security.", "sasl.", "ssl.", "socket.", "client.")
    return {key: value for key, value in spec.properties if key.startswith(prefixes)}


def _record(record: EgressRecord) -> KafkaProducerRecord:
    parsed = KafkaProducerRecord()
    parsed.ParseFromString(record.payload.value or b"")  # checked by the egress's route
    return parsed


def _error(error: KafkaError) -> PublishError:
    return PublishError(error.str(), fatal=error.fatal())


@final
class _Delivery:
    """Delivery reports of one batch: the first failure, if any."""

    def __init__(self) -> None:
        self.failure: str | None = None

    def __call__(self, error: KafkaError | None, message: Message) -> None:
        if error is not None and self.failure is None:
            self.failure = f"topic {message.topic()}: {error.str()}"


def _produce(producer: Producer, records: Sequence[EgressRecord], delivery: _Delivery) -> None:
    """Hand ``records`` to the client (``KafkaException`` if it refuses one)."""
    for stored in records:
        record = _record(stored)
        key = record.key.encode() if record.key else None
        while True:
            try:
                producer.produce(
                    record.topic, value=record.value_bytes, key=key, on_delivery=delivery
                )
                break
            except BufferError:  # the client's queue is full: let it send, then go on
                producer.poll(0.1)


def _check_topics(producer: Producer, known: set[str], records: Sequence[EgressRecord]) -> None:
    """Refuse a batch for a topic that does not exist (the brokers do not create topics):
    librdkafka would only fail its records after ``message.timeout.ms``."""
    for topic in {_record(r).topic for r in records} - known:
        try:
            metadata = producer.list_topics(topic, timeout=_METADATA_TIMEOUT_S)
        except KafkaException as error:
            raise _error(error.args[0]) from None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            raise PublishError(
                f"topic {topic} does not exist, and the brokers do not create topics; create it"
            )
        known.add(topic)


@final
class _Acknowledged:
    """``at-least-once`` (``wait``: every record acknowledged) and ``none`` (handed over)."""

    def __init__(self, spec: KafkaEgress, *, wait: bool) -> None:
        self._wait = wait
        overrides = {"enable.idempotence": True} if wait else {}
        self._producer = Producer(_config(spec, **overrides))
        self._known: set[str] = set()

    def setup(self) -> int:
        return 0

    def publish(self, records: Sequence[EgressRecord]) -> None:
        _check_topics(self._producer, self._known, records)
        delivery = _Delivery()
        try:
            _produce(self._producer, records, delivery)
        except KafkaException as error:
            raise _error(error.args[0]) from None
        if not self._wait:
            self._producer.poll(0)
            return
        left = self._producer.flush(_CALL_TIMEOUT_S)
        if delivery.failure is not None:
            raise PublishError(delivery.failure)
        if left:
            raise PublishError(f"{left} record(s) not acknowledged in {_CALL_TIMEOUT_S:.0f}s")

    def close(self, *, wait: bool) -> None:
        _release(self._producer, wait=wait)


def _release(producer: Producer, *, wait: bool) -> None:
    if not wait:
        producer.purge()
    left = producer.flush(_CALL_TIMEOUT_S if wait else 0)
    if left:
        _log.warning("the Kafka producer stopped with %d record(s) not sent", left)


@final
class _Transactional:
    """``exactly-once`` (see the module docs)."""

    def __init__(self, spec: KafkaEgress, transactional: str) -> None:
        self._group = transactional
        timeout_ms = spec.transaction_timeout_ms
        message_timeout = int(dict(spec.properties).get("message.timeout.ms", 300_000))
        self._producer = Producer(
            _config(
                spec,
                **{
                    "transactional.id": transactional,
                    "transaction.timeout.ms": timeout_ms,
                    "message.timeout.ms": min(message_timeout, timeout_ms),
                },
            )
        )
        # Only for the group metadata a transaction's offset commit needs; it reads nothing.
        self._progress = Consumer(
            {
                "bootstrap.servers": spec.bootstrap_servers,
                "group.id": transactional,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                **_connection(spec),
            }
        )
        self._admin = AdminClient(
            {"bootstrap.servers": spec.bootstrap_servers, **_connection(spec)}
        )
        self._known: set[str] = set()

    def setup(self) -> int:
        try:
            self._producer.init_transactions(_CALL_TIMEOUT_S)
            request = ConsumerGroupTopicPartitions(self._group)
            (future,) = self._admin.list_consumer_group_offsets(
                [request], require_stable=True, request_timeout=_CALL_TIMEOUT_S
            ).values()
            found = future.result(_CALL_TIMEOUT_S)
        except KafkaException as error:
            raise _error(error.args[0]) from None
        offsets = [p.offset for p in found.topic_partitions or () if p.offset >= 0]
        return max(offsets, default=0)

    def publish(self, records: Sequence[EgressRecord]) -> None:
        producer = self._producer
        _check_topics(producer, self._known, records)
        delivery = _Delivery()
        last = records[-1]
        try:
            producer.begin_transaction()
            _produce(producer, records, delivery)
            marker = TopicPartition(_record(last).topic, 0, last.seq)
            metadata = self._progress.consumer_group_metadata()
            producer.send_offsets_to_transaction([marker], metadata, _CALL_TIMEOUT_S)
            producer.commit_transaction(_CALL_TIMEOUT_S)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            reason = delivery.failure or error.str()
            if error.txn_requires_abort() and not error.fatal() and self._aborted():
                raise PublishError(reason) from None  # nothing was published: send it again
            # Whether the transaction committed is unknown (a commit that timed out, say):
            # only a new client, which settles it and reads the progress back, can tell.
            raise PublishError(reason, fatal=True) from None

    def _aborted(self) -> bool:
        try:
            self._producer.abort_transaction(_CALL_TIMEOUT_S)
        except KafkaException as error:
            _log.warning("aborting a Kafka transaction failed: %s", error.args[0].str())
            return False
        return True

    def close(self, *, wait: bool) -> None:
        self._progress.close()
        _release(self._producer, wait=wait)
