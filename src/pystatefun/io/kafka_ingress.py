"""The Kafka ingress (``io.statefun.kafka.v1/ingress``): records of Kafka topics, exactly once.

Each record goes to every target function type of its topic, addressed by the record's key
(UTF-8), as a ``valueType`` typed value. Exactly once means: where this ingress has read up to
is stored with the messages, in the same step (``Position("<ingress id>",
"<topic>/<partition>", "<next offset>")``), and after a restart every partition resumes from
its stored position; only a partition with none starts at the ``startupPosition``. The
offsets are also committed to ``consumerGroupId`` after each step, for lag tools, and so that a
new data dir with ``group-offsets`` picks up where the group was.

The consumer runs on a thread of its own (``pystatefun.io.kafka_reader``), which assigns itself
every partition, and hands batches to the event loop; here each partition is appended by one
task, in order, a batch per step (``RuntimeHandle.append``), so positions only move forward.
Full mailboxes hold the appends back, and the reader pauses fetching once
``kafka_reader.BACKLOG_MAX`` records wait. A record that cannot be delivered (no key, a key that
is not UTF-8, a value over the ingress size limit, a value that is not of a primitive
``valueType``) is dead-lettered with its value, naming its
topic, partition and offset, and its partition goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import final

from pystatefun.io.api import ConnectorContext, IngestOutcome, RuntimeHandle
from pystatefun.io.kafka_reader import KafkaReader, KafkaRecord, partition_key
from pystatefun.io.routing import Route, Routed, append_routed, value_refusal
from pystatefun.module import KafkaIngress
from pystatefun.reading import Reading
from pystatefun.store import Position

__all__ = ["KafkaIngressConnector", "build_ingress"]

_log = logging.getLogger("pystatefun.io.kafka")
_CLOSE_TIMEOUT_S = 10.0


def build_ingress(spec: object, context: ConnectorContext) -> KafkaIngressConnector:
    """The connector of an ``io.statefun.kafka.v1/ingress``."""
    assert isinstance(spec, KafkaIngress)
    return KafkaIngressConnector(spec, max_bytes=context.ingress_max_bytes)


def _routed(ingress: str, record: KafkaRecord, value_type: str, max_bytes: int) -> Routed:
    """``record`` to route, or to dead-letter saying why it cannot be delivered."""
    where = f"kafka ingress {ingress}: the record at topic {record.topic}, partition "
    where += f"{record.partition}, offset {record.offset}"
    position = Position(ingress, partition_key(record.topic, record.partition),
                        str(record.offset + 1))  # fmt: skip
    if record.key is None:
        return Routed("", record.value, position, (
            f"{where} has no key, so it has no address to go to; produce records with a key "
            "(the target address's id, UTF-8)"
        ))  # fmt: skip
    try:
        address_id = record.key.decode("utf-8")
    except UnicodeDecodeError:
        shown = record.key.decode("utf-8", "backslashreplace")
        refused = f"{where} has a key that is not UTF-8 ({shown!r}); address ids are text"
        return Routed(shown, record.value, position, refused)
    wrong = value_refusal(where, record.value, value_type, max_bytes, "topic")
    return Routed(address_id, record.value, position, wrong)


@final
class KafkaIngressConnector:
    """The ``Ingress`` of one Kafka ingress spec (see the module docs)."""

    ports: tuple[int, ...] = ()
    url: str | None = None

    def __init__(self, spec: KafkaIngress, *, max_bytes: int) -> None:
        self._spec = spec
        self._max_bytes = max_bytes
        self._targets = {t.topic: t for t in spec.topics}
        self._runtime: RuntimeHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: KafkaReader | None = None
        # Each partition's batches, appended in order by its task; None ends the task.
        self._queues: dict[str, asyncio.Queue[list[KafkaRecord] | None]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._pending = 0  # records handed over and not appended (the reader's backlog)
        self._stopping = False
        self._lock = threading.Lock()
        self._reassigning: asyncio.Task[None] | None = None
        self._again = False
        self._dropped: set[str] = set()  # partitions whose records were handed over, not kept

    def readings(self) -> list[Reading]:
        """Each partition's consumer lag: records stored in Kafka and not yet durable here."""
        lag = {} if self._reader is None else self._reader.lag
        doc = ("Records of a Kafka partition this ingress reads that are not durable in "
               "pystatefun yet (librdkafka's consumer_lag).")  # fmt: skip
        return [Reading("kafka_ingress_lag_records", doc, "gauge", records,
                        (("ingress", self._spec.id), ("partition", key)))
                for key, records in sorted(lag.items())]  # fmt: skip

    async def start(self, runtime: RuntimeHandle) -> None:
        """Read the stored positions and start the reader; ``ModuleError`` at the ingress's
        document if the Kafka client refuses its settings."""
        self._runtime, self._loop = runtime, asyncio.get_running_loop()
        source = self._spec.id
        self._reader = KafkaReader(
            self._spec,
            stored=await runtime.positions(source),
            on_records=self._on_records,
            backlog=lambda: self._pending,
            wanted=lambda key: runtime.serves(source, key),  # on the reader's thread
        )
        self._reader.start()
        runtime.watch_serving(self._serving_changed)
        _log.info("kafka ingress %s: reading %s from %s (offsets committed for group %s)",
                  self._spec.id, ", ".join(self._targets), self._spec.bootstrap_servers,
                  self._spec.consumer_group_id)  # fmt: skip

    async def stop(self) -> None:
        """Stop the reader, let each partition finish the append it is in (the runtime is
        stopping, so that is quick); what is not appended is read again after a restart, from
        the stored positions."""
        self._stopping = True
        if self._reassigning is not None:
            await self._reassigning
        if self._reader is not None:
            await asyncio.to_thread(self._reader.stop, _CLOSE_TIMEOUT_S)
        for waiting in self._queues.values():
            while not waiting.empty():
                waiting.get_nowait()
            waiting.put_nowait(None)
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._queues.clear()
        self._tasks.clear()

    def _on_records(self, key: str, batch: list[KafkaRecord]) -> None:
        """On the reader's thread: a batch of partition ``key``, to the loop."""
        with self._lock:
            self._pending += len(batch)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._deliver, key, batch)

    # --- a cluster worker's partitions moving -------------------------------------------------

    def _serving_changed(self) -> None:
        # One reassignment at a time: changes during one make one more, not one each.
        self._again = True
        if self._reassigning is None and not self._stopping:
            self._reassigning = asyncio.get_running_loop().create_task(self._reassign())

    async def _reassign(self) -> None:
        """Stop appending the partitions this worker no longer serves, and have the reader
        read the ones it serves now from their stored positions."""
        runtime, reader = self._runtime, self._reader
        assert runtime is not None
        assert reader is not None
        try:
            while self._again and not self._stopping:
                self._again = False
                for key in [k for k in self._queues if not runtime.serves(self._spec.id, k)]:
                    self._end_partition(key)
                stored = await runtime.positions(self._spec.id)
                reread, self._dropped = frozenset(self._dropped), set()
                reader.reassign(stored, reread=reread)
        finally:
            self._reassigning = None

    def _end_partition(self, key: str) -> None:
        """Drop what waits for partition ``key`` (it is read again by whoever reads it next,
        from its stored position) and end its task after the append it is in."""
        waiting = self._queues.pop(key)
        self._tasks.pop(key, None)
        while not waiting.empty():
            batch = waiting.get_nowait()
            with self._lock:
                self._pending -= len(batch or ())
        waiting.put_nowait(None)

    # --- appending ---------------------------------------------------------------------------

    def _deliver(self, key: str, batch: list[KafkaRecord]) -> None:
        if self._stopping:
            return  # read again after the restart
        assert self._runtime is not None
        if not self._runtime.serves(self._spec.id, key):  # handed over as it moved away
            with self._lock:
                self._pending -= len(batch)
            self._dropped.add(key)  # should it come back at once: read again, not skipped
            self._serving_changed()
            return
        waiting = self._queues.get(key)
        if waiting is None:
            waiting = self._queues[key] = asyncio.Queue()
            self._tasks[key] = asyncio.get_running_loop().create_task(
                self._append_partition(key, waiting), name=f"kafka-{self._spec.id}-{key}"
            )
        waiting.put_nowait(batch)

    async def _append_partition(
        self, key: str, waiting: asyncio.Queue[list[KafkaRecord] | None]
    ) -> None:
        """Append one partition's batches, in order, a step each."""
        runtime = self._runtime
        assert runtime is not None
        while (batch := await waiting.get()) is not None:
            try:
                appended = await self._append(runtime, key, batch)
            except Exception:  # noqa: BLE001 - the store failed: the runtime stops; a restart resumes
                _log.exception("kafka ingress %s: partition %s stops", self._spec.id, key)
                return
            if appended is IngestOutcome.STOPPING:
                return  # the runtime stops: the rest is read again after the restart
            if appended is IngestOutcome.UNAVAILABLE:  # another worker reads it now
                _log.info("kafka ingress %s: partition %s moved to another worker",
                          self._spec.id, key)  # fmt: skip
                with self._lock:
                    self._pending -= len(batch)
                if self._queues.get(key) is waiting:
                    self._end_partition(key)
                assert self._reader is not None  # read it again from its stored position
                self._reader.reassign(await runtime.positions(self._spec.id),
                                      reread=frozenset((key,)))  # fmt: skip
                return
            with self._lock:
                self._pending -= len(batch)
            last = batch[-1]
            assert self._reader is not None
            self._reader.done(last.topic, last.partition, last.offset + 1)

    async def _append(
        self, runtime: RuntimeHandle, key: str, batch: list[KafkaRecord]
    ) -> IngestOutcome:
        """Append ``batch`` of partition ``key`` (see ``append_routed``)."""
        topic = self._targets[batch[0].topic]
        route = Route(topic.targets, topic.value_type)
        routed = [_routed(self._spec.id, r, topic.value_type, self._max_bytes) for r in batch]
        return await append_routed(runtime, route, routed, _log, "the partition")
