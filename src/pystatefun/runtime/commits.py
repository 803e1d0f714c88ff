"""After an invocation: committing its step and making the step's effects visible.

A step commits in one of two ways:

- **After the disk** (remote and co-located functions, and any step that could be refused on
  its own): wait until the step is durable, then deliver its messages and replies.
- **Before the disk, speculatively** (embedded functions): queue the step and apply its effects
  in memory at once. Its messages to embedded functions are delivered immediately, with
  provisional ids, so a chain of them runs at the speed of memory and one group commit holds
  many of its hops. That is safe because only other steps can see those effects, and steps
  commit in queue order: a step that saw them is durable only together with, or after, the one
  that made them (docs/architecture.md, "Embedded steps"). What leaves the runtime still waits
  for the commit: messages to remote functions, replies to request-reply callers; egress records
  are read from the store. If the store ever fails a commit, memory is ahead of the disk for
  good, and the runtime stops (``on_fatal``); a restart recovers from the last commit.

Failed batches go to the dead letters here too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, final

from pystatefun.runtime.batches import stored_seqs
from pystatefun.runtime.mailboxes import Batch, Mailboxes
from pystatefun.runtime.metrics import RuntimeMetrics, timed_commit
from pystatefun.runtime.replies import DeadLettered, ReplyWaiters, is_reply_address
from pystatefun.runtime.routes import RouteTable
from pystatefun.runtime.statecache import StateCache
from pystatefun.store import (
    DeadLetterEntry,
    InboxMessage,
    NewMessage,
    NewTimer,
    StateValue,
    Step,
    StepOutcome,
    StorageEngine,
    may_fail_alone,
)
from pystatefun.types import Address

if TYPE_CHECKING:  # OpenTelemetry is imported only when traces are asked for
    from pystatefun.tracing import TraceSpan

__all__ = ["Commits"]

_log = logging.getLogger("pystatefun.runtime")
# Steps not yet durable beyond which embedded functions wait for their commits again: bounds
# the memory that speculative work can take when the disk falls behind.
_SPECULATIVE_BACKLOG_MAX = 4096


def _end(commit_span: TraceSpan | None, span: TraceSpan | None, error: str | None) -> None:
    """The ``commit`` span ends with its step, and the invocation's once the step committed
    (the dispatcher ends a refused step's invocation span, with the failure it becomes)."""
    if commit_span is not None:
        commit_span.end(error)
    if span is not None and error is None:
        span.end()


@final
class Commits:
    """Commits the steps of invocations and applies their effects to the runtime's memory.

    ``on_step`` hears of every committed step (the timer service wakes for new timers);
    ``on_fatal`` of a speculative step the store failed to commit; ``on_refused``, when given,
    decides instead of the dead letters what becomes of a batch whose step the store refused
    (the test harness raises it); ``data_dir`` names the data dir in the dead letters' log line.
    """

    def __init__(
        self,
        store: StorageEngine,
        *,
        mailboxes: Mailboxes,
        states: StateCache,
        replies: ReplyWaiters,
        routes: RouteTable,
        on_step: Callable[[Step], None],
        on_fatal: Callable[[str], None],
        metrics: RuntimeMetrics,
        data_dir: Path | None = None,
    ) -> None:
        self._store = store
        self._commit_latency = metrics.step_commit
        self._mailboxes, self._states, self._replies, self._routes = (
            mailboxes,
            states,
            replies,
            routes,
        )
        self._on_step, self._on_fatal = on_step, on_fatal
        self._data_dir = data_dir
        self.batches_committed = 0
        self.dead_lettered_batches = 0

    async def commit(
        self, address: Address, step: Step, *, batch: Batch, stored: dict[str, StateValue],
        span: TraceSpan | None = None,
    ) -> StepOutcome:  # fmt: skip
        """Commit the step of an invocation of ``address`` that took ``batch`` and read the
        state ``stored``. A step the store refuses is returned as such, its batch untouched:
        the caller decides what becomes of it. ``span``: the invocation's (tracing on), ended
        here once the step is durable, with a ``commit`` span under it; the messages the step
        sends carry it on."""
        replies = [m for m in step.messages if is_reply_address(m.target)]
        if replies:
            step.messages = [m for m in step.messages if not is_reply_address(m.target)]
        started = time.monotonic()
        trace = None if span is None else span.traceparent
        commit_span = None if span is None else span.child("commit")
        if trace is not None and step.timer_ops:  # delayed messages carry it to when they fire
            step.timer_ops = [replace(op, trace=trace) if isinstance(op, NewTimer) else op
                              for op in step.timer_ops]  # fmt: skip
        if self._speculative(address, step):
            self._commit_speculatively(address, step, replies, batch=batch, stored=stored,
                                       started=started, span=span,
                                       commit_span=commit_span)  # fmt: skip
            return StepOutcome(committed=True)
        outcome = await timed_commit(self._store, step, self._commit_latency)
        _end(commit_span, span, outcome.error if not outcome.committed else None)
        if not outcome.committed:
            return outcome
        self.batches_committed += 1
        self._states.committed(address, step.state_puts, step.state_deletes)
        self._mailboxes.consumed(address, batch)
        for message, seq in zip(step.messages, outcome.seqs, strict=True):
            self._mailboxes.deliver(
                InboxMessage(seq, message.target, message.caller, message.payload, trace)
            )
        self._deliver_replies(replies)
        self._on_step(step)
        return outcome

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
        *,
        batch: Batch,
        stored: dict[str, StateValue],
        started: float,
        span: TraceSpan | None,
        commit_span: TraceSpan | None,
    ) -> None:
        message_ids, durable = self._store.submit(step)
        self._states.written(address, stored, step.state_puts, step.state_deletes)
        self._mailboxes.consumed(address, batch)
        later = []
        trace = None if span is None else span.traceparent
        for message, message_id in zip(step.messages, message_ids, strict=True):
            inbox = InboxMessage(message_id, message.target, message.caller, message.payload,
                                 trace)  # fmt: skip
            if self._routes.route(message.target).embedded is not None:
                self._mailboxes.deliver(inbox)
            else:
                later.append(inbox)
        settled = functools.partial(self._settled, address, step, later, replies,
                                    started=started, spans=(commit_span, span))  # fmt: skip
        durable.add_done_callback(settled)

    def _settled(
        self,
        address: Address,
        step: Step,
        later: list[InboxMessage],
        replies: list[NewMessage],
        durable: asyncio.Future[StepOutcome],
        *,
        started: float,
        spans: tuple[TraceSpan | None, TraceSpan | None],
    ) -> None:
        """A speculative step is durable: release what waited for the disk."""
        self._commit_latency.observe(time.monotonic() - started)
        self._states.settled(address)
        if durable.cancelled() or durable.exception() is not None:
            error = "cancelled" if durable.cancelled() else str(durable.exception())
            for span in spans:
                if span is not None:
                    span.end(error)
            self._on_fatal(f"a step of {address} could not be committed: {error}")
            return
        _end(*spans, None)
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
        self, address: Address, batch: Batch, *, error: str, attempts: int = 1
    ) -> None:
        """Move a failed batch to the dead letters, in one step that also consumes it."""
        messages = batch.messages
        entry = DeadLetterEntry(
            address,
            error,
            attempts,
            tuple(NewMessage(m.target, m.caller, m.payload) for m in messages),
        )
        step = Step(consumed=stored_seqs(messages), dead_letter=entry)
        outcome = await timed_commit(self._store, step, self._commit_latency)
        assert outcome.committed, f"a dead-letter step cannot fail: {outcome.error}"
        assert outcome.dead_letter_id is not None
        self.dead_lettered_batches += 1
        self._mailboxes.consumed(address, batch)
        # Request-reply callers waiting on these messages are told now, not at their timeout.
        told = DeadLettered(outcome.dead_letter_id, error)
        for message in messages:
            if message.caller is not None and is_reply_address(message.caller):
                self._replies.deliver(message.caller, told)
        where = "" if self._data_dir is None else f" --data-dir {self._data_dir}"
        _log.error(
            "%d message(s) for %s moved to the dead letters: %s. List them with `pystatefun "
            "dead-letters list%s`; after fixing the cause, re-drive them with `pystatefun "
            "dead-letters redrive --all%s`.",
            len(messages),
            address,
            error,
            where,
            where,
        )

    async def drop_stale_replies(self, address: Address, batch: Batch) -> None:
        """Stored messages to a request-reply caller: left by an earlier version, which stored
        replies, or re-driven. Nobody waits for them any more, so they are consumed."""
        step = Step(consumed=stored_seqs(batch.messages))
        outcome = await timed_commit(self._store, step, self._commit_latency)
        assert outcome.committed
        self._mailboxes.consumed(address, batch)
        _log.info("%s: dropped %d reply(ies) nobody waits for", address, len(batch.messages))
