"""Mailboxes and invocations: at most one batch in flight per address, FIFO per address.

Messages wait as inbox rows (durable before anyone acknowledged them). A fixed pool of workers
takes ready addresses; a worker reads the address's oldest messages (up to the endpoint's
``maxNumBatchRequests``), invokes the function, and commits the step that consumes them with all
their effects. Messages that arrive meanwhile wait for the next batch.

An address is in exactly one of these states (``_scheduled`` holds the last three)::

    idle ──message──> ready ──worker──> running ──step committed──> idle, or ready if more
                                           └─retryable failure──> parked ──backoff──> ready

A retryable failure parks only that address; after ``dead_letter_after_attempts`` failures its
batch goes to the dead letters. A terminal failure dead-letters the batch at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, final

from pystatefun.errors import (
    InvocationError,
    RetryableError,
    StoppingError,
    TerminalError,
)
from pystatefun.runtime.batches import build_request, step_from_reply
from pystatefun.runtime.egress import EgressRouter
from pystatefun.runtime.invoker import RemoteInvoker
from pystatefun.runtime.options import RuntimeOptions
from pystatefun.runtime.registry import StateRegistry
from pystatefun.runtime.replies import REPLY_NAMESPACE, REPLY_TYPE, ReplyWaiters
from pystatefun.store import InboxMessage, NewMessage, SqliteStore, Step
from pystatefun.types import Address

__all__ = ["Dispatcher"]

_log = logging.getLogger("pystatefun.runtime")
_HANDSHAKE_ROUNDS_MAX = 4
_UNBOUNDED_BATCH = 10_000


@final
class Dispatcher:
    """Schedules invocations over per-address mailboxes."""

    def __init__(
        self,
        store: SqliteStore,
        module: Any,
        options: RuntimeOptions,
        replies: ReplyWaiters,
        on_step: Callable[[Step], None],
    ) -> None:
        self._store = store
        self._module = module
        self._options = options
        self._replies = replies
        self._on_step = on_step  # after a commit: wake the timer service, count statistics
        self._invoker = RemoteInvoker()
        self._registry = StateRegistry()
        topics = module.egresses[0].topics if module.egresses else None
        self._egress_router = EgressRouter(topics)
        self._pending: dict[Address, int] = {}
        self._reserved: dict[Address, int] = {}
        self._in_flight: dict[Address, int] = {}  # messages of the batch being invoked
        self._space: dict[Address, asyncio.Event] = {}
        self._scheduled: set[Address] = set()
        self._running: set[Address] = set()
        self._parked: dict[Address, asyncio.TimerHandle] = {}
        self._attempts: dict[Address, int] = {}
        self._ready: asyncio.Queue[Address | None] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self.batches_committed = 0
        self.dead_lettered_batches = 0

    # --- scheduling ------------------------------------------------------------------------

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._worker(), name=f"pystatefun-worker-{n}")
            for n in range(self._options.max_inflight)
        ]

    def add_pending(self, address: Address, count: int = 1) -> None:
        """``count`` messages for ``address`` were committed to its mailbox."""
        self._pending[address] = self._pending.get(address, 0) + count
        self._schedule(address)

    def _schedule(self, address: Address) -> None:
        if self._stopping or address in self._scheduled or not self._pending.get(address):
            return
        self._scheduled.add(address)
        self._ready.put_nowait(address)

    def _max_batch(self, address: Address) -> int:
        """The endpoint's maxNumBatchRequests; 0 when it is unbounded (a value <= 0)."""
        endpoint = self._module.endpoint_for(address.typename)
        limit = endpoint.max_num_batch_requests if endpoint is not None else 0
        return max(limit, 0)

    def _batch_limit(self, address: Address) -> int:
        """How many messages one request carries at most. An unbounded endpoint still gets
        bounded requests, so no single request grows without limit."""
        return self._max_batch(address) or _UNBOUNDED_BATCH

    def _backlog(self, address: Address) -> int:
        """Messages waiting behind the batch in flight, plus admitted ones not yet committed."""
        waiting = self._pending.get(address, 0) - self._in_flight.get(address, 0)
        return waiting + self._reserved.get(address, 0)

    async def admit(self, address: Address) -> None:
        """Back-pressure for ingress, as StateFun's: while ``maxNumBatchRequests`` messages wait
        behind the batch in flight, the next one waits for room."""
        limit = self._max_batch(address)
        while limit and self._backlog(address) >= limit:
            if self._stopping:
                raise StoppingError(f"the runtime is stopping; {address} takes no new messages")
            await self._space.setdefault(address, asyncio.Event()).wait()
        self._reserved[address] = self._reserved.get(address, 0) + 1

    def release(self, address: Address, committed: bool) -> None:
        """End an ``admit`` reservation; ``committed`` when its message reached the inbox."""
        self._reserved[address] -= 1
        if not self._reserved[address]:
            del self._reserved[address]
        if committed:
            self.add_pending(address)
        else:
            self._wake_space(address)

    def _consumed(self, address: Address, count: int) -> None:
        left = self._pending.get(address, 0) - count
        if left > 0:
            self._pending[address] = left
        else:
            self._pending.pop(address, None)
        self._wake_space(address)

    def _wake_space(self, address: Address) -> None:
        event = self._space.pop(address, None)
        if event is not None:
            event.set()

    # --- workers -------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while (address := await self._ready.get()) is not None and not self._stopping:
            assert address not in self._running, f"{address} invoked twice at once"
            self._running.add(address)
            try:
                await self._process(address)
            except Exception:  # noqa: BLE001 - a bug must not kill a worker; the address waits
                _log.exception("%s: unexpected error; parking the address", address)
                self._park(address, self._options.retry_backoff_max_s)
            finally:
                self._running.discard(address)
                if address not in self._parked:
                    self._scheduled.discard(address)
                    self._schedule(address)

    def _park(self, address: Address, delay_s: float) -> None:
        loop = asyncio.get_running_loop()
        self._parked[address] = loop.call_later(delay_s, self._unpark, address)

    def _unpark(self, address: Address) -> None:
        if self._parked.pop(address, None) is not None and not self._stopping:
            self._ready.put_nowait(address)

    async def _process(self, address: Address) -> None:
        batch = await self._store.read_batch(address, self._batch_limit(address))
        if not batch:
            self._pending.pop(address, None)  # the count was stale (an external re-drive)
            return
        if address.namespace == REPLY_NAMESPACE and address.type == REPLY_TYPE:
            await self._deliver_replies(address, batch)
            return
        self._in_flight[address] = len(batch)
        try:
            await self._invoke_and_commit(address, batch)
        finally:
            self._in_flight.pop(address, None)
            self._wake_space(address)

    async def _invoke_and_commit(self, address: Address, batch: list[InboxMessage]) -> None:
        try:
            step = await self._invoke(address, batch)
        except RetryableError as exc:
            await self._retry_later(address, batch, exc)
            return
        except TerminalError as exc:
            await self._dead_letter(address, batch, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a bug: log it, and let the policy decide
            _log.exception("%s: unexpected error while invoking", address)
            await self._retry_later(address, batch, RetryableError(f"{address}: {exc!r}"))
            return
        outcome = await self._store.commit(step)
        if not outcome.committed:
            failure = TerminalError(f"{address}: {outcome.error}")
            await self._dead_letter(address, batch, str(failure))
            return
        self._attempts.pop(address, None)
        self._committed(address, step)

    def _committed(self, address: Address, step: Step) -> None:
        self.batches_committed += 1
        self._consumed(address, len(step.consumed))
        for message in step.messages:
            self.add_pending(message.target)
        self._on_step(step)

    async def _invoke(self, address: Address, batch: list[InboxMessage]) -> Step:
        endpoint = self._module.endpoint_for(address.typename)
        if endpoint is None:
            served = ", ".join(e.functions for e in self._module.endpoints) or "none"
            raise TerminalError(
                f"{address}: no endpoint in {self._module.source} serves function type "
                f"{address.typename!r} (endpoints serve: {served})"
            )
        where = f"{address} at {endpoint.url_for(address.typename)}"
        for _ in range(_HANDSHAKE_ROUNDS_MAX):
            registered = self._registry.states(address.typename)
            stored = await self._store.read_state(address)
            body = self._request_within_limit(
                address, batch, registered=registered, stored=stored, endpoint=endpoint, where=where
            )
            reply = await self._invoker.call(endpoint, address.typename, body, where)
            if reply.HasField("incomplete_invocation_context"):
                missing = list(reply.incomplete_invocation_context.missing_values)
                self._registry.register(address.typename, where, missing)
                continue  # the handshake: resend the same batch with the states attached
            context = (registered, stored, self._egress_router, self._options.clock_ms())
            return step_from_reply(address, batch, reply.invocation_result, context)
        raise RetryableError(
            f"{where}: still missing state after {_HANDSHAKE_ROUNDS_MAX} handshakes; the function "
            "keeps declaring states it does not receive"
        )

    def _request_within_limit(
        self,
        address: Address,
        batch: list[InboxMessage],
        *,
        registered: dict[str, Any],
        stored: dict[str, Any],
        endpoint: Any,
        where: str,
    ) -> bytes:
        """The serialized request; a batch over ``payload_max_bytes`` is cut in half (the rest
        waits for the next batch) until it fits, and a single message that does not fit is
        terminal."""
        limit = endpoint.transport.payload_max_bytes
        while True:
            request = build_request(address, batch, registered, stored, self._options.clock_ms())
            body = request.SerializeToString()
            if len(body) <= limit:
                return body
            if len(batch) == 1:
                raise TerminalError(
                    f"{where}: a request of {len(body)} bytes for one message exceeds the "
                    f"endpoint's payload_max_bytes ({limit}); raise the limit or send less"
                )
            del batch[len(batch) // 2 :]
            self._in_flight[address] = len(batch)

    async def _retry_later(
        self, address: Address, batch: list[InboxMessage], error: InvocationError
    ) -> None:
        attempts = self._attempts.get(address, 0) + 1
        self._attempts[address] = attempts
        policy = self._options
        if attempts >= policy.dead_letter_after_attempts:
            await self._dead_letter(address, batch, str(error), attempts)
            return
        delay = min(
            policy.retry_backoff_initial_s * 2 ** (attempts - 1), policy.retry_backoff_max_s
        )
        _log.warning(
            "%s (attempt %d of %d; retrying in %.1fs, other addresses keep flowing)",
            error,
            attempts,
            policy.dead_letter_after_attempts,
            delay,
        )
        self._park(address, delay)

    async def _dead_letter(
        self, address: Address, batch: list[InboxMessage], error: str, attempts: int = 1
    ) -> None:
        step = Step(
            consumed=[m.seq for m in batch],
            dead_letter=(address, error, attempts),
            dead_letter_messages=[NewMessage(m.target, m.caller, m.payload) for m in batch],
        )
        outcome = await self._store.commit(step)
        assert outcome.committed, f"a dead-letter step cannot fail: {outcome.error}"
        self._attempts.pop(address, None)
        self.dead_lettered_batches += 1
        self._consumed(address, len(batch))
        data_dir = self._options.data_dir
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

    async def _deliver_replies(self, address: Address, batch: list[InboxMessage]) -> None:
        outcome = await self._store.commit(Step(consumed=[m.seq for m in batch]))
        assert outcome.committed
        self._consumed(address, len(batch))
        for message in batch:
            if not self._replies.deliver(address, message.payload):
                _log.info("%s: a reply arrived for a request that no longer waits", address)

    # --- lifecycle -------------------------------------------------------------------------

    async def rescan(self) -> None:
        """Pick up mailboxes filled from outside (``pystatefun dead-letters redrive``)."""
        for address, count in (await self._store.pending_counts()).items():
            if count > self._pending.get(address, 0):
                self._pending[address] = count
                self._schedule(address)

    async def stop(self, grace_s: float) -> None:
        """Stop taking work; let running batches finish for ``grace_s``, then abandon them
        (uncommitted, so their messages are delivered again after a restart)."""
        self._stopping = True
        for handle in self._parked.values():
            handle.cancel()
        self._parked.clear()
        for event in self._space.values():
            event.set()
        for _ in self._workers:
            self._ready.put_nowait(None)
        _, late = await asyncio.wait(self._workers, timeout=grace_s) if self._workers else ((), ())
        for task in late:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self._invoker.close()
        if late:
            _log.warning(
                "%d invocation(s) did not finish in %.0fs; they will run again after a restart",
                len(late),
                grace_s,
            )

    def statistics(self) -> dict[str, int]:
        return {
            "pending_messages": sum(self._pending.values()),
            "addresses_pending": len(self._pending),
            "running": len(self._running),
            "parked": len(self._parked),
            "batches_committed": self.batches_committed,
            "dead_lettered_batches": self.dead_lettered_batches,
            "calls": self._invoker.calls,
            "failed_attempts": self._invoker.attempts_failed,
        }
