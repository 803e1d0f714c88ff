"""Every address's waiting messages, in memory, and the back-pressure on them.

A message joins its mailbox once its inbox row is committed (or, for a request-reply message
without an idempotency key, at once: it is held in memory only). Stored rows that are not in
memory (found at start-up, re-driven from outside) are only counted here; the dispatcher reads
them when their turn comes. Back-pressure is StateFun's: an ingress message waits for room while
``maxNumBatchRequests`` messages wait behind the batch in flight.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import NamedTuple, final

from pystatefun.errors import StoppingError
from pystatefun.runtime.replies import is_reply_address
from pystatefun.store import RELAYED, InboxMessage
from pystatefun.types import Address

__all__ = ["Batch", "Mailbox", "Mailboxes"]


@final
class Batch(NamedTuple):
    """Messages taken from a mailbox for one invocation, in arrival order: stored rows not held
    in memory (read from the store), and a prefix of the in-memory queue. Which is which is
    told by identity: a queued message is the very object at the queue's head."""

    messages: list[InboxMessage]


@final
@dataclass(slots=True)
class Mailbox:
    """One address's messages: ``queue`` in memory, in arrival order, and ``unloaded`` stored
    rows not in memory, which are older than the queue's."""

    queue: deque[InboxMessage] = field(default_factory=deque)
    unloaded: int = 0
    in_flight: int = 0  # messages of the batch being invoked
    in_flight_queue: int = 0  # how many of them are the queue's head
    reserved: int = 0  # admitted ingress messages not yet committed

    def waiting(self) -> int:
        return len(self.queue) + self.unloaded


@final
class Mailboxes:
    """The mailboxes of every address with messages; ``on_ready`` hears of new messages.

    Only addresses this runtime serves (``owns``) get messages in memory: a cluster worker's
    message to an address of another worker's partition is stored, and that worker reads it."""

    def __init__(
        self,
        on_ready: Callable[[Address], None],
        *,
        owns: Callable[[Address], bool] = lambda address: True,
    ) -> None:
        self._boxes: dict[Address, Mailbox] = {}
        self._space: dict[Address, asyncio.Event] = {}
        self._on_ready = on_ready
        self._owns = owns
        self._stopping = False

    def get(self, address: Address) -> Mailbox | None:
        return self._boxes.get(address)

    def __iter__(self) -> Iterator[Mailbox]:
        return iter(self._boxes.values())

    def addresses(self) -> list[Address]:
        return list(self._boxes)

    def items(self) -> Iterator[tuple[Address, Mailbox]]:
        return iter(self._boxes.items())

    def _box(self, address: Address) -> Mailbox:
        box = self._boxes.get(address)
        if box is None:
            box = self._boxes[address] = Mailbox()
        return box

    def deliver(self, message: InboxMessage) -> None:
        """Queue ``message`` behind the ones already waiting for its target."""
        target = message.target
        if message.seq == RELAYED:
            return  # the store delivers it to its mailbox itself
        if not self._owns(target) and not is_reply_address(target):
            return  # stored; its partition's owner reads it
        self._box(target).queue.append(message)
        self._on_ready(target)

    def drop(self, address: Address) -> None:
        """Forget ``address``'s mailbox (its partition moved to another worker): its messages
        stay stored, for their new owner."""
        box = self._boxes.pop(address, None)
        if box is not None and box.reserved:
            self._boxes[address] = Mailbox(reserved=box.reserved)  # ingress requests still come
        self._wake(address)

    def add_unloaded(self, address: Address, count: int) -> None:
        """``count`` stored messages for ``address`` are not in memory."""
        self._box(address).unloaded += count
        self._on_ready(address)

    def consumed(self, address: Address, batch: Batch) -> None:
        """``batch`` (or the part of it that was kept, if it was cut) was consumed, committed
        or dead-lettered: it leaves its mailbox."""
        box = self._box(address)
        queue = box.queue
        for message in batch.messages:
            if queue and queue[0] is message:
                queue.popleft()
            elif box.unloaded:
                box.unloaded -= 1
        self._wake(address)

    def queued(self, address: Address, messages: list[InboxMessage]) -> int:
        """How many of ``messages`` (a batch) are the head of ``address``'s queue."""
        box = self._boxes.get(address)
        if box is None:
            return 0
        head = {id(m) for m in islice(box.queue, 0, len(messages))}
        return sum(1 for m in messages if id(m) in head)

    def finished(self, address: Address) -> None:
        """The batch in flight for ``address`` ended (committed or not)."""
        box = self._boxes.get(address)
        if box is not None:
            box.in_flight = box.in_flight_queue = 0
            self._wake(address)

    def forget_if_empty(self, address: Address) -> None:
        box = self._boxes.get(address)
        if box is not None and not (box.waiting() or box.reserved or box.in_flight):
            del self._boxes[address]

    def withdraw(self, message: InboxMessage) -> bool:
        """Take a not-yet-invoked in-memory ``message`` back out of its mailbox (a request-reply
        request that gave up waiting); False if it is being invoked or already processed."""
        box = self._boxes.get(message.target)
        if box is None:
            return False
        for index, queued in enumerate(box.queue):
            if queued is message:
                if index < box.in_flight_queue:
                    return False
                del box.queue[index]
                self._wake(message.target)
                return True
        return False

    # --- back-pressure ----------------------------------------------------------------------

    def _backlog(self, address: Address) -> int:
        """Messages waiting behind the batch in flight, plus admitted ones not yet committed."""
        box = self._boxes.get(address)
        return 0 if box is None else box.waiting() - box.in_flight + box.reserved

    def try_admit(self, address: Address, limit: int) -> bool:
        """Reserve a place now if fewer than ``limit`` (if not 0) messages wait behind
        ``address``'s batch in flight; the common case, without a coroutine."""
        if self._stopping or (limit and self._backlog(address) >= limit):
            return False
        self._box(address).reserved += 1
        return True

    async def admit(self, address: Address, limit: int) -> None:
        """Wait while ``limit`` (if not 0) messages wait behind ``address``'s batch in flight,
        then reserve a place."""
        while limit and self._backlog(address) >= limit:
            if self._stopping:
                raise StoppingError(f"the runtime is stopping; {address} takes no new messages")
            await self._space.setdefault(address, asyncio.Event()).wait()
        self._box(address).reserved += 1

    def release(self, address: Address, message: InboxMessage | None) -> None:
        """End an ``admit`` reservation with the ``message`` it became (committed, or held in
        memory), or with None when nothing was added."""
        self._box(address).reserved -= 1
        if message is not None and message.seq == RELAYED:
            message = None  # the store delivers it to its mailbox itself
        if message is not None and (self._owns(address) or is_reply_address(address)):
            self.deliver(message)
        else:
            self.forget_if_empty(address)
            self._wake(address)

    def waiting_for_room(self) -> list[Address]:
        """Addresses an ingress request waits on (for tests and statistics)."""
        return list(self._space)

    def _wake(self, address: Address) -> None:
        event = self._space.pop(address, None)
        if event is not None:
            event.set()

    def stop(self) -> None:
        """Every request waiting for room is refused (``StoppingError``)."""
        self._stopping = True
        for event in self._space.values():
            event.set()
