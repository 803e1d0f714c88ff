"""``RequestReplyHandler``: the sans-IO core that turns a ``ToFunction`` into a ``FromFunction``.

One request is one batch for one address:

1. decode the request and find the bound function for the target's type;
2. match the declared ``ValueSpec``s against the state the runtime sent; if any is missing,
   answer ``IncompleteInvocationContext`` with the missing specs **without running user code**
   (the runtime registers them and resends the same batch);
3. run the function once per invocation, in order, against one shared storage;
4. answer with the changed state, then the messages, delayed messages (and cancellations) and
   egress records, each in call order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, final

from pystatefun.errors import ConfigurationError, ProtocolError
from pystatefun.protocol import Address, FromFunction, ToFunction, parse_to_function
from pystatefun.sdk._address import SdkAddress
from pystatefun.sdk._context import Context
from pystatefun.sdk._functions import BoundFunction, StatefulFunctions
from pystatefun.sdk._invocation import invoke_each, invoke_each_async
from pystatefun.sdk._spec import ValueSpec
from pystatefun.sdk._storage import AddressScopedStorage, dirty_cells, resolve
from pystatefun.types import parse_typename

__all__ = ["RequestReplyHandler"]

_Mutation = FromFunction.PersistedValueMutation
_ExpireMode = FromFunction.ExpirationSpec.ExpireMode


def _sdk_address(address: Address) -> SdkAddress | None:
    """The SDK view of a wire address; ``None`` for an absent or all-empty one (ingress)."""
    if not (address.namespace or address.type or address.id):
        return None
    return SdkAddress(
        address.namespace, address.type, address.id, f"{address.namespace}/{address.type}"
    )


_ADDRESS_RULE = "an address needs a namespace, a type and an id, and its type has no '/'"


def _quoted(address: Address) -> str:
    return f"{address.namespace!r}/{address.type!r}/{address.id!r}"


def _check_callers(invocations: Sequence[ToFunction.Invocation]) -> None:
    """Refuse a caller that is neither absent (an ingress) nor a whole address: a function that
    answered it would fail in ``message_builder``, with an error blaming the function's code."""
    for invocation in invocations:
        caller = invocation.caller
        kind = caller.type
        if kind and caller.namespace and caller.id and "/" not in kind:
            continue
        if kind or caller.namespace or caller.id:
            index = list(invocations).index(invocation)
            raise ProtocolError(
                f"invocation {index + 1} of {len(invocations)} has an invalid caller address "
                f"{_quoted(caller)}; {_ADDRESS_RULE} (an ingress message has no caller at all)"
            )


def _set_address(target: Address, typename: str, target_id: str) -> None:
    target.namespace, target.type = parse_typename(typename)
    target.id = target_id


def _incomplete(missing: list[ValueSpec]) -> FromFunction:
    reply = FromFunction()
    missing_values = reply.incomplete_invocation_context.missing_values
    for spec in missing:
        value = missing_values.add(state_name=spec.name, type_typename=spec.type.typename)
        expiration = value.expiration_spec
        expiration.SetInParent()  # present even with mode NONE, as the official Python SDK sends it
        if spec.after_call:
            expiration.mode = _ExpireMode.AFTER_INVOKE
            expiration.expire_after_millis = spec.duration
        elif spec.after_write:
            expiration.mode = _ExpireMode.AFTER_WRITE
            expiration.expire_after_millis = spec.duration
    return reply


def _collect(context: Context) -> FromFunction:
    reply = FromFunction()
    # Like the official SDK: a batch without effects answers an empty FromFunction (zero
    # bytes), which the runtime reads as "no side effects"; presence starts with the first add.
    result = reply.invocation_result
    for name, typed_value in dirty_cells(context.storage):
        if typed_value is None:
            result.state_mutations.add(mutation_type=_Mutation.DELETE, state_name=name)
        else:
            mutation = result.state_mutations.add(mutation_type=_Mutation.MODIFY, state_name=name)
            mutation.state_value.CopyFrom(typed_value)
    for message in context._outgoing:  # noqa: SLF001 - the handler drains its own context
        outgoing = result.outgoing_messages.add()
        _set_address(outgoing.target, message.target_typename, message.target_id)
        outgoing.argument.CopyFrom(message.typed_value)
    for delayed in context._delayed:  # noqa: SLF001
        invocation = result.delayed_invocations.add(cancellation_token=delayed.cancellation_token)
        if delayed.message is None:
            invocation.is_cancellation_request = True
            continue
        invocation.delay_in_ms = delayed.delay_ms
        _set_address(invocation.target, delayed.message.target_typename, delayed.message.target_id)
        invocation.argument.CopyFrom(delayed.message.typed_value)
    for egress in context._egress:  # noqa: SLF001
        outgoing_egress = result.outgoing_egresses.add()
        outgoing_egress.egress_namespace, outgoing_egress.egress_type = parse_typename(
            egress.typename
        )
        outgoing_egress.argument.CopyFrom(egress.typed_value)
    return reply


@final
class RequestReplyHandler:
    """Serves the functions of one ``StatefulFunctions`` over StateFun's request-reply protocol.

    ``handle(bytes) -> bytes`` is the core; mount it behind any HTTP server that answers
    ``application/octet-stream`` (see ``pystatefun.sdk.asgi`` and ``pystatefun.sdk.aiohttp``).
    """

    __slots__ = ("_functions",)

    def __init__(self, functions: StatefulFunctions) -> None:
        if not isinstance(functions, StatefulFunctions):
            raise ConfigurationError(
                f"RequestReplyHandler takes a StatefulFunctions, got {type(functions).__name__}"
            )
        if not len(functions):
            raise ConfigurationError("RequestReplyHandler needs at least one bound function")
        self._functions = functions

    @property
    def functions(self) -> StatefulFunctions:
        """The functions this handler serves."""
        return self._functions

    def prepare(
        self, request_bytes: bytes | bytearray | memoryview
    ) -> tuple[ToFunction, BoundFunction]:
        """Decode a request and find its function; the errors here are the caller's
        (``ProtocolError``, ``UnknownFunctionError``), as opposed to the function's own."""
        to_function = parse_to_function(request_bytes)
        batch = to_function.invocation
        target = batch.target
        if not (target.namespace and target.type and target.id) or "/" in target.type:
            raise ProtocolError(
                f"invocation batch has an invalid target address {_quoted(target)}; {_ADDRESS_RULE}"
            )
        _check_callers(batch.invocations)
        return to_function, self._functions.for_typename(f"{target.namespace}/{target.type}")

    async def process(
        self, to_function: ToFunction, bound: BoundFunction, *, in_loop: bool = True
    ) -> bytes:
        """Run a prepared batch; errors here come from the function (or its data)."""
        batch = to_function.invocation
        address = _sdk_address(batch.target)
        assert address is not None, "prepare() checked the target"
        where = f"{address.typename}/{address.id}"
        storage = resolve(bound.specs, where, batch.state)
        if not isinstance(storage, AddressScopedStorage):
            return _incomplete(storage).SerializeToString()
        context = Context(address, storage)
        invocations = ((_sdk_address(i.caller), i.argument) for i in batch.invocations)
        count = len(batch.invocations)
        if in_loop:
            await invoke_each_async(bound, context, invocations, count)
        else:
            invoke_each(bound, context, invocations, count)
        return _collect(context).SerializeToString()

    def handle(self, request_bytes: bytes | bytearray | memoryview) -> bytes:
        """Answer one request synchronously.

        Plain functions run right here, with no event loop. An ``async def`` function needs
        one: ``handle`` starts it with ``asyncio.run``, which is impossible inside a running
        loop; there, use ``await handle_async(...)``.
        """
        to_function, bound = self.prepare(request_bytes)
        if bound.is_async:
            return _run_in_new_loop(self.process(to_function, bound), bound.typename)
        # Plain functions never suspend, so the coroutine finishes on its first step: no loop.
        coroutine = self.process(to_function, bound, in_loop=False)
        try:
            coroutine.send(None)
        except StopIteration as finished:
            response: bytes = finished.value
            return response
        coroutine.close()
        raise AssertionError(f"{bound.typename}: a plain function's batch suspended")

    def handle_sync(self, request_bytes: bytes | bytearray | memoryview) -> bytes:
        """The official SDK's name for ``handle``; kept so ported servers work unchanged."""
        return self.handle(request_bytes)

    async def handle_async(self, request_bytes: bytes | bytearray | memoryview) -> bytes:
        """Answer one request inside a running event loop (awaits ``async def`` functions)."""
        to_function, bound = self.prepare(request_bytes)
        return await self.process(to_function, bound)


def _run_in_new_loop(coroutine: Coroutine[Any, Any, bytes], typename: str) -> bytes:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise RuntimeError(
        f"{typename!r} is an async function and an event loop is already running here; "
        "use `await handler.handle_async(request)` instead of handle()/handle_sync()"
    )
