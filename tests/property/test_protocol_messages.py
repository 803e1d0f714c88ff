"""Protocol envelopes survive serialization, and the handler's state replies match a dict model."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st
from support.wire import to_function, typed

from pystatefun.protocol import Address, FromFunction, ToFunction, TypedValue, parse_to_function
from pystatefun.sdk import (
    Context,
    LongType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    ValueSpec,
    make_json_type,
)

TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
NAMES = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8)
TYPED_VALUES = st.builds(TypedValue, typename=TEXT, has_value=st.booleans(), value=st.binary())
ADDRESSES = st.fixed_dictionaries({"namespace": TEXT, "type": TEXT, "id": TEXT})


@st.composite
def to_functions(draw: st.DrawFn) -> ToFunction:
    message = ToFunction()
    batch = message.invocation
    batch.target.CopyFrom(Address(**draw(ADDRESSES)))
    for name in draw(st.lists(NAMES, max_size=5)):
        persisted = batch.state.add(state_name=name)
        if draw(st.booleans()):
            persisted.state_value.CopyFrom(draw(TYPED_VALUES))
    for _ in range(draw(st.integers(1, 5))):
        invocation = batch.invocations.add(argument=draw(TYPED_VALUES))
        if draw(st.booleans()):
            invocation.caller.CopyFrom(Address(**draw(ADDRESSES)))
    return message


@st.composite
def from_functions(draw: st.DrawFn) -> FromFunction:
    message = FromFunction()
    if draw(st.booleans()):
        for name in draw(st.lists(NAMES, max_size=4)):
            spec = message.incomplete_invocation_context.missing_values.add(
                state_name=name, type_typename=draw(TEXT)
            )
            spec.expiration_spec.mode = draw(st.sampled_from([0, 1, 2]))
            spec.expiration_spec.expire_after_millis = draw(st.integers(0, 2**63 - 1))
        return message
    result = message.invocation_result
    for name in draw(st.lists(NAMES, max_size=4)):
        mutation = result.state_mutations.add(
            state_name=name, mutation_type=draw(st.sampled_from([0, 1]))
        )
        mutation.state_value.CopyFrom(draw(TYPED_VALUES))
    for _ in range(draw(st.integers(0, 3))):
        delayed = result.delayed_invocations.add(
            delay_in_ms=draw(st.integers(-(2**63), 2**63 - 1)),
            cancellation_token=draw(TEXT),
            is_cancellation_request=draw(st.booleans()),
        )
        delayed.argument.CopyFrom(draw(TYPED_VALUES))
    for _ in range(draw(st.integers(0, 3))):
        result.outgoing_egresses.add(egress_namespace=draw(TEXT), egress_type=draw(TEXT))
    return message


@given(to_functions())
def test_to_function_round_trips(message: ToFunction) -> None:
    assert parse_to_function(message.SerializeToString()) == message


@given(from_functions())
def test_from_function_round_trips(message: FromFunction) -> None:
    assert FromFunction.FromString(message.SerializeToString()) == message


OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "del", "read"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(-(2**63), 2**63 - 1),
    ),
    max_size=12,
)
OPS_TYPE = make_json_type("x/Ops")


def _apply_ops(context: Context, message: Message) -> None:
    for op, name, number in message.as_type(OPS_TYPE):
        if op == "set":
            setattr(context.storage, name, number)
        elif op == "del":
            delattr(context.storage, name)
        else:
            getattr(context.storage, name)


@given(
    initial=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(-(2**63), 2**63 - 1)),
    batches=st.lists(OPS, min_size=1, max_size=4),
)
def test_state_replies_match_a_dict_model(initial: dict[str, int], batches: list[list]) -> None:
    functions = StatefulFunctions()
    functions.register("x/ops", _apply_ops, [ValueSpec(n, LongType) for n in "abc"])
    handler = RequestReplyHandler(functions)
    model: dict[str, int | None] = {n: initial.get(n) for n in "abc"}
    invocations = [(typed(OPS_TYPE, ops), None) for ops in batches]
    state = {n: (typed(LongType, v) if v is not None else None) for n, v in model.items()}
    reply = FromFunction.FromString(
        handler.handle(to_function("x/ops", "1", state, invocations).SerializeToString())
    )
    touched: list[str] = []
    for ops in batches:
        for op, name, number in ops:
            if op == "set":
                model[name] = number
            elif op == "del":
                model[name] = None
            if op != "read" and name not in touched:
                touched.append(name)
    mutations = reply.invocation_result.state_mutations
    assert [m.state_name for m in mutations] == sorted(touched)  # declaration order: a, b, c
    for mutation in mutations:
        expected = model[mutation.state_name]
        if expected is None:
            assert mutation.mutation_type == FromFunction.PersistedValueMutation.DELETE
        else:
            assert LongType.serializer().deserialize(mutation.state_value.value) == expected
