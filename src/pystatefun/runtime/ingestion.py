"""``Ingestion``: the runtime as its connectors see it (``pystatefun.io.api.RuntimeHandle``).

An ingress hands a message to ``ingest``, which waits for room in the target's mailbox
(back-pressure), commits the message (with its idempotency key and the source's position, in
one step) and returns once it is durable; only then may the ingress acknowledge it. With
``wait_for_reply`` it also waits for the function's answer to the message's caller, or for the
message to be dead-lettered, which is answered at once with the dead letter's id.

A request-reply message without an idempotency key is not stored before it is processed: its
answer comes only after the step that processes it commits, so a crash before then loses
nothing the client was told about, and saves two writes per request.

On a cluster, only the worker serving an address sees its function's reply; a request-reply
request that another worker received is asked of that one (``owner_requests``), which ingests
it here as its own and sends back what became of it. While the address is between owners,
the asking worker asks again, within the reply timeout.

While the store takes no writes (a full disk: ``StorageEngine.unwritable``), a request is
refused at once (``UNWRITABLE``: the client sends it again later), while a log-based source's
``append`` waits for the store like any step, which pauses its partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import final

from pystatefun.errors import DataDirError, StoppingError, WriteOutcomeUnknownError
from pystatefun.io.api import IngestOutcome, IngestResult, IngressMessage
from pystatefun.runtime.dispatcher import Dispatcher
from pystatefun.runtime.metrics import RuntimeMetrics, timed_commit
from pystatefun.runtime.options import RuntimeOptions
from pystatefun.runtime.owner_requests import (
    AskedRequest,
    decode_request,
    decode_result,
    encode_request,
    encode_result,
)
from pystatefun.runtime.replies import Answer, DeadLettered, ReplyWaiters
from pystatefun.store import (
    DeadLetterEntry,
    EgressRecord,
    InboxMessage,
    NewMessage,
    OwnerMovingError,
    Payload,
    Position,
    Step,
    StorageEngine,
)
from pystatefun.types import Address

__all__ = ["Ingestion"]


class _MovedError(Exception):
    """An append step was refused: its source partition is another worker's now."""


_log = logging.getLogger("pystatefun.runtime")
#: How much longer than the reply timeout a worker waits for the owner it asked: the owner
#: answers "no reply in time" itself at the reply timeout.
_ASK_MARGIN_S = 5.0


def _give_up(answer: asyncio.Future[Answer | None]) -> None:
    """The reply timeout passed: the waiting request stops waiting (None: no answer)."""
    if not answer.done():
        answer.set_result(None)


@final
class Ingestion:
    """Takes messages from connectors into the runtime; ``stopping`` refuses new ones."""

    def __init__(
        self,
        engine: StorageEngine,
        *,
        dispatcher: Dispatcher,
        replies: ReplyWaiters,
        options: RuntimeOptions,
        stopping: Callable[[], bool],
        on_fatal: Callable[[str], None] = lambda reason: None,
        watch_serving: Callable[[Callable[[], None]], None] = lambda changed: None,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self._latency = (metrics or RuntimeMetrics()).step_commit
        self._store = engine
        self._on_fatal = on_fatal
        self._dispatcher = dispatcher
        self._replies = replies
        self._options = options
        self._stopping = stopping
        self._watch_serving = watch_serving

    async def ingest(
        self,
        target: Address,
        typename: str,
        value: bytes,
        *,
        idempotency_key: str | None = None,
        wait_for_reply: bool = False,
        position: Position | None = None,
        trace: str | None = None,
    ) -> IngestResult:
        """Append one message durably; with ``wait_for_reply``, also wait for the answer.
        With tracing on, an ``ingest`` span (a child of ``trace``) covers it all."""
        tracer = self._options.tracer
        if tracer is None:
            return await self._ingest(target, typename, value, key=idempotency_key,
                                      wait=wait_for_reply, position=position,
                                      trace=None)  # fmt: skip
        span = tracer.start(f"ingest {target.typename}", parent=trace, kind="server",
                            attributes={"pystatefun.address": str(target)})  # fmt: skip
        try:
            result = await self._ingest(target, typename, value, key=idempotency_key,
                                        wait=wait_for_reply, position=position,
                                        trace=span.traceparent)  # fmt: skip
        except BaseException as exc:
            span.end(error=repr(exc))
            raise
        fine = result.outcome in (IngestOutcome.ACCEPTED, IngestOutcome.REPLIED)
        span.end(error=None if fine else result.outcome.value)
        return result

    async def _ingest(
        self, target: Address, typename: str, value: bytes, *, key: str | None, wait: bool,
        position: Position | None, trace: str | None,
    ) -> IngestResult:  # fmt: skip
        if wait and not self._store.owns(target):
            return await self._through_owner(AskedRequest(target, typename, value, key))
        return await self._ingest_here(
            target, typename, value, key=key, wait=wait, position=position, trace=trace
        )

    async def _ingest_here(
        self,
        target: Address,
        typename: str,
        value: bytes,
        *,
        key: str | None,
        wait: bool,
        position: Position | None,
        trace: str | None,
    ) -> IngestResult:
        if (unwritable := self._store.unwritable) is not None:  # a full disk: nothing taken
            return IngestResult(IngestOutcome.UNWRITABLE, error=unwritable)
        if not await self._admitted(target):
            return IngestResult(IngestOutcome.STOPPING)
        caller, answer = self._replies.open() if wait else (None, None)
        payload = Payload(typename, value)
        held: InboxMessage | None = None  # a request-reply message kept in memory only
        try:
            try:
                if caller is not None and key is None and position is None:
                    held = InboxMessage(None, target, caller, payload, trace)
                    self._dispatcher.mailboxes.release(target, held)
                elif (
                    added := await self._append(target, payload, caller, key, position, trace=trace)
                ) is not IngestOutcome.ACCEPTED:
                    return IngestResult(added)
            except DataDirError as exc:
                return self._store_failed(exc)
            if answer is None:
                return IngestResult(IngestOutcome.ACCEPTED)
            # A timer rather than asyncio.wait_for: no extra task on the hot path.
            timeout = answer.get_loop().call_later(self._options.reply_timeout_s, _give_up, answer)
            reply = await answer
            timeout.cancel()
        finally:
            if caller is not None:
                self._replies.close(caller)
        return self._answered(reply, held)

    def _store_failed(self, exc: DataDirError) -> IngestResult:
        """The store takes no more steps (a cluster worker whose partitions were taken over,
        a disk that failed): the runtime stops; the client retries later, or checks first
        when the write's outcome is unknown (its fsync failed: it may be on disk after all)."""
        self._on_fatal(f"an ingress step could not be committed: {exc}")
        if isinstance(exc, WriteOutcomeUnknownError):
            return IngestResult(IngestOutcome.UNANSWERED, error=str(exc))
        return IngestResult(IngestOutcome.STOPPING)

    async def _through_owner(self, request: AskedRequest) -> IngestResult:
        """A request-reply request for an address another worker serves, asked of that
        worker; asked again while the address is between owners, until the reply timeout."""
        reply_timeout_s, loop = self._options.reply_timeout_s, asyncio.get_running_loop()
        give_up, delay = loop.time() + reply_timeout_s, 0.02
        data = encode_request(request)
        while not self._stopping():
            try:
                answer = await self._store.ask_owner(
                    request.target, data, timeout_s=reply_timeout_s + _ASK_MARGIN_S
                )
            except OwnerMovingError as exc:
                reason = str(exc)
            except TimeoutError as exc:
                _log.warning("a request-reply request for %s got no answer: %s",
                             request.target, exc)  # fmt: skip
                return IngestResult(IngestOutcome.UNANSWERED)
            else:
                result = decode_result(answer)
                if result is not None and result.outcome is not IngestOutcome.STOPPING:
                    return result
                # Moved away, or its owner is stopping (and hands it over): ask the next one.
                reason = "it moved away from the worker asked, or that worker is stopping"
            if loop.time() > give_up:
                _log.warning("a request-reply request for %s was not taken: %s",
                             request.target, reason)  # fmt: skip
                return IngestResult(IngestOutcome.UNAVAILABLE)
            await asyncio.sleep(delay)  # the partition is moving: ask its next owner soon
            delay = min(delay * 2, 0.25)
        return IngestResult(IngestOutcome.STOPPING)

    async def answer_asked(self, data: bytes) -> bytes:
        """Ingest a request-reply request another worker received for an address this one
        serves, and say what became of it (nothing, if the address is no longer served here:
        the asking worker asks its new owner)."""
        request = decode_request(data)
        if not self._store.owns(request.target):
            return encode_result(None)
        target, typename, value, key = request
        try:
            result = await self._ingest_here(
                target, typename, value, key=key, wait=True, position=None, trace=None
            )
        except Exception as exc:  # noqa: BLE001 - the asker must not ask again: it may have run
            _log.exception("a request-reply request for %s another worker asked failed", target)
            failed = f"the worker serving {target} failed while answering: {exc}"
            result = IngestResult(IngestOutcome.UNANSWERED, error=failed)
        return encode_result(result)

    def _answered(self, reply: Answer | None, held: InboxMessage | None) -> IngestResult:
        """What a request-reply request is told once its wait ended."""
        if isinstance(reply, Payload):
            return IngestResult(IngestOutcome.REPLIED, reply.typename, reply.value)
        if isinstance(reply, DeadLettered):
            return IngestResult(
                IngestOutcome.DEAD_LETTERED, dead_letter_id=reply.dead_letter_id, error=reply.error
            )
        if held is not None and self._dispatcher.mailboxes.withdraw(held):
            return IngestResult(IngestOutcome.WITHDRAWN)
        return IngestResult(IngestOutcome.REPLY_TIMEOUT)

    async def _admitted(self, target: Address) -> bool:
        """Wait for room in ``target``'s mailbox (back-pressure); False when stopping."""
        if self._stopping():
            return False
        if self._dispatcher.try_admit(target):
            return True
        try:
            await self._dispatcher.admit(target)
        except StoppingError:
            return False
        return True

    async def _append(
        self,
        target: Address,
        payload: Payload,
        caller: Address | None,
        key: str | None,
        position: Position | None,
        *,
        trace: str | None = None,
    ) -> IngestOutcome:
        """Commit the message (with its idempotency key and position): ``ACCEPTED``;
        ``DUPLICATE`` if the key was seen, ``UNAVAILABLE`` if the store could not take it
        now (nothing written either way)."""
        step = Step(messages=[NewMessage(target, caller, payload)])
        if key is not None:
            step.dedup_key = key
            window_ms = int(self._options.dedup_window_s * 1000)
            step.dedup_expires_at_ms = self._options.clock_ms() + window_ms
        if position is not None:
            step.positions.append(position)
        message = None
        try:
            outcome = await timed_commit(self._store, step, self._latency)
            if outcome.committed and outcome.seqs:  # none: stored by another worker
                message = InboxMessage(outcome.seqs[0], target, caller, payload, trace)
        finally:
            self._dispatcher.mailboxes.release(target, message)
        if outcome.duplicate:
            return IngestOutcome.DUPLICATE
        if not outcome.committed:
            _log.warning("a message for %s was not taken: %s", target, outcome.error)
            return IngestOutcome.UNAVAILABLE
        return IngestOutcome.ACCEPTED

    async def append(self, messages: Sequence[IngressMessage]) -> IngestOutcome:
        """Append ``messages`` in as few steps as back-pressure allows (see
        ``RuntimeHandle.append``): before waiting for room, the records complete so far
        commit with their position, so that a full mailbox never holds back what is ready and
        positions advance only past whole records."""
        pending: list[IngressMessage] = []
        try:
            for message in messages:
                if self._stopping():
                    return IngestOutcome.STOPPING
                if not self._dispatcher.try_admit(message.target):
                    pending = await self._commit_complete(pending)
                    if not await self._admitted(message.target):
                        return IngestOutcome.STOPPING
                pending.append(message)
            pending = await self._commit_complete(pending)
            assert not pending, "the last message of a batch carries its position"
            return IngestOutcome.ACCEPTED
        except _MovedError as moved:
            _log.info("an ingress append was not taken: %s", moved)
            return IngestOutcome.UNAVAILABLE
        finally:
            for message in pending:  # not written: their reservations end empty
                self._dispatcher.mailboxes.release(message.target, None)

    async def _commit_complete(self, pending: list[IngressMessage]) -> list[IngressMessage]:
        """Commit ``pending`` up to its last message with a position, in one step; what is
        left (the start of a record not yet whole) stays reserved and is returned."""
        cut = max((n + 1 for n, m in enumerate(pending) if m.position is not None), default=0)
        ready, rest = pending[:cut], pending[cut:]
        if not ready:
            return rest
        position = ready[-1].position
        assert position is not None
        step = Step(
            messages=[NewMessage(m.target, None, Payload(m.typename, m.value)) for m in ready],
            positions=[position],
        )
        try:
            outcome = await timed_commit(self._store, step, self._latency)
        except BaseException:
            for message in ready:
                self._dispatcher.mailboxes.release(message.target, None)
            raise
        if not outcome.committed:  # its source partition moved to another worker
            for message in ready:
                self._dispatcher.mailboxes.release(message.target, None)
            raise _MovedError(outcome.error)
        for new, seq in zip(step.messages, outcome.seqs, strict=True):
            delivered = InboxMessage(seq, new.target, None, new.payload)
            self._dispatcher.mailboxes.release(new.target, delivered)
        return rest

    async def reject(
        self, target: Address, error: str, message: IngressMessage | None, *, position: Position
    ) -> IngestOutcome:
        """Dead-letter what an ingress cannot deliver, with its position, in one step."""
        kept = (
            ()
            if message is None
            else (NewMessage(target, None, Payload(message.typename, message.value)),)
        )
        step = Step(dead_letter=DeadLetterEntry(target, error, 1, kept), positions=[position])
        outcome = await timed_commit(self._store, step, self._latency)
        return IngestOutcome.ACCEPTED if outcome.committed else IngestOutcome.UNAVAILABLE

    async def positions(self, source: str) -> dict[str, str]:
        return await self._store.positions(source)

    def serves(self, source: str, key: str) -> bool:
        return self._store.owns_position(source, key)

    def watch_serving(self, changed: Callable[[], None]) -> None:
        self._watch_serving(changed)

    async def pop_egress(self, egress: str, topic: str) -> bytes | None:
        record = await self._store.pop_egress(egress, topic)
        return None if record is None else record.payload.value

    @property
    def instance_id(self) -> str:
        return self._store.instance_id

    def egress_shards(self) -> tuple[int, ...]:
        return self._store.egress_shards()

    async def egress_records(
        self, egress: str, *, shard: int, after_seq: int, limit: int
    ) -> list[EgressRecord]:
        return await self._store.egress_after(egress, after_seq, limit, shard=shard)

    async def egress_published(self, egress: str, *, shard: int, up_to_seq: int) -> None:
        await self._store.delete_egress(egress, up_to_seq, shard=shard)
