"""The connector seam: what an ingress or egress is, and what the runtime offers them.

Every connector (the playground's HTTP ingress and egress, Kafka's and Kinesis's)
implements ``Ingress`` or ``Egress`` and is registered by its module ``kind`` in
``pystatefun.io.registry``; the runtime builds connectors through the registry and names none of
them. Connectors depend on this module, never on the runtime, so one can be written and tested
against any ``RuntimeHandle``.

The contract (docs/architecture.md, "Connectors"):

- An ingress hands each message to ``RuntimeHandle.ingest`` and acknowledges it to its source
  (HTTP 2xx, a Kafka offset commit) only once ``ingest`` returned ``ACCEPTED`` (or another
  outcome that says the message is durable or was a duplicate). It may pass an idempotency key,
  and a ``Position`` that is written in the same step as the message, so that after a crash it
  resumes from ``RuntimeHandle.positions`` exactly after what was committed.
- An egress checks each record a function sends (``route``, when the step is made) and publishes
  the records its steps committed, with its own delivery semantics.
- Back-pressure is the connector's duty: ``ingest`` waits while the target's mailbox is full;
  an ingress that reads from a log pauses reading meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import NamedTuple, Protocol, final

from pystatefun.http import HttpLimits
from pystatefun.http.front_door import FrontDoor
from pystatefun.protocol import TypedValue
from pystatefun.reading import Reading
from pystatefun.store import EgressOut, EgressRecord, Position
from pystatefun.types import Address

__all__ = [
    "ConnectorContext",
    "Egress",
    "IngestOutcome",
    "IngestResult",
    "Ingress",
    "IngressMessage",
    "RuntimeHandle",
]


class IngestOutcome(Enum):
    ACCEPTED = "accepted"  # durably in the target's mailbox
    DUPLICATE = "duplicate"  # the idempotency key was seen within its window; nothing added
    REPLIED = "replied"  # request-reply: accepted, and the function answered
    REPLY_TIMEOUT = "reply_timeout"  # request-reply: accepted, but no answer in time
    # request-reply without an idempotency key: no answer in time (or the runtime is stopping),
    # and the message, never stored, was taken back before it was processed; nothing happened
    WITHDRAWN = "withdrawn"
    # request-reply: the message could not be processed and is in the dead letters
    DEAD_LETTERED = "dead_lettered"
    STOPPING = "stopping"  # the runtime is shutting down; nothing added
    # request-reply through a cluster worker that does not serve the address: the worker
    # that does took it and then never answered (it stopped or was cut off): the message may
    # or may not have been processed. Also any message whose write's fsync failed (``error``
    # says so): it may or may not be stored
    UNANSWERED = "unanswered"
    # the store could not take it now (a cluster partition moving, its owner not answering);
    # nothing added: send it again
    UNAVAILABLE = "unavailable"
    # the store takes no writes now (a full disk, a read-only file system: ``error`` says
    # which); nothing added: send it again later, the runtime goes on by itself once it can
    UNWRITABLE = "unwritable"


@final
@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of an ingested message; a reply's type and value for ``REPLIED``, the dead
    letter's id and why for ``DEAD_LETTERED``."""

    outcome: IngestOutcome
    reply_typename: str | None = None
    reply_value: bytes | None = None
    dead_letter_id: int | None = None
    error: str | None = None


@final
class IngressMessage(NamedTuple):
    """A message an ingress read, for ``RuntimeHandle.append``. ``position`` is where the
    source has read up to once this message is delivered: set on the last message of each
    record (a record may go to several targets), None on the others."""

    target: Address
    typename: str
    value: bytes
    position: Position | None = None


class RuntimeHandle(Protocol):
    """What the runtime offers connectors."""

    async def append(self, messages: Sequence[IngressMessage]) -> IngestOutcome:
        """Append ``messages`` (to any targets) with the last position among them, in as few
        steps as back-pressure allows: one, unless a target is full, in which case what is
        complete so far (up to a message with a position) commits first. ``ACCEPTED`` once all
        are durable, ``STOPPING`` if the runtime stopped first (what committed stays, with its
        position), ``UNAVAILABLE`` if the source partition is no longer this runtime's to read
        (``serves``). For sources that read in batches, such as a Kafka partition."""
        ...

    async def reject(
        self, target: Address, error: str, message: IngressMessage | None, *, position: Position
    ) -> IngestOutcome:
        """Dead-letter what an ingress read but cannot deliver (a record without a key), for
        ``target`` (the address it would have gone to, as far as known), with ``position``
        in the same step: the source goes on after it. ``ACCEPTED``, or ``UNAVAILABLE`` as
        for ``append``."""
        ...

    async def ingest(
        self,
        target: Address,
        typename: str,
        value: bytes,
        *,
        idempotency_key: str | None = None,
        wait_for_reply: bool = False,
        position: Position | None = None,
        trace: str | None = None,
    ) -> IngestResult:
        """Append one message to ``target``'s mailbox (with ``position``, where the source
        has read up to, in the same step); return once it is durable (or refused). With
        ``wait_for_reply``, wait for the function's answer to the message's caller too.
        ``trace``: the W3C ``traceparent`` the source carried, continued when tracing is on."""
        ...

    async def positions(self, source: str) -> dict[str, str]:
        """Where ingress ``source`` has read up to, by partition key, as last committed."""
        ...

    def serves(self, source: str, key: str) -> bool:
        """Whether this runtime reads ingress ``source``'s partition ``key`` now: always, but
        on a cluster worker, which reads the source partitions whose positions it owns (and
        ``append`` of another one answers ``UNAVAILABLE``, nothing written)."""
        ...

    def watch_serving(self, changed: Callable[[], None]) -> None:
        """Call ``changed`` whenever what ``serves`` answers may have changed (a cluster
        worker's partitions moved); never on a runtime that serves everything."""
        ...

    async def pop_egress(self, egress: str, topic: str) -> bytes | None:
        """Remove and return the oldest committed record of ``topic``, durably; None if none."""
        ...

    @property
    def instance_id(self) -> str:
        """A name for this runtime's data dir, the same after every restart and different for
        every other data dir: what a connector names things after that must outlive a restart
        (a Kafka transactional id, which fences a predecessor still publishing)."""
        ...

    def egress_shards(self) -> tuple[int, ...]:
        """The shards of egress records this runtime publishes now: ``(0,)``, every record,
        on a runtime with a store of its own; a cluster worker's partitions, which move
        between workers (``watch_serving`` says when). One runtime at a time publishes a
        shard, so what must outlive a move (a Kafka transactional id, progress) is named
        after ``instance_id`` and the shard."""
        ...

    async def egress_records(
        self, egress: str, *, shard: int, after_seq: int, limit: int
    ) -> list[EgressRecord]:
        """For an egress that publishes: the committed records of ``shard`` with a ``seq``
        above ``after_seq``, oldest first, at most ``limit``; none once the shard moved
        away. Sequence numbers only grow within a shard."""
        ...

    async def egress_published(self, egress: str, *, shard: int, up_to_seq: int) -> None:
        """The records of ``egress`` in ``shard`` up to ``up_to_seq`` are published: delete
        them, durably."""
        ...


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorContext:
    """What every connector is built with, besides its own spec."""

    #: The module file, for errors that point at it.
    module_file: Path
    #: The interface network connectors listen on.
    host: str
    #: The largest message an ingress accepts, in bytes.
    ingress_max_bytes: int
    #: What one HTTP client may make a network connector hold, and for how long.
    http_limits: HttpLimits = field(default_factory=HttpLimits)
    #: Added to every port a connector listens on (``--port-offset``: several cluster workers
    #: of one module on one host); 0 leaves the module's ports as they are.
    port_offset: int = 0
    #: Other runtimes (cluster workers) serve parts of the same store at the same time.
    shared_store: bool = False
    #: Who may use a network connector's port: its bearer token and TLS.
    front_door: FrontDoor = field(default_factory=FrontDoor)

    def port(self, port: int) -> int:
        """Where a connector whose module port is ``port`` listens (0: a free port, still)."""
        return port + self.port_offset if port else 0


class Ingress(Protocol):
    """A source of messages for the runtime."""

    #: The ports it will listen on (none: it listens nowhere or picks a free one), so the
    #: runtime can refuse two connectors on one port before either starts.
    ports: tuple[int, ...]

    async def start(self, runtime: RuntimeHandle) -> None:
        """Begin taking messages; raise ``DataDirError`` if it cannot (a port in use)."""
        ...

    async def stop(self) -> None:
        """Stop taking messages; what is being ingested finishes or is refused."""
        ...

    @property
    def url(self) -> str | None:
        """Where clients reach it once started (printed by ``pystatefun run``), if anywhere."""
        ...

    def readings(self) -> list[Reading]:
        """Its own figures for the metrics, now (requests by status, consumer lag)."""
        ...


class Egress(Protocol):
    """A destination for records that functions send."""

    #: The egress id functions address (``io.statefun.playground/egress``, a Kafka egress's id).
    egress_id: str
    ports: tuple[int, ...]

    def route(self, value: TypedValue, where: str) -> EgressOut:
        """The record to commit for ``value``, sent by ``where`` (an address);
        ``TerminalError`` if the egress cannot take it (the batch is dead-lettered)."""
        ...

    async def start(self, runtime: RuntimeHandle) -> None: ...

    def committed(self) -> None:
        """Records for this egress were committed: an egress that publishes them sends them
        now (``RuntimeHandle.egress_records``); one that is read from ignores it."""
        ...

    async def stop(self) -> None: ...

    @property
    def url(self) -> str | None: ...

    def readings(self) -> list[Reading]:
        """Its own figures for the metrics, now (records published, publish latency)."""
        ...
