"""Turning mailbox rows into a request, and a function's reply into a step (sans-IO).

``build_request`` attaches every registered state of the address, as StateFun does: an empty
or expired value is sent as a ``PersistedValue`` without ``state_value``. ``invocation_rounds``
is the missing-state handshake around it, for any transport (the runtime's HTTP calls, the
test harness's in-process handler). ``step_from_reply``
validates the reply against the registry (a mutation of an unregistered state, or of another
type, is ``TerminalError``) and collects all effects into one ``Step``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import NamedTuple, final

from pystatefun.errors import RetryableError, TerminalError
from pystatefun.protocol import Address as WireAddress
from pystatefun.protocol import FromFunction, ToFunction, TypedValue
from pystatefun.runtime.egress import EgressRouting
from pystatefun.runtime.registry import LONGEST_MS, RegisteredState, StateRegistry
from pystatefun.store import (
    CancelTimer,
    ExpireMode,
    InboxMessage,
    NewMessage,
    NewTimer,
    Payload,
    StateValue,
    Step,
)
from pystatefun.types import Address

__all__ = [
    "HANDSHAKE_ROUNDS_MAX",
    "Delay",
    "InvocationRounds",
    "build_request",
    "invocation_rounds",
    "live_payload",
    "payload_of",
    "request_within_limit",
    "settle_untouched",
    "state_value",
    "step_from_reply",
    "stored_seqs",
    "timer_op",
    "typed_value_of",
]

#: Requests one batch may take: the first, plus rounds of the missing-state handshake.
HANDSHAKE_ROUNDS_MAX = 4
#: Yields each request's bytes, is sent the function's parsed reply, and returns the registered
#: states the final request carried with the function's ``InvocationResponse``.
InvocationRounds = Generator[
    bytes, FromFunction, tuple[dict[str, RegisteredState], FromFunction.InvocationResponse]
]


@final
class Delay(NamedTuple):
    """A delayed message: sent to ``target`` ``delay_ms`` from now."""

    delay_ms: int
    target: Address
    payload: Payload


_MODIFY = FromFunction.PersistedValueMutation.MODIFY
_DELETE = FromFunction.PersistedValueMutation.DELETE


def stored_seqs(batch: list[InboxMessage]) -> list[int]:
    """The inbox rows a batch consumes: its messages that were stored."""
    return [m.seq for m in batch if m.seq is not None]


def typed_value_of(payload: Payload) -> TypedValue:
    if payload.value is None:
        return TypedValue(typename=payload.typename)
    return TypedValue(typename=payload.typename, has_value=True, value=payload.value)


def payload_of(value: TypedValue) -> Payload:
    return Payload(value.typename, bytes(value.value) if value.has_value else None)


def _address(wire: WireAddress, what: str, where: object) -> Address:
    namespace, kind, address_id = wire.namespace, wire.type, wire.id
    if not (namespace and kind and address_id):
        raise TerminalError(
            f"{where} replied with {what} to an incomplete address "
            f"{namespace!r}/{kind!r}/{address_id!r}; namespace, type and id are required"
        )
    return Address(namespace, kind, address_id)


def _live(value: StateValue | None, now_ms: int) -> StateValue | None:
    if value is None or (value.expires_at_ms is not None and value.expires_at_ms <= now_ms):
        return None
    return value


def live_payload(
    target: Address, spec: RegisteredState, stored: dict[str, StateValue], now_ms: int
) -> Payload | None:
    """The live stored value of state ``spec`` (``None``: none, or expired). One stored with
    another type than the function declares is ``TerminalError``: a type cannot change."""
    value = _live(stored.get(spec.name), now_ms)
    if value is None:
        return None
    if value.payload.typename != spec.typename:
        raise TerminalError(
            f"{target}: stored state {spec.name!r} has type {value.payload.typename!r}, but the "
            f"function declares {spec.typename!r}; a state's type cannot change. Keep the old "
            "type, or move the value to a new state name."
        )
    return value.payload


def _set_typed_value(field: TypedValue, payload: Payload) -> None:
    field.typename = payload.typename
    if payload.value is not None:
        field.has_value = True
        field.value = payload.value


def _set_address(field: WireAddress, address: Address) -> None:
    field.namespace = address.namespace
    field.type = address.type
    field.id = address.id


def build_request(
    target: Address,
    batch: list[InboxMessage],
    registered: dict[str, RegisteredState],
    stored: dict[str, StateValue],
    now_ms: int,
) -> ToFunction:
    """The ``ToFunction`` for ``batch``, with every registered state of ``target``.

    Fields are set in place rather than built and copied: this runs once per invocation.
    """
    request = ToFunction()
    invocation = request.invocation
    _set_address(invocation.target, target)
    states = invocation.state
    for name, spec in registered.items():
        persisted = states.add()
        persisted.state_name = name
        payload = live_payload(target, spec, stored, now_ms)
        if payload is not None:
            _set_typed_value(persisted.state_value, payload)
    calls = invocation.invocations
    for message in batch:
        call = calls.add()
        _set_typed_value(call.argument, message.payload)
        if message.caller is not None:
            _set_address(call.caller, message.caller)
    return request


def request_within_limit(
    target: Address,
    batch: list[InboxMessage],
    *,
    registered: dict[str, RegisteredState],
    stored: dict[str, StateValue],
    limit: int,
    now_ms: int,
    where: str,
) -> bytes:
    """The serialized request for ``batch``. One over ``limit`` bytes (the endpoint's
    ``payload_max_bytes``) is cut in half, in place (the rest waits for the next batch), until
    it fits; a single message that does not fit is terminal."""
    while True:
        body = build_request(target, batch, registered, stored, now_ms).SerializeToString()
        if len(body) <= limit:
            return body
        if len(batch) == 1:
            raise TerminalError(
                f"{where}: a request of {len(body)} bytes for one message exceeds the "
                f"endpoint's payload_max_bytes ({limit}); raise the limit or send less"
            )
        del batch[len(batch) // 2 :]


def invocation_rounds(
    target: Address,
    batch: list[InboxMessage],
    registry: StateRegistry,
    stored: dict[str, StateValue],
    *,
    limit: int,
    clock_ms: Callable[[], int],
    where: str,
) -> InvocationRounds:
    """The requests for ``batch`` until the function answers it: a reply that declares missing
    states registers them, and the same batch is sent again with them attached (StateFun's
    handshake). Each request is cut to ``limit`` bytes as ``request_within_limit`` does, so
    ``batch`` may shrink. After ``HANDSHAKE_ROUNDS_MAX`` requests it is ``RetryableError``."""
    typename = target.typename
    for _ in range(HANDSHAKE_ROUNDS_MAX):
        registered = registry.states(typename)
        reply = yield request_within_limit(
            target,
            batch,
            registered=registered,
            stored=stored,
            limit=limit,
            now_ms=clock_ms(),
            where=where,
        )
        if not reply.HasField("incomplete_invocation_context"):
            return registered, reply.invocation_result
        registry.register(typename, where, list(reply.incomplete_invocation_context.missing_values))
    raise RetryableError(
        f"{where}: still missing state after {HANDSHAKE_ROUNDS_MAX} handshakes; the function "
        "keeps declaring states it does not receive"
    )


def step_from_reply(
    target: Address,
    batch: list[InboxMessage],
    reply: FromFunction.InvocationResponse,
    *,
    registered: dict[str, RegisteredState],
    stored: dict[str, StateValue],
    egress: EgressRouting,
    now_ms: int,
) -> Step:
    """Validate ``reply`` and collect its effects, plus the consumed batch, into one step.

    ``registered`` are the states the request carried, ``stored`` the values it read;
    ``egress`` checks and routes egress records; ``now_ms`` dates TTLs and delays.
    """
    step = Step(consumed=stored_seqs(batch), state_address=target)
    # ListFields names only the fields the reply has: empty repeated fields cost nothing.
    fields = {descriptor.name: value for descriptor, value in reply.ListFields()}
    mutations = fields.get("state_mutations", ())
    if mutations:
        _state_mutations(step, target, mutations, registered, now_ms)
    # Expired values nobody rewrote are removed now, in the same step; live after-invoke values
    # are written again with a fresh expiry. Re-writing (not updating in place) keeps a value
    # that the periodic purge deleted while this batch was in flight: it was live when read.
    touched = {m.state_name for m in mutations}
    settle_untouched(step, touched, registered=registered, stored=stored, now_ms=now_ms)
    for message in fields.get("outgoing_messages", ()):
        destination = _address(message.target, "a message", target)
        step.messages.append(NewMessage(destination, target, payload_of(message.argument)))
    for delayed in fields.get("delayed_invocations", ()):
        step.timer_ops.append(_timer_op(target, delayed, now_ms))
    for record in fields.get("outgoing_egresses", ()):
        name = f"{record.egress_namespace}/{record.egress_type}"
        step.egress.append(egress.route(name, record.argument, str(target)))
    return step


def settle_untouched(
    step: Step,
    touched: set[str],
    *,
    registered: dict[str, RegisteredState],
    stored: dict[str, StateValue],
    now_ms: int,
) -> None:
    """The batch's effect on the stored states it did not write: expired (or no longer
    declared) ones are deleted now, and live ``AFTER_INVOKE`` ones get a fresh expiry.

    Re-writing (not updating in place) keeps a value that the periodic purge deleted while the
    batch was in flight: it was live when read.
    """
    for name, value in stored.items():
        if name in touched:
            continue
        spec = registered.get(name)
        if _live(value, now_ms) is None or spec is None:
            step.state_deletes.append(name)
        elif spec.expire_mode == ExpireMode.AFTER_INVOKE:
            step.state_puts.append(state_value(spec, value.payload, now_ms))


def state_value(spec: RegisteredState, payload: Payload, now_ms: int) -> StateValue:
    """A written value of state ``spec``, with its expiry (if it has a TTL) from ``now_ms``."""
    expires = None
    if spec.expire_mode in (ExpireMode.AFTER_WRITE, ExpireMode.AFTER_INVOKE):
        expires = now_ms + spec.expire_after_ms
    return StateValue(spec.name, payload, spec.expire_mode, spec.expire_after_ms, expires)


def _state_mutations(
    step: Step,
    target: Address,
    mutations: Iterable[FromFunction.PersistedValueMutation],
    registered: dict[str, RegisteredState],
    now_ms: int,
) -> None:
    for mutation in mutations:
        spec = registered.get(mutation.state_name)
        if spec is None:
            raise TerminalError(
                f"{target} replied with a mutation of state {mutation.state_name!r}, which it "
                f"never declared (registered: {', '.join(registered) or 'none'})"
            )
        if mutation.mutation_type == _DELETE:
            step.state_deletes.append(spec.name)
            continue
        if mutation.mutation_type != _MODIFY:
            raise TerminalError(f"{target}: unknown mutation type {mutation.mutation_type}")
        value = mutation.state_value
        if value.typename != spec.typename:
            raise TerminalError(
                f"{target} wrote state {spec.name!r} with type {value.typename!r}; it is "
                f"registered as {spec.typename!r}, and a state's type cannot change"
            )
        step.state_puts.append(state_value(spec, payload_of(value), now_ms))


def _timer_op(
    sender: Address, delayed: FromFunction.DelayedInvocation, now_ms: int
) -> NewTimer | CancelTimer:
    if delayed.is_cancellation_request:
        return timer_op(sender, delayed.cancellation_token, None, now_ms)
    destination = _address(delayed.target, "a delayed message", str(sender))
    delay = Delay(delayed.delay_in_ms, destination, payload_of(delayed.argument))
    return timer_op(sender, delayed.cancellation_token, delay, now_ms)


def timer_op(
    sender: Address, token: str, delay: Delay | None, now_ms: int
) -> NewTimer | CancelTimer:
    """A delayed message of ``sender`` with its optional cancellation ``token``, or (``delay``
    None) the cancellation of ``token``."""
    if delay is None:
        if not token:
            raise TerminalError(f"{sender} asked to cancel a delayed message without a token")
        return CancelTimer(sender, token)
    if delay.delay_ms < 0:
        raise TerminalError(f"{sender} sent a delayed message with a negative delay")
    if delay.delay_ms > LONGEST_MS:
        raise TerminalError(
            f"{sender} sent a delayed message with a delay of {delay.delay_ms} ms; the longest "
            f"is {LONGEST_MS} ms (about 146 million years)"
        )
    return NewTimer(now_ms + delay.delay_ms, sender, token or None, delay.target, delay.payload)
