"""Ingress request-reply: an HTTP request waiting for the function's answer to its caller.

In request-reply mode the ingress message's caller is a reply address in the reserved
``io.pystatefun/ingress-reply`` type, one id per waiting request. A function answers with
``context.send(...)`` to ``context.caller``; the answer is handed to the waiting request once
the step that sent it commits. It is not stored: after a crash nobody waits for it, and a retry
of the request (with its ``Idempotency-Key``) is answered as a duplicate.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import NamedTuple, final

from pystatefun.store import Payload
from pystatefun.types import Address

__all__ = [
    "REPLY_NAMESPACE",
    "REPLY_TYPE",
    "Answer",
    "DeadLettered",
    "ReplyWaiters",
    "is_reply_address",
]


@final
class DeadLettered(NamedTuple):
    """The request's message went to the dead letters: nothing will answer it."""

    dead_letter_id: int
    error: str


#: What a waiting request is told: the function's answer, or that its message is dead-lettered.
Answer = Payload | DeadLettered

REPLY_NAMESPACE = "io.pystatefun"
REPLY_TYPE = "ingress-reply"


def is_reply_address(address: Address) -> bool:
    """Whether ``address`` is a waiting ingress request rather than a function."""
    return address.type == REPLY_TYPE and address.namespace == REPLY_NAMESPACE


@final
class ReplyWaiters:
    """Pending request-reply requests by reply-address id."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Answer | None]] = {}
        # Unique within the process, which is all a reply address must be: ids are never
        # stored, and a restart leaves nobody waiting. A random prefix tells runs apart in logs.
        self._prefix = f"{uuid.uuid4().hex[:8]}-"
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self) -> tuple[Address, asyncio.Future[Answer | None]]:
        """A fresh reply address, and the future its answer (or None, on shutdown) completes."""
        reply_id = f"{self._prefix}{next(self._ids):x}"
        if self._loop is None:  # cached: looking the loop up costs a system call (getpid)
            self._loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer | None] = self._loop.create_future()
        self._waiting[reply_id] = future
        return Address(REPLY_NAMESPACE, REPLY_TYPE, reply_id), future

    def close(self, address: Address) -> None:
        self._waiting.pop(address.id, None)

    def deliver(self, address: Address, answer: Answer) -> bool:
        """Complete the request waiting at ``address``; False if nobody waits any more."""
        future = self._waiting.pop(address.id, None)
        if future is None or future.done():
            return False
        future.set_result(answer)
        return True

    def abandon_all(self) -> None:
        """The runtime is stopping: every waiting request is answered "stopping" (None)."""
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)
        self._waiting.clear()

    def __len__(self) -> int:
        return len(self._waiting)
