"""After an invocation: committing its step and making the step's effects visible.

A step commits in one of two ways:

- **After the disk** (remote and co-located functions, and any step that could be refused on
  its own): wait until the step is durable, then deliver its messages and replies.
- **Before the disk, speculatively** (embedded functions): queue the step and apply its effects
  in memory at once. Its messages to embedded functions are delivered immediately, with
  provisional ids, so a chain of them runs at the speed of memory and one group commit holds
  many of its hops. That is safe because only other steps can see those effects, and steps
  commit in queue order: a step that saw them is durable only together with, or after, the one
  that made them (DESIGN §2.2). What leaves the runtime still waits for the commit: messages to
  remote functions, replies to request-reply callers; egress records are read from the store.
  If the store ever fails a commit, memory is ahead of the disk for good, and the runtime stops
  (``on_fatal``); a restart recovers from the last commit.

Failed batches go to the dead letters here too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import final

from pystatefun.errors import TerminalError
from pystatefun.runtime.batches import stored_seqs
from pystatefun.runtime.mailboxes import Mailboxes
from pystatefun.runtime.replies import ReplyWaiters, is_reply_address
from pystatefun.runtime.routes import Routes
from pystatefun.runtime.statecache import StateCache
from pystatefun.store import (
    InboxMessage,
    NewMessage,
    SqliteStore,
    StateValue,
    Step,
    StepOutcome,
    may_fail_alone,
)
from pystatefun.types import Address

__all__ = ["Commits"]

_log = logging.getLogger("pystatefun.runtime")
# Steps not yet durable beyond which embedded functions wait for their commits again: bounds
# the memory that speculative work can take when the disk falls behind.
_SPECULATIVE_BACKLOG_MAX = 4096

#: A batch and how many of its first messages were stored rows not held in memory.
Consumed = tuple[list[InboxMessage], int]
#: The same, with the state values its invocation read.
Invoked = tuple[list[InboxMessage], int, dict[str, StateValue]]


@final
class Commits:
    """Commits the steps of invocations and applies their effects to the runtime's memory."""

    def __init__(
        self,
        store: SqliteStore,
        memory: tuple[Mailboxes, StateCache, ReplyWaiters, Routes],
        hooks: tuple[Callable[[Step], None], Callable[[str], None]],
        data_dir: Path,
    ) -> None:
        self._store = store
        self._mailboxes, self._states, self._replies, self._routes = memory
        # on_step: after a commit (wakes the timer service); on_fatal: the store failed.
        self._on_step, self._on_fatal = hooks
        self._data_dir = data_dir
        self.batches_committed = 0
        self.dead_lettered_batches = 0

    async def commit(
        self,
        address: Address,
        step: Step,
        consumed: tuple[list[InboxMessage], int, dict[str, StateValue]],
    ) -> bool:
        """Commit the step of an invocation of ``address`` (``consumed``: its batch, how many
        of it were stored rows, and the state it read). False if the store refused it; the
        batch is then dead-lettered."""
        batch, from_rows, _ = consumed
        replies = [m for m in step.messages if is_reply_address(m.target)]
        if replies:
            step.messages = [m for m in step.messages if not is_reply_address(m.target)]
        if self._speculative(address, step):
            self._commit_speculatively(address, step, replies, consumed)
            return True
        outcome = await self._store.commit(step)
        if not outcome.committed:
            refused = TerminalError(f"{address}: {outcome.error}")
            await self.dead_letter(address, (batch, from_rows), str(refused))
            return False
        self.batches_committed += 1
        self._states.committed(address, step.state_puts, step.state_deletes)
        self._mailboxes.consumed(address, len(batch), from_rows)
        for message, seq in zip(step.messages, outcome.seqs, strict=True):
            self._mailboxes.deliver(
                InboxMessage(seq, message.target, message.caller, message.payload)
            )
        self._deliver_replies(replies)
        self._on_step(step)
        return True

    def _speculative(self, address: Address, step: Step) -> bool:
        """An embedded function's step that cannot be refused alone, while the store keeps up."""
        return (
            self._routes.route(address).embedded is not None
            and not may_fail_alone(step)
            and self._store.backlog < _SPECULATIVE_BACKLOG_MAX
        )

    def _commit_speculatively(
        self,
        address: Address,
        step: Step,
        replies: list[NewMessage],
        consumed: Invoked,
    ) -> None:
        batch, from_rows, stored = consumed
        message_ids, durable = self._store.submit(step)
        self._states.written(address, stored, step.state_puts, step.state_deletes)
        self._mailboxes.consumed(address, len(batch), from_rows)
        later = []
        for message, message_id in zip(step.messages, message_ids, strict=True):
            inbox = InboxMessage(message_id, message.target, message.caller, message.payload)
            if self._routes.route(message.target).embedded is not None:
                self._mailboxes.deliver(inbox)
            else:
                later.append(inbox)
        durable.add_done_callback(functools.partial(self._settled, address, step, later, replies))

    def _settled(
        self,
        address: Address,
        step: Step,
        later: list[InboxMessage],
        replies: list[NewMessage],
        durable: asyncio.Future[StepOutcome],
    ) -> None:
        """A speculative step is durable: release what waited for the disk."""
        self._states.settled(address)
        if durable.cancelled() or durable.exception() is not None:
            error = "cancelled" if durable.cancelled() else str(durable.exception())
            self._on_fatal(f"a step of {address} could not be committed: {error}")
            return
        self.batches_committed += 1
        for message in later:
            self._mailboxes.deliver(message)
        self._deliver_replies(replies)
        self._on_step(step)

    def _deliver_replies(self, replies: list[NewMessage]) -> None:
        for reply in replies:
            if not self._replies.deliver(reply.target, reply.payload):
                _log.info("%s: a reply arrived for a request that no longer waits", reply.target)

    async def dead_letter(
        self, address: Address, consumed: Consumed, error: str, attempts: int = 1
    ) -> None:
        """Move a failed batch to the dead letters, in one step that also consumes it."""
        batch, from_rows = consumed
        step = Step(
            consumed=stored_seqs(batch),
            dead_letter=(address, error, attempts),
            dead_letter_messages=[NewMessage(m.target, m.caller, m.payload) for m in batch],
        )
        outcome = await self._store.commit(step)
        assert outcome.committed, f"a dead-letter step cannot fail: {outcome.error}"
        self.dead_lettered_batches += 1
        self._mailboxes.consumed(address, len(batch), from_rows)
        data_dir = self._data_dir
        _log.error(
            "%d message(s) for %s moved to the dead letters: %s. List them with `pystatefun "
            "dead-letters list --data-dir %s`; after fixing the cause, re-drive them with "
            "`pystatefun dead-letters redrive --all --data-dir %s`.",
            len(batch),
            address,
            error,
            data_dir,
            data_dir,
        )

    async def drop_stale_replies(
        self, address: Address, batch: list[InboxMessage], from_rows: int
    ) -> None:
        """Stored messages to a request-reply caller: left by an earlier version, which stored
        replies, or re-driven. Nobody waits for them any more, so they are consumed."""
        outcome = await self._store.commit(Step(consumed=stored_seqs(batch)))
        assert outcome.committed
        self._mailboxes.consumed(address, len(batch), from_rows)
        _log.info("%s: dropped %d reply(ies) nobody waits for", address, len(batch))
