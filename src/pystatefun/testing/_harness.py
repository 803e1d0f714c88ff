"""Test stateful functions in pytest against the runtime's own scheduler, in memory.

``FunctionHarness(functions, ...)`` drives the functions of ``StatefulFunctions`` with the
runtime's dispatcher (mailboxes, batches, the missing-state handshake, the step built from the
reply, its commit) on an in-memory storage engine (``pystatefun.store.MemoryEngine``), with the
SDK's real ``RequestReplyHandler`` answering in-process: no HTTP, no SQLite, no threads. So
batching, state TTLs, state type checks, delayed messages and their tokens behave as in
production, because they are production's code, while time is a fake clock that only
``advance`` moves.

Why not call the function with a hand-made ``Context``: a test checks what the runtime makes
of a reply (which state survives, where messages go, when delayed ones fire).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, final

from pystatefun.errors import InvocationError, RetryableError
from pystatefun.module import HttpEndpoint
from pystatefun.protocol import FromFunction, parse_from_function
from pystatefun.runtime.batches import payload_of
from pystatefun.runtime.dispatcher import Dispatcher
from pystatefun.runtime.options import RuntimeOptions
from pystatefun.runtime.registry import StateRegistry
from pystatefun.runtime.replies import ReplyWaiters
from pystatefun.runtime.timers import TimerService
from pystatefun.sdk import Message, RequestReplyHandler, StatefulFunctions, Type
from pystatefun.store import (
    ExpireMode,
    InboxMessage,
    MemoryEngine,
    NewTimer,
    Payload,
    StateValue,
    Step,
    TimerRecord,
)
from pystatefun.store.contents import MessageContent, StateContent
from pystatefun.testing._in_process import AnyEgress, InProcessRoutes, StopError
from pystatefun.testing._records import OutboxMessage, RecordedEgress, decode_payload, typed
from pystatefun.types import Address

__all__ = ["FunctionHarness"]

_MS_PER_S = 1000
_KEY_GROUPS = 128
_STOP_GRACE_S = 60.0  # the dispatcher is idle when it stops: nothing waits this long


@final
class FunctionHarness:
    """An in-memory runtime for the functions of one or more ``StatefulFunctions``, for tests.

    Several objects (an application whose functions are split between an embedded file and a
    remote one, say) run together, as one module would run them; a type bound twice is an error.

    - ``send``/``send_message`` put a message in its address's mailbox (no caller); ``run()``
      invokes addresses, one batch of all their waiting messages at a time, until every
      mailbox is empty. Messages between bound functions are delivered the same way.
    - Messages to function types ``functions`` does not bind are recorded in ``outbox``.
    - Delayed messages wait for the fake clock: ``advance`` moves it and runs what falls due.
    - ``state``/``set_state`` read and seed state; ``egress`` lists the egress records.

    An exception raised by a function (or an error the runtime would dead-letter, such as a
    state type change or a reused cancellation token) propagates out of ``run``/``advance``,
    naming the address: in a test, failing loudly is what you want. Nothing of that batch is
    applied, and its messages stay in the mailbox.
    """

    def __init__(self, *functions: StatefulFunctions, start_ms: int = 1_700_000_000_000) -> None:
        if not functions:
            raise TypeError("FunctionHarness needs at least one StatefulFunctions")
        self._functions = functions[0]
        if len(functions) > 1:  # one binding of every function of every object
            self._functions = StatefulFunctions()
            for bound in (part.for_typename(t) for part in functions for t in part.typenames):
                self._functions.register(bound.typename, bound.fun, bound.specs)
        self._handler = RequestReplyHandler(self._functions)
        self._registry = StateRegistry()  # the states functions declared, across runs
        self._now_ms = start_ms
        self._engine = MemoryEngine(self._clock, key_groups=_KEY_GROUPS)
        self._options = RuntimeOptions(clock_ms=self._clock, max_inflight=1, min_inflight=1)
        self._egress: list[RecordedEgress] = []
        self._failure: BaseException | None = None
        self._invocations_max = 0  # where the current run stops: a message loop
        #: Messages to function types that are not bound here, in the order they were sent.
        self.outbox: list[OutboxMessage] = []
        #: How many invocations (batches answered by a function) ran, handshakes not counted.
        self.invocations = 0

    # --- the clock ---------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """The fake clock, in epoch milliseconds."""
        return self._now_ms

    def _clock(self) -> int:
        return self._now_ms

    def advance(self, seconds: float = 0, *, ms: int = 0, max_steps: int = 10_000) -> int:
        """Move the clock forward and run: delayed messages fire at their due time, in order,
        and each is processed (with ``run``) before the clock moves past it. Returns the
        invocations made."""
        return self._sync(self.advance_async(seconds, ms=ms, max_steps=max_steps))

    async def advance_async(
        self, seconds: float = 0, *, ms: int = 0, max_steps: int = 10_000
    ) -> int:
        """``advance`` inside a running event loop (needed for ``async def`` functions there)."""
        if seconds < 0 or ms < 0:
            raise ValueError("the clock only moves forward")
        until = self._now_ms + round(seconds * _MS_PER_S) + ms
        return await self._drive(max_steps, until)

    # --- messages ----------------------------------------------------------------------------

    def send(self, typename: str, id: str, value: Any, value_type: Type | None = None) -> None:  # noqa: A002
        """Queue a message for ``typename``/``id``; ``value_type`` is inferred for ``bool``,
        ``int`` (IntType), ``float`` (FloatType) and ``str``, as ``message_builder`` does."""
        tpe = typed(value, value_type)
        encoded = tpe.serializer().serialize(value)
        self._deliver(Address.of(typename, id), Payload(tpe.typename, encoded))

    def send_message(self, message: Message) -> None:
        """Queue a ``Message`` made with ``message_builder`` (no caller)."""
        target = Address.of(message.target_typename, message.target_id)
        self._deliver(target, payload_of(message.typed_value))

    def run(self, max_steps: int = 10_000) -> int:
        """Invoke addresses until no mailbox holds a message (delayed messages wait for the
        clock). Returns the invocations made; raises ``RuntimeError`` naming the busy addresses
        after ``max_steps`` invocations (a message loop)."""
        return self._sync(self.run_async(max_steps))

    async def run_async(self, max_steps: int = 10_000) -> int:
        """``run`` inside a running event loop (needed for ``async def`` functions there)."""
        return await self._drive(max_steps, None)

    def delayed(self) -> list[NewTimer]:
        """The pending delayed messages, soonest first."""
        timers = [r for r in self._engine.snapshot().records if isinstance(r, TimerRecord)]
        timers.sort(key=lambda t: (t.fire_at_ms, t.timer_id))
        return [NewTimer(t.fire_at_ms, t.sender, t.token, t.target, t.payload) for t in timers]

    def egress(self, name: str | None = None) -> list[RecordedEgress]:
        """The egress records sent so far, in order; only those to egress ``name`` if given."""
        return [e for e in self._egress if name is None or e.egress == name]

    # --- state -------------------------------------------------------------------------------

    def _stored(self, address: Address, name: str) -> StateValue | None:
        records = self._engine.snapshot().records
        values = (r.value for r in records if isinstance(r, StateContent) and r.address == address)
        return next((value for value in values if value.name == name), None)

    def state(self, typename: str, id: str, name: str, type: Type | None = None) -> Any:  # noqa: A002
        """The value of state ``name`` of ``typename``/``id``, decoded as ``type`` when given
        (else primitives are decoded and other values are raw bytes); None when absent or
        expired by the fake clock."""
        value = self._stored(Address.of(typename, id), name)
        if value is None or (
            value.expires_at_ms is not None and value.expires_at_ms <= self._now_ms
        ):
            return None
        return decode_payload(value.payload, type)

    def set_state(self, typename: str, id: str, name: str, value: Any, type: Type) -> None:  # noqa: A002
        """Seed state before a test, encoded as ``type`` (which must be the type the function
        declares, or its invocation fails as in production). A state the function already
        declared gets its TTL from now; otherwise the seeded value never expires."""
        address = Address.of(typename, id)
        payload = Payload(type.typename, type.serializer().serialize(value))
        spec = self._registry.states(address.typename).get(name)
        mode, after = (spec.expire_mode, spec.expire_after_ms) if spec else (ExpireMode.NONE, 0)
        expires = None if mode == ExpireMode.NONE else self._now_ms + after
        stored = StateValue(name, payload, mode, after, expires)
        self._engine.load([StateContent(address, stored)])

    # --- driving the runtime's dispatcher -----------------------------------------------------

    def _bound(self, address: Address) -> bool:
        return address.typename in self._functions.typenames

    def _deliver(self, target: Address, payload: Payload) -> None:
        if not self._bound(target):
            self.outbox.append(OutboxMessage(target, None, payload))
            return
        self._engine.load([MessageContent(target, None, payload, self._now_ms)])

    def _sync(self, work: Coroutine[Any, Any, int]) -> int:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(work)
        work.close()
        raise RuntimeError(
            "run()/advance() cannot be called inside a running event loop: await run_async() "
            "or advance_async() there (they drive the SDK's handle_async in that loop)"
        )

    async def _drive(self, max_steps: int, until_ms: int | None) -> int:
        """Run the dispatcher until nothing is left to do at the current time (and, with
        ``until_ms``, at every timer's due time up to it)."""
        made, self._failure = self.invocations, None
        self._invocations_max = made + max_steps
        await self._engine.open(_KEY_GROUPS)
        dispatcher = Dispatcher(
            self._engine,
            routes=InProcessRoutes(),
            invoker=self,
            egress=AnyEgress(),
            options=self._options,
            replies=ReplyWaiters(),
            on_step=self._after_step,
            on_fatal=self._fatal,
            on_failure=self._failed,
            registry=self._registry,
        )

        def deliver(message: InboxMessage) -> None:
            if not self._bound(message.target):  # recorded as it fires; consumed unseen
                self.outbox.append(OutboxMessage(message.target, message.caller, message.payload))
            dispatcher.mailboxes.deliver(message)

        timers = TimerService(self._engine, self._clock, deliver)
        for address, count in (await self._engine.pending_counts()).items():
            dispatcher.mailboxes.add_unloaded(address, count)
        dispatcher.start()
        try:
            await self._settle(dispatcher, timers)
            while until_ms is not None:
                next_at = await self._engine.next_timer_at()
                if next_at is None or next_at > until_ms:
                    self._now_ms = until_ms
                    break
                self._now_ms = max(self._now_ms, next_at)
                await self._settle(dispatcher, timers)
        finally:
            await dispatcher.stop(_STOP_GRACE_S)
        return self.invocations - made

    async def _settle(self, dispatcher: Dispatcher, timers: TimerService) -> None:
        """Fire what is due now and process every message, until neither is left."""
        while True:
            fired = await timers.fire_due()
            await dispatcher.idle()
            if self._failure is not None:
                await self._raise_failure()
            if not fired:
                return

    async def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        assert failure is not None
        if isinstance(failure, StopError):
            busy = ", ".join(str(a) for a in await self._engine.pending_counts())
            raise RuntimeError(
                f"still busy after {self.invocations} invocations, probably a message loop; "
                f"addresses with messages waiting: {busy}"
            )
        raise failure

    def _failed(self, address: Address, error: InvocationError) -> None:
        """The dispatcher's failure policy here: stop, and raise what the function raised (or
        the runtime's error) out of ``run``; the batch stays in its mailbox."""
        if self._failure is None:
            cause = error.__cause__
            self._failure = cause if isinstance(error, RetryableError) and cause else error

    def _fatal(self, reason: str) -> None:
        self._failure = AssertionError(f"the memory engine failed a commit: {reason}")

    def _after_step(self, step: Step) -> None:
        """A step committed: count the invocation, record its egress and its messages to
        types the harness does not bind."""
        if step.state_address is None or not self._bound(step.state_address):
            return
        self.invocations += 1
        for egress, topic, payload in step.egress:
            self._egress.append(RecordedEgress(egress, topic or None, payload))
        caller = step.state_address
        for message in step.messages:
            if not self._bound(message.target):
                self.outbox.append(OutboxMessage(message.target, caller, message.payload))

    # --- the invoker: the SDK's handler, in-process ----------------------------------------------

    calls = 0
    attempts_failed = 0

    async def call(
        self, endpoint: HttpEndpoint, typename: str, body: bytes, where: str, *,
        trace: str | None = None,
    ) -> FromFunction:  # fmt: skip
        """Answer a request with the SDK's handler; a type not bound here is consumed with an
        empty answer (its messages are in the outbox)."""
        if typename not in self._functions.typenames:
            return FromFunction(invocation_result=FromFunction.InvocationResponse())
        if self.invocations >= self._invocations_max:
            raise StopError("max_steps")
        try:
            reply = await self._handler.handle_async(body)
        except Exception as exc:
            raise RetryableError(f"{where}: the function raised {exc!r}") from exc
        return parse_from_function(reply)

    async def close(self) -> None:
        """Nothing to close: no connections."""
