"""The request-reply core: the handshake, storage, batches, effects and errors."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from support.wire import to_function, typed

from pystatefun.errors import ConfigurationError, ProtocolError, StateTypeMismatchError
from pystatefun.protocol import Address, FromFunction, ToFunction
from pystatefun.sdk import (
    Context,
    IntType,
    LongType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    ValueSpec,
    message_builder,
)

MODIFY = FromFunction.PersistedValueMutation.MODIFY
DELETE = FromFunction.PersistedValueMutation.DELETE


def serve(fun, specs=None, typename="x/fn") -> RequestReplyHandler:
    functions = StatefulFunctions()
    functions.register(typename, fun, specs)
    return RequestReplyHandler(functions)


def call(handler: RequestReplyHandler, request: ToFunction) -> FromFunction:
    return FromFunction.FromString(handler.handle(request.SerializeToString()))


def one(value, state=None, caller=None, typename="x/fn") -> ToFunction:
    return to_function(typename, "id", state or {}, [(value, caller)])


def test_missing_state_is_reported_in_order_without_running_user_code() -> None:
    ran: list[Message] = []
    specs = [
        ValueSpec("b", IntType, expire_after_call=timedelta(seconds=3)),
        ValueSpec("a", StringType, expire_after_write=timedelta(milliseconds=5)),
        ValueSpec("c", LongType),
    ]
    handler = serve(lambda context, message: ran.append(message), specs)
    reply = call(handler, one(typed(IntType, 1), state={"a": None}))
    missing = reply.incomplete_invocation_context.missing_values
    mode = FromFunction.ExpirationSpec.ExpireMode
    assert [
        (
            m.state_name,
            m.type_typename,
            m.expiration_spec.mode,
            m.expiration_spec.expire_after_millis,
        )
        for m in missing
    ] == [
        ("b", "io.statefun.types/int", mode.AFTER_INVOKE, 3000),
        ("c", "io.statefun.types/long", mode.NONE, 0),
    ]
    assert missing[1].HasField("expiration_spec")
    assert ran == []


def test_storage_reads_writes_and_deletes() -> None:
    def fun(context: Context, message: Message) -> None:
        assert context.storage.empty is None
        assert context.storage.count == 41
        context.storage.count += 1
        del context.storage.gone
        context.storage.empty = "now set"

    specs = [
        ValueSpec("count", IntType),
        ValueSpec("gone", IntType),
        ValueSpec("empty", StringType),
        ValueSpec("untouched", IntType),
    ]
    state = {
        "count": typed(IntType, 41),
        "gone": typed(IntType, 1),
        "empty": None,
        "untouched": typed(IntType, 5),
        "not_declared_any_more": typed(IntType, 9),
    }
    reply = call(serve(fun, specs), one(typed(IntType, 0), state=state))
    mutations = reply.invocation_result.state_mutations
    assert [(m.state_name, m.mutation_type) for m in mutations] == [
        ("count", MODIFY),
        ("gone", DELETE),
        ("empty", MODIFY),
    ]
    assert IntType.serializer().deserialize(mutations[0].state_value.value) == 42
    assert not mutations[1].HasField("state_value")


def test_storage_errors_name_the_address_state_and_fix() -> None:
    outcomes: list[str] = []

    def fun(context: Context, message: Message) -> None:
        for action in (
            lambda: context.storage.nope,
            lambda: setattr(context.storage, "count", None),
            lambda: setattr(context.storage, "count", "text"),
            lambda: setattr(context.storage, "count", 2**40),
            lambda: delattr(context.storage, "nope"),
        ):
            try:
                action()
            except (AttributeError, ValueError, TypeError) as error:
                outcomes.append(f"{type(error).__name__}: {error}")

    call(serve(fun, [ValueSpec("count", IntType)]), one(typed(IntType, 0), state={"count": None}))
    assert (
        "AttributeError: 'nope' is not a declared state of x/fn/id; declared: count" in outcomes[0]
    )
    assert "use `del context.storage.count`" in outcomes[1]
    assert outcomes[2].startswith("TypeError: cannot store str in state 'count' of x/fn/id")
    assert outcomes[3].startswith("ValueError: cannot store int in state 'count' of x/fn/id")
    assert outcomes[4].startswith("AttributeError: 'nope' is not a declared state")


def test_reading_state_stored_with_another_type_is_a_clear_error() -> None:
    def fun(context: Context, message: Message) -> None:
        context.storage.count  # noqa: B018 - the read is the test

    handler = serve(fun, [ValueSpec("count", IntType)])
    with pytest.raises(
        StateTypeMismatchError,
        match=r"state 'count' of x/fn/id holds a value of type 'io.statefun.types/long'",
    ):
        call(handler, one(typed(IntType, 0), state={"count": typed(LongType, 1)}))


def test_a_batch_shares_storage_and_sets_the_caller_per_message() -> None:
    seen: list[tuple[int, str | None]] = []

    def fun(context: Context, message: Message) -> None:
        context.storage.total = (context.storage.total or 0) + message.as_int()
        caller = context.caller
        seen.append((context.storage.total, caller and f"{caller.typename}/{caller.id}"))

    request = to_function(
        "x/fn",
        "id",
        {"total": None},
        [(typed(IntType, 1), None), (typed(IntType, 2), "x/other/7"), (typed(IntType, 3), None)],
    )
    reply = call(serve(fun, [ValueSpec("total", IntType)]), request)
    assert seen == [(1, None), (3, "x/other/7"), (6, None)]
    [mutation] = reply.invocation_result.state_mutations
    assert IntType.serializer().deserialize(mutation.state_value.value) == 6


def test_effects_keep_call_order_and_address_is_exposed() -> None:
    def fun(context: Context, message: Message) -> None:
        assert (context.address.namespace, context.address.name, context.address.id) == (
            "x",
            "fn",
            "id",
        )
        context.send(message_builder("a.b/c/d", "1", int_value=1))
        context.send_after(timedelta(milliseconds=1500), message_builder("x/t", "2", int_value=2))
        context.cancel_delayed_message("tok")
        context.send_after(timedelta(0), message_builder("x/t", "3", int_value=3), "tok2")

    result = call(serve(fun), one(typed(IntType, 0))).invocation_result
    [sent] = result.outgoing_messages
    assert (sent.target.namespace, sent.target.type, sent.target.id) == ("a.b/c", "d", "1")
    delayed = result.delayed_invocations
    assert [(d.is_cancellation_request, d.cancellation_token, d.delay_in_ms) for d in delayed] == [
        (False, "", 1500),
        (True, "tok", 0),
        (False, "tok2", 0),
    ]
    assert not delayed[1].HasField("target")


def test_a_batch_without_effects_answers_an_empty_reply_like_upstream() -> None:
    reply = serve(lambda c, m: None).handle(one(typed(IntType, 0)).SerializeToString())
    assert reply == b""  # an empty FromFunction: "no side effects"


def test_state_names_cannot_reach_the_storage_internals() -> None:
    def fun(context: Context, message: Message) -> None:
        assert context.storage._cells is None
        context.storage._cells = 1
        context.storage._address = 2

    specs = [ValueSpec("_cells", IntType), ValueSpec("_address", IntType)]
    reply = call(
        serve(fun, specs), one(typed(IntType, 0), state={"_cells": None, "_address": None})
    )
    assert [m.state_name for m in reply.invocation_result.state_mutations] == ["_cells", "_address"]
    with pytest.raises(ConfigurationError, match="not starting with a digit or '__'"):
        ValueSpec("__dunder", IntType)


def test_a_value_the_type_cannot_encode_names_the_state() -> None:
    from pystatefun.sdk import make_json_type

    errors: list[Exception] = []

    def fun(context: Context, message: Message) -> None:
        try:
            context.storage.doc = "lone surrogate \ud800"
        except ValueError as error:
            errors.append(error)

    handler = serve(fun, [ValueSpec("doc", make_json_type("x/Doc"))])
    call(handler, one(typed(IntType, 0), state={"doc": None}))
    assert "cannot store str in state 'doc' of x/fn/id (type x/Doc)" in str(errors[0])
    assert isinstance(errors[0].__cause__, UnicodeEncodeError)


@pytest.mark.parametrize(
    ("effect", "match"),
    [
        (lambda c: c.send("not a message"), "send\\(\\) takes a Message"),
        (lambda c: c.send_after(5, message_builder("x/y", "1", int_value=1)), "takes a timedelta"),
        (
            lambda c: c.send_after(timedelta(seconds=-1), message_builder("x/y", "1", int_value=1)),
            "non-negative delay",
        ),
        (lambda c: c.cancel_delayed_message(""), "non-empty token"),
        (
            lambda c: c.send_egress(message_builder("x/y", "1", int_value=1)),
            "takes an EgressMessage",
        ),
    ],
)
def test_context_refuses_bad_effects(effect, match) -> None:
    handler = serve(lambda context, message: effect(context))
    with pytest.raises(ConfigurationError, match=match):
        call(handler, one(typed(IntType, 0)))


def test_user_errors_propagate_with_the_address_and_message_position() -> None:
    def fun(context: Context, message: Message) -> None:
        if message.as_int() == 2:
            raise RuntimeError("boom")

    request = to_function("x/fn", "id", {}, [(typed(IntType, 1), None), (typed(IntType, 2), None)])
    with pytest.raises(RuntimeError, match="boom") as raised:
        serve(fun).handle(request.SerializeToString())
    assert raised.value.__notes__ == ["while invoking x/fn/id with message 2 of 2"]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"\xff\xff\xff", "not a StateFun ToFunction message"),
        (b"", "without an invocation batch"),
        (
            to_function("x/fn", "", {}, [(typed(IntType, 1), None)]).SerializeToString(),
            "invalid target address 'x'/'fn'/''",
        ),
        # Found by tests/property/test_fuzz_handler.py: a function answering such a caller
        # failed in message_builder with a ConfigurationError that blamed its code.
        (
            to_function("x/fn", "id", {}, [(typed(IntType, 1), "//0")]).SerializeToString(),
            "invocation 1 of 1 has an invalid caller address ''/''/'0'",
        ),
        (
            to_function("x/fn", "id", {}, [(typed(IntType, 1), "x/fn/")]).SerializeToString(),
            "invalid caller address 'x'/'fn'/''",
        ),
        (  # a type name splits at its last '/': 'x/y/fn' is namespace 'x/y', type 'fn'
            ToFunction(
                invocation=ToFunction.InvocationBatchRequest(
                    target=Address(namespace="x", type="y/fn", id="1")
                )
            ).SerializeToString(),
            "invalid target address 'x'/'y/fn'/'1'",
        ),
    ],
)
def test_malformed_requests_are_protocol_errors(body: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        serve(lambda c, m: None).handle(body)


async def _async_fun(context: Context, message: Message) -> None:
    await asyncio.sleep(0)
    context.send(message_builder("x/y", "1", int_value=message.as_int()))


def test_handle_runs_async_functions_when_no_loop_is_running() -> None:
    result = call(serve(_async_fun), one(typed(IntType, 9))).invocation_result
    assert IntType.serializer().deserialize(result.outgoing_messages[0].argument.value) == 9


async def test_inside_a_loop_async_functions_need_handle_async() -> None:
    handler = serve(_async_fun)
    request = one(typed(IntType, 4)).SerializeToString()
    with pytest.raises(RuntimeError, match="use `await handler.handle_async"):
        handler.handle(request)
    reply = FromFunction.FromString(await handler.handle_async(request))
    assert len(reply.invocation_result.outgoing_messages) == 1


async def test_plain_functions_run_inside_a_loop_with_handle() -> None:
    handler = serve(lambda c, m: c.send(message_builder("x/y", "1", int_value=1)))
    reply = call(handler, one(typed(IntType, 0)))  # no asyncio.run: works in a running loop
    assert len(reply.invocation_result.outgoing_messages) == 1


def test_a_plain_function_that_awaits_must_be_declared_async() -> None:
    handler = serve(lambda context, message: asyncio.sleep(0.01))
    with pytest.raises(ConfigurationError, match="declare it `async def`"):
        handler.handle(one(typed(IntType, 0)).SerializeToString())


def test_handler_needs_functions() -> None:
    with pytest.raises(ConfigurationError, match="at least one bound function"):
        RequestReplyHandler(StatefulFunctions())
    with pytest.raises(ConfigurationError, match="takes a StatefulFunctions"):
        RequestReplyHandler({})  # type: ignore[arg-type]
