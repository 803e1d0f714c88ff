"""A dispatcher on the memory engine and virtual time, with fake functions behind it: for unit
tests of the scheduler (one invocation per address, batches, failures, parking, stopping).

``FakeFunctions`` is an ``Invoker`` that answers in-process: it decodes each ``ToFunction``,
records the batch (when, for whom, which message values), and answers an empty
``FromFunction``, unless a test holds the address (``gates``) or makes the batch fail
(``fail``). ``Rig`` wires it to a ``Dispatcher`` as the runtime does, and keeps the values of
committed messages in commit order. Message values are strings ("a1", "b2"): a test reads the
batches and commits as lists of them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pystatefun.errors import InvocationError, TerminalError
from pystatefun.module import HttpEndpoint
from pystatefun.protocol import FromFunction, parse_to_function
from pystatefun.runtime.dispatcher import Dispatcher
from pystatefun.runtime.options import RuntimeOptions
from pystatefun.runtime.replies import ReplyWaiters
from pystatefun.runtime.routes import Route
from pystatefun.store import InboxMessage, MemoryEngine, NewMessage, Payload, Step, StepOutcome
from pystatefun.store.contents import MessageContent
from pystatefun.testing._in_process import ENDPOINT, AnyEgress
from pystatefun.types import Address
from support.virtual_time import running

__all__ = ["MSG", "Call", "FakeFunctions", "FixedRoutes", "Rig"]

MSG = "ns/msg"


@dataclass
class Call:
    """One call of a function: at which virtual time, for which address id, with which values."""

    at_s: float
    target: str
    values: list[str]
    failed: bool = False
    cancelled: bool = False


@dataclass
class FakeFunctions:
    """An in-process ``Invoker``. ``gates[id]``, while not set, holds every call for that
    address id; ``fail(address, values)`` returns the error a batch fails with (None: it
    succeeds). ``on_change`` hears of every call that starts or ends."""

    on_change: Callable[[], None] = lambda: None
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    fail: Callable[[Address, list[str]], InvocationError | None] = lambda _a, _v: None
    log: list[Call] = field(default_factory=list)
    running: Counter[Address] = field(default_factory=Counter)
    most_per_address: int = 0
    most_in_flight: int = 0
    calls: int = 0
    attempts_failed: int = 0

    def of(self, target: str) -> list[Call]:
        return [c for c in self.log if c.target == target]

    def in_flight(self) -> int:
        return sum(self.running.values())

    async def call(
        self, endpoint: HttpEndpoint, typename: str, body: bytes, where: str, *,
        trace: str | None = None,
    ) -> FromFunction:  # fmt: skip
        self.calls += 1
        invocation = parse_to_function(body).invocation
        target = invocation.target
        address = Address(target.namespace, target.type, target.id)
        assert address.typename == typename
        values = [i.argument.value.decode() for i in invocation.invocations]
        call = Call(asyncio.get_running_loop().time(), address.id, values)
        self.log.append(call)
        self.running[address] += 1
        self.most_per_address = max(self.most_per_address, self.running[address])
        self.most_in_flight = max(self.most_in_flight, self.in_flight())
        self.on_change()
        try:
            gate = self.gates.get(address.id)
            if gate is not None:
                await gate.wait()
            error = self.fail(address, values)
            if error is not None:
                call.failed = True
                raise error
            return FromFunction(invocation_result=FromFunction.InvocationResponse())
        except asyncio.CancelledError:
            call.cancelled = True
            raise
        finally:
            self.running[address] -= 1
            self.on_change()

    async def close(self) -> None:
        """Nothing to close."""


class FixedRoutes:
    """Every function type is served by one endpoint with a batch limit of ``max_batch``."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch

    def route(self, address: Address) -> Route:
        url = ENDPOINT.url_path_template
        return Route(address.typename, ENDPOINT, self.max_batch, url, None, ENDPOINT)

    def unserved(self, address: Address) -> TerminalError:
        raise AssertionError(f"{address}: every type has a route here")


class _Watched:
    """The memory engine, telling the rig of every commit (dead letters included)."""

    def __init__(
        self, engine: MemoryEngine, on_commit: Callable[[Step, StepOutcome], None]
    ) -> None:
        self._engine = engine
        self._on_commit = on_commit

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def commit(self, step: Step) -> StepOutcome:
        outcome = await self._engine.commit(step)
        self._on_commit(step, outcome)
        return outcome


class Rig:
    """A ``Dispatcher`` over a ``MemoryEngine`` on the running virtual-time loop.

    ``options`` are ``RuntimeOptions`` (8 invocations in flight unless given); ``committed``
    lists the values of processed messages, in commit order; ``watched`` is the engine as the
    dispatcher sees it (for an ``Ingestion``, say); ``until(predicate)`` waits until
    ``predicate()`` holds after a call started or ended or the engine committed a step.
    """

    def __init__(self, *, max_batch: int = 0, **options: Any) -> None:
        self.loop = running()
        self.engine = MemoryEngine(self.loop.clock_ms, key_groups=128)
        self.watched = watched = _Watched(self.engine, self._stored)
        self.functions = FakeFunctions(self._changed)
        options = {"max_inflight": 8, "min_inflight": 8, **options}
        self.options = RuntimeOptions(clock_ms=self.loop.clock_ms, **options)
        self.committed: list[str] = []
        self.steps: list[Step] = []
        self.fatal: list[str] = []
        self._values: dict[int, str] = {}
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self.dispatcher = Dispatcher(
            watched,
            routes=FixedRoutes(max_batch),
            invoker=self.functions,
            egress=AnyEgress(),
            options=self.options,
            replies=ReplyWaiters(),
            on_step=self._on_step,
            on_fatal=self.fatal.append,
        )

    def now(self) -> float:
        return self.loop.time()

    async def store(self, target: Address, *values: str) -> list[InboxMessage]:
        """Store messages with ``values`` for ``target`` as another process does (a previous
        run, a re-drive): rows the dispatcher is not told of, and that no step of its wrote."""
        payloads = [Payload(MSG, value.encode()) for value in values]
        now_ms = self.loop.clock_ms()
        self.engine.load(MessageContent(target, None, p, now_ms) for p in payloads)
        rows = await self.engine.read_batch(target, 1_000_000, foreign=True)
        messages = rows[len(rows) - len(values) :]
        for message, value in zip(messages, values, strict=True):
            assert message.seq is not None
            self._values[message.seq] = value
        return messages

    async def commit(self, target: Address, *values: str) -> list[InboxMessage]:
        """Commit messages with ``values`` for ``target`` in steps, as an ingress does, and
        leave handing them to the mailbox to the caller."""
        messages = []
        for value in values:
            payload = Payload(MSG, value.encode())
            outcome = await self.engine.commit(Step(messages=[NewMessage(target, None, payload)]))
            (seq,) = outcome.seqs
            self._values[seq] = value
            messages.append(InboxMessage(seq, target, None, payload))
        return messages

    async def send(self, target: Address, *values: str) -> None:
        """Commit messages for ``target`` and hand them to its mailbox, as an ingress does."""
        for message in await self.commit(target, *values):
            self.dispatcher.mailboxes.deliver(message)

    async def dead_letters(self) -> list[tuple[str, list[str], int]]:
        """Each dead letter as (address id, its message values, attempts)."""
        return [
            (d.target.id, [(m.payload.value or b"").decode() for m in d.messages], d.attempts)
            for d in await self.engine.dead_letters()
        ]

    async def until(self, predicate: Callable[[], bool]) -> None:
        if predicate():
            return
        future = self.loop.create_future()
        self._waiters.append((predicate, future))
        await future

    def _stored(self, step: Step, outcome: StepOutcome) -> None:
        if outcome.committed:
            for message, seq in zip(step.messages, outcome.seqs, strict=True):
                self._values[seq] = (message.payload.value or b"").decode()
        self._changed()

    def _changed(self) -> None:
        # Checked once the code that made the change has run on to its next await.
        self.loop.call_soon(self._check)

    def _check(self) -> None:
        for waiter in list(self._waiters):
            predicate, future = waiter
            if not future.done() and predicate():
                future.set_result(None)
                self._waiters.remove(waiter)

    def _on_step(self, step: Step) -> None:
        self.steps.append(step)
        self.committed.extend(self._values[seq] for seq in step.consumed)
        self._changed()
