"""Running a bound function once per message of a batch, in order, against one context.

Shared by the request-reply handler (messages decoded from a ``ToFunction``) and by in-process
callers (``pystatefun.sdk.inprocess``), so both fail the same way: an exception leaves the
batch with a note naming the address and the message it was processing.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from pystatefun.errors import ConfigurationError
from pystatefun.protocol import TypedValue
from pystatefun.sdk._address import SdkAddress
from pystatefun.sdk._context import Context
from pystatefun.sdk._functions import BoundFunction
from pystatefun.sdk._message import Message

__all__ = ["Invocation", "invoke_each", "invoke_each_async"]

#: One message of a batch: its sender (``None`` for an ingress) and its argument.
Invocation = tuple[SdkAddress | None, TypedValue]


def _annotate(exc: Exception, context: Context, index: int, count: int) -> None:
    address = context.address
    exc.add_note(
        f"while invoking {address.typename}/{address.id} with message {index + 1} of {count}"
    )


def invoke_each(
    bound: BoundFunction, context: Context, invocations: Iterable[Invocation], count: int
) -> None:
    """Run a plain function for each message; an awaitable result is refused, since nothing
    here could run it."""
    fun = bound.fun
    typename = context.address.typename
    for index, (caller, argument) in enumerate(invocations):
        context._caller = caller  # noqa: SLF001 - the context is the batch's, set per message
        try:
            result = fun(context, Message(typename, context.address.id, argument))
            if result is not None and inspect.isawaitable(result):
                _refuse_awaitable(result, bound.typename)
        except Exception as exc:
            _annotate(exc, context, index, count)
            raise


async def invoke_each_async(
    bound: BoundFunction, context: Context, invocations: Iterable[Invocation], count: int
) -> None:
    """Run a function (``async def`` or plain) for each message, awaiting what it returns."""
    fun = bound.fun
    typename = context.address.typename
    for index, (caller, argument) in enumerate(invocations):
        context._caller = caller  # noqa: SLF001
        try:
            result = fun(context, Message(typename, context.address.id, argument))
            if result is not None and inspect.isawaitable(result):
                await result
        except Exception as exc:
            _annotate(exc, context, index, count)
            raise


def _refuse_awaitable(result: Any, typename: str) -> None:
    close = getattr(result, "close", None)
    if callable(close):
        close()  # never awaited: close it so Python does not warn about it
    raise ConfigurationError(
        f"the function bound to {typename!r} is a plain function but returned an awaitable; "
        "declare it `async def` so the handler gives it an event loop"
    )
