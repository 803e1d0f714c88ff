"""A data dir's contents as records, the same for every storage engine.

Savepoints are made of these (``pystatefun.savepoint.format`` writes one line per record), and
bulk loads take them: ``DataDir.contents()`` reads them from one consistent snapshot,
``DataDir.loader()`` writes them. State values are ``StateContent``; timers are the store's own
``TimerRecord``; the rest are below.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, final

from pystatefun.store.records import Payload, StateValue, TimerRecord
from pystatefun.types import Address

__all__ = [
    "Content",
    "Contents",
    "DeadLetterContent",
    "DedupKey",
    "EgressContent",
    "MessageContent",
    "PositionContent",
    "StateContent",
]


@final
class StateContent(NamedTuple):
    address: Address
    value: StateValue


@final
class MessageContent(NamedTuple):
    target: Address
    caller: Address | None
    payload: Payload
    enqueued_at_ms: int


@final
class DeadLetterContent(NamedTuple):
    target: Address
    error: str
    failed_at_ms: int
    attempts: int
    messages: tuple[tuple[Address | None, Payload], ...]  # caller, payload


@final
class EgressContent(NamedTuple):
    egress: str
    topic: str
    payload: Payload
    created_at_ms: int


@final
class DedupKey(NamedTuple):
    key: str
    expires_at_ms: int


@final
class PositionContent(NamedTuple):
    """Where ingress ``source`` has read up to in its partition ``key``."""

    source: str
    key: str
    position: str


Content = (
    StateContent
    | MessageContent
    | TimerRecord
    | DeadLetterContent
    | EgressContent
    | DedupKey
    | PositionContent
)


@final
class Contents(NamedTuple):
    """A data dir's key groups and its records from one snapshot, in a stable order: state by
    address and name, messages in mailbox order, then timers, dead letters, egress records,
    idempotency keys and ingress positions. Close ``records`` (or read it to the end) soon: it
    holds the snapshot open."""

    key_groups: int
    records: Iterator[Content]
