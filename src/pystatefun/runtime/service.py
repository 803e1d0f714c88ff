"""``Runtime``: the embedded event-driven database for one module, in one process.

Start-up opens the data dir and recovers: every message still in a mailbox is scheduled again,
timers resume, and a summary is logged. Shutdown (SIGTERM/SIGINT in ``pystatefun run``) stops
taking messages, lets running invocations finish and commit (up to the grace period; anything
unfinished is simply not committed and runs again after a restart), then closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from types import TracebackType
from typing import Any, final

from pystatefun.errors import DataDirError, StoppingError
from pystatefun.io.api import IngestOutcome, IngestResult
from pystatefun.io.playground import PlaygroundEgressServer, PlaygroundIngressServer
from pystatefun.runtime.colocated import ColocatedServers
from pystatefun.runtime.dispatcher import Dispatcher
from pystatefun.runtime.egress import PLAYGROUND_EGRESS
from pystatefun.runtime.keygroups import key_group_of
from pystatefun.runtime.options import RuntimeOptions
from pystatefun.runtime.replies import ReplyWaiters
from pystatefun.runtime.timers import TimerService
from pystatefun.store import InboxMessage, NewMessage, Payload, SqliteStore, Step
from pystatefun.types import Address

__all__ = ["Runtime"]

_log = logging.getLogger("pystatefun.runtime")
_PURGE_INTERVAL_S = 60.0


def _give_up(answer: asyncio.Future[Payload | None]) -> None:
    """The reply timeout passed: the waiting request stops waiting (None: no answer)."""
    if not answer.done():
        answer.set_result(None)


@final
class Runtime:
    """Runs ``module`` (a loaded ``pystatefun.module.Module``) on the data dir of ``options``."""

    def __init__(self, module: Any, options: RuntimeOptions | None = None) -> None:
        self.module = module
        self.options = options or RuntimeOptions()
        self._store = SqliteStore(
            self.options.data_dir,
            self.options.durability,
            functools.partial(key_group_of, key_groups=self.options.key_groups),
            self.options.clock_ms,
            cache_mib=self.options.cache_mib,
        )
        self._replies = ReplyWaiters()
        # Co-located endpoints are called like remote ones, at the address of their server.
        self._colocated = ColocatedServers(module, self.options.data_dir)
        self._dispatcher = Dispatcher(
            self._store,
            self._colocated.module,
            self.options,
            self._replies,
            self._after_step,
            on_fatal=self._fail,
        )
        self._timers = TimerService(
            self._store, self.options.clock_ms, self._dispatcher.mailboxes.deliver
        )
        self._stop = asyncio.Event()
        #: Set when the runtime cannot go on (the store failed to commit); ``failure`` says why.
        self.failed = asyncio.Event()
        self.failure: str | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._ingress: PlaygroundIngressServer | None = None
        self._egress: PlaygroundEgressServer | None = None
        self._stopping = False
        self.recovered: dict[str, int] = {}

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await self._store.open(self.options.key_groups)
        await self._recover()
        # Function servers listen before the first batch is sent; they stop if the start fails.
        await self._colocated.start()
        try:
            await self._start_serving()
        except BaseException:
            await self._colocated.stop()
            raise

    async def _start_serving(self) -> None:
        self._dispatcher.start()
        self._tasks = [
            asyncio.create_task(self._timers.run(self._stop), name="pystatefun-timers"),
            asyncio.create_task(self._housekeeping(), name="pystatefun-housekeeping"),
        ]
        host, limits = self.options.host, self.options.http_limits
        ports = [c.port for c in (*self.module.ingresses, *self.module.egresses) if c.port]
        if len(ports) != len(set(ports)):
            raise DataDirError(
                f"{self.module.source}: the playground ingress and egress both ask for port "
                f"{ports[0]}; give each its own port (or 0 for a free one)"
            )
        if self.module.ingresses:
            spec = self.module.ingresses[0]
            self._ingress = PlaygroundIngressServer(
                self, host, spec.port, self.options.ingress_max_bytes, limits=limits
            )
            await self._ingress.start()
        if self.module.egresses:
            spec = self.module.egresses[0]
            self._egress = PlaygroundEgressServer(
                self, host, spec.port, PLAYGROUND_EGRESS, tuple(spec.topics), limits=limits
            )
            await self._egress.start()

    async def _recover(self) -> None:
        # Not the state table: counting it reads all of it, which slows the start-up (and
        # fills the page cache) in proportion to the number of entities.
        counts = await self._store.counts(("timers", "egress", "dead_letters"))
        pending = await self._store.pending_counts()
        for address, count in pending.items():
            self._dispatcher.mailboxes.add_unloaded(address, count)
        self.recovered = {
            "pending_messages": sum(pending.values()),
            "addresses": len(pending),
            "timers": counts["timers"],
            "dead_letters": counts["dead_letters"],
            "egress_records": counts["egress"],
        }
        _log.info(
            "opened %s: recovered %d pending message(s) for %d address(es), %d timer(s), "
            "%d dead letter(s), %d unread egress record(s)",
            self.options.data_dir,
            *self.recovered.values(),
        )

    async def stop(self) -> None:
        """Graceful shutdown; safe to call more than once."""
        if self._stopping:
            return
        self._stopping = True
        await self._dispatcher.stop(self.options.shutdown_grace_s)
        await self._colocated.stop()  # once no batch is in flight to them
        self._replies.abandon_all()
        if self._ingress is not None:
            await self._ingress.stop()
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._egress is not None:
            await self._egress.stop()
        await self._store.close()
        _log.info("stopped; %s", self._dispatcher.statistics())

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _housekeeping(self) -> None:
        """Pick up re-driven messages; drop expired idempotency keys and state values (so the
        state of an address that is never invoked again does not outlive its TTL on disk)."""
        since_purge = 0.0
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.options.rescan_interval_s)
            if self._stop.is_set():
                return
            since_purge += self.options.rescan_interval_s
            try:
                await self._dispatcher.rescan()
                if since_purge >= _PURGE_INTERVAL_S:
                    since_purge = 0.0
                    await self._store.purge_expired()
            except Exception:  # noqa: BLE001 - housekeeping must not die; the next round retries
                _log.exception("housekeeping failed; retrying in the next round")

    def _fail(self, reason: str) -> None:
        """Memory is ahead of the disk and cannot catch up: say so once; the owner stops."""
        if self.failure is None:
            self.failure = reason
            _log.critical("%s; stopping: a restart recovers from the last commit", reason)
            self.failed.set()

    def _after_step(self, step: Step) -> None:
        if step.timer_ops:
            self._timers.wake()

    @property
    def ingress_url(self) -> str | None:
        return None if self._ingress is None else self._ingress.url

    @property
    def egress_url(self) -> str | None:
        return None if self._egress is None else self._egress.url

    @property
    def store(self) -> SqliteStore:
        return self._store

    def statistics(self) -> dict[str, int]:
        return {
            **self._dispatcher.statistics(),
            "timers_fired": self._timers.fired,
            "colocated_restarts": self._colocated.restarts,
            "commits": self._store.commits,
            "steps": self._store.steps_committed,
        }

    # --- the connector handle ------------------------------------------------------------------

    async def ingest(
        self,
        target: Address,
        typename: str,
        value: bytes,
        idempotency_key: str | None,
        wait_for_reply: bool,
    ) -> IngestResult:
        """Append one message durably; with ``wait_for_reply``, also wait for the answer.

        A request-reply message without an idempotency key is not stored before it is
        processed: its answer comes only after the step that processes it commits, so a crash
        before then loses nothing the client was told about, and saves two writes per request.
        """
        if not await self._admitted(target):
            return IngestResult(IngestOutcome.STOPPING)
        caller, answer = self._replies.open() if wait_for_reply else (None, None)
        payload = Payload(typename, value)
        held: InboxMessage | None = None  # a request-reply message kept in memory only
        try:
            if caller is not None and idempotency_key is None:
                held = InboxMessage(None, target, caller, payload)
                self._dispatcher.mailboxes.release(target, held)
            elif await self._append(target, payload, idempotency_key, caller):
                return IngestResult(IngestOutcome.DUPLICATE)
            if answer is None:
                return IngestResult(IngestOutcome.ACCEPTED)
            # A timer rather than asyncio.wait_for: no extra task on the hot path.
            timeout = answer.get_loop().call_later(self.options.reply_timeout_s, _give_up, answer)
            reply = await answer
            timeout.cancel()
        finally:
            if caller is not None:
                self._replies.close(caller)
        if reply is not None:
            return IngestResult(IngestOutcome.REPLIED, reply.typename, reply.value)
        if held is not None and self._dispatcher.mailboxes.withdraw(held):
            return IngestResult(IngestOutcome.WITHDRAWN)
        return IngestResult(IngestOutcome.REPLY_TIMEOUT)

    async def _admitted(self, target: Address) -> bool:
        """Wait for room in ``target``'s mailbox (back-pressure); False when stopping."""
        if self._stopping:
            return False
        if self._dispatcher.try_admit(target):
            return True
        try:
            await self._dispatcher.admit(target)
        except StoppingError:
            return False
        return True

    async def _append(
        self, target: Address, payload: Payload, key: str | None, caller: Address | None
    ) -> bool:
        """Commit the message (and its idempotency key); True if the key was a duplicate."""
        step = Step(messages=[NewMessage(target, caller, payload)])
        if key is not None:
            step.dedup_key = key
            step.dedup_expires_at_ms = self.options.clock_ms() + int(
                self.options.dedup_window_s * 1000
            )
        message = None
        try:
            outcome = await self._store.commit(step)
            if outcome.committed:
                message = InboxMessage(outcome.seqs[0], target, caller, payload)
        finally:
            self._dispatcher.mailboxes.release(target, message)
        return outcome.duplicate

    async def pop_egress(self, egress: str, topic: str) -> bytes | None:
        record = await self._store.pop_egress(egress, topic)
        return None if record is None else record.payload.value
