"""``KafkaReader``: the Kafka ingress's consumer, on a thread of its own.

librdkafka's consumer blocks, so it runs on one thread per ingress: it finds the topics'
partitions, starts each where the runtime says (its stored position) or at the startup
position, polls batches and hands them over by partition (``on_records``), pauses fetching
while ``backlog()`` is over ``BACKLOG_MAX``, and commits to the consumer group the offsets the
runtime has made durable (``done``). It never joins the group's protocol: partitions are
assigned here, so no rebalance takes them away and a restart needs no session timeout to pass.
On a cluster worker only the partitions whose positions it owns are read (``wanted``), and
``reassign`` moves them as the worker's cluster partitions move.

Partitions are looked up every ``topic.metadata.refresh.interval.ms`` (librdkafka's property for
the same purpose; default here ``_DISCOVERY_S``), every ``_RETRY_S`` while a topic is missing or
the brokers do not answer; a partition that appears after the first lookup found its topic (a
topic created later, a partition added) starts at its earliest record, since all of it is new.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple, final

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_STORED,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from pystatefun.io.throttled_log import ThrottledLog
from pystatefun.module import KafkaIngress

__all__ = ["BACKLOG_MAX", "KafkaReader", "KafkaRecord", "partition_key"]

_log = logging.getLogger("pystatefun.io.kafka")
#: Records handed over and not yet appended above which fetching pauses.
BACKLOG_MAX = 20_000
_POLL_S = 0.1  # also how long a poll gathers records into one batch (fewer, larger steps)
_BATCH_MAX = 500
_ERROR_LOG_S = 10.0
# How often librdkafka reports its statistics (the consumer lag for /metrics), unless the
# ingress's properties say otherwise.
_STATISTICS_MS = 5000
_DATE_LOOKUP_TIMEOUT_S = 10.0
_METADATA_TIMEOUT_S = 2.0  # short: stopping waits for it
_DISCOVERY_S = 30.0
_RETRY_S = 2.0


@final
class KafkaRecord(NamedTuple):
    """A record read, as plain values (handed from the consumer's thread to the loop)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def partition_key(topic: str, partition: int) -> str:
    """How a partition is named in stored positions and logs: ``<topic>/<partition>``."""
    return f"{topic}/{partition}"


def _record(message: Message) -> KafkaRecord | None:
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        return None
    key, value = message.key(), message.value()
    return KafkaRecord(
        topic,
        partition,
        offset,
        key.encode() if isinstance(key, str) else key,
        value.encode() if isinstance(value, str) else value or b"",
    )


def _discovery_s(spec: KafkaIngress) -> float:
    """How often to look for new partitions: ``topic.metadata.refresh.interval.ms`` if set (a
    value librdkafka accepted), else ``_DISCOVERY_S``; never, if it is negative."""
    given = dict(spec.properties).get("topic.metadata.refresh.interval.ms")
    if given is None:
        return _DISCOVERY_S
    interval_ms = float(given)
    return max(interval_ms / 1000, _POLL_S) if interval_ms >= 0 else float("inf")


def _offset(offset: int) -> str:
    """An offset for the log: librdkafka's logical offsets by name."""
    names = {OFFSET_BEGINNING: "earliest", OFFSET_END: "latest", OFFSET_STORED: "group offset"}
    return names.get(offset, str(offset))


@final
class KafkaReader:
    """The consumer of one Kafka ingress (see the module docs). ``on_records(key, records)``
    and ``backlog()`` are called on the reader's thread."""

    def __init__(
        self,
        spec: KafkaIngress,
        *,
        stored: dict[str, str],
        on_records: Callable[[str, list[KafkaRecord]], None],
        backlog: Callable[[], int],
        wanted: Callable[[str], bool] = lambda key: True,
    ) -> None:
        self._spec = spec
        self._topics = {t.topic for t in spec.topics}
        self._stored = stored
        self._wanted = wanted  # which partitions (by key) this runtime reads now
        self._reassigned: queue.SimpleQueue[tuple[dict[str, str], frozenset[str]]] = (
            queue.SimpleQueue()
        )
        self._on_records = on_records
        self._backlog = backlog
        # Topics found by the first lookup: their partitions without a stored position start
        # at the startup position; partitions that appear later start at their earliest record.
        self._initial_topics: set[str] | None = None
        self._assigned: set[tuple[str, int]] = set()
        # Per partition, the offset after the last record handed over (see _hand_over).
        self._next: dict[tuple[str, int], int] = {}
        self._rereading: set[tuple[str, int]] = set()
        self._missing_logged: set[str] = set()
        self._done: queue.SimpleQueue[TopicPartition] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._paused = False
        self._discovery_s = _discovery_s(spec)
        self._thread: threading.Thread | None = None
        self._errors = ThrottledLog(_log, _ERROR_LOG_S)
        #: Per partition read (``topic/partition``), the records after the last one made
        #: durable, as librdkafka's statistics last said (replaced whole, never changed).
        self.lag: dict[str, int] = {}

    def start(self) -> None:
        """Make the consumer and start its thread; ``ModuleError`` at the ingress's document
        if the Kafka client refuses its settings (a misspelt property, say)."""
        spec = self._spec
        config: dict[str, Any] = {"statistics.interval.ms": _STATISTICS_MS, **dict(spec.properties)}
        config.update(
            {
                "bootstrap.servers": spec.bootstrap_servers,
                "group.id": spec.consumer_group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": spec.auto_offset_reset,
                "isolation.level": "read_committed",
                "error_cb": self._on_error,
                "stats_cb": self._on_statistics,
            }
        )
        try:
            consumer = Consumer(config)
        except KafkaException as error:
            raise spec.location.error(
                f"kafka ingress {spec.id}: the Kafka client refuses these settings: "
                f"{error.args[0].str()}; see the properties of librdkafka's CONFIGURATION.md",
                field="spec.properties",
            ) from None
        self._thread = threading.Thread(
            target=self._poll, args=(consumer,), name=f"kafka-{spec.id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Stop polling, commit what is done and close the consumer (blocks: call it off the
        event loop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def reassign(self, stored: dict[str, str], *, reread: frozenset[str] = frozenset()) -> None:
        """What ``wanted`` answers changed (a cluster worker's partitions moved): stop reading
        the partitions no longer wanted (and those of ``reread``, whose records handed over
        were not appended), and start the wanted ones that are not read at ``stored``."""
        self._reassigned.put((stored, reread))

    def done(self, topic: str, partition: int, next_offset: int) -> None:
        """The runtime made the records before ``next_offset`` durable: commit it to the group
        (asynchronously: for lag tools and new data dirs; the stored positions are the truth)."""
        self._done.put(TopicPartition(topic, partition, next_offset))

    # --- the thread ---------------------------------------------------------------------------

    def _on_error(self, error: KafkaError) -> None:
        self._errors.error("kafka ingress %s (%s): %s; retrying", self._spec.id,
                           self._spec.bootstrap_servers, error.str())  # fmt: skip

    def _on_statistics(self, report: str) -> None:
        """librdkafka's statistics (every ``statistics.interval.ms``): each assigned
        partition's ``consumer_lag``, the last stable offset minus the committed one (the
        group's offsets follow what the runtime made durable)."""
        try:
            topics = json.loads(report).get("topics", {})
            lag = {partition_key(name, int(number)): int(figures["consumer_lag"])
                   for name, topic in topics.items()
                   for number, figures in topic.get("partitions", {}).items()
                   if (name, int(number)) in self._assigned
                   and figures.get("consumer_lag", -1) >= 0}  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError):
            _log.debug("kafka ingress %s: unreadable statistics", self._spec.id, exc_info=True)
            return
        self.lag = lag

    def _poll(self, consumer: Consumer) -> None:
        next_lookup = 0.0
        try:
            while not self._stop.is_set():
                if self._take_reassignment(consumer):
                    next_lookup = 0.0  # assign what is wanted now
                if time.monotonic() >= next_lookup:
                    complete = self._discover(consumer)
                    wait_s = self._discovery_s if complete else _RETRY_S
                    next_lookup = time.monotonic() + wait_s
                self._commit_done(consumer)
                full = self._backlog() >= BACKLOG_MAX
                if full != self._paused:
                    (consumer.pause if full else consumer.resume)(consumer.assignment())
                    self._paused = full
                if not self._assigned:
                    self._stop.wait(_POLL_S)
                    continue
                records = consumer.consume(_BATCH_MAX, _POLL_S)
                if records:
                    self._hand_over(records)
        finally:
            self._commit_done(consumer)
            consumer.close()

    def _take_reassignment(self, consumer: Consumer) -> bool:
        """Apply the latest ``reassign``, if any: unassign what is no longer wanted."""
        taken: list[tuple[dict[str, str], frozenset[str]]] = []
        with contextlib.suppress(queue.Empty):
            while True:
                taken.append(self._reassigned.get_nowait())
        if not taken:
            return False
        self._stored = taken[-1][0]
        reread = frozenset().union(*(keys for _, keys in taken))
        gone = [p for p in self._assigned
                if partition_key(*p) in reread or not self._wanted(partition_key(*p))]  # fmt: skip
        if gone:
            consumer.incremental_unassign([TopicPartition(*p) for p in gone])
            for where in gone:
                self._assigned.discard(where)
                self._next.pop(where, None)  # read again from the position, if it comes back
            names = ", ".join(partition_key(*p) for p in sorted(gone))
            _log.info("kafka ingress %s: no longer reading %s (another worker does)",
                      self._spec.id, names)  # fmt: skip
        return True

    def _discover(self, consumer: Consumer) -> bool:
        """Assign the topics' partitions not assigned yet; False if a topic is missing or the
        brokers could not be asked (then the caller asks again soon)."""
        try:
            metadata = consumer.list_topics(timeout=_METADATA_TIMEOUT_S)
        except KafkaException as error:
            self._on_error(error.args[0])
            return False
        found = {
            name: sorted(topic.partitions)
            for name, topic in metadata.topics.items()
            if name in self._topics and topic.error is None
        }
        if self._initial_topics is None:
            self._initial_topics = set(found)
        for name in sorted(self._topics - found.keys() - self._missing_logged):
            self._missing_logged.add(name)
            _log.warning("kafka ingress %s: topic %s does not exist (yet); it is read from its "
                         "start once it does", self._spec.id, name)  # fmt: skip
        new = [
            TopicPartition(name, number)
            for name, numbers in found.items()
            for number in numbers
            if (name, number) not in self._assigned and self._wanted(partition_key(name, number))
        ]
        if new:
            self._assign(consumer, new)
        return found.keys() == self._topics

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start each partition at its stored position, else at the startup position (or, for
        a partition that appeared after the first lookup, at its earliest record)."""
        assert self._initial_topics is not None
        known = {topic for topic, _ in self._assigned}
        at_startup: list[TopicPartition] = []
        for partition in partitions:
            position = self._stored.get(partition_key(partition.topic, partition.partition))
            if position is not None:
                partition.offset = int(position)
            elif partition.topic in self._initial_topics and partition.topic not in known:
                partition.offset = self._start_offset(partition)
                at_startup.append(partition)
            else:
                partition.offset = OFFSET_BEGINNING
        if at_startup and self._spec.startup_position == "date":
            self._seek_to_date(consumer, at_startup)
        consumer.incremental_assign(partitions)
        if self._paused:
            consumer.pause(partitions)
        self._assigned.update((p.topic, p.partition) for p in partitions)
        _log.info("kafka ingress %s: reading %s", self._spec.id,
                  ", ".join(f"{partition_key(p.topic, p.partition)}@{_offset(p.offset)}"
                            for p in partitions))  # fmt: skip

    def _seek_to_date(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start ``partitions`` at the first record at or after the startup date (the end of
        a partition with none)."""
        assert self._spec.startup_date_ms is not None
        dated = [TopicPartition(p.topic, p.partition, self._spec.startup_date_ms)
                 for p in partitions]  # fmt: skip
        found = consumer.offsets_for_times(dated, _DATE_LOOKUP_TIMEOUT_S)
        offsets = {(p.topic, p.partition): p.offset for p in found}
        for partition in partitions:
            offset = offsets.get((partition.topic, partition.partition), -1)
            partition.offset = offset if offset >= 0 else OFFSET_END

    def _start_offset(self, partition: TopicPartition) -> int:
        spec = self._spec
        if spec.startup_position == "earliest":
            return OFFSET_BEGINNING
        if spec.startup_position == "latest":
            return OFFSET_END
        if spec.startup_position == "specific-offsets":
            for topic, number, offset in spec.specific_offsets:
                if (topic, number) == (partition.topic, partition.partition):
                    return offset
            return OFFSET_STORED  # not listed: the group's offset, else the reset position
        return OFFSET_STORED  # group-offsets; date is resolved by _seek_to_date

    def _hand_over(self, messages: list[Message]) -> None:
        batches: dict[str, list[KafkaRecord]] = defaultdict(list)
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:  # noqa: SLF001 - librdkafka's name
                    self._on_error(error)
                continue
            record = _record(message)
            if record is not None and self._is_new(record):
                batches[partition_key(record.topic, record.partition)].append(record)
        for key, batch in batches.items():
            self._on_records(key, batch)

    def _is_new(self, record: KafkaRecord) -> bool:
        """False for a record handed over before. librdkafka can fetch a partition again from
        an earlier offset (seen after a broker restart); appended twice, those records would
        reach their functions twice."""
        where = (record.topic, record.partition)
        expected = self._next.get(where, -1)
        if record.offset < expected:
            if where not in self._rereading:  # once per re-read, not per record
                self._rereading.add(where)
                _log.warning("kafka ingress %s: the client read %s again from offset %d (up to "
                             "%d was handed over); those records are skipped", self._spec.id,
                             partition_key(*where), record.offset, expected)  # fmt: skip
            return False
        self._rereading.discard(where)
        self._next[where] = record.offset + 1
        return True

    def _commit_done(self, consumer: Consumer) -> None:
        latest: dict[tuple[str, int], TopicPartition] = {}
        while True:
            try:
                partition = self._done.get_nowait()
            except queue.Empty:
                break
            latest[(partition.topic, partition.partition)] = partition
        if latest:
            with contextlib.suppress(KafkaException):  # best effort: the next commit carries it
                consumer.commit(offsets=list(latest.values()), asynchronous=True)
