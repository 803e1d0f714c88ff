"""Checked by mypy (strict) in ``test_sdk_types.py``, never run: the SDK's signatures give
users precise types, and the decorator keeps the decorated function's own type."""

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, assert_type

from pystatefun.sdk import (
    Context,
    EgressMessage,
    IntType,
    Message,
    RequestReplyHandler,
    SdkAddress,
    StatefulFunctions,
    ValueSpec,
    kafka_egress_message,
    message_builder,
)

functions = StatefulFunctions()


@functions.bind("example/sync", specs=[ValueSpec("n", IntType)])
def sync_fn(context: Context, message: Message) -> None:
    assert_type(context.address, SdkAddress)
    assert_type(context.caller, SdkAddress | None)
    assert_type(message.as_int(), int | None)
    assert_type(message.as_string(), str | None)
    assert_type(message.as_type(IntType), Any)
    assert_type(message.raw_value(), bytes | None)
    context.send(message_builder("example/x", "1", int_value=1))
    context.send_after(timedelta(seconds=1), message_builder("example/x", "1", int_value=1), "t")
    context.cancel_delayed_message("t")
    assert_type(kafka_egress_message("example/k", "topic", "v"), EgressMessage)


@functions.bind("example/async")
async def async_fn(context: Context, message: Message) -> None:
    context.send(message_builder("example/x", "1", str_value="a"))


keep_sync: Callable[[Context, Message], None] = sync_fn
keep_async: Callable[[Context, Message], Coroutine[Any, Any, None]] = async_fn
# If bind() lost the function's type (Any), this ignore would be unused, which strict flags.
not_an_int: int = sync_fn  # type: ignore[assignment]
handler = RequestReplyHandler(functions)
assert_type(handler.handle(b""), bytes)
assert_type(handler.handle_sync(b""), bytes)


async def serve_one(request: bytes) -> None:
    assert_type(await handler.handle_async(request), bytes)
