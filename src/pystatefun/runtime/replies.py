"""Ingress request-reply: an HTTP request waiting for the function's answer to its caller.

In request-reply mode the ingress message's caller is a reply address in the reserved
``io.pystatefun/ingress-reply`` type, one id per waiting request. A function answers with
``context.send(...)`` to ``context.caller``; the message travels through the mailbox like any
other (so it is durable and exactly-once), and its delivery completes the waiting request.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import final

from pystatefun.store import Payload
from pystatefun.types import Address

__all__ = ["REPLY_NAMESPACE", "REPLY_TYPE", "ReplyWaiters"]

REPLY_NAMESPACE = "io.pystatefun"
REPLY_TYPE = "ingress-reply"


@final
class ReplyWaiters:
    """Pending request-reply requests by reply-address id."""

    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[Payload | None]] = {}

    def open(self) -> tuple[Address, asyncio.Future[Payload | None]]:
        """A fresh reply address, and the future its answer (or None, on shutdown) completes."""
        reply_id = uuid.uuid4().hex
        future: asyncio.Future[Payload | None] = asyncio.get_running_loop().create_future()
        self._waiting[reply_id] = future
        return Address(REPLY_NAMESPACE, REPLY_TYPE, reply_id), future

    def close(self, address: Address) -> None:
        self._waiting.pop(address.id, None)

    def deliver(self, address: Address, payload: Payload) -> bool:
        """Complete the request waiting at ``address``; False if nobody waits any more."""
        future = self._waiting.pop(address.id, None)
        if future is None or future.done():
            return False
        future.set_result(payload)
        return True

    def abandon_all(self) -> None:
        """The runtime is stopping: every waiting request is answered "stopping" (None)."""
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)
        self._waiting.clear()

    def __len__(self) -> int:
        return len(self._waiting)
