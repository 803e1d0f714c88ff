"""Fuzzing ``RequestReplyHandler``: any request gets a valid ``FromFunction`` or a documented
error with its code, never a stray ``KeyError``, ``AttributeError`` or ``UnicodeDecodeError``.

The documented errors are the caller's (``ProtocolError`` for a body that is not a request,
``UnknownFunctionError`` for an unbound type) and those of data the function reads
(``ProtocolError`` for a value whose bytes are not of its type, ``StateTypeMismatchError`` for
state of another type). The functions below are well behaved: they check a message's type
before reading it, so any other exception is the SDK's fault.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from support.strategies import ADDRESSES, FUZZ, TEXT, mutated, to_functions
from support.wire import typed

from pystatefun.errors import (
    ProtocolError,
    PystatefunError,
    StateTypeMismatchError,
    UnknownFunctionError,
)
from pystatefun.protocol import Address, FromFunction, ToFunction, TypedValue, parse_from_function
from pystatefun.sdk import (
    Context,
    IntType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    StringType,
    ValueSpec,
    kafka_egress_message,
    make_json_type,
    message_builder,
)
from pystatefun.sdk.asgi import AsgiApp

pytestmark = pytest.mark.timeout(120)
DOC = make_json_type("fuzz/Doc")
GREETER = "fuzz/greeter"
ARCHIVIST = "fuzz.v1/archivist"
SPECS = {
    GREETER: [
        ValueSpec("seen", IntType),
        ValueSpec("name", StringType, expire_after_write=timedelta(minutes=1)),
    ],
    ARCHIVIST: [ValueSpec("doc", DOC, expire_after_call=timedelta(seconds=5))],
}
DOCUMENTED = (ProtocolError, UnknownFunctionError, StateTypeMismatchError)


def greeter(context: Context, message: Message) -> None:
    """Counts, remembers a name, answers its caller and writes to an egress."""
    seen = ((context.storage.seen or 0) + 1) % 2**31
    context.storage.seen = seen
    name = message.as_string() if message.is_string() else None  # None: no value
    if name is not None:
        context.storage.name = name
    elif message.is_int() and message.as_int() == 0:
        del context.storage.name
    if context.caller is not None:
        caller = context.caller
        context.send(message_builder(caller.typename, caller.id, int_value=seen))
    record = kafka_egress_message(
        typename="fuzz/out", topic="greetings", key=context.address.id, value=seen
    )
    context.send_egress(record)


async def archivist(context: Context, message: Message) -> None:
    """Keeps the last documents it was sent, and reminds itself later (an async function)."""
    await asyncio.sleep(0)
    kept = context.storage.doc or []
    kept.append(message.as_type(DOC) if message.is_type(DOC) else message.value_typename())
    context.storage.doc = kept[-3:]
    reminder = message_builder(context.address.typename, context.address.id, str_value="again")
    context.send_after(timedelta(seconds=1), reminder, cancellation_token=context.address.id)


def _handler() -> RequestReplyHandler:
    functions = StatefulFunctions()
    functions.register(GREETER, greeter, SPECS[GREETER])
    functions.register(ARCHIVIST, archivist, SPECS[ARCHIVIST])
    return RequestReplyHandler(functions)


HANDLER = _handler()


def _answer(data: bytes, *, in_loop: bool) -> FromFunction | PystatefunError:
    """The handler's reply, decoded, or the documented error it raised (anything else fails)."""
    try:
        reply = asyncio.run(HANDLER.handle_async(data)) if in_loop else HANDLER.handle(data)
    except DOCUMENTED as error:
        failure: PystatefunError = error
    else:
        answer = parse_from_function(reply)
        event(f"answered {answer.WhichOneof('response')}")  # --hypothesis-show-statistics
        return answer
    event(f"raised {type(failure).__name__}")
    assert str(failure).endswith(f"[{failure.code}]"), str(failure)
    return failure


# Well-formed requests: bound and unbound targets, odd ids, any state, any arguments.
TARGETS = st.sampled_from([GREETER, ARCHIVIST, GREETER, ARCHIVIST, "fuzz/unbound"]).map(
    lambda typename: typename.rsplit("/", 1)
)
INT32 = st.integers(-(2**31), 2**31 - 1)
DOCS = st.recursive(st.none() | st.integers() | TEXT, lambda inner: st.lists(inner, max_size=3))
#: A valid value of each declared state, and of each type the functions read from a message.
VALID = {
    "seen": st.builds(typed, st.just(IntType), INT32),
    "name": st.builds(typed, st.just(StringType), TEXT),
    "doc": st.builds(typed, st.just(DOC), st.lists(DOCS, max_size=3)),
}
VALUE_BYTES = (
    st.binary(max_size=40)
    | st.builds(IntType.serializer().serialize, INT32)
    | st.builds(StringType.serializer().serialize, TEXT)
    | st.builds(DOC.serializer().serialize, DOCS)
    | st.just(b"\x0a\x80\x80\x10" + b"x" * 2**18)  # a 256 KiB string
)
TYPENAMES = st.sampled_from(
    ["io.statefun.types/int", "io.statefun.types/string", "fuzz/Doc", "fuzz/Other", ""]
)
ANY_VALUES = st.builds(TypedValue, typename=TYPENAMES, has_value=st.booleans(), value=VALUE_BYTES)
VALUES = st.one_of(*VALID.values(), ANY_VALUES)
WHOLE_CALLERS = st.builds(
    Address,
    namespace=st.sampled_from(["fuzz", "a/b", "ünï"]),
    type=st.sampled_from(["caller", "greeter"]),
    id=st.text(min_size=1, max_size=5),
)
CALLERS = (
    st.none()
    | st.just(Address())  # present, all empty: an ingress, like an absent one
    | WHOLE_CALLERS
    | st.builds(lambda fields: Address(**fields), ADDRESSES)  # mostly incomplete
)


def _acceptable_caller(caller: Address) -> bool:
    """No caller, or a whole address whose type, like every function type's, has no '/'."""
    whole = bool(caller.namespace and caller.type and caller.id) and "/" not in caller.type
    return whole or caller == Address()


@st.composite
def requests(draw: st.DrawFn) -> ToFunction:
    """A ToFunction as a runtime would build it, with the contents varied."""
    message = ToFunction()
    batch = message.invocation
    batch.target.namespace, batch.target.type = draw(TARGETS)
    batch.target.id = draw(st.text(min_size=1, max_size=10))
    # The declared states, each sent with a valid value, sent empty or missing, then noise:
    # undeclared names, repeated names (the last one counts), values of any type and bytes.
    states: list[tuple[str, TypedValue | None]] = []
    for spec in SPECS.get(f"{batch.target.namespace}/{batch.target.type}", []):
        choice = draw(st.sampled_from(["valid", "empty", "missing"]))
        if choice != "missing":
            states.append((spec.name, draw(VALID[spec.name]) if choice == "valid" else None))
    names = st.sampled_from(["seen", "name", "doc", "other"])
    states += draw(st.lists(st.tuples(names, st.none() | ANY_VALUES), max_size=2))
    for name, value in draw(st.permutations(states)):
        persisted = batch.state.add(state_name=name)
        if value is not None:
            persisted.state_value.CopyFrom(value)
    for _ in range(draw(st.integers(0, 4))):
        invocation = batch.invocations.add()
        if draw(st.booleans()):
            invocation.argument.CopyFrom(draw(VALUES))
        caller = draw(CALLERS)
        if caller is not None:
            invocation.caller.CopyFrom(caller)
    return message


def _declared_order(names: list[str], typename: str) -> bool:
    order = [spec.name for spec in SPECS[typename]]
    return names == [name for name in order if name in names]


def _check_reply(request: ToFunction, reply: FromFunction) -> None:
    batch = request.invocation
    typename = f"{batch.target.namespace}/{batch.target.type}"
    received = {value.state_name for value in batch.state}
    missing = [spec for spec in SPECS[typename] if spec.name not in received]
    if missing:
        asked = reply.incomplete_invocation_context.missing_values
        assert [(m.state_name, m.type_typename) for m in asked] == [
            (spec.name, spec.type.typename) for spec in missing
        ]
        return
    assert not reply.HasField("incomplete_invocation_context")
    result = reply.invocation_result
    names = [mutation.state_name for mutation in result.state_mutations]
    assert _declared_order(names, typename)
    specs = {spec.name: spec for spec in SPECS[typename]}
    for mutation in result.state_mutations:
        if mutation.mutation_type == FromFunction.PersistedValueMutation.MODIFY:
            assert mutation.state_value.typename == specs[mutation.state_name].type.typename
    count = len(batch.invocations)
    if typename == GREETER:
        assert len(result.outgoing_egresses) == count
        with_caller = [i for i in batch.invocations if i.caller != Address()]
        assert len(result.outgoing_messages) == len(with_caller)
    else:
        assert len(result.delayed_invocations) == count


@FUZZ
@given(request=requests(), in_loop=st.booleans())
def test_well_formed_requests_get_a_consistent_reply(request: ToFunction, in_loop: bool) -> None:
    answer = _answer(request.SerializeToString(), in_loop=in_loop)
    batch = request.invocation
    typename = f"{batch.target.namespace}/{batch.target.type}"
    if not all(_acceptable_caller(invocation.caller) for invocation in batch.invocations):
        assert isinstance(answer, ProtocolError)
        assert "invalid caller address" in str(answer)
    elif typename not in SPECS:
        assert isinstance(answer, UnknownFunctionError)
        assert answer.known == sorted(SPECS)
    elif isinstance(answer, FromFunction):
        _check_reply(request, answer)
    else:
        # Bad bytes or a wrong type in a value the function read: raised while it ran.
        assert isinstance(answer, ProtocolError | StateTypeMismatchError)
        notes = getattr(answer, "__notes__", [])
        assert any(note.startswith(f"while invoking {typename}/") for note in notes), answer


ANY_BYTES = st.binary(max_size=200) | mutated(to_functions()) | mutated(requests())


@FUZZ
@given(data=ANY_BYTES, in_loop=st.booleans())
def test_any_bytes_get_a_reply_or_a_documented_error(data: bytes, in_loop: bool) -> None:
    _answer(data, in_loop=in_loop)


async def _serve_over_asgi(chunks: list[bytes]) -> tuple[int, dict[bytes, bytes], bytes]:
    """POST ``chunks`` as one request body to an ``AsgiApp``; its status, headers and body."""
    events = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return events.pop(0)

    async def send(event: MutableMapping[str, Any]) -> None:
        sent.append(event)

    await ASGI({"type": "http", "method": "POST", "path": "/"}, receive, send)
    start, body = sent
    assert (start["type"], body["type"]) == ("http.response.start", "http.response.body")
    return start["status"], dict(start["headers"]), body["body"]


ASGI = AsgiApp(HANDLER, max_request_bytes=2**18)  # below the 256 KiB string value
#: What the body of each error status ends with: the code of the error that caused it.
CODES = {400: b"[PSF-SDK0005]\n", 404: b"[PSF-SDK0002]\n", 413: b"(max_request_bytes)\n"}


@FUZZ
@given(
    data=ANY_BYTES | requests().map(ToFunction.SerializeToString),
    cuts=st.lists(st.integers(0, 2**19), max_size=3),
)
def test_the_asgi_app_answers_any_body_with_a_status_that_says_why(
    data: bytes, cuts: list[int]
) -> None:
    bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    chunks = [data[start:end] for start, end in itertools.pairwise(bounds)]
    status, headers, body = asyncio.run(_serve_over_asgi(chunks))
    event(f"HTTP {status}")
    assert headers[b"content-length"] == str(len(body)).encode()
    if status == 200:
        assert headers[b"content-type"] == b"application/octet-stream"
        parse_from_function(body)
    elif status == 500:  # a value the function read was bad; the reply names the error
        assert body.startswith((b"ProtocolError: ", b"StateTypeMismatchError: ")), body[:200]
        assert b"while invoking fuzz" in body
    else:
        assert body.endswith(CODES[status]), body[-200:]
