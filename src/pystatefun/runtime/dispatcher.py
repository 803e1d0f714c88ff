"""Mailboxes and invocations: at most one batch in flight per address, FIFO per address.

Messages wait as inbox rows (durable before anyone acknowledged them), and each mailbox is also
held in memory: a message enters it once its row is committed, so the hot path reads no row.
Rows that are not in memory (recovered at start-up, or re-driven from outside) are read from the
store first. A request-reply message without an idempotency key is the one exception: it lives
only in memory, because its request is answered only after the step that processes it commits,
and a crash before that leaves the client without an answer to retry on.

A fixed pool of workers takes ready addresses; a worker takes the address's oldest messages (up
to the endpoint's ``maxNumBatchRequests``), invokes the function, and commits the step that
consumes them with all their effects. Messages that arrive meanwhile wait for the next batch.
Replies to request-reply callers go to the waiting request once that step commits (never stored).

An address is in exactly one of these states (``_scheduled`` holds the last three)::

    idle ──message──> ready ──worker──> running ──step committed──> idle, or ready if more
                                           └─retryable failure──> parked ──backoff──> ready

Failures are handled per address; others keep flowing. An unreachable endpoint parks the
address with backoff, and after ``dead_letter_after_attempts`` calls its batch is dead-lettered.
A function that raised gets a few retries, then its batch is split until the one message it
cannot take is dead-lettered alone (``isolation``); a terminal failure dead-letters at once.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, final

from pystatefun.errors import InvocationError, RetryableError, TerminalError
from pystatefun.runtime.batches import invocation_rounds, step_from_reply
from pystatefun.runtime.commits import Commits
from pystatefun.runtime.concurrency import InvocationLimit
from pystatefun.runtime.egress import EgressRouting
from pystatefun.runtime.failure_policy import FailureHandler, FailurePolicy
from pystatefun.runtime.invocation_trace import invocation_span
from pystatefun.runtime.invoker import Invoker
from pystatefun.runtime.mailboxes import Batch, Mailbox, Mailboxes
from pystatefun.runtime.metrics import FunctionLoad, RuntimeMetrics, load_by_type
from pystatefun.runtime.options import RuntimeOptions
from pystatefun.runtime.registry import StateRegistry
from pystatefun.runtime.replies import ReplyWaiters, is_reply_address
from pystatefun.runtime.routes import RouteTable
from pystatefun.runtime.statecache import StateCache
from pystatefun.store import InboxMessage, StateValue, Step, StorageEngine
from pystatefun.types import Address

if TYPE_CHECKING:
    from pystatefun.tracing import TraceSpan

__all__ = ["Dispatcher"]


def _arrival(queued: list[InboxMessage]) -> Callable[[InboxMessage], int]:
    """Sort key of the messages of one mailbox by arrival: their seqs; a message held in
    memory only (no seq) counts as arriving with the queued message before it."""
    held: dict[int, int] = {}
    last = -1
    for message in queued:
        if message.seq is not None:
            last = message.seq
        else:
            held[id(message)] = last
    return lambda m: m.seq if m.seq is not None else held.get(id(m), -1)


_log = logging.getLogger("pystatefun.runtime")
_UNBOUNDED_BATCH = 10_000


@final
class Dispatcher:
    """Schedules invocations over per-address mailboxes.

    It is given everything it works with: the storage ``engine``, the ``routes`` from function
    types to endpoints, the ``invoker`` that calls remote ones, the ``egress`` routing, and the
    ``replies`` that request-reply callers wait on. ``on_step`` hears of every committed step,
    ``on_fatal`` of a store that can no longer commit; ``on_failure`` replaces the retry and
    dead-letter policy (see ``FailureHandler``). ``data_dir`` (when storage is one) is named in
    the log lines that say how to list and re-drive dead letters. ``registry`` holds the states
    remote functions declared (the test harness keeps one across dispatchers).
    """

    def __init__(
        self,
        engine: StorageEngine,
        *,
        routes: RouteTable,
        invoker: Invoker,
        egress: EgressRouting,
        options: RuntimeOptions,
        replies: ReplyWaiters,
        on_step: Callable[[Step], None],
        on_fatal: Callable[[str], None],
        on_failure: FailureHandler | None = None,
        data_dir: Path | None = None,
        registry: StateRegistry | None = None,
        metrics: RuntimeMetrics | None = None,
    ) -> None:
        self._store = engine
        self.metrics = metrics or RuntimeMetrics()
        self._routes = routes
        self._invoker = invoker
        self._egress = egress
        self._options = options
        self.registry = registry or StateRegistry()
        self._states = StateCache(options.state_cache_addresses)
        self._limit = InvocationLimit(options.max_inflight, options.min_inflight)
        self.mailboxes = Mailboxes(self._schedule, owns=engine.owns)
        self._scheduled: set[Address] = set()
        self._running: set[Address] = set()
        self._parked: dict[Address, asyncio.TimerHandle | None] = {}  # None: for good

        self._ready: asyncio.Queue[Address | None] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._finished = asyncio.Event()  # an invocation ended (``release`` waits for it)
        commits = self._commits = Commits(
            engine, mailboxes=self.mailboxes, states=self._states, replies=replies, routes=routes,
            on_step=on_step, on_fatal=on_fatal, metrics=self.metrics, data_dir=data_dir,
        )  # fmt: skip
        self._failures = FailurePolicy(
            commits, options=options, park=self._park, on_failure=on_failure
        )

    # --- scheduling ------------------------------------------------------------------------

    def start(self) -> None:
        self._workers = [
            asyncio.create_task(self._worker(), name=f"pystatefun-worker-{n}")
            for n in range(self._options.max_inflight)
        ]

    def _schedule(self, address: Address) -> None:
        if self._stopping or address in self._scheduled:
            return
        mailbox = self.mailboxes.get(address)
        if mailbox is None or not mailbox.waiting():
            return
        self._scheduled.add(address)
        self._idle.clear()
        self._ready.put_nowait(address)

    async def idle(self) -> None:
        """Return once no address is ready or running (parked ones do not count): every
        message that can be processed now has been."""
        await self._idle.wait()

    def _check_idle(self) -> None:
        if not self._running and not (self._scheduled - self._parked.keys()):
            self._idle.set()

    def _full_batch(self, address: Address) -> int:
        """Messages per request at most: bounded if the endpoint is not, and by a step's."""
        bound = self._routes.route(address).max_batch or _UNBOUNDED_BATCH
        return min(bound, self._store.max_step_messages)

    def _batch_limit(self, address: Address) -> int:
        """The full batch, or less while the address's function is failing (isolation)."""
        return self._failures.batch_limit(address, self._full_batch(address))

    def try_admit(self, address: Address) -> bool:
        """Reserve a place for an ingress message if there is room now (see ``admit``)."""
        return self.mailboxes.try_admit(address, self._routes.route(address).max_batch)

    async def admit(self, address: Address) -> None:
        """Back-pressure for ingress (see ``Mailboxes.admit``)."""
        await self.mailboxes.admit(address, self._routes.route(address).max_batch)

    # --- workers -------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            # A place among the invocations in flight first: until one is free, ready
            # addresses wait in the queue, and their mailboxes fill into larger batches.
            await self._limit.acquire()
            address = await self._ready.get()
            if address is None or self._stopping:
                self._limit.release(None)
                return
            assert address not in self._running, f"{address} invoked twice at once"
            self._running.add(address)
            round_trip_s = None
            try:
                round_trip_s = await self._process(address)
            except Exception:  # noqa: BLE001 - a bug must not kill a worker; the address waits
                _log.exception("%s: unexpected error; parking the address", address)
                self._park(address, self._options.retry_backoff_max_s)
            finally:
                self._limit.release(round_trip_s)
                self._running.discard(address)
                self._finished.set()
                if address not in self._parked:
                    self._scheduled.discard(address)
                    self.mailboxes.forget_if_empty(address)
                    if self.mailboxes.get(address) is None:
                        self._failures.forget(address)
                    self._schedule(address)
                self._check_idle()

    def _park(self, address: Address, delay_s: float | None) -> None:
        """Retry ``address`` after ``delay_s`` (None: only once something unparks it)."""
        loop = asyncio.get_running_loop()
        handle = None if delay_s is None else loop.call_later(delay_s, self._unpark, address)
        self._parked[address] = handle

    def _unpark(self, address: Address) -> None:
        if address in self._parked and not self._stopping:
            self._parked.pop(address)
            self._idle.clear()
            self._ready.put_nowait(address)

    async def _take_rows(self, address: Address, mailbox: Mailbox, limit: int) -> Batch:
        """The next batch when stored rows are not in memory (recovered at start-up, or
        re-driven): those rows (read from the store) and the queue's head, in arrival order.
        Rows are older than the queue after a restart, but a re-drive appends rows to the end
        of the mailbox, behind messages already queued: both are merged by their seqs."""
        in_memory = [m.seq for m in mailbox.queue if m.seq is not None]
        # foreign: never a message of this runtime's own steps, which it delivers to memory
        # itself (perhaps only after this read: reading it as well would run it twice).
        rows = await self._store.read_batch(address, limit, in_memory, foreign=True)
        if not rows:
            mailbox.unloaded = 0  # the count was stale (rows consumed by a re-drive)
        queued = list(islice(mailbox.queue, 0, limit))
        # A prefix of the queue and of the rows: Mailboxes.consumed pops the queue's head for
        # the messages that are queued ones.
        return Batch(list(islice(heapq.merge(rows, queued, key=_arrival(queued)), limit)))

    async def _process(self, address: Address) -> float | None:
        """Invoke ``address`` with its next batch; returns the invocation's round trip, or
        None when there was none (or it failed)."""
        mailbox = self.mailboxes.get(address)
        if mailbox is None:
            return None
        limit = self._batch_limit(address)
        if mailbox.unloaded:
            batch = await self._take_rows(address, mailbox, limit)
        else:
            batch = Batch(list(islice(mailbox.queue, 0, limit)))
        if not batch.messages:
            return None
        if is_reply_address(address):
            await self._commits.drop_stale_replies(address, batch)
            return None
        mailbox.in_flight = len(batch.messages)
        mailbox.in_flight_queue = self.mailboxes.queued(address, batch.messages)
        try:
            return await self._invoke_and_commit(address, batch)
        finally:
            self.mailboxes.finished(address)

    async def _invoke_and_commit(self, address: Address, batch: Batch) -> float | None:
        failure: InvocationError | None = None
        started = time.monotonic()
        remote = self._routes.route(address).remote is not None
        span = invocation_span(self._options.tracer, address, batch, remote=remote)
        try:
            step, stored = await self._invoke(address, batch, span)
        except InvocationError as exc:
            failure = exc
        except Exception as exc:  # noqa: BLE001 - a bug: log it, and let the policy decide
            _log.exception("%s: unexpected error while invoking", address)
            failure = RetryableError(f"{address}: {exc!r}")
        round_trip_s = time.monotonic() - started
        if failure is None:
            outcome = await self._commits.commit(address, step, batch=batch, stored=stored,
                                                 span=span)  # fmt: skip
            if outcome.committed:
                self._failures.committed(address)
                self.metrics.function(address.typename).invoked(len(batch.messages), step)
                return round_trip_s
            failure = TerminalError(f"{address}: {outcome.error}")
        if span is not None:
            span.end(error=str(failure))
        await self._failures.failed(address, batch, failure)
        return None

    async def _read_state(self, address: Address) -> dict[str, StateValue]:
        values = self._states.get(address)
        if values is None:
            values = await self._store.read_state(address)
            self._states.put(address, values)
        return values

    async def _invoke(
        self, address: Address, taken: Batch, span: TraceSpan | None
    ) -> tuple[Step, dict[str, StateValue]]:
        """The step of ``taken``, and the state values the invocation read."""
        batch = taken.messages
        route = self._routes.route(address)
        if route.embedded is None and route.remote is None:
            raise self._routes.unserved(address)
        stored = await self._read_state(address)
        now_ms = self._options.clock_ms()
        if route.embedded is not None:
            step = await route.embedded.invoke(
                address, batch, stored, egress=self._egress, now_ms=now_ms
            )
            return step, stored
        endpoint = route.remote
        assert endpoint is not None
        where = f"{address} at {route.url}"
        rounds = invocation_rounds(address, batch, self.registry, stored, where=where,
                                   limit=endpoint.transport.payload_max_bytes,
                                   clock_ms=self._options.clock_ms)  # fmt: skip
        body = next(rounds)
        while True:
            mailbox = self.mailboxes.get(address)
            if mailbox is not None:  # the batch may have been cut to fit
                mailbox.in_flight = len(batch)
                mailbox.in_flight_queue = self.mailboxes.queued(address, batch)
            reply = await self._invoker.call(endpoint, route.typename, body, where,
                                             trace=span and span.traceparent)  # fmt: skip
            try:
                body = rounds.send(reply)
            except StopIteration as answered:
                registered, result = answered.value
                break
        step = step_from_reply(address, batch, result, registered=registered, stored=stored,
                               egress=self._egress, now_ms=self._options.clock_ms())  # fmt: skip
        return step, stored

    # --- lifecycle -------------------------------------------------------------------------

    async def release(self, gone: Callable[[Address], bool]) -> None:
        """Give up the addresses ``gone`` selects (their partition moves elsewhere; messages
        stay stored, cached state goes) once no invocation of theirs runs: those commit last."""
        while True:
            idle = [a for a in self.mailboxes.addresses() if gone(a) and a not in self._running]
            for address in idle:
                if (handle := self._parked.pop(address, None)) is not None:
                    handle.cancel()
                self._scheduled.discard(address)
                self._failures.forget(address)
                self.mailboxes.drop(address)
            if not any(gone(a) for a in self._running):
                self._states.forget(gone)
                self._check_idle()
                return
            self._finished.clear()
            await self._finished.wait()

    async def rescan(self) -> None:
        """Pick up mailboxes filled from outside (``pystatefun dead-letters redrive``)."""
        # Only rows no step of this runtime wrote: its own it delivers to memory itself, and
        # may not have yet (counting those as unloaded would read them as well).
        for address, count in (await self._store.pending_counts(foreign=True)).items():
            mailbox = self.mailboxes.get(address)
            known = 0 if mailbox is None else mailbox.unloaded
            if count > known:  # a count running ahead of memory heals in _take_rows
                self.mailboxes.add_unloaded(address, count - known)

    async def stop(self, grace_s: float) -> None:
        """Stop taking work; let running batches finish for ``grace_s``, then abandon them
        (uncommitted, so their messages are delivered again after a restart)."""
        self._stopping = True
        for handle in self._parked.values():
            if handle is not None:
                handle.cancel()
        self._parked.clear()
        self.mailboxes.stop()
        for _ in self._workers:
            self._ready.put_nowait(None)
        _, late = await asyncio.wait(self._workers, timeout=grace_s) if self._workers else ((), ())
        for task in late:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if late:
            _log.warning("%d invocation(s) did not finish in %.0fs; they will run again after "
                         "a restart", len(late), grace_s)  # fmt: skip

    def load_by_type(self) -> dict[str, FunctionLoad]:
        """Per function type, its load this instant, for the metrics."""
        return load_by_type(self.mailboxes.items(), blocked=self._parked, running=self._running)

    def statistics(self) -> dict[str, int]:
        return {
            "pending_messages": sum(m.waiting() for m in self.mailboxes),
            "addresses_pending": sum(1 for m in self.mailboxes if m.waiting()),
            "inflight_limit": int(self._limit.limit),
            "state_cache_hits": self._states.hits,
            "state_cache_misses": self._states.misses,
            "running": len(self._running),
            "parked": len(self._parked),
            "batches_committed": self._commits.batches_committed,
            "dead_lettered_batches": self._commits.dead_lettered_batches,
            "calls": self._invoker.calls,
            "failed_attempts": self._invoker.attempts_failed,
        }
