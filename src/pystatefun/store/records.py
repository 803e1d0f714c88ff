"""The rows the store keeps, as plain values that every layer can share.

The records made for every message (``Payload``, ``InboxMessage``, ``StateValue``) are named
tuples: immutable like frozen dataclasses, and several times cheaper to create.

Messages are stored as their ``TypedValue`` fields (typename, has_value, value) rather than as
protobuf blobs, so that state and mailboxes stay readable with plain SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, final

from pystatefun.types import Address

__all__ = [
    "DeadLetter",
    "EgressRecord",
    "ExpireMode",
    "InboxMessage",
    "Payload",
    "StateValue",
    "TimerRecord",
]


@final
class Payload(NamedTuple):
    """A typed value: the type name, and the bytes when there is a value."""

    typename: str
    value: bytes | None

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.typename)


@final
class InboxMessage(NamedTuple):
    """A message waiting in its target's mailbox. ``seq`` orders the whole inbox; it is None
    for a message that was never stored (a request-reply message without an idempotency key
    lives only in memory until the step that processes it commits). ``trace``: the W3C
    traceparent of the span that sent it, while it is held in memory (``pystatefun.tracing``;
    a stored message keeps none)."""

    seq: int | None
    target: Address
    caller: Address | None
    payload: Payload
    trace: str | None = None


class ExpireMode:
    """State TTL modes, numbered as the wire's ``ExpirationSpec.ExpireMode``."""

    NONE = 0
    AFTER_WRITE = 1
    AFTER_INVOKE = 2


@final
class StateValue(NamedTuple):
    """One stored state value of an address. ``expires_at_ms`` is None when it never expires."""

    name: str
    payload: Payload
    expire_mode: int
    expire_after_ms: int
    expires_at_ms: int | None


@final
@dataclass(frozen=True, slots=True)
class TimerRecord:
    """A delayed message: due at ``fire_at_ms``, cancellable by ``token`` (scoped to ``sender``).
    ``trace``: the W3C traceparent of the invocation that sent it, when traced, so that the
    message continues its trace when it fires (``pystatefun.tracing``)."""

    timer_id: int
    fire_at_ms: int
    sender: Address
    token: str | None
    target: Address
    payload: Payload
    trace: str | None = None


@final
@dataclass(frozen=True, slots=True)
class EgressRecord:
    """A record published to an egress (for the playground egress: a topic queue)."""

    seq: int
    egress: str
    topic: str
    payload: Payload


@final
@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A batch that could not be processed, with why; its messages can be re-driven."""

    dead_letter_id: int
    target: Address
    error: str
    failed_at_ms: int
    attempts: int
    messages: tuple[InboxMessage, ...]
