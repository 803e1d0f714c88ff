"""``pystatefun.testing.FunctionHarness``: the in-memory runtime tests drive functions with."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from pystatefun.errors import TerminalError
from pystatefun.sdk import (
    Context,
    IntType,
    Message,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    make_json_type,
    message_builder,
)
from pystatefun.testing import FunctionHarness
from pystatefun.types import Address

COUNTER = "test/counter"
RECORD = make_json_type("io.statefun.playground/EgressRecord")


def _counter_functions() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind(COUNTER, specs=[ValueSpec("count", IntType)])
    def counter(context: Context, message: Message) -> None:
        context.storage.count = (context.storage.count or 0) + (message.as_int() or 0)

    return functions


def test_a_counter_keeps_state_per_address_across_batches() -> None:
    harness = FunctionHarness(_counter_functions())
    harness.send(COUNTER, "a", 2)
    harness.send(COUNTER, "a", 3)
    harness.send(COUNTER, "b", 10)
    assert harness.run() == 2  # one batch per address
    harness.send_message(message_builder(COUNTER, "a", int_value=5))
    assert harness.run() == 1
    assert harness.state(COUNTER, "a", "count") == 10
    assert harness.state(COUNTER, "a", "count", type=IntType) == 10
    assert harness.state(COUNTER, "b", "count") == 10
    assert harness.state(COUNTER, "c", "count") is None
    assert harness.run() == 0


def test_set_state_seeds_a_value_the_function_reads() -> None:
    harness = FunctionHarness(_counter_functions())
    harness.set_state(COUNTER, "a", "count", 40, type=IntType)
    harness.send(COUNTER, "a", 2)
    harness.run()
    assert harness.state(COUNTER, "a", "count") == 42


def test_a_seeded_state_of_another_type_fails_as_in_production() -> None:
    harness = FunctionHarness(_counter_functions())
    harness.set_state(COUNTER, "a", "count", "forty", type=StringType)
    harness.send(COUNTER, "a", 2)
    with pytest.raises(TerminalError, match="a state's type cannot change"):
        harness.run()


def test_messages_between_two_bound_functions_carry_the_caller() -> None:
    functions = StatefulFunctions()
    seen: list[tuple[str | None, str | None]] = []

    @functions.bind("test/ping")
    def ping(context: Context, message: Message) -> None:
        context.send(message_builder("test/pong", "p", str_value=message.as_string() or ""))

    @functions.bind("test/pong", specs=[ValueSpec("last", StringType)])
    def pong(context: Context, message: Message) -> None:
        caller = context.caller
        seen.append((caller.typename if caller else None, caller.id if caller else None))
        context.storage.last = message.as_string()

    harness = FunctionHarness(functions)
    harness.send("test/ping", "x", "hello")
    assert harness.run() == 2
    assert seen == [("test/ping", "x")]
    assert harness.state("test/pong", "p", "last") == "hello"
    assert harness.outbox == []


def test_a_message_to_an_unbound_type_lands_in_the_outbox() -> None:
    functions = StatefulFunctions()

    @functions.bind("test/forwarder")
    def forwarder(context: Context, message: Message) -> None:
        context.send(message_builder("other/service", "s1", int_value=7))

    harness = FunctionHarness(functions)
    harness.send("test/forwarder", "f", 1)
    assert harness.run() == 1
    [sent] = harness.outbox
    assert sent.target == Address("other", "service", "s1")
    assert sent.caller == Address("test", "forwarder", "f")
    assert sent.value() == 7
    assert sent.value(IntType) == 7
    harness.send("other/service", "s2", "direct")
    assert [m.value() for m in harness.outbox] == [7, "direct"]


def _reminder_functions() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("test/reminder", specs=[ValueSpec("fired", IntType)])
    def reminder(context: Context, message: Message) -> None:
        if message.is_string() and message.as_string() == "schedule":
            later = message_builder("test/reminder", context.address.id, str_value="fire")
            context.send_after(timedelta(seconds=60), later, cancellation_token="t")
        elif message.is_string() and message.as_string() == "cancel":
            context.cancel_delayed_message("t")
        else:
            context.storage.fired = (context.storage.fired or 0) + 1

    return functions


def test_a_delayed_message_fires_only_when_the_clock_reaches_it() -> None:
    harness = FunctionHarness(_reminder_functions())
    start = harness.now_ms
    harness.send("test/reminder", "r", "schedule")
    harness.run()
    [pending] = harness.delayed()
    assert pending.fire_at_ms == start + 60_000
    assert pending.sender == Address("test", "reminder", "r")
    assert harness.advance(59.999) == 0
    assert harness.state("test/reminder", "r", "fired") is None
    assert harness.advance(ms=1) == 1
    assert harness.state("test/reminder", "r", "fired") == 1
    assert harness.delayed() == []
    assert harness.now_ms == start + 60_000


def test_a_cancelled_delayed_message_never_fires() -> None:
    harness = FunctionHarness(_reminder_functions())
    harness.send("test/reminder", "r", "schedule")
    harness.run()
    harness.send("test/reminder", "r", "cancel")
    harness.run()
    assert harness.delayed() == []
    assert harness.advance(3600) == 0
    assert harness.state("test/reminder", "r", "fired") is None


def test_a_pending_token_reused_fails_and_applies_nothing() -> None:
    harness = FunctionHarness(_reminder_functions())
    harness.send("test/reminder", "r", "schedule")
    harness.run()
    harness.send("test/reminder", "r", "schedule")
    with pytest.raises(TerminalError, match="reuses the cancellation token 't', still pending"):
        harness.run()
    assert len(harness.delayed()) == 1


def test_state_with_a_ttl_after_write_expires_as_the_clock_advances() -> None:
    functions = StatefulFunctions()

    @functions.bind(
        "test/session",
        specs=[ValueSpec("token", StringType, expire_after_write=timedelta(seconds=30))],
    )
    def session(context: Context, message: Message) -> None:
        if message.as_string() == "login":
            context.storage.token = "secret"

    harness = FunctionHarness(functions)
    harness.send("test/session", "u", "login")
    harness.run()
    assert harness.state("test/session", "u", "token") == "secret"
    harness.advance(20)
    harness.send("test/session", "u", "read")  # a read does not extend an after-write TTL
    harness.run()
    harness.advance(9.999)
    assert harness.state("test/session", "u", "token") == "secret"
    harness.advance(ms=1)
    assert harness.state("test/session", "u", "token") is None


def test_playground_egress_records_have_their_topic_and_text() -> None:
    functions = StatefulFunctions()

    @functions.bind("test/greeter")
    def greeter(context: Context, message: Message) -> None:
        record = {"topic": "greetings", "payload": f"hello {message.as_string()}"}
        context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))
        context.send_egress(egress_message_builder("test/other", 1, IntType))

    harness = FunctionHarness(functions)
    harness.send("test/greeter", "g", "ada")
    harness.run()
    [playground] = harness.egress("io.statefun.playground/egress")
    assert (playground.topic, playground.text) == ("greetings", "hello ada")
    [other] = harness.egress("test/other")
    assert other.topic is None
    assert other.payload.typename == "io.statefun.types/int"
    assert len(harness.egress()) == 2


def test_an_invalid_playground_record_fails_like_the_runtime() -> None:
    functions = StatefulFunctions()

    @functions.bind("test/bad")
    def bad(context: Context, message: Message) -> None:
        context.send_egress(
            egress_message_builder("io.statefun.playground/egress", {"topic": 1}, RECORD)
        )

    harness = FunctionHarness(functions)
    harness.send("test/bad", "b", 1)
    with pytest.raises(TerminalError, match="invalid io.statefun.playground/EgressRecord"):
        harness.run()


def _async_functions() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("test/async", specs=[ValueSpec("seen", IntType)])
    async def slow(context: Context, message: Message) -> None:
        await asyncio.sleep(0)
        context.storage.seen = (context.storage.seen or 0) + 1

    return functions


def test_an_async_function_runs_with_run() -> None:
    harness = FunctionHarness(_async_functions())
    harness.send("test/async", "a", 1)
    harness.send("test/async", "a", 2)
    assert harness.run() == 1
    assert harness.state("test/async", "a", "seen") == 2


def test_an_async_function_runs_with_run_async_inside_a_loop() -> None:
    harness = FunctionHarness(_async_functions())
    harness.send("test/async", "a", 1)

    async def main() -> int:
        with pytest.raises(RuntimeError, match="handle_async"):
            harness.run()  # the sync driver cannot start a loop inside one
        return await harness.run_async() + await harness.advance_async(1)

    assert asyncio.run(main()) == 1
    assert harness.state("test/async", "a", "seen") == 1


def test_the_missing_state_handshake_is_transparent() -> None:
    functions = StatefulFunctions()
    calls: list[str] = []

    @functions.bind("test/two", specs=[ValueSpec("a", IntType), ValueSpec("b", StringType)])
    def two(context: Context, message: Message) -> None:
        calls.append(message.as_string() or "")
        context.storage.a = (context.storage.a or 0) + 1
        context.storage.b = (context.storage.b or "") + (message.as_string() or "")

    harness = FunctionHarness(functions)
    harness.send("test/two", "t", "x")
    assert harness.run() == 1  # the handshake round is not an invocation
    harness.send("test/two", "t", "y")
    harness.run()
    assert calls == ["x", "y"]  # the function ran once per message, never for the handshake
    assert harness.state("test/two", "t", "a") == 2
    assert harness.state("test/two", "t", "b") == "xy"


def test_a_message_loop_is_stopped_after_max_steps_naming_the_addresses() -> None:
    functions = StatefulFunctions()

    @functions.bind("test/echo")
    def echo(context: Context, message: Message) -> None:
        context.send(message_builder("test/echo", context.address.id, int_value=1))

    harness = FunctionHarness(functions)
    harness.send("test/echo", "loop", 1)
    with pytest.raises(RuntimeError, match=r"after 50 invocations.*test/echo/loop"):
        harness.run(max_steps=50)
    assert harness.invocations == 50


def test_a_raising_function_fails_run_and_its_batch_stays() -> None:
    functions = StatefulFunctions()
    fail = [True]

    @functions.bind("test/fragile", specs=[ValueSpec("n", IntType)])
    def fragile(context: Context, message: Message) -> None:
        context.storage.n = message.as_int()
        if fail[0]:
            raise ValueError("boom")

    harness = FunctionHarness(functions)
    harness.send("test/fragile", "f", 3)
    with pytest.raises(ValueError, match="boom") as raised:
        harness.run()
    assert any("test/fragile/f" in note for note in raised.value.__notes__)
    assert harness.state("test/fragile", "f", "n") is None  # nothing applied
    fail[0] = False
    assert harness.run() == 1  # the message waited in its mailbox
    assert harness.state("test/fragile", "f", "n") == 3


def test_send_infers_primitive_types_or_takes_one() -> None:
    harness = FunctionHarness(_counter_functions())
    harness.send("other/x", "1", True)
    harness.send("other/x", "2", 1.5)
    harness.send("other/x", "3", {"k": 1}, value_type=make_json_type("test/J"))
    assert [m.payload.typename for m in harness.outbox] == [
        "io.statefun.types/bool",
        "io.statefun.types/float",
        "test/J",
    ]
    assert harness.outbox[2].value(make_json_type("test/J")) == {"k": 1}
    with pytest.raises(TypeError, match="value_type"):
        harness.send("other/x", "4", {"k": 1})


def test_several_functions_objects_run_together_as_one_module() -> None:
    from pystatefun.errors import ConfigurationError
    from pystatefun.sdk import StatefulFunctions, message_builder

    first, second = StatefulFunctions(), StatefulFunctions()

    @first.bind("split/ping")
    def ping(context, message):  # type: ignore[no-untyped-def]
        context.send(message_builder("split/pong", context.address.id, str_value="ping"))

    @second.bind("split/pong", specs=[ValueSpec("got", StringType)])
    def pong(context, message):  # type: ignore[no-untyped-def]
        context.storage.got = message.as_string()

    harness = FunctionHarness(first, second)
    harness.send("split/ping", "x", "go")
    harness.run()
    assert harness.state("split/pong", "x", "got") == "ping"
    assert harness.outbox == []
    with pytest.raises(ConfigurationError, match="already bound"):
        FunctionHarness(first, first)
    with pytest.raises(TypeError, match="at least one"):
        FunctionHarness()
