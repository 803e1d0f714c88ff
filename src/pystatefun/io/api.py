"""The contract between connectors and the runtime: what an ingress hands over, what it gets back.

Connectors depend on this module alone, never on the runtime, so a connector can be written and
tested against any implementation of ``ConnectorHandle``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol, final

from pystatefun.types import Address

__all__ = ["ConnectorHandle", "IngestOutcome", "IngestResult"]


class IngestOutcome(Enum):
    ACCEPTED = "accepted"  # durably in the target's mailbox
    DUPLICATE = "duplicate"  # the idempotency key was seen within its window; nothing added
    REPLIED = "replied"  # request-reply: accepted, and the function answered
    REPLY_TIMEOUT = "reply_timeout"  # request-reply: accepted, but no answer in time
    # request-reply without an idempotency key: no answer in time (or the runtime is stopping),
    # and the message, never stored, was taken back before it was processed; nothing happened
    WITHDRAWN = "withdrawn"
    STOPPING = "stopping"  # the runtime is shutting down; nothing added


@final
@dataclass(frozen=True, slots=True)
class IngestResult:
    outcome: IngestOutcome
    reply_typename: str | None = None
    reply_value: bytes | None = None


class ConnectorHandle(Protocol):
    """What the runtime offers connectors."""

    async def ingest(
        self,
        target: Address,
        typename: str,
        value: bytes,
        idempotency_key: str | None,
        wait_for_reply: bool,
    ) -> IngestResult:
        """Append one message to ``target``'s mailbox; return once it is durable (or refused)."""
        ...

    async def pop_egress(self, egress: str, topic: str) -> bytes | None:
        """Remove and return the oldest record of ``topic``, durably; None when empty."""
        ...
