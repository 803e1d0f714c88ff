"""Build StateFun wire messages for tests, the way a runtime would send them."""

from __future__ import annotations

from pystatefun import sdk
from pystatefun.protocol import ToFunction, TypedValue

#: A caller for ``to_function``: the ``caller`` field present, holding an empty ``Address``.
EMPTY_CALLER = ""


def typed(tpe: sdk.Type, value: object) -> TypedValue:
    """``value`` serialized as ``tpe``."""
    return sdk.message_builder("x/y", "z", value=value, value_type=tpe).typed_value


def to_function(
    typename: str,
    target_id: str,
    state: dict[str, TypedValue | None],
    invocations: list[tuple[TypedValue, str | None]],
) -> ToFunction:
    """A ToFunction batch. ``state`` maps name -> value (None: registered but empty); each
    invocation has a caller ``'namespace/type/id'`` or None (from an ingress; the caller field
    is absent). ``EMPTY_CALLER`` sends a present but all-empty caller ``Address``."""
    request = ToFunction()
    target = request.invocation.target
    target.namespace, target.type = typename.rsplit("/", 1)
    target.id = target_id
    for name, value in state.items():
        persisted = request.invocation.state.add(state_name=name)
        if value is not None:
            persisted.state_value.CopyFrom(value)
    for argument, caller in invocations:
        invocation = request.invocation.invocations.add()
        invocation.argument.CopyFrom(argument)
        if caller == EMPTY_CALLER:
            invocation.caller.SetInParent()
        elif caller is not None:
            namespace, kind, caller_id = caller.split("/")
            invocation.caller.namespace, invocation.caller.type = namespace, kind
            invocation.caller.id = caller_id
    return request
