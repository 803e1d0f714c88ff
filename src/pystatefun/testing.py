"""Test stateful functions in pytest against an in-memory, single-threaded runtime.

``FunctionHarness(functions, ...)`` drives the functions of ``StatefulFunctions`` the way
``pystatefun run`` does, without HTTP, SQLite or threads: requests and the missing-state
handshake come from the runtime's own ``invocation_rounds`` (with its ``StateRegistry``), the
SDK's real ``RequestReplyHandler`` answers them, and the runtime's ``step_from_reply`` turns
the answer into effects. So state TTLs, state type checks and the handshake behave as in production,
while time is a fake clock that only ``advance`` moves.

Why not call the function with a hand-made ``Context``: a test checks what the runtime makes
of a reply (which state survives, where messages go, when delayed ones fire).
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Generator
from typing import Any, NamedTuple, final

from pystatefun.errors import MessageTypeError, TerminalError
from pystatefun.protocol import TypedValue, parse_from_function
from pystatefun.protocol.typed_values import PRIMITIVES
from pystatefun.runtime.batches import invocation_rounds, payload_of, step_from_reply
from pystatefun.runtime.egress import PLAYGROUND_EGRESS, EgressRouter
from pystatefun.runtime.registry import StateRegistry
from pystatefun.sdk import (
    BoolType,
    FloatType,
    IntType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    Type,
)
from pystatefun.store import (
    CancelTimer,
    EgressOut,
    ExpireMode,
    InboxMessage,
    NewMessage,
    NewTimer,
    Payload,
    StateValue,
    Step,
)
from pystatefun.types import Address

__all__ = ["FunctionHarness", "OutboxMessage", "RecordedEgress", "decode_payload"]

_NO_LIMIT = sys.maxsize  # no HTTP here: no endpoint's payload_max_bytes to cut batches to
_MS_PER_S = 1000

# The drivers: a generator that yields request bytes and is sent the reply bytes, so the sync
# (``handle``) and async (``handle_async``) drivers share one implementation.
_Work = Generator[bytes, bytes, Any]


def decode_payload(payload: Payload, type: Type | None = None) -> Any:  # noqa: A002
    """The Python value of ``payload``: decoded as ``type`` when given (its type name must
    match), as a primitive when it is one, else the raw bytes. ``None`` when it has no value."""
    if payload.value is None:
        return None
    if type is not None:
        if payload.typename != type.typename:
            raise MessageTypeError(
                f"the value is a {payload.typename!r}, not a {type.typename!r}; pass its Type"
            )
        return type.serializer().deserialize(payload.value)
    primitive = PRIMITIVES.get(payload.typename)
    return payload.value if primitive is None else primitive.decode(payload.value)


@final
class OutboxMessage(NamedTuple):
    """A message to a function type the harness does not bind: recorded, never invoked."""

    target: Address
    caller: Address | None
    payload: Payload

    def value(self, type: Type | None = None) -> Any:  # noqa: A002
        """The decoded value (see ``decode_payload``)."""
        return decode_payload(self.payload, type)


@final
class RecordedEgress(NamedTuple):
    """A record sent to an egress. For the playground egress, ``topic`` is the record's topic
    and ``payload`` its text (``text/plain``); for any other egress ``topic`` is None and
    ``payload`` is the record as sent (a ``KafkaProducerRecord`` for a Kafka egress, ...)."""

    egress: str
    topic: str | None
    payload: Payload

    @property
    def text(self) -> str:
        """The payload as UTF-8 text (the playground record's ``payload``)."""
        return (self.payload.value or b"").decode("utf-8")


@final
class _AnyEgress:
    """Accepts every egress; checks playground records as ``EgressRouter`` does, whatever the
    topic (a test has no module YAML declaring topics)."""

    def route(self, egress: str, value: TypedValue, where: str) -> EgressOut:
        if egress != PLAYGROUND_EGRESS:
            return EgressOut(egress, "", payload_of(value))
        try:
            topic = json.loads(value.value).get("topic")
        except (ValueError, AttributeError):
            topic = None  # invalid: EgressRouter raises the runtime's error for it
        topics = (topic,) if isinstance(topic, str) else ()
        return EgressRouter(topics).route(egress, value, where)


def _typed(value: Any, value_type: Type | None) -> Type:
    """The type ``send`` uses for ``value``: ``value_type``, or inferred for a primitive with
    ``message_builder``'s keywords (``bool``, ``int`` -> int, ``float`` -> float, ``str``)."""
    if value_type is not None:
        return value_type
    for python_type, inferred in ((bool, BoolType), (int, IntType), (float, FloatType)):
        if isinstance(value, python_type):
            return inferred
    if isinstance(value, str):
        return StringType
    raise TypeError(f"cannot infer the type of {value!r}; pass value_type=<a Type>")


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
        self._registry = StateRegistry()
        self._router = _AnyEgress()
        self._now_ms = start_ms
        self._mailboxes: dict[Address, deque[InboxMessage]] = {}
        self._states: dict[Address, dict[str, StateValue]] = {}
        self._timers: list[tuple[int, NewTimer]] = []  # (insertion order, timer)
        self._timer_seq = 0
        self._egress: list[RecordedEgress] = []
        #: Messages to function types that are not bound here, in the order they were sent.
        self.outbox: list[OutboxMessage] = []
        #: How many invocations (batches answered by a function) ran, handshakes not counted.
        self.invocations = 0

    # --- the clock ---------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """The fake clock, in epoch milliseconds."""
        return self._now_ms

    def advance(self, seconds: float = 0, *, ms: int = 0, max_steps: int = 10_000) -> int:
        """Move the clock forward and run: delayed messages fire at their due time, in order,
        and each is processed (with ``run``) before the clock moves past it. Returns the
        invocations made."""
        made: int = self._drive(self._advance(seconds, ms, max_steps))
        return made

    async def advance_async(
        self, seconds: float = 0, *, ms: int = 0, max_steps: int = 10_000
    ) -> int:
        """``advance`` inside a running event loop (needed for ``async def`` functions there)."""
        made: int = await self._drive_async(self._advance(seconds, ms, max_steps))
        return made

    # --- messages ----------------------------------------------------------------------------

    def send(self, typename: str, id: str, value: Any, value_type: Type | None = None) -> None:  # noqa: A002
        """Queue a message for ``typename``/``id``; ``value_type`` is inferred for ``bool``,
        ``int`` (IntType), ``float`` (FloatType) and ``str``, as ``message_builder`` does."""
        tpe = _typed(value, value_type)
        encoded = tpe.serializer().serialize(value)
        self._deliver(NewMessage(Address.of(typename, id), None, Payload(tpe.typename, encoded)))

    def send_message(self, message: Message) -> None:
        """Queue a ``Message`` made with ``message_builder`` (no caller)."""
        target = Address.of(message.target_typename, message.target_id)
        self._deliver(NewMessage(target, None, payload_of(message.typed_value)))

    def run(self, max_steps: int = 10_000) -> int:
        """Invoke addresses until no mailbox holds a message (delayed messages wait for the
        clock). Returns the invocations made; raises ``RuntimeError`` naming the busy addresses
        after ``max_steps`` invocations (a message loop)."""
        result: int = self._drive(self._run(max_steps))
        return result

    async def run_async(self, max_steps: int = 10_000) -> int:
        """``run`` inside a running event loop (needed for ``async def`` functions there)."""
        result: int = await self._drive_async(self._run(max_steps))
        return result

    def delayed(self) -> list[NewTimer]:
        """The pending delayed messages, soonest first."""
        return [timer for _, timer in sorted(self._timers, key=lambda t: (t[1].fire_at_ms, t[0]))]

    def egress(self, name: str | None = None) -> list[RecordedEgress]:
        """The egress records sent so far, in order; only those to egress ``name`` if given."""
        return [e for e in self._egress if name is None or e.egress == name]

    # --- state -------------------------------------------------------------------------------

    def state(self, typename: str, id: str, name: str, type: Type | None = None) -> Any:  # noqa: A002
        """The value of state ``name`` of ``typename``/``id``, decoded as ``type`` when given
        (else primitives are decoded and other values are raw bytes); None when absent or
        expired by the fake clock."""
        value = self._states.get(Address.of(typename, id), {}).get(name)
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
        self._states.setdefault(address, {})[name] = StateValue(name, payload, mode, after, expires)

    # --- internals ---------------------------------------------------------------------------

    def _drive(self, work: _Work) -> Any:
        try:
            request = next(work)
            while True:
                request = work.send(self._handler.handle(request))
        except StopIteration as finished:
            return finished.value

    async def _drive_async(self, work: _Work) -> Any:
        try:
            request = next(work)
            while True:
                request = work.send(await self._handler.handle_async(request))
        except StopIteration as finished:
            return finished.value

    def _bound(self, address: Address) -> bool:
        return address.typename in self._functions.typenames

    def _deliver(self, message: NewMessage) -> None:
        if not self._bound(message.target):
            self.outbox.append(OutboxMessage(message.target, message.caller, message.payload))
            return
        mailbox = self._mailboxes.setdefault(message.target, deque())
        mailbox.append(InboxMessage(None, message.target, message.caller, message.payload))

    def _fire_due(self) -> None:
        due = [(seq, timer) for seq, timer in self._timers if timer.fire_at_ms <= self._now_ms]
        if not due:
            return
        self._timers = [entry for entry in self._timers if entry not in due]
        for _, timer in sorted(due, key=lambda t: (t[1].fire_at_ms, t[0])):
            self._deliver(NewMessage(timer.target, timer.sender, timer.payload))

    def _advance(self, seconds: float, ms: int, max_steps: int) -> _Work:
        if seconds < 0 or ms < 0:
            raise ValueError("the clock only moves forward")
        until = self._now_ms + round(seconds * _MS_PER_S) + ms
        made: int = yield from self._run(max_steps)
        while self._timers:
            next_at = min(timer.fire_at_ms for _, timer in self._timers)
            if next_at > until:
                break
            self._now_ms = max(self._now_ms, next_at)
            made += yield from self._run(max_steps - made)
        self._now_ms = until
        made += yield from self._run(max_steps - made)  # nothing due; keeps the contract simple
        return made

    def _run(self, max_steps: int) -> _Work:
        made = 0
        while True:
            self._fire_due()
            ready = [address for address, mailbox in self._mailboxes.items() if mailbox]
            if not ready:
                return made
            for address in ready:
                if made >= max_steps:
                    busy = ", ".join(str(a) for a in ready)
                    raise RuntimeError(
                        f"still busy after {max_steps} invocations, probably a message loop; "
                        f"addresses with messages waiting: {busy}"
                    )
                mailbox = self._mailboxes[address]
                batch = list(mailbox)
                step = yield from self._invoke(address, batch)
                for _ in batch:
                    mailbox.popleft()
                self._apply(step)
                made += 1
                self.invocations += 1

    def _invoke(self, address: Address, batch: list[InboxMessage]) -> _Work:
        """As ``Dispatcher._invoke``: the request with every registered state, the handshake
        for missing ones, and the reply turned into a step."""
        where = f"{address} (FunctionHarness)"
        stored = dict(self._states.get(address, {}))
        rounds = invocation_rounds(
            address,
            batch,
            self._registry,
            stored,
            limit=_NO_LIMIT,
            clock_ms=self._clock,
            where=where,
        )
        body = next(rounds)
        while True:
            reply = parse_from_function((yield body))
            try:
                body = rounds.send(reply)
            except StopIteration as answered:
                registered, result = answered.value
                break
        context = {"registered": registered, "stored": stored, "now_ms": self._now_ms}
        step = step_from_reply(address, batch, result, egress=self._router, **context)
        self._check_timers(step)
        return step

    def _clock(self) -> int:
        return self._now_ms

    def _check_timers(self, step: Step) -> None:
        """Refuse a step that reuses a pending token, before anything of it applies (the
        runtime dead-letters that whole batch)."""
        pending: set[tuple[Address, str | None]] = {
            (t.sender, t.token) for _, t in self._timers if t.token
        }
        for op in step.timer_ops:
            key = (op.sender, op.token)
            if isinstance(op, CancelTimer):
                pending.discard(key)
            elif op.token:
                if key in pending:
                    raise TerminalError(
                        f"{op.sender}: a delayed message reuses the cancellation token "
                        f"{op.token!r}, still pending for the same sender; cancel the earlier "
                        "message first, or use a new token"
                    )
                pending.add(key)

    def _apply(self, step: Step) -> None:
        assert step.state_address is not None
        states = self._states.setdefault(step.state_address, {})
        for name in step.state_deletes:
            states.pop(name, None)
        for value in step.state_puts:
            states[value.name] = value
        for op in step.timer_ops:
            if isinstance(op, CancelTimer):
                self._timers = [
                    (seq, t)
                    for seq, t in self._timers
                    if not (t.sender == op.sender and t.token == op.token)
                ]
            else:
                self._timer_seq += 1
                self._timers.append((self._timer_seq, op))
        for egress, topic, payload in step.egress:
            self._egress.append(RecordedEgress(egress, topic or None, payload))
        for message in step.messages:
            self._deliver(message)
