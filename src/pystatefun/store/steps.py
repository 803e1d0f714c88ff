"""A step: everything one unit of processing writes, committed atomically.

An invocation's step consumes its batch from the inbox and writes the function's effects; a
timer step moves due delayed messages into the inbox; an ingress step appends messages (with an
idempotency key, and the input position they were read at). Every storage engine applies each
step whole or not at all (docs/architecture.md, "The consistency contract").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, final

from pystatefun.store.records import Payload, StateValue
from pystatefun.types import Address

__all__ = [
    "RELAYED",
    "CancelTimer",
    "DeadLetterEntry",
    "EgressOut",
    "NewMessage",
    "NewTimer",
    "Position",
    "Step",
    "StepOutcome",
]


@final
class NewMessage(NamedTuple):
    """A message to append to ``target``'s mailbox (``trace``: as ``InboxMessage``'s)."""

    target: Address
    caller: Address | None
    payload: Payload
    trace: str | None = None


@final
@dataclass(frozen=True, slots=True)
class NewTimer:
    """A delayed message from ``sender``; ``token`` (if any) must be unique among its pending
    (``trace``: as ``TimerRecord``'s)."""

    fire_at_ms: int
    sender: Address
    token: str | None
    target: Address
    payload: Payload
    trace: str | None = None


@final
@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Cancel ``sender``'s pending delayed message with ``token``; unknown tokens are a no-op."""

    sender: Address
    token: str


@final
class EgressOut(NamedTuple):
    """A record for ``egress`` (its id, like ``io.statefun.playground/egress``) under ``topic``
    (the connector's routing key: a playground topic, a Kafka topic; "" when it has none)."""

    egress: str
    topic: str
    payload: Payload


@final
class Position(NamedTuple):
    """Where an ingress ``source`` has read up to in one of its partitions (``key``): a Kafka
    partition's next offset, a Kinesis shard's sequence number. Written in the same step as the
    messages read before it, so a restart resumes exactly after what was committed."""

    source: str
    key: str
    position: str


@final
@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """A batch moved to the dead letters: for ``target``, why, after how many attempts."""

    target: Address
    error: str
    attempts: int
    messages: tuple[NewMessage, ...]


@final
@dataclass(slots=True)
class Step:
    """The writes of one step. Timer operations apply in list order (cancel-then-reschedule
    with the same token is legal)."""

    consumed: list[int] = field(default_factory=list)
    state_address: Address | None = None
    state_puts: list[StateValue] = field(default_factory=list)
    state_deletes: list[str] = field(default_factory=list)
    messages: list[NewMessage] = field(default_factory=list)
    timer_ops: list[NewTimer | CancelTimer] = field(default_factory=list)
    egress: list[EgressOut] = field(default_factory=list)
    fired_timers: list[int] = field(default_factory=list)
    dedup_key: str | None = None
    dedup_expires_at_ms: int = 0
    dead_letter: DeadLetterEntry | None = None
    positions: list[Position] = field(default_factory=list)
    # Set by the store for a step whose messages are delivered before it commits: their ids.
    provisional: Sequence[int] | None = None


#: The id a store gives a message that it delivers to its mailbox by itself, after the step
#: committed (a cluster's message to a partition in another stream goes through an outbox):
#: the runtime does not hold it in memory, and learns of it as of any stored message.
RELAYED = 0


@final
class StepOutcome(NamedTuple):
    """What happened to a step: committed, refused as a duplicate, or failed (nothing written).

    ``seqs`` are the mailbox positions the store gave the step's ``messages``, in order: the
    runtime keeps committed messages in memory too, and needs their positions to consume them
    (``RELAYED``: the store delivers that one itself, later).
    ``dead_letter_id`` is the id of the step's dead letter, if it made one.
    """

    committed: bool
    duplicate: bool = False
    error: str | None = None
    seqs: tuple[int, ...] = ()
    dead_letter_id: int | None = None
