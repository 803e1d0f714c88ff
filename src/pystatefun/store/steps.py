"""A step: everything one unit of processing writes, committed atomically (DESIGN §2.1).

An invocation's step consumes its batch from the inbox and writes the function's effects; a
timer step moves due delayed messages into the inbox; an ingress step appends one message. The
store applies each step whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, final

from pystatefun.store.records import Payload, StateValue
from pystatefun.types import Address

__all__ = ["CancelTimer", "NewMessage", "NewTimer", "Step", "StepOutcome"]


@final
class NewMessage(NamedTuple):
    """A message to append to ``target``'s mailbox."""

    target: Address
    caller: Address | None
    payload: Payload


@final
@dataclass(frozen=True, slots=True)
class NewTimer:
    """A delayed message from ``sender``; ``token`` (if any) must be unique among its pending."""

    fire_at_ms: int
    sender: Address
    token: str | None
    target: Address
    payload: Payload


@final
@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Cancel ``sender``'s pending delayed message with ``token``; unknown tokens are a no-op."""

    sender: Address
    token: str


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
    egress: list[tuple[str, str, Payload]] = field(default_factory=list)
    fired_timers: list[int] = field(default_factory=list)
    dedup_key: str | None = None
    dedup_expires_at_ms: int = 0
    dead_letter: tuple[Address, str, int] | None = None  # target, error, attempts
    dead_letter_messages: list[NewMessage] = field(default_factory=list)
    # Set by the store for a step whose messages are delivered before it commits: their ids.
    provisional: range | None = None


@final
class StepOutcome(NamedTuple):
    """What happened to a step: committed, refused as a duplicate, or failed (nothing written).

    ``seqs`` are the mailbox positions the store gave the step's ``messages``, in order: the
    runtime keeps committed messages in memory too, and needs their positions to consume them.
    """

    committed: bool
    duplicate: bool = False
    error: str | None = None
    seqs: tuple[int, ...] = ()
